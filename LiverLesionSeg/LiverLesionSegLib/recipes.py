"""Named training recipes: complete configurations that the benchmark compares and users can start
from (`liverlesionseg train --recipe NAME`; further options override single settings)."""

from __future__ import annotations

from typing import Callable

from .config import Config
from .errors import InputError


def notebook() -> Config:
    """The original research notebook: whole slices at 128 x 128, one slice in, flips and
    rotations, BCE with weighted positives + Dice + Tversky, 3 cycles of 5 epochs, the masks as
    thresholded with no clean-up."""
    config = Config()
    config.preprocess.context_slices = 0
    config.preprocess.zoom = False
    config.augment.flip_lr = 0.5
    config.train.cycles, config.train.epochs_per_cycle = 3, 5
    config.train.lesion_oversample = 1.0
    config.inference.largest_liver_component = False
    config.inference.lesions_inside_liver = False
    config.inference.min_lesion_mm3 = 0.0
    return config


def bundled() -> Config:
    """The bundled model's recipe: 2.5-D input (a slice and the CT 2.5 mm above and below it,
    interpolated between slices, so that the neighbours show the same anatomy at any slice spacing;
    measured against the next slices in docs/accuracy.md), a second look at the liver's box, lesion slices
    drawn three times as often, synthetic lesions painted into 60 % of the liver slices, stronger
    intensity jitter, no left-right flips (the liver has a side), a longer schedule, Dice + BCE (the
    ablation in benchmarks/ablation.py found it better than the notebook's weighted BCE + Dice +
    Tversky, and cross-validation at full resolution agreed), the liver's box shifted in HU so the
    liver's median sits at 100 HU (a lesion is told by its contrast to this patient's liver),
    unmarked masses painted beside the liver in 30 % of liver slices (against a neighbouring tumour
    taken for a liver lesion; both measured in the README's table), and clean-up (largest liver,
    less what it took in through a neck under 4 mm wide, its edge moved within 2 mm to where the CT
    is of its density, lesions inside it, no specks, none whose surroundings are less than 40 %
    liver: a mass beside the liver that only touches it, and none of fluid density: a median under
    20 HU, the upper bound of a simple cyst, is a cyst, the gallbladder or the bowel's fluid, not a
    tumour, and none holding more than 50 mm³ of gas beneath its surface: the stomach or the bowel (a
    lesion at the dome shares its surface with the lung); what these three rules drop is taken out of
    the liver too; and none within 15 HU of both
    the liver around it and the whole liver's median: the liver's own density, which stays liver),
    then the lesions kept grown inside the liver over their unsure rim, down to a probability of 0.2
    smoothed across slices by 3 mm (the model is sure of a lesion's core and leaves much of its rim
    out; seeing one slice at a time, it is helped by its neighbours), and up to 5 mm beyond the
    liver where what they take in there is the same tissue as their core (the liver output leaves
    out the part of a tumour that bulges from the liver)."""
    config = Config()
    config.preprocess.context_slices = 1
    config.preprocess.context_mm = 2.5
    config.preprocess.zoom = True
    config.preprocess.liver_reference_hu = 100.0
    config.augment.flip_lr = 0.0
    config.augment.synthetic_lesions = 0.6
    config.augment.synthetic_radius = (2.0, 24.0)  # up to about 5 cm across in the liver's box
    config.augment.masses_beside_liver = 0.3
    config.augment.contrast, config.augment.brightness = 0.15, 0.08  # other scanners and contrast phases
    config.train.cycles, config.train.epochs_per_cycle = 4, 8
    config.loss.tversky_weight, config.loss.bce_pos_weight = 0.0, (1.0, 1.0)
    config.train.lesion_oversample = 3.0
    config.train.background_fraction = 0.15
    config.train.max_slices_per_epoch = 600  # about 20 s an epoch on two CPU cores
    config.inference.largest_liver_component = True
    config.inference.liver_neck_mm = 2.0
    config.inference.liver_edge_mm = 2.0
    config.inference.lesions_inside_liver = True
    config.inference.min_lesion_mm3 = 50.0
    config.inference.min_liver_around_lesion = 0.4
    config.inference.min_lesion_median_hu = 20.0
    config.inference.max_lesion_gas_mm3 = 50.0
    config.inference.min_lesion_contrast_hu = 15.0
    config.inference.dropped_lesions_leave_liver = True
    config.inference.lesion_grow_threshold = 0.2
    config.inference.lesion_grow_smoothing_mm = 3.0
    config.inference.lesion_grow_beyond_liver_mm = 5.0
    config.inference.locate_stride = 2  # within the fast path's tolerance of every slice (see infer.py)
    return config


RECIPES: dict[str, Callable[[], Config]] = {"notebook": notebook, "bundled": bundled}


def recipe(name: str) -> Config:
    if name not in RECIPES:
        raise InputError(f"unknown recipe '{name}'", hint=f"choose one of {', '.join(RECIPES)}")
    return RECIPES[name]()
