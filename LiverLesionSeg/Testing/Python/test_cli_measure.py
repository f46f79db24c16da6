"""`liverlesionseg measure CT SEGMENTATION`: a segmentation made elsewhere, measured on a real DICOM
case and written on as a DICOM SEG and a DICOM SR report over the CT's series, or as another format;
bad inputs and outputs refused in one line with nothing written."""

from __future__ import annotations

import csv
import json

import highdicom as hd
import matplotlib.image
import numpy as np
import pydicom
import pytest

from bad_inputs import relabelled_as_spleen
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.io.images import read_image
from LiverLesionSegLib.io.rtstruct import read_rtstruct_masks
from LiverLesionSegLib.io.write import write_image, write_segmentation_output
from LiverLesionSegLib.lesions import lesion_table
from LiverLesionSegLib.resources import sample_case_path
from LiverLesionSegLib.volume import Volume
from slicer_logic_cases import file_digest

CASE = "tace/RadCTTACEomics_1211"
SERIES = "10_AP_Ax2.50mm"


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """The case's reference segmentation as a NIfTI label map (what ITK-SNAP would save), its CT
    and its lesion table."""
    case = load_case(find_cases([data_dir / CASE])[0])
    labels = case.liver.array.copy()
    labels[case.lesion.array > 0] = 2
    path = tmp_path_factory.mktemp("reference") / "labels.nii.gz"
    write_segmentation_output(path, case.ct.with_array(labels))
    return path, case.ct, labels, lesion_table(case.lesion, case.ct)


def measure(*argv) -> int:
    return main(["measure", *map(str, argv), "--progress", "none"])


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_label_map_measured_and_written_as_dicom_seg_and_report(reference, data_dir, tmp_path, capsys):
    """`--lesions report.dcm -o seg.dcm`; `--sr` and a bare `--rtstruct` write the same report and
    the structure set beside the SEG."""
    labels_path, ct, labels, expected = reference
    code = measure(data_dir / CASE / SERIES, labels_path, "--lesions", tmp_path / "report.dcm",
                   "-o", tmp_path / "seg.dcm", "--sr", "--rtstruct")
    out = capsys.readouterr().out
    assert code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.dcm", "seg RS.dcm", "seg SR.dcm", "seg.dcm"]
    contoured = read_rtstruct_masks(tmp_path / "seg RS.dcm", ct)
    assert np.array_equal(contoured["liver"], labels > 0) and np.array_equal(contoured["lesion"], labels == 2)
    beside = hd.sr.srread(tmp_path / "seg SR.dcm").content.get_planar_roi_measurement_groups()
    assert [{m.name.meaning: m.value for m in group.get_measurements()}["Volume"] for group in beside] == \
        pytest.approx([lesion.volume_ml for lesion in expected], rel=1e-6)
    assert f"Lesions: {len(expected)}" in out and f"lesion 1: {expected[0].volume_ml:.2f} mL" in out
    masks = read_seg_masks(tmp_path / "seg.dcm", ct)
    assert np.array_equal(masks["lesion"] > 0, labels == 2)
    assert np.array_equal((masks["liver"] | masks["lesion"]) > 0, labels > 0)
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    report = hd.sr.srread(tmp_path / "report.dcm")
    groups = report.content.get_planar_roi_measurement_groups()
    volumes = [{m.name.meaning: m.value for m in group.get_measurements()}["Volume"] for group in groups]
    assert volumes == pytest.approx([lesion.volume_ml for lesion in expected], rel=1e-6)


def test_the_written_seg_measures_as_the_label_map_did(reference, data_dir, tmp_path):
    labels_path, _, _, expected = reference
    ct = data_dir / CASE / SERIES
    assert measure(ct, labels_path, "--lesions", tmp_path / "first.csv", "-o", tmp_path / "seg.dcm") == 0
    assert measure(ct, tmp_path / "seg.dcm", "--lesions", tmp_path / "again.csv") == 0
    first, again = rows(tmp_path / "first.csv"), rows(tmp_path / "again.csv")
    assert len(first) == len(expected) >= 2
    assert first == again
    assert [float(row["longest_axial_diameter_mm"]) for row in first] == pytest.approx(
        [lesion.longest_axial_diameter_mm for lesion in expected])


