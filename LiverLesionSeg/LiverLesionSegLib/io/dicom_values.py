"""Header values of a DICOM file as numbers (its orientation, position, whole numbers), the
geometry they give, names as their writer meant them, and how messages show them."""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import pydicom
import pydicom.valuerep

from ..volume import in_brackets


def orientation_of(ds) -> Optional[tuple[float, ...]]:
    """ImageOrientationPatient (a multi-frame image's: in its shared functional groups): two unit
    vectors at right angles; None when missing or unusable."""
    values = numbers_of(ds, "ImageOrientationPatient", 6)
    if values is None and ds.get("SharedFunctionalGroupsSequence"):
        plane = ds.SharedFunctionalGroupsSequence[0].get("PlaneOrientationSequence")
        values = numbers_of(plane[0], "ImageOrientationPatient", 6) if plane else None
    if values is None:
        return None
    row, column = np.array(values[:3]), np.array(values[3:])
    if not (np.allclose([np.linalg.norm(row), np.linalg.norm(column)], 1, atol=1e-2)
            and abs(float(row @ column)) < 1e-2):
        return None
    return values


def text_as_written(value: str, dataset: pydicom.Dataset) -> str:
    """A name (an ROI's, a segment's) as its writer meant it: where `dataset` declares no
    SpecificCharacterSet, DICOM's default is ASCII, which pydicom reads as Latin-1, and a name a
    planning system stored in UTF-8 was read as another ("肝脏" as "è\x82\x9dè\x84\x8f", a liver
    left out); one whose bytes are UTF-8 is read so. Latin-1 ("Läsion") stays as it was read."""
    if dataset.get("SpecificCharacterSet") or value.isascii():  # (an empty one is the default too)
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def position_of(ds) -> np.ndarray:
    values = numbers_of(ds, "ImagePositionPatient", 3)
    return np.full(3, np.nan) if values is None else np.array(values)


def numbers_of(ds, keyword: str, count: int) -> Optional[tuple[float, ...]]:
    """A header value of `count` finite numbers, or None (missing, text, another length)."""
    return number_values(ds.get(keyword), count)


def own_or_shared(ds, keyword: str, group: str):
    """A header value of the file itself, else of the functional group `group` its frames share (where an
    enhanced multi-frame file keeps it); None where neither holds it."""
    if ds.get(keyword) is not None:
        return ds.get(keyword)
    shared = ds.get("SharedFunctionalGroupsSequence")
    items = shared[0].get(group) if shared else None
    return items[0].get(keyword) if items else None


def values_of(value) -> list:
    """A header element's values as a list: those of a multi-valued one, else the one value."""
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def number_values(value, count: int) -> Optional[tuple[float, ...]]:
    """A header element's value as `count` finite numbers, or None (missing, text, another length)."""
    try:
        values = tuple(float(v) for v in values_of(value))
    except (TypeError, ValueError, OverflowError):
        return None
    if len(values) != count or not all(np.isfinite(values)):
        return None
    return values


def normal_of(orientation: Sequence[float]) -> np.ndarray:
    normal = np.cross(orientation[:3], orientation[3:])
    return normal / np.linalg.norm(normal)


def dominant_axis(vector: np.ndarray) -> int:
    return int(np.argmax(np.abs(vector)))


def orientation_name(orientation) -> str:
    if orientation is None:
        return "no orientation"
    return ("sagittal", "coronal", "axial")[dominant_axis(normal_of(orientation))]


def acquisition_time_of(ds) -> Optional[float]:
    """When the image's acquisition started, in seconds after midnight: its AcquisitionTime, or the
    time in an enhanced image's AcquisitionDateTime; None where neither is given or readable."""
    value = str(ds.get("AcquisitionTime") or "").strip()
    if not value:
        value = re.split(r"[+-]", str(ds.get("AcquisitionDateTime") or "").strip()[8:])[0]
    try:
        time = pydicom.valuerep.TM(value.replace(":", ""))  # "14:37:20" as older files write it
    except (ValueError, TypeError):
        return None
    return None if time is None else time.hour * 3600 + time.minute * 60 + time.second + time.microsecond / 1e6


def int_or_none(value) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def described(value, count: int) -> str:
    """A header value as a message shows it: its numbers, or what it holds instead."""
    numbers = number_values(value, count)
    if numbers is not None:
        return in_brackets(numbers)
    if value is None or str(value) == "":  # (pydicom gives an element left empty as None)
        return "empty or missing"  # it said "none"
    return f"'{value}' ({count} numbers needed)"

