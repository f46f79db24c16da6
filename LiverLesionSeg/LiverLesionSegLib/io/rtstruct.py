"""DICOM RT Structure Sets (RTSTRUCT): the liver and tumour contours that radiotherapy and
radioembolisation planning systems export, read as masks on the CT they were drawn on.

The file is read with pydicom; each ROI is liver or lesion by its name, as segment names are
("Liver"; "GTV", "Liver lesion", "Tumor 2", "HCC", ...; TG-263's "Liver-GTV", the liver less its
tumour, is liver), or by its interpreted type GTV; other ROIs (PTV, organs at risk) are left out.
Each closed planar contour is filled on the CT slice it lies on (the pixels whose centres lie
inside it or on it, `polygon`), and contours on one slice combine by even-odd (a contour inside
another is a hole), as the standard describes. Slices are found by position along the slice
normal, never by the referenced image UIDs, which are optional and often left out. On a CT
resampled from slices that were no grid (`regularize`), the contours are filled on the slices as
acquired and the masks resampled as the CT was.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom

from ..errors import GeometryError, InputError, first_line
from ..segments import meaning_of_segment_name, warn_of_left_out
from ..volume import POSITION_TOLERANCE_MM, Volume
from .dicom_files import check_not_cut_short, dcmread
from .dicom_values import int_or_none, text_as_written
from .polygon import fill_polygon
from .regularize import STEP_TOLERANCE, Stack, mask_to_grid

LOG = logging.getLogger("LiverLesionSeg")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
FILLED_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")  # a POINT or OPEN_PLANAR contour encloses nothing
CONTOUR_TYPES = FILLED_TYPES + ("POINT", "OPEN_PLANAR", "OPEN_NONPLANAR")
HINT = "export the structure set again from the planning system, on this CT series"


def is_rtstruct(path: str | os.PathLike) -> bool:
    """A DICOM file whose header says it is an RT Structure Set."""
    try:  # (pydicom parses a value when it is asked for)
        header = dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
        return header.get("Modality") == "RTSTRUCT" or str(header.get("SOPClassUID", "")) == RTSTRUCT_SOP_CLASS
    except Exception:  # not DICOM, or damaged: the SEG reader names the problem
        return False


def roi_meaning(name: str, interpreted_type: str = "") -> Optional[str]:
    """'liver', 'lesion' or None for an ROI's name and RT ROI Interpreted Type."""
    meaning = meaning_of_segment_name(name)
    return "lesion" if meaning is None and interpreted_type.upper() == "GTV" else meaning


def read_rtstruct_masks(path: str | os.PathLike, ct: Volume) -> dict[str, np.ndarray]:
    """{'liver': mask, 'lesion': mask} (those present) of one RTSTRUCT file, uint8 on `ct`'s grid."""
    path = Path(path)
    try:
        dataset = dcmread(path)
        check_not_cut_short(path, dataset, "copy or export the structure set again")
        numbers = [_roi_number(item, "ROINumber", "StructureSetROISequence")
                   for item in dataset.StructureSetROISequence]
        repeated = sorted({number for number in numbers if numbers.count(number) > 1})
        if repeated:  # which ROI's contours are whose cannot be told: the liver could be read as a lesion
            raise InputError(f"gives ROI number {repeated[0]} to more than one ROI", path, HINT)
        rois = _rois(dataset, path)
    except InputError:
        raise
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise InputError(f"cannot read the RT structure set ({first_line(exc)})", path, HINT) from None
    slices = _Slices(ct)
    masks: dict[str, np.ndarray] = {}
    warn_of_left_out(path, [name for name, meaning, _ in rois if meaning is None], "ROI")
    for name, meaning, contours in rois:
        if meaning is None:
            continue
        mask = masks.setdefault(meaning, np.zeros(slices.shape, np.uint8))
        mask |= slices.fill(contours, f"a contour of ROI '{name}'", path)
    if ct.acquired is not None:
        masks = {role: mask_to_grid(mask, ct.acquired, ct) for role, mask in masks.items()}
    return masks


