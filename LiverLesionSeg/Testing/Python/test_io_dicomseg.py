"""CT + DICOM SEG cases: the numbers of cases.json, frames placed by position, segment roles."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes

from bad_inputs import edit
from case_checks import assert_case_matches
from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.cases import read_segmentations
from LiverLesionSegLib.io.dicomseg import is_seg_case, read_seg_case

TACE = ["RadCTTACEomics_0697", "RadCTTACEomics_1211"]
LABELLED_SERIES = {"RadCTTACEomics_0697": "31_EQP_Ax5.00mm", "RadCTTACEomics_1211": "10_AP_Ax2.50mm"}


@pytest.fixture(scope="session")
def seg_cases(data_dir):
    return {name: read_seg_case(data_dir / "tace" / name) for name in TACE}


def seg_files(data_dir: Path, name: str) -> dict[str, Path]:
    series = LABELLED_SERIES[name]
    return {"liver": data_dir / "tace" / name / f"{series}_ManualROI_Liver.dcm",
            "lesion": data_dir / "tace" / name / f"{series}_ManualROI_Tumor.dcm"}


def independent_masks(data_dir: Path, name: str, shape) -> dict[str, np.ndarray]:
    """Masks built with pydicom alone: each frame onto the CT slice with the same z."""
    ct_z = []
    for path in sorted((data_dir / "tace" / name / LABELLED_SERIES[name]).iterdir()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]:
            ct_z.append(float(ds.ImagePositionPatient[2]))
    ct_z = sorted(ct_z)
    masks = {}
    for role, path in seg_files(data_dir, name).items():
        ds = pydicom.dcmread(path)
        frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
        mask = np.zeros(shape, np.uint8)
        for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence):
            z = float(group.PlanePositionSequence[0].ImagePositionPatient[2])
            mask[ct_z.index(z)] |= frame
        masks[role] = mask
    return masks


@pytest.mark.parametrize("name", TACE)
def test_case_matches_cases_json(seg_cases, cases_json, name):
    case, expected = seg_cases[name], cases_json[name]
    assert case.name == name and case.labelled
    assert_case_matches(case, expected)
    assert case.ct.origin == pytest.approx(expected["origin_lps_mm"], abs=1e-3)
    assert expected["series_uid"] in case.ct.source and LABELLED_SERIES[name] in case.ct.source


@pytest.mark.parametrize("name", TACE)
def test_seg_objects_match_cases_json(data_dir, cases_json, name):
    for role, key in (("liver", "seg_liver"), ("lesion", "seg_lesion")):
        expected = cases_json[name][key]
        seg = hd.seg.segread(seg_files(data_dir, name)[role])
        assert seg.number_of_frames == expected["frames"]
        assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == expected["segments"]
        assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == [expected["references_series"]]
        assert len(seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == expected["referenced_instances"]


@pytest.mark.parametrize("name", TACE)
def test_frames_lie_where_pydicom_puts_them(seg_cases, data_dir, name):
    case = seg_cases[name]
    expected = independent_masks(data_dir, name, case.ct.shape)
    np.testing.assert_array_equal(case.liver.array, expected["liver"])
    np.testing.assert_array_equal(case.lesion.array, expected["lesion"])


# --- modified copies of 0697 -------------------------------------------------------------------

@pytest.fixture
def case_0697_copy(data_dir, tmp_path) -> Path:
    """0697 with the labelled series linked and copies of its SEG files (no 11_AP series)."""
    source = data_dir / "tace/RadCTTACEomics_0697"
    case = tmp_path / "RadCTTACEomics_0697"
    case.mkdir()
    os.symlink(source / "31_EQP_Ax5.00mm", case / "31_EQP_Ax5.00mm")
    for path in seg_files(data_dir, "RadCTTACEomics_0697").values():
        shutil.copy(path, case / path.name)
    return case


def rewrite_frames(path: Path, order=None, move=None) -> None:
    """Reorder the frames of a binary SEG (pixels and per-frame groups together) or move one frame."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    if order is not None:
        frames = frames[order]
        groups = [groups[i] for i in order]
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(groups)
        ds.PixelData = pack_bits(frames.ravel())
    if move is not None:
        index, offset = move
        position = groups[index].PlanePositionSequence[0]
        position.ImagePositionPatient = [float(v) + d for v, d in zip(position.ImagePositionPatient, offset)]
    ds.save_as(path)


def test_frame_order_does_not_matter(case_0697_copy, seg_cases):
    for path in case_0697_copy.glob("*.dcm"):
        n = int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
        rewrite_frames(path, order=np.random.default_rng(697).permutation(n))
    case = read_seg_case(case_0697_copy)
    original = seg_cases["RadCTTACEomics_0697"]
    np.testing.assert_array_equal(case.liver.array, original.liver.array)
    np.testing.assert_array_equal(case.lesion.array, original.lesion.array)


