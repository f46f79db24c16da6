"""Scene states a clinician really leaves behind, on real MRML classes and real CT voxels (a crop of
3Dircadb1.17 with its reference masks): a CT cropped after it was segmented, segments stored as
closed surfaces, a segmentation moved by a transform, a column added to the comparison table, the
CT chosen as its own probability volume, an emptied liver segment, lesions named by their kind,
an image of no voxels, a label map chosen as the CT from a script. Each was a crash, a silently
wrong figure or an overwritten CT (an adversarial sweep of the Slicer logic)."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")
vtk = pytest.importorskip("vtk")

import slicer_logic_cases as cases  # noqa: E402
from LiverLesionSegLib import mrml, mrml_tables  # noqa: E402
from LiverLesionSegLib.errors import InputError  # noqa: E402
from LiverLesionSegLib.parameters import SegmentParameters  # noqa: E402
from LiverLesionSegLib.segments import LESION, LIVER  # noqa: E402
from LiverLesionSegLib.volume import Volume  # noqa: E402

FIRST_SLICE, SLICES = 80, 32  # 3Dircadb1.17: both lesions and the liver on these slices


@pytest.fixture(scope="module")
def case(data_dir):
    from LiverLesionSegLib.io.cases import find_cases, load_case

    full = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    return {name: cases.crop_slices(volume, FIRST_SLICE, SLICES)
            for name, volume in (("ct", full.ct), ("liver", full.liver), ("lesion", full.lesion))}


def segmentation_of(scene, name: str, segments: list[tuple[str, Volume]], reference_node=None):
    """A segmentation node of (segment name, mask) pairs, each segment on its mask's own grid."""
    node = mrml.new_segmentation_node(scene, name)
    if reference_node is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    for number, (segment_name, mask) in enumerate(segments):
        segment = mrml.make_segment(LIVER, mask)
        segment.SetName(segment_name)
        node.GetSegmentation().AddSegment(segment, f"segment_{number}")
    return node


def volume_ml(mask: np.ndarray, grid: Volume) -> float:
    return float((mask > 0).sum()) * float(np.prod(grid.spacing)) / 1000


def test_a_segmentation_reaching_beyond_a_cropped_ct_is_read_on_the_crop(case):
    """Crop Volume after segmenting: the segments reach beyond the CT's 12 slices (the resampler
    returned the union of both extents, and reshaping it was an internal error)."""
    scene = slicer.vtkMRMLScene()
    full = mrml.add_volume_node(scene, case["ct"], "CT")
    crop = {name: cases.crop_slices(volume, 10, 12) for name, volume in case.items()}
    cropped = mrml.add_volume_node(scene, crop["ct"], "CT cropped")
    segmentation = mrml.new_segmentation_node(scene, "CT liver segmentation")
    mrml.fill_segmentation_node(segmentation, full, case["liver"], case["lesion"])
    labels = mrml.label_map_from_segmentation(segmentation, mrml.volume_from_node(cropped))
    np.testing.assert_array_equal(labels > 0, (crop["liver"].array | crop["lesion"].array) > 0)
    np.testing.assert_array_equal(labels == 2, crop["lesion"].array > 0)
    outputs = mrml.measure_again(cropped, segmentation)
    assert outputs.liver_ml == pytest.approx(volume_ml(labels, crop["ct"]))


def test_segments_stored_as_closed_surfaces_are_read_not_taken_as_empty(case):
    """Segments imported as models (closed surfaces, no binary labelmap) were measured as 0 mL and
    exported as empty; now their labelmaps are made for the reading, and the node is left as it was."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = segmentation_of(scene, "from models", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    stored = segmentation.GetSegmentation()
    assert stored.CreateRepresentation("Closed surface")
    stored.SetSourceRepresentationName("Closed surface")
    stored.RemoveRepresentation(mrml.BINARY_LABELMAP)
    labels = mrml.label_map_from_segmentation(segmentation, mrml.volume_from_node(volume))
    for got, truth in ((labels > 0, case["liver"].array > 0), (labels == 2, case["lesion"].array > 0)):
        assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.98  # surfaces made from these voxels
    assert stored.GetSourceRepresentationName() == "Closed surface"
    assert not stored.ContainsRepresentation(mrml.BINARY_LABELMAP)


def test_segments_without_any_representation_are_refused(case):
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = segmentation_of(scene, "hollow", [("Liver", case["liver"])], volume)
    stored = segmentation.GetSegmentation()
    stored.SetSourceRepresentationName("Closed surface")
    stored.RemoveRepresentation(mrml.BINARY_LABELMAP)
    with pytest.raises(InputError) as exc:
        mrml.measure_again(volume, segmentation)
    assert str(exc.value).startswith("hollow: its segments are stored as 'Closed surface' and no binary labelmap")


def test_a_comparison_under_another_transform_is_refused(case):
    """A segmentation moved 40 mm by a transform compared as Dice 1.0 (its untransformed voxels)."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    ours = segmentation_of(scene, "moved", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    reference = segmentation_of(scene, "reference", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 40.0)
    transform.SetMatrixTransformToParent(matrix)
    for moved, other in ((ours, reference), (reference, ours)):
        moved.SetAndObserveTransformNodeID(transform.GetID())
        with pytest.raises(InputError, match=rf"^{moved.GetName()}: is under another transform than the volume CT"):
            mrml.compare_segmentations(volume, ours, reference)
        moved.SetAndObserveTransformNodeID(None)
    assert mrml.compare_segmentations(volume, ours, reference).liver_dice == 1.0


