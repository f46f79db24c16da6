"""Clean-up of the thresholded masks: a lesion is kept where it sits in the liver, not where a mass
beside the liver merely touches it, and not where it is fluid."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from LiverLesionSegLib.config import InferenceConfig
from LiverLesionSegLib.masks import bounding_box, label_components
from LiverLesionSegLib.postprocess import (GAS_HU, clean_masks, components_surrounded_by,
                                          components_with_median_at_least, contrasting, gas_at_most, grown, near,
                                          with_edge_on_the_ct, without_necks)

SPACING = (1.0, 1.0, 2.0)  # (i, j, k) mm


def ball(shape, centre, radius_mm, spacing=SPACING):
    k, j, i = np.indices(shape)
    ck, cj, ci = centre
    distance = np.sqrt(((k - ck) * spacing[2]) ** 2 + ((j - cj) * spacing[1]) ** 2 + ((i - ci) * spacing[0]) ** 2)
    return (distance <= radius_mm).astype(np.uint8)


def liver_and_two_masses():
    """A liver block with a lesion inside it and a mass of the same size beside it, touching it."""
    shape = (30, 80, 120)
    liver = np.zeros(shape, np.uint8)
    liver[5:25, 10:70, 10:70] = 1
    inside = ball(shape, (15, 40, 40), 8)
    beside = ball(shape, (15, 40, 77), 8)  # centre 7 mm right of the liver's edge at i = 69
    assert (beside & liver).any() and (beside & ~liver.astype(bool)).sum() > 0.8 * beside.sum()
    return liver, inside, beside


def test_lesion_inside_the_liver_is_kept_and_a_mass_touching_it_from_outside_is_dropped():
    liver, inside, beside = liver_and_two_masses()
    lesions = inside | beside
    kept = components_surrounded_by(lesions, liver, SPACING, min_fraction=0.5, shell_mm=3.0)
    assert np.array_equal(kept, inside)
    # the rule is off at 0, and a share no surroundings reach keeps nothing that touches air
    assert np.array_equal(components_surrounded_by(lesions, liver, SPACING, 0.0, 3.0), lesions)
    assert not components_surrounded_by(lesions, liver, SPACING, 1.0, 3.0)[beside > 0].any()


def test_a_lesion_at_the_liver_surface_is_kept():
    liver, _, _ = liver_and_two_masses()
    subcapsular = ball(liver.shape, (15, 40, 64), 6)  # reaches 1 mm past the liver's edge
    assert (subcapsular & ~liver.astype(bool)).any()
    kept = components_surrounded_by(subcapsular, liver, SPACING, min_fraction=0.5, shell_mm=3.0)
    assert np.array_equal(kept, subcapsular)


def test_the_shell_is_measured_in_millimetres_across_slice_thickness():
    # 5 mm slices: a 3 mm shell does not reach the next slice, so only the in-plane ring counts;
    # a lesion on the liver's last slice is then still judged by the liver around it in-plane.
    spacing = (1.0, 1.0, 5.0)
    liver = np.zeros((6, 60, 60), np.uint8)
    liver[1:4, 5:55, 5:55] = 1
    lesion = np.zeros_like(liver)
    lesion[3, 25:35, 25:35] = 1  # on the liver's last slice: air above it
    assert np.array_equal(components_surrounded_by(lesion, liver, spacing, 0.9, 3.0), lesion)
    assert not components_surrounded_by(lesion, liver, spacing, 0.9, 6.0).any()


def test_clean_masks_applies_the_rule_and_keeps_the_liver():
    liver, inside, beside = liver_and_two_masses()
    config = dataclasses.replace(InferenceConfig(), min_liver_around_lesion=0.5)
    out_liver, out_lesion = clean_masks(liver, inside | beside, SPACING, config)
    assert np.array_equal(out_lesion, inside)
    assert np.array_equal(out_liver, liver | inside)
    off_liver, off_lesion = clean_masks(liver, inside | beside, SPACING, InferenceConfig())
    assert np.array_equal(off_lesion, inside | beside)  # touching is all the default asks


def ct_of(liver, *regions_and_hu):
    """A CT in HU: air, the liver at 100 HU and each (mask, HU) painted over it."""
    ct = np.where(liver > 0, 100, -1000).astype(np.int16)
    for mask, hu in regions_and_hu:
        ct[mask > 0] = hu
    return ct


def test_a_lesion_of_fluid_density_is_dropped_and_a_necrotic_tumour_kept():
    liver, _, _ = liver_and_two_masses()
    cyst = ball(liver.shape, (15, 25, 25), 6)
    tumour = ball(liver.shape, (15, 50, 50), 8)
    necrosis = ball(liver.shape, (15, 50, 50), 6)  # a fluid core under half the tumour's volume
    assert necrosis.sum() < 0.5 * tumour.sum()
    ct = ct_of(liver, (cyst, 5), (tumour, 50), (necrosis, 10))
    kept = components_with_median_at_least(cyst | tumour, ct, 20.0)
    assert np.array_equal(kept, tumour)
    # the median, not the mean nor the darkest voxel: a core of fluid in more than half drops it
    mostly_fluid = ct_of(liver, (tumour, 50), (ball(liver.shape, (15, 50, 50), 7.5), 10))
    assert not components_with_median_at_least(tumour, mostly_fluid, 20.0).any()


def test_clean_masks_applies_the_fluid_rule_only_when_set_and_needs_the_ct():
    liver, _, _ = liver_and_two_masses()
    cyst, tumour = ball(liver.shape, (15, 25, 25), 6), ball(liver.shape, (15, 50, 50), 8)
    ct = ct_of(liver, (cyst, 5), (tumour, 50))
    config = dataclasses.replace(InferenceConfig(), min_lesion_median_hu=20.0)
    out_liver, out_lesion = clean_masks(liver, cyst | tumour, SPACING, config, ct)
    assert np.array_equal(out_lesion, tumour)
    assert np.array_equal(out_liver, liver)  # the cyst stays liver where the liver output has it
    _, off_lesion = clean_masks(liver, cyst | tumour, SPACING, InferenceConfig(), ct)
    assert np.array_equal(off_lesion, cyst | tumour)
    with pytest.raises(ValueError, match="needs the CT"):
        clean_masks(liver, cyst | tumour, SPACING, config)


def test_a_find_holding_gas_is_dropped_and_leaves_the_liver():
    """The stomach taken for liver and lesion: its food looks like a dark lesion, but it holds gas.
    A find with more than max_lesion_gas_mm3 of gas (CT under -400 HU) is dropped, and leaves the
    liver with dropped_lesions_leave_liver; a tumour of the same density without gas stays; fat
    (-100 HU) is no gas, and neither is the lung on a lesion's surface voxels (partial volume at the
    dome); off (None), both stay."""
    liver, _, _ = liver_and_two_masses()
    stomach, tumour = ball(liver.shape, (15, 25, 25), 7), ball(liver.shape, (15, 50, 50), 7)
    bubble = ball(liver.shape, (15, 25, 25), 2)  # 15 voxels of 2 mm3: 30 mm3 of gas
    fatty = ball(liver.shape, (15, 50, 50), 2)
    lung_side = tumour & ~ndimage.binary_erosion(tumour) & (np.indices(liver.shape)[1] < 50)
    assert np.count_nonzero(bubble) == 15 and np.count_nonzero(lung_side) * 2 > 30
    ct = ct_of(liver, (stomach, 40), (bubble, -800), (tumour, 40), (fatty, -100), (lung_side, -600))
    rule = dataclasses.replace(InferenceConfig(), max_lesion_gas_mm3=5.0, dropped_lesions_leave_liver=True)
    out_liver, out_lesion = clean_masks(liver, stomach | tumour, SPACING, rule, ct)
    assert np.array_equal(out_lesion, tumour)
    assert np.array_equal(out_liver > 0, (liver > 0) & (stomach == 0))
    for max_mm3, kept in ((30.0, stomach | tumour), (29.9, tumour)):  # the bound itself is kept
        labels, count = label_components(stomach | tumour)
        keep = gas_at_most(labels, np.arange(count + 1) > 0, ct, SPACING, max_mm3)
        assert np.array_equal(keep[labels], kept > 0)
    _, off_lesion = clean_masks(liver, stomach | tumour, SPACING, InferenceConfig(), ct)
    assert np.array_equal(off_lesion, stomach | tumour)
    assert GAS_HU < -100  # fat is no gas
    with pytest.raises(ValueError, match="needs the CT"):
        clean_masks(liver, stomach | tumour, SPACING, rule)


def test_the_lung_blurred_into_a_lesion_on_thin_slices_is_no_gas_but_gas_within_is():
    """On 0.625 mm slices the lung above a lesion at the dome blurs over two slices, not one: that
    layer is left out as the surface (GAS_SURFACE_MM along the slices' axis). Before, it counted as
    gas, and a reference lesion of 3Dircadb1.17 re-sliced to 0.625 mm was dropped. A bubble within
    the find still drops it."""
    thin = (1.0, 1.0, 0.625)
    shape = (60, 40, 40)
    tumour = ball(shape, (30, 20, 20), 8, thin)
    k = np.indices(shape)[0]
    two_slices_deep = tumour & ~(np.roll(tumour, 1, axis=0) & np.roll(tumour, 2, axis=0)) & (k < 30)
    assert np.count_nonzero(two_slices_deep & ~ndimage.binary_erosion(tumour)) * np.prod(thin) > 5.0
    ct = ct_of(tumour, (tumour, 40), (two_slices_deep, -600))
    labels, count = label_components(tumour)
    assert gas_at_most(labels, np.arange(count + 1) > 0, ct, thin, 5.0)[1]
    bubble = ball(shape, (30, 20, 20), 2, thin)
    ct[bubble > 0] = -800
    assert not gas_at_most(labels, np.arange(count + 1) > 0, ct, thin, 5.0)[1]


def test_what_the_rules_drop_can_leave_the_liver_too():
    """The liver output takes a mass beside the liver in with the lesion it saw there: with
    dropped_lesions_leave_liver the mass dropped as a lesion leaves the liver mask as well; a speck
    dropped for its size does not (it would leave a hole)."""
    liver, inside, beside = liver_and_two_masses()
    liver_output = liver | beside
    speck = ball(liver.shape, (15, 20, 60), 1)
    assert 0 < speck.sum() < 10 and not (speck & inside).any()
    ct = ct_of(liver, (inside, 50), (beside, 50))
    rules = dataclasses.replace(InferenceConfig(), min_liver_around_lesion=0.5, min_lesion_mm3=50.0,
                                min_lesion_median_hu=20.0)
    kept_liver, kept_lesion = clean_masks(liver_output, inside | beside | speck, SPACING, rules, ct)
    assert np.array_equal(kept_lesion, inside) and np.array_equal(kept_liver, liver_output)
    leave = dataclasses.replace(rules, dropped_lesions_leave_liver=True)
    out_liver, out_lesion = clean_masks(liver_output, inside | beside | speck, SPACING, leave, ct)
    assert np.array_equal(out_lesion, inside)
    # the mass is gone (the voxels where it reached into the liver too), the speck's voxels stay liver
    assert np.array_equal(out_liver > 0, (liver > 0) & (beside == 0)) and out_liver[speck > 0].all()


def test_a_lesion_grows_over_its_unsure_rim_and_an_unsure_region_alone_stays_out():
    shape = (20, 60, 60)
    probability = np.zeros(shape, np.float32)
    probability[ball(shape, (10, 20, 20), 9) > 0] = 0.3   # an unsure rim...
    probability[ball(shape, (10, 20, 20), 4) > 0] = 0.9   # ...around a sure core
    probability[ball(shape, (10, 45, 45), 6) > 0] = 0.3   # unsure, with no sure voxel
    seeds = (probability >= 0.5).astype(np.uint8)
    out = grown(seeds, probability, 0.2)
    assert np.array_equal(out, ball(shape, (10, 20, 20), 9))
    assert np.array_equal(grown(seeds, probability, 0.5), seeds)  # nothing between: unchanged
    assert np.array_equal(grown(np.zeros_like(seeds), probability, 0.2), np.zeros_like(seeds))


def test_clean_masks_grows_the_lesions_it_keeps_inside_the_liver_only():
    """The rules judge the sure core; a kept lesion then takes in its unsure rim, but not the part of
    the rim outside the liver, and a lesion a rule dropped (here: too small) does not grow back."""
    liver, _, _ = liver_and_two_masses()
    probability = np.zeros(liver.shape, np.float32)
    probability[ball(liver.shape, (15, 40, 62), 12) > 0] = 0.3  # rim reaching past the liver's edge
    probability[ball(liver.shape, (15, 40, 62), 5) > 0] = 0.9
    probability[ball(liver.shape, (15, 40, 25), 8) > 0] = 0.3
    probability[ball(liver.shape, (15, 40, 25), 1) > 0] = 0.9  # a 3-voxel core: under min_lesion_mm3
    seeds = (probability >= 0.5).astype(np.uint8)
    config = dataclasses.replace(InferenceConfig(), min_lesion_mm3=20.0, lesion_grow_threshold=0.2)
    _, lesion = clean_masks(liver, seeds, SPACING, config, probability=probability)
    rim = ball(liver.shape, (15, 40, 62), 12).astype(bool)
    assert np.array_equal(lesion > 0, rim & (liver > 0) | (seeds > 0) & rim)
    assert not lesion[:, :, :40].any()
    # off at or above the lesion threshold, and the probability is required when on
    off = dataclasses.replace(config, lesion_grow_threshold=0.5)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, off)[1] > 0, (seeds > 0) & rim)
    with pytest.raises(ValueError, match="lesion probability"):
        clean_masks(liver, seeds, SPACING, config)


def test_clean_masks_grows_a_lesion_no_farther_than_its_limit_from_the_core():
    """A sure core inside a haze of low probability spread over much of the liver: with
    lesion_grow_max_mm the lesion takes in the haze within that distance of the core only (inside
    the liver, beyond as well), and the same limit leaves a rim inside it untouched."""
    liver, _, _ = liver_and_two_masses()
    probability = np.where(liver > 0, 0.3, 0.0).astype(np.float32)  # the haze: the whole liver
    probability[ball(liver.shape, (15, 40, 40), 5) > 0] = 0.9
    seeds = (probability >= 0.5).astype(np.uint8)
    unlimited = dataclasses.replace(InferenceConfig(), lesion_grow_threshold=0.2)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, unlimited, probability=probability)[1] > 0, liver > 0)
    limited = dataclasses.replace(unlimited, lesion_grow_max_mm=4.0)
    _, lesion = clean_masks(liver, seeds, SPACING, limited, probability=probability)
    within = ndimage.distance_transform_edt(seeds == 0, sampling=SPACING[::-1]) <= 4.0
    assert np.array_equal(lesion > 0, within)
    with_beyond = dataclasses.replace(limited, lesion_grow_beyond_liver_mm=6.0)
    ct = np.full(liver.shape, 100.0, np.float32)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, with_beyond, ct=ct, probability=probability)[1],
                          lesion)
    rim_only = np.where(ball(liver.shape, (15, 40, 40), 8) > 0, probability, 0.0)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, limited, probability=rim_only)[1] > 0,
                          ball(liver.shape, (15, 40, 40), 8) > 0)


def test_near_takes_the_candidates_within_a_distance_in_millimetres_of_the_mask():
    shape = (10, 20, 40)
    mask = np.zeros(shape, np.uint8)
    mask[:, :, :10] = 1
    candidates = np.zeros(shape, bool)
    candidates[4, 10, :] = True
    out = near(mask, candidates, SPACING, 3.0)
    assert out[:, :, :10].all()
    assert np.flatnonzero(out[4, 10, 10:]).tolist() == [0, 1, 2]  # i = 10, 11, 12: 1 to 3 mm away
    assert not out[3, :, 10:].any()  # not candidates
    assert np.array_equal(near(mask, candidates, SPACING, 0.0), mask > 0)
    assert np.array_equal(near(np.zeros(shape, np.uint8), candidates, SPACING, 3.0), np.zeros(shape, bool))


def test_clean_masks_lets_a_kept_lesion_grow_beyond_the_liver_over_the_same_tissue_and_makes_it_liver():
    """A tumour bulging from the liver: the liver output left its outer part out. Grown beyond the
    liver by up to 6 mm it takes that part in (and the liver with it), where that part is the
    tumour's tissue (its median CT value within 15 HU of the core's); over fat it stays inside the
    liver. A lesion a rule dropped still does not grow."""
    liver, _, _ = liver_and_two_masses()
    probability = np.zeros(liver.shape, np.float32)
    probability[ball(liver.shape, (15, 40, 62), 12) > 0] = 0.3  # rim reaching 5 mm past the liver's edge
    probability[ball(liver.shape, (15, 40, 62), 5) > 0] = 0.9
    probability[ball(liver.shape, (15, 40, 25), 8) > 0] = 0.3
    probability[ball(liver.shape, (15, 40, 25), 1) > 0] = 0.9  # under min_lesion_mm3: dropped
    seeds = (probability >= 0.5).astype(np.uint8)
    rim = ball(liver.shape, (15, 40, 62), 12).astype(bool)
    tumour = np.where(liver > 0, 100.0, -100.0).astype(np.float32)  # liver and fat
    tumour[rim] = 45.0
    tumour[seeds > 0] = 40.0
    fat_beside = np.where(rim & (liver > 0), 45.0, tumour)
    fat_beside[rim & (liver == 0)] = -100.0
    inside = dataclasses.replace(InferenceConfig(), min_lesion_mm3=20.0, lesion_grow_threshold=0.2)
    beyond = dataclasses.replace(inside, lesion_grow_beyond_liver_mm=6.0)

    _, lesion_inside = clean_masks(liver, seeds, SPACING, inside, tumour, probability)
    out_liver, lesion = clean_masks(liver, seeds, SPACING, beyond, tumour, probability)
    assert np.array_equal(lesion > 0, rim)  # the whole rim: it lies within 5 mm of the liver
    assert (lesion > lesion_inside).sum() > 100 and not (lesion < lesion_inside).any()
    assert np.array_equal(out_liver > 0, (liver > 0) | rim)
    assert not lesion[:, :, :40].any()
    short = dataclasses.replace(inside, lesion_grow_beyond_liver_mm=2.0)
    _, lesion_short = clean_masks(liver, seeds, SPACING, short, tumour, probability)
    assert np.array_equal(lesion_short > 0, rim & near(liver, rim, SPACING, 2.0))
    assert (lesion_inside < lesion_short).any() and (lesion_short < lesion).any()

    over_fat_liver, over_fat = clean_masks(liver, seeds, SPACING, beyond, fat_beside, probability)
    assert np.array_equal(over_fat, lesion_inside) and np.array_equal(over_fat_liver, liver)
    loose = dataclasses.replace(beyond, lesion_beyond_liver_hu_tolerance=200.0)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, loose, fat_beside, probability)[1] > 0, rim)
    with pytest.raises(ValueError, match="needs the CT"):
        clean_masks(liver, seeds, SPACING, beyond, probability=probability)


def test_clean_masks_drops_lesions_the_model_was_never_sure_of_and_keeps_them_as_liver():
    """A lesion whose highest probability stays under min_lesion_peak_probability is dropped from the
    lesions; the model took it for liver tissue, so it stays in the liver."""
    liver, _, _ = liver_and_two_masses()
    probability = np.zeros(liver.shape, np.float32)
    probability[ball(liver.shape, (15, 40, 25), 6) > 0] = 0.6   # found, never sure
    probability[ball(liver.shape, (15, 40, 50), 6) > 0] = 0.6
    probability[ball(liver.shape, (15, 40, 50), 2) > 0] = 0.95  # with a sure core
    seeds = (probability >= 0.5).astype(np.uint8)
    config = dataclasses.replace(InferenceConfig(), min_lesion_peak_probability=0.9)
    out_liver, lesion = clean_masks(liver, seeds, SPACING, config, probability=probability)
    assert np.array_equal(lesion, ball(liver.shape, (15, 40, 50), 6))
    assert np.array_equal(out_liver, liver)
    off = dataclasses.replace(config, min_lesion_peak_probability=None)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, off)[1], seeds)
    with pytest.raises(ValueError, match="lesion probability"):
        clean_masks(liver, seeds, SPACING, config)


def liver_with_a_brighter_part():
    """A liver block at 100 HU with a quarter enhancing to 140 HU (a liver is not one density: fat,
    perfusion), with noise, and four lesion finds (centre: HU): one at the density of the liver
    around it and of the whole liver; one at the whole liver's density but 40 HU darker than the
    bright part around it; one 40 HU darker than both; and the 130 HU core of a lesion whose rest,
    out to 8 mm around the find, the model left out, in the 100 HU part."""
    liver, _, _ = liver_and_two_masses()
    ct = np.where(liver > 0, 100, -1000).astype(np.int16)
    bright = np.zeros_like(liver)
    bright[:, 40:70, 40:70] = liver[:, 40:70, 40:70]
    ct[bright > 0] = 140
    ct[ball(liver.shape, (15, 25, 52), 13) > 0] = 128  # the lesion, of which the model found the core
    rng = np.random.default_rng(0)
    ct = (ct + rng.normal(0, 8, ct.shape).round()).astype(np.int16)
    finds = {(15, 25, 25): 103, (15, 55, 55): 100, (15, 55, 25): 60, (15, 25, 52): 130}
    masks = {centre: ball(liver.shape, centre, 5) for centre in finds}
    for centre, hu in finds.items():
        ct[masks[centre] > 0] = hu + rng.normal(0, 8, masks[centre].sum()).round()
    return liver, ct, masks


def test_a_find_at_the_liver_density_near_and_far_is_dropped_and_a_contrasting_lesion_kept():
    """Only the find at the density of both the liver around it and the whole liver is dropped: one
    at the whole liver's density is kept for the brighter liver around it, the core of a lesion
    whose rest surrounds it for its distance from the whole liver's density."""
    liver, ct, masks = liver_with_a_brighter_part()
    finds = np.maximum.reduce(list(masks.values()))
    labels, count = label_components(finds)
    assert count == 4
    every = np.r_[False, np.ones(count, bool)]
    kept = contrasting(labels, every, ct, liver, SPACING, 15.0)[labels]
    assert np.array_equal(kept, finds.astype(bool) & (masks[(15, 25, 25)] == 0))
    # at 0 HU every find is kept; with no liver around or in the scan nothing can be judged: kept
    assert contrasting(labels, every, ct, liver, SPACING, 0.0)[1:].all()
    assert contrasting(labels, every, ct, np.zeros_like(liver), SPACING, 15.0)[1:].all()


