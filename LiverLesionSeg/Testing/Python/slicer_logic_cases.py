"""Test bodies shared by pytest (on the `slicer-core` wheel) and the module's Slicer self-test.

Each `check_*` function takes a scene (a fresh `vtkMRMLScene` in pytest, `slicer.mrmlScene` in
Slicer), values made by the helpers here, and paths; it raises `AssertionError` with a message
when something is wrong. pytest feeds them real shared CT cases and the test model; the Slicer
self-test feeds them the bundled sample case and the bundled model, so both CIs test the same
logic.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from LiverLesionSegLib import mrml, mrml_export, mrml_tables
from LiverLesionSegLib.mrml_charts import TrainingCharts
from LiverLesionSegLib.segments import LESION, LIVER, SEGMENTS
from LiverLesionSegLib.volume import LPS_TO_RAS, Volume

# --- making inputs -------------------------------------------------------------------------------


def crop_slices(volume: Volume, first: int, count: int) -> Volume:
    """Slices [first, first + count) of a volume, on the same physical positions."""
    array = np.ascontiguousarray(volume.array[first:first + count])
    origin = tuple(volume.physical_points([0, 0, first])[0])
    return Volume(array, volume.spacing, origin, volume.direction, f"{volume.source} slices {first}-{first + count - 1}")


def reoriented(volume: Volume, axes: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> Volume:
    """The same physical image stored in another voxel order: array axes permuted by `axes` (new
    axis n is old axis axes[n]), then the new axes in `flips` reversed. Its IJK-to-LPS matrix is
    non-diagonal and its spacing lands on other axes."""
    array = np.transpose(volume.array, axes)
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis)
    # new ijk -> old ijk: each new array axis n runs along old array axis axes[n], reversed if flipped
    new_to_old = np.zeros((4, 4))
    new_to_old[3, 3] = 1
    for n in range(3):
        old = axes[n]
        new_ijk, old_ijk = 2 - n, 2 - old  # array axis (k, j, i) -> ijk column
        if flips[n]:
            new_to_old[old_ijk, new_ijk] = -1
            new_to_old[old_ijk, 3] = array.shape[n] - 1
        else:
            new_to_old[old_ijk, new_ijk] = 1
    ijk_to_lps = volume.ijk_to_lps() @ new_to_old
    return Volume.from_ijk_to_ras(np.ascontiguousarray(array), LPS_TO_RAS @ ijk_to_lps, f"{volume.source} reoriented")


def rotated(volume: Volume, degrees: float, spacing: tuple[float, float, float] | None = None) -> Volume:
    """The same voxels on an oblique grid: the direction turned by `degrees` about the S axis,
    optionally with another spacing."""
    angle = np.radians(degrees)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return Volume(volume.array, spacing or volume.spacing, volume.origin, turn @ volume.direction,
                  f"{volume.source} oblique")


def core_segmentation(ct: Volume, model_path):
    """The core's own output for `ct` (no MRML involved), as the reference."""
    from LiverLesionSegLib.segment_job import run_segmentation

    return run_segmentation(ct, model_path, "cpu")[0]


@dataclass
class LogicRun:
    scene: object
    ct: Volume
    input_node: object
    outputs: mrml.SegmentationOutputs


def run_logic(scene, ct: Volume, model_path, name: str = "CT") -> LogicRun:
    """A volume node made from `ct`, segmented by the logic with a probability output."""
    input_node = mrml.add_volume_node(scene, ct, name)
    probability = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{name} lesion probability")
    outputs = mrml.segment_volume_node(scene, input_node, model_path, "cpu", None, None, probability)
    return LogicRun(scene, ct, input_node, outputs)


def ras_points(mask: Volume) -> np.ndarray:
    """RAS positions of a mask's set voxels, in micrometres (integers), sorted: comparable with ==."""
    kji = np.argwhere(np.asarray(mask.array) > 0)
    return _sorted_micrometres(mask.ijk_to_ras(), kji)


