"""Which series of a folder is the CT to segment (`choose_ct_series`), and reading it
(`read_ct_folder`, `read_chosen_series`, `choose_ct_file` for a multi-frame file). The folder's
series are found by `dicom_scan.scan_folder` from the headers alone.

A liver CT study often holds several contrast phases of equal slice count (before contrast,
arterial, portal venous, delayed). The model learned on portal venous and later phases, where the
liver is enhanced: among axial volumes that cover the liver's height, a phase its description names
is preferred so (portal venous, then a delayed phase or an unnamed one, then arterial, then before
contrast), and only then the slice count decides. Of one phase's series (`reconstruction`), a
soft-tissue reconstruction comes before a sharp one (lung, bone) or a projection (MIP), and of a
dual-energy CT's images the one nearest a conventional image in energy; a material map comes after
every CT image, whatever its phase, and a virtual non-contrast image counts as one before contrast.
Where descriptions do not tell the phases apart (de-identification removes descriptions unless told
to keep them), the series acquired later is preferred: the phases follow the contrast in time.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import pydicom

from ..errors import GeometryError, InputError
from ..segments import plain_text
from ..volume import POSITION_TOLERANCE_MM, Volume, in_brackets
from .archive import is_archive
from .dicom import read_series, slice_height
from .dicom_files import dcmread, has_dicom_prefix
from .dicom_scan import CT_CLASSES, DAMAGED, NON_IMAGE_MODALITIES, FolderScan, SeriesInfo, scan_files, scan_folder
from .dicom_values import described, orientation_of
from .reconstruction import (energy_offset, is_projection, is_sharp, is_virtual_non_contrast, material_map_evidence,
                             words_of)

LOG = logging.getLogger("LiverLesionSeg")
# Of a folder without DICOM files, the files looked at for an archive (each is opened to be told).
ARCHIVES_LOOKED_AT = 20

# Contrast phases as series descriptions name them (English, German, French, Spanish, Italian, Polish,
# Czech, Turkish; abbreviations as scanners and technologists write them: "11_AP_Ax5.00mm", "PVP 3mm",
# "NC Abd"). Looked for in this order, as whole words of the description in lower case without accents.
PHASE_WORDS = (
    ("before contrast", r"nc|non ?contrast|non ?con|unenhanced|non ?enhanced|plain|native?|pre ?contrast|w ?o|"
                        r"without contrast|ohne ?km|sin contraste|senza mdc|sans injection|sans iv|natywn\w*|"
                        r"nativn\w*|bez kontrastu|kontrastsiz"),
    ("arterial", r"arteri\w*|art|ap|lap|eap|hap|tetnicz\w*"),
    ("portal venous", r"portal\w*|portovenous|pv|pvp|venous|venos\w*|veineuse|ven|wrotn\w*|zyln\w*|venoz\w*"),
    ("delayed", r"delay\w*|late|eqp?|equilibrium|spat\w*|dp|transitional|hepatobiliary|hbp|tardiv\w*|opozn\w*|"
                r"pozdn\w*|gecikmi\w*|gec faz\w*"),
)
# The same in scripts the pattern above does not see: Russian and Greek (stems), and Japanese, Chinese
# (simplified and traditional) and Korean, whose words are not spaced apart; looked for anywhere in
# the description in lower case (NFKC, so half-width forms match too).
SCRIPT_PHASE_WORDS = (
    ("before contrast", ("нативн", "бесконтраст", "без контраст", "χωρις σκιαγραφ", "単純", "非造影", "造影前",
                         "平扫", "平掃", "비조영", "조영전")),
    ("arterial", ("артериальн", "αρτηριακ", "動脈相", "早期相", "動脈期", "动脉期", "동맥기", "동맥상")),
    ("portal venous", ("портальн", "венозн", "воротн", "φλεβικ", "πυλαι", "門脈相", "門脈期", "门脉期", "门静脉期",
                       "門靜脈期", "静脈相", "静脉期", "靜脈期", "문맥기", "정맥기")),
    ("delayed", ("отсроченн", "отложенн", "равновесн", "поздн", "καθυστερ", "平衡相", "平衡期", "遅延相", "後期相",
                 "延迟期", "延遲期", "평형기", "지연기")),
)
PHASE_PREFERENCE = {"portal venous": 3, "delayed": 2, None: 2, "arterial": 1, "before contrast": 0}
# Series acquired within this many seconds of each other are of one scan (reconstructions of one helix,
# which takes up to about 15 s); a study's contrast phases lie 20 s and more apart.
SAME_SCAN_S = 20.0
# The phase counts for a series that covers a liver's height, or half the longest series (not a
# bolus-tracking series at one level, nor a few slices of a partial reconstruction).
COVER_MM = 150.0


def contrast_phase(description: str, image_type: Sequence[str] = ()) -> Optional[str]:
    """The contrast phase a series description names, or None. A dual-energy CT's virtual
    non-contrast image ("PV VNC", or Image Type MAT_REMOVED) is taken for one before contrast."""
    if is_virtual_non_contrast(description, image_type):
        return "before contrast"
    text = words_of(description)
    for phase, words in PHASE_WORDS:
        if re.search(rf" (?:{words}) ", text):
            return phase
    text = plain_text(unicodedata.normalize("NFKC", description))
    for phase, script_words in SCRIPT_PHASE_WORDS:
        if any(word in text for word in script_words):
            return phase
    return None


class Rank(NamedTuple):
    """How good a candidate series is, compared value by value in this order (the greater wins)."""
    referenced: bool  # by a DICOM SEG or RT structure set in the folder: the series the case is about
    axial_volume: bool
    ct_image: bool  # not a dual-energy CT's material map
    phase: int  # PHASE_PREFERENCE, -1 for a series too short to count
    plain: bool  # a soft-tissue reconstruction, not a sharp one (lung, bone) or a projection (MIP)
    energy: float  # minus how far a dual-energy image lies from a conventional one (keV or kV)
    scan: int  # the order of its scan by acquisition time: of phases no description tells apart, the later
    axial_images: int
    images: int
    acquisition: int  # of two acquisitions in one series, the later (a portal venous phase after an arterial one)
    number: int  # else the series numbered last: scanners number a later contrast phase after an earlier one


def choose_ct_series(scan: FolderScan, series: Optional[str | int] = None) -> SeriesInfo:
    """The CT series to segment: `series` (UID, number or description) or the best candidate.

    Without `series`, a series referenced by a DICOM SEG in the folder comes first (it is the one
    the case is about), then an axial volume in the contrast phase the model is made for (by its
    description, see PHASE_WORDS), then the later acquired (of phases no description names), then the
    one with the most axial slices, then the one numbered last. The choice is logged.
    CT series of several patients or studies, none referenced, are refused: there the choice is
    the user's.
    """
    images = [s for s in scan.series if s.modality.upper() not in NON_IMAGE_MODALITIES]
    if not images:
        _raise_no_images(scan)
    if series is not None:
        chosen = _select(scan.folder, images, series)
        _require_ct(chosen)
        _warn_of_a_material_map(scan.folder, chosen)
        return chosen
    ct = [s for s in images if s.modality.upper() == "CT"]
    if not ct:
        _require_ct(images[0])
    referenced = {uid for s in scan.series for uid in s.referenced_series_uids}
    if not referenced & {s.uid for s in ct}:
        _refuse_several_patients_or_studies(scan.folder, ct)

    scan_order = _scan_order([s.acquired_s for s in ct])
    extents = [s.extent_mm for s in ct if s.is_axial and s.extent_mm is not None]
    least_cover = min(COVER_MM, 0.5 * max(extents)) if extents else 0.0

    def rank(s: SeriesInfo) -> Rank:
        covers = s.extent_mm is None or s.extent_mm >= least_cover
        phase = PHASE_PREFERENCE[contrast_phase(s.description, s.image_type)] if s.is_axial_volume and covers else -1
        return Rank(s.uid in referenced, s.is_axial_volume, _material_map_evidence(s) is None, phase,
                    not (is_sharp(s.description, s.kernel) or is_projection(s.description, s.image_type)),
                    -(energy_offset(s.description, s.kev) or 0.0), scan_order.get(s.acquired_s, 0),
                    s.images if s.is_axial else 0, s.images, s.acquisition or 0,
                    s.number if s.number is not None else -1)

    ct.sort(key=rank, reverse=True)
    chosen = ct[0]
    if len(ct) > 1:
        others = "; ".join(f"{s.label} ({s.images} slices)" for s in ct[1:])
        LOG.info("%s: chose %s: %s; not chosen: %s. Pass the series UID, number or description (with "
                 ":ACQUISITION for one of several in a series) to choose another", scan.folder, chosen.label,
                 _why_chosen(chosen, ct[1], rank), others)
        if _alike(rank(ct[1]), rank(chosen)) and ct[1].uid != chosen.uid:
            LOG.warning("%s: %s and %s are equally good candidates; chose the one numbered last, as a later contrast "
                        "phase is. Pass the series to be sure", scan.folder, chosen.label, ct[1].label)
    _warn_of_a_material_map(scan.folder, chosen)
    non_ct = [s for s in images if s.modality.upper() != "CT"]
    for s in non_ct:
        LOG.info("%s: left out %s: modality %s, not CT", scan.folder, s.label, s.modality or "unknown")
    return chosen


def _scan_order(times: list[Optional[float]]) -> dict[Optional[float], int]:
    """Each acquisition time's scan, numbered in time order: a time more than SAME_SCAN_S after the one
    before it starts the next scan. A liver CT's phases follow the contrast (before it, arterial,
    portal venous, delayed), so where no description names them the later scan is the one with the
    liver enhanced, not the one before contrast that is often numbered first."""
    order: dict[Optional[float], int] = {}
    known = sorted({t for t in times if t is not None})
    for before, time in zip([None] + known, known):
        order[time] = 0 if before is None else order[before] + (time - before > SAME_SCAN_S)
    return order


def _material_map_evidence(s: SeriesInfo) -> Optional[str]:
    return material_map_evidence(s.description, s.image_type, s.rescale_type)


def _warn_of_a_material_map(folder: Path, chosen: SeriesInfo) -> None:
    evidence = _material_map_evidence(chosen)
    if evidence:
        LOG.warning("%s: %s is a material map of a dual-energy CT (iodine, Z effective or electron density, by %s), "
                    "whose values are no Hounsfield units: the model is made for a CT image; pass the conventional "
                    "or a 70 keV series", folder, chosen.label, evidence)


def _alike(first: Rank, second: Rank) -> bool:
    """Whether two ranks differ in nothing but the last tie-breaks: acquisition and series number."""
    return first._replace(acquisition=0, number=0) == second._replace(acquisition=0, number=0)


def _why_chosen(chosen: SeriesInfo, runner_up: SeriesInfo, rank) -> str:
    """Why `chosen` was ranked before `runner_up`: by the first of their `Rank`s' values that differs."""
    first, second = rank(chosen), rank(runner_up)
    if first.referenced:
        return "referenced by the DICOM SEG (or RTSTRUCT) in the folder"
    if _alike(first, second) and chosen.uid == runner_up.uid:
        return f"the later acquisition of its series, {chosen.acquisition}"
    decided = next((name for name in Rank._fields if getattr(first, name) != getattr(second, name)), None)
    if decided == "ct_image":
        return (f"a CT image, where {runner_up.label} is a material map of a dual-energy CT (by "
                f"{_material_map_evidence(runner_up)})")
    if decided == "phase" and second.phase < 0:  # the phase of a series too short to count
        return (f"it covers {chosen.extent_mm or 0:.1f} mm along the body, {runner_up.label} only "
                f"{runner_up.extent_mm or 0:.1f} mm")
    if decided == "phase":
        def named(s: SeriesInfo) -> str:
            phase = contrast_phase(s.description, s.image_type)
            return f"the {phase} phase" if phase else "a phase its description does not name"
        return (f"{named(chosen)}, before {named(runner_up)} ({runner_up.label}): the model is made for a liver "
                "enhanced by contrast, best in the portal venous phase")
    if decided == "plain" and is_projection(runner_up.description, runner_up.image_type):
        return f"a plain reconstruction, where {runner_up.label} is of intensity projections (MIP)"
    if decided == "plain":
        return (f"a soft-tissue reconstruction, where {runner_up.label} is a sharp one for the lungs or bones (kernel "
                f"{runner_up.kernel or 'not given'}), whose noise the model did not learn")
    if decided == "scan":
        return (f"acquired after {runner_up.label} ({_clock(chosen.acquired_s)} against "
                f"{_clock(runner_up.acquired_s)}), as a later contrast phase: the model is made for a liver enhanced "
                "by contrast, and a study's phases no description names follow the contrast in time")
    if decided == "energy":
        return (f"of a dual-energy CT's images, the one nearest a conventional CT image in energy (70 keV, or "
                f"120 kV), {runner_up.label} lying farther from it")
    if decided == "number":
        return f"numbered after {runner_up.label}, where nothing else tells them apart"
    return f"the most axial slices ({chosen.images})"


