"""The values of a CT's header that a DICOM output (SEG, SR, RT structure set) copies, made writable:
the Specific Character Set of its text, the patient and study attributes, the orientation and the
slice thickness. Each was a CT that segmented well and got no DICOM output ("cannot make a DICOM SEG
on this CT series"), after the whole segmentation.

Character set. highdicom takes the CT's own value and refuses, with no output written, the forms that
Japanese, Korean and Chinese scanners write every day: "\\ISO 2022 IR 87" (an empty first value is the
default repertoire), "\\ISO 2022 IR 149", "\\ISO 2022 IR 58", and the single "ISO_IR 6". pydicom has
already decoded the text with the CT's value, so an output may declare UTF-8 instead and lose nothing.

Patient and study. highdicom reads the patient's name, ID, birth date and sex and the study's date,
time, ID and accession number from the CT and fails where one is missing (an anonymiser removed it:
they are type 2, present but maybe empty) or not in DICOM's form (a date written 2019-03-04, a time
12:30:45, a sex written "Male"). An output gets them empty where missing, in DICOM's form where the
CT's value is a usual misspelling of it, and empty, with a warning, where it cannot be read.

Orientation. highdicom takes the slices' ImageOrientationPatient to be one value only where all are
equal to the last digit, and a multi-frame CT's only where it lies in the shared functional groups;
scanners write it per slice with rounding noise (1e-6) and per frame. The reader took such slices as
one orientation (`volume.DIRECTION_TOLERANCE`), so the output's copy of them is given the first's.

Slice thickness. A CT may leave it out or empty (it is type 2), and highdicom fails where it is left
out; a SEG's frames need one: the outputs' copy is given the step between the slices.
"""

from __future__ import annotations

import logging
import re
from typing import Optional, Sequence, Union

import numpy as np
import pydicom
from pydicom.valuerep import DA, TM

from ..volume import DIRECTION_TOLERANCE
from .dicom_values import values_of

LOG = logging.getLogger("LiverLesionSeg")

UTF8 = "ISO_IR 192"
DEFAULT_REPERTOIRE_WITH_EXTENSIONS = "ISO 2022 IR 6"  # what an empty first value stands for

CharacterSet = Union[str, list[str]]


def declared_character_set(header: pydicom.Dataset) -> Optional[list[str]]:
    """The header's Specific Character Set as a list of its values (None where it declares none), an
    empty first value written out as the default repertoire with code extensions (PS3.3 C.12.1.1.2)."""
    value = header.get("SpecificCharacterSet")
    if value is None or value == "":
        return None
    values = [str(v).strip() for v in values_of(value)]
    if len(values) > 1 and not values[0]:
        values[0] = DEFAULT_REPERTOIRE_WITH_EXTENSIONS
    return values


def output_character_set(headers: Sequence[pydicom.Dataset]) -> Optional[CharacterSet]:
    """What a highdicom output over `headers` (a series) declares: the series' own character set where
    highdicom writes it, UTF-8 where it does not. None where the series declares none: its text is then
    written back as it was read (an undeclared name may be Latin-1 or UTF-8; no guess is made)."""
    from highdicom.valuerep import _check_specific_character_set  # highdicom's own rule for the value

    values = declared_character_set(headers[0]) if headers else None
    if values is None:
        return None
    try:
        return _check_specific_character_set(values if len(values) > 1 else values[0])
    except ValueError:
        return UTF8


# Type 2 attributes of the patient and study modules that highdicom copies from the CT, by their VR.
PATIENT_AND_STUDY_TYPE_2 = {"PatientName": "PN", "PatientID": "LO", "PatientBirthDate": "DA", "PatientSex": "CS",
                            "StudyDate": "DA", "StudyTime": "TM", "StudyID": "SH", "AccessionNumber": "SH",
                            "ReferringPhysicianName": "PN"}
_DATE = re.compile(r"(\d{4})[-/.](\d{2})[-/.](\d{2})")  # 2019-03-04, 2019/03/04, 2019.03.04
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?")  # 12:30, 12:30:45, 12:30:45.123
_SEX = {"M": "M", "F": "F", "O": "O", "MALE": "M", "FEMALE": "F", "OTHER": "O"}