def oriented_image_ras_points(image) -> np.ndarray:
    """The same for a `vtkOrientedImageData`, read from its own extent and image-to-world matrix
    (not through the library's resampling)."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    extent = image.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape)
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    kji = np.argwhere(voxels > 0) + [extent[4], extent[2], extent[0]]
    return _sorted_micrometres(slicer.util.arrayFromVTKMatrix(matrix), kji)


def _sorted_micrometres(ijk_to_ras: np.ndarray, kji: np.ndarray) -> np.ndarray:
    ijk1 = np.column_stack([kji[:, ::-1], np.ones(len(kji))])
    ras = np.rint((ijk_to_ras @ ijk1.T).T[:, :3] * 1000).astype(np.int64)
    return ras[np.lexsort(ras.T[::-1])]


# --- checks --------------------------------------------------------------------------------------

def check_input_node_geometry(run: LogicRun) -> None:
    """The volume node holds the CT's voxels, and reading it back gives the CT's geometry."""
    back = mrml.volume_from_node(run.input_node)
    assert back.same_grid(run.ct), f"volume node geometry {back.spacing} {back.origin} differs from {run.ct.spacing} {run.ct.origin}"
    assert np.allclose(back.direction, run.ct.direction, atol=1e-9), "direction changed on the way through the node"
    assert np.array_equal(back.array, run.ct.array), "voxels changed on the way through the node"


def check_segments(run: LogicRun) -> None:
    """Two segments, named, coloured and tagged with the standard terminology; reference geometry
    the input volume."""
    node = run.outputs.segmentation_node
    assert mrml.segment_ids(node) == [s.segment_id for s in SEGMENTS], mrml.segment_ids(node)
    for spec in SEGMENTS:
        segment = node.GetSegmentation().GetSegment(spec.segment_id)
        assert segment.GetName() == spec.name, segment.GetName()
        assert np.allclose(segment.GetColor(), spec.color), (segment.GetColor(), spec.color)
        assert segment.GetTerminology() == spec.terminology, segment.GetTerminology()
        assert "SCT^10200004^Liver" in segment.GetTerminology()
    assert "SCT^4147007^Mass" in node.GetSegmentation().GetSegment(LESION.segment_id).GetTerminology()
    reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
    assert reference is run.input_node, "the segmentation's reference geometry is not the input volume"
    assert node.GetSegmentation().GetSourceRepresentationName() == mrml.BINARY_LABELMAP


def check_masks_match_core(run: LogicRun, core) -> None:
    """Each segment, on the input's grid, is voxel for voxel the core's own mask."""
    for spec, mask in ((LIVER, core.liver), (LESION, core.lesion)):
        from_node = mrml.segment_mask(run.outputs.segmentation_node, spec.segment_id, run.ct)
        expected = np.asarray(mask.array) > 0
        assert from_node.sum() == expected.sum(), \
            f"{spec.name}: {from_node.sum()} voxels in the node, {expected.sum()} from the core"
        assert np.array_equal(from_node > 0, expected), f"{spec.name}: the voxels differ from the core's"
    assert core.liver.array.any(), "the core found no liver at all: the comparison would be empty"


def check_cautions(run: LogicRun, core) -> None:
    """The core's cautions reach the panel's outputs and are stored on the segmentation node."""
    assert run.outputs.caveats == core.caveats, (run.outputs.caveats, core.caveats)
    stored = run.outputs.segmentation_node.GetAttribute(mrml.CAVEATS_ATTRIBUTE)
    assert stored == "\n".join(core.caveats), stored
    assert run.outputs.cautions.count("\nCaution: ") == len(core.caveats)


def check_physical_points_match(run: LogicRun, core) -> None:
    """The segments' voxels, read straight from their oriented images, sit on the same RAS points
    as the core's mask voxels (which may be on another voxel order of the same physical grid)."""
    for spec, mask in ((LIVER, core.liver), (LESION, core.lesion)):
        image = run.outputs.segmentation_node.GetSegmentation().GetSegment(spec.segment_id).GetRepresentation(
            mrml.BINARY_LABELMAP)
        in_node = oriented_image_ras_points(image)
        expected = ras_points(mask)
        assert len(in_node) == len(expected), f"{spec.name}: {len(in_node)} voxels in the node, {len(expected)} from the core"
        assert np.array_equal(in_node, expected), f"{spec.name}: the voxels sit on other RAS points than the core's"


