"""Evaluation of one case at a time, in 3-D and in millimetres.

Every measure is computed on the whole volume of a case (never slice by slice), with the voxel
spacing of the case. The rules, also written into every report (`RULES`):

- **Dice** = 2|P∩T| / (|P| + |T|). Both masks empty: 1.0, and the case is flagged
  (`lesion_both_empty`, `liver_both_empty`) so that summaries can leave it out. One mask empty
  and the other not: 0.0.
- **Lesion**: a connected component of a lesion mask in 3-D with 26-connectivity (voxels that
  touch by a face, an edge or a corner belong to one lesion).
- **Detection**: a true lesion is detected when any predicted component overlaps it by at least
  one voxel; a predicted component is a true positive when it overlaps any true lesion, else a
  false positive. recall = detected true lesions / true lesions (null without true lesions);
  precision = true-positive components / predicted components (null without predictions);
  F1 = 2PR / (P + R), 0 when P + R = 0. When exactly one of P and R is undefined the other is 0
  (nothing to find but something found, or the reverse), and F1 is 0; with neither true nor
  predicted lesions F1 is null.
- **Surface**: the mask minus its binary erosion with the 6-neighbourhood (voxels outside the
  image count as background). Distances are Euclidean between voxel centres, in mm, with the
  anisotropic spacing. For each surface voxel of one mask, the distance to the nearest surface
  voxel of the other mask (exact nearest-neighbour search with a k-d tree on the surface points,
  the same numbers a Euclidean distance transform with `sampling=spacing` gives, in a fraction of
  its time on a liver-sized box).
- **ASSD** = (sum of distances P->T + sum of distances T->P) / (|surface P| + |surface T|).
- **HD95** = the larger of the two directed 95th percentiles (P->T and T->P; numpy's linear
  interpolation). Both masks empty: ASSD = HD95 = 0; one empty: null.
- **False-positive lesion volume**: predicted lesion voxels outside the true lesion, in mL.

Summaries (`summarise`): per-case lesion Dice mean and median over all cases and over the cases
that are not empty-vs-empty; global Dice = 2 * sum of intersections / sum of mask sizes over all
cases; detection pooled from the summed counts; ASSD / HD95 averaged over the cases where they are
defined, leaving out empty-vs-empty cases (their 0 is a convention, not a measurement). A case whose
lesions are not segmented (its liver labelled without them) has its lesion measures left empty and
counts for the liver's summaries alone.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import GeometryError
from .masks import array_sampling, bounding_box, label_components


RULES = {
    "dice": "Dice = 2|P∩T| / (|P|+|T|) over the whole 3-D volume of a case. Both masks empty: 1.0 "
            "and the case is flagged (lesion_both_empty / liver_both_empty); one empty: 0.0.",
    "global_dice": "2 * sum of intersections / sum of (|P|+|T|) over all cases; 1.0 when every mask is empty.",
    "lesion": "a connected component of the lesion mask in 3-D with 26-connectivity.",
    "detection": "a true lesion is detected when any predicted component overlaps it (>= 1 voxel); a predicted "
                 "component is a true positive when it overlaps any true lesion, else a false positive. "
                 "recall = detected / true lesions (null without true lesions); precision = true-positive "
                 "components / predicted components (null without predictions); F1 = 2PR/(P+R), 0 when P+R = 0 "
                 "or when exactly one of P, R is undefined (the other is then 0), null when both are undefined. "
                 "Pooled values use the counts summed over cases.",
    "surface": "surface voxels = mask minus its binary erosion with the 6-neighbourhood (outside the image is "
               "background); distances are Euclidean between voxel centres in mm with the voxel spacing.",
    "assd": "(sum of distances P->T + sum of distances T->P) / (number of surface voxels of P + of T), mm.",
    "hd95": "max of the two directed 95th percentiles of surface distances (numpy linear interpolation), mm.",
    "empty_surfaces": "both masks empty: ASSD = HD95 = 0; one empty: null.",
    "summary_dice": "mean and median of per-case lesion Dice over all cases, and over the cases that are not "
                    "empty-vs-empty (*_excluding_empty).",
    "summary_distances": "means over the cases where defined, leaving out empty-vs-empty cases.",
    "fp_lesion_volume_ml": "predicted lesion voxels outside the true lesion, times the voxel volume, in mL.",
    "tumour_burden": "lesion voxels / liver voxels (the liver holds its lesions), null without liver; "
                     "tumour_burden_rmse: the root mean square of predicted minus true over the cases where both "
                     "are defined (LiTS's tumour burden measure).",
}


# The measures of one comparison as a table shows them: (CaseMetrics field, column title, unit).
COMPARISON_COLUMNS = (
    ("liver_dice", "Liver Dice", ""),
    ("lesion_dice", "Lesion Dice", ""),
    ("liver_assd_mm", "Liver ASSD", "mm"),
    ("liver_hd95_mm", "Liver HD95", "mm"),
    ("lesion_assd_mm", "Lesion ASSD", "mm"),
    ("lesion_hd95_mm", "Lesion HD95", "mm"),
    ("true_lesions", "Reference lesions", ""),
    ("detected_lesions", "Lesions found", ""),
    ("missed_lesions", "Lesions missed", ""),
    ("pred_false_positive_lesions", "False lesions", ""),
    ("true_lesion_volume_ml", "Reference lesion volume", "mL"),
    ("pred_lesion_volume_ml", "Lesion volume", "mL"),
    ("fp_lesion_volume_ml", "False lesion volume", "mL"),
)


# --- Dice ----------------------------------------------------------------------------------------

def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two masks; 1.0 when both are empty, 0.0 when only one is."""
    pred, truth = _as_masks(pred, truth)
    return dice_from_counts(np.count_nonzero(pred & truth), np.count_nonzero(pred), np.count_nonzero(truth))


