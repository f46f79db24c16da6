"""MRML nodes <-> the core's values. It and `mrml_charts` (the training charts) are the library's
only modules that import `slicer`; `mrml_tables` fills the lesion and comparison tables and the
long-axis lines (VTK only); `mrml_export` writes a segmentation in the scene out as DICOM or as a
training case through it.

It runs in the Slicer application and on the `slicer-core` wheel (real MRML classes, no Qt and no
`slicer.app`), so it uses only what both have: scene methods, VTK, `vtkOrientedImageData`, the
static methods of `vtkSlicerSegmentationsModuleLogic`, and the few `slicer.util` array helpers
that need no application (`arrayFromVolume`, `updateVolumeFromArray`, matrix conversions).

Geometry: a volume node's voxels come out of `arrayFromVolume` indexed [k, j, i], the order of
`Volume.array`, and its IJKToRAS matrix converts to the core's LPS geometry with
`Volume.from_ijk_to_ras`; outputs go back through `Volume.ijk_to_ras`. Nothing assumes an axial
or identity orientation. Output nodes are placed under the input's parent transform, so they stay
on top of the input in world coordinates.

Nothing here replaces a node the caller did not pass in: a segmentation output is a new node
unless an existing one is given explicitly.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from .errors import GeometryError, InputError
from .io.images import refuse_a_non_ct
from .io.sheared import is_sheared
from .io.slicer_scene import PROBABILITY_ROLE, ROLE_ATTRIBUTE
from .metrics import COMPARISON_COLUMNS, CaseMetrics, evaluate_case
from .mrml_tables import (add_long_axis_lines, append_row_by_name, comparison_table, fill_lesion_table,
                          lesion_table_node)
from .parameters import SegmentParameters
from .progress import number_or_nan
from .segments import LESION, LIVER, SegmentSpec, meaning_of_segment, terminology_type
from .volume import Volume

BINARY_LABELMAP = "Binary labelmap"
DICOM_FOLDER_ATTRIBUTE = "LiverLesionSeg.DICOMFolder"  # the folder of the sample case's series (mrml_export)
CAVEATS_ATTRIBUTE = "LiverLesionSeg.Cautions"  # what the reader should check, one per line (caveats.py)
MODELS_ATTRIBUTE = "LiverLesionSeg.Models"  # the model file(s) that made a segmentation, one per line
# The label map the model wrote, as a digest: a DICOM export tells a reader's correction from it.
RESULT_DIGEST_ATTRIBUTE = "LiverLesionSeg.ResultDigest"
HEATMAP_COLOR_IDS = (  # preferred colour nodes for the probability overlay, when the scene has them
    "vtkMRMLColorTableNodeFileInferno.txt",
    "vtkMRMLColorTableNodeFileColdToHotRainbow.txt",
    "vtkMRMLPETProceduralColorNodePET-Heat",
)
HEATMAP_NAME = "LiverLesionSeg heatmap"
PROBABILITY_DISPLAY_THRESHOLD = 0.05  # probabilities below this are transparent in the overlay


# --- volumes -------------------------------------------------------------------------------------

def volume_from_node(volume_node) -> Volume:
    """The node's voxels (copied, [k, j, i]) with the geometry of its IJKToRAS matrix, in LPS."""
    name = volume_node.GetName() if volume_node is not None else None
    image = None if volume_node is None else volume_node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0 or image.GetPointData().GetScalars() is None:
        raise InputError("the input volume has no image data", name, "load a CT volume and select it")
    if volume_node.GetImageData().GetNumberOfScalarComponents() != 1:
        raise InputError("the input volume has several components per voxel (colour or vector image)", name,
                         "select a scalar CT volume")
    array = np.array(slicer.util.arrayFromVolume(volume_node), copy=True)
    volume = Volume.from_ijk_to_ras(array, ijk_to_ras_of(volume_node), source=name)
    if is_sheared(volume.direction):  # volumes would be wrong
        raise GeometryError("its voxel axes are not at right angles (a sheared IJK to RAS matrix, as a tilted scan "
                            "hardened without resampling has)", name,
                            "resample it onto a regular grid first (Resample Scalar Volume), then select it")
    return volume


