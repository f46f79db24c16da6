"""The lesion table as a DICOM SR (TID 1500) over the CT's own series: on a real case's lesions,
read back with highdicom, each lesion's group holds the table's figures, and its long axis line
lies on the CT slice the table names, as long as the table says."""

from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest

from LiverLesionSegLib.io.cases import find_cases, find_input_ct, load_case
from LiverLesionSegLib.io.dicomsr_write import save_lesion_report
from LiverLesionSegLib.lesions import lesion_table

CASE = "tace/RadCTTACEomics_1211"  # its SEG's lesions, on a CT series with a frame of reference


def read_groups(path):
    report = hd.sr.srread(path)
    return report, report.content.get_planar_roi_measurement_groups()


def measured(group) -> dict[str, float]:
    return {m.name.meaning: m.value for m in group.get_measurements()}


@pytest.fixture(scope="module")
def real_lesions(data_dir):
    case = load_case(find_cases([data_dir / CASE])[0])
    found = find_input_ct(data_dir / CASE)
    return found.series, case.ct, lesion_table(case.lesion, case.ct)


def test_each_lesion_is_a_group_with_the_tables_figures(real_lesions, tmp_path):
    series, ct, lesions = real_lesions
    assert len(lesions) >= 1
    save_lesion_report(tmp_path / "report.dcm", lesions, 1234.5, series, ["model.safetensors"])
    report, groups = read_groups(tmp_path / "report.dcm")
    assert report.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    source = pydicom.dcmread(series.files[0], stop_before_pixels=True)
    assert (report.StudyInstanceUID, report.PatientID) == (source.StudyInstanceUID, source.PatientID)
    assert [str(g.tracking_identifier) for g in groups] == [f"Lesion {lesion.number}" for lesion in lesions]
    for group, lesion in zip(groups, lesions):
        values = measured(group)
        assert values["Long axis"] == pytest.approx(lesion.longest_axial_diameter_mm, rel=1e-6)
        assert values["Short axis"] == pytest.approx(lesion.perpendicular_diameter_mm, rel=1e-6)
        assert values["Volume"] == pytest.approx(lesion.volume_ml, rel=1e-6)
        assert values["Attenuation Coefficient"] == pytest.approx(lesion.median_hu, abs=0.01)
        assert group.finding_type.meaning == "Lesion"
        assert [site.value.value for site in group.finding_sites] == ["10200004"]  # SNOMED CT liver


def test_long_axis_lies_on_the_slice_the_table_names(real_lesions, tmp_path):
    """The line references the CT slice at the lesion's diameter_slice (found independently by its
    position), and its length in that slice's pixels is the long axis."""
    series, ct, lesions = real_lesions
    save_lesion_report(tmp_path / "report.dcm", lesions, 1234.5, series, ["m"])
    _, groups = read_groups(tmp_path / "report.dcm")
    by_sop = {}
    for path in series.files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        by_sop[ds.SOPInstanceUID] = ds
    for group, lesion in zip(groups, lesions):
        region = group.roi
        assert region.GraphicType == "POLYLINE"
        slice_header = by_sop[region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID]
        expected_z = ct.physical_points([[0, 0, lesion.diameter_slice]])[0][2]
        assert float(slice_header.ImagePositionPatient[2]) == pytest.approx(expected_z, abs=0.01)
        (x0, y0), (x1, y1) = np.array(region.GraphicData, dtype=float).reshape(2, 2)
        row_spacing, column_spacing = (float(v) for v in slice_header.PixelSpacing)
        length = np.hypot((x1 - x0) * column_spacing, (y1 - y0) * row_spacing)
        assert length == pytest.approx(lesion.longest_axial_diameter_mm, rel=1e-6)
        assert 0 <= min(x0, x1) and max(x0, x1) <= slice_header.Columns
        assert 0 <= min(y0, y1) and max(y0, y1) <= slice_header.Rows


def test_the_liver_group_and_no_lesion(real_lesions, tmp_path):
    """The liver's volume in a group of its own, which a CT without lesions gets alone."""
    series, _, _ = real_lesions
    save_lesion_report(tmp_path / "report.dcm", [], 987.0, series, ["m"])
    report, groups = read_groups(tmp_path / "report.dcm")
    assert groups == []
    (liver,) = report.content.get_image_measurement_groups()
    assert str(liver.tracking_identifier) == "Liver" and measured(liver) == {"Volume": pytest.approx(987.0)}
    assert liver.get_measurements()[0].unit.value == "mL"


def test_a_line_on_a_resampled_slice_is_in_patient_coordinates(data_dir, tmp_path):
    """Slices 2.5 mm apart then 5 mm apart are resampled at 2.5 mm: a lesion on a slice made
    between two acquired ones is drawn in 3-D patient coordinates (SCOORD3D), one on an acquired
    slice on that slice's image."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for n in [*range(100, 106), 107, 109, 111]:
        shutil.copy(data_dir / "tace/RadCTTACEomics_1211/10_AP_Ax2.50mm" / f"dicom-{n:05d}.dcm", folder / f"{n}.dcm")
    found = find_input_ct(folder)
    grid = found.read()
    mask = np.zeros(grid.shape, np.uint8)
    mask[1, 200:220, 200:230] = 1  # k = 1: between acquired slices 111 (k = 0) and 109 (k = 2)
    mask[8, 300:310, 100:120] = 1  # k = 8: acquired slice 103
    lesions = lesion_table(grid.with_array(mask), grid)
    save_lesion_report(tmp_path / "report.dcm", lesions, 10.0, found.series, ["m"])
    _, groups = read_groups(tmp_path / "report.dcm")
    between, acquired = sorted(groups, key=lambda g: -measured(g)["Volume"])
    assert between.reference_type.meaning == "Image Region" and between.roi.ValueType == "SCOORD3D"
    ends = np.array(between.roi.GraphicData, dtype=float).reshape(2, 3)
    np.testing.assert_allclose(ends, np.array(lesions[0].long_axis_lps), atol=1e-3)
    assert acquired.roi.ValueType == "SCOORD"
    referenced = acquired.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    assert referenced == pydicom.dcmread(folder / "103.dcm", stop_before_pixels=True).SOPInstanceUID


def test_on_a_multiframe_ct_the_line_names_its_frame(data_dir, tmp_path):
    """A CT held in one multi-frame file: the long axis references that file and the frame whose
    plane position is the lesion's slice."""
    import bad_inputs

    files = bad_inputs.copy_slices(data_dir, tmp_path / "slices")
    path = bad_inputs.multiframe_file(files[::-1], tmp_path / "enhanced" / "ct.dcm")
    found = find_input_ct(path)
    grid = found.read()
    mask = np.zeros(grid.shape, np.uint8)
    mask[3, 200:230, 150:190] = 1
    (lesion,) = lesion_table(grid.with_array(mask), grid)
    save_lesion_report(tmp_path / "report.dcm", [lesion], 100.0, found.series, ["m"])
    _, (group,) = read_groups(tmp_path / "report.dcm")
    source = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert source.ReferencedSOPInstanceUID == header.SOPInstanceUID
    (frame,) = np.atleast_1d(source.ReferencedFrameNumber).astype(int)
    position = header.PerFrameFunctionalGroupsSequence[frame - 1].PlanePositionSequence[0].ImagePositionPatient
    np.testing.assert_allclose([float(v) for v in position], grid.physical_points([[0, 0, 3]])[0], atol=0.01)
