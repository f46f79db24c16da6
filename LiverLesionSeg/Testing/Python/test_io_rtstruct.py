"""RT structure sets (RTSTRUCT) read as liver and lesion masks on their CT: files written by rt-utils
(an independent writer: OpenCV traces each slice's mask into contours, as planning systems export
them) from a real case's reference masks over its real DICOM series; as `measure` input, as a
training case beside its series, on a gantry-tilted series, and what cannot lie on the CT refused
in one line. And written (`rtstruct_write`, `segment`/`measure --rtstruct`): read back exactly, by
rt-utils too, its contours on the series' own slices."""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

rt_utils = pytest.importorskip("rt_utils", reason="rt-utils writes the test structure sets (setup.sh installs it)")

from bad_inputs import moved_contours, write_rtstruct  # noqa: E402
from test_io_regularize import copy_slices, tilted_copy  # noqa: E402
from LiverLesionSegLib.cli import main  # noqa: E402
from LiverLesionSegLib.errors import GeometryError, InputError  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, find_input_ct, load_case, read_segmentations  # noqa: E402
from LiverLesionSegLib.io.series_choice import read_ct_folder  # noqa: E402
from LiverLesionSegLib.io.rtstruct import is_rtstruct, read_rtstruct_masks, roi_meaning  # noqa: E402
from LiverLesionSegLib.io.rtstruct_write import save_rtstruct  # noqa: E402
from LiverLesionSegLib.lesions import lesion_table  # noqa: E402
from LiverLesionSegLib.metrics import dice  # noqa: E402

CASE = "tace/RadCTTACEomics_1211"
SERIES = "10_AP_Ax2.50mm"


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """The case, and an RTSTRUCT of its reference liver and tumours beside two ROIs to leave out."""
    case = load_case(find_cases([data_dir / CASE])[0])
    liver, lesion = case.liver.array > 0, case.lesion.array > 0
    ptv = np.zeros_like(lesion)  # a planning margin around the tumour: not a lesion
    ks, js, is_ = np.nonzero(lesion)
    ptv[ks.min():ks.max() + 1, js.min() - 5:js.max() + 6, is_.min() - 5:is_.max() + 6] = True
    cord = np.zeros_like(lesion)
    cord[:, 300:320, 250:270] = True
    path = write_rtstruct(data_dir / CASE / SERIES, {"Liver": liver, "GTV": lesion, "PTV": ptv, "SpinalCord": cord},
                          tmp_path_factory.mktemp("rtstruct") / "structures.dcm")
    return case, path


def test_liver_and_tumour_contours_read_back_on_the_ct(reference, caplog):
    case, path = reference
    assert is_rtstruct(path)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        masks = read_rtstruct_masks(path, case.ct)
    assert "left out 2 ROIs that are neither liver nor lesion by name: 'PTV', 'SpinalCord'" in caplog.text
    assert "NumberOfContourPoints" not in caplog.text  # rt-utils counts its points right
    assert set(masks) == {"liver", "lesion"}  # the margin and the spinal cord are left out
    assert masks["liver"].shape == case.ct.shape
    assert dice(masks["liver"] > 0, case.liver.array > 0) > 0.999
    assert dice(masks["lesion"] > 0, case.lesion.array > 0) > 0.999
    ours = lesion_table(case.ct.with_array(masks["lesion"]), case.ct)
    assert [lesion.volume_ml for lesion in ours] == pytest.approx(
        [lesion.volume_ml for lesion in lesion_table(case.lesion, case.ct)], rel=0.01)


def test_an_rtstruct_is_measured_like_a_seg(reference, data_dir, tmp_path, capsys):
    case, path = reference
    assert main(["measure", str(data_dir / CASE / SERIES), str(path), "--lesions", str(tmp_path / "t.csv"),
                 "-o", str(tmp_path / "seg.nii.gz"), "--progress", "none"]) == 0
    expected = lesion_table(case.lesion, case.ct)
    assert f"Lesions: {len(expected)}" in capsys.readouterr().out
    with open(tmp_path / "t.csv", newline="") as f:
        volumes = [float(row["volume_ml"]) for row in csv.DictReader(f)]
    assert volumes == pytest.approx([lesion.volume_ml for lesion in expected], rel=0.01)