def test_the_liver_around_a_find_skips_its_blurred_rim():
    """The first 2 mm around a find share its blur. In a thin part of the liver (3 mm around it)
    that rim is most of the liver there: were it counted, a lesion 30 HU darker than the liver
    around it would be compared with its own blurred edge. (The rest of this liver, far away, is at
    the lesion's density, so the liver around it decides.)"""
    shape = (30, 60, 120)
    liver = ball(shape, (15, 30, 30), 8)
    liver[5:25, 10:50, 60:110] = 1
    find = ball(shape, (15, 30, 30), 5)
    rim = ball(shape, (15, 30, 30), 6.8) & ~find.astype(bool)
    assert rim.sum() > (ball(shape, (15, 30, 30), 8) & ~ball(shape, (15, 30, 30), 6.8).astype(bool)).sum()
    far = np.zeros_like(liver)
    far[5:25, 10:50, 60:110] = 1
    labels, _ = label_components(find)
    ct = ct_of(liver, (far, 70), (rim, 70), (find, 70))
    assert contrasting(labels, np.r_[False, True], ct, liver, SPACING, 15.0)[1]


def test_clean_masks_drops_finds_at_the_liver_density_and_keeps_them_as_liver():
    liver, ct, masks = liver_with_a_brighter_part()
    finds = np.maximum.reduce(list(masks.values()))
    config = dataclasses.replace(InferenceConfig(), min_lesion_contrast_hu=15.0, dropped_lesions_leave_liver=True)
    out_liver, out_lesion = clean_masks(liver, finds, SPACING, config, ct)
    assert np.array_equal(out_lesion > 0, finds.astype(bool) & (masks[(15, 25, 25)] == 0))
    assert np.array_equal(out_liver, liver)  # what the rule drops is the liver's tissue: it stays liver
    off = dataclasses.replace(config, min_lesion_contrast_hu=None)
    assert np.array_equal(clean_masks(liver, finds, SPACING, off, ct)[1], finds)
    with pytest.raises(ValueError, match="needs the CT"):
        clean_masks(liver, finds, SPACING, config)