def test_a_label_map_converted_to_a_slicer_segmentation_with_an_overlay(reference, data_dir, tmp_path):
    labels_path, ct, labels, _ = reference
    assert measure(data_dir / CASE / SERIES, labels_path, "-o", tmp_path / "out.seg.nrrd",
                   "--overlay", tmp_path / "look.png") == 0
    written = read_image(tmp_path / "out.seg.nrrd")
    assert written.same_grid(ct) and np.array_equal(written.array, labels)
    picture = matplotlib.image.imread(tmp_path / "look.png")
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture[..., :3].std() > 0.05  # an image, not blank


def test_a_liver_seg_and_a_tumour_seg_measured_together(reference, data_dir, tmp_path, capsys):
    """HCC-TACE-Seg's layout: the liver and the tumours in two DICOM SEG files, united."""
    _, ct, labels, expected = reference
    case = data_dir / CASE
    assert measure(case / SERIES, case / f"{SERIES}_ManualROI_Liver.dcm", case / f"{SERIES}_ManualROI_Tumor.dcm",
                   "-o", tmp_path / "both.nii.gz", "--lesions", tmp_path / "t.csv") == 0
    assert f"Lesions: {len(expected)}" in capsys.readouterr().out
    assert np.array_equal(read_image(tmp_path / "both.nii.gz").array, labels)
    assert [float(row["volume_ml"]) for row in rows(tmp_path / "t.csv")] == pytest.approx(
        [lesion.volume_ml for lesion in expected])


def test_a_tumour_seg_alone_is_measured_without_a_liver(reference, data_dir, tmp_path, capsys):
    """A reader who drew the tumours only (the real tumour SEG, no liver SEG): the lesions are
    measured, the liver is reported as not segmented, and the SEG and the SR written hold the
    lesions alone (no empty or made-up liver)."""
    _, ct, labels, expected = reference
    case = data_dir / CASE
    assert measure(case / SERIES, case / f"{SERIES}_ManualROI_Tumor.dcm", "-o", tmp_path / "seg.dcm",
                   "--lesions", tmp_path / "report.dcm") == 0
    out = capsys.readouterr().out
    assert "Liver: not segmented" in out and f"Lesions: {len(expected)}" in out and "% of the liver" not in out
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [(item.SegmentNumber, item.SegmentLabel) for item in seg.SegmentSequence] == [(1, "Liver lesion")]
    assert seg.SeriesDescription == "Liver lesions (LiverLesionSeg, corrected)"
    masks = read_seg_masks(tmp_path / "seg.dcm", ct)
    assert set(masks) == {"lesion"} and np.array_equal(masks["lesion"] > 0, labels == 2)
    report = hd.sr.srread(tmp_path / "report.dcm")
    assert report.content.get_image_measurement_groups() == []  # where the liver's volume would be
    volumes = [{m.name.meaning: m.value for m in group.get_measurements()}["Volume"]
               for group in report.content.get_planar_roi_measurement_groups()]
    assert volumes == pytest.approx([lesion.volume_ml for lesion in expected], rel=1e-6)
    # the lesion-only SEG written measures again to the same lesions, still without a liver
    assert measure(case / SERIES, tmp_path / "seg.dcm", "--lesions", tmp_path / "again.csv") == 0
    assert "Liver: not segmented" in capsys.readouterr().out
    assert [float(row["volume_ml"]) for row in rows(tmp_path / "again.csv")] == pytest.approx(volumes)


def test_a_label_map_of_lesions_only_is_written_without_a_liver(reference, data_dir, tmp_path, capsys):
    labels_path, ct, labels, expected = reference
    lesions_only = tmp_path / "lesions.nii.gz"
    write_segmentation_output(lesions_only, ct.with_array(np.where(labels == 2, 2, 0).astype(np.uint8)))
    assert main(["measure", str(data_dir / CASE / SERIES), str(lesions_only), "-o", str(tmp_path / "out.nrrd"),
                 "--lesions", str(tmp_path / "t.csv"), "--progress", "json"]) == 0
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert done["event"] == "done" and done["liver_ml"] is None and done["lesions"] == len(expected)
    assert np.array_equal(read_image(tmp_path / "out.nrrd").array, np.where(labels == 2, 2, 0))
    assert len(rows(tmp_path / "t.csv")) == len(expected)