def test_a_ct_folder_with_its_rtstruct_is_a_training_case(reference, data_dir, tmp_path):
    """The series and the RTSTRUCT that references it, in one case folder (the series linked)."""
    case, path = reference
    folder = tmp_path / "planning-case"
    folder.mkdir()
    os.symlink(data_dir / CASE / SERIES, folder / "ct")
    shutil.copy(path, folder / "RS.structures.dcm")
    refs = find_cases([tmp_path])
    assert [(ref.name, ref.kind) for ref in refs] == [("planning-case", "dicom-seg")]
    loaded = load_case(refs[0])
    assert loaded.ct.same_grid(case.ct)
    assert dice(loaded.liver.array > 0, case.liver.array > 0) > 0.999
    assert dice(loaded.lesion.array > 0, case.lesion.array > 0) > 0.999


def test_a_contour_inside_another_is_a_hole(data_dir, tmp_path):
    series = copy_slices(data_dir, tmp_path / "ct", range(100, 104))
    ct = read_ct_folder(series)
    ring = np.zeros(ct.shape, bool)
    ring[1:3, 150:300, 150:300] = True
    ring[1:3, 200:250, 200:250] = False  # a vessel through the liver, say
    masks = read_rtstruct_masks(write_rtstruct(series, {"Liver": ring}, tmp_path / "rs.dcm"), ct)
    assert not masks["liver"][1:3, 202:248, 202:248].any()  # the hole stays empty
    assert dice(masks["liver"] > 0, ring) > 0.98


def test_contours_of_a_tilted_series_lie_on_its_own_slices(data_dir, tmp_path):
    """A gantry tilt (one row of shift a slice): the slices and their contours are shifted alike, and
    the masks land on the regular grid the CT is resampled to as the slices' pixels do."""
    straight = copy_slices(data_dir, tmp_path / "straight", range(100, 106))
    volume = read_ct_folder(straight)
    mask = np.zeros(volume.shape, bool)
    mask[:, 150:330, 60:260] = True
    path = write_rtstruct(straight, {"Tumor": mask}, tmp_path / "rs.dcm")
    z0, step, dy = volume.origin[2], volume.spacing[2], volume.spacing[1]

    def shift(z: float) -> float:
        return (z - z0) / step * dy

    tilted = tilted_copy((straight, volume), tmp_path, 1.0)
    tilted_path = moved_contours(path, tmp_path / "tilted-rs.dcm",
                                 lambda points: np.outer(np.ones(len(points)), [0.0, shift(points[0, 2]), 0.0]))
    grid = find_input_ct(tilted).read()
    assert grid.acquired is not None
    lesion = read_rtstruct_masks(tilted_path, grid)["lesion"]
    rows = volume.shape[1]
    for k in range(volume.shape[0]):
        k_grid = int(round((z0 + k * step - grid.origin[2]) / grid.spacing[2]))
        np.testing.assert_array_equal(lesion[k_grid, k_grid:k_grid + rows], mask[k])


def test_pydicoms_own_structure_set_reads_on_its_grid(tmp_path):
    """Another writer's file: pydicom's test structure set, a bare dataset (no preamble, no file meta)
    without image references, its contours closed by repeating the first point, drawn both ways
    round. Its body ROI, renamed "Liver", fills the rectangle it outlines on each of its slices."""
    from pydicom.data import get_testdata_file

    from LiverLesionSegLib.volume import Volume

    source = Path(get_testdata_file("rtstruct.dcm"))
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(source)  # pydicom alone refuses it
    assert is_rtstruct(source)
    grid = Volume(np.zeros((3, 65, 85), np.int16), (5.0, 5.0, 10.0), (-210.0, -160.0, -200.0), np.eye(3))
    with pytest.raises(InputError, match="has neither a liver nor a lesion segment"):
        read_segmentations([source], grid, require_liver=False)  # its ROIs: patient, two isocentres
    renamed = pydicom.dcmread(source, force=True)
    renamed.StructureSetROISequence[0].ROIName = "Liver"
    renamed.save_as(tmp_path / "liver.dcm", enforce_file_format=False)
    expected = np.zeros(grid.shape, bool)
    expected[:, 2:63, 2:83] = True  # x -200..200, y -150..150 mm
    np.testing.assert_array_equal(read_rtstruct_masks(tmp_path / "liver.dcm", grid)["liver"], expected)