def liver_drawn_off_its_edge():
    """A liver block at 100 HU (noise 10 HU) in fat, with a 60 HU organ touching its right face, and
    the network's liver: 2 mm short of its left face, 1 mm into the fat beyond its front face, 5 mm
    short of its back face. A lesion of 40 HU at its right face."""
    shape = (30, 80, 120)
    true_liver = np.zeros(shape, np.uint8)
    true_liver[5:25, 10:70, 10:70] = 1
    organ = np.zeros(shape, np.uint8)
    organ[5:25, 10:70, 70:100] = 1
    lesion = np.zeros(shape, np.uint8)
    lesion[12:18, 30:40, 62:70] = 1
    ct = np.full(shape, -100.0)
    ct[true_liver > 0], ct[organ > 0], ct[lesion > 0] = 100, 60, 40
    ct = (ct + np.random.default_rng(0).normal(0, 10, shape)).astype(np.float32)
    output = np.zeros(shape, np.uint8)
    output[5:25, 9:65, 12:70] = 1
    return true_liver, organ, lesion, ct, output


def test_the_liver_edge_follows_the_ct_within_the_band_only():
    """Within 2 mm of the network's liver, the edge moves to where the CT is of the liver's density:
    the liver the output missed is taken in (but for its last voxel against the fat, blurred with it
    by the 1 mm smoothing), the fat it took in left out; the noise (10 HU, a tenth of the liver's
    voxels outside its 5th to 95th percentiles) moves no voxel, thanks to that smoothing."""
    true_liver, organ, lesion, ct, output = liver_drawn_off_its_edge()
    refined = with_edge_on_the_ct(output, lesion, ct, SPACING, 2.0) > 0
    # the output missed the left face's 2 mm: taken in, the voxel next to the one blurred with the fat
    # almost all (the smoothing's tail reaches the fat)
    assert refined[6:24, 12:60, 11].mean() > 0.95 and not refined[:, :, 10].all()
    assert not refined[:, 9, :].any()  # the fat the output took in at the front: left out
    assert refined[6:24, 65:67, 15:60].all()  # 5 mm missed at the back: the band's 2 mm taken in...
    assert not refined[:, 67:70, :].any()  # ...not more
    assert not (refined & (organ > 0)).any()  # the touching organ is of another density
    assert refined[lesion > 0].all()  # a lesion, of another density, stays
    assert refined[6:24, 12:60, 12:14].all()  # noise makes no hole in the band inside the liver
    assert np.array_equal(refined[8:22, 20:55, 20:60], output[8:22, 20:55, 20:60] > 0)  # beyond the band
    assert np.array_equal(with_edge_on_the_ct(output, lesion, ct, SPACING, 0.0), output)