def ijk_to_ras_of(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def update_volume_node(volume_node, volume: Volume):
    """Put `volume`'s voxels and geometry into an existing volume node."""
    slicer.util.updateVolumeFromArray(volume_node, np.ascontiguousarray(volume.array))
    volume_node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras()))
    return volume_node


def add_volume_node(scene, volume: Volume, name: str, class_name: str = "vtkMRMLScalarVolumeNode"):
    node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    update_volume_node(node, volume)
    node.CreateDefaultDisplayNodes()
    return node


SAMPLE_NODE_NAME = "HCC_006 liver (LiverLesionSeg sample)"


def load_sample_case(scene):
    """The bundled sample CT (a real DICOM series) as a volume node, shown in an abdomen window:
    what Slicer's Sample Data module loads for this extension."""
    from .io.cases import read_input_volume
    from .resources import sample_case_path

    node = add_volume_node(scene, read_input_volume(sample_case_path()), SAMPLE_NODE_NAME)
    node.SetAttribute(DICOM_FOLDER_ATTRIBUTE, str(sample_case_path()))  # for a DICOM SEG export
    display = node.GetDisplayNode()
    if display is not None:
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(350, 75)  # -100 .. 250 HU, the window the model sees
    return node


# --- binary masks as oriented images -------------------------------------------------------------

def oriented_image(mask: Volume) -> "slicer.vtkOrientedImageData":
    """A uint8 `vtkOrientedImageData` holding `mask` with its geometry (IJK to RAS)."""
    image = slicer.vtkOrientedImageData()
    k, j, i = mask.shape
    image.SetDimensions(i, j, k)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = (np.asarray(mask.array) > 0).ravel()
    image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(mask.ijk_to_ras()))
    return image


def reference_image(grid: Volume) -> "slicer.vtkOrientedImageData":
    """An oriented image with `grid`'s extent and geometry and no voxels: a resampling target."""
    image = slicer.vtkOrientedImageData()
    k, j, i = grid.shape
    image.SetExtent(0, i - 1, 0, j - 1, 0, k - 1)
    image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(grid.ijk_to_ras()))
    return image