@pytest.mark.parametrize("name, interpreted, meaning", [
    ("Liver", "ORGAN", "liver"), ("Liver-GTV", "ORGAN", "liver"), ("liver_minus_gtv", "", "liver"),
    ("Liver lesion", "", "lesion"), ("GTV", "GTV", "lesion"), ("GTV_liver", "", "lesion"), ("T1", "GTV", "lesion"), ("Tumor 2", "", "lesion"),
    ("HCC", "", "lesion"), ("PTV", "PTV", None), ("CTV_5mm", "CTV", None), ("SpinalCord", "ORGAN", None),
    ("Stomach", "AVOIDANCE", None), ("liver_lesion", "", "lesion"), ("Liver-lesion 2", "", "lesion"),
    ("Liver vessels", "", None), ("Hepatic vein", "", None), ("liver cyst", "", None),
    ("cystic metastasis", "", "lesion"),
    # other languages, with their accents or without
    ("Leber", "", "liver"), ("Lebermetastase 1", "", "lesion"), ("Leberzyste", "", None), ("Pfortader", "", None),
    ("Läsion 3", "", "lesion"), ("Foie", "", "liver"), ("lésion hépatique", "", "lesion"), ("Tumeur", "", "lesion"),
    ("Hígado", "", "liver"), ("quiste hepático", "", None), ("Fegato", "", "liver"), ("Fígado", "", "liver"),
    ("lesão", "", "lesion"), ("Lever", "", "liver"), ("肝脏", "", "liver"), ("肝癌", "", "lesion"),
    ("肝腫瘍", "", "lesion"), ("肝血管", "", None), ("Niere", "", None),
    ("간", "", "liver"), ("간 종양", "", "lesion"), ("간암 2", "", "lesion"), ("간전이", "", "lesion"),
    ("간 (종양 포함)", "", "liver"), ("간혈관", "", None), ("간 낭종", "", None), ("간혈관종", "", "lesion"),
    ("신장", "", None),
    # benign tumours (were left out as background)
    ("Hemangioma", "", "lesion"), ("Hämangiom", "", "lesion"), ("FNH", "", "lesion"), ("Adenoma 2", "", "lesion"),
    ("肝血管瘤", "", "lesion"),
    # the whole organ named with its lesions (was one liver-sized lesion)
    ("Liver incl. tumor", "", "liver"), ("Liver with lesions", "", "liver"), ("Tumour-free liver", "", "liver"),
    ("Leber mit Tumor", "", "liver"), ("Liver + HCC", "", "liver"), ("Liver tumor", "", "lesion"),
    ("Tumor in liver", "", "lesion")])
def test_rois_sorted_by_name_and_interpreted_type(name, interpreted, meaning):
    """As segment names are read everywhere (Slicer's segments, .seg.nrrd, DICOM SEG labels), and
    an unnamed ROI whose interpreted type is GTV as a lesion."""
    assert roi_meaning(name, interpreted) == meaning


# --- written -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(reference, data_dir, tmp_path_factory):
    """The reference as 0/1/2 labels, written as an RT structure set over the case's series."""
    case, _ = reference
    labels = (case.liver.array > 0).astype(np.uint8)
    labels[case.lesion.array > 0] = 2
    found = find_input_ct(data_dir / CASE)
    found.close()
    path = tmp_path_factory.mktemp("written") / "rs.dcm"
    save_rtstruct(path, case.ct.with_array(labels), found.series, ["a model.safetensors"])
    return case, labels, found.series, path