def make_patient_and_study_writable(headers: Sequence[pydicom.Dataset]) -> None:
    """Give each of `headers` (a series' headers, read for the output and changed in place) the patient
    and study attributes an output copies: empty where missing, in DICOM's form where spelled otherwise,
    empty where unreadable (one warning names those)."""
    unreadable: dict[str, str] = {}
    for header in headers:
        for keyword, vr in PATIENT_AND_STUDY_TYPE_2.items():
            value = header.get(keyword)
            if value is None:
                setattr(header, keyword, "")
                continue
            if vr not in ("DA", "TM", "CS"):  # names and IDs go as they are
                continue
            written = _in_dicom_form(str(value).strip(), vr)
            if written is None:
                unreadable[keyword] = str(value)
                written = ""
            if written != str(value):
                header[keyword].value = written
    if unreadable:
        listed = ", ".join(f"{keyword} {value!r}" for keyword, value in unreadable.items())
        LOG.warning("the CT's %s not in DICOM's form: left empty in the DICOM outputs", listed)


def _in_dicom_form(value: str, vr: str) -> Optional[str]:
    """`value` (a date, a time or a sex: `vr` DA, TM or CS) in DICOM's form, "" for "", None where it
    cannot be read."""
    if not value:
        return value
    if vr == "CS":
        return _SEX.get(value.upper())
    pattern, parse = (_DATE, DA) if vr == "DA" else (_TIME, TM)
    match = pattern.fullmatch(value)
    candidate = "".join(part or "" for part in match.groups()) if match else value
    try:
        parse(candidate)
    except ValueError:
        return None
    return candidate


def make_orientation_shared(headers: Sequence[pydicom.Dataset]) -> None:
    """Give `headers` (single-frame slices, or one multi-frame file) one orientation, the first's, as
    highdicom asks, where they differ within the reader's tolerance; otherwise leave them as they are."""
    if len(headers) == 1 and "PerFrameFunctionalGroupsSequence" in headers[0]:
        _share_frame_orientation(headers[0])
        return
    orientations = [header.get("ImageOrientationPatient") for header in headers]
    if None in orientations or not _within_tolerance(orientations):
        return
    for header in headers[1:]:
        header.ImageOrientationPatient = headers[0].ImageOrientationPatient


def _share_frame_orientation(header: pydicom.Dataset) -> None:
    """A multi-frame header whose frames each hold their PlaneOrientationSequence: moved to the shared
    functional groups where every frame holds one within the tolerance."""
    shared = header.get("SharedFunctionalGroupsSequence")
    if not shared or "PlaneOrientationSequence" in shared[0]:
        return
    frames = header.PerFrameFunctionalGroupsSequence
    if not all("PlaneOrientationSequence" in frame for frame in frames):
        return
    orientations = [frame.PlaneOrientationSequence[0].get("ImageOrientationPatient") for frame in frames]
    if None in orientations or not _within_tolerance(orientations):
        return
    shared[0].PlaneOrientationSequence = frames[0].PlaneOrientationSequence
    for frame in frames:
        del frame.PlaneOrientationSequence


def _within_tolerance(orientations: list) -> bool:
    if any(len(orientation) != 6 for orientation in orientations):
        return False
    values = np.array([[float(v) for v in orientation] for orientation in orientations])
    return bool(np.all(np.abs(values - values[0]) <= DIRECTION_TOLERANCE))


def give_slice_thickness(headers: Sequence[pydicom.Dataset]) -> None:
    """Single-frame slices without a SliceThickness, or with an empty one: given the median step between
    them along their normal (highdicom reads it; a SEG's frames need it)."""
    if len(headers) < 2 or all(header.get("SliceThickness") not in (None, "") for header in headers):
        return
    try:
        orientation = np.array([float(v) for v in headers[0].ImageOrientationPatient])
        positions = np.array([[float(v) for v in header.ImagePositionPatient] for header in headers])
    except (AttributeError, TypeError, ValueError):
        return
    normal = np.cross(orientation[:3], orientation[3:])
    step = float(np.median(np.abs(np.diff(positions @ normal))))
    for header in headers:
        if header.get("SliceThickness") in (None, ""):
            header.SliceThickness = f"{step:.6g}"
