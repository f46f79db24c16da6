"""The training loss: BCE with weighted positives + soft Dice + Tversky, per output channel.

Dice and Tversky are computed over the whole batch (not per slice), so slices without lesion do
not each ask for an empty prediction with the weight of a full Dice term.
"""

from __future__ import annotations

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

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """logits, targets: (batch, classes, H, W); targets in [0, 1]. Returns the loss and its parts."""
        c = self.config
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight, reduction="none")
        bce = bce.mean(dim=(0, 2, 3))
        probabilities = torch.sigmoid(logits)
        dims = (0, 2, 3)
        tp = (probabilities * targets).sum(dims)
        fp = (probabilities * (1 - targets)).sum(dims)
        fn = ((1 - probabilities) * targets).sum(dims)
        dice = 1 - (2 * tp + _SMOOTH) / (2 * tp + fp + fn + _SMOOTH)
        tversky = 1 - (tp + _SMOOTH) / (tp + c.tversky_alpha * fp + c.tversky_beta * fn + _SMOOTH)
        per_class = c.bce_weight * bce + c.dice_weight * dice + c.tversky_weight * tversky
        total = (per_class * self.class_weights).sum()
        parts = {"bce": float((bce.detach() * self.class_weights).sum()),
                 "dice": float((dice.detach() * self.class_weights).sum()),
                 "tversky": float((tversky.detach() * self.class_weights).sum())}
        return total, parts
