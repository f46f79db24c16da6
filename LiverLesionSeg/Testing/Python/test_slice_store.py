"""Training slices kept on disk (`slice_store`): they train as the same slices in memory do, the
run folder holds them only while the run goes on, and a disk without room is told in one line."""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

import bad_inputs
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import prepare_training_case
from LiverLesionSegLib.errors import ResourceError
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.io.dicomseg import read_seg_case
from LiverLesionSegLib.slice_store import STORE_FOLDER, SliceStore, slices_on_disk
from LiverLesionSegLib.train import train
from LiverLesionSegLib.volume import Volume


@pytest.fixture(scope="module")
def cases_folder(data_dir, tmp_path_factory):
    """Two cases cut from RadCTTACEomics_0697 (10 slices of liver, 3 of them with its lesion), as image
    and label map pairs."""
    source = read_seg_case(data_dir / "tace/RadCTTACEomics_0697")
    root = tmp_path_factory.mktemp("store") / "cases"
    labels = source.label_map()
    for name, first in (("a", 26), ("b", 27)):
        (root / name).mkdir(parents=True)
        ct = source.ct
        part = Volume(ct.array[first:first + 10].copy(), ct.spacing, ct.physical_points(np.array([[0, 0, first]]))[0],
                      ct.direction, name)
        sitk.WriteImage(part.to_sitk(), str(root / name / "image.nii.gz"))
        sitk.WriteImage(part.with_array(labels[first:first + 10].copy()).to_sitk(), str(root / name / "labels.nii.gz"))
    return root


def _short_config() -> Config:
    config = Config()
    config.train.cycles, config.train.epochs_per_cycle, config.train.max_slices_per_epoch = 1, 2, 8
    config.train.batch_size = 4
    return config


def test_slices_kept_on_disk_train_as_the_same_slices_in_memory(cases_folder, tmp_path):
    config = _short_config()
    in_memory = prepare_training_case(load_case(find_cases([cases_folder / "a"])[0]), config)
    with slices_on_disk(tmp_path) as store:
        on_disk = store.keep(copy.deepcopy(in_memory))
        assert all(isinstance(a, np.memmap) for v in on_disk.views for a in (v.stack, v.targets))
        for memory_view, disk_view in zip(in_memory.views, on_disk.views, strict=True):
            assert np.array_equal(memory_view.stack, disk_view.stack)
            assert np.array_equal(memory_view.targets, disk_view.targets)
        assert store.bytes == sum(v.stack.nbytes + v.targets.nbytes for v in in_memory.views) > 0
        (tmp_path / "memory").mkdir()
        (tmp_path / "disk").mkdir()
        from_memory = train([in_memory], [], config, tmp_path / "memory")
        from_disk = train([on_disk], [], config, tmp_path / "disk")
        assert len(list(store.folder.iterdir())) == 2 * len(in_memory.views)
    assert [s["loss"] for s in from_disk.history["steps"]] == [s["loss"] for s in from_memory.history["steps"]]
    assert not (tmp_path / STORE_FOLDER).exists() and on_disk.views == []  # the maps let go, then the files


def test_train_keeps_the_slices_in_the_run_folder_while_it_runs_and_removes_a_killed_runs(cases_folder, tmp_path,
                                                                                          capsys):
    out = tmp_path / "run"
    (out / STORE_FOLDER).mkdir(parents=True)
    (out / STORE_FOLDER / "000000-0-slices.npy").write_bytes(b"left by a run that was killed")
    code = main(["train", str(cases_folder), "--out", str(out), "--cycles", "1", "--epochs", "1",
                 "--max-slices-per-epoch", "4", "--batch-size", "2", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 0 and (out / "model.safetensors").is_file()
    assert not (out / STORE_FOLDER).exists()
    assert f"Removing {out / STORE_FOLDER}, left by a training run that was stopped." in err
    assert re.search(r"Training on 2 case\(s\): a, b; validating on none\. Their training slices \(\d+ KiB\) are kept "
                     rf"on disk in {re.escape(str(out / STORE_FOLDER))} until the run ends\.", err), err


def test_slices_that_cannot_be_written_are_refused_in_one_line_leaving_no_run_folder(cases_folder, tmp_path, capsys):
    """A real file size limit (ulimit -f 64 KiB) below a case's slices (about 0.5 MiB)."""
    with bad_inputs._file_size_limit(64 * 1024):
        code = main(["train", str(cases_folder), "--out", str(tmp_path / "run"), "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 8 and not (tmp_path / "run").exists()
    assert error == (f"liverlesionseg: error: {tmp_path / 'run'}: the training slices of a cannot be kept on disk in "
                     "the run folder: a file would be larger than allowed here (the file size limit, ulimit -f). Free "
                     "some disk space, or give --out a folder on a disk with more room.")


def test_a_disk_without_room_for_a_case_and_the_checkpoints_is_refused_before_writing(cases_folder, tmp_path):
    """The room kept for checkpoints set to all that is free: as on a disk that is nearly full."""
    case = prepare_training_case(load_case(find_cases([cases_folder / "a"])[0]), _short_config())
    (tmp_path / "store").mkdir()
    store = SliceStore(tmp_path / "store")
    store.keep(copy.deepcopy(case))
    files = set((tmp_path / "store").iterdir())
    store.checkpoint_room = shutil.disk_usage(tmp_path).free
    with pytest.raises(ResourceError, match=r"the training slices of a cannot be kept on disk in the run folder: "
                                            r"they need about 480 KiB more, and [\d.]+ [GM]iB is free\. Free some "
                                            r"disk space, .* \(the slices of the cases read before take 480 KiB\)"):
        store.keep(case)
    assert set((tmp_path / "store").iterdir()) == files and not isinstance(case.views[0].stack, np.memmap)
