"""After correction in the Segment Editor: the lesions measured again, and the corrected segmentation
exported as a DICOM SEG and a DICOM SR lesion report over the CT's own DICOM series.

Real MRML classes (`slicer-core`) and a real DICOM case: its CT goes into a volume node as Slicer's
DICOM module leaves it (the series' SOP instance UIDs in `DICOM.instanceUIDs`; the database's
`fileForInstance` is a lookup from UID to file), a "model result" holding the case's reference
segmentation and one false lesion, and the reader's correction erases that lesion through
`vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment`, as the Segment Editor's effects do.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")
import vtk  # noqa: E402

from bad_inputs import make_read_only  # noqa: E402
from slicer_logic_cases import check_sample_case_after_correction, file_digest  # noqa: E402
from LiverLesionSegLib import mrml, mrml_export, mrml_tables  # noqa: E402
from LiverLesionSegLib.errors import InputError, OutputError  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, find_input_ct, load_case  # noqa: E402
from LiverLesionSegLib.io.dicomseg import read_seg_masks  # noqa: E402
from LiverLesionSegLib.io.rtstruct import read_rtstruct_masks  # noqa: E402
from LiverLesionSegLib.lesions import lesion_table, mask_volume_ml  # noqa: E402
from LiverLesionSegLib.segments import LESION  # noqa: E402

CASE = "tace/RadCTTACEomics_1211"
FALSE_LESION_VOXELS = (slice(0, 3), slice(0, 12), slice(0, 12))  # placed inside the liver, away from lesions


@pytest.fixture(scope="module")
def case(data_dir):
    case = load_case(find_cases([data_dir / CASE])[0])
    found = find_input_ct(data_dir / CASE)
    found.close()
    return case, found.series


@pytest.fixture
def loaded(case):
    """A scene with the CT as loaded from the DICOM database and the model's result corrected:
    (scene, volume node, corrected segmentation node, the UID lookup, the corrected label map)."""
    case, series = case
    scene = slicer.vtkMRMLScene()
    volume_node = mrml.add_volume_node(scene, case.ct, "CT")
    volume_node.SetAttribute(mrml_export.DICOM_UIDS_ATTRIBUTE, " ".join(series.sop_instance_uids))
    files = {uid: str(file) for uid, file in zip(series.sop_instance_uids, series.files)}
    liver, lesion = case.liver.array > 0, case.lesion.array > 0
    with_false = lesion.copy()
    with_false[false_lesion_place(liver, lesion)] = True
    segmentation_node = mrml.new_segmentation_node(scene, "CT liver segmentation")
    mrml.fill_segmentation_node(segmentation_node, volume_node, case.ct.with_array((liver | lesion).astype(np.uint8)),
                                case.ct.with_array(with_false.astype(np.uint8)))
    first = mrml.measure_again(volume_node, segmentation_node)  # as the model's result was measured
    assert len(first.lesions) == len(lesion_table(case.lesion)) + 1
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(  # the reader erases the false lesion
        mrml.oriented_image(case.lesion), segmentation_node, LESION.segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    labels = (liver | lesion).astype(np.uint8)
    labels[lesion] = LESION.label
    return scene, volume_node, segmentation_node, files.get, first.lesion_table_node, labels


def false_lesion_place(liver: np.ndarray, lesion: np.ndarray) -> tuple[slice, ...]:
    """A small box wholly in the liver and at least 10 voxels from any lesion."""
    from scipy import ndimage

    near = ndimage.binary_dilation(lesion, iterations=10)
    ks, js, is_ = np.nonzero(liver & ~near)
    middle = len(ks) // 2
    k, j, i = ks[middle], js[middle], is_[middle]
    for dk in range(3):  # a box around a liver voxel, shrunk until it is wholly in the liver
        box = (slice(k, k + 3 - dk), slice(j, j + 12), slice(i, i + 12))
        if liver[box].all() and not near[box].any():
            return box
    return (slice(k, k + 1), slice(j, j + 1), slice(i, i + 1))


def test_lesions_measured_again_after_the_false_one_is_erased(case, loaded):
    case, _ = case
    scene, volume_node, segmentation_node, _, table_node, _ = loaded
    outputs = mrml.measure_again(volume_node, segmentation_node)
    expected = lesion_table(case.lesion, case.ct)
    assert outputs.lesion_table_node is table_node  # refilled, not a second table
    rows = mrml_tables.table_rows(table_node)
    assert [row["Volume"] for row in rows] == pytest.approx([lesion.volume_ml for lesion in expected])
    assert [row["Longest axial diameter"] for row in rows] == pytest.approx(
        [lesion.longest_axial_diameter_mm for lesion in expected])
    assert [row["Median CT value"] for row in rows] == pytest.approx([lesion.median_hu for lesion in expected])
    lines = scene.GetNodesByClass("vtkMRMLMarkupsLineNode")
    assert lines.GetNumberOfItems() == len(expected) == len(outputs.long_axis_nodes)
    assert outputs.liver_ml == pytest.approx(mask_volume_ml(case.liver.with_array(
        ((case.liver.array > 0) | (case.lesion.array > 0)).astype(np.uint8))))


def test_corrected_segmentation_exported_as_dicom_seg_and_report(case, loaded, tmp_path):
    case, series = case
    _, volume_node, segmentation_node, file_for_instance, _, labels = loaded
    exported = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CT liver segmentation SEG.dcm",
                                                        "CT liver segmentation SR.dcm"]
    masks = read_seg_masks(exported.seg, case.ct)  # back on the CT's grid, voxel for voxel
    assert np.array_equal(masks["lesion"] > 0, labels == LESION.label)
    assert np.array_equal((masks["liver"] | masks["lesion"]) > 0, labels > 0)
    seg = hd.seg.segread(exported.seg)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series.uid
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    assert seg.SeriesDescription.endswith("corrected)")
    report = hd.sr.srread(exported.report)
    groups = report.content.get_planar_roi_measurement_groups()
    expected = lesion_table(case.lesion, case.ct)
    assert [str(group.tracking_identifier) for group in groups] == [f"Lesion {n + 1}" for n in range(len(expected))]
    volumes = [{m.name.meaning: m.value for m in group.get_measurements()}["Volume"] for group in groups]
    assert volumes == pytest.approx([lesion.volume_ml for lesion in expected], rel=1e-6)
    assert report.SeriesDescription.endswith("corrected)")
    assert exported.liver_ml == pytest.approx(mask_volume_ml(case.ct.with_array(labels)))


def test_lesions_alone_are_measured_and_exported_without_a_liver(case, loaded, tmp_path):
    """A reader who deleted the Liver segment (or loaded a tumours-only segmentation): the lesions
    are measured and exported, the liver reported as not segmented, not as the lesions' volume."""
    case, _ = case
    _, volume_node, segmentation_node, file_for_instance, _, labels = loaded
    segmentation_node.GetSegmentation().RemoveSegment(mrml.LIVER.segment_id)
    outputs = mrml.measure_again(volume_node, segmentation_node)
    expected = lesion_table(case.lesion, case.ct)
    assert outputs.liver_ml is None and outputs.summary.startswith(f"Liver not segmented; {len(expected)} lesion(s)")
    exported = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    assert exported.liver_ml is None and len(exported.lesions) == len(expected)
    masks = read_seg_masks(exported.seg, case.ct)
    assert set(masks) == {"lesion"} and np.array_equal(masks["lesion"] > 0, labels == LESION.label)
    assert hd.sr.srread(exported.report).content.get_image_measurement_groups() == []  # no liver volume
    segmentation_node.GetSegmentation().RemoveSegment(LESION.segment_id)
    with pytest.raises(InputError, match="has neither a liver nor a lesion segment"):
        mrml.measure_again(volume_node, segmentation_node)


