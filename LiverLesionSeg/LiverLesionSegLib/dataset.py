"""Training and validation data, preprocessed once and kept in memory as uint8 slice stacks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .config import PreprocessConfig, TrainConfig
from .errors import TrainingError
from .preprocess import prepare_ct, prepare_masks
from .volume import Case, to_axial_lps

log = logging.getLogger("LiverLesionSeg")


@dataclass
class PreparedCase:
    """One case on the network's grid, plus (for validation) its full-resolution masks."""

    name: str
    stack: np.ndarray  # uint8 (k, S, S)
    targets: np.ndarray  # uint8 (k, 2, S, S): liver, lesion area fractions x 255
    spacing: tuple[float, float, float]
    full_shape: tuple[int, int, int]
    liver: np.ndarray | None = None  # uint8 [k, j, i] in axial LPS order, kept for validation only
    lesion: np.ndarray | None = None


def prepare_case(case: Case, config: PreprocessConfig, keep_masks: bool = False) -> PreparedCase:
    if not case.labelled:
        raise TrainingError("has no liver and lesion masks", case.source or case.name,
                            "training and validation need labelled cases")
    ct, reorientation = to_axial_lps(case.ct)
    liver = np.ascontiguousarray(reorientation.apply(case.liver.array))
    lesion = np.ascontiguousarray(reorientation.apply(case.lesion.array))
    liver = np.maximum(liver, lesion)  # the organ includes its lesions
    prepared = PreparedCase(case.name, prepare_ct(ct.array, config), prepare_masks(liver, lesion, config.size),
                            ct.spacing, ct.shape)
    if keep_masks:
        prepared.liver, prepared.lesion = liver, lesion
    return prepared


@dataclass
class SliceSet:
    """Every slice of the training cases, addressable by one flat index."""

    cases: list[PreparedCase]
    case_index: np.ndarray = field(init=False)  # flat index -> case
    slice_index: np.ndarray = field(init=False)  # flat index -> slice within the case
    has_liver: np.ndarray = field(init=False)
    has_lesion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        counts = [len(c.stack) for c in self.cases]
        self.case_index = np.repeat(np.arange(len(self.cases)), counts)
        self.slice_index = np.concatenate([np.arange(n) for n in counts]) if counts else np.zeros(0, int)
        # A slice counts as liver / lesion when at least one network pixel is mostly covered.
        self.has_liver = np.concatenate([(c.targets[:, 0] >= 128).any(axis=(1, 2)) for c in self.cases])
        self.has_lesion = np.concatenate([(c.targets[:, 1] >= 128).any(axis=(1, 2)) for c in self.cases])

    def __len__(self) -> int:
        return len(self.case_index)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cases]

    def batch(self, flat_indices: np.ndarray, config: PreprocessConfig):
        """Network input and targets for these slices, as float tensors, in the order given."""
        import torch

        from .preprocess import network_input, targets_tensor

        images, targets = [], []
        for flat in flat_indices:
            case = self.cases[self.case_index[flat]]
            k = np.array([self.slice_index[flat]])
            images.append(network_input(case.stack, k, config))
            targets.append(targets_tensor(case.targets, k))
        return torch.cat(images), torch.cat(targets)


def epoch_order(slices: SliceSet, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """The slices drawn for one epoch, shuffled: every liver slice, a share of the slices without
    liver, and lesion slices repeated `lesion_oversample` times on average."""
    liver = np.flatnonzero(slices.has_liver)
    if liver.size == 0:
        raise TrainingError("no slice of the training cases holds liver", hint="check the masks of the training cases")
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
