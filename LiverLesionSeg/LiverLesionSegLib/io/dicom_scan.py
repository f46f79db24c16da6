"""DICOM series found in a folder from their headers alone: files grouped by series (and by
acquisition where two phases share one), each series' images sorted along its slice normal, a
reformat of another orientation left out, images an anonymiser scattered joined (reading one:
`dicom.py`; which one to segment: `series_choice.py`)."""

from __future__ import annotations

import filecmp
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..volume import DIRECTION_TOLERANCE
from .dicom_files import (dcmread, has_dicom_prefix, header_values, is_empty_slice_file, list_files,
                          pydicom_fault, starts_as_a_bare_dataset)
from .dicom_values import (acquisition_time_of, dominant_axis, int_or_none, normal_of, number_values, orientation_name,
                           orientation_of, own_or_shared, position_of, text_as_written, values_of)

LOG = logging.getLogger("LiverLesionSeg")

# The header elements discovery needs; reading only these keeps a scan of hundreds of files fast.
HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "ReferencedSeriesSequence", "NumberOfFrames", "SharedFunctionalGroupsSequence", "AcquisitionNumber",
    "ReferencedFrameOfReferenceSequence",  # an RTSTRUCT's referenced series lie in it
    "PatientID", "StudyInstanceUID", "StudyDate",  # a folder of several patients or studies is ambiguous
    "FrameOfReferenceUID",  # ... unless the studies share one: one exam, split by an anonymiser
    "ConvolutionKernel",  # a lung or bone reconstruction is not chosen over a soft-tissue one
    "ImageType", "RescaleType", "MonoenergeticEnergyEquivalent",  # ... nor a projection or a material map
    "AcquisitionTime", "AcquisitionDateTime",  # of contrast phases no description names, the later
]

# Modalities whose objects are not images to segment (they may sit beside the CT).
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "RTPLAN", "RTDOSE", "DOC"}
LABEL_MODALITIES = ("SEG", "RTSTRUCT")  # a segmentation's, which names the series it was made on
CT_CLASSES = (pydicom.uid.CTImageStorage, pydicom.uid.EnhancedCTImageStorage,
              pydicom.uid.LegacyConvertedEnhancedCTImageStorage)

DAMAGED = "damaged, truncated or empty DICOM file(s)"
# Fewer single images than this sharing a series number stay apart (a scout or two); more are one
# series whose files were given UIDs of their own (`_join_scattered`).
SCATTERED_LEAST = 3
# A DICOM SEG, SR or RT structure set over a series shares these with each of its images.
SHARED_IDENTIFIERS = ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID")
NO_UID = "no SeriesInstanceUID: "  # the key of an image without one, while files are grouped


@dataclass
class SeriesInfo:
    """One DICOM series found in a folder, its image files sorted along the slice normal."""

    uid: str
    modality: str
    description: str
    number: Optional[int]
    files: list[Path]  # sorted by position along the normal (by instance number when there is none)
    orientation: Optional[tuple[float, ...]]  # ImageOrientationPatient of the kept files
    left_out: list[Path] = field(default_factory=list)  # images of another orientation (reformats)
    sop_instance_uids: list[str] = field(default_factory=list)  # in the order of `files`
    referenced_series_uids: list[str] = field(default_factory=list)  # of a SEG or an RTSTRUCT
    multiframe: dict[Path, int] = field(default_factory=dict)  # among `files`: those of several frames, and how many
    # Where one series holds several acquisitions over the same positions (phases stored under one
    # UID), each is a SeriesInfo of its own: its AcquisitionNumber; None otherwise.
    acquisition: Optional[int] = None
    patient_id: str = ""
    study_uid: str = ""
    study_date: str = ""  # YYYYMMDD as DICOM writes it, or empty
    frame_of_reference_uid: str = ""
    # Of the identifiers an output must share with every image (SHARED_IDENTIFIERS), those whose value
    # differs between the kept images (the values above are the first image's).
    differing_uids: tuple[str, ...] = ()
    # From the first slice to the last along the normal (mm); None for a multi-frame file or
    # slices without usable positions.
    extent_mm: Optional[float] = None
    kernel: str = ""  # ConvolutionKernel, its values joined by a backslash as DICOM writes them
    image_type: tuple[str, ...] = ()  # ImageType's values in upper case: ORIGINAL, PRIMARY, AXIAL, VMI ...
    sop_class_uid: str = ""  # the first image's
    rescale_type: str = ""  # the units of its values: HU, or a material map's (MGML, Z_EFF ...); often not given
    kev: Optional[float] = None  # a virtual monoenergetic image's MonoenergeticEnergyEquivalent
    acquired_s: Optional[float] = None  # when its first image was acquired, in seconds after midnight

    @property
    def images(self) -> int:
        """How many slices the series holds: a multi-frame file counts its frames."""
        return len(self.files) + sum(frames - 1 for frames in self.multiframe.values())

    @functools.cached_property
    def folder(self) -> Path:
        """The folder holding the files (their common parent; worked out once: messages and
        writers ask for it per frame)."""
        if not self.files:
            return Path(".")
        return Path(os.path.commonpath([str(f.parent) for f in self.files]))

    @property
    def is_axial(self) -> bool:
        return self.orientation is not None and dominant_axis(normal_of(self.orientation)) == 2

    @property
    def is_axial_volume(self) -> bool:
        """Axial and more than one slice: a volume to segment, not a scout or a single image."""
        return self.is_axial and self.images > 1

    @property
    def label(self) -> str:
        """How messages and `Volume.source` name the series."""
        parts = [f"series {self.number}" if self.number is not None else "series",
                 f"'{self.description}'" if self.description else "",
                 f"acquisition {self.acquisition}" if self.acquisition is not None else ""]
        return " ".join(p for p in parts if p) + (f", UID {self.uid}" if self.uid else ", no SeriesInstanceUID")