def test_an_rt_structure_set_is_exported_when_asked(case, loaded, tmp_path):
    case, series = case
    _, volume_node, segmentation_node, file_for_instance, _, labels = loaded
    exported = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance, structures=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "CT liver segmentation RS.dcm", "CT liver segmentation SEG.dcm", "CT liver segmentation SR.dcm"]
    assert exported.files == [exported.seg, exported.report, exported.structures]
    masks = read_rtstruct_masks(exported.structures, case.ct)
    assert np.array_equal(masks["liver"], labels > 0) and np.array_equal(masks["lesion"], labels == LESION.label)
    structures = pydicom.dcmread(exported.structures)
    assert structures.SeriesDescription.endswith("corrected)")
    assert {roi.ROIGenerationAlgorithm for roi in structures.StructureSetROISequence} == {"SEMIAUTOMATIC"}
    again = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)  # not asked: none
    assert again.structures is None and again.seg.name == "CT liver segmentation 2 SEG.dcm"
    assert again.files == [again.seg, again.report]


def test_a_second_export_is_numbered_and_the_first_kept(loaded, tmp_path):
    _, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    first = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    digests = [file_digest(first.seg), file_digest(first.report)]
    second = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    assert second.seg.name == "CT liver segmentation 2 SEG.dcm"
    assert second.report.name == "CT liver segmentation 2 SR.dcm"
    assert [file_digest(first.seg), file_digest(first.report)] == digests


