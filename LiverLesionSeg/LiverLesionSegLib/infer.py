"""Inference: a whole CT volume in; liver and lesion masks and the lesion probability map out, on
the input's own voxel grid.

The volume is first put in axial LPS voxel order (permutations and flips only, undone at the end),
so the network always sees slices as it saw them in training, whatever the input's orientation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from .checkpoint import Checkpoint
from .config import InferenceConfig, PreprocessConfig
from .errors import Cancelled, ResourceError
from .flips import HEAD_FEET, flip_to_segment
from .head_feet import head_and_feet_swapped
from .lesions import mask_volume_ml
from .model import compute_dtype, is_out_of_memory
from .oblique import degrees_off_axes, on_axial_grid, onto_grid
from .postprocess import clean_masks, largest_component
from .preprocess import between_slices, liver_hu_shift, network_input, prepare_ct, upsample
from .progress import NullProgress, Progress, timed
from .square_pixels import back_on_grid, on_square_pixels
from .volume import Volume, to_axial_lps
from .zoom import AIR_HU, Box, crop, in_plane_overlap, liver_box_from_network_grid, paste, tile_weights, tiles

log = logging.getLogger("LiverLesionSeg")

_UPSAMPLE_CHUNK = 16  # slices brought back to full resolution at a time
PROBABILITY_STEPS = 1024
# With zoom: the search for the liver's share of the network's time (the box's pass has the rest), and
# within the search, the every-n-th-slice pass's share (the slices between them have the rest). Only
# the progress bar's pace depends on them.
SEARCH_SHARE = 0.45
_STRIDE_SHARE = 2 / 3


@dataclass
class Segmentation:
    liver: Volume  # uint8, 1 inside the liver (lesions included)
    lesion: Volume  # uint8, 1 inside a lesion
    lesion_probability: Volume  # float32 in [0, 1], before thresholding and clean-up
    timings: dict[str, float] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)  # what a reader should check (caveats.result_caveats)
    flipped: str = ""  # what the CT looked stored with swapped ("left and right": `flips`), so segmented flipped back
    head_feet_swapped: bool = False  # the lungs below the liver (`head_feet`): segmented the other way round

    @property
    def liver_ml(self) -> float:
        """The liver's volume (its lesions included)."""
        return mask_volume_ml(self.liver)

    def label_map(self) -> np.ndarray:
        """0 background, 1 liver, 2 lesion."""
        labels = self.liver.array.copy()
        labels[self.lesion.array > 0] = 2
        return labels


def segment_volume(volume: Volume, checkpoint: Checkpoint, config: Optional[InferenceConfig] = None,
                   device: torch.device | str = "cpu", progress: Optional[Progress] = None) -> Segmentation:
    progress = progress or NullProgress()
    config = config or checkpoint.config.inference
    timings: dict[str, float] = {}
    with progress.stage("preprocess", timings):
        canonical, reorientation = to_axial_lps(volume)
    found = segment_canonical(canonical, checkpoint.network, checkpoint.config.preprocess, config, device, progress,
                              timings)
    liver, lesion, lesion_probability = found.liver, found.lesion, found.lesion_probability
    if not reorientation.is_identity:
        liver, lesion, lesion_probability = (np.ascontiguousarray(reorientation.undo(a))
                                             for a in (liver, lesion, lesion_probability))
    return Segmentation(volume.with_array(liver), volume.with_array(lesion),
                        volume.with_array(lesion_probability), timings, flipped=found.flipped,
                        head_feet_swapped=found.head_feet_swapped)


class CanonicalResult(NamedTuple):
    liver: np.ndarray  # uint8
    lesion: np.ndarray  # uint8
    lesion_probability: np.ndarray  # float32
    flipped: str  # what the CT looked stored with swapped ("left and right"), so segmented flipped back; "": none
    head_feet_swapped: bool = False  # the lungs below the liver: segmented the other way round


