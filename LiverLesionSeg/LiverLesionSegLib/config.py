"""Configuration as dataclasses that serialise to JSON.

A `Config` travels inside every checkpoint and report, so any figure can be traced to the settings
that made it. `Config.from_dict` refuses unknown keys and wrong types with a clear message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import InputError, refuse_an_empty_file

MAX_CONTEXT_MM = 20.0  # neighbouring slices farther than this show other anatomy, not the slice's context


@dataclass
class PreprocessConfig:
    hu_min: float = -100.0  # HU window; values outside are clipped
    hu_max: float = 250.0
    size: int = 128  # slices are resampled in-plane to size x size
    context_slices: int = 0  # 2.5-D: neighbouring slices on each side, as extra input channels
    # The neighbours' distance in mm (None: the next slices, however far apart). Set, the network sees
    # the same depth around a slice whatever the CT's slice spacing: the neighbours are interpolated
    # between slices at multiples of this distance.
    context_mm: Optional[float] = None
    normalise: str = "unit"  # "unit": the window scaled to [0, 1]; "centred": then (x - 0.5) / 0.25
    zoom: bool = False  # a second pass over the liver's box at full network resolution (see zoom.py)
    zoom_margin_mm: float = 15.0  # margin around the liver in that box
    zoom_extra_slices: int = 2  # slices above and below the liver in that box
    # With zoom: HU added to the liver's box so that the liver's median lands here (None: off). A
    # lesion is then told by its contrast to this patient's liver, whatever the phase or scanner.
    liver_reference_hu: Optional[float] = None
    # With zoom: a third look, the liver's box cut into zoom_tiles x zoom_tiles overlapping tiles, each
    # zoom_tile_share of its side, each resampled to `size` (finer pixels: the liver's edge, small
    # lesions). 1: off.
    zoom_tiles: int = 1
    zoom_tile_share: float = 0.6

    @property
    def in_channels(self) -> int:
        return 2 * self.context_slices + 1

    def context_reach(self, slice_spacing_mm: float) -> int:
        """How many slices away the farthest neighbour channel reaches, at this slice spacing."""
        if self.context_mm is None:
            return self.context_slices
        return int(math.ceil(self.context_slices * self.context_mm / slice_spacing_mm - 1e-6))


@dataclass
class ModelConfig:
    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: Optional[str] = None  # "imagenet" downloads weights when online
    classes: tuple[str, ...] = ("liver", "lesion")


@dataclass
class LossConfig:
    bce_weight: float = 1.0
    bce_pos_weight: tuple[float, float] = (1.0, 10.0)  # per output: liver, lesion
    dice_weight: float = 1.0
    tversky_weight: float = 1.0
    tversky_alpha: float = 0.3  # weight of false positives
    tversky_beta: float = 0.7  # weight of false negatives
    class_weights: tuple[float, float] = (1.0, 1.0)  # liver, lesion


@dataclass
class AugmentConfig:
    enabled: bool = True
    flip_lr: float = 0.5  # probability of a left-right flip
    flip_ud: float = 0.0  # probability of an anterior-posterior flip
    rotate_degrees: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.08  # fraction of the slice
    shear_degrees: float = 5.0
    crop_probability: float = 0.3  # random crop resized back to full size
    crop_scale: tuple[float, float] = (0.6, 1.0)  # side of the crop, as a fraction of the slice
    contrast: float = 0.1  # random gain of +-10 %
    brightness: float = 0.05
    noise: float = 0.02
    # Synthetic lesions painted into the liver (Hu et al., CVPR 2023: synthetic tumours teach a model
    # about as well as real ones): the chance per slice with liver, radius in network pixels, and
    # the change of the windowed intensity (negative: hypodense).
    synthetic_lesions: float = 0.0
    synthetic_radius: tuple[float, float] = (2.0, 14.0)
    synthetic_hypodense: tuple[float, float] = (0.06, 0.35)
    synthetic_hyperdense: tuple[float, float] = (0.05, 0.2)
    synthetic_hyperdense_share: float = 0.3
    # The share of them drawn with a halo (see synthetic.py), and the rim's contrast as a fraction of
    # the core's (under 0: the opposite contrast, an enhancing rim around a dark core).
    synthetic_halo_share: float = 0.0
    synthetic_halo_rim: tuple[float, float] = (-0.5, 0.6)
    # Real lesions shown at the opposite contrast (see synthetic.py): the chance per slice with a
    # lesion, and the mirrored contrast as a fraction of the lesion's own.
    mirrored_lesions: float = 0.0
    mirrored_lesion_strength: tuple[float, float] = (0.4, 1.0)
    # Real lesions copied into other slices' livers (see synthetic.paste_real_lesions): the chance
    # per slice with liver.
    pasted_lesions: float = 0.0
    # Unmarked masses painted just outside the liver (see synthetic.py): the chance per slice with
    # liver, radius in network pixels, windowed density (0.39: 35 HU in the default window).
    masses_beside_liver: float = 0.0
    mass_radius: tuple[float, float] = (4.0, 28.0)
    mass_density: tuple[float, float] = (0.3, 0.55)
    # Another enhancement (see augment.vary_enhancement): each slice with liver as if enhanced by a
    # random share up to this much more or less, about the liver's median; what lies more than
    # `enhancement_floor` below it (in window units; 0.29: 100 HU in the default window) is not
    # enhanced tissue. 0: off.
    liver_enhancement: float = 0.0
    enhancement_floor: float = 0.29
    # A fatty liver (see augment.fatty_liver): the chance per slice with liver that its parenchyma is
    # darker than the rest by up to `fatty_liver_drop` (in window units; 0.14: 50 HU in the default
    # window), its lesions not. 0: off.
    fatty_liver: float = 0.0
    fatty_liver_drop: float = 0.14
    # Each training case also seen as a reconstruction about this thick (mm): its slices averaged in
    # groups of the nearest whole number, when that is 2 or more. Clinics send 5 mm CT; a model that
    # only saw thin slices takes the partial-volume blur of thick ones for lesion. None: off.
    thick_slices_mm: Optional[float] = None


@dataclass
class TrainConfig:
    cycles: int = 3
    epochs_per_cycle: int = 5
    learning_rate: float = 1e-3  # at the start of every cycle
    min_learning_rate: float = 1e-5  # at the end of every cycle (cosine in between)
    weight_decay: float = 1e-4
    batch_size: int = 16
    seed: int = 0
    validate: list[str] = field(default_factory=list)  # case names held out for validation
    # validation every this many epochs, and at the end of each cycle: each validation case is segmented
    # whole, which for many cases takes minutes an epoch
    validate_every: int = 1
    background_fraction: float = 0.1  # share of slices without liver drawn each epoch
    lesion_oversample: float = 1.0  # slices with lesion drawn this many times as often
    max_slices_per_epoch: int = 0  # 0: every selected slice once
    precision: str = "auto"  # "auto": bfloat16 autocast where the processor computes it natively, else float32


@dataclass
class InferenceConfig:
    liver_threshold: float = 0.5
    lesion_threshold: float = 0.5
    # a lesion found at lesion_threshold takes in the voxels connected to it down to this probability
    # (hysteresis: the model is sure of a lesion's core, unsure of its rim); at or above
    # lesion_threshold, or None: off.
    lesion_grow_threshold: Optional[float] = None
    # the probability lesions grow over smoothed across slices first (a Gaussian of this sigma, mm):
    # the network sees one slice at a time, so a slice's neighbours vote on its rim. 0: off.
    lesion_grow_smoothing_mm: float = 0.0
    # how far (mm) from its core a lesion may grow: a core's unsure rim is a few mm wide; beyond that the
    # growth follows a haze of low probability over the liver. 0: no limit.
    lesion_grow_max_mm: float = 0.0
    # how far (mm) a kept lesion may grow beyond the liver output, where what it takes in there has a
    # median CT value within lesion_beyond_liver_hu_tolerance of its core's (the same tissue: the part
    # of a tumour that bulges out of the liver, which the liver output leaves out); what it grows over
    # becomes liver too. 0: inside the liver only.
    lesion_grow_beyond_liver_mm: float = 0.0
    lesion_beyond_liver_hu_tolerance: float = 15.0
    batch_size: int = 16
    largest_liver_component: bool = True
    # with largest_liver_component: what joins the liver only through a neck thinner than twice this
    # (mm) is cut off: the bowel or the veins the liver output took in at its edge. 0: off.
    liver_neck_mm: float = 0.0
    # the liver's surface follows the CT within this distance (mm) of the liver output's: outside it,
    # voxels of the liver's own density (within the 5th to 95th percentile of the liver output's CT
    # values, lesions left out) join the liver; inside it, voxels not of that density (lesions aside)
    # leave it. The network sees the liver at about 1.5 mm a pixel. 0: off.
    liver_edge_mm: float = 0.0
    lesions_inside_liver: bool = True
    min_lesion_mm3: float = 0.0  # lesion components smaller than this are dropped
    # lesion components whose highest lesion probability is below this are dropped (the model found
    # them, but was never sure of any voxel in them); None keeps them.
    min_lesion_peak_probability: Optional[float] = None
    # lesion components whose median CT value is within this many HU of both the liver around them
    # (the liver output 2 to 6 mm from them) and the whole liver output's median are dropped, and stay
    # liver: the CT shows the liver's own density there, not a lesion. None keeps them.
    min_lesion_contrast_hu: Optional[float] = None
    # lesion components whose surroundings (within liver_around_lesion_mm) are less liver than this share are dropped
    min_liver_around_lesion: float = 0.0
    liver_around_lesion_mm: float = 3.0
    # lesion components whose median CT value is below this (HU) are dropped: fluid (a cyst, the
    # gallbladder, fluid in the bowel), not tumour. None keeps them.
    min_lesion_median_hu: Optional[float] = None
    # lesion components holding more gas than this beneath their surface (mm3 of CT below -400 HU)
    # are dropped: a liver tumour holds none; a find with gas in it is the stomach or the bowel (the
    # surface is left out: a lesion at the dome meets the lung there). None keeps them.
    max_lesion_gas_mm3: Optional[float] = None
    # lesion components dropped by the three rules above are taken out of the liver mask too (the liver
    # output takes a mass beside the liver, or the gallbladder, in with the lesion it saw there)
    dropped_lesions_leave_liver: bool = False
    flip_tta: bool = False  # average with the left-right flipped prediction
    # look whether the CT is stored flipped in its plane (the liver on the left, the spine in front:
    # `flips`) or head to feet (the lungs below the liver: `head_feet`) and segment it flipped back;
    # off only for phantoms that have none of these
    flip_check: bool = True
    locate_stride: int = 1  # with zoom: the whole-slice pass that finds the liver looks at every n-th slice
    # The network looks at slices at least this far apart (mm): of a thinner series every n-th slice,
    # the probabilities between them interpolated (its neighbour channels lie 2.5 mm away, so thinner
    # slices show it little more; 0.625 mm slices cost a third). 0: every slice.
    model_slice_spacing_mm: float = 2.0
    precision: str = "auto"  # "auto": bfloat16 where the processor computes it natively, else float32
    box_quantum: int = 32  # with zoom: the box's side is a multiple of this, its corner of a quarter of it
    # with preprocess.zoom_tiles: the tiles' share in the probabilities inside the box (the rest: the box's;
    # the box is segmented on its own only below 1, the tiles only above 0)
    tile_weight: float = 1.0


@dataclass
class Config:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def training_settings(self) -> dict[str, Any]:
        """Every setting that shapes the trained weights: all but the inference settings."""
        return {section: values for section, values in self.to_dict().items() if section != "inference"}

    def validated(self, source: str = "configuration") -> "Config":
        """Refuse settings that cannot work, naming the setting and its allowed range."""
        p, l, a, t, i = self.preprocess, self.loss, self.augment, self.train, self.inference
        rules = [
            (p.hu_min < p.hu_max, "preprocess.hu_min must be below hu_max"),
            (-2000 <= p.hu_min and p.hu_max <= 4000, "preprocess.hu_min and hu_max must lie within -2000 to "
                                                     "4000 HU (a CT's values)"),
            (p.size >= 32 and p.size % 32 == 0, "preprocess.size must be a multiple of 32"),
            (p.context_slices >= 0, "preprocess.context_slices must be 0 or more"),
            (p.context_mm is None or 0 < p.context_mm <= MAX_CONTEXT_MM,  # farther: other organs, not context
             f"preprocess.context_mm must be positive and at most {MAX_CONTEXT_MM:g} mm (or null: the next slices)"),
            (p.normalise in ("unit", "centred"), "preprocess.normalise must be 'unit' or 'centred'"),
            (0 <= p.zoom_margin_mm <= 200 and p.zoom_extra_slices >= 0,
             "preprocess.zoom margins must be 0 or more (zoom_margin_mm at most 200 mm)"),
            (1 <= p.zoom_tiles <= 4 and (p.zoom_tiles == 1 or p.zoom), "preprocess.zoom_tiles must be 1 to 4, and "
                                                                      "above 1 only with preprocess.zoom"),
            (p.zoom_tiles <= 1 or 1 / p.zoom_tiles < p.zoom_tile_share <= 1,
             "preprocess.zoom_tile_share must be above 1 / zoom_tiles (tiles that overlap) and at most 1"),
            (p.liver_reference_hu is None or p.zoom, "preprocess.liver_reference_hu needs preprocess.zoom (the "
                                                     "liver's box is what it shifts)"),
            (p.liver_reference_hu is None or -200 <= p.liver_reference_hu <= 400,
             "preprocess.liver_reference_hu must lie within -200 to 400 HU (a liver's values), or be null"),
            (len(self.model.classes) == 2, "model.classes must name two outputs (liver, lesion)"),
            (min(l.bce_weight, l.dice_weight, l.tversky_weight, l.tversky_alpha, l.tversky_beta) >= 0,
             "loss weights and Tversky alpha/beta must be 0 or more"),
            (l.bce_weight + l.dice_weight + l.tversky_weight > 0,
             "loss.bce_weight, dice_weight and tversky_weight must not all be 0 (the loss would be 0: nothing learnt)"),
            (min(l.bce_pos_weight) > 0 and min(l.class_weights) >= 0 and sum(l.class_weights) > 0,
             "loss.bce_pos_weight must be positive and class_weights not all 0"),
            (all(0 <= x <= 1 for x in (a.flip_lr, a.flip_ud, a.crop_probability, a.synthetic_lesions,
                                       a.masses_beside_liver, a.mirrored_lesions, a.pasted_lesions,
                                       a.synthetic_hyperdense_share, a.synthetic_halo_share)),
             "augmentation probabilities must lie in [0, 1]"),
            (a.thick_slices_mm is None or (math.isfinite(a.thick_slices_mm) and a.thick_slices_mm > 0),
             "augment.thick_slices_mm must be positive (or null: off)"),
            (-1 <= a.synthetic_halo_rim[0] <= a.synthetic_halo_rim[1] <= 1,
             "augment.synthetic_halo_rim must be an increasing range within [-1, 1]"),
            (0 < a.scale[0] <= a.scale[1] and 0 < a.crop_scale[0] <= a.crop_scale[1] <= 1,
             "augment.scale and crop_scale must be increasing positive ranges (crop_scale up to 1)"),
            (0 < a.mirrored_lesion_strength[0] <= a.mirrored_lesion_strength[1] <= 2,
             "augment.mirrored_lesion_strength must be an increasing positive range up to 2"),
            (0 < a.mass_radius[0] <= a.mass_radius[1] and 0 <= a.mass_density[0] <= a.mass_density[1] <= 1,
             "augment.mass_radius must be an increasing positive range and mass_density one within [0, 1]"),
            (0 <= a.liver_enhancement < 1 and a.enhancement_floor >= 0,
             "augment.liver_enhancement must lie in [0, 1) and enhancement_floor be 0 or more"),
            (0 <= a.fatty_liver <= 1 and 0 <= a.fatty_liver_drop < 1,
             "augment.fatty_liver must lie in [0, 1] and fatty_liver_drop in [0, 1)"),
            (t.cycles >= 1 and t.epochs_per_cycle >= 1 and t.validate_every >= 1,
             "train.cycles, epochs_per_cycle and validate_every must be 1 or more"),
            (0 <= t.min_learning_rate <= t.learning_rate and t.learning_rate > 0,
             "train.learning_rate must be positive and at least min_learning_rate"),
            (math.isfinite(t.weight_decay) and t.weight_decay >= 0, "train.weight_decay must be 0 or more"),
            (t.batch_size >= 1 and t.background_fraction >= 0 and t.lesion_oversample >= 0,
             "train.batch_size must be 1 or more; background_fraction and lesion_oversample 0 or more"),
            (isinstance(t.seed, int) and not isinstance(t.seed, bool) and 0 <= t.seed < 2 ** 32,
             "train.seed must be a whole number from 0 to 4294967295"),
            (0 < i.liver_threshold < 1 and 0 < i.lesion_threshold < 1, "inference thresholds must lie in (0, 1)"),
            (i.lesion_grow_threshold is None or 0 < i.lesion_grow_threshold <= 1,
             "inference.lesion_grow_threshold must be None (off) or lie in (0, 1]"),
            (math.isfinite(i.liver_neck_mm) and i.liver_neck_mm >= 0,
             "inference.liver_neck_mm must be 0 (off) or more"),
            (math.isfinite(i.lesion_grow_smoothing_mm) and i.lesion_grow_smoothing_mm >= 0,
             "inference.lesion_grow_smoothing_mm must be 0 (off) or more"),
            (math.isfinite(i.liver_edge_mm) and 0 <= i.liver_edge_mm <= 20,
             "inference.liver_edge_mm must be between 0 and 20 mm"),
            (math.isfinite(i.lesion_grow_beyond_liver_mm) and i.lesion_grow_beyond_liver_mm >= 0,
             "inference.lesion_grow_beyond_liver_mm must be 0 (inside the liver only) or more"),
            (math.isfinite(i.lesion_grow_max_mm) and i.lesion_grow_max_mm >= 0,
             "inference.lesion_grow_max_mm must be 0 (no limit) or more"),
            (math.isfinite(i.lesion_beyond_liver_hu_tolerance) and i.lesion_beyond_liver_hu_tolerance >= 0,
             "inference.lesion_beyond_liver_hu_tolerance must be 0 or more"),
            (i.min_lesion_peak_probability is None or 0 <= i.min_lesion_peak_probability <= 1,
             "inference.min_lesion_peak_probability must be None (off) or lie in [0, 1]"),
            (0 <= i.tile_weight <= 1, "inference.tile_weight must lie in [0, 1]"),
            (i.batch_size >= 1 and i.min_lesion_mm3 >= 0 and i.locate_stride >= 1 and i.box_quantum >= 1,
             "inference.batch_size, locate_stride and box_quantum must be 1 or more, min_lesion_mm3 0 or more"),
            (math.isfinite(i.model_slice_spacing_mm) and i.model_slice_spacing_mm >= 0,
             "inference.model_slice_spacing_mm must be 0 (every slice) or more"),
            (0 <= i.min_liver_around_lesion <= 1 and i.liver_around_lesion_mm > 0,
             "inference.min_liver_around_lesion must be between 0 and 1, liver_around_lesion_mm above 0"),
            (i.min_lesion_median_hu is None or -1024 <= i.min_lesion_median_hu <= 3000,
             "inference.min_lesion_median_hu must be None (off) or a CT value between -1024 and 3000 HU"),
            (i.max_lesion_gas_mm3 is None or (math.isfinite(i.max_lesion_gas_mm3) and i.max_lesion_gas_mm3 >= 0),
             "inference.max_lesion_gas_mm3 must be None (off) or 0 mm3 or more"),
            (i.min_lesion_contrast_hu is None or 0 <= i.min_lesion_contrast_hu <= 1000,
             "inference.min_lesion_contrast_hu must be None (off) or between 0 and 1000 HU"),
            (i.precision in ("auto", "float32", "bfloat16") and t.precision in ("auto", "float32", "bfloat16"),
             "precision must be auto, float32 or bfloat16"),
        ]
        for ok, message in rules:
            if not ok:
                raise InputError(message, source)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "configuration") -> "Config":
        return _from_dict(cls, data, source)

    @classmethod
    def from_json_file(cls, path) -> "Config":
        refuse_an_empty_file(Path(path), hint="give the settings file as it was written (config.json of a run)")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the configuration ({exc})", path, "give a JSON file") from None
        return cls.from_dict(data, str(path))


def _from_dict(cls, data: Any, source: str, prefix: str = ""):
    if not isinstance(data, dict):
        raise InputError(f"'{prefix.rstrip('.') or 'configuration'}' should be an object", source)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown setting '{prefix}{unknown[0]}'", source,
                         f"known settings here: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, source, prefix + name)
    return cls(**values)


def _coerce(hint, value, source: str, key: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, source, key + ".")
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _coerce([a for a in args if a is not type(None)][0], value, source, key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"setting '{key}' should be a list, got {value!r}", source)
        item = args[0] if args else Any
        items = [_coerce(item, v, source, key) for v in value]
        if origin is tuple and args and args[-1] is not Ellipsis and len(items) != len(args):
            raise InputError(f"setting '{key}' should have {len(args)} values, got {len(items)}", source)
        return tuple(items) if origin is tuple else items
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # JSON's NaN and Infinity: off is null, where a setting can be off
            raise InputError(f"setting '{key}' should be a finite number, got {value!r}", source)
        return float(value)
    if hint in (int, bool, str) and type(value) is hint:
        return value
    if hint is Any:
        return value
    raise InputError(f"setting '{key}' should be {getattr(hint, '__name__', hint)}, got {value!r}", source)