def test_clean_masks_moves_the_liver_edge_only_when_set_and_needs_the_ct():
    true_liver, organ, lesion, ct, output = liver_drawn_off_its_edge()
    config = dataclasses.replace(InferenceConfig(), liver_edge_mm=2.0)
    liver, kept_lesion = clean_masks(output, lesion, SPACING, config, ct)
    dice = lambda a, b: 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))  # noqa: E731
    assert dice(liver > 0, true_liver > 0) > dice(output > 0, true_liver > 0)
    assert np.array_equal(kept_lesion, lesion) and (liver[lesion > 0] > 0).all()
    assert np.array_equal(clean_masks(output, lesion, SPACING, InferenceConfig(), ct)[0], np.maximum(output, lesion))
    with pytest.raises(ValueError, match="needs the CT"):
        clean_masks(output, lesion, SPACING, config)


def liver_with_bowel_through_a_neck():
    """A liver block, and a loop of bowel the liver output took in through a 2 mm wide neck."""
    liver = np.zeros((30, 80, 120), np.uint8)
    liver[5:25, 10:70, 10:70] = 1
    bowel = ball(liver.shape, (15, 40, 95), 12)
    neck = np.zeros_like(liver)
    neck[14:16, 39:41, 70:84] = 1
    return liver, bowel, neck