def test_frame_between_slices(case_0697_copy):
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Liver.dcm"
    rewrite_frames(path, move=(3, (0, 0, 2.0)))
    with pytest.raises(GeometryError) as exc:
        read_seg_case(case_0697_copy)
    assert "\n" not in str(exc.value)
    assert path.name in str(exc.value) and "does not fall on a CT slice" in str(exc.value)


def test_frame_shifted_in_plane(case_0697_copy):
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    rewrite_frames(path, move=(1, (4.0, 0, 0)))
    with pytest.raises(GeometryError) as exc:
        read_seg_case(case_0697_copy)
    assert "\n" not in str(exc.value)
    assert path.name in str(exc.value) and "shifted in-plane" in str(exc.value)


def test_seg_referencing_a_missing_series(data_dir, tmp_path):
    path = seg_files(data_dir, "RadCTTACEomics_0697")["lesion"]
    shutil.copy(path, tmp_path / path.name)
    with pytest.raises(InputError) as exc:
        read_seg_case(tmp_path)
    assert type(exc.value) is InputError and "\n" not in str(exc.value)
    assert path.name in str(exc.value) and "1801040320200103051513090319.697.3.4" in str(exc.value)


def test_folder_without_seg(data_dir):
    with pytest.raises(InputError) as exc:
        read_seg_case(data_dir / "hcc-tace-seg/HCC_006")
    assert "no DICOM SEG" in str(exc.value)


def test_is_seg_case(data_dir):
    assert is_seg_case(data_dir / "tace/RadCTTACEomics_0697")
    assert is_seg_case(data_dir / "tace/RadCTTACEomics_1211")
    assert not is_seg_case(data_dir / "hcc-tace-seg/HCC_006")
    assert not is_seg_case(data_dir / "tace/RadCTTACEomics_0697/31_EQP_Ax5.00mm")


def axial_sources_alone(case_copy: Path, data_dir: Path) -> list:
    """The copy of RadCTTACEomics_0697 emptied of its SEG files, and its axial CT slices (k = 0 lowest)."""
    for path in case_copy.glob("*.dcm"):
        path.unlink()
    series = data_dir / "tace/RadCTTACEomics_0697/31_EQP_Ax5.00mm"
    sources = [pydicom.dcmread(p) for p in sorted(series.iterdir())]
    return sorted((ds for ds in sources if ds.ImageOrientationPatient[4] == 1),
                  key=lambda ds: float(ds.ImagePositionPatient[2]))


def four_segments(sources, pixels, kind: hd.seg.SegmentationTypeValues) -> hd.seg.Segmentation:
    """A SEG written with highdicom: Liver (1), two lesion segments (2, 3), a portal vein to ignore (4)."""
    manual = hd.seg.SegmentAlgorithmTypeValues.MANUAL
    abnormal = codes.SCT.MorphologicallyAbnormalStructure
    descriptions = [
        hd.seg.SegmentDescription(1, "Liver", codes.SCT.Organ, codes.SCT.Liver, manual),
        hd.seg.SegmentDescription(2, "Tumor A", abnormal, codes.SCT.Tumor, manual),
        hd.seg.SegmentDescription(3, "Lesion B", abnormal, codes.SCT.Lesion, manual),
        hd.seg.SegmentDescription(4, "Portal vein", codes.SCT.Tissue, codes.SCT.PortalVein, manual),
    ]
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=kind, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="test", manufacturer_model_name="test", software_versions="0", device_serial_number="0")


def test_a_seg_missing_a_frame_description_is_refused(case_0697_copy):
    """Found by `tools/damage_inputs.py --kind seg`: with one per-frame item gone, each frame after it
    was placed by the next one's position and segment, and the lesion table changed without a word."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    frames = int(ds.NumberOfFrames)
    del ds.PerFrameFunctionalGroupsSequence[frames // 2]
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"{path.name}: holds {frames} frames but {frames - 1} per-frame "
                                         r"descriptions \(PerFrameFunctionalGroupsSequence\), so where each frame "
                                         r"lies cannot be told"):
        read_seg_case(case_0697_copy)


@pytest.mark.parametrize("number", [0, 7])
def test_a_frame_of_a_segment_not_described_is_refused(case_0697_copy, number):
    """Found by the damage tool: a frame whose ReferencedSegmentNumber names no segment was left out."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence[2].SegmentIdentificationSequence[0].ReferencedSegmentNumber = number
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"{path.name}: its frame 3 is of segment {number}, which its "
                                         r"SegmentSequence does not describe \(segments 1\)"):
        read_seg_case(case_0697_copy)


def test_a_seg_whose_segment_sequence_is_empty_says_it_describes_none(case_0697_copy):
    """Found by `tools/damage_inputs.py --kind seg`, seed 40007: "(segments )"."""
    path = damaged_tumor_seg(case_0697_copy, lambda ds: setattr(ds, "SegmentSequence", []))
    with pytest.raises(InputError, match=rf"{path.name}: its frame 1 is of segment 1, which its SegmentSequence does "
                                         r"not describe \(it describes none\)"):
        read_seg_case(case_0697_copy)