def test_a_written_structure_set_reads_back_exactly(written):
    case, labels, _, path = written
    masks = read_rtstruct_masks(path, case.ct)
    np.testing.assert_array_equal(masks["liver"], labels > 0)  # the liver holds its lesions, as organs do in RT
    np.testing.assert_array_equal(masks["lesion"], labels == 2)


def test_a_written_structure_set_reads_in_rt_utils(written, data_dir):
    """An independent reader: rt-utils finds the ROIs and fills the contours with OpenCV, which
    rounds their half-pixel vertices and so adds up to a row and a column (a few per cent here)."""
    _, labels, _, path = written
    structures = rt_utils.RTStructBuilder.create_from(str(data_dir / CASE / SERIES), str(path))
    assert structures.get_roi_names() == ["Liver", "Liver lesion"]
    for name, expected in (("Liver", labels > 0), ("Liver lesion", labels == 2)):
        mask = structures.get_roi_mask_by_name(name).transpose(2, 0, 1)
        assert dice(mask, expected) > 0.95 and (mask & expected).sum() / expected.sum() > 0.999


def test_a_written_structure_set_names_its_series_slices_and_rois(written):
    _, labels, series, path = written
    ds = pydicom.dcmread(path)
    ct = pydicom.dcmread(series.files[0], stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3" and ds.Modality == "RTSTRUCT"
    assert (ds.PatientID, ds.StudyInstanceUID) == (ct.PatientID, ct.StudyInstanceUID)
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == ct.FrameOfReferenceUID
    referenced = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.uid
    assert [item.ReferencedSOPInstanceUID for item in referenced.ContourImageSequence] == series.sop_instance_uids
    assert [(roi.ROIName, roi.ROIGenerationAlgorithm) for roi in ds.StructureSetROISequence] == [
        ("Liver", "AUTOMATIC"), ("Liver lesion", "AUTOMATIC")]
    assert [obs.RTROIInterpretedType for obs in ds.RTROIObservationsSequence] == ["ORGAN", "GTV"]
    z_of = {uid: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
            for uid, f in zip(series.sop_instance_uids, series.files)}
    lesion_contours = ds.ROIContourSequence[1].ContourSequence
    assert len(lesion_contours) >= int((labels == 2).any(axis=(1, 2)).sum())  # a contour or more per slice
    for contour in lesion_contours:  # each on the slice it references
        z = np.asarray(contour.ContourData, float).reshape(-1, 3)[:, 2]
        assert np.allclose(z, z_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID], atol=1e-3)


