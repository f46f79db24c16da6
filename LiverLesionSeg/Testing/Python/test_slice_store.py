"""Training slices kept on disk (`slice_store`): they train as the same slices in memory do, the
run folder holds them only while the run goes on, and a disk without room is told in one line."""

from __future__ import annotations

import copy
import re
import shutil

import numpy as np
import pytest

import bad_inputs
from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import prepare_case, prepare_training_case
from LiverLesionSegLib.errors import ResourceError
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.slice_store import STORE_FOLDER, SliceStore, slices_on_disk
from LiverLesionSegLib.train import train


@pytest.fixture(scope="module")
def cases_folder(data_dir, tmp_path_factory):
    """Two cases of eight real slices each (3Dircadb1.17 through its liver and lesions), as image and
    label map pairs."""
    root = tmp_path_factory.mktemp("store") / "cases"
    shutil.copytree(bad_inputs.small_case(data_dir, root / "a"), root / "b")
    return root


def _short_config() -> Config:
    config = Config()
    config.train.cycles, config.train.epochs_per_cycle, config.train.max_slices_per_epoch = 1, 2, 8
    config.train.batch_size = 4
    return config


def test_cases_kept_on_disk_train_and_validate_as_the_same_cases_in_memory(cases_folder, tmp_path):
    config = _short_config()
    in_memory = prepare_training_case(load_case(find_cases([cases_folder / "a"])[0]), config)
    validation = prepare_case(load_case(find_cases([cases_folder / "b"])[0]), config.preprocess, keep_volume=True)
    with slices_on_disk(tmp_path) as store:
        on_disk, validation_on_disk = store.keep(copy.deepcopy(in_memory)), store.keep(copy.deepcopy(validation))
        assert all(isinstance(a, np.memmap) for v in on_disk.views for a in (v.stack, v.targets))
        assert all(isinstance(a, np.memmap) for a in (validation_on_disk.ct.array, validation_on_disk.liver,
                                                      validation_on_disk.lesion))
        for memory_view, disk_view in zip(in_memory.views, on_disk.views, strict=True):
            assert np.array_equal(memory_view.stack, disk_view.stack)
            assert np.array_equal(memory_view.targets, disk_view.targets)
        assert np.array_equal(validation.ct.array, validation_on_disk.ct.array)
        assert validation.ct.same_grid(validation_on_disk.ct)
        assert store.bytes == sum(v.stack.nbytes + v.targets.nbytes for v in in_memory.views + validation.views) + \
            validation.ct.array.nbytes + validation.liver.nbytes + validation.lesion.nbytes
        (tmp_path / "memory").mkdir()
        (tmp_path / "disk").mkdir()
        from_memory = train([in_memory], [validation], config, tmp_path / "memory")
        from_disk = train([on_disk], [validation_on_disk], config, tmp_path / "disk")
        assert len(list(store.folder.iterdir())) == 2 * len(in_memory.views) + 2 * len(validation.views) + 3
    assert from_disk.history == from_memory.history
    assert from_memory.history["epochs"][-1]["val_liver_dice"] is not None
    assert not (tmp_path / STORE_FOLDER).exists() and on_disk.views == [] and validation_on_disk.ct is None


def test_train_keeps_the_cases_in_the_run_folder_while_it_runs_and_removes_a_killed_runs(cases_folder, tmp_path,
                                                                                          capsys):
    out = tmp_path / "run"
    (out / STORE_FOLDER).mkdir(parents=True)
    (out / STORE_FOLDER / "000000-0-slices.npy").write_bytes(b"left by a run that was killed")
    code = main(["train", str(cases_folder), "--out", str(out), "--cycles", "1", "--epochs", "1",
                 "--max-slices-per-epoch", "4", "--batch-size", "2", "--validate", "b", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 0 and (out / "model.safetensors").is_file()
    assert not (out / STORE_FOLDER).exists()
    assert f"Removing {out / STORE_FOLDER}, left by a training run that was stopped." in err
    assert re.search(r"Training on 1 case\(s\): a; validating on b\. Their slices \(9 MiB\) are kept "
                     rf"on disk in {re.escape(str(out / STORE_FOLDER))} until the run ends\.", err), err


def test_slices_that_cannot_be_written_are_refused_in_one_line_leaving_no_run_folder(cases_folder, tmp_path, capsys):
    """A real file size limit (ulimit -f 64 KiB) below a case's slices (about 0.4 MiB)."""
    with bad_inputs._file_size_limit(64 * 1024):
        code = main(["train", str(cases_folder), "--out", str(tmp_path / "run"), "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 8 and not (tmp_path / "run").exists()
    assert error == (f"liverlesionseg: error: {tmp_path / 'run'}: the slices of case a cannot be kept on disk in "
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
    with pytest.raises(ResourceError, match=r"the slices of case a cannot be kept on disk in the run folder: "
                                            r"they need about 384 KiB, and [\d.]+ [GM]iB more is kept for the run's "
                                            r"checkpoints; [\d.]+ [GM]iB is free\. Free some "
                                            r"disk space, .* \(the slices of the cases read before take 384 KiB\)"):
        store.keep(case)
    assert set((tmp_path / "store").iterdir()) == files and not isinstance(case.views[0].stack, np.memmap)


def test_a_training_case_that_cannot_be_read_is_left_out_when_asked(cases_folder, tmp_path, capsys):
    """One damaged file among a thousand cases ended the run after hours of reading; with
    --leave-out-unreadable the case is left out with its line, and the run trains on the rest. Without
    it, and for a validation case, the run stops as before; a run with no readable case is refused."""
    cases = tmp_path / "cases"
    shutil.copytree(cases_folder, cases)
    (cases / "b" / "labels.nii.gz").write_bytes((cases / "b" / "labels.nii.gz").read_bytes()[:200])  # cut
    common = ["--cycles", "1", "--epochs", "1", "--max-slices-per-epoch", "4", "--batch-size", "2", "--progress",
              "none"]
    assert main(["train", str(cases), "--out", str(tmp_path / "stopped"), *common]) == 3
    assert "labels.nii.gz" in capsys.readouterr().err and not (tmp_path / "stopped").exists()
    assert main(["train", str(cases), "--out", str(tmp_path / "run"), "--leave-out-unreadable", *common]) == 0
    err = capsys.readouterr().err
    assert f"Left out case b: {cases / 'b' / 'labels.nii.gz'}: " in err
    assert "Left out 1 of the 2 cases (they cannot be read): b." in err
    assert load_checkpoint(tmp_path / "run" / "model.safetensors").state["train_cases"] == ["a"]
    assert main(["train", str(cases), "--out", str(tmp_path / "validated"), "--leave-out-unreadable",
                 "--validate", "b", *common]) == 3
    assert not (tmp_path / "validated").exists()
    capsys.readouterr()
    (cases / "a" / "labels.nii.gz").write_bytes(b"")
    assert main(["train", str(cases), "--out", str(tmp_path / "none"), "--leave-out-unreadable", *common]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"liverlesionseg: error: {cases}: none of its 2 training cases could be read. See the lines above for "
        "what is wrong with each.")
