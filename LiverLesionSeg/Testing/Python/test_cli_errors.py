"""Every broken input of the catalogue ends with one clear line, the exit status of its error
class, nothing written and any existing output untouched. And the inputs that only look broken
(unsorted and misnumbered files, several series, flipped and oblique orientations) work."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from LiverLesionSegLib import cli
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.native_output import held_back

import bad_inputs
from bad_inputs import CATALOGUE

EXISTING = b"an earlier result the user wants to keep"


@pytest.fixture(autouse=True)
def _no_stray_log_handlers():
    """`main` sets up the LiverLesionSeg logger for its own stderr; reset it after each test."""
    yield
    logging.getLogger("LiverLesionSeg").handlers.clear()


def test_catalogue_is_complete():
    """At least 30 kinds of bad input, each with a one-line description for docs/robustness.md."""
    assert len(CATALOGUE) >= 30
    for name, build in CATALOGUE.items():
        doc = (build.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{name} needs a one-line docstring"


def test_the_docs_name_every_catalogue_entry_and_count_them():
    """The README's count and the new-user pass's table in docs/robustness.md, one row per entry."""
    from conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"its catalogue: {len(CATALOGUE)}," in " ".join(readme.split())
    rows = re.findall(r"^\| `([a-z_0-9]+)` \| (?:\d+ \| liverlesionseg|- \| not run here)",
                      (REPO / "docs" / "robustness.md").read_text(encoding="utf-8"), flags=re.M)
    assert sorted(rows) == sorted(CATALOGUE) == rows


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_bad_input_fails_cleanly(name, data_dir, model_path, tmp_path, capsys):
    bad = CATALOGUE[name](data_dir, tmp_path, model_path)
    try:
        previous = bad.existing or tmp_path / "out.nii.gz"
        if not previous.exists():
            previous.write_bytes(EXISTING)
        kept = previous.read_bytes()
        before = snapshot(tmp_path)

        with bad.fault() if bad.fault else _nothing(), held_back(pass_on=False) as printed, python_warnings_shown():
            code = main(bad.argv + ["--progress", "none"])
            assert printed.lines() == [], "a C library printed beside the error line"  # ITK's MetaImage reader did

        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("liverlesionseg: error: ")]
        assert code == bad.exit_code, err
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err  # one error line, the last
        assert "Traceback" not in err and "** ERROR" not in err, err
        assert not re.search(r"^\S+:\d+: \w*Warning: ", err, re.M), err  # a library's Python warning, in two lines
        assert bad.names in errors[0] and bad.fragment in errors[0].lower(), errors[0]
        assert previous.read_bytes() == kept, "an existing output was changed"
        after = snapshot(tmp_path)
        created = sorted(str(p.relative_to(tmp_path)) for p in set(after) - set(before))
        changed = sorted(str(p.relative_to(tmp_path)) for p in set(after) & set(before)
                         if after[p] != before[p] and p.is_file())  # a folder's time changes with a removed temporary
        assert created == [] and changed == [], (created, changed)
    finally:
        if bad.cleanup:
            bad.cleanup()


def warning_of_pydicom() -> None:
    warnings.warn_explicit("End of file reached before delimiter (FFFE,E0DD) found in file /scans/slice-023.dcm",
                           UserWarning, "/venv/lib/python3.11/site-packages/pydicom/filereader.py", 487)


@pytest.mark.parametrize("fails", [False, True])
def test_a_librarys_warning_is_one_line_after_a_run_and_none_after_a_failure(capsys, fails):
    """Python showed it in two lines (its place in the library's source, then that line), and beside
    the error line of a failed run."""
    from LiverLesionSegLib.cli import command_logging
    from LiverLesionSegLib.progress import NullProgress

    def run(args, progress):
        warning_of_pydicom()
        warning_of_pydicom()
        if fails:
            raise InputError("has no pixel data (a truncated file?)", "/scans/slice-023.dcm", "export the series again")
        return 0

    with command_logging(False, NullProgress()), python_warnings_shown():
        code = cli._run(argparse.Namespace(run=run, debug=False), NullProgress())
    err = capsys.readouterr().err
    if fails:
        assert code == 3 and err.splitlines() == ["liverlesionseg: error: /scans/slice-023.dcm: has no pixel data (a "
                                                  "truncated file?). Export the series again."]
    else:
        assert code == 0 and err.splitlines() == ["End of file reached before delimiter (FFFE,E0DD) found in file "
                                                  "/scans/slice-023.dcm (pydicom)"]


@contextlib.contextmanager
def python_warnings_shown():
    """Python's warnings on stderr, as a user's terminal shows them (pytest records them instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)  # as Python's own filters do
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        yield


def snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.name != "filler"}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- what looks broken but must work ------------------------------------------------------------------

