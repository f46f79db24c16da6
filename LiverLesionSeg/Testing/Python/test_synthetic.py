"""Synthetic lesions: painted inside the liver, marked in the lesion target, repeatable."""

import torch

from LiverLesionSegLib.config import AugmentConfig
from LiverLesionSegLib.synthetic import add_masses_beside_liver, add_synthetic_lesions


def _batch(n=8, channels=3):
    images = torch.full((n, channels, 64, 64), 0.55)
    targets = torch.zeros(n, 2, 64, 64)
    targets[:, 0, 16:48, 10:40] = 1  # the liver
    targets[0, 0] = 0  # a slice without liver
    return images, targets


def test_lesions_are_painted_inside_the_liver_and_marked():
    images, targets = _batch()
    config = AugmentConfig(synthetic_lesions=1.0, synthetic_hyperdense_share=0.0)
    new_images, new_targets = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(0))
    lesion = new_targets[:, 1]
    assert lesion[0].sum() == 0 and torch.equal(new_images[0], images[0])  # no liver, no lesion
    assert (lesion[1:].flatten(1).amax(1) > 0.5).all()
    assert (lesion * (1 - targets[:, 0])).sum() == 0  # never outside the liver
    changed = (new_images[:, 1] - images[:, 1]).abs() > 1e-6
    assert not (changed & (targets[:, 0] == 0)).any()
    assert (new_images[:, 1][lesion > 0.5] < 0.55).all()  # hypodense: darker
    assert torch.equal(images, _batch()[0]) and torch.equal(targets, _batch()[1])  # inputs untouched


def test_hyperdense_lesions_are_brighter_and_neighbour_slices_smaller():
    images, targets = _batch()
    config = AugmentConfig(synthetic_lesions=1.0, synthetic_hyperdense_share=1.0)
    new_images, new_targets = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(1))
    lesion = new_targets[1:, 1] > 0.5
    assert (new_images[1:, 1][lesion] > 0.55).all()
    centre_area = (new_images[1:, 1] - 0.55).abs().gt(0.01).sum()
    side_area = (new_images[1:, 0] - 0.55).abs().gt(0.01).sum()
    assert 0 < side_area < centre_area


def test_chance_zero_changes_nothing_and_seed_repeats():
    images, targets = _batch()
    same = add_synthetic_lesions(images, targets, AugmentConfig(synthetic_lesions=0.0), torch.Generator())
    assert same[0] is images and same[1] is targets
    config = AugmentConfig(synthetic_lesions=0.5)
    a = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(7))
    b = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_halo_lesions_have_a_core_and_a_rim_of_other_contrast_both_marked():
    images, targets = _batch()
    config = AugmentConfig(synthetic_lesions=1.0, synthetic_hyperdense_share=0.0, synthetic_halo_share=1.0,
                           synthetic_halo_rim=(-0.5, -0.5), synthetic_radius=(7.0, 8.0))
    new_images, new_targets = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(3))
    centre, lesion = new_images[1:, 1], new_targets[1:, 1]
    darker, brighter = centre < 0.55 - 0.02, centre > 0.55 + 0.02
    # An enhancing rim (brighter) around a dark core, on every slice; both are lesion.
    assert (darker & (lesion > 0.5)).flatten(1).any(1).all()
    assert (brighter & (lesion > 0.5)).flatten(1).any(1).all()
    assert not (brighter & (lesion < 0.05)).any()
    # The core is in the middle: on average, its pixels lie further inside the lesion than the rim's.
    for dark, bright, marked in zip(darker, brighter, lesion > 0.5):
        depth = _depth_inside(marked)
        assert depth[dark & marked].mean() > depth[bright & marked].mean()


def test_halo_share_draws_some_lesions_plain():
    images, targets = _batch()
    config = AugmentConfig(synthetic_lesions=1.0, synthetic_hyperdense_share=0.0, synthetic_halo_share=0.5,
                           synthetic_halo_rim=(-0.5, -0.5))
    new_images, new_targets = add_synthetic_lesions(images, targets, config, torch.Generator().manual_seed(4))
    with_rim = (new_images[1:, 1] > 0.55 + 0.02).flatten(1).any(1)
    assert 0 < with_rim.sum() < len(with_rim)


def _depth_inside(mask: torch.Tensor) -> torch.Tensor:
    """How many erosions by a 3x3 square each pixel of the mask survives."""
    depth, current = torch.zeros(mask.shape), mask.float()
    while current.any():
        depth += current
        current = -torch.nn.functional.max_pool2d(-current[None, None], 3, stride=1, padding=1)[0, 0]
    return depth


def test_masses_are_painted_beside_the_liver_and_left_unmarked():
    images, targets = _batch()
    config = AugmentConfig(masses_beside_liver=1.0, mass_radius=(6.0, 12.0), mass_density=(0.3, 0.35))
    new_images, new_targets = add_masses_beside_liver(images, targets, config, torch.Generator().manual_seed(2))
    assert torch.equal(new_targets, targets)  # neither liver nor lesion
    changed = (new_images[:, 1] - images[:, 1]).abs() > 0.02
    assert not changed[0].any()  # no liver on that slice: nothing painted
    assert changed[1:].flatten(1).any(1).all()
    assert not (changed & (targets[:, 0] > 0)).any()  # only outside the liver
    near = torch.zeros(64, 64, dtype=torch.bool)
    near[16 - 14:48 + 14, max(10 - 14, 0):40 + 14] = True  # within a radius of the liver
    centre = new_images[1:, 1] < 0.45
    assert (centre & ~near).sum() < 0.5 * centre.sum()
    assert new_images[1:, 1][centre].min() >= 0.3 * 0.75 - 1e-6  # the mass's density, textured


def test_masses_chance_zero_changes_nothing():
    images, targets = _batch()
    same = add_masses_beside_liver(images, targets, AugmentConfig(), torch.Generator())
    assert same[0] is images and same[1] is targets