def check_oblique_segments(scene, ct: Volume, liver: Volume, lesion: Volume) -> None:
    """Masks on an oblique, anisotropic grid become segments whose voxels sit on the same RAS
    points, and a probability volume on the same grid; no model needed."""
    from LiverLesionSegLib.infer import Segmentation

    assert not np.allclose(ct.direction, np.eye(3)), "the grid is not oblique"
    probability = lesion.with_array(np.asarray(lesion.array, np.float32) * 0.75)
    result = Segmentation(liver, lesion, probability)
    input_node = mrml.add_volume_node(scene, ct, "Oblique CT")
    assert np.allclose(mrml.ijk_to_ras_of(input_node), ct.ijk_to_ras()), "the node's IJKToRAS is not the CT's"
    probability_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "oblique probability")
    outputs = mrml.write_outputs(scene, input_node, result, probability_node=probability_node)
    run = LogicRun(scene, ct, input_node, outputs)
    check_segments(run)
    check_masks_match_core(run, result)
    check_physical_points_match(run, result)
    back = mrml.volume_from_node(probability_node)
    assert back.same_grid(ct) and np.array_equal(back.array, probability.array)


def check_probability_volume(run: LogicRun, core) -> None:
    node = run.outputs.probability_node
    assert node is not None, "no probability volume"
    back = mrml.volume_from_node(node)
    assert back.same_grid(run.ct), "the probability volume is not on the input's grid"
    assert np.array_equal(back.array, core.lesion_probability.array), "probabilities differ from the core's"
    assert back.array.dtype == np.float32 and 0 <= back.array.min() and back.array.max() <= 1
    display = node.GetDisplayNode()
    assert display is not None and display.GetColorNode() is not None, "the probability volume has no heatmap colours"
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == (0.0, 1.0)
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == mrml.PROBABILITY_DISPLAY_THRESHOLD
    low, high = [0.0] * 4, [0.0] * 4
    display.GetColorNode().GetColor(0, low)
    display.GetColorNode().GetColor(display.GetColorNode().GetNumberOfColors() - 1, high)
    assert sum(high[:3]) > sum(low[:3]) + 1.5, f"the heatmap does not run from dark to bright: {low} .. {high}"


def check_lesion_table(run: LogicRun, core) -> None:
    from LiverLesionSegLib.lesions import lesion_table

    expected = lesion_table(core.lesion, run.ct)
    rows = mrml_tables.table_rows(run.outputs.lesion_table_node)
    assert len(rows) == len(expected), f"{len(rows)} table rows for {len(expected)} lesions"
    assert [name for name, *_ in mrml_tables.LESION_COLUMNS] == [
        run.outputs.lesion_table_node.GetColumnName(c) for c in range(len(mrml_tables.LESION_COLUMNS))]
    for row, lesion in zip(rows, expected):
        assert row["Lesion"] == lesion.number
        assert np.isclose(row["Volume"], lesion.volume_ml)
        assert np.isclose(row["Longest axial diameter"], lesion.longest_axial_diameter_mm)
        assert np.isclose(row["Perpendicular diameter"], lesion.perpendicular_diameter_mm)
        assert 0 < row["Perpendicular diameter"] <= row["Longest axial diameter"]
        assert np.isclose(row["Median CT value"], lesion.median_hu)
        assert np.allclose([row["Centroid R"], row["Centroid A"], row["Centroid S"]], lesion.centroid_ras)
    assert run.outputs.lesion_table_node.GetColumnUnitLabel("Volume") == "mL"
    assert run.outputs.lesion_table_node.GetColumnUnitLabel("Median CT value") == "HU"
    total = sum(row["Volume"] for row in rows)
    voxels_ml = np.count_nonzero(core.lesion.array) * core.lesion.voxel_volume_mm3 / 1000
    assert np.isclose(total, voxels_ml), f"lesion volumes add up to {total} mL, the mask holds {voxels_ml} mL"
    # The panel's summary line: the lesions' share of the liver (the tumour burden).
    assert f"{total:.2f} mL in all, {100 * total / run.outputs.liver_ml:.1f} % of the liver" in run.outputs.summary


