"""The loss and the augmentation on tensors."""

import pytest
import torch

from LiverLesionSegLib.augment import augment_batch
from LiverLesionSegLib.config import AugmentConfig, LossConfig
from LiverLesionSegLib.losses import SegmentationLoss


def _targets():
    y = torch.zeros(2, 2, 32, 32)
    y[:, 0, 8:24, 8:24] = 1
    y[:, 1, 12:16, 12:16] = 1
    return y


def test_loss_rewards_the_right_answer():
    loss = SegmentationLoss(LossConfig())
    y = _targets()
    right, _ = loss(torch.where(y > 0, 8.0, -8.0), y)
    wrong, _ = loss(torch.where(y > 0, -8.0, 8.0), y)
    unsure, _ = loss(torch.zeros_like(y), y)
    assert right < 0.05 < unsure < wrong


def test_slices_whose_lesions_are_not_segmented_leave_the_lesion_channel_alone():
    """A slice of a case whose lesions are not segmented (a dataset of organs) trains the liver channel
    alone: its lesion target and lesion logits change nothing, its liver channel counts as before,
    and with every slice's lesions segmented the loss is the plain one."""
    loss = SegmentationLoss(LossConfig())
    y = _targets()
    logits = torch.randn(2, 2, 32, 32, requires_grad=True)
    known = torch.tensor([True, False])
    masked, _ = loss(logits, y, known)
    masked.backward()
    assert logits.grad[1, 1].abs().max() == 0 and logits.grad[1, 0].abs().max() > 0
    assert logits.grad[0, 1].abs().max() > 0
    other_lesion = y.clone()
    other_lesion[1, 1] = 1 - other_lesion[1, 1]
    other_logits = logits.detach().clone()
    other_logits[1, 1] = -other_logits[1, 1]
    assert loss(other_logits, other_lesion, known)[0] == pytest.approx(masked.item(), rel=1e-6)
    logits = logits.detach()
    assert loss(logits, y, torch.tensor([True, True]))[0].item() == pytest.approx(loss(logits, y)[0].item(), rel=1e-6)
    assert loss(logits, other_lesion, torch.tensor([True, True]))[0].item() != pytest.approx(masked.item(), rel=1e-3)


def test_tversky_beta_punishes_missed_lesion_more_than_false_alarm():
    config = LossConfig(bce_weight=0, dice_weight=0, tversky_weight=1, tversky_alpha=0.3, tversky_beta=0.7,
                        class_weights=(0.0, 1.0))
    loss = SegmentationLoss(config)
    y = _targets()
    logits = torch.where(y > 0, 8.0, -8.0)
    missed = logits.clone()
    missed[:, 1, 12:14, 12:16] = -8  # half the lesion missed: 8 px per slice
    extra = logits.clone()
    extra[:, 1, 16:18, 12:16] = 8  # as many false-positive pixels
    assert loss(missed, y)[0] > loss(extra, y)[0]


def test_positive_weight_scales_bce_on_lesion_pixels():
    y = _targets()
    logits = torch.zeros_like(y)
    light = SegmentationLoss(LossConfig(dice_weight=0, tversky_weight=0, bce_pos_weight=(1, 1), class_weights=(0, 1)))
    heavy = SegmentationLoss(LossConfig(dice_weight=0, tversky_weight=0, bce_pos_weight=(1, 10), class_weights=(0, 1)))
    assert heavy(logits, y)[0] > light(logits, y)[0]


def test_augmentation_moves_image_and_masks_alike():
    """With the masks as the image, every spatial transform must keep them equal."""
    y = _targets()
    x = y.clone()
    config = AugmentConfig(contrast=0, brightness=0, noise=0, flip_lr=0.5, flip_ud=0.5, crop_probability=0.5)
    ax, ay = augment_batch(x, y, config, torch.Generator().manual_seed(1))
    assert torch.allclose(ax, ay, atol=1e-5)
    assert not torch.allclose(ay, y)  # something moved


