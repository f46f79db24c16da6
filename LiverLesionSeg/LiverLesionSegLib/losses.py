"""The training loss: BCE with weighted positives + soft Dice + Tversky, per output channel.

Dice and Tversky are computed over the whole batch (not per slice), so slices without lesion do
not each ask for an empty prediction with the weight of a full Dice term. Slices of a case whose
lesions are not segmented (`lesion_known` False) are left out of the lesion channel's terms.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .config import LossConfig

_SMOOTH = 1.0


class SegmentationLoss(torch.nn.Module):
    def __init__(self, config: LossConfig):
        super().__init__()
        self.config = config
        self.register_buffer("pos_weight", torch.tensor(config.bce_pos_weight, dtype=torch.float32).view(-1, 1, 1))
        weights = torch.tensor(config.class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights / weights.sum())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, lesion_known: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """logits, targets: (batch, classes, H, W); targets in [0, 1]; `lesion_known` (batch,): whether
        each slice's lesions are segmented (all, where not given). Returns the loss and its parts."""
        c = self.config
        dims = (0, 2, 3)
        counted = torch.ones_like(targets[:, :, :1, :1])  # (batch, classes, 1, 1): which slices each channel counts
        if lesion_known is not None:
            counted[:, 1] = lesion_known.to(counted).view(-1, 1, 1)
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight, reduction="none")
        bce = (bce * counted).sum(dims) / (counted.sum(dims) * bce.shape[2] * bce.shape[3]).clamp(min=1)
        probabilities = torch.sigmoid(logits) * counted
        targets = targets * counted
        tp = (probabilities * targets).sum(dims)
        fp = (probabilities * (1 - targets)).sum(dims)
        fn = ((counted - probabilities) * targets).sum(dims)
        dice = 1 - (2 * tp + _SMOOTH) / (2 * tp + fp + fn + _SMOOTH)
        tversky = 1 - (tp + _SMOOTH) / (tp + c.tversky_alpha * fp + c.tversky_beta * fn + _SMOOTH)
        per_class = c.bce_weight * bce + c.dice_weight * dice + c.tversky_weight * tversky
        total = (per_class * self.class_weights).sum()
        parts = {"bce": float((bce.detach() * self.class_weights).sum()),
                 "dice": float((dice.detach() * self.class_weights).sum()),
                 "tversky": float((tversky.detach() * self.class_weights).sum())}
        return total, parts