def check_long_axis_lines(run: LogicRun) -> None:
    """One locked line per lesion, named and labelled by its number, on the lesion's slice: its ends
    are the table's long axis (RAS), its length as Slicer measures it is the table's diameter."""
    lesions, lines = run.outputs.lesions, run.outputs.long_axis_nodes
    assert len(lines) == len(lesions) >= 1, f"{len(lines)} lines for {len(lesions)} lesions"
    references = [run.outputs.segmentation_node.GetNthNodeReference(mrml_tables.LONG_AXIS_ROLE, n)
                  for n in range(run.outputs.segmentation_node.GetNumberOfNodeReferences(mrml_tables.LONG_AXIS_ROLE))]
    assert [node.GetID() for node in references] == [line.GetID() for line in lines]
    for line, lesion in zip(lines, lesions):
        assert line.GetName().endswith(f"lesion {lesion.number} long axis") and line.GetLocked()
        assert line.GetNthControlPointLabel(0) == str(lesion.number)
        assert np.isclose(line.GetLineLengthWorld(), lesion.longest_axial_diameter_mm, rtol=1e-6)
        ends_ras = np.array([line.GetNthControlPointPosition(n) for n in range(2)])
        expected = np.array(lesion.long_axis_lps) * [-1, -1, 1]
        assert np.allclose(ends_ras, expected, atol=1e-4)
        # both ends lie on the plane of the lesion's diameter slice
        ijk = np.linalg.solve(run.ct.ijk_to_ras(), np.column_stack([ends_ras, np.ones(2)]).T)[:3].T
        assert np.allclose(ijk[:, 2], lesion.diameter_slice, atol=1e-6)


def sample_case_drawn_by_hand(scene) -> tuple:
    """The sample case loaded as Sample Data loads it and a segmentation of it: a box of liver with a
    300-voxel lesion, and a second, false lesion (40 voxels) beside it. Returns (volume node,
    segmentation node, the liver mask, the true lesion's mask)."""
    volume_node = mrml.load_sample_case(scene)
    grid = mrml.volume_from_node(volume_node)
    liver = np.zeros(grid.shape, np.uint8)
    liver[10:20, 200:300, 150:250] = 1
    lesion = np.zeros(grid.shape, np.uint8)
    lesion[12:15, 240:250, 190:200] = 1
    false_lesion = lesion.copy()
    false_lesion[16:18, 280:285, 230:235] = 1
    segmentation_node = mrml.new_segmentation_node(scene, "sample corrected")
    mrml.fill_segmentation_node(segmentation_node, volume_node, grid.with_array(liver), grid.with_array(false_lesion))
    return volume_node, segmentation_node, liver, lesion