def test_what_joins_the_liver_through_a_thin_neck_is_cut_off():
    liver, bowel, neck = liver_with_bowel_through_a_neck()
    taken_in = liver | bowel | neck
    cut = without_necks(taken_in, SPACING, 2.0)
    assert not cut[bowel > 0].any() and not (cut & ~taken_in).any()
    # the liver is kept, less at most a trim of edges and corners, which no ball fits into
    trimmed = liver & ~cut
    assert trimmed.sum() < 0.02 * liver.sum()
    inner = np.zeros_like(liver)
    inner[7:23, 12:68, 12:68] = 1
    assert not (trimmed & inner).any()
    # a neck as wide as the bowel is no neck: the bowel is kept, less the trim of its surface
    wide = taken_in.copy()
    wide[5:25, 28:52, 70:84] = 1
    assert without_necks(wide, SPACING, 2.0)[bowel > 0].mean() > 0.95
    # the result does not depend on how much empty space the array holds around the mask
    box = bounding_box(taken_in)
    assert np.array_equal(without_necks(taken_in[box], SPACING, 2.0), cut[box])


def test_clean_masks_cuts_the_liver_at_a_neck_and_keeps_a_lesion_touching_it_whole():
    liver, bowel, neck = liver_with_bowel_through_a_neck()
    taken_in = liver | bowel | neck
    lesion = ball(liver.shape, (15, 40, 66), 5)   # at the liver's edge, reaching into the neck
    config = dataclasses.replace(InferenceConfig(), liver_neck_mm=2.0)
    out_liver, out_lesion = clean_masks(taken_in, lesion, SPACING, config)
    assert np.array_equal(out_lesion, lesion)
    assert not out_liver[bowel > 0].any() and np.array_equal(out_liver & lesion, lesion)
    off = dataclasses.replace(config, liver_neck_mm=0.0)
    assert clean_masks(taken_in, lesion, SPACING, off)[0][bowel > 0].all()