def test_evaluate_reads_a_structure_set_as_a_prediction(written, data_dir, tmp_path):
    """A structure set named CASE.dcm among saved predictions: the reference's own scores a Dice of 1."""
    case, _, _, path = written
    (tmp_path / "preds").mkdir()
    shutil.copy(path, tmp_path / "preds" / f"{case.name}.dcm")
    assert main(["evaluate", str(data_dir / CASE), "--predictions", str(tmp_path / "preds"), "--out",
                 str(tmp_path / "r"), "--progress", "none"]) == 0
    with open(tmp_path / "r" / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert float(row["liver_dice"]) == 1.0 and float(row["lesion_dice"]) == 1.0


def test_measure_writes_the_lesions_alone_as_a_structure_set(reference, data_dir, tmp_path):
    """The real tumour SEG alone, measured and written on as an RT structure set: one ROI."""
    case, _ = reference
    assert main(["measure", str(data_dir / CASE / SERIES), str(data_dir / CASE / f"{SERIES}_ManualROI_Tumor.dcm"),
                 "--rtstruct", str(tmp_path / "rs.dcm"), "--progress", "none"]) == 0
    ds = pydicom.dcmread(tmp_path / "rs.dcm")
    assert [(roi.ROIName, roi.ROIGenerationAlgorithm) for roi in ds.StructureSetROISequence] == [
        ("Liver lesion", "SEMIAUTOMATIC")]
    masks = read_rtstruct_masks(tmp_path / "rs.dcm", case.ct)
    assert set(masks) == {"lesion"} and np.array_equal(masks["lesion"], case.lesion.array)


def test_a_structure_set_of_a_tilted_series_reads_back_as_its_seg_does(data_dir, tmp_path):
    """On a gantry-tilted series the contours lie on the slices as acquired: read back onto the
    regular grid, the same masks as a DICOM SEG of the same labels gives."""
    from LiverLesionSegLib.io.dicomseg import read_seg_masks
    from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg

    straight = copy_slices(data_dir, tmp_path / "straight", range(100, 106))
    found = find_input_ct(tilted_copy((straight, read_ct_folder(straight)), tmp_path, 1.0))  # a row a slice
    grid = found.read()
    labels = np.zeros(grid.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    save_rtstruct(tmp_path / "rs.dcm", grid.with_array(labels), found.series, ["m"])
    save_dicom_seg(tmp_path / "seg.dcm", grid.with_array(labels), found.series, ["m"])
    contoured, segmented = read_rtstruct_masks(tmp_path / "rs.dcm", grid), read_seg_masks(tmp_path / "seg.dcm", grid)
    np.testing.assert_array_equal(contoured["lesion"], segmented["lesion"])
    np.testing.assert_array_equal(contoured["liver"], segmented["liver"] | segmented["lesion"])
    assert contoured["lesion"].any()


def test_a_structure_set_over_a_multiframe_ct_references_its_frames(data_dir, tmp_path):
    import bad_inputs

    bad_inputs.copy_slices(data_dir, tmp_path / "slices")
    found = find_input_ct(bad_inputs.multiframe_file(sorted((tmp_path / "slices").iterdir()),
                                                     tmp_path / "enhanced" / "ct.dcm"))
    ct = found.read()
    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    save_rtstruct(tmp_path / "rs.dcm", ct.with_array(labels), found.series, ["m"])
    masks = read_rtstruct_masks(tmp_path / "rs.dcm", ct)
    assert np.array_equal(masks["liver"], labels > 0) and np.array_equal(masks["lesion"], labels == 2)
    images = pydicom.dcmread(tmp_path / "rs.dcm").ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[
        0].RTReferencedSeriesSequence[0].ContourImageSequence
    assert [int(item.ReferencedFrameNumber) for item in images] == list(range(1, ct.shape[0] + 1))
    assert {item.ReferencedSOPInstanceUID for item in images} == set(found.series.sop_instance_uids)


# --- refused in one line ------------------------------------------------------------------------------

def test_a_structure_set_for_several_inputs_or_a_nifti_is_refused(data_dir, tmp_path, capsys):
    from LiverLesionSegLib.io.write import write_image

    write_image(tmp_path / "ct.nii.gz", read_ct_folder(copy_slices(data_dir, tmp_path / "ct", range(100, 103))))
    code = main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out.nii.gz"), "--rtstruct",
                 str(tmp_path / "rs.dcm"), "--progress", "none"])
    assert code == 6 and "a DICOM RT structure set must lie on a DICOM series" in capsys.readouterr().err
    code = main(["segment", str(tmp_path / "ct.nii.gz"), str(tmp_path / "ct"), "-o", str(tmp_path / "out"),
                 "--rtstruct", str(tmp_path / "rs.dcm"), "--progress", "none"])
    assert code == 6 and "an RT structure set lies on one CT series" in capsys.readouterr().err
    assert not (tmp_path / "rs.dcm").exists() and not (tmp_path / "out").exists()


def test_contours_between_the_slices_are_refused(reference, tmp_path):
    case, path = reference
    with pytest.raises(GeometryError, match=r"off\.dcm: a contour of ROI 'Liver' at .* does not lie on a slice "
                                            r"of the CT series \(1\.20 mm off the nearest\)"):
        read_rtstruct_masks(moved_contours(path, tmp_path / "off.dcm", (0, 0, 1.2)), case.ct)


def test_contours_beyond_the_image_are_refused(reference, tmp_path):
    case, path = reference
    with pytest.raises(GeometryError, match=r"beyond\.dcm: a contour of ROI 'Liver' reaches beyond the CT's image"):
        read_rtstruct_masks(moved_contours(path, tmp_path / "beyond.dcm", (300.0, 0, 0)), case.ct)