def check_sample_case_after_correction(scene, folder: Path) -> None:
    """The sample case (a DICOM series outside Slicer's DICOM database: its node names its folder)
    with a liver and two lesions, one erased as a reader would: measured again, one lesion in the
    table; exported, the DICOM SEG and the RT structure set read back as the corrected voxels and the
    report holds the lesion."""
    import slicer
    from LiverLesionSegLib.io.dicomseg import read_seg_masks
    from LiverLesionSegLib.io.rtstruct import read_rtstruct_masks

    volume_node, segmentation_node, liver, lesion = sample_case_drawn_by_hand(scene)
    grid = mrml.volume_from_node(volume_node)
    assert len(mrml.measure_again(volume_node, segmentation_node).lesions) == 2
    editing = slicer.vtkSlicerSegmentationsModuleLogic  # what the Segment Editor's effects call
    editing.SetBinaryLabelmapToSegment(mrml.oriented_image(grid.with_array(lesion)), segmentation_node,
                                       LESION.segment_id, editing.MODE_REPLACE)
    measured = mrml.measure_again(volume_node, segmentation_node)
    assert [lesion.voxels for lesion in measured.lesions] == [300], measured.lesions
    assert len(mrml_tables.table_rows(measured.lesion_table_node)) == 1 == len(measured.long_axis_nodes)
    exported = mrml_export.export_dicom(volume_node, segmentation_node, folder, structures=True)
    assert len(exported.lesions) == 1 and exported.lesions[0].voxels == 300
    masks = read_seg_masks(exported.seg, grid)
    assert np.array_equal(masks["lesion"], lesion) and np.array_equal(masks["liver"] | masks["lesion"], liver)
    contoured = read_rtstruct_masks(exported.structures, grid)
    assert np.array_equal(contoured["lesion"], lesion) and np.array_equal(contoured["liver"], liver)
    assert exported.report.is_file()


def check_seg_nrrd_round_trip(run: LogicRun, folder: Path) -> Path:
    """Saved with `vtkMRMLSegmentationStorageNode` and read into a new node: the same segments,
    names, colours, terminology and voxels."""
    path = Path(folder) / "liver.seg.nrrd"
    scene = run.scene
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.WriteData(run.outputs.segmentation_node), f"writing {path} failed"
    read_back = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "read back")
    reader = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    reader.SetFileName(str(path))
    assert reader.ReadData(read_back), f"reading {path} failed"
    assert mrml.segment_ids(read_back) == mrml.segment_ids(run.outputs.segmentation_node)
    for spec in SEGMENTS:
        original = run.outputs.segmentation_node.GetSegmentation().GetSegment(spec.segment_id)
        copy = read_back.GetSegmentation().GetSegment(spec.segment_id)
        assert copy.GetName() == original.GetName() and copy.GetTerminology() == original.GetTerminology()
        assert np.allclose(copy.GetColor(), original.GetColor(), atol=1e-4)
        assert np.array_equal(mrml.segment_mask(read_back, spec.segment_id, run.ct),
                              mrml.segment_mask(run.outputs.segmentation_node, spec.segment_id, run.ct)), \
            f"{spec.name}: voxels differ after the .seg.nrrd round trip"
    for node in (storage, reader, read_back):
        scene.RemoveNode(node)
    return path


