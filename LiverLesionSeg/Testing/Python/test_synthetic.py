"""Synthetic lesions: painted inside the liver, marked in the lesion target, repeatable; real lesions
mirrored to the opposite contrast."""

import torch

from LiverLesionSegLib.config import AugmentConfig
from LiverLesionSegLib.augment import augment_batch
from LiverLesionSegLib.synthetic import (add_masses_beside_liver, add_synthetic_lesions, mirror_real_lesions,
                                         paste_real_lesions)


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


def _real_lesions(n=6):
    """A textured liver at 0.55 with a dark lesion (0.35, textured too) on slices 1 on; slice 0 has
    none, and slice 1's lesion fills the whole liver (no liver beside it to mirror about)."""
    generator = torch.Generator().manual_seed(5)
    images, targets = _batch(n)
    images += 0.02 * torch.randn(images.shape, generator=generator)
    targets[1:, 1, 24:36, 18:30] = 1
    targets[1, 0] = targets[1, 1]
    images[:, :, 24:36, 18:30] -= 0.2 * targets[:, 1:2, 24:36, 18:30]
    return images, targets


def test_mirrored_lesions_turn_bright_about_the_liver_and_keep_their_texture():
    images, targets = _real_lesions()
    config = AugmentConfig(mirrored_lesions=1.0, mirrored_lesion_strength=(1.0, 1.0))
    new_images, new_targets = mirror_real_lesions(images, targets, config, torch.Generator().manual_seed(0))
    assert torch.equal(new_targets, targets)
    assert torch.equal(new_images[:2], images[:2])  # no lesion; no liver beside it
    inner = (slice(2, None), slice(None), slice(26, 34), slice(20, 28))  # away from the softened edge
    liver = images[2:, 1][targets[2:, 0].bool() & ~targets[2:, 1].bool()]
    mirrored = 2 * liver.median() - images[inner]
    assert torch.allclose(new_images[inner], mirrored, atol=0.02)  # 0.35 -> 0.75, texture reversed
    assert new_images[inner].mean() > 0.7
    # Only under the lesion and its softened edge, two pixels wide; every input channel alike.
    changed = (new_images - images).abs() > 1e-6
    widened = torch.zeros(64, 64, dtype=torch.bool)
    widened[22:38, 16:32] = True
    assert not (changed & ~widened).any()
    assert (new_images[2:, :, 26:34, 20:28].mean(dim=(0, 2, 3)) > 0.7).all()


def test_mirror_strength_scales_the_contrast_and_chance_picks_slices():
    images, targets = _real_lesions(n=40)
    weak = AugmentConfig(mirrored_lesions=1.0, mirrored_lesion_strength=(0.5, 0.5))
    new_images, _ = mirror_real_lesions(images, targets, weak, torch.Generator().manual_seed(0))
    assert abs(float(new_images[2:, 1, 26:34, 20:28].mean()) - (0.55 + 0.5 * 0.2)) < 0.02
    some = AugmentConfig(mirrored_lesions=0.5)
    new_images, _ = mirror_real_lesions(images, targets, some, torch.Generator().manual_seed(0))
    mirrored = (new_images[:, 1, 30, 24] > 0.55).sum()
    assert 5 < mirrored < 33
    same = mirror_real_lesions(images, targets, AugmentConfig(), torch.Generator())
    assert same[0] is images