def _clock(seconds: Optional[float]) -> str:
    """A time of day as a message shows it (14:39:58)."""
    if seconds is None:
        return "no time given"
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def _refuse_several_patients_or_studies(folder: Path, ct: list[SeriesInfo]) -> None:
    """CT series of several patients, or of several studies (a baseline and a follow-up on one CD),
    leave no best candidate: which one to segment is the user's choice, not a guess. Only axial
    volumes count: a study's scout or dose screen alone does not make it a candidate."""
    volumes = [s for s in ct if s.is_axial_volume]
    exam = _exams(folder, volumes)
    for what, key in (("patients", lambda s: s.patient_id), ("studies", lambda s: exam.get(s.study_uid, ""))):
        groups: dict[str, list[SeriesInfo]] = {}
        for s in volumes:
            if key(s):  # anonymised files may lack the element: those do not tell groups apart
                groups.setdefault(key(s), []).append(s)
        if len(groups) > 1:
            listing = "; ".join(f"{_group_name(what, members[0])}: " +
                                ", ".join(f"{s.label} ({s.images} slices)" for s in members)
                                for members in sorted(groups.values(), key=lambda m: m[0].study_date))
            raise InputError(f"holds the CT series of {len(groups)} {what} ({listing})", folder,
                             "give the folder of one, or pass --series with the UID of the series to segment")