def test_smoothing_across_slices_is_that_of_the_whole_volume_cut_to_the_box():
    from scipy import ndimage

    from LiverLesionSegLib.postprocess import smoothed_across_slices

    values = np.random.default_rng(0).random((40, 12, 16)).astype(np.float32)
    for box in [(slice(5, 12), slice(3, 9), slice(2, 14)), (slice(0, 40), slice(0, 12), slice(0, 16)),
                (slice(37, 40), slice(0, 4), slice(5, 6))]:
        for slice_mm in (0.7, 2.5, 5.0):
            whole = ndimage.gaussian_filter1d(values, 3.0 / slice_mm, axis=0, mode="nearest")
            assert np.allclose(smoothed_across_slices(values, box, slice_mm, 3.0), whole[box], atol=1e-6)
    assert np.array_equal(smoothed_across_slices(values, box, 2.5, 0.0), values[box])  # 0: off


def test_smoothing_above_a_floor_is_exact_there_and_under_it_elsewhere():
    from scipy import ndimage

    from LiverLesionSegLib.postprocess import smoothed_across_slices

    rng = np.random.default_rng(1)
    values = (rng.random((60, 20, 24)) * 0.15).astype(np.float32)  # a faint background ...
    values[30:33, 8:12, 5:9] = 0.9  # ... and a sure lesion in the middle
    values[2, 3, 20] = values[58, 17, 2] = 0.6  # and two sure voxels near the volume's ends
    for box in [(slice(0, 60), slice(0, 20), slice(0, 24)), (slice(10, 50), slice(4, 18), slice(3, 23)),
                (slice(0, 20), slice(0, 10), slice(10, 24)), (slice(40, 45), slice(0, 5), slice(0, 5))]:
        for slice_mm in (0.625, 2.5):
            whole = ndimage.gaussian_filter1d(values, 3.0 / slice_mm, axis=0, mode="nearest")[box]
            result = smoothed_across_slices(values, box, slice_mm, 3.0, floor=0.2)
            above = whole >= 0.2
            assert np.allclose(result[above], whole[above], atol=1e-6)
            assert (result[~above] < 0.2).all()
            if box[0].stop - box[0].start == 60:
                assert above.any() and (result[~above] == 0).any()  # something was left out