def _rois(dataset: pydicom.Dataset, path: Path) -> list[tuple[str, Optional[str], list[np.ndarray]]]:
    """(name, meaning, closed contours as (n, 3) LPS points) of each ROI; a warning for a liver or lesion
    ROI that holds none (an empty structure, or one whose contours were lost)."""
    names = {_roi_number(item, "ROINumber", "StructureSetROISequence"):
             text_as_written(str(item.get("ROIName", "")), dataset) for item in dataset.StructureSetROISequence}
    observed = list(dataset.get("RTROIObservationsSequence", []))
    named = [item for item in observed if int_or_none(item.get("ReferencedROINumber")) is not None]
    types = {int(item.ReferencedROINumber): str(item.get("RTROIInterpretedType", "") or "") for item in named}
    if len(named) < len(observed):  # an observation only adds an ROI's interpreted type (a GTV is a lesion)
        LOG.warning("%s: %d of its RT ROI observations name no ROI (no usable ReferencedROINumber): left out",
                    path, len(observed) - len(named))
    rois, drawn = [], set()
    for item in dataset.get("ROIContourSequence", []):
        number = _roi_number(item, "ReferencedROINumber", "ROIContourSequence")
        if number not in names:  # whether they outline the liver, a lesion or neither cannot be told
            raise ValueError(f"it holds contours of ROI number {number}, which its StructureSetROISequence does "
                             "not list")
        name = names[number]
        given = item.get("ContourSequence") or []
        if given:
            drawn.add(number)
        meaning = roi_meaning(name, types.get(number, ""))
        if meaning is not None:
            for contour in given:
                _check_type(contour, name)
        closed = [contour for contour in given if str(contour.get("ContourGeometricType", "")).upper() in FILLED_TYPES]
        contours = [_points(contour, name) for contour in closed]
        if meaning is not None and len(contours) < len(given):
            LOG.warning("%s: ROI '%s': %d of its %d contours left out: open lines or points, which enclose no area "
                        "(only CLOSED_PLANAR contours are filled)", path, name, len(given) - len(contours), len(given))
        if meaning is not None:
            _warn_of_miscounted(path, name, closed, contours)
        rois.append((name, meaning, contours))
    empty = [name for number, name in names.items() if number not in drawn and roi_meaning(name, types.get(number, ""))]
    if empty:
        LOG.warning("%s: ROI %s holds no contours: read as empty (if it was drawn, export the structure set again)",
                    path, ", ".join(f"'{name}'" for name in empty))
    return rois


def _roi_number(item: pydicom.Dataset, keyword: str, sequence: str) -> int:
    """An item's ROI number; a ValueError naming it where it is missing, empty or no whole number
    (Python's "int() argument must be … not 'NoneType'" for an empty one)."""
    written = item.get(keyword)
    number = int_or_none(written)
    if number is None:
        said = f"no {keyword}" if written in (None, "") else f"an unusable {keyword} ({written!s:.20})"
        raise ValueError(f"an item of its {sequence} has {said}")
    return number


def _warn_of_miscounted(path: Path, roi: str, contours: list[pydicom.Dataset], points: list[np.ndarray]) -> None:
    """A warning where contours' NumberOfContourPoints is not the count of their ContourData's points:
    they are read by their ContourData, but a structure set at odds with itself may have been damaged
    (found by `tools/damage_inputs.py --kind rtstruct`, seed 14037, where a contour had gone too)."""
    counts = [(int_or_none(contour.get("NumberOfContourPoints")), len(held)) for contour, held in zip(contours, points)]
    miscounted = [(said, held) for said, held in counts if said is not None and said != held]
    if miscounted:
        LOG.warning("%s: ROI '%s': %d contour(s) whose NumberOfContourPoints is not the number of points of their "
                    "ContourData (e.g. %d against %d): read by their ContourData; if the structure set was damaged, "
                    "export it again", path, roi, len(miscounted), *miscounted[0])