def _exams(folder: Path, volumes: list[SeriesInfo]) -> dict[str, str]:
    """Each study UID -> the first study UID of its exam. Studies whose series share a frame of
    reference (one patient position: one session on the scanner) are one exam, which an anonymiser
    that gives each series a study of its own has split (RadCTTACEomics_0697's two phases); a
    baseline and a follow-up lie in frames of their own."""
    exam: dict[str, str] = {}
    first_study_in_frame: dict[str, str] = {}
    for s in volumes:
        if not s.study_uid:
            continue
        exam.setdefault(s.study_uid, s.study_uid)
        if not s.frame_of_reference_uid:
            continue
        other = first_study_in_frame.setdefault(s.frame_of_reference_uid, s.study_uid)
        joined, into = exam[s.study_uid], exam[other]
        if joined != into:
            LOG.info("%s: %s is of another study than %s but shares its frame of reference: taken as one exam",
                     folder, s.label, next(v.label for v in volumes if v.study_uid == other))
            for study, name in exam.items():
                if name == joined:
                    exam[study] = into
    return exam


def _group_name(what: str, series: SeriesInfo) -> str:
    if what == "patients":
        return f"patient '{series.patient_id}'"
    date = series.study_date
    return f"study of {date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 and date.isdigit() else "undated study"