@pytest.mark.parametrize("missing, told", [
    ("PlanePositionSequence", "frame 2 has no (0020,9113) PlanePositionSequence"),
    ("FrameContentSequence", "frame 2 has no FrameContentSequence, which the other frames hold"),
    ("FrameContentSequence empty", "its FrameContentSequence (in PerFrameFunctionalGroupsSequence item 2) is empty, "
                                   "where an item is needed"),
    ("DimensionIndexValues", "frame 2's DimensionIndexValues hold 1 value, where the file's DimensionIndexSequence "
                             "has 2 indices"),
    ("ImagePositionPatient", "frame 2's ImagePositionPatient (in PlanePositionSequence) is '0.001' (3 numbers needed)"),
    ("DimensionIndexPointer", "its DimensionIndexSequence item 2 points to (0000,0000) CommandGroupLength in "
                              "(0020,9113) PlanePositionSequence, which its frames' (0020,9113) PlanePositionSequence "
                              "does not hold"),
    ("FunctionalGroupPointer", "its DimensionIndexSequence item 2 points to (0020,0032) ImagePositionPatient in "
                               "(0020,9999), which its frames' functional groups do not hold"),
    ("DimensionIndexPointer empty", "its DimensionIndexSequence item 2 has an empty DimensionIndexPointer")])