def dice_from_counts(intersection: int, pred_voxels: int, true_voxels: int) -> float:
    total = pred_voxels + true_voxels
    return 1.0 if total == 0 else 2.0 * intersection / total


# --- lesion-wise detection -----------------------------------------------------------------------

@dataclass
class Detection:
    true_lesions: int  # connected true lesions
    pred_lesions: int  # connected predicted components
    detected: int  # true lesions overlapped by a prediction (TP, recall side)
    missed: int  # true lesions overlapped by no prediction (FN)
    pred_true_positive: int  # predicted components overlapping a true lesion (TP, precision side)
    pred_false_positive: int  # predicted components overlapping no true lesion (FP)

    @property
    def precision(self) -> Optional[float]:
        return self.pred_true_positive / self.pred_lesions if self.pred_lesions else None

    @property
    def recall(self) -> Optional[float]:
        return self.detected / self.true_lesions if self.true_lesions else None

    @property
    def f1(self) -> Optional[float]:
        return f1_score(self.precision, self.recall)


def f1_score(precision: Optional[float], recall: Optional[float]) -> Optional[float]:
    """Harmonic mean; see the module rules for undefined inputs."""
    if precision is None and recall is None:
        return None
    if precision is None or recall is None:
        return 0.0  # the defined one is 0: nothing was to be found, or nothing was predicted
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def lesion_detection(pred: np.ndarray, truth: np.ndarray) -> Detection:
    """Lesion-wise counts over 26-connected components of the two masks."""
    pred, truth = _as_masks(pred, truth)
    box = bounding_box(pred | truth)
    if box is None:
        return Detection(0, 0, 0, 0, 0, 0)
    pred, truth = pred[box], truth[box]
    pred_labels, n_pred = label_components(pred)
    true_labels, n_true = label_components(truth)
    overlap = pred & truth
    detected = np.unique(true_labels[overlap]).size
    pred_tp = np.unique(pred_labels[overlap]).size
    return Detection(n_true, n_pred, detected, n_true - detected, pred_tp, n_pred - pred_tp)