def image_on_grid(image, grid: Volume) -> np.ndarray:
    """The voxels of an oriented image resampled (nearest neighbour) onto `grid`, as [k, j, i]; what
    lies beyond the grid (a segment drawn on a longer series, a CT cropped since) is left out."""
    resampled = slicer.vtkOrientedImageData()
    # padImage False: the grid's extent, not the union of both (which has another shape)
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            image, reference_image(grid), resampled, False, False):
        raise InputError("a segment could not be resampled onto the volume's grid", grid.source or None)
    scalars = resampled.GetPointData().GetScalars()
    i0, i1, j0, j1, k0, k1 = resampled.GetExtent()
    out = np.zeros(grid.shape, np.uint8 if scalars is None else numpy_support.get_numpy_array_type(
        scalars.GetDataType()))
    if scalars is None or i1 < i0 or j1 < j0 or k1 < k0:
        return out
    voxels = numpy_support.vtk_to_numpy(scalars).reshape(k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    # placed by extent: the resampler keeps the grid's extent, this guards against a VTK that would not
    inside = tuple(slice(max(lo, 0), min(hi, n - 1) + 1) for lo, hi, n in ((k0, k1, grid.shape[0]),
                                                                          (j0, j1, grid.shape[1]),
                                                                          (i0, i1, grid.shape[2])))
    taken = tuple(slice(part.start - lo, part.stop - lo) for part, lo in zip(inside, (k0, j0, i0)))
    if all(part.stop > part.start for part in inside):
        out[inside] = voxels[taken]
    return out


# --- segmentation nodes --------------------------------------------------------------------------

def new_segmentation_node(scene, name: str):
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    return node


def fill_segmentation_node(segmentation_node, reference_node, liver: Volume, lesion: Volume) -> None:
    """Replace the node's segments with "Liver" and "Liver lesion" (standard terminology and
    colours), each on the masks' own grid, with `reference_node` as reference geometry. A node made
    without a display node (by a script) gets one, so that the segments are shown."""
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    segmentation_node.CreateDefaultDisplayNodes()  # no-op where it has one
    segmentation = segmentation_node.GetSegmentation()
    was_modifying = segmentation_node.StartModify()
    try:
        segmentation.RemoveAllSegments()
        segmentation.SetSourceRepresentationName(BINARY_LABELMAP)
        for spec, mask in ((LIVER, liver), (LESION, lesion)):
            segmentation.AddSegment(make_segment(spec, mask), spec.segment_id)
    finally:
        segmentation_node.EndModify(was_modifying)


def make_segment(spec: SegmentSpec, mask: Volume) -> "slicer.vtkSegment":
    """A segment named, coloured and tagged as `spec` says, holding `mask` as its labelmap."""
    segment = slicer.vtkSegment()
    segment.SetName(spec.name)
    segment.SetNameAutoGenerated(False)
    segment.SetColor(*spec.color)
    segment.SetColorAutoGenerated(False)
    segment.SetTerminology(spec.terminology)
    segment.AddRepresentation(BINARY_LABELMAP, oriented_image(mask))
    return segment


def segment_ids(segmentation_node) -> list[str]:
    ids = vtk.vtkStringArray()
    segmentation_node.GetSegmentation().GetSegmentIDs(ids)
    return [ids.GetValue(n) for n in range(ids.GetNumberOfValues())]


def segment_mask(segmentation_node, segment_id: str, grid: Volume) -> np.ndarray:
    """One segment as a uint8 [k, j, i] array on `grid` (0 outside, 1 inside)."""
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise InputError(f"has no segment '{segment_id}'", segmentation_node.GetName())
    image = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, image)
    if image.GetPointData().GetScalars() is None:  # an empty segment has no voxels at all
        return np.zeros(grid.shape, np.uint8)
    return (image_on_grid(image, grid) > 0).astype(np.uint8)


def segment_meanings(segmentation_node) -> dict[str, Optional[str]]:
    """Each segment's ID and what it is: 'liver', 'lesion' or None, by its name, else by its terminology
    where Slicer made the name from it (`meaning_of_segment`)."""
    segmentation = segmentation_node.GetSegmentation()
    meanings = {}
    for sid in segment_ids(segmentation_node):
        segment = segmentation.GetSegment(sid)
        code = terminology_type(segment.GetTerminology()) if segment.GetNameAutoGenerated() else None
        meanings[sid] = meaning_of_segment(segment.GetName(), code)
    return meanings


def label_map_from_segmentation(segmentation_node, grid: Volume, require_liver: bool = True) -> np.ndarray:
    """0 background, 1 liver, 2 lesion on `grid`, from segment names as users type them
    ("Liver", "liver_lesion", "Tumor 2", ...) or their terminology (`meaning_of_segment`); lesion wins.
    Without `require_liver`, lesion segments alone will do (measured, the liver not segmented)."""
    meanings = segment_meanings(segmentation_node)
    present = set(meanings.values())
    if "liver" not in present and (require_liver or "lesion" not in present):
        names = [segmentation_node.GetSegmentation().GetSegment(sid).GetName() for sid in meanings]
        what = "no liver segment" if require_liver else "neither a liver nor a lesion segment"
        raise InputError(f"has {what} (segments: {', '.join(names) or 'none'})", segmentation_node.GetName(),
                         "name the liver segment 'Liver' and lesion segments e.g. 'Liver lesion' or 'Tumor'")
    labels = np.zeros(grid.shape, np.uint8)
    with binary_labelmaps(segmentation_node):
        for meaning, value in (("liver", LIVER.label), ("lesion", LESION.label)):
            for sid in (s for s, m in meanings.items() if m == meaning):
                labels[segment_mask(segmentation_node, sid, grid) > 0] = value
    return labels