def segment(input_path: Path, output: Path, model: Path, *extra: str) -> np.ndarray:
    """Run `liverlesionseg segment` and return the label map it wrote, as an array."""
    code = main(["segment", str(input_path), "-o", str(output), "--model", str(model), "--progress", "none",
                 *extra])
    assert code == 0
    return sitk.GetArrayFromImage(sitk.ReadImage(str(output)))


def read_back(path: Path):
    from LiverLesionSegLib.volume import Volume

    return Volume.from_sitk(sitk.ReadImage(str(path)))


@pytest.fixture
def six(data_dir, tmp_path) -> Path:
    """Six real consecutive CT slices of HCC_006, in their own folder."""
    bad_inputs.copy_slices(data_dir, tmp_path / "original")
    return tmp_path / "original"


@pytest.mark.parametrize("progress", ["none", "json"])
def test_a_command_leaves_the_logger_as_it_found_it(progress, tmp_path, capsys):
    """`main` called in a process that goes on (a test, a notebook): its log handler wrote to the
    command's stderr or stdout after it returned, which the caller may have closed ("I/O operation
    on closed file" at the next log line)."""
    logger = logging.getLogger("LiverLesionSeg")
    before = logger.level, logger.handlers[:], logger.propagate
    assert main(["segment", str(tmp_path / "missing"), "-o", str(tmp_path / "out.nii.gz"), "--progress",
                 progress]) != 0
    assert "missing" in capsys.readouterr().err
    assert (logger.level, logger.handlers, logger.propagate) == before


def test_unsorted_and_misnumbered_files_give_the_same_volume(six, tmp_path, model_path):
    """Files renamed in shuffled order, with instance numbers that lie: the same volume (slices
    sorted by position, never by name or number) and the same segmentation."""
    from LiverLesionSegLib.io.series_choice import read_ct_folder

    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    files = sorted(six.iterdir())
    order = [3, 0, 5, 1, 4, 2]
    for n, source in enumerate(files):
        target = shuffled / f"IMG{order[n]:04d}"  # no suffix, names in another order than positions
        shutil.copy(source, target)
        bad_inputs.edit(target, InstanceNumber=7)  # every slice claims the same number
    original, reordered = read_ct_folder(six), read_ct_folder(shuffled)
    np.testing.assert_array_equal(reordered.array, original.array)
    assert reordered.same_grid(original)
    assert np.array_equal(segment(shuffled, tmp_path / "a.nii.gz", model_path),
                          segment(six, tmp_path / "b.nii.gz", model_path))


def test_several_series_choose_one_say_so_and_never_mix(data_dir, six, tmp_path, model_path, capsys):
    """Two CT series of one phase in one folder: the one with more slices is chosen and the log says
    which and how to choose another; --series picks the other; no run mixes slices of both."""
    other = six / "other"
    uid = pydicom.uid.generate_uid()
    for path in bad_inputs.copy_slices(data_dir, other, n=4):  # the six are 1211's arterial phase ("10_AP_...")
        bad_inputs.edit(path, SeriesInstanceUID=uid, SeriesNumber=7, SeriesDescription="AP other recon")

    chosen = segment(six, tmp_path / "chosen.nii.gz", model_path)
    log = capsys.readouterr().err
    assert "chose series" in log and "not chosen: series 7 'AP other recon'" in log and "Pass the series" in log, log
    assert chosen.shape[0] == 6  # the six-slice series alone
    assert segment(six, tmp_path / "picked.nii.gz", model_path, "--series", "7").shape[0] == 4
    assert segment(six, tmp_path / "by-name.nii.gz", model_path, "--series", "AP other recon").shape[0] == 4


def test_equal_candidate_series_are_warned_about(data_dir, six, tmp_path, model_path, capsys):
    """Two series equally good by every rule: the one numbered last is taken, with a warning to pass --series."""
    other = six / "same size"
    uid = pydicom.uid.generate_uid()
    for path in bad_inputs.copy_slices(data_dir, other, n=6):
        bad_inputs.edit(path, SeriesInstanceUID=uid, SeriesNumber=9)
    segment(six, tmp_path / "out.nii.gz", model_path)
    assert "equally good candidates" in capsys.readouterr().err