@dataclass
class FolderScan:
    """Every series under a folder, and the files that were not DICOM images."""

    folder: Path
    series: list[SeriesInfo]
    skipped: list[Path]  # not DICOM, or DICOM without a series (DICOMDIR)
    damaged: list[Path] = field(default_factory=list)  # among `skipped`: DICOM files too damaged to place


def find_series(folder: str | os.PathLike) -> list[SeriesInfo]:
    """Every DICOM series under `folder` (recursive), read from the headers only."""
    return scan_folder(folder).series


def scan_folder(folder: str | os.PathLike) -> FolderScan:
    folder = Path(folder)
    if not folder.exists():
        raise InputError("does not exist", folder, "check the path")
    if not folder.is_dir():
        raise InputError("is not a folder", folder, "give the folder that holds the DICOM series")
    files = list_files(folder)
    series, skipped = scan_files(files)
    if skipped:
        LOG.debug("%s: %d of %d files are not DICOM images and were skipped", folder, len(skipped), len(files))
    # A DICOM file (it has the DICM mark) without a series is truncated or damaged (DICOMDIR is the
    # exception), and an empty file named as the slices are is a copy or download that failed.
    damaged = [path for path in skipped if path.name.upper() != "DICOMDIR" and
               (has_dicom_prefix(path) or is_empty_slice_file(path))]
    if damaged:
        LOG.warning("%s: left out %d %s that name no series, e.g. %s", folder, len(damaged), DAMAGED, damaged[0])
    return FolderScan(folder, series, skipped, damaged)


def scan_files(files: Sequence[Path]) -> tuple[list[SeriesInfo], list[Path]]:
    """Group files by SeriesInstanceUID (`_join_scattered` joins images an anonymiser gave a series
    each); return the series and the files that were skipped."""
    by_series: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    skipped = []
    for path in files:
        header = read_header(path)
        if header is not None and "SeriesInstanceUID" in header:
            by_series.setdefault(str(header.SeriesInstanceUID), []).append((path, header))
        elif header is not None and "ImagePositionPatient" in header:  # an image whose series UID was removed
            by_series[f"{NO_UID}{path}"] = [(path, header)]
        else:
            skipped.append(path)
    by_series = {uid: _without_copies(members) for uid, members in by_series.items()}
    series = []
    for uid, members in _join_scattered(by_series).items():
        with header_values(members[0][0]):
            series += [_series_info("" if uid.startswith(NO_UID) else uid, group, acquisition)
                       for acquisition, group in _acquisitions(members)]
    series.sort(key=lambda s: (s.number is None, s.number or 0, s.description, s.uid, s.acquisition or 0))
    return series, skipped


def read_header(path: Path) -> Optional[pydicom.Dataset]:
    """The discovery elements of a DICOM file, or None when the file is not DICOM."""
    try:
        return dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many kinds on damaged files
        if has_dicom_prefix(path) or starts_as_a_bare_dataset(path):
            raise InputError(f"damaged or truncated DICOM file ({pydicom_fault(exc)})", path,
                             "remove it or export the series again") from None
        return None