def test_masks_of_one_label_are_read_as_their_file_names_say(reference, data_dir, tmp_path, capsys):
    """A reader's tumour mask saved 0/1 ("tumour.nii.gz") or 0/255 ("GTV.nrrd"), and a liver mask of
    0/255 ("Leber.nii.gz"), as other tools save them: read as their names say, with a warning. Before,
    the tumour mask of 1s was measured as a liver without lesions. A 0/1 map named for the liver and
    its tumours stays a label map; 255 in a file whose name says nothing is refused."""
    labels_path, ct, labels, expected = reference
    liver_ml = float((labels > 0).sum() * np.prod(ct.spacing) / 1000)
    for name, value in [("tumour.nii.gz", 1), ("GTV.nrrd", 255)]:
        write_segmentation_output(tmp_path / name, ct.with_array(np.where(labels == 2, value, 0).astype(np.uint8)))
    write_segmentation_output(tmp_path / "Leber.nii.gz", ct.with_array(np.where(labels > 0, 255, 0).astype(np.uint8)))
    for given, liver in [(["tumour.nii.gz"], None), (["GTV.nrrd"], None),
                         (["Leber.nii.gz", "tumour.nii.gz"], liver_ml)]:
        assert main(["measure", str(data_dir / CASE / SERIES), *[str(tmp_path / n) for n in given],
                     "--lesions", str(tmp_path / "t.csv"), "--progress", "json"]) == 0
        printed = capsys.readouterr()
        done = json.loads(printed.out.splitlines()[-1])
        assert done["lesions"] == len(expected)
        assert done["liver_ml"] == (None if liver is None else pytest.approx(liver, rel=1e-3))
        label = 1 if given[0] == "tumour.nii.gz" else 255
        assert f"{given[0]}: holds one label ({label}) and is named as" in printed.out
    for name in ("liver_tumor.nii.gz", "HCC_1211.nii.gz"):  # a 0/1/2 map of a case without tumour; a liver's size
        write_segmentation_output(tmp_path / name, ct.with_array((labels > 0).astype(np.uint8)))
        assert measure(data_dir / CASE / SERIES, tmp_path / name, "--lesions", tmp_path / "t.csv") == 0
        assert rows(tmp_path / "t.csv") == []
    write_segmentation_output(tmp_path / "mask.nii.gz", ct.with_array(np.where(labels == 2, 255, 0).astype(np.uint8)))
    assert measure(data_dir / CASE / SERIES, tmp_path / "mask.nii.gz", "--lesions", tmp_path / "u.csv") == 3
    assert "holds label(s) 255 besides 0 background" in capsys.readouterr().err
    assert not (tmp_path / "u.csv").exists()


def test_swapped_labels_are_measured_with_a_caution(reference, data_dir, tmp_path, capsys):
    """1 and 2 swapped (a tool that numbers lesions first): the "lesions" make up most of the liver,
    which a caution now says; the right labels get none."""
    labels_path, ct, labels, _ = reference
    swapped = np.select([labels == 1, labels == 2], [2, 1], 0).astype(np.uint8)
    write_segmentation_output(tmp_path / "swapped.nii.gz", ct.with_array(swapped))
    cautions = []
    for given in (tmp_path / "swapped.nii.gz", labels_path):
        assert measure(data_dir / CASE / SERIES, given, "--lesions", tmp_path / f"{given.name}.csv") == 0
        cautions.append([line for line in capsys.readouterr().err.splitlines() if "Caution" in line])
    assert len(cautions[0]) == 1 and "of the liver: if they do not, the labels may be swapped" in cautions[0][0]
    assert "swapped.nii.gz" in cautions[0][0] and cautions[1] == []


def test_empty_structures_read_as_an_empty_label_map(reference, data_dir, tmp_path, capsys):
    """An RT structure set whose liver and lesion ROIs hold no contour says what an empty label map
    says ("not segmented", no lesion), not "Liver: 0.0 mL"."""
    labels_path, ct, labels, _ = reference
    assert measure(data_dir / CASE / SERIES, labels_path, "-o", tmp_path / "seg.dcm", "--rtstruct") == 0
    structures = pydicom.dcmread(tmp_path / "seg RS.dcm")
    for roi in structures.ROIContourSequence:
        del roi.ContourSequence
    structures.save_as(tmp_path / "empty RS.dcm")
    write_segmentation_output(tmp_path / "empty.nii.gz", ct.with_array(np.zeros_like(labels)))
    capsys.readouterr()
    outputs = []
    for given in ("empty RS.dcm", "empty.nii.gz"):
        assert measure(data_dir / CASE / SERIES, tmp_path / given, "--lesions", tmp_path / f"{given}.csv") == 0
        outputs.append(capsys.readouterr().out.splitlines()[-1])
    assert outputs[0] == outputs[1] and "Liver: not segmented" in outputs[0]