def test_comparison_rows_go_under_their_column_names(case):
    """A reader's column inserted in the comparison table shifted every later number one column
    to the right (Lesion Dice showed the liver's 1.0 as 0.0)."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    ours = segmentation_of(scene, "model", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    empty_lesion = case["lesion"].with_array(np.zeros_like(case["lesion"].array))
    reference = segmentation_of(scene, "reader", [("Liver", case["liver"]), ("Tumor", empty_lesion)], volume)
    first = mrml.compare_segmentations(volume, ours, reference)
    table = mrml_tables.comparison_table(scene)
    note = vtk.vtkStringArray()
    note.SetName("Reader note")
    note.InsertNextValue("checked")
    table.GetTable().InsertColumn(note, 3)
    second = mrml.compare_segmentations(volume, ours, ours)
    rows = mrml_tables.table_rows(table)
    assert [row["Reader note"] for row in rows] == ["checked", ""]
    assert [row["Lesion Dice"] for row in rows] == [first.lesion_dice, second.lesion_dice] == [0.0, 1.0]
    assert [row["Reference"] for row in rows] == ["reader", "model"]


def test_the_ct_chosen_as_its_probability_volume_is_refused_and_kept(case, model_path):
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    before = np.array(slicer.util.arrayFromVolume(volume), copy=True)
    with pytest.raises(InputError, match=r"^CT: is chosen both as the input CT and as the probability volume"):
        mrml.segment_volume_node(scene, volume, model_path, device="cpu", probability_node=volume)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), before)
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


def test_a_label_map_chosen_as_the_ct_in_a_script_is_refused(case, model_path):
    """The panel refused it already; `segment_volume_node` (scripts) segmented a 2.7 L 'liver'."""
    scene = slicer.vtkMRMLScene()
    labels = case["liver"].array + case["lesion"].array
    volume = mrml.add_volume_node(scene, case["ct"].with_array(labels.astype(np.int16)), "liver labels")
    with pytest.raises(InputError, match=r"^liver labels: holds only the values 0, 1, 2"):
        mrml.segment_volume_node(scene, volume, model_path, device="cpu")


def assert_refused_by_a_script_and_the_panel(scene, volume, model_path, message: str) -> None:
    """`segment_volume_node` (scripts) and the panel's start both refuse `volume` with `message`, before
    any segmentation node is added."""
    with pytest.raises(InputError, match=message):
        mrml.segment_volume_node(scene, volume, model_path, device="cpu")
    parameters = SegmentParameters(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LiverLesionSeg"))
    parameters.input_volume, parameters.model, parameters.device = volume, str(model_path), "cpu"
    with pytest.raises(InputError, match=message):
        mrml.start_segmentation(parameters)
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


def test_ct_values_without_their_rescale_are_refused_before_the_panel_segments_them(case, model_path):
    """A CT loaded from a NIfTI of its stored values (HU + 1024): the panel's start and a script refuse it
    before any node is added (it was segmented into a liver of many litres, with a caution)."""
    scene = slicer.vtkMRMLScene()
    raw = case["ct"].with_array(np.clip(case["ct"].array.astype(np.int32) + 1024, 0, None).astype(np.uint16))
    volume = mrml.add_volume_node(scene, raw, "stored values")
    assert_refused_by_a_script_and_the_panel(scene, volume, model_path,
                                             r"^stored values: its values look stored without their rescale")


def test_a_blank_volume_chosen_as_the_ct_is_refused_before_the_panel_segments_it(case, model_path):
    """A volume of one value (a failed import, an empty volume made on the CT's grid to draw on): refused
    by the panel's start and by scripts (it was segmented into an empty result with a caution)."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"].with_array(np.full(case["ct"].shape, -1024, np.int16)), "blank")
    assert_refused_by_a_script_and_the_panel(scene, volume, model_path,
                                             r"^blank: holds the one value -1024 in every voxel: a blank image")


def test_an_image_without_geometry_is_refused_reversed_and_measured_with_a_caution(case, model_path):
    """A NIfTI saved from a bare array and loaded into Slicer (1 mm voxels at 0, 0, 0): with the array's
    axes reversed, Apply and scripts refuse it before any node is added (sagittal planes were read as
    axial slices); the right way round, Measure again tells that its mL and mm are counted in voxels."""
    scene = slicer.vtkMRMLScene()
    bare = case["ct"].array
    reversed_axes = mrml.add_volume_node(scene, Volume(bare.transpose(2, 1, 0).copy(), (1, 1, 1), (0, 0, 0)), "bare")
    assert_refused_by_a_script_and_the_panel(scene, reversed_axes, model_path,
                                             r"^bare: holds no geometry .* axial slices are 32 x 512 voxels")
    grid = Volume(bare, (1, 1, 1), (0, 0, 0))
    volume = mrml.add_volume_node(scene, grid, "bare, right way round")
    masks = [("Liver", grid.with_array(case["liver"].array)), ("Liver lesion", grid.with_array(case["lesion"].array))]
    segmentation = segmentation_of(scene, "corrected", masks, volume)
    outputs = mrml.measure_again(volume, segmentation)
    assert "Caution: the image holds no voxel spacing or position" in outputs.cautions
    assert "counted in voxels" in outputs.cautions


def test_an_image_of_no_voxels_is_refused_in_one_line(model_path):
    scene = slicer.vtkMRMLScene()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    image = vtk.vtkImageData()
    image.SetExtent(0, -1, 0, -1, 0, -1)
    volume.SetAndObserveImageData(image)
    with pytest.raises(InputError, match=r"^empty: the input volume has no image data"):
        mrml.segment_volume_node(scene, volume, model_path, device="cpu")


def test_an_emptied_liver_segment_is_no_liver_and_odd_names_are_told(case):
    """The reader erased the liver segment's voxels: "100 % of the liver" before, now "Liver not
    segmented"; a segment named neither liver nor lesion is named in a caution, a hemangioma is
    a lesion."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    empty = case["liver"].with_array(np.zeros_like(case["liver"].array))
    segmentation = segmentation_of(scene, "corrected", [("Liver", empty), ("Hemangioma", case["lesion"]),
                                                        ("Abscess", case["lesion"])], volume)
    outputs = mrml.measure_again(volume, segmentation)
    assert outputs.liver_ml is None and outputs.summary.startswith("Liver not segmented; 2 lesion(s)")
    assert outputs.cautions == ("\nCaution: segment(s) 'Abscess' left out as neither liver nor lesion by name; "
                                "rename a lesion segment e.g. 'Liver lesion' (or 'Tumor') to count it.")


def test_segments_slicer_named_from_their_terminology_are_read_by_it(case):
    """A translated Slicer names the segments from the terminology picked (the Estonian "Maks",
    "Kasvaja"): their names say nothing here, their terminology (this module's Liver and Mass) does.
    A name the reader typed over it is read as typed ("Abscess", a lesion segment renamed)."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = mrml.new_segmentation_node(scene, "translated")
    mrml.fill_segmentation_node(segmentation, volume, case["liver"], case["lesion"])
    for spec, name in ((LIVER, "Maks"), (LESION, "Kasvaja")):
        segment = segmentation.GetSegmentation().GetSegment(spec.segment_id)
        segment.SetName(name)
        segment.SetNameAutoGenerated(True)
    outputs = mrml.measure_again(volume, segmentation)
    assert outputs.liver_ml == pytest.approx(volume_ml(case["liver"].array | case["lesion"].array, case["ct"]))
    assert len(outputs.lesions) > 0 and "left out" not in outputs.cautions
    segmentation.GetSegmentation().GetSegment(LESION.segment_id).SetName("Abscess")
    segmentation.GetSegmentation().GetSegment(LESION.segment_id).SetNameAutoGenerated(False)
    outputs = mrml.measure_again(volume, segmentation)
    assert len(outputs.lesions) == 0 and "'Abscess' left out" in outputs.cautions


def test_centroids_in_the_table_are_where_slicer_shows_the_lesions(case):
    """Under a registration transform the table gave the volume's own coordinates (111 mm from where
    the lesion is shown); now world coordinates, as the segmentation and the lines are shown."""
    from LiverLesionSegLib.lesions import lesion_table

    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = segmentation_of(scene, "corrected", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 40.0)
    matrix.SetElement(2, 3, -15.0)
    transform.SetMatrixTransformToParent(matrix)
    for node in (volume, segmentation):
        node.SetAndObserveTransformNodeID(transform.GetID())
    mrml.measure_again(volume, segmentation)
    rows = mrml_tables.table_rows(segmentation.GetNodeReference(mrml_tables.LESION_TABLE_ROLE))
    expected = lesion_table(case["lesion"], case["ct"])
    assert len(rows) == len(expected) >= 2
    for row, lesion in zip(rows, expected):
        shown = (row["Centroid R"], row["Centroid A"], row["Centroid S"])
        assert shown == pytest.approx(np.asarray(lesion.centroid_ras) + (40.0, 0.0, -15.0), abs=1e-3)


def test_a_long_axis_line_a_reader_adjusted_survives_measure_again(case):
    """The lines invite a reader to unlock and adjust them; Measure again deleted the adjusted one."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = segmentation_of(scene, "corrected", [("Liver", case["liver"]), ("Tumor", case["lesion"])], volume)
    first = mrml.measure_again(volume, segmentation).long_axis_nodes
    adjusted, replaced = first[0], first[1:]
    adjusted.SetLocked(False)
    adjusted.SetNthControlPointPosition(1, 0.0, 0.0, 0.0)
    again = mrml.measure_again(volume, segmentation).long_axis_nodes
    assert adjusted.GetScene() is scene and adjusted not in again
    assert all(line.GetScene() is None for line in replaced) and len(again) == len(first)


def test_a_sheared_volume_is_refused_not_measured_too_large(case):
    """A sheared IJK to RAS (a tilted scan hardened without resampling) gave volumes 3 % too large."""
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "sheared CT")
    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    matrix.SetElement(1, 2, 0.4)  # each slice 0.4 mm further along A
    volume.SetIJKToRASMatrix(matrix)
    from LiverLesionSegLib.errors import GeometryError

    with pytest.raises(GeometryError, match=r"^sheared CT: its voxel axes are not at right angles"):
        mrml.volume_from_node(volume)


def test_a_volume_placed_where_no_scan_lies_or_an_mr_image_is_refused(case, model_path):
    """As image files so damaged (a NIfTI's srow_x[3] of 1e30) or of other values (an MR image),
    loaded into Slicer and chosen as the CT."""
    scene = slicer.vtkMRMLScene()
    far = mrml.add_volume_node(scene, case["ct"], "far CT")
    far.SetOrigin(1e30, 0.0, 0.0)
    assert_refused_by_a_script_and_the_panel(scene, far, model_path,
                                             r"^far CT: its origin \(-1e\+30, \S+, \S+\) lies 1e\+30 mm from")
    mr = np.interp(case["ct"].array, [-1000, -100, 0, 60, 200, 1000], [5, 700, 200, 420, 350, 80])
    t1 = mrml.add_volume_node(scene, case["ct"].with_array(mr.astype(np.int16)), "T1 VIBE")
    assert_refused_by_a_script_and_the_panel(scene, t1, model_path, r"^T1 VIBE: only 0 % of its voxels lie below -50")


def test_a_volume_without_a_name_gets_a_segmentation_named_without_a_leading_space(case):
    from LiverLesionSegLib.infer import Segmentation

    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    volume.SetName("")
    result = Segmentation(case["liver"], case["lesion"], case["lesion"].with_array(case["lesion"].array * 1.0))
    outputs = mrml.write_outputs(scene, volume, result)
    assert outputs.segmentation_node.GetName() == "liver segmentation"


def test_a_liver_segment_named_as_a_lesion_is_told(case):
    scene = slicer.vtkMRMLScene()
    volume = mrml.add_volume_node(scene, case["ct"], "CT")
    parenchyma = case["liver"].with_array(((case["liver"].array > 0) & (case["lesion"].array == 0)).astype(np.uint8))
    segmentation = segmentation_of(scene, "swapped", [("Liver", case["lesion"]), ("Tumour", parenchyma)], volume)
    outputs = mrml.measure_again(volume, segmentation)
    assert "% of the liver: if they do not, the labels may be swapped" in outputs.cautions