def check_saved_scene_reopens(run: LogicRun, folder: Path) -> None:
    """The outputs saved with the scene as Slicer's Save does (each node its default storage node and
    file, then the scene's .mrml) and the scene opened again: the segments, the lesion table with its
    units, and the probability volume on the CT's grid come back as they were."""
    import slicer

    outputs = run.outputs
    nodes = [run.input_node, outputs.segmentation_node, outputs.lesion_table_node, outputs.probability_node]
    added = []
    for node in nodes:
        if node.GetStorageNode() is None:
            assert node.AddDefaultStorageNode(), f"{node.GetName()}: no default storage node"
            added.append(node.GetStorageNode())
        storage = node.GetStorageNode()
        storage.SetFileName(str(Path(folder) / f"{node.GetID()}.{storage.GetDefaultWriteFileExtension()}"))
        assert storage.WriteData(node), f"{node.GetName()}: writing {storage.GetFileName()} failed"
    scene_file = Path(folder) / "scene.mrml"
    url = run.scene.GetURL()
    run.scene.SetURL(str(scene_file))
    try:
        assert run.scene.Commit(), f"writing {scene_file} failed"
    finally:
        run.scene.SetURL(url)
        for storage in added:
            run.scene.RemoveNode(storage)
    reopened = slicer.vtkMRMLScene()
    reopened.SetURL(str(scene_file))
    assert reopened.Connect(), f"opening {scene_file} failed"
    by_id = {node.GetID(): reopened.GetNodeByID(node.GetID()) for node in nodes}
    assert None not in by_id.values(), f"nodes missing from the reopened scene: {by_id}"
    segmentation = by_id[outputs.segmentation_node.GetID()]
    assert mrml.segment_ids(segmentation) == mrml.segment_ids(outputs.segmentation_node)
    for spec in SEGMENTS:
        assert np.array_equal(mrml.segment_mask(segmentation, spec.segment_id, run.ct),
                              mrml.segment_mask(outputs.segmentation_node, spec.segment_id, run.ct)), \
            f"{spec.name}: voxels differ in the reopened scene"
    table = by_id[outputs.lesion_table_node.GetID()]
    saved, kept = mrml_tables.table_rows(table), mrml_tables.table_rows(outputs.lesion_table_node)
    # Slicer's table file holds six significant digits: 0.001 mL, 0.001 mm at these sizes
    assert len(saved) == len(kept) and all(row.keys() == other.keys() and np.allclose(
        list(row.values()), list(other.values()), rtol=1e-5, atol=0) for row, other in zip(saved, kept)), \
        f"the lesion table changed: {saved} against {kept}"
    for name, unit, *_ in mrml_tables.LESION_COLUMNS:
        assert table.GetColumnUnitLabel(name) == unit, f"{name}: unit {table.GetColumnUnitLabel(name)!r}, not {unit!r}"
    probability = mrml.volume_from_node(by_id[outputs.probability_node.GetID()])
    assert probability.same_grid(run.ct), "the reopened probability volume is not on the CT's grid"
    assert np.array_equal(probability.array, mrml.volume_from_node(outputs.probability_node).array)


def check_existing_segmentation_kept(scene, run: LogicRun, core) -> None:
    """A segmentation already in the scene, even one named as the output would be, is left alone
    unless it is passed as the output; passed, it is replaced (and keeps its node)."""
    existing = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{run.input_node.GetName()} liver segmentation")
    mine = mrml.make_segment(LIVER, core.liver.with_array(np.ones(core.liver.shape, np.uint8)))
    mine.SetName("My edits")
    existing.GetSegmentation().AddSegment(mine, "mine")
    fingerprint = _segmentation_fingerprint(existing)
    voxels = int(mrml.segment_mask(existing, "mine", run.ct).sum())
    count = scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")

    outputs = mrml.write_outputs(scene, run.input_node, core)
    assert outputs.segmentation_node is not existing, "an existing segmentation was reused without being chosen"
    assert _segmentation_fingerprint(existing) == fingerprint, "an existing segmentation was changed"
    assert mrml.segment_mask(existing, "mine", run.ct).sum() == voxels == run.ct.array.size
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == count + 1

    replaced = mrml.write_outputs(scene, run.input_node, core, output_segmentation=existing)
    assert replaced.segmentation_node is existing
    lines = scene.GetNumberOfNodesByClass("vtkMRMLMarkupsLineNode")
    again = mrml.write_outputs(scene, run.input_node, core, output_segmentation=existing)
    assert scene.GetNumberOfNodesByClass("vtkMRMLMarkupsLineNode") == lines, "the earlier run's lines were kept"
    assert all(line.GetScene() is None for line in replaced.long_axis_nodes) and again.long_axis_nodes
    assert mrml.segment_ids(existing) == [s.segment_id for s in SEGMENTS], "the chosen output was not replaced"
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == count + 1, "replacing made a new node"