def flip_in_plane(source: Path, target: Path) -> None:
    """The same slice stored mirrored: columns run right-to-left and rows bottom-to-top, with the
    orientation and position saying so. Physically nothing changes."""
    ds = pydicom.dcmread(source)
    rows, columns = ds.Rows, ds.Columns
    row_step, column_step = (float(v) for v in ds.PixelSpacing)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[::-1, ::-1]).tobytes()
    ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
    ds.ImagePositionPatient = [x + (columns - 1) * column_step, y + (rows - 1) * row_step, z]
    ds.save_as(target)


def test_flipped_orientation_gives_the_same_result_on_its_own_grid(six, tmp_path, model_path):
    """A series stored flipped left-right and front-back: the label map is written on the flipped
    grid, and voxel for voxel it is the original's, flipped back."""
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    for source in six.iterdir():
        flip_in_plane(source, flipped / source.name)
    original = segment(six, tmp_path / "original.nii.gz", model_path)
    mirrored = segment(flipped, tmp_path / "flipped.nii.gz", model_path)
    assert original.any()
    np.testing.assert_array_equal(mirrored[:, ::-1, ::-1], original)
    from LiverLesionSegLib.io.series_choice import read_ct_folder

    assert read_back(tmp_path / "flipped.nii.gz").same_grid(read_ct_folder(flipped))


def tilt_series(source_folder: Path, target: Path, degrees: float) -> None:
    """The slices turned about the left-right axis: an oblique series whose positions step along
    the tilted normal (a consistent oblique grid, not a gantry tilt)."""
    target.mkdir()
    angle = np.radians(degrees)
    column = np.array([0, np.cos(angle), np.sin(angle)])
    normal = np.cross([1, 0, 0], column)
    origin = None
    for source in sorted(source_folder.glob("*.dcm")):
        ds = pydicom.dcmread(source)
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        origin = position if origin is None else origin
        ds.ImageOrientationPatient = [1, 0, 0, *column.round(6)]
        ds.ImagePositionPatient = list((origin + (position[2] - origin[2]) * normal).round(4))
        ds.save_as(target / source.name)


def test_slightly_oblique_series_is_segmented_on_its_own_grid(six, tmp_path, model_path):
    """Decision: a series turned by up to `oblique.OBLIQUE_DEGREES` is segmented in the nearest axial
    voxel order (no resampling), and the result lies on the input's own oblique grid. (One turned
    farther is segmented on an axial grid holding it: `test_oblique.py`.)"""
    from LiverLesionSegLib.io.series_choice import read_ct_folder
    from LiverLesionSegLib.oblique import OBLIQUE_DEGREES

    tilt_series(six, tmp_path / "oblique", OBLIQUE_DEGREES - 1)
    volume = read_ct_folder(tmp_path / "oblique")
    assert not np.allclose(volume.direction, np.eye(3), atol=1e-3)
    labels = segment(tmp_path / "oblique", tmp_path / "oblique.nii.gz", model_path)
    assert labels.shape == volume.shape
    written = read_back(tmp_path / "oblique.nii.gz")
    assert written.same_grid(volume), (written.direction, volume.direction)
    straight = segment(six, tmp_path / "straight.nii.gz", model_path)
    assert np.array_equal(labels, straight)  # the same voxels: only the geometry differs



def test_oblique_and_flipped_series_get_a_dicom_seg_on_their_own_grid(six, tmp_path):
    """The DICOM SEG of an oblique or a flipped series reads back on that series' grid voxel for voxel
    (its frames placed by their plane positions, which follow the tilted normal)."""
    from LiverLesionSegLib.io.cases import find_input_ct
    from LiverLesionSegLib.io.dicomseg import read_seg_masks
    from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg

    tilt_series(six, tmp_path / "oblique", 20)
    (tmp_path / "flipped").mkdir()
    for source in six.iterdir():
        flip_in_plane(source, tmp_path / "flipped" / source.name)
    for name in ("oblique", "flipped"):
        found = find_input_ct(tmp_path / name)
        volume = found.read()
        labels = np.zeros(volume.shape, np.uint8)
        labels[1:4, 100:300, 50:200] = 1
        labels[2, 150:170, 60:90] = 2
        save_dicom_seg(tmp_path / f"{name}.dcm", volume.with_array(labels), found.series, ["m"])
        masks = read_seg_masks(tmp_path / f"{name}.dcm", volume)
        assert np.array_equal(masks["liver"], labels == 1) and np.array_equal(masks["lesion"], labels == 2), name

