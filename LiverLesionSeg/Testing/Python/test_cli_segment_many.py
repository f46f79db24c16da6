"""`liverlesionseg segment A B C -o FOLDER`: several inputs, the model loaded once; one that cannot
be segmented is skipped and named, the others are written as they would be one at a time."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.cli import main
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.resources import sample_case_path


@pytest.fixture(autouse=True)
def _no_stray_log_handlers():
    yield
    logging.getLogger("LiverLesionSeg").handlers.clear()


def _labels(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("liverlesionseg: error: ")]


def test_several_inputs_are_written_as_one_at_a_time_and_a_bad_one_is_skipped(data_dir, model_path, tmp_path,
                                                                               capsys):
    case = data_dir / "tace" / "RadCTTACEomics_0697"
    sample = tmp_path / "sample"
    shutil.copytree(sample_case_path(), sample)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "results"
    code = main(["segment", str(case), str(tmp_path / "empty"), str(sample), "-o", str(out), "--format", "nii.gz",
                 "--lesions", str(out / "lesions.csv"), "--model", str(model_path), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 3, err  # the skipped input's kind: an input error
    errors = _error_lines(err)
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]
    assert "1 of 3 inputs could not be segmented" in errors[0] and str(tmp_path / "empty") in errors[0]
    assert "Skipped input 2 of 3" in err and "no DICOM files found" in err
    assert sorted(p.name for p in out.iterdir()) == ["RadCTTACEomics_0697.nii.gz", "lesions.csv", "sample.nii.gz"]
    # The same result as the command gives for each input alone.
    for name, given in (("RadCTTACEomics_0697", case), ("sample", sample)):
        alone = tmp_path / f"{name}-alone.nii.gz"
        assert main(["segment", str(given), "-o", str(alone), "--model", str(model_path), "--progress", "none"]) == 0
        assert np.array_equal(_labels(out / f"{name}.nii.gz"), _labels(alone)), name
    rows = list(csv.DictReader(open(out / "lesions.csv")))
    assert {row["case"] for row in rows} <= {"RadCTTACEomics_0697", "sample"} and rows


def test_folders_named_with_dots_keep_their_whole_names(model_path, tmp_path):
    """Case folders such as 3Dircadb1.1 and 3Dircadb1.17: each result is named after its whole folder
    name (as `evaluate --predictions` looks for it), not cut at the dot."""
    for name in ("case.1", "case.17"):
        shutil.copytree(sample_case_path(), tmp_path / name)
    out = tmp_path / "results"
    assert main(["segment", str(tmp_path / "case.1"), str(tmp_path / "case.17"), "-o", str(out), "--format",
                 "nii.gz", "--model", str(model_path), "--progress", "none"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["case.1.nii.gz", "case.17.nii.gz"]


def test_dicom_seg_results_skip_an_input_that_is_no_dicom(data_dir, model_path, tmp_path, capsys):
    """`--format dcm --sr --rtstruct`: a SEG, a lesion report and a structure set over each DICOM
    input's series; a NIfTI input cannot have them, and nothing of it is written. JSON progress
    gives an event per result and a last one listing what was skipped."""
    import highdicom as hd

    from LiverLesionSegLib.io.rtstruct import read_rtstruct_masks

    ct = read_input_volume(sample_case_path())
    sitk.WriteImage(ct.to_sitk(), str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "results"
    code = main(["segment", str(sample_case_path()), str(tmp_path / "ct.nii.gz"), "-o", str(out), "--format", "dcm",
                 "--model", str(model_path), "--progress", "json", "--sr", "--rtstruct"])
    captured = capsys.readouterr()
    assert code == 6, captured.err  # the skipped input's kind: an output that cannot be made
    events = [json.loads(line) for line in captured.out.splitlines()]
    cases = [e for e in events if e["event"] == "case"]
    assert [e["output"] for e in cases] == [str(out / f"{sample_case_path().name}.dcm")]
    assert events[-2]["event"] == "done" and events[-2]["written"] == 1
    assert events[-2]["skipped"] == [str(tmp_path / "ct.nii.gz")] and events[-1]["event"] == "error"
    assert 0 < events[-2]["load_model_seconds"] < events[-2]["seconds"]  # the model is loaded once, for both
    name = sample_case_path().name
    assert sorted(p.name for p in out.iterdir()) == [f"{name} RS.dcm", f"{name} SR.dcm", f"{name}.dcm"]
    masks = read_seg_masks(out / f"{name}.dcm", ct)
    assert masks["liver"].any()
    contoured = read_rtstruct_masks(out / f"{name} RS.dcm", ct)
    assert np.array_equal(contoured["liver"], masks["liver"] | masks["lesion"])
    assert np.array_equal(contoured["lesion"], masks["lesion"])
    report = hd.sr.srread(out / f"{name} SR.dcm")
    assert len(report.content.get_planar_roi_measurement_groups()) == cases[0]["lesions"]


def test_missing_inputs_and_clashing_names_are_refused_before_any_work(data_dir, model_path, tmp_path, capsys):
    case = data_dir / "tace" / "RadCTTACEomics_0697"
    out = tmp_path / "results"
    code = main(["segment", str(case), str(tmp_path / "typo"), "-o", str(out), "--progress", "none"])
    assert code == 3 and "typo: does not exist" in _error_lines(capsys.readouterr().err)[0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copytree(sample_case_path(), tmp_path / "a" / "ct")
    shutil.copytree(sample_case_path(), tmp_path / "b" / "ct")
    code = main(["segment", str(tmp_path / "a" / "ct"), str(tmp_path / "b" / "ct"), "-o", str(out),
                 "--progress", "none"])
    assert code == 6 and "would both be written as ct" in _error_lines(capsys.readouterr().err)[0]
    code = main(["segment", str(case), str(case), "-o", str(out), "--overlay", str(tmp_path / "o.png"),
                 "--progress", "none"])
    assert code == 6 and "--overlay take one input" in _error_lines(capsys.readouterr().err)[0]
    code = main(["segment", str(case), str(case), "-o", str(out), "--lesions", str(tmp_path / "report.dcm"),
                 "--progress", "none"])
    assert code == 6 and "a DICOM SR lesion report lies on one CT series" in _error_lines(capsys.readouterr().err)[0]
    code = main(["segment", str(case), str(case), "-o", str(out), "--rtstruct", str(tmp_path / "rs.dcm"),
                 "--progress", "none"])
    error = _error_lines(capsys.readouterr().err)[0]
    assert code == 6 and "an RT structure set lies on one CT series" in error and "without a file name" in error
    assert not out.exists()  # nothing made, not even the folder
    code = main(["segment", str(case), "-o", str(tmp_path / "x.nii.gz"), "--format", "dcm", "--progress", "none"])
    assert code == 6 and "--format is for several inputs" in _error_lines(capsys.readouterr().err)[0]
    # the same input twice is said as such, not as two inputs "both written as" one name
    code = main(["segment", str(case), str(case) + "/", "-o", str(out), "--progress", "none"])
    assert code == 3 and f"{case}: is given twice among the inputs" in _error_lines(capsys.readouterr().err)[0]


def test_an_input_given_as_dot_is_named_after_its_folder(tmp_path, monkeypatch):
    """`segment . other.nii -o results`: the current folder's result was the hidden `.seg.nrrd`."""
    from LiverLesionSegLib.commands.segment import case_name

    (tmp_path / "ct_dcm" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "ct_dcm" / "sub")
    assert case_name(Path(".")) == "sub" and case_name(Path("..")) == "ct_dcm"
    assert case_name(Path("../sub")) == "sub"