def check_cancel_leaves_scene_unchanged(scene, ct: Volume, model_path, device: str = "cpu") -> list[dict]:
    """A segmentation cancelled while it runs ends with `Cancelled` and no node added or changed.
    Returns the job's events."""
    from LiverLesionSegLib.errors import Cancelled
    from LiverLesionSegLib.segment_job import SegmentationJob

    input_node = mrml.add_volume_node(scene, ct, "CT to cancel")
    before = _scene_fingerprint(scene)
    job = SegmentationJob(mrml.volume_from_node(input_node), model_path, device).start()
    events: list[dict] = []
    deadline = time.monotonic() + 120
    while not job.done and not any(e.get("stage") == "model" for e in events) and time.monotonic() < deadline:
        events += job.poll()
        time.sleep(0.02)  # cancel once the network is running (or has been reached)
    job.cancel()
    assert job.wait(120), "the cancelled job did not stop"
    events += job.poll()
    assert isinstance(job.error, Cancelled), f"expected Cancelled, got {job.error!r}"
    assert job.result is None
    assert _scene_fingerprint(scene) == before, "cancelling changed the scene"
    return events


def check_training_charts(scene, events: list[dict]) -> TrainingCharts:
    """Chart nodes fed a progress stream in batches hold every step's loss, a boundary between
    cycles, and the validation Dice of every validated epoch."""
    charts = TrainingCharts(scene, "Recorded")
    for start in range(0, len(events), 7):  # as the panel polls: a few lines at a time
        charts.add_events(events[start:start + 7])
    steps = [e for e in events if e.get("event") == "step"]
    loss_rows = mrml_tables.table_rows(charts.loss_table)
    assert [r["Step"] for r in loss_rows] == [e["step"] for e in steps]
    assert np.allclose([r["Loss"] for r in loss_rows], [e["loss"] for e in steps])
    changes = [(a["step"] + b["step"]) / 2 for a, b in zip(steps, steps[1:]) if a["cycle"] != b["cycle"]]
    assert charts.boundary_steps() == changes, (charts.boundary_steps(), changes)
    assert charts.loss_chart.GetNumberOfPlotSeriesNodes() == 1 + len(changes)
    heights = mrml_tables.table_rows(charts.boundary_table)
    assert heights and np.isclose(max(h["Loss"] for h in heights), max(e["loss"] for e in steps))
    validated = [e for e in events if e.get("event") == "epoch" and e.get("val_lesion_dice") is not None]
    dice_rows = mrml_tables.table_rows(charts.dice_table)
    assert [r["Epoch"] for r in dice_rows] == [e["epoch"] for e in validated]
    assert np.allclose([r["Lesion Dice"] for r in dice_rows], [e["val_lesion_dice"] for e in validated])
    assert np.allclose([r["Liver Dice"] for r in dice_rows], [e["val_liver_dice"] for e in validated])
    assert charts.dice_chart.GetNumberOfPlotSeriesNodes() == 2
    return charts


def check_comparison_with_reference(scene, ct: Volume, core, liver: Volume, lesion: Volume) -> None:
    """A segmentation made from the core's output, compared in the scene with the real reference
    drawn as a reader would name it ("liver", "Tumor"), then the reference with itself: the scene's
    comparison table gets a row each, the first with the measures the core's metrics give for the
    same masks, the second with Dice 1 and no false lesion."""
    from LiverLesionSegLib.metrics import COMPARISON_COLUMNS, evaluate_case

    volume_node = mrml.add_volume_node(scene, ct, "CT")
    segmentation = mrml.new_segmentation_node(scene, "Model output")
    mrml.fill_segmentation_node(segmentation, volume_node, core.liver, core.lesion)
    reference = mrml.new_segmentation_node(scene, "Reference")
    for segment_id, name, mask in (("r1", "liver", liver), ("r2", "Tumor", lesion)):
        segment = mrml.make_segment(LIVER, mask)
        segment.SetName(name)
        reference.GetSegmentation().AddSegment(segment, segment_id)
    mrml.compare_segmentations(volume_node, segmentation, reference)
    mrml.compare_segmentations(volume_node, reference, reference)
    rows = mrml_tables.table_rows(mrml_tables.comparison_table(scene))
    true_liver = (np.asarray(liver.array) > 0) | (np.asarray(lesion.array) > 0)
    expected = evaluate_case("CT", core.liver.array, core.lesion.array, true_liver, lesion.array, ct.spacing)
    assert len(rows) == 2 and [rows[0][c] for c in ("Volume", "Segmentation", "Reference")] == [
        "CT", "Model output", "Reference"]
    for name, title, _ in COMPARISON_COLUMNS:
        value = getattr(expected, name)
        assert np.isclose(rows[0][title], np.nan if value is None else value, equal_nan=True), (title, rows[0][title])
    assert expected.true_lesions > 0 and 0 < rows[0]["Lesion Dice"] < 1
    assert rows[1]["Liver Dice"] == rows[1]["Lesion Dice"] == 1 and rows[1]["False lesion volume"] == 0