def _without_copies(members: list[tuple[Path, pydicom.Dataset]]) -> list[tuple[Path, pydicom.Dataset]]:
    """A series' files but for byte-for-byte copies of one of them ("IM0001 - Copy", a disc copied or
    an export saved twice into one folder): one SOPInstanceUID and the same bytes are one image, read
    once, and the copies logged. Files of one UID whose bytes differ are left to the checks that follow."""
    first_of: dict[str, Path] = {}
    copies: dict[Path, Path] = {}
    for path, header in sorted(members, key=lambda m: (len(m[0].name), str(m[0]))):  # the original's name first
        uid = str(header.get("SOPInstanceUID", "") or "")
        original = first_of.setdefault(uid, path) if uid else path
        if original != path and filecmp.cmp(original, path, shallow=False):
            copies[path] = original
    if not copies:
        return members
    copy, original = next(iter(copies.items()))
    LOG.warning("%s: left out %d file(s) that are byte-for-byte copies of others (e.g. %s, a copy of %s): each image "
                "read once", copy.parent, len(copies), copy.name, original.name)
    return [member for member in members if member[0] not in copies]


def _join_scattered(by_series: dict[str, list[tuple[Path, pydicom.Dataset]]]
                    ) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Single images that each carry a SeriesInstanceUID of their own, or none, but share a patient,
    modality, series number and description are one series: an anonymiser gave each file new UIDs
    (or removed them). Left apart they would be a folder of 2-D images. A warning tells of the join."""
    singles: dict[tuple, list[str]] = {}
    for uid, members in by_series.items():
        header = members[0][1]
        if len(members) == 1 and (int_or_none(header.get("NumberOfFrames")) or 1) == 1:
            key = tuple("" if header.get(keyword) is None else str(header.get(keyword)).strip()
                        for keyword in ("PatientID", "Modality", "SeriesNumber", "SeriesDescription"))
            singles.setdefault(key, []).append(uid)
    for (_, _, number, description), uids in singles.items():
        if len(uids) < SCATTERED_LEAST:
            continue
        joined = [member for uid in uids for member in by_series.pop(uid)]
        by_series[uids[0]] = joined
        kind = ("carry no SeriesInstanceUID (an anonymiser may have removed it)"
                if all(uid.startswith(NO_UID) for uid in uids)
                else "each carry a SeriesInstanceUID of their own (an anonymiser may have given each file new UIDs)")
        LOG.warning("%s: %d images %s but share series number %s '%s': read as one series",
                    Path(os.path.commonpath([str(path.parent) for path, _ in joined])), len(joined), kind,
                    number or "(none)", description)
    return by_series


def _acquisitions(members: list[tuple[Path, pydicom.Dataset]]) -> list[tuple[Optional[int], list]]:
    """A series' files split by AcquisitionNumber where several acquisitions cover the same
    positions (two phases under one UID); else the whole series, acquisition None. Scanners that
    number each rotation's slices as an acquisition of their own cover no position twice."""
    groups: dict[Optional[int], list] = {}
    for member in members:
        groups.setdefault(int_or_none(member[1].get("AcquisitionNumber")), []).append(member)
    if len(groups) < 2 or None in groups:
        return [(None, members)]
    places = [{tuple(np.round(position_of(header), 1)) for _, header in group} for group in groups.values()]
    if sum(len(p) for p in places) == len(set().union(*places)):  # no position in two acquisitions
        return [(None, members)]
    return sorted(groups.items(), key=lambda item: item[0])


def _referenced_series(header: pydicom.Dataset) -> list[str]:
    """The series a SEG (ReferencedSeriesSequence) or an RTSTRUCT (RTReferencedSeriesSequence,
    nested in its referenced frame of reference and study) was made on."""
    items = list(header.get("ReferencedSeriesSequence", []))
    for frame in header.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            items.extend(study.get("RTReferencedSeriesSequence", []))
    return [str(item.SeriesInstanceUID) for item in items if "SeriesInstanceUID" in item]