def test_models_that_made_the_segmentation_are_named_in_the_seg(loaded, tmp_path):
    _, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    segmentation_node.SetAttribute(mrml.MODELS_ATTRIBUTE, "liverlesionseg-v3.safetensors")
    exported = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    algorithm = hd.seg.segread(exported.seg).SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert "liverlesionseg-v3.safetensors" in str(algorithm.AlgorithmParameters)


def test_the_models_own_result_is_exported_as_automatic_until_a_reader_changes_it(case, tmp_path):
    """A segmentation as the panel writes it (`write_outputs`) exports as AUTOMATIC, the series not
    marked corrected; once a lesion is erased, as SEMIAUTOMATIC and corrected."""
    from LiverLesionSegLib.infer import Segmentation

    case, series = case
    scene = slicer.vtkMRMLScene()
    volume_node = mrml.add_volume_node(scene, case.ct, "CT")
    volume_node.SetAttribute(mrml_export.DICOM_UIDS_ATTRIBUTE, " ".join(series.sop_instance_uids))
    file_for_instance = dict(zip(series.sop_instance_uids, map(str, series.files))).get
    result = Segmentation(case.liver, case.lesion, case.ct.with_array(case.lesion.array.astype(np.float32)))
    outputs = mrml.write_outputs(scene, volume_node, result, models=["model-a.safetensors"])
    unchanged = mrml_export.export_dicom(volume_node, outputs.segmentation_node, tmp_path, file_for_instance)
    seg = hd.seg.segread(unchanged.seg)
    assert not unchanged.corrected
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"AUTOMATIC"}
    assert not seg.SeriesDescription.endswith("corrected)")
    assert not hd.sr.srread(unchanged.report).SeriesDescription.endswith("corrected)")
    smallest = lesion_table(case.lesion)[-1]
    erased = case.lesion.array.copy()
    erased[smallest.first_slice:smallest.last_slice + 1] = 0
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        mrml.oriented_image(case.lesion.with_array(erased)), outputs.segmentation_node, LESION.segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    corrected = mrml_export.export_dicom(volume_node, outputs.segmentation_node, tmp_path, file_for_instance)
    assert corrected.corrected and corrected.seg.name.endswith(" 2 SEG.dcm")
    assert {item.SegmentAlgorithmType for item in hd.seg.segread(corrected.seg).SegmentSequence} == {"SEMIAUTOMATIC"}


def test_sample_case_measured_and_exported_from_its_own_folder(tmp_path):
    """The Sample Data module's case is not in the DICOM database: its node names its folder."""
    check_sample_case_after_correction(slicer.vtkMRMLScene(), tmp_path)


# --- refused, in one line, with nothing written ----------------------------------------------------

def test_a_volume_not_loaded_from_dicom_is_refused(case, loaded, tmp_path):
    _, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    volume_node.RemoveAttribute(mrml_export.DICOM_UIDS_ATTRIBUTE)
    with pytest.raises(InputError, match=r"^CT: was not loaded from DICOM.*\. Load the CT through the DICOM module"):
        mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    assert list(tmp_path.iterdir()) == []


