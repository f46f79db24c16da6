"""Augmentation of a batch on tensors: one random affine per slice (flip, rotation, scale, shear,
translation, crop) applied to image and masks alike in one `grid_sample`, then intensity jitter on
the image only. Seeded through a `torch.Generator`, so a run is repeatable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig
from .synthetic import (add_masses_beside_liver, add_synthetic_lesions, mirror_real_lesions, paste_real_lesions,
                        slice_medians)


def augment_batch(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """images (n, c, H, W) in [0, 1]-ish, targets (n, k, H, W) in [0, 1] -> the augmented pair."""
    if not config.enabled:
        return images, targets
    if config.mirrored_lesions > 0:  # before the synthetic ones: only real lesions are mirrored
        images, targets = mirror_real_lesions(images, targets, config, generator)
    if config.pasted_lesions > 0:  # before the synthetic ones: only real lesions are copied
        images, targets = paste_real_lesions(images, targets, config, generator)
    if config.synthetic_lesions > 0:
        images, targets = add_synthetic_lesions(images, targets, config, generator)
    if config.masses_beside_liver > 0:
        images, targets = add_masses_beside_liver(images, targets, config, generator)
    if config.liver_enhancement > 0:  # after the painted lesions and masses: their contrast changes too
        images = vary_enhancement(images, targets, config, generator)
    if config.fatty_liver > 0:  # after the painted lesions: they keep their density, the liver around them not
        images = fatty_liver(images, targets, config, generator)
    n = images.shape[0]
    theta = random_affines(n, config, generator)
    both = torch.cat([images, targets], dim=1)
    grid = F.affine_grid(theta, list(both.shape), align_corners=False)
    # Zero padding: after windowing, 0 is the bottom of the window, as air and fat are.
    both = F.grid_sample(both, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    images, targets = both[:, :images.shape[1]], both[:, images.shape[1]:].clamp_(0, 1)
    return jitter_intensity(images, config, generator), targets


def random_affines(n: int, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output to input coordinates in [-1, 1]."""
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-config.rotate_degrees, config.rotate_degrees) * math.pi / 180
    shear = uniform(-config.shear_degrees, config.shear_degrees) * math.pi / 180
    zoom = uniform(*config.scale)
    # A crop of side s shows 1/s of the slice: sampling coordinates shrink by s.
    crop = torch.rand(n, generator=generator) < config.crop_probability
    crop_side = torch.where(crop, uniform(*config.crop_scale), torch.ones(n))
    extent = crop_side / zoom
    flip_x = torch.where(torch.rand(n, generator=generator) < config.flip_lr, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=generator) < config.flip_ud, -1.0, 1.0)
    # The crop may sit anywhere inside the slice; translation on top of that.
    slack = (1 - crop_side).clamp(min=0)
    shift_x = uniform(-1, 1) * slack + uniform(-config.translate, config.translate) * 2
    shift_y = uniform(-1, 1) * slack + uniform(-config.translate, config.translate) * 2

    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.zeros(n, 2, 2)
    shearing[:, 0, 0] = 1
    shearing[:, 0, 1] = torch.tan(shear)
    shearing[:, 1, 1] = 1
    scaling = torch.diag_embed(torch.stack([extent * flip_x, extent * flip_y], -1))
    linear = rotation @ shearing @ scaling
    return torch.cat([linear, torch.stack([shift_x, shift_y], -1)[:, :, None]], dim=2)


def vary_enhancement(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """Each slice with liver as if the contrast agent had enhanced it by a random share more or less
    (within +-`liver_enhancement`; another bolus, delay or tube voltage): what the contrast agent
    raises (soft tissue above water) scales by that share, and the whole slice is then shifted back
    so that the liver's median stays where it was, as the liver-relative box puts it at inference.
    Its contrast to the liver scales, a lesion's too; what lies more than `enhancement_floor` below
    the liver's median (fat, air: not enhanced) moves by a constant. All channels alike."""
    liver = targets[:, 0] > 0.5
    index = liver.flatten(1).any(1).nonzero().flatten()
    if index.numel() == 0:
        return images
    share = config.liver_enhancement * (2 * torch.rand(index.numel(), generator=generator) - 1)
    share, median = share.view(-1, 1, 1, 1), slice_medians(images, liver, index).view(-1, 1, 1, 1)
    images = images.clone()
    difference = (images[index] - median).clamp(min=-config.enhancement_floor)
    images[index] = images[index] + share * difference
    return images


def fatty_liver(images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig,
                generator: torch.Generator) -> torch.Tensor:
    """Slices with liver, each with the chance `fatty_liver`, as if the liver were fatty: its
    parenchyma (the liver but its lesions) darker than the rest of the slice by a random amount up
    to `fatty_liver_drop`, so that a lesion's contrast to it shrinks, vanishes or turns round. The
    slice is then shifted so that the liver's median stays where it was, as the liver-relative box
    puts it at inference: the lesions and all around the liver come out brighter. All channels
    alike."""
    liver = targets[:, 0] > 0.5
    chosen = liver.flatten(1).any(1) & (torch.rand(images.shape[0], generator=generator) < config.fatty_liver)
    index = chosen.nonzero().flatten()
    if index.numel() == 0:
        return images
    drop = (config.fatty_liver_drop * torch.rand(index.numel(), generator=generator)).view(-1, 1, 1, 1)
    parenchyma = (liver[index] & (targets[index, 1] <= 0.5)).unsqueeze(1)
    images = images.clone()
    images[index] = images[index] + drop * (~parenchyma).float()
    return images


def jitter_intensity(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    n = images.shape[0]
    gain = 1 + config.contrast * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
    offset = config.brightness * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
    noise = config.noise * torch.randn(images.shape, generator=generator)
    return images * gain + offset + noise