def _check_type(contour: pydicom.Dataset, roi: str) -> None:
    """A contour of a liver or lesion ROI without a known ContourGeometricType named (left out as an
    open line, the outline of a lesion changed its volume without a word)."""
    kind = str(contour.get("ContourGeometricType", "") or "")
    if kind.upper() not in CONTOUR_TYPES:
        told = f"the ContourGeometricType '{kind[:20]}'" if kind else "no ContourGeometricType"
        raise ValueError(f"a contour of ROI '{roi}' has {told}, so whether it encloses an area cannot be told "
                         f"(known: {', '.join(CONTOUR_TYPES)})")


def _points(contour: pydicom.Dataset, roi: str) -> np.ndarray:
    """A contour's (n, 3) points; ContourData that is no list of x, y, z is named with its ROI."""
    try:
        values = np.asarray(contour.get("ContourData") or [], dtype=float).ravel()
    except ValueError as exc:  # pydicom reads each number as it is asked for: text in it fails here
        raise ValueError(f"a contour of ROI '{roi}' holds ContourData that is not numbers ({first_line(exc, 80)})"
                         ) from None
    if values.size == 0 or values.size % 3:
        numbers = f"{values.size} number{'s' * (values.size != 1)}"
        raise ValueError(f"a contour of ROI '{roi}' holds {numbers}, not x, y, z points")
    return values.reshape(-1, 3)


class _Slices:
    """The CT's slices as planes (the acquired ones where the CT was resampled), to fill contours on."""

    def __init__(self, ct: Volume) -> None:
        stack = ct.acquired
        if stack is None:  # a regular grid: its slices, as a stack
            direction = np.asarray(ct.direction, dtype=float)
            positions = np.asarray(ct.origin) + np.outer(np.arange(ct.shape[0]) * ct.spacing[2], direction[:, 2])
            stack = Stack(positions, direction[:, 0], direction[:, 1], tuple(ct.spacing[:2]), tuple(ct.shape[1:]))
        self.stack = stack
        self.shape = (len(stack.positions),) + tuple(stack.shape)
        self.along = stack.along
        step = float(np.median(np.abs(np.diff(self.along)))) if len(self.along) > 1 else 1.0
        self.tolerance_mm = POSITION_TOLERANCE_MM + STEP_TOLERANCE * step

    def fill(self, contours: list[np.ndarray], what: str, where: Path) -> np.ndarray:
        """The contours filled on their slices, combined by even-odd on each slice."""
        mask = np.zeros(self.shape, np.uint8)
        for points in contours:
            if len(points) < 3:
                continue
            if not np.isfinite(points).all():
                raise InputError(f"{what} has points that are not numbers", where, HINT)
            k = self._slice_of(points, what, where)
            offsets = points - self.stack.positions[k]
            xy = np.column_stack([offsets @ self.stack.row_dir / self.stack.pixel[0],
                                  offsets @ self.stack.col_dir / self.stack.pixel[1]])
            if (xy < -1).any() or (xy > np.array(self.shape[:0:-1])).any():  # a pixel of slack at each edge
                raise GeometryError(f"{what} reaches beyond the CT's image (pixel ({xy[:, 0].min():.0f} .. "
                                    f"{xy[:, 0].max():.0f}, {xy[:, 1].min():.0f} .. {xy[:, 1].max():.0f}) of "
                                    f"{self.shape[2]} x {self.shape[1]})", where,
                                    "give the structure set drawn on this CT series")
            mask[k] ^= fill_polygon(xy, self.shape[1:])
        return mask

    def _slice_of(self, points: np.ndarray, what: str, where: Path) -> int:
        along = (points - self.stack.positions[0]) @ self.stack.normal
        k = int(np.argmin(np.abs(self.along - along.mean())))
        miss = np.abs(along - self.along[k]).max()
        if miss > self.tolerance_mm:
            first = ", ".join(f"{v:.4g}" for v in points[0])
            raise GeometryError(f"{what} at ({first}) does not lie on a slice of the CT series ({miss:.2f} mm "
                                "off the nearest)", where, "give the structure set drawn on this CT series")
        return k