def _select(folder: Path, images: list[SeriesInfo], wanted: str | int) -> SeriesInfo:
    text = str(wanted).strip()
    matches = _matching(images, text)
    head, colon, tail = text.rpartition(":")  # '7:2', 'UID:2': acquisition 2 of that series (UIDs hold no colon)
    if not matches and colon and head and tail.isdigit():
        matches = [s for s in _matching(images, head) if s.acquisition == int(tail)]
    available = "; ".join(f"{s.label} ({s.images} images)" for s in images)
    if not matches:
        raise InputError(f"no series matches '{text}'; the folder holds: {available}", folder,
                         "give a series UID, number or description from that list")
    if len(matches) > 1:
        if len({s.uid for s in matches}) == 1:
            raise InputError(f"series '{text}' holds {len(matches)} acquisitions over the same positions: "
                             + "; ".join(s.label for s in matches), folder,
                             f"add the acquisition, e.g. {text}:{matches[-1].acquisition}")
        raise InputError(f"several series match '{text}': " + "; ".join(s.label for s in matches), folder,
                         "give the series UID instead")
    return matches[0]


def _matching(images: list[SeriesInfo], text: str) -> list[SeriesInfo]:
    """The series whose UID, else number, else description is `text`."""
    matches = [s for s in images if s.uid == text]
    if not matches and text.lstrip("-").isdigit():
        matches = [s for s in images if s.number == int(text)]
    if not matches:
        matches = [s for s in images if s.description.strip().lower() == text.lower()]
    return matches


def _require_ct(info: SeriesInfo) -> None:
    if info.modality.upper() != "CT" and info.sop_class_uid in CT_CLASSES:  # (damage tool, multiframe seed 37044)
        raise InputError(f"{info.label} has modality {info.modality or 'unknown'}, though its SOP class is "
                         f"{pydicom.uid.UID(info.sop_class_uid).name}: its header is damaged or was edited",
                         info.folder, "export the series again")
    if info.modality.upper() != "CT":
        raise InputError(f"{info.label} has modality {info.modality or 'unknown'}, not CT", info.folder,
                         "LiverLesionSeg segments CT images; give a CT series")