def check_export_training_pair(scene, ct: Volume, liver: Volume, lesion: Volume, folder: Path) -> Path:
    """A CT node and a segmentation as the Segment Editor leaves it (segments that do not overlap,
    in one shared layer, with typed names: "liver", "Tumor 1", "Tumor 2" and an unrelated
    "Portal vein") exported as an image + labels case that the core reads back with the same
    voxels: liver 1, lesion 2, the vein left out."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    is_lesion = np.asarray(lesion.array) > 0
    is_liver = (np.asarray(liver.array) > 0) & ~is_lesion
    half = ct.shape[0] // 2
    first, second = is_lesion.copy(), is_lesion.copy()
    first[half:], second[:half] = False, False
    vein = np.zeros(ct.shape, bool)
    vein[:, :8, :8] = True  # a corner outside the body: must not end up in the labels
    volume_node = mrml.add_volume_node(scene, ct, "Corrected CT")
    segmentation = mrml.new_segmentation_node(scene, "Corrected segmentation")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    for segment_id, name, mask in (("s1", "liver", is_liver), ("s2", "Tumor 1", first), ("s3", "Tumor 2", second),
                                   ("s4", "Portal vein", vein)):
        segment = mrml.make_segment(LIVER, ct.with_array(mask.astype(np.uint8)))
        segment.SetName(name)
        segmentation.GetSegmentation().AddSegment(segment, segment_id)
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)
    assert segmentation.GetSegmentation().GetNumberOfLayers() == 1, "the segments are not in one shared layer"

    case_folder = mrml_export.export_training_pair(volume_node, segmentation, folder, "scene case 1")
    assert case_folder.name == "scene_case_1"
    refs = find_cases([case_folder])
    assert [r.kind for r in refs] == ["image-pair"], refs
    case = load_case(refs[0])
    assert case.ct.same_grid(ct) and np.array_equal(case.ct.array, ct.array), "the exported CT differs"
    assert np.array_equal(case.lesion.array > 0, is_lesion), "exported lesion labels differ"
    assert np.array_equal(case.liver.array > 0, is_liver | is_lesion), "exported liver labels differ"
    assert is_lesion[:half].any() and is_lesion[half:].any(), "both lesion segments should hold voxels"
    again = mrml_export.export_training_pair(volume_node, segmentation, folder, "scene case 1")
    assert again.name == "scene_case_1-2", "a second export of the same name must not overwrite the first"
    return case_folder


# --- helpers -------------------------------------------------------------------------------------

def _segmentation_fingerprint(node) -> tuple:
    segmentation = node.GetSegmentation()
    return (node.GetName(), tuple(mrml.segment_ids(node)),
            tuple(segmentation.GetSegment(s).GetName() for s in mrml.segment_ids(node)),
            node.GetMTime(), segmentation.GetMTime())


def _scene_fingerprint(scene) -> tuple:
    nodes = scene.GetNodes()
    return tuple((nodes.GetItemAsObject(n).GetID(), nodes.GetItemAsObject(n).GetMTime())
                 for n in range(nodes.GetNumberOfItems()))


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