def test_a_structure_set_given_as_the_ct_is_refused(reference):
    _, path = reference
    with pytest.raises(InputError, match=r"structures\.dcm: is a DICOM RTSTRUCT object, not a CT image\. .*"
                                         r"liverlesionseg measure CT_FOLDER structures\.dcm"):
        find_input_ct(path)


@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_an_rtstruct_cut_short_is_told_so(reference, tmp_path, kept):
    """pydicom reads what there is of a file cut short without a word: one was refused for what its last
    item lacked, "an item of its ROIContourSequence has no ReferencedROINumber" (damage tool seeds 37040,
    37047), or read with the contours before the cut alone."""
    case, path = reference
    data = path.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(InputError, match=r"cut\.dcm: the file ends within its ROIContourSequence, after \d+ of the "
                                         r"element's \d+ bytes: it is cut short, or that element's length is damaged\. "
                                         r"Copy or export the structure set again\.$"):
        read_rtstruct_masks(tmp_path / "cut.dcm", case.ct)


def _gtv_contours(dataset: pydicom.Dataset) -> pydicom.Dataset:
    names = {int(item.ROINumber): item.ROIName for item in dataset.StructureSetROISequence}
    return next(item for item in dataset.ROIContourSequence if names[int(item.ReferencedROINumber)] == "GTV")


def _refusal_of_edited(reference, tmp_path: Path, edit) -> str:
    """The one line that reading the reference structure set, edited by `edit(dataset)`, is refused with."""
    case, path = reference
    dataset = pydicom.dcmread(path)
    edit(dataset)
    dataset.save_as(tmp_path / "edited.dcm")
    with pytest.raises(InputError) as refused:
        read_rtstruct_masks(tmp_path / "edited.dcm", case.ct)
    return str(refused.value)


def test_a_contour_whose_point_count_disagrees_with_its_data_is_read_by_its_data_with_a_warning(reference, tmp_path,
                                                                                                caplog):
    """Found by `tools/damage_inputs.py --kind rtstruct`, seed 14037: a NumberOfContourPoints of 12 for
    204 points went without a word, in a structure set that had lost a contour too."""
    case, path = reference
    dataset = pydicom.dcmread(path)
    contour = _gtv_contours(dataset).ContourSequence[0]
    held = len(contour.ContourData) // 3
    contour.NumberOfContourPoints = 12
    dataset.save_as(tmp_path / "miscounted.dcm")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        masks = read_rtstruct_masks(tmp_path / "miscounted.dcm", case.ct)
    assert "miscounted.dcm: ROI 'GTV': 1 contour(s) whose NumberOfContourPoints is not the number of points of " \
           f"their ContourData (e.g. 12 against {held}): read by their ContourData" in caplog.text
    assert dice(masks["lesion"] > 0, case.lesion.array > 0) > 0.999


@pytest.mark.parametrize("declared", [True, False], ids=["UTF-8 declared", "no character set declared"])
def test_roi_names_stored_in_utf8_are_read_so(reference, tmp_path, declared):
    """A planning system that names structures in Chinese may store the names in UTF-8 and declare no
    character set, whose default (ASCII) pydicom reads as Latin-1: the liver "肝脏" was read as
    "è\x82\x9dè\x84\x8f", left out, and the liver "not segmented"."""
    case, path = reference
    dataset = pydicom.dcmread(path)
    liver = next(item for item in dataset.StructureSetROISequence if item.ROIName == "Liver")
    liver["ROIName"].value = "肝脏".encode()  # the bytes as written, whatever the header declares
    if declared:
        dataset.SpecificCharacterSet = "ISO_IR 192"
    else:
        del dataset.SpecificCharacterSet
    dataset.save_as(tmp_path / "named.dcm")
    masks = read_rtstruct_masks(tmp_path / "named.dcm", case.ct)
    assert dice(masks["liver"] > 0, case.liver.array > 0) > 0.999