def test_augmentation_is_repeatable_with_the_seed_and_off_when_disabled():
    y = _targets()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = augment_batch(x, y, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment_batch(x, y, AugmentConfig(), torch.Generator().manual_seed(5))
    c = augment_batch(x, y, AugmentConfig(), torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    off = augment_batch(x, y, AugmentConfig(enabled=False), torch.Generator().manual_seed(5))
    assert off[0] is x and off[1] is y


@pytest.mark.parametrize("flip_lr, expected_column", [(1.0, 31), (0.0, 0)])
def test_flip_lr_mirrors_columns(flip_lr, expected_column):
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, :, 0] = 1
    config = AugmentConfig(flip_lr=flip_lr, rotate_degrees=0, scale=(1, 1), translate=0, shear_degrees=0,
                           crop_probability=0, contrast=0, brightness=0, noise=0)
    out, _ = augment_batch(x, torch.zeros(1, 2, 32, 32), config, torch.Generator().manual_seed(0))
    assert out[0, 0, 16].argmax().item() == expected_column


def _liver_with_a_lesion_and_a_slice_without() -> tuple[torch.Tensor, torch.Tensor]:
    """Images (2, 3, 16, 16) and targets: slice 0 with a liver at 0.57 holding a lesion at 0.37, fat at
    0.07 around it; slice 1 the same image without liver in its targets."""
    y = torch.zeros(2, 2, 16, 16)
    y[0, 0, 4:12, 4:12] = 1
    y[0, 1, 6:8, 6:8] = 1
    x = torch.full((2, 3, 16, 16), 0.07)
    x[:, :, 4:12, 4:12] = 0.57
    x[:, :, 6:8, 6:8] = 0.37
    return x, y


def test_another_enhancement_scales_contrast_to_the_liver_and_keeps_its_median():
    """Liver at 0.57, a lesion 0.2 darker, fat 0.5 darker (below the floor): one slice with liver
    and one without. The liver stays, the lesion's contrast scales by one share, fat moves by the
    floor times that share, and the slice without liver is left as it was."""
    from LiverLesionSegLib.augment import vary_enhancement

    x, y = _liver_with_a_lesion_and_a_slice_without()
    config = AugmentConfig(liver_enhancement=0.25, enhancement_floor=0.29)
    out = vary_enhancement(x, y, config, torch.Generator().manual_seed(3))
    share = (out[0, 1, 6, 6] - 0.57) / (0.37 - 0.57) - 1
    assert 0.01 < abs(share) <= 0.25
    assert torch.allclose(out[0, :, 10, 10], torch.tensor(0.57))  # the liver's median stays
    assert torch.allclose(out[0, :, 0, 0], 0.07 - share * 0.29, atol=1e-6)  # fat: a constant shift
    assert torch.equal(out[1], x[1])  # no liver, nothing to refer to
    assert torch.equal(x[0, 0, 6, 6], torch.tensor(0.37))  # the input is not changed in place


def test_a_fatty_liver_darkens_the_parenchyma_against_its_lesions_and_keeps_its_median():
    """Liver at 0.57 with a lesion 0.2 darker, fat at 0.07: one slice with liver, one without. Chosen,
    the liver stays at 0.57 and its lesion and the fat come out brighter by one amount up to the drop;
    the slice without liver is left as it was; at chance 0 nothing changes."""
    from LiverLesionSegLib.augment import fatty_liver

    x, y = _liver_with_a_lesion_and_a_slice_without()
    out = fatty_liver(x, y, AugmentConfig(fatty_liver=1.0, fatty_liver_drop=0.14), torch.Generator().manual_seed(3))
    drop = out[0, 1, 6, 6] - 0.37
    assert 0.001 < drop <= 0.14
    assert torch.allclose(out[0, :, 10, 10], torch.tensor(0.57))  # the liver's parenchyma stays
    assert torch.allclose(out[0, :, 0, 0], torch.tensor(0.07) + drop)  # around it: brighter alike
    assert torch.equal(out[1], x[1])  # no liver, nothing to refer to
    assert torch.equal(x[0, 0, 6, 6], torch.tensor(0.37))  # the input is not changed in place
    none = fatty_liver(x, y, AugmentConfig(fatty_liver=0.0), torch.Generator().manual_seed(3))
    assert torch.equal(none, x)


def test_another_enhancement_off_leaves_the_random_stream_alone():
    """A recipe without it trains as before: the same seed draws the same augmentation."""
    y = _targets()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    before = augment_batch(x, y, AugmentConfig(), torch.Generator().manual_seed(5))
    on = augment_batch(x, y, AugmentConfig(liver_enhancement=0.25), torch.Generator().manual_seed(5))
    again = augment_batch(x, y, AugmentConfig(liver_enhancement=0.0), torch.Generator().manual_seed(5))
    assert torch.equal(before[0], again[0]) and not torch.equal(before[0], on[0])