def _raise_no_images(scan: FolderScan) -> None:
    for series in scan.series:  # a CT's Modality damaged to a non-image one's (damage tool, dicom seed 36008)
        if series.sop_class_uid in CT_CLASSES:
            _require_ct(series)
    if scan.series:
        kinds = ", ".join(sorted({s.modality for s in scan.series}))
        raise InputError(f"holds only non-image DICOM objects ({kinds}), no CT series", scan.folder,
                         "give the folder that holds the CT slices")
    if scan.damaged:
        raise InputError(f"no readable DICOM files: {len(scan.damaged)} of its {len(scan.skipped)} files are "
                         f"{DAMAGED} (e.g. {scan.damaged[0].name})", scan.folder,
                         "copy or export the series again")
    if any(path.name.upper() == "DICOMDIR" for path in scan.skipped):
        # a disc's index without the images it lists (copied alone, or the image folders left behind)
        raise InputError(f"holds a DICOMDIR but none of the images it lists (no DICOM image among its "
                         f"{len(scan.skipped)} files)", scan.folder,
                         "copy the whole disc or folder, the DICOMDIR's image folders with it")
    packed = next((path for path in scan.skipped[:ARCHIVES_LOOKED_AT] if is_archive(path)), None)
    if packed is not None:  # the folder a download or a disc image was saved into
        raise InputError(f"no DICOM files found among its {len(scan.skipped)} files, but an archive or disc "
                         f"image, {packed.name}", scan.folder, f"give the archive itself ({packed})")
    if scan.skipped:
        raise InputError(f"no DICOM files found among its {len(scan.skipped)} files (e.g. {scan.skipped[0].name})",
                         scan.folder, "give a folder of DICOM CT slices, or a .nii/.nii.gz/.nrrd file")
    raise InputError("no DICOM files found: the folder is empty", scan.folder, "give a folder of DICOM CT slices")


def read_ct_folder(folder: str | os.PathLike, series: Optional[str | int] = None) -> Volume:
    """The axial CT series of a folder as a `Volume` in HU (see `choose_ct_series`)."""
    scan = scan_folder(folder)
    return read_chosen_series(scan, choose_ct_series(scan, series))


def read_chosen_series(scan: FolderScan, chosen: SeriesInfo) -> Volume:
    """`read_series`, where a gap in the slices may be one of the scan's damaged files, or slices
    filed under another SeriesInstanceUID: it says so."""
    damaged = (f"the folder also holds {len(scan.damaged)} {DAMAGED}, e.g. "
               f"{scan.damaged[0].name}, perhaps the missing slice(s); export the series again") if scan.damaged else ""
    try:
        volume = read_series(chosen)
    except GeometryError as exc:
        in_a_gap = _gap_finder(chosen)
        strays = [s for s in _same_orientation(scan, chosen) if all(in_a_gap(f) for f in s.files)]
        turned = [f for f in chosen.left_out if in_a_gap(f)]
        if not (damaged or strays or turned):
            raise
        filed_apart = (f"the folder holds {strays[0].label} ({', '.join(f.name for f in strays[0].files[:3])}), "
                       "whose slices lie only where this series has gaps: perhaps the missing slice(s), given "
                       "another SeriesInstanceUID; export the series again") if strays else ""
        turned_apart = (f"the series' file {turned[0].name} lies in a gap between its slices but "
                        f"{_orientation_told(turned[0], chosen)}: perhaps the missing slice, its header damaged; "
                        "export the series again") if turned else ""
        hints = (turned_apart, filed_apart, damaged)
        raise GeometryError(exc.problem, exc.path, "; ".join(h for h in hints if h)) from None
    if damaged and volume.acquired is not None and volume.acquired.steps_vary():
        # a spacing that changes is resampled, unless the slices that would fill it may be damaged files
        raise GeometryError(f"the slice spacing varies ({volume.acquired.irregularity()})", chosen.folder, damaged)
    return volume


def _same_orientation(scan: FolderScan, chosen: SeriesInfo) -> list[SeriesInfo]:
    """The scan's other series of single-frame slices in `chosen`'s orientation."""
    if chosen.orientation is None or chosen.multiframe:
        return []
    return [s for s in scan.series if s is not chosen and s.files and not s.multiframe
            and s.orientation is not None and np.allclose(s.orientation, chosen.orientation, atol=1e-3)]