def gantry_tilt_series(source_folder: Path, target: Path, degrees: float) -> None:
    """Axial slices as a tilted gantry stores them: each shifted along y in proportion to its height."""
    shutil.copytree(source_folder, target)
    z_lowest = min(float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in target.iterdir())
    for path in target.iterdir():
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, round(y + (z - z_lowest) * np.tan(np.radians(degrees)), 4), z]
        ds.save_as(path)


def test_gantry_tilt_is_resampled_and_segmented(six, tmp_path, model_path, capsys):
    """A series from a tilted gantry (15 degrees): resampled onto a regular grid, as Slicer does,
    said in a warning; the label map lies on that grid, finds the liver as in the straight series,
    and its DICOM SEG references the original slices and reads back on the grid."""
    from LiverLesionSegLib.io.series_choice import read_ct_folder
    from LiverLesionSegLib.io.dicomseg import read_seg_masks

    gantry_tilt_series(six, tmp_path / "tilted", 15)
    grid = read_ct_folder(tmp_path / "tilted")
    assert grid.acquired is not None and grid.shape[1] > grid.acquired.shape[0]
    labels = segment(tmp_path / "tilted", tmp_path / "tilted.nii.gz", model_path)
    assert "a gantry tilt of 15.0 degrees" in capsys.readouterr().err
    assert read_back(tmp_path / "tilted.nii.gz").same_grid(grid)
    straight = segment(six, tmp_path / "straight.nii.gz", model_path)
    liver, straight_liver = np.count_nonzero(labels), np.count_nonzero(straight)
    assert straight_liver > 0 and abs(liver - straight_liver) < 0.1 * straight_liver, (liver, straight_liver)
    segment(tmp_path / "tilted", tmp_path / "tilted.dcm", model_path)
    seg = pydicom.dcmread(tmp_path / "tilted.dcm")
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "tilted").iterdir()}
    masks = read_seg_masks(tmp_path / "tilted.dcm", grid)
    agreement = np.mean((masks["liver"] | masks["lesion"]) == (labels > 0))
    assert agreement > 0.99, agreement


# --- the memory check -----------------------------------------------------------------------------------

def test_segmentation_memory_check_names_the_volume_and_the_way_out(six, tmp_path, model_path, capsys,
                                                                       monkeypatch):
    """With (simulated) 64 MiB free, six slices can be read but not segmented: one clear line,
    exit status 8, before any work; with the real memory the same run works."""
    from LiverLesionSegLib import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)
    code = main(["segment", str(six), "-o", str(tmp_path / "out.nii.gz"), "--model", str(model_path),
                 "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 8, err
    assert "segmenting this 512 x 512 x 6 voxel volume needs about" in err[-1] and "Crop Volume" in err[-1]
    assert not (tmp_path / "out.nii.gz").exists()
    monkeypatch.undo()
    assert segment(six, tmp_path / "out.nii.gz", model_path).shape == (6, 512, 512)


# --- the new-user pass, in CI ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["empty_folder", "file_size_limit_while_writing",
                                  "pickled_checkpoint_that_would_run_code"])
def test_installed_command_in_a_terminal(name, data_dir, model_path, tmp_path):
    """A few catalogue entries through the installed `liverlesionseg` in a pseudo-terminal, as a
    new user runs it (new_user_pass.py runs them all): one line, no traceback, nothing lost."""
    import new_user_pass

    outcome = new_user_pass.try_entry(name, data_dir, model_path, tmp_path)
    assert outcome is not None and outcome.problems == [], outcome
    assert outcome.last_line.startswith("liverlesionseg: error: ")


@pytest.mark.parametrize("name", ["x.nii.nii", "x.nii.gz.nii.gz", "L" * 240 + ".nii.gz", "patient.1.2.NRRD"])
def test_odd_but_legal_output_names_are_written_as_named_and_leave_nothing_else(name, six, tmp_path, model_path):
    """Doubled suffixes (ITK's NIfTI writer drops one: the temporary must be named by the format's
    suffix alone), a name near the file system's limit of 255 bytes, dots and upper case."""
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    labels = segment(six, out_folder / name, model_path)
    assert sorted(p.name for p in out_folder.iterdir()) == [name]
    assert labels.shape == (6, 512, 512)