def test_augment_batch_mirrors_real_lesions_not_the_synthetic_ones():
    """Mirrored before the synthetic lesions are painted: a painted lesion keeps its own contrast."""
    images, targets = _real_lesions()
    config = AugmentConfig(mirrored_lesions=1.0, mirrored_lesion_strength=(1.0, 1.0), synthetic_lesions=1.0,
                           synthetic_hyperdense_share=0.0,
                           rotate_degrees=0, scale=(1, 1), translate=0, shear_degrees=0, crop_probability=0,
                           flip_lr=0, contrast=0, brightness=0, noise=0)
    new_images, new_targets = augment_batch(images, targets, config, torch.Generator().manual_seed(0))
    real, near_real = torch.zeros(64, 64, dtype=torch.bool), torch.zeros(64, 64, dtype=torch.bool)
    real[26:34, 20:28], near_real[22:38, 16:32] = True, True
    painted = (new_targets[2:, 1] > 0.9) & ~near_real
    # The real lesion, now bright (a painted one may overlap part of it).
    assert (new_images[2:, 1][:, real].median(dim=1).values > 0.65).all()
    assert painted.any() and new_images[2:, 1][painted].median() < 0.5  # painted: dark


def _batch_with_one_real_lesion():
    """Slice 1 holds a real lesion (a square 0.3 darker than its liver, darker still at its middle,
    smaller in the neighbour channels); the livers of the other slices are of other densities."""
    images, targets = _batch()
    images[:, :, 16:48, 10:40] = torch.linspace(0.45, 0.65, 8).view(8, 1, 1, 1)  # each liver its own density
    images[1, :, 24:32, 14:22] -= 0.3
    images[1, 1, 27:29, 17:19] -= 0.1
    images[1, 0, 24:32, 14:22] += 0.2  # the neighbour slice: a smaller cross-section
    targets[1, 1, 24:32, 14:22] = 1
    return images, targets


def test_real_lesions_are_pasted_into_other_livers_with_their_contrast_and_marked():
    images, targets = _batch_with_one_real_lesion()
    config = AugmentConfig(pasted_lesions=1.0)
    new_images, new_targets = paste_real_lesions(images, targets, config, torch.Generator().manual_seed(0))
    assert torch.equal(new_images[0], images[0]) and new_targets[0].sum() == 0  # no liver: nothing pasted
    liver = targets[:, 0] > 0.5
    assert (new_targets[:, 1] * ~liver).sum() == 0  # never outside the liver
    for k in range(2, 8):
        pasted = new_targets[k, 1] > 0.5
        assert 0 < pasted.sum() <= 64  # the 8 x 8 lesion, cut where it leaves the liver
        own = images[k, 1, 20, 30].item()  # this slice's liver density
        core = new_images[k, 1][pasted]
        # the lesion's contrast to its liver, 0.3 (0.4 at its middle), now to this slice's liver
        assert torch.allclose(core.max(), torch.tensor(own - 0.3), atol=1e-5)
        assert torch.allclose(core.min(), torch.tensor(own - 0.4), atol=1e-5)
        assert not ((new_images[k] - images[k]).abs().sum(0) > 1e-6)[~liver[k]].any()  # nothing outside the liver
        neighbour_changed = ((new_images[k, 0] - images[k, 0]).abs() > 1e-6).sum()
        assert 0 < neighbour_changed  # the neighbour slice's cross-section came along
    assert torch.equal(images, _batch_with_one_real_lesion()[0])  # inputs untouched


def test_no_real_lesion_in_the_batch_pastes_nothing_and_a_seed_repeats():
    images, targets = _batch()
    config = AugmentConfig(pasted_lesions=1.0)
    same = paste_real_lesions(images, targets, config, torch.Generator().manual_seed(0))
    assert same[0] is images and same[1] is targets
    images, targets = _batch_with_one_real_lesion()
    a = paste_real_lesions(images, targets, AugmentConfig(pasted_lesions=0.5), torch.Generator().manual_seed(4))
    b = paste_real_lesions(images, targets, AugmentConfig(pasted_lesions=0.5), torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], targets)  # some slice got one
    off = augment_batch(images, targets, AugmentConfig(pasted_lesions=0.0), torch.Generator().manual_seed(4))
    on = augment_batch(images, targets, AugmentConfig(pasted_lesions=1.0), torch.Generator().manual_seed(4))
    assert on[1][:, 1].sum() > off[1][:, 1].sum()