def _series_info(uid: str, members: list[tuple[Path, pydicom.Dataset]], acquisition: Optional[int] = None
                 ) -> SeriesInfo:
    first = members[0][1]
    kept, left_out, orientation = _keep_majority_orientation(members)
    if orientation is not None:
        normal = normal_of(orientation)
        kept.sort(key=lambda m: (float(np.dot(position_of(m[1]), normal)), str(m[0])))
    else:
        kept.sort(key=lambda m: (int_or_none(m[1].get("InstanceNumber")) or 0, str(m[0])))
    modality = str(first.get("Modality", "") or "").strip() or _modality_of_class(first)
    # the series a segmentation was made on; an image's own references (a Legacy Converted Enhanced CT's
    # to the slices it was made from) choose nothing
    referenced = ([uid for _, header in members for uid in _referenced_series(header)]
                  if modality.upper() in LABEL_MODALITIES else [])
    multiframe = {path: frames for path, header in kept
                  if (frames := int_or_none(header.get("NumberOfFrames")) or 1) > 1}
    info = SeriesInfo(
        uid=uid,
        modality=modality,
        description=text_as_written(str(first.get("SeriesDescription", "") or ""), first),
        number=int_or_none(first.get("SeriesNumber")),
        files=[path for path, _ in kept],
        orientation=orientation,
        left_out=[path for path, _ in left_out],
        sop_instance_uids=[str(header.get("SOPInstanceUID", "")) for _, header in kept],
        referenced_series_uids=list(dict.fromkeys(referenced)),
        multiframe=multiframe,
        acquisition=acquisition,
        patient_id=str(first.get("PatientID", "") or "").strip(),
        study_uid=str(first.get("StudyInstanceUID", "") or ""),
        study_date=str(first.get("StudyDate", "") or "").strip(),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "") or ""),
        differing_uids=tuple(keyword for keyword in SHARED_IDENTIFIERS
                             if len({str(header.get(keyword, "") or "") for _, header in kept}) > 1),
        extent_mm=None if multiframe else _extent(kept, orientation),
        kernel="\\".join(str(v).strip() for v in values_of(first.get("ConvolutionKernel") or "")),
        image_type=tuple(str(v).strip().upper() for v in values_of(first.get("ImageType") or [])),
        sop_class_uid=str(first.get("SOPClassUID", "") or ""),
        rescale_type=str(own_or_shared(first, "RescaleType", "PixelValueTransformationSequence") or "").strip(),
        kev=_number(own_or_shared(first, "MonoenergeticEnergyEquivalent", "MultienergyCTCharacteristicsSequence")),
        acquired_s=min((t for _, header in kept if (t := acquisition_time_of(header)) is not None), default=None),
    )
    unusable = [path for path, header in left_out if orientation_of(header) is None]
    other = [path for path, header in left_out if orientation_of(header) is not None]
    if other:
        LOG.warning("%s: left out %d image(s) of another orientation than the %d kept (%s), e.g. %s",
                    info.label, len(other), len(kept), orientation_name(orientation), other[0])
    if unusable:  # (damage tool, dicom seed 37015: a row of length 1e-30 was told as "another orientation")
        LOG.warning("%s: left out %d image(s) whose ImageOrientationPatient is missing or not two unit vectors at "
                    "right angles (a damaged header), e.g. %s", info.label, len(unusable), unusable[0])
    return info


def _number(value) -> Optional[float]:
    """A header value as one finite number, or None."""
    numbers = number_values(value, 1)
    return numbers[0] if numbers else None


def _modality_of_class(header: pydicom.Dataset) -> str:
    """"CT" for the CT image classes (a file whose Modality element was removed), else empty."""
    return "CT" if str(header.get("SOPClassUID", "")) in CT_CLASSES else ""


def _extent(kept: list[tuple[Path, pydicom.Dataset]], orientation) -> Optional[float]:
    """From the first single-frame slice to the last along the normal (mm), None where unknown."""
    if orientation is None or len(kept) < 2:
        return None
    along = [float(np.dot(position_of(header), normal_of(orientation))) for _, header in (kept[0], kept[-1])]
    extent = along[1] - along[0]
    return extent if np.isfinite(extent) else None


def _keep_majority_orientation(members):
    """Split into the largest group of one orientation and the rest (a reformat inside a series)."""
    groups: list[tuple[tuple[float, ...], list]] = []
    without = []
    for member in members:
        orientation = orientation_of(member[1])
        if orientation is None:
            without.append(member)
            continue
        for reference, group in groups:
            if np.allclose(reference, orientation, atol=DIRECTION_TOLERANCE):
                group.append(member)
                break
        else:
            groups.append((orientation, [member]))
    if not groups:
        return without, [], None
    # The largest group; on a tie the one closest to axial.
    groups.sort(key=lambda g: (-len(g[1]), -abs(normal_of(g[0])[2])))
    orientation, kept = groups[0]
    left_out = [m for _, group in groups[1:] for m in group] + without
    return list(kept), left_out, orientation