def segment_canonical(ct: Volume, network: torch.nn.Module, preprocess: PreprocessConfig, config: InferenceConfig,
                      device: torch.device | str = "cpu", progress: Optional[Progress] = None,
                      timings: Optional[dict] = None) -> CanonicalResult:
    """A CT in axial LPS voxel order -> liver mask, lesion mask and lesion probability. A CT turned
    away from the patient's axes (`oblique`) or of long pixels (`square_pixels`) is segmented on an
    axial grid of square pixels, and its results brought back onto its own. A CT that shows
    the liver on the patient's left or the spine in front (`flips`) is segmented flipped, and its masks
    flipped back; one whose lungs lie below the liver found (`head_feet`: its head and feet swapped) is
    segmented again the other way round, the order of the slices the network learned from."""
    progress = progress or NullProgress()
    timings = {} if timings is None else timings
    with progress.stage("preprocess", timings):
        axial = on_axial_grid(ct)  # an oblique reformat: slices cut at a slant
    if axial is not None:
        log.info("The CT's axes are turned %.0f degrees from the patient's: segmented on an axial grid, the "
                 "results brought back onto its own.", degrees_off_axes(ct.direction))
        found = segment_canonical(axial, network, preprocess, config, device, progress, timings)
        return _brought_back(found, lambda values, mask: onto_grid(values, axial, ct, mask))
    square = on_square_pixels(ct)  # a coronal or sagittal series: pixels 0.7 by 3 mm
    if square is not None:
        log.info("The CT's pixels are %.2f by %.2f mm: segmented on square pixels of %.2f mm, the results brought "
                 "back onto its grid.", ct.spacing[0], ct.spacing[1], square.spacing[0])
        found = segment_canonical(square, network, preprocess, config, device, progress, timings)
        return _brought_back(found, lambda values, mask: back_on_grid(values, ct.shape[1:], mask))
    found = _segment_in_plane(ct, network, preprocess, config, device, progress, timings)
    if not config.flip_check or not head_and_feet_swapped(ct.array, found.liver > 0, ct.spacing):
        return found
    # Told as it starts: the run takes about twice as long, and the panel's bar has already reached its end.
    progress.emit({"event": "log", "level": "info", "message": "The lungs lie below the liver: segmenting the CT "
                   "again with head and feet swapped back."})
    again = _segment_in_plane(ct.with_array(HEAD_FEET.apply(ct.array)), network, preprocess, config, device,
                              progress, timings)
    liver, lesion, lesion_probability = (HEAD_FEET.apply(a) for a in again[:3])
    return CanonicalResult(liver, lesion, lesion_probability, again.flipped, head_feet_swapped=True)


def _brought_back(found: CanonicalResult, back: Callable[[np.ndarray, bool], np.ndarray]) -> CanonicalResult:
    """`found` on another grid, brought back onto the CT's by `back(values, is_mask)`, the lesions
    inside the liver still."""
    liver, lesion = (back(mask, True) for mask in found[:2])
    return found._replace(liver=np.maximum(liver, lesion), lesion=lesion,
                          lesion_probability=back(found.lesion_probability, False))


def _segment_in_plane(ct: Volume, network: torch.nn.Module, preprocess: PreprocessConfig, config: InferenceConfig,
                      device: torch.device | str, progress: Progress, timings: dict) -> CanonicalResult:
    """`segment_canonical` as the slices are stored, flipped in their plane where `flips` says."""
    with progress.stage("preprocess", timings):
        stack = prepare_ct(ct.array, preprocess)
    with timed("model", timings):  # timed only: a few slices, no stage of their own on the progress bar
        flip = flip_to_segment(ct.array, stack, lambda slices, at: _liver_on(
            network, slices, at, preprocess, config, device, None, ct.spacing[2])) if config.flip_check else None
    if flip:
        log.debug("The CT looks stored with %s swapped: segmenting it flipped back.", flip.swapped)
        ct, stack = ct.with_array(flip.apply(ct.array)), flip.apply(stack)
    if preprocess.zoom:
        liver, lesion, lesion_probability = _find_then_zoom(ct, stack, network, preprocess, config, device,
                                                            progress, timings)
    else:
        with progress.stage("model", timings):
            probabilities = predict_sampled(network, stack, preprocess, config, device, progress, ct.spacing[2])
        with progress.stage("postprocess", timings):
            liver, lesion, lesion_probability = full_resolution_masks(probabilities, ct.shape[1:], config)
    with progress.stage("postprocess", timings):
        liver, lesion = clean_masks(liver, lesion, ct.spacing, config, ct.array, lesion_probability)
    if flip:
        liver, lesion, lesion_probability = (flip.apply(a) for a in (liver, lesion, lesion_probability))
    return CanonicalResult(liver, lesion, lesion_probability, flip.swapped if flip else "")