def lesions_found_by_both(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each mask's lesions (26-connected components) that overlap one of the other's: the two masks
    less the lesions only one of them has."""
    a, b = _as_masks(a, b)

    def overlapping(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
        labels, _ = label_components(mask)
        return np.isin(labels, np.unique(labels[mask & other]))

    return overlapping(a, b), overlapping(b, a)


# --- surface distances ---------------------------------------------------------------------------

def surface_distances(pred: np.ndarray, truth: np.ndarray,
                      spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each surface voxel of `pred` to the surface of `truth`, and back.

    `spacing` is (i, j, k) in mm like `Volume.spacing`; the arrays are indexed [k, j, i].
    Both masks must be non-empty.
    """
    pred, truth = _as_masks(pred, truth)
    sampling = _sampling(spacing)
    pred_points = _surface_points(pred) * sampling
    true_points = _surface_points(truth) * sampling
    if len(pred_points) == 0 or len(true_points) == 0:
        raise ValueError("surface distances need two non-empty masks")
    pred_to_truth, _ = cKDTree(true_points).query(pred_points)
    truth_to_pred, _ = cKDTree(pred_points).query(true_points)
    return pred_to_truth, truth_to_pred


def assd_hd95(pred: np.ndarray, truth: np.ndarray,
              spacing: Sequence[float]) -> tuple[Optional[float], Optional[float]]:
    """(ASSD, HD95) in mm; (0, 0) when both masks are empty, (None, None) when one is."""
    pred, truth = _as_masks(pred, truth)
    pred_empty, truth_empty = not pred.any(), not truth.any()
    if pred_empty and truth_empty:
        return 0.0, 0.0
    if pred_empty or truth_empty:
        return None, None
    forward, backward = surface_distances(pred, truth, spacing)
    assd_mm = (forward.sum() + backward.sum()) / (forward.size + backward.size)
    hd95_mm = max(np.percentile(forward, 95), np.percentile(backward, 95))
    return float(assd_mm), float(hd95_mm)


def assd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> Optional[float]:
    return assd_hd95(pred, truth, spacing)[0]


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> Optional[float]:
    return assd_hd95(pred, truth, spacing)[1]


def _surface_points(mask: np.ndarray) -> np.ndarray:
    """(k, j, i) indices of the surface voxels, found on the mask's bounding box."""
    box = bounding_box(mask)
    if box is None:
        return np.empty((0, 3))
    # Erosion counts outside the array as background (border_value=0); just outside a tight box
    # every voxel is background anyway, so cropping changes nothing.
    cropped = mask[box]
    surface = cropped & ~ndimage.binary_erosion(cropped, border_value=0)
    return np.argwhere(surface) + [s.start for s in box]


# --- one case ------------------------------------------------------------------------------------

# The measures a case whose lesions are not segmented (its liver labelled without them) leaves empty: those
# that compare the predicted lesions with the labelled ones (`CaseMetrics.with_lesions_unmeasured`)
LESION_TRUTH_FIELDS = ("lesion_dice", "lesion_true_voxels", "lesion_intersection_voxels", "true_lesions",
                       "detected_lesions", "missed_lesions", "pred_true_positive_lesions",
                       "pred_false_positive_lesions", "lesion_precision", "lesion_recall", "lesion_f1",
                       "lesion_assd_mm", "lesion_hd95_mm", "fp_lesion_volume_ml", "true_lesion_volume_ml",
                       "true_tumour_burden")


@dataclass
class CaseMetrics:
    name: str
    lesion_dice: Optional[float]  # None (as the other LESION_TRUTH_FIELDS) where the lesions are not segmented
    liver_dice: float
    lesion_both_empty: bool  # no lesion predicted nor labelled: lesion_dice is 1.0 by rule
    liver_both_empty: bool
    lesion_pred_voxels: int
    lesion_true_voxels: Optional[int]
    lesion_intersection_voxels: Optional[int]
    liver_pred_voxels: int
    liver_true_voxels: int
    liver_intersection_voxels: int
    true_lesions: Optional[int]
    pred_lesions: int
    detected_lesions: Optional[int]  # TP (recall side)
    missed_lesions: Optional[int]  # FN
    pred_true_positive_lesions: Optional[int]  # TP (precision side)
    pred_false_positive_lesions: Optional[int]  # FP
    lesion_precision: Optional[float]
    lesion_recall: Optional[float]
    lesion_f1: Optional[float]
    lesion_assd_mm: Optional[float]
    lesion_hd95_mm: Optional[float]
    liver_assd_mm: Optional[float]
    liver_hd95_mm: Optional[float]
    fp_lesion_volume_ml: Optional[float]
    pred_lesion_volume_ml: float
    true_lesion_volume_ml: Optional[float]
    # Last, with a default: metrics stored before they existed still load (benchmarks/accuracy.py).
    pred_tumour_burden: Optional[float] = None
    true_tumour_burden: Optional[float] = None
    lesions_segmented: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_lesions_unmeasured(self) -> "CaseMetrics":
        """These metrics of a case whose lesions are not segmented: what compares the lesions found with
        the labelled ones left empty (None), the liver's and the prediction's own measures kept."""
        return dataclasses.replace(self, lesions_segmented=False, lesion_both_empty=False,
                                   **{field: None for field in LESION_TRUTH_FIELDS})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def evaluate_case(name: str, pred_liver: np.ndarray, pred_lesion: np.ndarray, true_liver: np.ndarray,
                  true_lesion: np.ndarray, spacing: Sequence[float]) -> CaseMetrics:
    """All measures of one case. Masks are arrays indexed [k, j, i] (or `Volume`s) on one grid;
    `spacing` is (i, j, k) in mm."""
    pred_liver, pred_lesion, true_liver, true_lesion = _as_masks(pred_liver, pred_lesion, true_liver, true_lesion)
    ml_per_voxel = float(np.prod(_sampling(spacing))) / 1000.0

    lesion_counts = _overlap_counts(pred_lesion, true_lesion)
    liver_counts = _overlap_counts(pred_liver, true_liver)
    detection = lesion_detection(pred_lesion, true_lesion)
    lesion_assd, lesion_hd95 = assd_hd95(pred_lesion, true_lesion, spacing)
    liver_assd, liver_hd95 = assd_hd95(pred_liver, true_liver, spacing)
    lesion_intersection, lesion_pred, lesion_true = lesion_counts
    return CaseMetrics(
        name=name,
        lesion_dice=dice_from_counts(*lesion_counts),
        liver_dice=dice_from_counts(*liver_counts),
        lesion_both_empty=lesion_pred + lesion_true == 0,
        liver_both_empty=liver_counts[1] + liver_counts[2] == 0,
        lesion_pred_voxels=lesion_pred,
        lesion_true_voxels=lesion_true,
        lesion_intersection_voxels=lesion_intersection,
        liver_pred_voxels=liver_counts[1],
        liver_true_voxels=liver_counts[2],
        liver_intersection_voxels=liver_counts[0],
        true_lesions=detection.true_lesions,
        pred_lesions=detection.pred_lesions,
        detected_lesions=detection.detected,
        missed_lesions=detection.missed,
        pred_true_positive_lesions=detection.pred_true_positive,
        pred_false_positive_lesions=detection.pred_false_positive,
        lesion_precision=detection.precision,
        lesion_recall=detection.recall,
        lesion_f1=detection.f1,
        lesion_assd_mm=lesion_assd,
        lesion_hd95_mm=lesion_hd95,
        liver_assd_mm=liver_assd,
        liver_hd95_mm=liver_hd95,
        fp_lesion_volume_ml=(lesion_pred - lesion_intersection) * ml_per_voxel,
        pred_lesion_volume_ml=lesion_pred * ml_per_voxel,
        true_lesion_volume_ml=lesion_true * ml_per_voxel,
        pred_tumour_burden=lesion_pred / liver_counts[1] if liver_counts[1] else None,
        true_tumour_burden=lesion_true / liver_counts[2] if liver_counts[2] else None,
    )


def _overlap_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(|P∩T|, |P|, |T|) as Python ints."""
    return int(np.count_nonzero(pred & truth)), int(np.count_nonzero(pred)), int(np.count_nonzero(truth))


# --- many cases ----------------------------------------------------------------------------------

def summarise(cases: Sequence[CaseMetrics]) -> dict:
    """Summary over cases (see the module docstring for the rules); undefined values are None."""
    cases = list(cases)
    segmented = [c for c in cases if c.lesions_segmented]  # the lesion measures are over these alone
    lesion_dices = [c.lesion_dice for c in segmented]
    lesion_dices_nonempty = [c.lesion_dice for c in segmented if not c.lesion_both_empty]
    detected = sum(c.detected_lesions for c in segmented)
    true_lesions = sum(c.true_lesions for c in segmented)
    pred_tp = sum(c.pred_true_positive_lesions for c in segmented)
    pred_lesions = sum(c.pred_lesions for c in segmented)
    precision = pred_tp / pred_lesions if pred_lesions else None
    recall = detected / true_lesions if true_lesions else None
    summary = {
        "n_cases": len(cases),
        "n_lesions_not_segmented": len(cases) - len(segmented),
        "n_lesion_both_empty": sum(c.lesion_both_empty for c in segmented),
        "lesion_dice_mean": _mean(lesion_dices),
        "lesion_dice_median": _median(lesion_dices),
        "lesion_dice_mean_excluding_empty": _mean(lesion_dices_nonempty),
        "lesion_dice_median_excluding_empty": _median(lesion_dices_nonempty),
        "lesion_dice_global": _global_dice(segmented, "lesion") if segmented else None,
        "liver_dice_mean": _mean([c.liver_dice for c in cases]),
        "liver_dice_global": _global_dice(cases, "liver") if cases else None,
        "true_lesions": true_lesions,
        "pred_lesions": pred_lesions,
        "detected_lesions": detected,
        "missed_lesions": sum(c.missed_lesions for c in segmented),
        "pred_true_positive_lesions": pred_tp,
        "pred_false_positive_lesions": sum(c.pred_false_positive_lesions for c in segmented),
        "lesion_precision": precision,
        "lesion_recall": recall,
        "lesion_f1": f1_score(precision, recall),
    }
    burdens = [(c.pred_tumour_burden, c.true_tumour_burden) for c in cases
               if c.pred_tumour_burden is not None and c.true_tumour_burden is not None]
    summary["tumour_burden_rmse"] = (float(np.sqrt(np.mean([(p - t) ** 2 for p, t in burdens]))) if burdens
                                     else None)
    for organ, of in (("lesion", segmented), ("liver", cases)):
        measured = [c for c in of if not getattr(c, f"{organ}_both_empty")]
        for measure in ("assd_mm", "hd95_mm"):
            values = [v for v in (getattr(c, f"{organ}_{measure}") for c in measured) if v is not None]
            summary[f"{organ}_{measure}_mean"] = _mean(values)
            summary[f"{organ}_{measure}_n"] = len(values)
    return summary


def _global_dice(cases: Sequence[CaseMetrics], organ: str) -> float:
    intersection = sum(getattr(c, f"{organ}_intersection_voxels") for c in cases)
    pred = sum(getattr(c, f"{organ}_pred_voxels") for c in cases)
    true = sum(getattr(c, f"{organ}_true_voxels") for c in cases)
    return dice_from_counts(intersection, pred, true)


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(statistics.fmean(values)) if values else None


def _median(values: Sequence[float]) -> Optional[float]:
    return float(statistics.median(values)) if values else None


# --- helpers -------------------------------------------------------------------------------------

def _as_masks(*masks) -> tuple[np.ndarray, ...]:
    """Boolean arrays from arrays or `Volume`s, all of one shape."""
    arrays = tuple(_as_bool(getattr(m, "array", m)) for m in masks)
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise GeometryError(f"masks of different shapes {sorted(shapes)} cannot be compared",
                            hint="resample the prediction onto the ground truth's grid")
    if arrays[0].ndim != 3:
        raise GeometryError(f"expected 3-D masks, got shape {arrays[0].shape}")
    return arrays


def _as_bool(array) -> np.ndarray:
    array = np.asarray(array)
    return array if array.dtype == bool else array > 0


def _sampling(spacing: Sequence[float]) -> np.ndarray:
    """Spacing (i, j, k) as the per-array-axis sampling (k, j, i)."""
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise GeometryError(f"voxel spacing {tuple(spacing.tolist())} is not three positive numbers")
    return np.asarray(array_sampling(spacing))
