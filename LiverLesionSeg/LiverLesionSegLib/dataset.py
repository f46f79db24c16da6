"""Training and validation data, preprocessed once and kept in memory as uint8 slice stacks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .config import Config, PreprocessConfig, TrainConfig
from .errors import TrainingError, listed
from .oblique import on_axial_grid, onto_grid
from .preprocess import average_slice_groups, liver_hu_shift, network_input, prepare_ct, prepare_masks, targets_tensor
from .square_pixels import mask_on_square_pixels, on_square_pixels
from .volume import Case, Volume, to_axial_lps
from .zoom import AIR_HU, crop, liver_box, tiles

log = logging.getLogger("LiverLesionSeg")


@dataclass
class View:
    """Slices as the network sees them: uint8 images (k, S, S) and targets (k, 2, S, S) x 255."""

    stack: np.ndarray
    targets: np.ndarray
    slice_spacing_mm: Optional[float] = None  # for neighbour channels a distance in mm away


@dataclass
class PreparedCase:
    name: str
    views: list[View]  # the whole slices; with zoom also the liver's box
    ct: Optional[Volume] = None  # axial LPS order; kept for validation cases only
    liver: Optional[np.ndarray] = None  # uint8 [k, j, i] on the ct's grid, liver including lesions
    lesion: Optional[np.ndarray] = None
    lesions_segmented: bool = True  # False: its lesions are not labelled, and its slices train the liver alone


def prepare_case(case: Case, config: PreprocessConfig, keep_volume: bool = False) -> PreparedCase:
    """A labelled case on the network's grid; `keep_volume` keeps the full-resolution CT and masks
    (validation runs the whole inference on them)."""
    ct, liver, lesion = _axial_ct_and_masks(case)
    prepared = PreparedCase(case.name, case_views(ct.array, liver, lesion, ct.spacing, config),
                            lesions_segmented=case.lesions_segmented)
    if keep_volume:
        prepared.ct, prepared.liver, prepared.lesion = ct, liver, lesion
    return prepared


def prepare_training_case(case: Case, config: Config) -> PreparedCase:
    """A training case: `prepare_case`, and with `augment.thick_slices_mm` also its views as a
    thicker reconstruction (slices averaged in groups, a voxel of a mask inside when at least half
    of the group's are)."""
    ct, liver, lesion = _axial_ct_and_masks(case)
    views = case_views(ct.array, liver, lesion, ct.spacing, config.preprocess)
    thickness = config.augment.thick_slices_mm if config.augment.enabled else None
    group = 0 if thickness is None else int(round(thickness / ct.spacing[2]))
    if group >= 2 and ct.shape[0] >= group:
        thick_ct, thick_liver, thick_lesion = (average_slice_groups(a, group) for a in (ct.array, liver, lesion))
        views += case_views(thick_ct, (thick_liver >= 0.5).astype(np.uint8), (thick_lesion >= 0.5).astype(np.uint8),
                            (ct.spacing[0], ct.spacing[1], ct.spacing[2] * group), config.preprocess)
    return PreparedCase(case.name, views, lesions_segmented=case.lesions_segmented)


def _axial_ct_and_masks(case: Case) -> tuple[Volume, np.ndarray, np.ndarray]:
    """The CT in axial LPS order and its masks on that grid, the liver including the lesions."""
    if not case.labelled:
        raise TrainingError("has no liver and lesion masks", case.source or case.name,
                            "training and validation need labelled cases")
    ct, reorientation = to_axial_lps(case.ct)
    lesion = np.ascontiguousarray(reorientation.apply(case.lesion.array))
    liver = np.maximum(np.ascontiguousarray(reorientation.apply(case.liver.array)), lesion)
    if not liver.any():
        log.warning("%s: its masks hold no liver voxel (all 0): it adds slices without liver only",
                    case.source or case.name)
    axial = on_axial_grid(ct)  # an oblique reformat: learned from as it is segmented
    if axial is not None:
        ct, liver, lesion = axial, onto_grid(liver, ct, axial, mask=True), onto_grid(lesion, ct, axial, mask=True)
    square = on_square_pixels(ct)  # a coronal or sagittal series: learned from as it is segmented
    if square is not None:
        ct, liver, lesion = square, mask_on_square_pixels(liver, square), mask_on_square_pixels(lesion, square)
    return ct, liver, lesion


def case_views(hu: np.ndarray, liver: np.ndarray, lesion: np.ndarray, spacing: tuple[float, float, float],
               config: PreprocessConfig) -> list[View]:
    """The whole slices of a CT in axial order (HU) and its masks, and with zoom also the liver's box
    (and with zoom_tiles its tiles)."""
    slice_spacing = spacing[2]
    whole = View(prepare_ct(hu, config), prepare_masks(liver, lesion, config.size), slice_spacing)
    views = [whole]
    if config.zoom:
        box = liver_box(liver, spacing, config.zoom_margin_mm,
                        config.zoom_extra_slices + config.context_reach(slice_spacing))
        if box is not None:
            # The shift is measured as inference measures it: on the whole slices, where the liver is.
            shift = liver_hu_shift(whole.stack, whole.targets[:, 0] >= 128, config)
            boxes = [box] + (tiles(box, config.zoom_tiles, config.zoom_tile_share) if config.zoom_tiles > 1 else [])
            views += [View(prepare_ct(crop(hu, b, AIR_HU), config, shift),
                           prepare_masks(crop(liver, b, 0), crop(lesion, b, 0), config.size), slice_spacing)
                      for b in boxes]
    return views


@dataclass
class SliceSet:
    """Every slice of every view of the training cases, addressable by one flat index."""

    cases: list[PreparedCase]
    views: list[View] = field(init=False)
    view_index: np.ndarray = field(init=False)  # flat index -> view
    slice_index: np.ndarray = field(init=False)  # flat index -> slice within the view
    has_liver: np.ndarray = field(init=False)
    has_lesion: np.ndarray = field(init=False)
    lesion_known: np.ndarray = field(init=False)  # flat index -> whether its case's lesions are segmented

    def __post_init__(self) -> None:
        self.views = [view for case in self.cases for view in case.views]
        counts = [len(v.stack) for v in self.views]
        self.view_index = np.repeat(np.arange(len(self.views)), counts)
        self.slice_index = np.concatenate([np.arange(n) for n in counts]) if counts else np.zeros(0, int)
        # A slice counts as liver / lesion when at least one network pixel is mostly covered.
        self.has_liver = np.concatenate([(v.targets[:, 0] >= 128).any(axis=(1, 2)) for v in self.views])
        self.has_lesion = np.concatenate([(v.targets[:, 1] >= 128).any(axis=(1, 2)) for v in self.views])
        self.lesion_known = np.concatenate([np.full(len(v.stack), case.lesions_segmented)
                                            for case in self.cases for v in case.views])

    def __len__(self) -> int:
        return len(self.view_index)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cases]

    def batch(self, flat_indices: np.ndarray, config: PreprocessConfig):
        """Network input and targets for these slices, as float tensors, in the order given."""
        import torch

        images, targets = [], []
        for flat in flat_indices:
            view = self.views[self.view_index[flat]]
            k = np.array([self.slice_index[flat]])
            images.append(network_input(view.stack, k, config, view.slice_spacing_mm))
            targets.append(targets_tensor(view.targets, k))
        return torch.cat(images), torch.cat(targets)


def epoch_order(slices: SliceSet, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """The slices drawn for one epoch, shuffled: every liver slice, a share of the slices without
    liver, and lesion slices repeated `lesion_oversample` times on average."""
    liver = np.flatnonzero(slices.has_liver)
    if liver.size == 0:
        raise TrainingError(f"no slice of the training cases ({listed(slices.names)}) holds liver",
                            hint="check the masks of the training cases")
    background = np.flatnonzero(~slices.has_liver)
    n_background = min(background.size, int(round(config.background_fraction * liver.size)))
    chosen = [liver, rng.choice(background, n_background, replace=False) if n_background else background[:0]]
    lesion = np.flatnonzero(slices.has_lesion)
    extra = max(0.0, config.lesion_oversample - 1.0)
    if lesion.size and extra > 0:
        whole = int(np.floor(extra))
        chosen += [lesion] * whole
        chosen.append(lesion[rng.random(lesion.size) < extra - whole])
    order = np.concatenate(chosen)
    rng.shuffle(order)
    if config.max_slices_per_epoch > 0:
        order = order[:config.max_slices_per_epoch]
    return order