@pytest.mark.parametrize("values", [[], [10.0], [float(v) for v in range(83)]])
def test_contour_data_that_is_no_list_of_points_names_its_roi(reference, tmp_path, values):
    def edit(dataset):
        _gtv_contours(dataset).ContourSequence[0].ContourData = values

    numbers = "1 number" if len(values) == 1 else f"{len(values)} numbers"
    assert re.search(rf"edited\.dcm: cannot read the RT structure set \(a contour of ROI 'GTV' holds {numbers}, "
                     r"not x, y, z points\)", _refusal_of_edited(reference, tmp_path, edit))


@pytest.mark.parametrize("kind, told", [(None, "no ContourGeometricType"), ("", "no ContourGeometricType"),
                                        ("CLOSED", "the ContourGeometricType 'CLOSED'")])
def test_a_lesion_contour_of_no_known_type_is_refused(reference, tmp_path, kind, told):
    """Found by `tools/damage_inputs.py --kind rtstruct`: such a contour was left out as an open line,
    and the lesion table changed without a word."""
    def edit(dataset):
        contour = _gtv_contours(dataset).ContourSequence[0]
        if kind is None:
            del contour.ContourGeometricType
        else:
            contour.ContourGeometricType = kind

    assert re.search(rf"edited\.dcm: cannot read the RT structure set \(a contour of ROI 'GTV' has {told}, so whether "
                     "it encloses an area cannot be told", _refusal_of_edited(reference, tmp_path, edit))


def test_contours_of_an_roi_number_not_listed_are_refused(reference, tmp_path):
    """Found by the damage tool: they were left out as an ROI of no known meaning, the liver's too."""
    def edit(dataset):
        dataset.ROIContourSequence[0].ReferencedROINumber = 99

    assert re.search(r"edited\.dcm: cannot read the RT structure set \(it holds contours of ROI number 99, which its "
                     r"StructureSetROISequence does not list\)", _refusal_of_edited(reference, tmp_path, edit))


def test_contour_data_holding_text_names_its_roi(reference, tmp_path):
    """Bytes changed in a number of ContourData: told with its ROI, not as Python's float conversion."""
    case, path = reference
    raw = path.read_bytes()
    text = "\\".join(str(v) for v in _gtv_contours(pydicom.dcmread(path)).ContourSequence[0].ContourData)
    assert raw.count(text.encode()) == 1
    damaged = text.replace(text[:3], "-x" + text[2], 1)
    (tmp_path / "text.dcm").write_bytes(raw.replace(text.encode(), damaged.encode()))
    with pytest.raises(InputError, match=r"text\.dcm: cannot read the RT structure set \(a contour of ROI 'GTV' "
                                         r"holds ContourData that is not numbers \(could not convert string"):
        read_rtstruct_masks(tmp_path / "text.dcm", case.ct)


def test_two_rois_of_one_number_are_refused(reference, tmp_path):
    """Which contours are whose cannot be told: read by number, the liver was measured as a lesion."""
    def edit(dataset):
        dataset.StructureSetROISequence[1].ROINumber = dataset.StructureSetROISequence[0].ROINumber

    assert re.search(r"edited\.dcm: gives ROI number \d+ to more than one ROI",
                     _refusal_of_edited(reference, tmp_path, edit))


def test_open_contours_of_a_lesion_are_left_out_with_a_warning(reference, tmp_path, caplog):
    case, path = reference
    dataset = pydicom.dcmread(path)
    gtv = _gtv_contours(dataset)
    for contour in gtv.ContourSequence:
        contour.ContourGeometricType = "OPEN_PLANAR"
    dataset.save_as(tmp_path / "open.dcm")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        masks = read_rtstruct_masks(tmp_path / "open.dcm", case.ct)
    count = len(gtv.ContourSequence)
    assert f"open.dcm: ROI 'GTV': {count} of its {count} contours left out: open lines or points" in caplog.text
    assert not masks["lesion"].any() and masks["liver"].any()