def test_neighbouring_slices_let_a_lesion_grow_over_the_slices_next_to_it():
    """A lesion sure on slices 8-12 grows, with smoothing across slices, over the slice its model
    was unsure of (13: 0.15, under the grow threshold of 0.2) and the one it gave nothing (7), but
    not further, not sideways (no smoothing within a slice) and not out of the liver."""
    shape = (24, 40, 40)
    liver = np.zeros(shape, np.uint8)
    liver[2:22, 5:35, 5:35] = 1
    disc = np.zeros(shape[1:], bool)
    disc[15:25, 15:25] = True
    probability = np.zeros(shape, np.float32)
    probability[8:13, disc] = 0.9
    probability[13, disc] = 0.15
    probability[3:6, 30:34, 30:34] = 0.3  # unsure, with no sure voxel: stays out
    seeds = (probability >= 0.5).astype(np.uint8)
    config = dataclasses.replace(InferenceConfig(), lesion_grow_threshold=0.2, lesion_grow_smoothing_mm=3.0)
    lesion = clean_masks(liver, seeds, SPACING, config, probability=probability)[1] > 0
    expected = np.zeros(shape, bool)
    expected[7:14, disc] = True
    assert np.array_equal(lesion, expected)
    off = dataclasses.replace(config, lesion_grow_smoothing_mm=0.0)
    assert np.array_equal(clean_masks(liver, seeds, SPACING, off, probability=probability)[1] > 0, seeds > 0)
    # the liver ends at slice 8: what the smoothing reaches beyond it stays out
    liver[:8] = 0
    assert np.array_equal(clean_masks(liver, seeds, SPACING, config, probability=probability)[1] > 0,
                          expected & (np.arange(shape[0]) >= 8)[:, None, None])