def test_a_missing_or_single_valued_element_is_told_plainly(case_0697_copy, missing, told):
    """Found by the damage tool: highdicom's KeyError, AttributeError and TypeError were shown as
    Python's words: "(0020,9113)" alone, "'Dataset' object has no attribute 'FrameContentSequence'",
    for a position of one number, "'DSfloat' object is not subscriptable" (which frame's is said since
    multi-frame seed 17011), and for a dimension index
    pointing nowhere, "no element (0000,0000) CommandGroupLength"."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    if missing == "ImagePositionPatient":
        ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0].ImagePositionPatient = 0.001
    elif missing == "DimensionIndexPointer empty":  # highdicom's "'None'" (seed 28062)
        ds.DimensionIndexSequence[1].DimensionIndexPointer = None
    elif missing.endswith(" empty"):  # highdicom's "list index out of range"
        ds.PerFrameFunctionalGroupsSequence[1].FrameContentSequence = []
    elif missing == "DimensionIndexValues":  # highdicom's "Unexpected mismatch between dimension index values ..."
        ds.PerFrameFunctionalGroupsSequence[1].FrameContentSequence[0].DimensionIndexValues = 1
    elif missing.endswith("Pointer"):  # highdicom's "no element (0000,0000) CommandGroupLength"
        setattr(ds.DimensionIndexSequence[1], missing, 0 if missing == "DimensionIndexPointer" else 0x00209999)
    else:
        delattr(ds.PerFrameFunctionalGroupsSequence[1], missing)
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"{path.name}: cannot read the DICOM SEG \({re.escape(told)}\)"):
        read_seg_case(case_0697_copy)


def test_a_seg_whose_header_is_damaged_besides_says_so_not_the_readers_words(case_0697_copy, seg_cases):
    """Found by `tools/damage_inputs.py --kind seg` (seed 29037): a frame's FrameContentSequence emptied
    and header bytes damaged (an element's VR): highdicom failed on the first ("list index out of
    range"), and the walk that names an empty sequence failed on the second, leaving highdicom's words."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence[1].FrameContentSequence = []
    ds.save_as(path)
    data = path.read_bytes()
    assert data.count(b"\x08\x00\x08\x00CS") == 1  # ImageType, read by no reader before the frames
    path.write_bytes(data.replace(b"\x08\x00\x08\x00CS", b"\x08\x00\x08\x00VS"))
    with pytest.raises(InputError) as exc:  # as `measure CT SEG` reads it (a case folder's scan reads ImageType)
        read_segmentations([path], seg_cases["RadCTTACEomics_0697"].ct)
    assert str(exc.value).startswith(f"{path}: cannot read the DICOM SEG (its header is damaged: Unknown Value "
                                     "Representation 'VS' in tag (0008,0008))")


def test_a_seg_whose_pixel_data_is_cut_short_says_how_many_bytes_it_holds(case_0697_copy):
    """Found by the damage tool: a SEG cut short was told in numpy's words, "cannot reshape array of
    size 237760 into shape (512,512)"."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    needed = (ds.Rows * ds.Columns * ds.NumberOfFrames * ds.BitsAllocated + 7) // 8
    ds.PixelData = ds.PixelData[:needed // 3]
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"{path.name}: cannot decode the SEG frames \(its pixel data holds "
                                         rf"{needed // 3} of the {needed} bytes its {ds.NumberOfFrames} frames of "
                                         rf"512 x 512 need\)"):
        read_seg_case(case_0697_copy)


def damaged_tumor_seg(case: Path, damage: Callable[[pydicom.Dataset], object]) -> Path:
    """The case's tumour SEG, `damage(dataset)` done to it."""
    path = case / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    damage(ds)
    ds.save_as(path)
    return path


def _with_algorithm_family(item, family: list) -> None:
    algorithm = pydicom.Dataset()
    algorithm.AlgorithmName, algorithm.AlgorithmVersion, algorithm.AlgorithmFamilyCodeSequence = "net", "1", family
    item.SegmentAlgorithmType, item.SegmentationAlgorithmIdentificationSequence = "AUTOMATIC", [algorithm]


def _code_without_meaning() -> pydicom.Dataset:
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "123", "99X"
    return code


@pytest.mark.parametrize("damage, lacks", [
    (lambda item: delattr(item, "SegmentAlgorithmType"), "SegmentAlgorithmType"),
    (lambda item: delattr(item, "SegmentedPropertyCategoryCodeSequence"), "SegmentedPropertyCategoryCodeSequence"),
    (lambda item: setattr(item, "SegmentedPropertyCategoryCodeSequence", []), "SegmentedPropertyCategoryCodeSequence"),
    (lambda item: delattr(item, "SegmentLabel"), "SegmentLabel"),
    (lambda item: delattr(item, "SegmentedPropertyTypeCodeSequence"), "a whole SegmentedPropertyTypeCodeSequence"),
    (lambda item: delattr(item.SegmentedPropertyTypeCodeSequence[0], "CodeMeaning"),
     "a whole SegmentedPropertyTypeCodeSequence"),
    (lambda item: _with_algorithm_family(item, []), "a whole SegmentationAlgorithmIdentificationSequence"),
    (lambda item: _with_algorithm_family(item, [_code_without_meaning()]),
     "a whole SegmentationAlgorithmIdentificationSequence"),
    (lambda item: setattr(item, "AnatomicRegionSequence", [_code_without_meaning()]), "a whole AnatomicRegionSequence"),
    (lambda item: setattr(item, "PrimaryAnatomicStructureSequence", [_code_without_meaning()]),
     "a whole PrimaryAnatomicStructureSequence")],
    ids=["algorithm type", "category", "empty category", "label", "type", "type's meaning", "algorithm family",
         "algorithm family's meaning", "anatomic region's meaning", "anatomic structure's meaning"])
def test_a_seg_lacking_provenance_it_does_not_need_is_read_with_a_warning(case_0697_copy, seg_cases, caplog, damage,
                                                                          lacks):
    """highdicom refused a SEG lacking what DICOM requires of a segment but where it lies does not need
    ("Dataset does not have required attribute 'SegmentAlgorithmType'"; damage_inputs --kind seg,
    seed 32001: the algorithm's family; seed 41027: its anatomic region's CodingSchemeDesignator, "Dataset
    does not contain the following attribute required for coded concepts"): a clinic's segmentation lost
    for a line of provenance."""
    path = damaged_tumor_seg(case_0697_copy, lambda ds: damage(ds.SegmentSequence[0]))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        case = read_seg_case(case_0697_copy)
    whole = seg_cases["RadCTTACEomics_0697"]
    assert np.array_equal(case.lesion.array, whole.lesion.array) and case.lesion.array.any()
    assert np.array_equal(case.liver.array, whole.liver.array)
    assert f"{path}: segment 1 (" in caplog.text
    assert f"lacks {lacks}, which DICOM requires but where the segments lie does not need: read all the same" \
        in caplog.text


def test_a_seg_without_its_study_uid_is_read_with_a_warning(case_0697_copy, seg_cases, caplog):
    """An anonymiser that removes StudyInstanceUID: the SEG was refused in highdicom's words, "cannot read
    the DICOM SEG (no StudyInstanceUID)" (an item left from earlier stops)."""
    path = damaged_tumor_seg(case_0697_copy, lambda ds: delattr(ds, "StudyInstanceUID"))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        case = read_seg_case(case_0697_copy)
    assert np.array_equal(case.lesion.array, seg_cases["RadCTTACEomics_0697"].lesion.array) and case.lesion.array.any()
    assert (f"{path}: it lacks its StudyInstanceUID, which DICOM requires but where the segments lie does not need: "
            "read all the same") in caplog.text


def test_a_seg_whose_references_to_source_images_lack_their_uids_is_read_with_a_warning(case_0697_copy, seg_cases,
                                                                                      caplog):
    """damage_inputs --kind seg, seed 32022: a source image reference without its ReferencedSOPInstanceUID
    was refused ("cannot read the DICOM SEG (no ReferencedSOPInstanceUID)"); the frames are placed by
    their positions."""
    def damage(ds):
        del ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
        source = ds.PerFrameFunctionalGroupsSequence[2].DerivationImageSequence[0].SourceImageSequence[0]
        del source.ReferencedSOPClassUID

    path = damaged_tumor_seg(case_0697_copy, damage)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        case = read_seg_case(case_0697_copy)
    assert np.array_equal(case.lesion.array, seg_cases["RadCTTACEomics_0697"].lesion.array)
    assert f"{path}: 2 reference(s) to a source image lack its UIDs (left out), which DICOM requires" in caplog.text


def test_a_seg_segment_of_neither_label_nor_type_is_refused(case_0697_copy):
    damaged_tumor_seg(case_0697_copy, lambda ds: (delattr(ds.SegmentSequence[0], "SegmentLabel"),
                                                  delattr(ds.SegmentSequence[0], "SegmentedPropertyTypeCodeSequence")))
    with pytest.raises(InputError, match=r"Tumor\.dcm: its segment 1 has neither a SegmentLabel nor a whole coded "
                                         r"type \(SegmentedPropertyTypeCodeSequence\), so what it segments cannot be "
                                         r"told\. The file is damaged"):
        read_seg_case(case_0697_copy)


@pytest.mark.parametrize("element, told", [
    ("PerFrameFunctionalGroupsSequence", r"holds \d+ frames but 0 per-frame descriptions "
                                         r"\(PerFrameFunctionalGroupsSequence\), so where each frame lies cannot be "
                                         r"told\. The file is damaged"),
    ("Rows", r"its header's description of its pixel data is damaged \(no Rows\)\. Export the segmentation again"),
    ("SamplesPerPixel", r"its header's description of its pixel data is damaged \(no SamplesPerPixel\)")])
def test_a_seg_without_an_element_its_frames_need_is_told_so(case_0697_copy, element, told):
    """Found removing each element in turn: a SEG without its per-frame functional groups, which
    highdicom reads, ended in an internal error ("'Segmentation' object has no attribute
    'PerFrameFunctionalGroupsSequence'"); one without its Rows was told as pixel data "may be truncated"."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    edit(path, **{element: None})
    with pytest.raises(InputError, match=rf"Tumor\.dcm: {told}"):
        read_seg_case(case_0697_copy)


@pytest.mark.parametrize("damage, told", [
    (lambda ds: ds.PerFrameFunctionalGroupsSequence.pop(1),
     r"holds 3 frames but 2 per-frame descriptions \(PerFrameFunctionalGroupsSequence\), so where each frame lies "
     r"cannot be told"),
    (lambda ds: setattr(ds, "Rows", ds.Rows // 32),
     r"its pixel data holds \d+ bytes, 32 times the \d+ its \d+ frames of 16 x 512 \(Rows x Columns\) need: the "
     r"header is damaged\. Export the segmentation again\.")])
def test_a_seg_whose_frames_and_header_disagree_is_told_so(case_0697_copy, damage, told):
    """Found by `tools/damage_inputs.py --kind seg`, seed 37019: a SEG whose Rows was made 16 was refused as
    a mask of another size than the CT's ("SEG frame 1 has 16 x 512 pixels, the CT 512 x 512. Give a mask
    made on this CT series"); one of whose frames' descriptions was removed is refused as the missing
    sequence was."""
    path = damaged_tumor_seg(case_0697_copy, damage)
    with pytest.raises(InputError, match=rf"Tumor\.dcm: {told}") as raised:
        read_seg_case(case_0697_copy)
    assert raised.value.path == str(path)


def test_a_seg_dimension_index_without_its_functional_group_pointer_is_named(case_0697_copy, seg_cases):
    """Found by `tools/damage_inputs.py --kind seg`, seed 39000: highdicom's "no element (0020,0032)
    ImagePositionPatient", which every frame holds."""
    def damage(ds):
        index = next(item for item in ds.DimensionIndexSequence if item.DimensionIndexPointer == 0x00200032)
        del index.FunctionalGroupPointer
    path = damaged_tumor_seg(case_0697_copy, damage)
    with pytest.raises(InputError, match=r"Tumor\.dcm: cannot read the DICOM SEG \(its DimensionIndexSequence item \d "
                                         r"has no FunctionalGroupPointer, so the functional group holding its "
                                         r"\(0020,0032\) ImagePositionPatient cannot be told\)"):
        read_segmentations([path], seg_cases["RadCTTACEomics_0697"].ct)


@pytest.mark.parametrize("kept, element", [(4000, r"\w+Sequence"), (-1000, "PixelData")])
def test_a_seg_cut_short_is_told_so(case_0697_copy, seg_cases, kept, element):
    """A SEG cut inside its header was read as far as it went and refused for what highdicom then missed;
    cut inside its pixel data, as frames that "may be truncated". (In a case folder, a SEG cut so short
    that its series cannot be told is left out with a warning naming it.)"""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    path.write_bytes(path.read_bytes()[:kept])
    with pytest.raises(InputError, match=rf"Tumor\.dcm: the file ends within its {element}, after \d+ of the "
                                         r"element's \d+ bytes: it is cut short, or that element's length is damaged\. "
                                         r"Copy or export the segmentation again\.$"):
        read_segmentations([path], seg_cases["RadCTTACEomics_0697"].ct)


def _emptied(dataset, keyword: str) -> None:
    dataset[keyword].value = None


@pytest.mark.parametrize("damage, told", [
    (lambda ds: _emptied(ds.SegmentSequence[0], "SegmentNumber"),
     "its SegmentSequence item 1 has no SegmentNumber, so its frames cannot be told to their segment"),
    (lambda ds: delattr(ds.SegmentSequence[0], "SegmentNumber"), "its SegmentSequence item 1 has no SegmentNumber"),
    (lambda ds: _emptied(ds, "Rows"), "its header's description of its pixel data is damaged (no Rows)"),
    (lambda ds: _emptied(ds.PerFrameFunctionalGroupsSequence[1].SegmentIdentificationSequence[0],
                         "ReferencedSegmentNumber"),
     "cannot read the DICOM SEG (frame 2's SegmentIdentificationSequence has an empty ReferencedSegmentNumber, which "
     "the other frames' hold)"),
    (lambda ds: _emptied(ds.PerFrameFunctionalGroupsSequence[1].FrameContentSequence[0], "DimensionIndexValues"),
     "cannot read the DICOM SEG (frame 2's DimensionIndexValues hold 0 values, where the file's "
     "DimensionIndexSequence has 2 indices)")],
    ids=["SegmentNumber empty", "no SegmentNumber", "Rows empty", "ReferencedSegmentNumber empty",
         "DimensionIndexValues empty"])
def test_a_seg_whose_value_is_emptied_is_told_in_words(case_0697_copy, damage, told):
    """Found emptying each element of a real SEG in turn: an empty SegmentNumber ended in an internal
    error ("int() argument must be … not 'NoneType'"), an empty Rows in Python's "unsupported operand
    type(s) for *: 'NoneType' and 'int'", an empty ReferencedSegmentNumber in highdicom's database's
    "NOT NULL constraint failed: FrameLUT.ReferencedSegmentNumber", empty DimensionIndexValues in its
    "Unexpected mismatch between dimension index values …"."""
    path = damaged_tumor_seg(case_0697_copy, damage)
    with pytest.raises(InputError) as exc:
        read_seg_case(case_0697_copy)
    assert str(exc.value).startswith(f"{path}: {told}"), str(exc.value)


@pytest.mark.parametrize("bits, told", [
    (16, r"its pixel data holds {held} bytes, what its {frames} frames of 512 x 512 take at 1 bit a pixel, where "
         r"its BitsAllocated gives 16"),
    (0, r"A \(0028,0100\) 'Bits Allocated' value of '0' is invalid")])
def test_a_seg_whose_bits_allocated_is_damaged_is_told_as_its_header(case_0697_copy, bits, told):
    """A BINARY SEG's BitsAllocated damaged to 16 was told as pixel data cut short ("holds 491520 of the
    7864320 bytes … The file may be truncated"): the pixel data is whole, the header not."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    held, frames = len(ds.PixelData), ds.NumberOfFrames
    ds.BitsAllocated = bits
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_seg_case(case_0697_copy)
    assert re.match(rf"{re.escape(str(path))}: its header's description of its pixel data is damaged \("
                    rf"{told.format(held=held, frames=frames)}", str(exc.value)), str(exc.value)
    assert "truncated" not in str(exc.value)


@pytest.mark.filterwarnings("ignore:The string .* person name:UserWarning")
def test_several_segments_liver_union_of_lesions_and_others_ignored(case_0697_copy, data_dir, caplog):
    """A binary SEG: each segment its own frames."""
    sources = axial_sources_alone(case_0697_copy, data_dir)
    pixels = np.zeros((len(sources), 512, 512, 4), np.uint8)
    pixels[10:30, 100:300, 100:300, 0] = 1  # liver
    pixels[12:14, 150:160, 150:160, 1] = 1  # tumour A
    pixels[20:22, 200:220, 200:220, 2] = 1  # lesion B
    pixels[15:25, 250:260, 120:130, 3] = 1  # portal vein
    four_segments(sources, pixels, hd.seg.SegmentationTypeValues.BINARY).save_as(case_0697_copy / "four segments.dcm")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        case = read_seg_case(case_0697_copy)
    np.testing.assert_array_equal(case.liver.array, pixels[..., 0])
    np.testing.assert_array_equal(case.lesion.array, pixels[..., 1] | pixels[..., 2])
    assert re.search(r"four segments\.dcm: left out 1 segment that is neither liver nor lesion by name: '[^']*vein",
                     caplog.text, re.IGNORECASE)


@pytest.mark.filterwarnings("ignore:The string .* person name:UserWarning")
def test_a_labelmap_seg_each_pixel_its_segments_number(case_0697_copy, data_dir):
    """A LABELMAP SEG (DICOM's label-map segmentation, written by highdicom): segments by their numbers
    in one frame per slice, read as the binary SEG of the same segments is."""
    sources = axial_sources_alone(case_0697_copy, data_dir)
    labels = np.zeros((len(sources), 512, 512), np.uint8)
    labels[10:30, 100:300, 100:300] = 1  # liver
    labels[12:14, 150:160, 150:160] = 2  # tumour A, inside the liver
    labels[20:22, 200:220, 200:220] = 3  # lesion B
    labels[15:25, 250:260, 120:130] = 4  # portal vein, to ignore
    four_segments(sources, labels, hd.seg.SegmentationTypeValues.LABELMAP).save_as(case_0697_copy / "labelmap.dcm")
    assert hd.seg.segread(case_0697_copy / "labelmap.dcm").segmentation_type.value == "LABELMAP"
    case = read_seg_case(case_0697_copy)
    np.testing.assert_array_equal(case.lesion.array, ((labels == 2) | (labels == 3)).astype(np.uint8))
    np.testing.assert_array_equal(case.liver.array, (labels == 1).astype(np.uint8))  # the vein left out


@pytest.mark.parametrize("given, told", [
    # it was "is neither a DICOM SEG nor …: its header gives Modality CT and SOPClassUID 1.2.840.10008.5.1.4.1.1.2.
    # …; if this is one, it is damaged": a whole object of another kind is named as such
    ("a CT slice", "is a DICOM CT Image object (Modality CT), not a segmentation. Give the segmentation's DICOM SEG "
                   "or RTSTRUCT file."),
    ("a SR", "is a DICOM Comprehensive 3D SR object (Modality SR), not a segmentation. Give"),
    ("text", "is not a DICOM file. Give the segmentation's DICOM SEG or RTSTRUCT file."),
    ("a VR damaged", "damaged or truncated DICOM file (Unknown Value Representation 'CF' in tag (0008,0060)). Export "
                     "the segmentation again."),
    ("a length damaged", "is neither a DICOM SEG nor an RT structure set: its header gives no Modality and "
                         "SOPClassUID 1.2.840.10008.5.1.4.1.1.66.4…"),
    ("no header elements", "is neither a DICOM SEG nor an RT structure set: its header gives no Modality and no "
                           "SOPClassUID. Give"),
    # damage_inputs --kind seg, seed 41012: "cannot read the DICOM SEG (Dataset is not a Segmentation.). The file
    # may be truncated or not a valid SEG"
    ("a SEG of an MR's SOP class", "has Modality SEG, though its SOP class is MR Image: its header is damaged or was "
                                   "edited. Export the segmentation again."),
    ("a SEG without its SOP class", "has Modality SEG, though it has no SOPClassUID: its header is damaged")])
def test_a_dcm_file_that_is_no_readable_seg_says_what_it_is(case_0697_copy, seg_cases, data_dir, given, told):
    """Found by `tools/damage_inputs.py --kind rtstruct` (seeds 26020, 26051: header bytes of an RT
    structure set damaged): any .dcm that was not an RT structure set by its header was read as a SEG,
    and told as "cannot read the DICOM SEG (Dataset is not a Segmentation.)" or in pydicom's words for a
    file without DICOM header ("… Use force=True to force reading.")."""
    path = case_0697_copy / "given.dcm"
    seg = (case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm").read_bytes()
    if given == "a CT slice":
        path.write_bytes((data_dir / "tace/RadCTTACEomics_0697/31_EQP_Ax5.00mm/dicom-00002.dcm").read_bytes())
    elif given == "a SR":  # as this tool's lesion report (--lesions REPORT.dcm) given back: a SEG's header made an SR's
        edit(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm", Modality="SR",
             SOPClassUID=pydicom.uid.Comprehensive3DSRStorage)
        shutil.copy(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm", path)
    elif given == "text":
        path.write_text("liver\n")
    elif given.startswith("a SEG "):
        edit(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm",
             SOPClassUID=pydicom.uid.MRImageStorage if "MR" in given else None)
        shutil.copy(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm", path)
    elif given == "a VR damaged":  # Modality's VR, CS
        assert seg.count(b"\x08\x00\x60\x00CS") == 1
        path.write_bytes(seg.replace(b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00CF"))
    elif given == "no header elements":  # (damage_inputs --kind seg and rtstruct, seed 32005: "Modality none")
        edit(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm", Modality=None, SOPClassUID=None)
        shutil.copy(case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm", path)
    else:  # SOPClassUID's length, 28, made 64: the value runs into the next elements
        assert seg.count(b"\x08\x00\x16\x00UI\x1c\x00") == 1
        path.write_bytes(seg.replace(b"\x08\x00\x16\x00UI\x1c\x00", b"\x08\x00\x16\x00UI\x40\x00"))
    with pytest.raises(InputError) as exc:
        read_segmentations([path], seg_cases["RadCTTACEomics_0697"].ct)
    assert str(exc.value).startswith(f"{path}: {told}") and "\n" not in str(exc.value)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
@pytest.mark.parametrize("written", [None, "é"], ids=["missing", "damaged"])
def test_a_one_bit_seg_without_its_segmentation_type_is_read_as_binary(case_0697_copy, written, caplog):
    """Found by `tools/damage_inputs.py --kind seg` (seed 25015): a SEG without SegmentationType ended
    in an internal error ("'Segmentation' object has no attribute 'SegmentationType'"). Frames of one
    bit a pixel can only be BINARY's."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    expected = read_seg_case(case_0697_copy).lesion.array
    edit(path, SegmentationType=written)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        np.testing.assert_array_equal(read_seg_case(case_0697_copy).lesion.array, expected)
    said = "missing" if written is None else f"'{written}'"
    assert f"{path.name}: its SegmentationType is {said}; read as BINARY" in caplog.text


@pytest.mark.filterwarnings("ignore:The string .* person name:UserWarning")
@pytest.mark.parametrize("damage", ["no SegmentationType", "no MaximumFractionalValue", "read"])
def test_a_fractional_seg_needs_its_type_and_maximum(case_0697_copy, data_dir, damage):
    """A FRACTIONAL SEG (8 bits a pixel) is read where half its maximum value is reached; without its
    type or its maximum, what its values mean is unknown: refused, where both were internal errors."""
    sources = axial_sources_alone(case_0697_copy, data_dir)
    fractions = np.zeros((len(sources), 512, 512, 4), np.float32)
    fractions[10:30, 100:300, 100:300, 0] = 1.0  # liver
    fractions[12:14, 150:160, 150:160, 1] = 0.7  # tumour A, mostly in
    fractions[12:14, 160:170, 150:160, 1] = 0.3  # mostly out
    path = case_0697_copy / "fractional.dcm"
    four_segments(sources, fractions, hd.seg.SegmentationTypeValues.FRACTIONAL).save_as(path)
    ds = pydicom.dcmread(path)
    assert ds.BitsAllocated == 8
    if damage == "read":
        case = read_seg_case(case_0697_copy)
        np.testing.assert_array_equal(case.lesion.array, (fractions[..., 1] >= 0.5).astype(np.uint8))
        np.testing.assert_array_equal(case.liver.array, fractions[..., 0].astype(np.uint8))
        return
    delattr(ds, damage.removeprefix("no "))
    ds.save_as(path)
    told = ("its SegmentationType is missing, where BINARY, FRACTIONAL or LABELMAP tells" if damage.endswith("Type")
            else "is a FRACTIONAL SEG whose MaximumFractionalValue is missing")
    with pytest.raises(InputError, match=f"fractional.dcm: {told}"):
        read_seg_case(case_0697_copy)


def test_a_seg_without_frames_says_so(case_0697_copy):
    """A SEG of no frames (NumberOfFrames 0: every segment empty, not valid DICOM) is named as such,
    not as highdicom's 'list index out of range'."""
    path = case_0697_copy / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence([])
    ds.NumberOfFrames = 0
    ds.PixelData = b""
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_seg_case(case_0697_copy)
    message = str(exc.value)
    assert "\n" not in message and path.name in message and "holds no frames" in message


@pytest.mark.filterwarnings("ignore:The string .* person name:UserWarning")
@pytest.mark.parametrize("declared", [True, False], ids=["UTF-8 declared", "no character set declared"])
@pytest.mark.parametrize("labels", [("간", "간 종양", "혈관"), ("Leber", "Lebermetastase", "Pfortader"),
                                    ("Liver incl. tumor", "HCC", "Hepatic vein")])
def test_segments_coded_only_as_tissue_are_read_by_their_labels(labels, declared, case_0697_copy, data_dir):
    """A SEG whose segments are coded only as tissue (a site's own tool): read by their labels as segment
    names are everywhere (Korean: liver, liver tumour, vessel; stored in UTF-8), the vessel ignored. A
    tool that stores UTF-8 and declares no character set (whose default, ASCII, pydicom reads as
    Latin-1) had its Korean labels read as others ("ê°\x84"), and both segments left out."""
    sources = axial_sources_alone(case_0697_copy, data_dir)
    pixels = np.zeros((len(sources), 512, 512, 3), np.uint8)
    pixels[10:30, 100:300, 100:300, 0] = 1
    pixels[12:14, 150:160, 150:160, 1] = 1
    pixels[15:25, 250:260, 120:130, 2] = 1
    manual = hd.seg.SegmentAlgorithmTypeValues.MANUAL
    descriptions = [hd.seg.SegmentDescription(number, label, codes.SCT.Tissue, codes.SCT.Tissue, manual)
                    for number, label in enumerate(labels, start=1)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="test", software_versions="0",
        device_serial_number="0")
    seg.SpecificCharacterSet = "ISO_IR 192"
    seg.save_as(case_0697_copy / "labelled.dcm")
    assert pydicom.dcmread(case_0697_copy / "labelled.dcm").SegmentSequence[1].SegmentLabel == labels[1]
    if not declared:  # the UTF-8 bytes kept: pydicom writes back what it has not decoded as it read it
        written = pydicom.dcmread(case_0697_copy / "labelled.dcm")
        del written.SpecificCharacterSet
        written.save_as(case_0697_copy / "labelled.dcm")
        assert labels[1].encode() in (case_0697_copy / "labelled.dcm").read_bytes()
    case = read_seg_case(case_0697_copy)
    np.testing.assert_array_equal(case.liver.array, pixels[..., 0])
    np.testing.assert_array_equal(case.lesion.array, pixels[..., 1])