def _find_then_zoom(ct: Volume, stack: np.ndarray, network: torch.nn.Module, preprocess: PreprocessConfig,
                    config: InferenceConfig, device, progress: Progress, timings: dict):
    """Find the liver on whole slices (every `locate_stride`-th one), then segment its box at full
    network resolution. Outside the box, nothing is liver or lesion."""
    liver = np.zeros(ct.shape, np.uint8)
    lesion = np.zeros(ct.shape, np.uint8)
    lesion_probability = np.zeros(ct.shape, np.float32)
    search, box_pass = progress.part(0, SEARCH_SHARE), progress.part(SEARCH_SHARE, 1)
    with search.stage("model", timings):
        looked_at, found = _locate_liver(network, stack, preprocess, config, device, search, ct.spacing[2])
    # the liver's first and last slices may lie between the slices the network looked at
    unseen = model_step(ct.spacing[2], config) - 1
    box = liver_box_from_network_grid(found, looked_at, ct.shape, ct.spacing, preprocess.zoom_margin_mm,
                                      preprocess.zoom_extra_slices + preprocess.context_reach(ct.spacing[2]) + unseen,
                                      config.box_quantum)
    if box is None:
        return liver, lesion, lesion_probability
    with progress.stage("preprocess", timings):
        shift = liver_hu_shift(stack, found, preprocess, looked_at)
        zoomed = prepare_ct(crop(ct.array, box, AIR_HU), preprocess, shift)
    if preprocess.zoom_tiles > 1 and config.tile_weight > 0:
        masks = _with_tiles(ct, box, zoomed, shift, network, preprocess, config, device, box_pass, timings)
        with progress.stage("postprocess", timings):
            for target, values in zip((liver, lesion, lesion_probability), masks):
                paste(target, values, box)
    else:
        with box_pass.stage("model", timings):
            probabilities = predict_sampled(network, zoomed, preprocess, config, device, box_pass, ct.spacing[2])
        with progress.stage("postprocess", timings):
            # straight into the CT's grid: the box's masks at full resolution are never held whole
            write_full_resolution(tuple(a[box.k0:box.k1] for a in (liver, lesion, lesion_probability)),
                                  probabilities, config, box)
    return liver, lesion, lesion_probability