def test_the_bundled_gas_bound_keeps_every_reference_lesion_of_the_shared_cases(data_dir):
    """The gas rule at the bundled recipe's bound drops none of the lesions the references mark in
    the five labelled patients (metastases, hepatocellular carcinomas, at the dome beside the lung
    too): their CT holds no gas, so the rule can only drop what the model wrongly took in."""
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.recipes import bundled

    bound = bundled().inference.max_lesion_gas_mm3
    assert bound is not None
    refs = [r for r in find_cases([data_dir]) if r.name != "HCC_006"]
    assert len(refs) == 5
    for ref in refs:
        case = load_case(ref)
        ct, lesion = case.ct.array, case.lesion.array  # one grid: the gas counted is the same in any order
        if not lesion.any():
            continue
        labels, count = label_components(lesion)
        keep = gas_at_most(labels, np.arange(count + 1) > 0, ct, case.ct.spacing, bound)
        assert keep[1:].all(), f"{ref.name}: a reference lesion holds more than {bound} mm3 of gas"


def test_largest_component_is_the_largest_and_the_first_of_equals():
    from scipy import ndimage

    from LiverLesionSegLib.postprocess import largest_component

    mask = np.zeros((6, 12, 12), np.uint8)
    mask[1, 1, 1:6] = 1  # 5 voxels
    mask[3, 2:5, 8:11] = 1  # 9 voxels, first of the two largest in scan order
    mask[4:5, 8:11, 2:5] = 1  # 9 voxels
    mask[5, 11, 11] = 1  # one voxel
    largest = largest_component(mask)
    assert largest.dtype == np.uint8 and largest.sum() == 9 and largest[3, 2:5, 8:11].all()
    noise = (np.random.default_rng(3).random((20, 30, 30)) > 0.7).astype(np.uint8)
    labels, count = ndimage.label(noise, np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    assert count > 2 and largest_component(noise).sum() == sizes.max()
    assert np.array_equal(largest_component(noise), (labels == 1 + int(np.argmax(sizes))).astype(np.uint8))