@contextlib.contextmanager
def binary_labelmaps(segmentation_node) -> Iterator[None]:
    """The segments readable as binary labelmaps inside the block. Segments whose source is another
    representation (closed surfaces imported from models or STL files) have none, and were read as
    empty: their labelmaps are made for the block (at the segmentation's reference geometry, as
    Slicer makes them) and removed after it, the node left as it was."""
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0 or segmentation.ContainsRepresentation(BINARY_LABELMAP):
        yield
        return
    if not segmentation.CreateRepresentation(BINARY_LABELMAP):
        raise InputError(f"its segments are stored as '{segmentation.GetSourceRepresentationName()}' and "
                         "no binary labelmap could be made of them", segmentation_node.GetName(),
                         "create the Binary labelmap representation in the Segmentations module")
    try:
        yield
    finally:
        segmentation.RemoveRepresentation(BINARY_LABELMAP)


def register_conversion_rules() -> None:
    """Slicer's Segmentations module registers the conversions between binary labelmaps and closed
    surfaces at start-up; a bare slicer-core has none. Each segmentation takes the rules registered
    when it is made, so this runs when the module is imported."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    if factory.GetConverterRules():
        return
    for rule in (slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
                 slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule):
        factory.RegisterConverterRule(rule())


register_conversion_rules()


# --- comparison with a reference -----------------------------------------------------------------

def compare_segmentations(volume_node, segmentation_node, reference_node, table_node=None) -> CaseMetrics:
    """`segmentation_node` measured against `reference_node` (a clinician's or another reader's) on
    `volume_node`'s grid, their segments read by name as for training: 3-D Dice of the liver (its
    lesions included) and the lesions, surface distances, lesions found, missed and false, volumes.
    Added as one row to `table_node`, by default the scene's comparison table (made on first use),
    so that several patients' comparisons land in one table; returns the measures."""
    if None in (volume_node, segmentation_node, reference_node):
        raise InputError("a volume, a segmentation of it and a reference segmentation are needed",
                         hint="choose all three")
    check_pair(volume_node, segmentation_node)  # under another transform: not where the user sees it
    check_pair(volume_node, reference_node)
    grid = volume_from_node(volume_node)
    ours, reference = (label_map_from_segmentation(node, grid) for node in (segmentation_node, reference_node))
    measures = evaluate_case(volume_node.GetName(), ours > 0, ours == LESION.label, reference > 0,
                             reference == LESION.label, grid.spacing)
    table_node = table_node or comparison_table(volume_node.GetScene())
    row = {"Volume": volume_node.GetName(), "Segmentation": segmentation_node.GetName(),
           "Reference": reference_node.GetName()}
    row.update((title, number_or_nan(getattr(measures, name))) for name, title, _ in COMPARISON_COLUMNS)
    append_row_by_name(table_node, row)
    return measures


# --- probability volume --------------------------------------------------------------------------

def fill_probability_node(probability_node, probability: Volume) -> None:
    """The lesion probability map in a scalar volume node, shown as a heatmap from 0 to 1 with the
    lowest probabilities transparent, ready to lay over the CT."""
    update_volume_node(probability_node, probability)
    probability_node.SetAttribute(ROLE_ATTRIBUTE, PROBABILITY_ROLE)  # not a CT, in a scene read again
    scene = probability_node.GetScene()
    display = probability_node.GetDisplayNode()
    if display is None:
        display = scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode")
        probability_node.SetAndObserveDisplayNodeID(display.GetID())
    display.SetAndObserveColorNodeID(heatmap_color_node(scene).GetID())
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetAutoThreshold(False)
    display.SetLowerThreshold(PROBABILITY_DISPLAY_THRESHOLD)
    display.SetUpperThreshold(1.0)
    display.SetApplyThreshold(True)