def _gap_finder(chosen: SeriesInfo) -> Callable[[Path], bool]:
    """Whether a slice file lies in a gap of `chosen` (a step over 1.5 times its usual one), as slices
    given another UID by an export or an edit, or a slice whose orientation was damaged, do; a phase
    over the same range has slices everywhere. Read on the error path only (headers of `chosen`)."""
    if chosen.orientation is None or chosen.multiframe:
        return lambda path: False
    along = np.sort([height for height in (slice_height(f, chosen.orientation) for f in chosen.files)
                     if height is not None])
    if len(along) < 3:
        return lambda path: False
    steps = np.diff(along)
    gaps = [(low, high) for low, high, step in zip(along, along[1:], steps) if step > 1.5 * np.median(steps)]

    def in_a_gap(path: Path) -> bool:
        height = slice_height(path, chosen.orientation)
        return height is not None and any(low + POSITION_TOLERANCE_MM < height < high - POSITION_TOLERANCE_MM
                                          for low, high in gaps)

    return in_a_gap


def _orientation_told(path: Path, chosen: SeriesInfo) -> str:
    """Why a slice of `chosen` was left out of it: its orientation, unusable or another."""
    written = dcmread(path, stop_before_pixels=True, specific_tags=["ImageOrientationPatient"])
    value = written.get("ImageOrientationPatient")
    if value is None or str(value) == "":
        return "has no ImageOrientationPatient"
    if orientation_of(written) is None:
        return f"has an unusable ImageOrientationPatient {described(value, 6)}"
    return f"its ImageOrientationPatient {described(value, 6)} is not the series' {in_brackets(chosen.orientation)}"


def choose_ct_file(path: str | os.PathLike) -> Optional[tuple[FolderScan, SeriesInfo]]:
    """The CT series in one DICOM file (a multi-frame image), or None when the file is not DICOM."""
    series, skipped = scan_files([Path(path)])
    if not series and has_dicom_prefix(Path(path)):  # read, but its header holds no image's elements
        raise InputError("is a DICOM file whose header names no series and no image position (no "
                         "SeriesInstanceUID, no ImagePositionPatient): damaged, or not an image", path,
                         "export the series again")
    if not series:
        return None
    kinds = {s.modality.upper() for s in series}
    if kinds <= NON_IMAGE_MODALITIES:  # a segmentation or report given where its CT belongs
        measured = kinds & {"SEG", "RTSTRUCT"}
        raise InputError(f"is a DICOM {'/'.join(sorted(kinds))} object, not a CT image", path,
                         "give the folder of the CT series" + (
                             f"; to measure this segmentation: liverlesionseg measure CT_FOLDER {Path(path).name}"
                             if measured else ""))
    scan = FolderScan(Path(path).parent, series, skipped)
    chosen = choose_ct_series(scan)
    return (scan, chosen) if chosen.multiframe else _series_of_the_slice(Path(path), chosen)


def _frames_described(path: Path) -> int:
    """How many frames a DICOM file's PerFrameFunctionalGroupsSequence describes (0 where none)."""
    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["PerFrameFunctionalGroupsSequence"])
        return len(header.get("PerFrameFunctionalGroupsSequence") or [])
    except Exception:  # a damaged header: the refusal of a single slice stands
        return 0


def _series_of_the_slice(path: Path, given: SeriesInfo) -> tuple[FolderScan, SeriesInfo]:
    """The whole series of the one slice `path` (picked in a file dialog, say) from the slices beside
    it, as 3D Slicer loads a series from one of its files; refused where none of them is of its series."""
    scan = scan_folder(path.parent)
    # by its SeriesInstanceUID: the file itself may be left out there (a copy of another, a reformat)
    candidates = [s for s in scan.series if (s.uid == given.uid if given.uid else path in s.files)]
    series = next((s for s in candidates if path in s.files), candidates[0] if len(candidates) == 1 else None)
    if series is None or len(series.files) < 2:
        described = _frames_described(path)
        if described > 1:  # an enhanced CT whose NumberOfFrames was lost: no slice at all
            raise InputError(f"is a multi-frame image ({described} per-frame descriptions) whose header gives no "
                             "NumberOfFrames", path, "the file is damaged; export the series again")
        raise InputError("is a single DICOM slice", path, "give the folder that holds the whole series")
    LOG.info("%s: a slice of %s (%d slices): its series read from the folder", path, series.label, len(series.files))
    return scan, series