def test_files_gone_from_the_database_are_refused(loaded, tmp_path):
    _, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    uids = volume_node.GetAttribute(mrml_export.DICOM_UIDS_ATTRIBUTE).split()
    gone = {uids[3]}
    with pytest.raises(InputError, match=rf"1 of the {len(uids)} DICOM files .* no longer in the DICOM database"):
        mrml_export.export_dicom(volume_node, segmentation_node, tmp_path,
                          lambda uid: "" if uid in gone else file_for_instance(uid))
    assert list(tmp_path.iterdir()) == []


def test_a_moved_volume_or_another_transform_is_refused(loaded, tmp_path):
    scene, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    segmentation_node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="under another transform than the volume CT"):
        mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    segmentation_node.SetAndObserveTransformNodeID(None)
    origin = volume_node.GetOrigin()
    volume_node.SetOrigin(origin[0] + 5, origin[1], origin[2])  # a transform hardened on the volume
    with pytest.raises(InputError, match="no longer lies where its DICOM series does"):
        mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_refused_and_earlier_exports_kept(loaded, tmp_path):
    _, volume_node, segmentation_node, file_for_instance, _, _ = loaded
    with pytest.raises(OutputError, match="the output folder does not exist"):
        mrml_export.export_dicom(volume_node, segmentation_node, tmp_path / "nowhere", file_for_instance)
    first = mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    digest = file_digest(first.seg)
    undo = make_read_only(tmp_path)
    try:
        with pytest.raises(OutputError, match="not writable"):
            mrml_export.export_dicom(volume_node, segmentation_node, tmp_path, file_for_instance)
    finally:
        undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.seg.name, first.report.name]
    assert file_digest(first.seg) == digest


def test_a_readers_columns_follow_their_lesions_when_measured_again(loaded):
    """A reader unlocks the lesion table and adds a note and a LI-RADS category to each lesion, then
    erases the second lesion and measures again: each entry stays with its own lesion (numbers shift),
    and the erased lesion's entries are named in a caution, not lost without a word."""
    scene, volume_node, segmentation_node, _, table_node, labels = loaded
    first = mrml.measure_again(volume_node, segmentation_node)
    assert len(first.lesions) == 3
    table_node.SetLocked(False)
    note, category = vtk.vtkStringArray(), vtk.vtkDoubleArray()
    note.SetName("Note")
    category.SetName("LI-RADS")
    for lesion in first.lesions:
        note.InsertNextValue(f"seen at {lesion.volume_ml:.3f} mL")
        category.InsertNextValue(2.0 + lesion.number)
    table_node.GetTable().AddColumn(note)
    table_node.GetTable().AddColumn(category)
    table_node.SetColumnUnitLabel("LI-RADS", "category")  # the reader's columns, as the Tables module adds them

    from scipy import ndimage
    components, _ = ndimage.label(labels == LESION.label, np.ones((3, 3, 3)))
    sizes = np.bincount(components.ravel())[1:]
    second = int(np.argsort(sizes)[::-1][1]) + 1  # the second largest lesion, lesion 2
    kept = (components > 0) & (components != second)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        mrml.oriented_image(volume_of(volume_node, kept)), segmentation_node, LESION.segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)

    again = mrml.measure_again(volume_node, segmentation_node)
    rows = mrml_tables.table_rows(table_node)
    assert [row["Lesion"] for row in rows] == [1, 2]
    by_volume = {lesion.number: lesion.volume_ml for lesion in first.lesions}
    assert rows[0]["Note"] == f"seen at {by_volume[1]:.3f} mL" and rows[0]["LI-RADS"] == 3
    assert rows[1]["Note"] == f"seen at {by_volume[3]:.3f} mL" and rows[1]["LI-RADS"] == 5  # was lesion 3
    assert rows[1]["Volume"] == pytest.approx(by_volume[3])
    assert table_node.GetColumnUnitLabel("LI-RADS") == "category"
    caution = [c for c in again.caveats if "you added to the lesion table" in c]
    assert len(caution) == 1 and f"lesion 2 (Note 'seen at {by_volume[2]:.3f} mL', LI-RADS '4')" in caution[0]


def volume_of(volume_node, mask: np.ndarray):
    return mrml.volume_from_node(volume_node).with_array(mask.astype(np.uint8))