def _with_tiles(ct: Volume, box: Box, zoomed: np.ndarray, shift: float, network: torch.nn.Module,
                preprocess: PreprocessConfig, config: InferenceConfig, device, progress: Progress,
                timings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The third look: the box's tiles segmented at their finer pixels, averaged where they overlap
    (weighted towards each tile's centre) and blended with the box's own probabilities (`zoomed`,
    the box's network stack, segmented only when `config.tile_weight` < 1); then the masks as
    `full_resolution_masks` makes them. A chunk of slices at a time, so that only that chunk is held
    at full resolution, with a progress event (and a chance to cancel) after each; the pieces of a
    chunk are timed without stage events, which would send a progress bar back and forth."""
    parts = tiles(box, preprocess.zoom_tiles, preprocess.zoom_tile_share)
    with progress.stage("preprocess", timings):
        stacks = [prepare_ct(crop(ct.array, part, AIR_HU), preprocess, shift) for part in parts]
    weights = tile_weights(parts[0].side)
    within_box = [(slice(p.j0 - box.j0, p.j0 - box.j0 + p.side), slice(p.i0 - box.i0, p.i0 - box.i0 + p.side))
                  for p in parts]
    total = np.zeros((box.side, box.side), np.float32)
    for rows, cols in within_box:
        total[rows, cols] += weights
    k, started = len(zoomed), time.perf_counter()
    masks = tuple(np.empty((k, box.side, box.side), dtype) for dtype in (np.uint8, np.uint8, np.float32))
    for start in range(0, k, _UPSAMPLE_CHUNK):
        if progress.cancelled:
            raise Cancelled("segmentation cancelled; nothing was written")
        chunk = np.arange(start, min(start + _UPSAMPLE_CHUNK, k))
        blended = None
        for stack, (rows, cols) in zip(stacks, within_box):
            with timed("model", timings):
                found = predict_stack(network, stack, preprocess, config, device, None, chunk, ct.spacing[2])
            with timed("postprocess", timings):
                if blended is None:
                    blended = np.zeros((len(chunk), found.shape[1], box.side, box.side), np.float32)
                blended[:, :, rows, cols] += upsample(torch.from_numpy(found), weights.shape).numpy() * weights
        with timed("postprocess", timings):
            blended *= config.tile_weight / total
        if config.tile_weight < 1:
            with timed("model", timings):
                own = predict_stack(network, zoomed, preprocess, config, device, None, chunk, ct.spacing[2])
            with timed("postprocess", timings):
                blended += (1 - config.tile_weight) * upsample(torch.from_numpy(own), (box.side, box.side)).numpy()
        with timed("postprocess", timings):
            for target, values in zip(masks, full_resolution_masks(blended, (box.side, box.side), config)):
                target[chunk] = values
        done, elapsed = int(chunk[-1]) + 1, time.perf_counter() - started
        progress.emit({"event": "progress", "stage": "model", "done": done, "total": k,
                       "eta_s": round(elapsed / done * (k - done), 1)})
    return masks


def _locate_liver(network: torch.nn.Module, stack: np.ndarray, preprocess: PreprocessConfig,
                  config: InferenceConfig, device, progress: Progress,
                  slice_spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The liver on every `locate_stride`-th whole slice the network looks at (`model_step`), then on
    every one of those from just before its first to just after its last: the slices outside the
    liver are skipped, and the liver's box comes out as looking at every such slice would make it (a
    skipped slice inside the liver could widen it). Returns (slice indices looked at, liver mask on
    them)."""
    stride, step = config.locate_stride, model_step(slice_spacing_mm, config)
    grid = np.arange(0, len(stack), step)
    looked_at = grid[::stride]
    share = _STRIDE_SHARE if stride > 1 else 1
    found = _liver_on(network, stack, looked_at, preprocess, config, device, progress.part(0, share),
                      slice_spacing_mm)
    present = looked_at[found.any(axis=(1, 2))]
    if stride > 1 and present.size:
        reach = (stride - 1) * step
        span = grid[(grid >= present[0] - reach) & (grid <= present[-1] + reach)]
        rest = np.setdiff1d(span, looked_at)
        if rest.size:
            found = np.concatenate([found, _liver_on(network, stack, rest, preprocess, config, device,
                                                     progress.part(share, 1), slice_spacing_mm)])
            looked_at = np.concatenate([looked_at, rest])
            order = np.argsort(looked_at)
            looked_at, found = looked_at[order], found[order]
    return looked_at, largest_component(found)


def _liver_on(network, stack, indices, preprocess, config, device, progress, slice_spacing_mm) -> np.ndarray:
    return (predict_stack(network, stack, preprocess, config, device, progress, indices, slice_spacing_mm)[:, 0]
            >= config.liver_threshold).astype(np.uint8)


def model_step(slice_spacing_mm: float, config: InferenceConfig) -> int:
    """The network looks at every n-th slice: slices at least `model_slice_spacing_mm` apart."""
    if config.model_slice_spacing_mm <= 0 or not slice_spacing_mm > 0:
        return 1
    return max(1, int((config.model_slice_spacing_mm + 1e-6) // slice_spacing_mm))


def predict_sampled(network: torch.nn.Module, stack: np.ndarray, preprocess: PreprocessConfig,
                    config: InferenceConfig, device, progress: Optional[Progress],
                    slice_spacing_mm: float) -> np.ndarray:
    """`predict_stack` on every slice of `stack`, the network run on every `model_step`-th one and
    the last, the probabilities between them interpolated linearly."""
    step = model_step(slice_spacing_mm, config)
    if step == 1 or len(stack) <= 2:
        return predict_stack(network, stack, preprocess, config, device, progress, slice_spacing_mm=slice_spacing_mm)
    sampled = np.unique(np.r_[np.arange(0, len(stack), step), len(stack) - 1])
    found = predict_stack(network, stack, preprocess, config, device, progress, sampled, slice_spacing_mm)
    return interpolate_slices(found, sampled, len(stack))


def interpolate_slices(values: np.ndarray, at: np.ndarray, count: int) -> np.ndarray:
    """values (n, ...) on the increasing slice indices `at` (the first 0, the last count - 1) ->
    (count, ...) linear between them."""
    below, above, weight = between_slices(np.interp(np.arange(count), at, np.arange(len(at))), len(at))
    weight = weight.reshape((-1,) + (1,) * (values.ndim - 1))
    out = values[below]  # a copy, weighted in place: one full-size array besides the sampled ones
    out *= 1 - weight
    out += values[above] * weight
    return out


def predict_stack(network: torch.nn.Module, stack: np.ndarray, preprocess: PreprocessConfig,
                  config: InferenceConfig, device: torch.device | str = "cpu",
                  progress: Optional[Progress] = None, indices: Optional[np.ndarray] = None,
                  slice_spacing_mm: Optional[float] = None) -> np.ndarray:
    """uint8 stack (k, S, S) -> float32 probabilities (n, classes, S, S) for the slices `indices`
    (default: all), in batches of slices. `slice_spacing_mm`: the stack's, for neighbour channels a
    distance in mm away (`preprocess.context_mm`).

    Out of memory on a GPU halves the batch; at one slice it moves to the CPU (said in the log).
    """
    progress = progress or NullProgress()
    device = torch.device(device)
    indices = np.arange(len(stack)) if indices is None else np.asarray(indices)
    batch_size = max(1, config.batch_size)
    network.eval()
    out: Optional[np.ndarray] = None
    start, started = 0, time.perf_counter()
    while start < len(indices):
        if progress.cancelled:
            raise Cancelled("segmentation cancelled; nothing was written")
        batch_indices = indices[start:start + batch_size]
        try:
            batch = _predict(network, network_input(stack, batch_indices, preprocess, slice_spacing_mm), config,
                             device)
        except (RuntimeError, MemoryError) as exc:
            if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):
                raise
            batch_size, device = _smaller_batch(batch_size, device, network, exc)
            continue
        if out is None:
            out = np.empty((len(indices),) + batch.shape[1:], np.float32)
        out[start:start + len(batch_indices)] = batch
        start += len(batch_indices)
        elapsed = time.perf_counter() - started
        progress.emit({"event": "progress", "stage": "model", "done": int(start), "total": len(indices),
                       "eta_s": round(elapsed / start * (len(indices) - start), 1)})
    return out


def _predict(network: torch.nn.Module, x: torch.Tensor, config: InferenceConfig, device: torch.device) -> np.ndarray:
    dtype = compute_dtype(device, config.precision)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        probabilities = torch.sigmoid(network(x).float())
        if config.flip_tta:
            flipped = torch.sigmoid(network(torch.flip(x, dims=[3])).float())
            probabilities = (probabilities + torch.flip(flipped, dims=[3])) / 2
        return probabilities.cpu().numpy()


def _smaller_batch(batch_size: int, device: torch.device, network: torch.nn.Module, exc: BaseException):
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if batch_size > 1:
        log.warning("Out of memory at %d slices per batch on %s: retrying with %d.", batch_size, device.type,
                    batch_size // 2)
        return batch_size // 2, device
    if device.type != "cpu":
        log.warning("Out of memory on %s even at one slice per batch: continuing on the CPU.", device.type)
        network.to("cpu")
        return 1, torch.device("cpu")
    raise ResourceError("not enough memory to run the model on one slice", hint="close other programs") from exc


def full_resolution_masks(probabilities: np.ndarray, shape: tuple[int, int],
                          config: InferenceConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, 2, S, S) probabilities -> liver mask, lesion mask (uint8) and lesion probability (float32)
    on the full (rows, cols) grid, a chunk of slices at a time to bound memory."""
    masks = tuple(np.empty((len(probabilities),) + tuple(shape), dtype) for dtype in (np.uint8, np.uint8, np.float32))
    write_full_resolution(masks, probabilities, config)
    return masks


def write_full_resolution(targets: tuple[np.ndarray, np.ndarray, np.ndarray], probabilities: np.ndarray,
                          config: InferenceConfig, box: Optional[Box] = None) -> None:
    """(k, 2, S, S) probabilities -> liver mask, lesion mask and lesion probability written into
    `targets` (uint8, uint8, float32, each [k, rows, cols]) at full resolution: over the whole of
    each slice, or with `box`, over the box's square (its side the full resolution), clipped to the
    slices. A chunk of slices at a time to bound memory."""
    liver, lesion, lesion_probability = targets
    shape = liver.shape[1:] if box is None else (box.side, box.side)
    in_image, in_box = ((slice(None), slice(None)),) * 2 if box is None else in_plane_overlap(box, liver.shape)
    for start in range(0, len(probabilities), _UPSAMPLE_CHUNK):
        chunk = slice(start, min(start + _UPSAMPLE_CHUNK, len(probabilities)))
        full = upsample(torch.from_numpy(probabilities[chunk]), shape)[(slice(None), slice(None)) + in_box]
        liver[(chunk,) + in_image] = (full[:, 0] >= config.liver_threshold).numpy()
        lesion[(chunk,) + in_image] = (full[:, 1] >= config.lesion_threshold).numpy()
        # Steps of 1/1024 are finer than any threshold worth setting, and let the map compress on disk.
        lesion_probability[(chunk,) + in_image] = (torch.round(full[:, 1] * PROBABILITY_STEPS).numpy() /
                                                   PROBABILITY_STEPS)