def test_a_lesion_roi_without_contours_is_read_as_empty_with_a_warning(reference, tmp_path, caplog):
    """Found by `damage_inputs.py --kind rtstruct`: a lesion ROI whose ContourSequence was empty was
    measured as no lesion with nothing said."""
    case, path = reference
    dataset = pydicom.dcmread(path)
    _gtv_contours(dataset).ContourSequence = []
    dataset.save_as(tmp_path / "empty.dcm")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        masks = read_rtstruct_masks(tmp_path / "empty.dcm", case.ct)
    assert f"{tmp_path / 'empty.dcm'}: ROI 'GTV' holds no contours: read as empty" in caplog.text
    assert not masks.get("lesion", np.zeros(1)).any() and masks["liver"].any()
    del dataset.ROIContourSequence[[item.ReferencedROINumber for item in dataset.ROIContourSequence].index(
        _gtv_contours(dataset).ReferencedROINumber)]  # the ROI listed, its contours' item gone
    dataset.save_as(tmp_path / "gone.dcm")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_rtstruct_masks(tmp_path / "gone.dcm", case.ct)
    assert "ROI 'GTV' holds no contours" in caplog.text and "'Liver' holds" not in caplog.text


def test_an_rtstruct_of_other_organs_only_is_refused_by_measure(data_dir, tmp_path):
    series = copy_slices(data_dir, tmp_path / "ct", range(100, 103))
    ct = read_ct_folder(series)
    cord = np.zeros(ct.shape, bool)
    cord[:, 300:320, 250:270] = True
    path = write_rtstruct(series, {"SpinalCord": cord}, tmp_path / "organs.dcm")
    with pytest.raises(InputError, match=r"organs\.dcm: the RT structure set has neither a liver nor a lesion "
                                         r"segment\. Give an RT structure set with an ROI named Liver or Tumor"):
        read_segmentations([path], ct, require_liver=False)
    with pytest.raises(InputError, match=r"structure set has no liver segment\. Give an RT structure set with an "
                                         r"ROI named Liver \(or a SEG\)"):
        read_segmentations([path], ct)


def _liver_structure_set(data_dir, tmp_path) -> tuple[Path, object, np.ndarray]:
    series = copy_slices(data_dir, tmp_path / "ct", range(100, 103))
    ct = read_ct_folder(series)
    liver = np.zeros(ct.shape, bool)
    liver[:, 200:300, 200:300] = True
    return write_rtstruct(series, {"Liver": liver}, tmp_path / "rs.dcm"), ct, liver


@pytest.mark.parametrize("sequence, keyword", [("StructureSetROISequence", "ROINumber"),
                                               ("ROIContourSequence", "ReferencedROINumber")])
@pytest.mark.parametrize("emptied", [True, False], ids=["empty", "missing"])
def test_an_roi_number_missing_or_empty_is_named(data_dir, tmp_path, sequence, keyword, emptied):
    """Found emptying each element of a structure set in turn: an empty ROINumber was told in Python's
    words, "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"."""
    path, ct, _ = _liver_structure_set(data_dir, tmp_path)
    ds = pydicom.dcmread(path)
    if emptied:
        ds[sequence].value[0][keyword].value = None
    else:
        delattr(ds[sequence].value[0], keyword)
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"rs\.dcm: cannot read the RT structure set \(an item of its {sequence} "
                                         rf"has no {keyword}\)"):
        read_segmentations([path], ct)


def test_an_roi_observation_naming_no_roi_is_left_out_with_a_warning(data_dir, tmp_path, caplog):
    """An RT ROI observation only adds an ROI's interpreted type: one without its ReferencedROINumber
    refused the whole structure set ("no ReferencedROINumber")."""
    path, ct, liver = _liver_structure_set(data_dir, tmp_path)
    ds = pydicom.dcmread(path)
    del ds.RTROIObservationsSequence[0].ReferencedROINumber
    ds.save_as(path)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_liver, _ = read_segmentations([path], ct)
    assert dice(read_liver.array.astype(bool), liver) > 0.95
    assert f"{path}: 1 of its RT ROI observations name no ROI (no usable ReferencedROINumber): left out" in caplog.text
