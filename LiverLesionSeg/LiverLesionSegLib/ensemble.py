"""Several models' segmentations of one CT combined by majority vote.

Each model segments the CT on its own, with its own clean-up rules; a voxel is liver where more
than half of them call it liver, and lesion where more than half call it lesion. Measured in the
README against the mean of the models' probabilities: the vote keeps the lesions most models
agree on and drops the false lesion that only one model is sure of, where the mean of the
probabilities lets one sure model carry a region past the threshold, and then grows it.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from .caveats import result_caveats
from .checkpoint import Checkpoint
from .infer import Segmentation, segment_volume
from .masks import label_components
from .memory import check_segmentation_fits
from .postprocess import at_least_voxels
from .progress import NullProgress, Progress
from .volume import Volume

log = logging.getLogger("LiverLesionSeg")


def majority_vote(members: Iterable[Segmentation], min_lesion_mm3: float = 0.0) -> Segmentation:
    """The voxels more than half of `members` (segmentations of one CT) call liver, and lesion;
    voted lesion pieces under `min_lesion_mm3` are dropped (they stay liver). The lesion
    probability is the members' mean; each stage's time is the members' sum. Members are counted
    as they come: a generator of them need not be held in memory all at once."""
    count, first, liver_votes, lesion_votes, probability_sum = 0, None, None, None, None
    flipped, head_feet_swapped = "", False
    timings: dict[str, float] = {}
    for member in members:
        if first is None:
            first = member
            liver_votes, lesion_votes = (np.zeros(member.liver.shape, np.uint8) for _ in range(2))
            probability_sum = np.zeros(member.liver.shape, np.float32)
        liver_votes += member.liver.array > 0
        lesion_votes += member.lesion.array > 0
        probability_sum += member.lesion_probability.array
        flipped = flipped or member.flipped
        head_feet_swapped = head_feet_swapped or member.head_feet_swapped
        for stage, seconds in member.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        count += 1
    if first is None:
        raise ValueError("majority_vote needs at least one segmentation")
    majority = count // 2 + 1
    liver = liver_votes >= majority
    # Each member's lesions lie inside its liver, so a voxel with a lesion majority has a liver majority.
    lesion = (lesion_votes >= majority) & liver
    if min_lesion_mm3 > 0 and lesion.any():
        lesion = _without_small_pieces(lesion, min_lesion_mm3 / first.lesion.voxel_volume_mm3)
    return Segmentation(first.liver.with_array(liver.astype(np.uint8)), first.lesion.with_array(lesion.astype(np.uint8)),
                        first.lesion_probability.with_array(probability_sum / count), timings,
                        flipped=flipped, head_feet_swapped=head_feet_swapped)


def segment_with_models(volume: Volume, checkpoints: Sequence[Checkpoint], device: torch.device | str = "cpu",
                        progress: Optional[Progress] = None) -> Segmentation:
    """`volume` segmented by one model, or by the majority vote of several, each with its own
    inference settings and reporting its stages as its share of the whole job. The result's
    cautions (`caveats.result_caveats`) are set on it and logged as warnings."""
    progress = progress or NullProgress()
    count = len(checkpoints)
    if count == 1:
        result = segment_volume(volume, checkpoints[0], checkpoints[0].config.inference, device, progress)
    else:
        members = (segment_volume(volume, c, c.config.inference, device, progress.part(i / count, (i + 1) / count))
                   for i, c in enumerate(checkpoints))
        result = majority_vote(members, checkpoints[0].config.inference.min_lesion_mm3)
    result.caveats = result_caveats(volume, result)
    for caveat in result.caveats:
        log.warning("Caution (%s): %s.", volume.source or "the input", caveat)
    return result


def check_models_fit(volume: Volume, checkpoints: Sequence[Checkpoint], where) -> None:
    """Refuse, before any work, a `volume` that one of `checkpoints` could not segment in the memory
    there is (`where`: the input, as the message names it)."""
    for checkpoint in checkpoints:
        check_segmentation_fits(volume.shape, volume.array.itemsize, checkpoint.config.preprocess,
                                checkpoint.config.inference, where)


def _without_small_pieces(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    labels, count = label_components(mask)
    return at_least_voxels(labels, np.arange(count + 1) > 0, min_voxels)[labels]
