"""The result as a DICOM SEG over the CT's own series: on every labelled shared case's real DICOM,
the reference masks written as a SEG read back voxel for voxel, and each SEG frame references the
CT slice (or frame) whose position it holds, as a PACS viewer needs to show it over that slice."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from bad_inputs import multiframe_file
from LiverLesionSegLib.io.cases import find_cases, find_input_ct, load_case
from LiverLesionSegLib.io.dicom import read_series
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg
from LiverLesionSegLib.segments import SEGMENTS

LABELLED = {
    "3Dircadb1.7": "ircadb/3Dircadb1.7",  # no lesion: an empty "Liver lesion" segment
    "3Dircadb1.17": "ircadb/3Dircadb1.17",
    "RadCTTACEomics_0697": "tace/RadCTTACEomics_0697",  # a folder with two CT series, SEGs and a stray image
    "RadCTTACEomics_1211": "tace/RadCTTACEomics_1211",
}


def _positions_by_sop(files: list[Path]) -> dict[str, np.ndarray]:
    """Each source image's position, straight from pydicom."""
    found = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found[ds.SOPInstanceUID] = np.array(ds.ImagePositionPatient, dtype=float)
    return found


def _frame_positions(seg: pydicom.Dataset) -> np.ndarray:
    return np.array([group.PlanePositionSequence[0].ImagePositionPatient
                     for group in seg.PerFrameFunctionalGroupsSequence], dtype=float)


def _referenced(seg: pydicom.Dataset) -> list:
    return [group.DerivationImageSequence[0].SourceImageSequence[0]
            for group in seg.PerFrameFunctionalGroupsSequence]


def _with_frame_of_reference(files: list[Path], folder: Path) -> Path:
    """A copy of 3D-IRCADb-01's series with the FrameOfReferenceUID its anonymisation removed."""
    folder.mkdir()
    uid = pydicom.uid.generate_uid()
    for path in files:
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = uid
        ds.save_as(folder / path.name)
    return folder


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_reference_masks_as_a_dicom_seg_read_back_on_the_ct(name, data_dir, tmp_path):
    folder = data_dir / LABELLED[name]
    case = load_case(find_cases([folder])[0])
    labels = case.ct.with_array(case.label_map())
    source = find_input_ct(folder).series
    if name.startswith("3Dircadb"):
        source = find_input_ct(_with_frame_of_reference(source.files, tmp_path / "ct")).series
    path = tmp_path / "result.dcm"
    save_dicom_seg(path, labels, source, ["model.safetensors"])

    masks = read_seg_masks(path, case.ct)  # placed by each frame's plane position
    assert np.array_equal(masks["liver"], labels.array == 1)
    assert np.array_equal(masks["lesion"], labels.array == 2)
    assert masks["liver"].any() and masks["lesion"].any() == (name != "3Dircadb1.7")

    seg = pydicom.dcmread(path)
    first = pydicom.dcmread(source.files[0], stop_before_pixels=True)
    assert seg.Modality == "SEG" and seg.SeriesInstanceUID != first.SeriesInstanceUID
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert seg.get(keyword) == first.get(keyword), keyword
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [spec.name for spec in SEGMENTS]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SCT liver
    assert seg.SegmentSequence[1].AnatomicRegionSequence[0].CodeMeaning == "Liver"
    # Each frame names the CT slice it lies on: same position, and a slice of the series itself.
    positions = _positions_by_sop(source.files)
    for position, reference in zip(_frame_positions(seg), _referenced(seg)):
        assert np.allclose(positions[reference.ReferencedSOPInstanceUID], position, atol=1e-3)


def test_a_multiframe_ct_gets_its_frames_referenced(data_dir, tmp_path):
    """A multi-frame CT stored head first: each SEG frame names the source frame at its position."""
    info = find_input_ct(data_dir / "hcc-tace-seg" / "HCC_006").series
    single = read_series(info)
    path = multiframe_file(info.files[::-1], tmp_path / "enhanced" / "ct.dcm")
    source = find_input_ct(path).series
    labels = np.zeros(single.shape, np.uint8)
    labels[20:40, 200:300, 150:260] = 1
    labels[25:29, 240:260, 170:200] = 2  # off-centre along the slices: a reversed order would show
    save_dicom_seg(tmp_path / "result.dcm", single.with_array(labels), source, ["model.safetensors"])

    masks = read_seg_masks(tmp_path / "result.dcm", single)
    assert np.array_equal(masks["liver"], labels == 1) and np.array_equal(masks["lesion"], labels == 2)
    enhanced = pydicom.dcmread(path, stop_before_pixels=True)
    frame_positions = _frame_positions(enhanced)
    seg = pydicom.dcmread(tmp_path / "result.dcm")
    for position, reference in zip(_frame_positions(seg), _referenced(seg)):
        assert reference.ReferencedSOPInstanceUID == enhanced.SOPInstanceUID
        assert np.allclose(frame_positions[int(reference.ReferencedFrameNumber) - 1], position, atol=1e-3)


def test_highdicom_reads_the_segments_as_written(data_dir, tmp_path):
    """Through highdicom's own reader too: the segments' codes, an automatic AI algorithm, research use."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    source = find_input_ct(folder).series
    ct = read_series(source)
    labels = np.zeros(ct.shape, np.uint8)
    labels[20:24, 100:140, 100:140] = 1
    labels[21, 110:120, 110:120] = 2
    save_dicom_seg(tmp_path / "result.dcm", ct.with_array(labels), source, ["a.safetensors", "b.safetensors"])
    seg = hd.seg.segread(tmp_path / "result.dcm")
    assert seg.ContentQualification == "RESEARCH"
    for spec in SEGMENTS:
        description = seg.get_segment_description(spec.label)
        assert description.segment_label == spec.name
        assert description.segmented_property_type.value == spec.type.value
        assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algorithm = description.algorithm_identification[0]
        assert algorithm.AlgorithmName == "LiverLesionSeg" and "b.safetensors" in algorithm.AlgorithmParameters
    assert seg.get_segment_description(2).segmented_property_category.value == "49755003"


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "FrameOfReferenceUID"])
def test_images_disagreeing_on_an_identifier_the_outputs_share_are_refused_first(keyword, data_dir, tmp_path):
    """Half the images with another study or frame of reference: refused before any work, naming it."""
    from bad_inputs import copy_slices
    from LiverLesionSegLib.errors import OutputError
    from LiverLesionSegLib.io.dicomseg_write import check_referenced_uids

    files = copy_slices(data_dir, tmp_path / "series")
    with find_input_ct(tmp_path / "series") as found:
        check_referenced_uids(found.series)  # as exported: one of each
    uid = pydicom.uid.generate_uid()
    for path in files[3:]:
        ds = pydicom.dcmread(path)
        setattr(ds, keyword, uid)
        ds.save_as(path)
    with find_input_ct(tmp_path / "series") as found:
        assert found.series.differing_uids == (keyword,)
        with pytest.raises(OutputError, match=f"images carry different {keyword}s, and a DICOM SEG must share one"):
            check_referenced_uids(found.series)