def heatmap_color_node(scene):
    """A heatmap colour node: Slicer's own where the scene has one (the application loads them),
    else an inferno-like table made here (the `slicer-core` wheel has no colour files)."""
    for node_id in HEATMAP_COLOR_IDS:
        node = scene.GetNodeByID(node_id)
        if node is not None:
            return node
    existing = scene.GetFirstNodeByName(HEATMAP_NAME)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", HEATMAP_NAME)
    node.SetTypeToUser()
    node.SetNumberOfColors(256)
    for index, (r, g, b) in enumerate(heatmap_colours(256)):
        node.SetColor(index, f"p{index / 255:.3f}", r, g, b, 1.0)
    node.SetHideFromEditors(False)
    return node


# Anchor colours of matplotlib's "inferno" at 0, 1/4, 1/2, 3/4, 1 (black, purple, red, orange, yellow).
_INFERNO_ANCHORS = np.array([[0.001, 0.000, 0.014], [0.341, 0.062, 0.429], [0.735, 0.216, 0.330],
                             [0.978, 0.557, 0.035], [0.988, 0.998, 0.645]])


def heatmap_colours(count: int) -> np.ndarray:
    """`count` RGB colours from dark (low probability) to bright yellow (high)."""
    positions = np.linspace(0, 1, len(_INFERNO_ANCHORS))
    t = np.linspace(0, 1, count)
    return np.column_stack([np.interp(t, positions, _INFERNO_ANCHORS[:, c]) for c in range(3)])


# --- the logic's outputs -------------------------------------------------------------------------

@dataclass
class SegmentationOutputs:
    segmentation_node: object
    lesion_table_node: object
    probability_node: Optional[object]
    lesions: list = field(default_factory=list)
    liver_ml: Optional[float] = 0.0  # None: no liver segment, only lesions measured
    caveats: list[str] = field(default_factory=list)
    long_axis_nodes: list = field(default_factory=list)  # markups lines, one per lesion

    @property
    def summary(self) -> str:
        from .lesions import total_volume_ml, tumour_burden

        lesion_ml = total_volume_ml(self.lesions)
        if self.liver_ml is None:
            return f"Liver not segmented; {len(self.lesions)} lesion(s), {lesion_ml:.2f} mL in all."
        return (f"Liver {self.liver_ml:.1f} mL; {len(self.lesions)} lesion(s), {lesion_ml:.2f} mL in all, "
                f"{100 * tumour_burden(self.lesions, self.liver_ml):.1f} % of the liver.")

    @property
    def cautions(self) -> str:
        """The caveats as lines to show under the summary ("" when there are none)."""
        return "".join(f"\nCaution: {caveat}." for caveat in self.caveats)


def write_outputs(scene, input_node, result, output_segmentation=None, probability_node=None,
                  models: Sequence[str] = ()) -> SegmentationOutputs:
    """Put a core `Segmentation` of `input_node` into the scene.

    `output_segmentation`: an existing segmentation node the user chose to replace; None (the
    default) makes a new node and leaves every existing one untouched. `probability_node`: a
    scalar volume node to receive the lesion probability map, or None for no map. `models`: the
    model files that made it (`segment_job.model_names`), kept on the node for a DICOM export.
    """
    from .lesions import lesion_table

    if input_node.GetScene() is not scene:
        raise InputError("the input volume was removed from the scene while it was being segmented",
                         input_node.GetName(), "nothing was added; load it again and press Apply")
    if not on_grid_of(input_node, result.liver):
        raise InputError("the input volume changed while it was being segmented", input_node.GetName(),
                         "nothing was added; press Apply again")
    # before any change to the scene; the node's voxels read in place (its grid is the result's, checked above)
    lesions = lesion_table(result.lesion, result.lesion.with_array(slicer.util.arrayFromVolume(input_node)))
    # A chosen output that was deleted meanwhile: fall back to the defaults (new node, no map).
    output_segmentation = output_segmentation if _in_scene(output_segmentation, scene) else None
    probability_node = probability_node if _in_scene(probability_node, scene) else None
    refuse_input_as_output(input_node, probability_node)
    name = f"{input_node.GetName() or ''} liver segmentation".strip()  # a volume may have no name
    segmentation_node = output_segmentation or new_segmentation_node(scene, name)
    fill_segmentation_node(segmentation_node, input_node, result.liver, result.lesion)
    # Saved with the scene, so that whoever opens the segmentation later is told too.
    segmentation_node.SetAttribute(CAVEATS_ATTRIBUTE, "\n".join(result.caveats))
    segmentation_node.SetAttribute(MODELS_ATTRIBUTE, "\n".join(models))
    segmentation_node.SetAttribute(RESULT_DIGEST_ATTRIBUTE, label_digest(result.label_map()))
    table_node = lesion_table_node(scene, segmentation_node, reuse=output_segmentation is not None)
    table_caveats = fill_lesion_table(table_node, lesions, input_node)
    lines = add_long_axis_lines(scene, segmentation_node, lesions)
    if probability_node is not None:
        fill_probability_node(probability_node, result.lesion_probability)
    _follow_transform(input_node, [segmentation_node] + lines + ([probability_node] if probability_node else []))
    return SegmentationOutputs(segmentation_node, table_node, probability_node, lesions, result.liver_ml,
                               list(result.caveats) + table_caveats, lines)


