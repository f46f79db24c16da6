"""Synthetic liver lesions painted into training slices.

With few real lesions to learn from, a model learns those lesions and little else. Painting
lesions of random size, shape, contrast and texture into the liver (as Hu et al., "Label-free
liver tumor segmentation", CVPR 2023, do in 3-D) shows it many more, tumour-free livers included.
Each lesion is an ellipse with a wobbly edge and a soft border, darker (hypodense) or brighter
(hyperdense) than the liver around it, with a little texture; its cross-section shrinks in the
neighbouring slices of a 2.5-D input, as a roughly round lesion's would. Vectorised over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig


def add_synthetic_lesions(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """images (n, c, H, W) in window units, targets (n, 2, H, W): liver, lesion. Returns new tensors."""
    n, channels, height, width = images.shape
    liver = targets[:, 0] > 0.5
    chosen = liver.flatten(1).any(1) & (torch.rand(n, generator=generator) < config.synthetic_lesions)
    index = chosen.nonzero().flatten()
    if index.numel() == 0:
        return images, targets
    m = index.numel()

    def uniform(low: float, high: float, size=(m,)) -> torch.Tensor:
        return low + (high - low) * torch.rand(size, generator=generator)

    # Centre on a random liver pixel; an ellipse of random size, aspect and angle.
    centre = torch.multinomial(liver[index].flatten(1).float(), 1, generator=generator).squeeze(1)
    cy, cx = (centre // width).float(), (centre % width).float()
    radius_x = uniform(*config.synthetic_radius)
    radius_y = radius_x * uniform(0.6, 1.0)
    angle = uniform(0, math.pi)
    yy = torch.arange(height, dtype=torch.float32).view(1, height, 1)
    xx = torch.arange(width, dtype=torch.float32).view(1, 1, width)
    dx, dy = xx - cx.view(-1, 1, 1), yy - cy.view(-1, 1, 1)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    distance = torch.sqrt((u / radius_x.view(-1, 1, 1)) ** 2 + (v / radius_y.view(-1, 1, 1)) ** 2)
    distance = distance * (1 + 0.15 * _smooth_noise(m, height, width, 6, generator))  # a wobbly edge

    # Darker or brighter than the liver; a little texture inside.
    hyper = torch.rand(m, generator=generator) < config.synthetic_hyperdense_share
    change = torch.where(hyper, uniform(*config.synthetic_hyperdense), -uniform(*config.synthetic_hypodense))
    texture = 1 + 0.3 * _smooth_noise(m, height, width, 24, generator)
    sharpness = uniform(4, 12).view(-1, 1, 1)
    inside_liver = liver[index].float()

    images, targets = images.clone(), targets.clone()
    centre_channel = channels // 2
    slab = uniform(0.2, 0.6)  # neighbouring slice distance, as a fraction of the radius
    for channel in range(channels):
        offset = (channel - centre_channel) * slab
        section = torch.sqrt(torch.clamp(1 - offset ** 2, min=0)).view(-1, 1, 1)  # the sphere's cross-section
        shape = torch.sigmoid((1 - distance / section.clamp(min=1e-3)) * sharpness) * (section > 0)
        shape = shape * inside_liver
        images[index, channel] = (images[index, channel] + shape * change.view(-1, 1, 1) * texture).clamp(0, 1)
        if channel == centre_channel:
            targets[index, 1] = torch.maximum(targets[index, 1], shape)
    return images, targets


def _smooth_noise(n: int, height: int, width: int, cells: int, generator: torch.Generator) -> torch.Tensor:
    """Noise in [-1, 1] that varies over about size/cells pixels."""
    coarse = 2 * torch.rand(n, 1, cells, cells, generator=generator) - 1
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[:, 0].clamp(-1, 1)