@pytest.mark.slow
def test_segment_and_measure_agree_on_the_sample_case(model_path, tmp_path):
    """The DICOM SEG `segment` writes, measured, gives the lesion table `segment` wrote."""
    sample = sample_case_path()
    assert main(["segment", str(sample), "-o", str(tmp_path / "seg.dcm"), "--lesions", str(tmp_path / "a.csv"),
                 "--model", str(model_path), "--progress", "none"]) == 0
    assert measure(sample, tmp_path / "seg.dcm", "--lesions", tmp_path / "b.csv") == 0
    first, again = rows(tmp_path / "a.csv"), rows(tmp_path / "b.csv")
    assert len(first) >= 1 and first == again


# --- refused in one line, nothing written -----------------------------------------------------------

def test_a_label_map_of_another_grid_is_refused_and_outputs_kept(reference, data_dir, tmp_path, capsys):
    labels_path, ct, labels, _ = reference
    cropped = tmp_path / "cropped.nii.gz"  # one slice fewer than the CT
    write_segmentation_output(cropped, Volume(labels[:-1].copy(), ct.spacing, ct.origin, ct.direction))
    existing = tmp_path / "report.dcm"
    existing.write_bytes(b"an earlier report")
    digest = file_digest(existing)
    code = measure(data_dir / CASE / SERIES, cropped, "--lesions", existing, "-o", tmp_path / "seg.dcm")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert len(err) == 1 and "cropped.nii.gz: the label map has" in err[0]
    assert file_digest(existing) == digest and not (tmp_path / "seg.dcm").exists()


def test_dicom_outputs_for_a_nifti_ct_are_refused_before_any_work(reference, tmp_path, capsys):
    labels_path, ct, _, _ = reference
    nifti = tmp_path / "ct.nii.gz"
    write_image(nifti, ct)
    code = measure(nifti, labels_path, "--lesions", tmp_path / "report.dcm")
    err = capsys.readouterr().err
    assert code == 6 and "a DICOM SR lesion report must lie on a DICOM series" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


def test_no_output_or_an_output_over_an_input_is_refused(reference, data_dir, tmp_path, capsys):
    labels_path, _, _, _ = reference
    assert measure(data_dir / CASE / SERIES, labels_path) == 6
    assert "no output given" in capsys.readouterr().err
    assert measure(data_dir / CASE / SERIES, labels_path, "--lesions", tmp_path / "t.csv", "--rtstruct") == 6
    assert "write beside the -o output, and none was given" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()
    digest = file_digest(labels_path)
    assert measure(data_dir / CASE / SERIES, labels_path, "-o", labels_path) == 6
    assert "would overwrite the input" in capsys.readouterr().err
    assert file_digest(labels_path) == digest
    # two outputs of one name: the one named twice is the one named in the error
    assert measure(data_dir / CASE / SERIES, labels_path, "-o", tmp_path / "seg.nrrd", "--lesions", tmp_path / "t.png",
                   "--overlay", tmp_path / "t.png") == 6
    assert f"{tmp_path / 't.png'}: two outputs have the same name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_segmentations_of_neither_liver_nor_lesion_are_refused(data_dir, tmp_path, capsys):
    """Two real SEGs whose only segment is relabelled as another organ (a spleen)."""
    case = data_dir / CASE
    spleens = [relabelled_as_spleen(case / f"{SERIES}_ManualROI_{part}.dcm", tmp_path / f"spleen-{part}.dcm")
               for part in ("Liver", "Tumor")]
    code = measure(case / SERIES, *spleens, "--lesions", tmp_path / "t.csv")
    err = capsys.readouterr().err
    assert code == 3 and "none of the 2 segmentations holds a liver or a lesion segment" in err
    assert measure(case / SERIES, spleens[0], "--lesions", tmp_path / "t.csv") == 3
    assert "spleen-Liver.dcm: the DICOM SEG has neither a liver nor a lesion segment" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_a_missing_segmentation_is_named(data_dir, tmp_path, capsys):
    code = measure(data_dir / CASE / SERIES, tmp_path / "nowhere.nii.gz", "--lesions", tmp_path / "t.csv")
    err = capsys.readouterr().err
    assert code == 3 and "nowhere.nii.gz: does not exist" in err and not (tmp_path / "t.csv").exists()


def test_a_segmentation_name_too_long_for_the_file_system_is_told(tmp_path, capsys):
    code = measure(sample_case_path(), tmp_path / ("L" * 300), "--lesions", tmp_path / "t.csv")
    assert code == 3 and "cannot be looked up (File name too long)" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()