def label_digest(labels: np.ndarray) -> str:
    """A digest of a 0/1/2 label map's voxels and shape."""
    digest = hashlib.sha256(repr(labels.shape).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def on_grid_of(volume_node, grid: Volume, tolerance_mm: float = 1e-4) -> bool:
    """Whether `volume_node`'s voxels lie on `grid` (the same shape, IJK to RAS within `tolerance_mm`)."""
    image = volume_node.GetImageData()
    if image is None:
        return False
    shape = tuple(reversed(image.GetDimensions()))
    return shape == grid.shape and np.allclose(ijk_to_ras_of(volume_node), grid.ijk_to_ras(), atol=tolerance_mm)


def refuse_input_as_output(input_node, probability_node) -> None:
    """The probability map would overwrite the CT's own voxels."""
    if probability_node is not None and probability_node is input_node:
        raise InputError("is chosen both as the input CT and as the probability volume", input_node.GetName(),
                         "choose 'Create new volume' (or none) for the probability map; nothing was changed")


def _in_scene(node, scene) -> bool:
    return node is not None and node.GetScene() is scene


def _follow_transform(input_node, nodes: Iterable) -> None:
    transform_id = input_node.GetTransformNodeID()
    for node in nodes:
        node.SetAndObserveTransformNodeID(transform_id)


def start_segmentation(parameters: SegmentParameters):
    """The Segment panel's job: the input copied now (the user may change the scene while the job
    runs) and segmented in a background thread. Returns (the started `SegmentationJob`, the nodes
    its result goes to: input, output and probability)."""
    from .segment_job import SegmentationJob

    targets = {"input": parameters.input_volume, "output": parameters.output_segmentation,
               "probability": parameters.probability_volume}
    volume = volume_from_node(targets["input"])
    refuse_a_non_ct(volume, volume.source)  # a mask loaded as a scalar volume and chosen as the CT, raw values
    refuse_input_as_output(targets["input"], targets["probability"])
    job = SegmentationJob(volume, parameters.model, parameters.device,
                          parameters.lesion_threshold, parameters.keep_edge_lesions, parameters.keep_fluid_lesions,
                          parameters.keep_liver_density_lesions, parameters.vote_models)
    return job.start(), targets


def start_training(settings, scene_pairs: Sequence = ()):
    """The Training panel's run: its (volume, segmentation) node pairs exported as cases beside the
    runs, then a started `training_process.TrainingProcess` on them and the settings' case folders."""
    from .mrml_export import export_training_pairs
    from .training_process import TrainingProcess, new_run_folder, user_folder

    if scene_pairs:
        folder = new_run_folder(user_folder() / "scene-cases", "scene")
        try:
            settings.cases = list(settings.cases) + export_training_pairs(scene_pairs, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # no folder of cases that never trained
            raise
    return TrainingProcess(settings).start()


def segment_volume_node(scene, input_node, model_path, device: str = "auto", lesion_threshold: Optional[float] = None,
                        output_segmentation=None, probability_node=None, progress=None,
                        keep_edge_lesions: bool = False, keep_fluid_lesions: bool = False,
                        keep_liver_density_lesions: bool = False, vote_models: Sequence = ()) -> SegmentationOutputs:
    """The whole logic in one blocking call (scripts, self-tests): node -> core -> nodes. With
    `vote_models`, the majority vote of `model_path` and them (`segment_job.run_segmentation`).

    The Slicer panel does the same in two halves (`segment_job.SegmentationJob` in a thread, then
    `write_outputs`) to stay responsive and cancellable.
    """
    from .segment_job import model_names, run_segmentation

    volume = volume_from_node(input_node)
    refuse_a_non_ct(volume, volume.source)
    refuse_input_as_output(input_node, probability_node)
    result, _ = run_segmentation(volume, model_path, device, lesion_threshold, progress, keep_edge_lesions,
                                 keep_fluid_lesions, keep_liver_density_lesions, vote_models)
    return write_outputs(scene, input_node, result, output_segmentation, probability_node,
                         model_names(model_path, vote_models))


# --- after correction: measure again, export to DICOM ----------------------------------------------

def reference_volume_of(segmentation_node):
    """The volume a segmentation was made on (its reference geometry's node), or None."""
    if segmentation_node is None:
        return None
    return segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole())


def measure_again(volume_node, segmentation_node) -> SegmentationOutputs:
    """The lesion table and long-axis lines of `segmentation_node` measured anew from its segments
    as they are now (corrected in the Segment Editor), on `volume_node`'s grid; the table made for
    it before is refilled, the old lines replaced."""
    from .caveats import measured_caveats
    from .io.dicom_export import measure_labels

    check_pair(volume_node, segmentation_node)
    grid = volume_from_node(volume_node)
    labels = label_map_from_segmentation(segmentation_node, grid, require_liver=False)
    # as for a label map file: a liver segment emptied, or only under lesions, is no liver segmented
    lesions, liver_ml = measure_labels(grid.with_array(labels), grid, bool((labels == LIVER.label).any()))
    scene = segmentation_node.GetScene()
    table_node = lesion_table_node(scene, segmentation_node)
    table_caveats = fill_lesion_table(table_node, lesions, volume_node)
    lines = add_long_axis_lines(scene, segmentation_node, lesions)
    _follow_transform(segmentation_node, lines)
    return SegmentationOutputs(segmentation_node, table_node, None, lesions, liver_ml,
                               left_out_segments(segmentation_node) + measured_caveats(lesions, liver_ml, grid)
                               + table_caveats, lines)


def left_out_segments(segmentation_node) -> list[str]:
    """A caution naming the segments read as neither liver nor lesion, if any (their voxels count as
    background)."""
    meanings = segment_meanings(segmentation_node)
    names = [segmentation_node.GetSegmentation().GetSegment(sid).GetName() for sid, m in meanings.items() if m is None]
    if not names:
        return []
    return [f"segment(s) {', '.join(repr(n) for n in names)} left out as neither liver nor lesion by name; rename "
            "a lesion segment e.g. 'Liver lesion' (or 'Tumor') to count it"]


def check_pair(volume_node, segmentation_node) -> None:
    """Refuse a missing volume or segmentation, or a segmentation under another transform."""
    if volume_node is None or segmentation_node is None:
        raise InputError("a CT volume and a segmentation of it are needed", hint="choose both")
    if segmentation_node.GetTransformNodeID() != volume_node.GetTransformNodeID():
        raise InputError(f"is under another transform than the volume {volume_node.GetName()}",
                         segmentation_node.GetName(), "put both under the same transform (Data module)")