def test_a_rerun_says_which_results_are_left_from_an_earlier_run(model_path, tmp_path, capsys):
    """An input that fails this time keeps the earlier run's result in the folder: said, not silent."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()  # empty folders: refused when read
    out = tmp_path / "results"
    out.mkdir()
    (out / "a.nii.gz").write_bytes(b"an earlier result")
    code = main(["segment", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out), "--format", "nii.gz",
                 "--model", str(model_path), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 3 and f"Left as it was, from an earlier run: {out / 'a.nii.gz'}" in err
    assert err.count("Left as it was") == 1 and "none was written" in err
    assert (out / "a.nii.gz").read_bytes() == b"an earlier result"


def test_one_input_and_an_existing_folder_as_the_output_is_written_into_it(model_path, tmp_path, capsys):
    """`segment CT -o results/` with one input: FOLDER/NAME.seg.nrrd (or --format's), as for several
    inputs; before, "unknown output format"."""
    folder = tmp_path / "results"
    folder.mkdir()
    argv = ["segment", str(sample_case_path()), "-o", str(folder), "--model", str(model_path), "--progress", "none"]
    assert main(argv) == 0
    assert main(argv + ["--format", "nii.gz"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["HCC_006_sample.nii.gz", "HCC_006_sample.seg.nrrd"]
    assert _labels(folder / "HCC_006_sample.nii.gz").max() == 2


def test_an_input_name_too_long_among_several_is_told_before_any_work(tmp_path, capsys):
    folder = tmp_path / "results"
    code = main(["segment", str(sample_case_path()), str(tmp_path / ("L" * 300)), "-o", str(folder),
                 "--progress", "none"])
    assert code == 3 and "cannot be looked up (File name too long)" in _error_lines(capsys.readouterr().err)[0]
    assert not folder.exists()
