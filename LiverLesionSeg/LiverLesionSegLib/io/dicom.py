"""DICOM series: find them in a folder (headers only) and read one as a `Volume` (which one to
segment: `series_choice.py`; one file at a time: `dicom_files.py`).

Geometry comes from the headers, never from file names or file order: slices are sorted by their
position along the slice normal (ImageOrientationPatient row x column), the first of them gives
the origin and the k axis runs along the normal, towards increasing position. PixelSpacing is
[row spacing (j), column spacing (i)].

A series read is reported in `Volume.source`, as
``<series folder> (series <number> '<description>', UID <uid>)``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import GeometryError, InputError, first_line
from ..memory import check_image_fits
from ..volume import DIRECTION_TOLERANCE, POSITION_TOLERANCE_MM, Volume
from .dicom_files import (check_decoder, dcmread, decode_pixels, has_dicom_prefix, header_values, is_empty_slice_file,
                          list_files, read_dataset, starts_as_a_bare_dataset, tell_decoder_complaints)
from .regularize import IN_PLANE_TOLERANCE_PIXELS, MAX_TILT_DEGREES, STEP_TOLERANCE, Stack, stack_to_volume

LOG = logging.getLogger("LiverLesionSeg")

# The header elements discovery needs; reading only these keeps a scan of hundreds of files fast.
HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "ReferencedSeriesSequence", "NumberOfFrames", "SharedFunctionalGroupsSequence", "AcquisitionNumber",
    "ReferencedFrameOfReferenceSequence",  # an RTSTRUCT's referenced series lie in it
    "PatientID", "StudyInstanceUID", "StudyDate",  # a folder of several patients or studies is ambiguous
    "FrameOfReferenceUID",  # ... unless the studies share one: one exam, split by an anonymiser
]

# Modalities whose objects are not images to segment (they may sit beside the CT).
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "RTPLAN", "RTDOSE", "DOC"}

SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"  # .7, .7.1 ... .7.4: screenshots, not scans

# Fewer steps than this unlike the others are slices missing; as many or more, equal among
# themselves, are a section at another spacing (a thin-slice section), resampled (`regularize`).
SECTION_STEPS = 3
DAMAGED = "damaged, truncated or empty DICOM file(s)"
# Fewer single images than this sharing a series number stay apart (a scout or two); more are one
# series whose files were given UIDs of their own (`_join_scattered`).
SCATTERED_LEAST = 3
# CT values end near 30 000 HU (the extended scale, for metal); a value above MOST_HU is a negative
# one declared unsigned. Read signed, such values must be no lower than air and padding go.
MOST_HU = 32767
LEAST_HU = -4096
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
        return self.orientation is not None and _dominant_axis(_normal(self.orientation)) == 2

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


# --- discovery ---------------------------------------------------------------------------------

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
            raise InputError(f"damaged or truncated DICOM file ({first_line(exc)})", path,
                             "remove it or export the series again") from None
        return None


def _join_scattered(by_series: dict[str, list[tuple[Path, pydicom.Dataset]]]
                    ) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Single images that each carry a SeriesInstanceUID of their own, or none, but share a patient,
    modality, series number and description are one series: an anonymiser gave each file new UIDs
    (or removed them). Left apart they would be a folder of 2-D images. A warning tells of the join."""
    singles: dict[tuple, list[str]] = {}
    for uid, members in by_series.items():
        header = members[0][1]
        if len(members) == 1 and (_int_or_none(header.get("NumberOfFrames")) or 1) == 1:
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
        groups.setdefault(_int_or_none(member[1].get("AcquisitionNumber")), []).append(member)
    if len(groups) < 2 or None in groups:
        return [(None, members)]
    places = [{tuple(np.round(_position(header), 1)) for _, header in group} for group in groups.values()]
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
        normal = _normal(orientation)
        kept.sort(key=lambda m: (float(np.dot(_position(m[1]), normal)), str(m[0])))
    else:
        kept.sort(key=lambda m: (_int_or_none(m[1].get("InstanceNumber")) or 0, str(m[0])))
    referenced = [uid for _, header in members for uid in _referenced_series(header)]
    multiframe = {path: frames for path, header in kept
                  if (frames := _int_or_none(header.get("NumberOfFrames")) or 1) > 1}
    info = SeriesInfo(
        uid=uid,
        modality=str(first.get("Modality", "") or "").strip() or _modality_of_class(first),
        description=str(first.get("SeriesDescription", "") or ""),
        number=_int_or_none(first.get("SeriesNumber")),
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
    )
    if left_out:
        LOG.warning("%s: left out %d image(s) of another orientation than the %d kept (%s), e.g. %s",
                    info.label, len(left_out), len(kept), _orientation_name(orientation), left_out[0][0])
    return info


def _modality_of_class(header: pydicom.Dataset) -> str:
    """"CT" for the CT image classes (a file whose Modality element was removed), else empty."""
    ct_classes = (pydicom.uid.CTImageStorage, pydicom.uid.EnhancedCTImageStorage,
                  pydicom.uid.LegacyConvertedEnhancedCTImageStorage)
    return "CT" if str(header.get("SOPClassUID", "")) in ct_classes else ""


def _extent(kept: list[tuple[Path, pydicom.Dataset]], orientation) -> Optional[float]:
    """From the first single-frame slice to the last along the normal (mm), None where unknown."""
    if orientation is None or len(kept) < 2:
        return None
    along = [float(np.dot(_position(header), _normal(orientation))) for _, header in (kept[0], kept[-1])]
    extent = along[1] - along[0]
    return extent if np.isfinite(extent) else None


def _keep_majority_orientation(members):
    """Split into the largest group of one orientation and the rest (a reformat inside a series)."""
    groups: list[tuple[tuple[float, ...], list]] = []
    without = []
    for member in members:
        orientation = _orientation(member[1])
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
    groups.sort(key=lambda g: (-len(g[1]), -abs(_normal(g[0])[2])))
    orientation, kept = groups[0]
    left_out = [m for _, group in groups[1:] for m in group] + without
    return list(kept), left_out, orientation


# --- reading -----------------------------------------------------------------------------------

def read_series(info: SeriesInfo) -> Volume:
    """Read a series' pixels in HU with the geometry of its headers; refuse what is not a volume."""
    with header_values(info.folder):
        return _read_series(info)


def _read_series(info: SeriesInfo) -> Volume:
    where = info.folder
    if info.modality.upper() in NON_IMAGE_MODALITIES:
        raise InputError(f"{info.label} is a {info.modality} object, not an image series", where,
                         "give the CT series")
    if info.multiframe:
        return _read_multiframe(info)
    if len(info.files) < 2:
        raise GeometryError(f"{info.label} has a single slice: a 2-D image, not a volume", where,
                            "give a series of several axial slices")
    datasets, slices, read_signed, complaints = [], [], [], []
    for path in info.files:
        with header_values(path):
            ds = read_dataset(path)
            if not datasets:
                _check_series_fits(ds, len(info.files), where)
            _check_pixel_format(path, ds)
            pixels, signed = _signed_where_declared_unsigned(decode_pixels(path, ds, complaints), ds)
            slices.append(pixels)
            read_signed += [path] if signed else []
            del ds.PixelData  # keep the headers only: the decoded slice holds the pixels
            datasets.append(ds)
    tell_decoder_complaints(where, complaints)
    if read_signed:
        LOG.warning("%s: %d slice(s), e.g. %s, declare their pixels unsigned (PixelRepresentation 0), which would "
                    "make their air over %d HU: read as signed values, as they were written", where,
                    len(read_signed), read_signed[0].name, MOST_HU)
    stack = slice_stack(datasets, info.files, where)
    for ds, path in zip(datasets, info.files):
        refuse_a_negative_slope(ds, path)
    _warn_of_a_rescale_unlike_the_others(datasets, info.files, where)
    return stack_to_volume(_to_hounsfield(slices, datasets), stack, f"{where} ({info.label})", where)


def _read_multiframe(info: SeriesInfo) -> Volume:
    """A series held in one multi-frame file (see `multiframe.py`)."""
    from .multiframe import read_multiframe_ct

    path, frames = next(iter(info.multiframe.items()))
    if len(info.files) > 1:
        raise InputError(f"{info.label} is split over {len(info.files)} files, {len(info.multiframe)} of them "
                         "multi-frame", info.folder, "give the series as one multi-frame file or as one file per slice")
    header = dcmread(path, stop_before_pixels=True)
    if str(header.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE_PREFIX):
        raise InputError("a secondary capture image (screenshots), not a CT series", path,
                         "give the original CT series")
    _check_series_fits(header, frames, path)
    check_decoder(path, header)
    del header
    return read_multiframe_ct(path, frames, info.label)


def slice_stack(datasets: Sequence[pydicom.Dataset], files: Sequence[Path], where: Path) -> Stack:
    """Where single-frame slices (already sorted along their normal) lie; refuse what is no volume.

    A gantry tilt and a slice spacing that changes part-way are left to `regularize`; a slice
    missing, two at one place, or slices shifted unevenly in-plane are refused."""
    _check_same(datasets, files, where, ("Rows", "Columns"), "image size (rows, columns)")
    _check_same(datasets, files, where, ("PixelSpacing",), "pixel spacing", tolerance=1e-4)
    for path, ds in zip(files, datasets):
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in ds:
                raise GeometryError(f"{path.name} has no {keyword}, so its place in space is unknown", where,
                                    "give a series exported with its geometry (CT slices, not screenshots)")
        spacing = _numbers(ds, "PixelSpacing", 2)
        usable = {"ImagePositionPatient": _numbers(ds, "ImagePositionPatient", 3) is not None,
                  "ImageOrientationPatient": _orientation(ds) is not None,
                  "PixelSpacing": spacing is not None and min(spacing) > 0}
        for keyword, ok in usable.items():
            if not ok:
                raise GeometryError(f"{path.name} has an unusable {keyword} ({ds.get(keyword)!s:.60})", where,
                                    "the file is damaged or was edited; export the series again")
    orientation = _orientation(datasets[0])
    row_spacing, col_spacing = (float(v) for v in datasets[0].PixelSpacing)
    stack = Stack(np.array([_position(ds) for ds in datasets]), np.array(orientation[:3]), np.array(orientation[3:]),
                  (col_spacing, row_spacing), (int(datasets[0].Rows), int(datasets[0].Columns)))
    check_stack(stack, [f.name for f in files], where)
    return stack


def check_stack(stack: Stack, names: Sequence[str], where: str | os.PathLike) -> None:
    """Refuse slices (sorted along their normal, each named in `names`) that are no volume even
    resampled: two at one place, a slice missing, in-plane shifts that are not a gantry tilt's, or
    those of a tilt no gantry makes."""
    _check_steps(stack.positions @ stack.normal, names, where)
    if not stack.shear_is_even():
        worst = int(np.argmax(np.abs(stack.drift_mm).max(axis=1)))
        raise GeometryError(f"the slices are not stacked along their normal: {names[worst]} is shifted "
                            f"{np.abs(stack.drift_mm[worst]).max():.2f} mm in-plane from {names[0]}, and the "
                            "shifts are not those of a gantry tilt (in proportion to the distance)", where,
                            "the files may come from several acquisitions; give one series")
    if stack.is_tilted() and stack.tilt_degrees() > MAX_TILT_DEGREES:  # a NIfTI's sform of 1000 mm was taken for one
        raise GeometryError(f"the slices are shifted in-plane as a gantry tilted {stack.tilt_degrees():.1f} degrees "
                            "would shift them, far more than a CT gantry tilts (at most 30 degrees)", where,
                            "the slices' positions or the image's affine may be damaged; export the series again")


def _check_same(datasets, files, where, keywords, what, tolerance=0.0):
    def value(ds, path):
        values = []
        for keyword in keywords:
            try:
                values += [float(v) for v in np.atleast_1d(ds.get(keyword, [np.nan]))]
            except (ValueError, TypeError):  # text where numbers belong: "0,78125" written with a decimal comma
                raise GeometryError(f"{path.name} has an unusable {keyword} ({ds.get(keyword)!s:.60})", where,
                                    "the file is damaged or was edited; export the series again") from None
        return tuple(values)

    first = value(datasets[0], files[0])
    for path, ds in zip(files, datasets):
        other = value(ds, path)
        if len(other) != len(first) or not np.allclose(other, first, rtol=tolerance, atol=0, equal_nan=True):
            raise GeometryError(f"mixed {what}: {_fmt(first)} in {files[0].name} but {_fmt(other)} in {path.name}",
                                where, "the files do not form one volume; give one series of equal slices")


def _check_steps(along: np.ndarray, names: Sequence[str], where: str | os.PathLike) -> None:
    """Two slices at one place, or a few steps unlike the others (a slice missing), are refused;
    a section of at least `SECTION_STEPS` equal steps of another size is a spacing that changes."""
    steps = np.diff(along)
    duplicate = np.flatnonzero(steps < POSITION_TOLERANCE_MM)
    if duplicate.size:
        n = duplicate[0]
        frames = names[n].startswith("frame ")  # the frames of one multi-frame file
        raise GeometryError(f"two slices at the same position {along[n]:.3f} mm along the normal "
                            f"({names[n]} and {names[n + 1]})", where,
                            "export one phase or time point as its own file" if frames else
                            "remove the duplicate files; the folder may hold two copies or two acquisitions")
    typical = float(np.median(steps))
    unlike = np.abs(steps - typical) > POSITION_TOLERANCE_MM + STEP_TOLERANCE * typical
    edges = np.flatnonzero(np.diff(np.concatenate([[0], unlike.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        section = steps[start:stop]
        even = np.ptp(section) <= POSITION_TOLERANCE_MM + STEP_TOLERANCE * float(np.median(section))
        if stop - start < SECTION_STEPS or not even:
            n = start
            raise GeometryError(f"slice positions jump from {along[n]:.3f} to {along[n + 1]:.3f} mm "
                                f"({names[n]} to {names[n + 1]}): a {steps[n]:.3f} mm step where the "
                                f"others are {typical:.3f} mm, so a slice is missing or the spacing varies", where,
                                "give the complete series with evenly spaced slices")


def _check_pixel_format(path: Path, ds: pydicom.Dataset) -> None:
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
        raise InputError("a secondary capture image (a screenshot), not a CT slice", path,
                         "give the original CT series")
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if samples != 1:
        raise InputError(f"a colour image ({samples} samples per pixel, {photometric}), not a CT slice", path,
                         "give the original grey-scale CT series")
    if not photometric.startswith("MONOCHROME"):  # one sample per pixel: no colour image, a damaged header
        said = f"'{photometric}'" if photometric else "empty"
        raise InputError(f"its PhotometricInterpretation is {said}, where a slice of one sample per pixel, as a CT's "
                         "is, says MONOCHROME2", path, "the file is damaged or not a CT slice; export the series again")
    if "PixelData" not in ds:
        raise InputError("has no pixel data (a truncated file?)", path, "export the series again")
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if ds.get(keyword) not in (None, "") and _numbers(ds, keyword, 1) is None:
            raise InputError(f"has an unusable {keyword} ({ds.get(keyword)!s:.60})", path,
                             "the file is damaged or was edited; export the series again")


def _check_series_fits(first: pydicom.Dataset, count: int, where: Path) -> None:
    """Before decoding: `count` slices of the first one's size must fit in memory (the decoded
    slices and the volume made from them, float32 at worst)."""
    rows, columns = _int_or_none(first.get("Rows")), _int_or_none(first.get("Columns"))
    bits = _int_or_none(first.get("BitsAllocated")) or 16
    if rows and columns and rows > 0 and columns > 0:
        check_image_fits((count, rows, columns), max(bits, 8) // 8 + 4, where, copies=1)


def _signed_where_declared_unsigned(pixels: np.ndarray, ds: pydicom.Dataset) -> tuple[np.ndarray, bool]:
    """16-bit pixels that an export declared unsigned (PixelRepresentation 0) but wrote as signed
    values: read unsigned, air and padding (-1000, -2000) lie above 60 000 HU, which no CT value
    reaches. Such pixels are read signed (and True returned) where that puts every value at or above
    LEAST_HU; else they are left as declared."""
    if ds.get("PixelRepresentation") != 0 or pixels.dtype != np.uint16 or not pixels.size:
        return pixels, False
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if slope <= 0 or float(pixels.max()) * slope + intercept <= MOST_HU:
        return pixels, False
    signed = pixels.view(np.int16)
    if float(signed.min()) * slope + intercept < LEAST_HU:
        return pixels, False
    return signed, True


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)


def refuse_a_negative_slope(ds: pydicom.Dataset, path: str | os.PathLike) -> None:
    """An InputError where a RescaleSlope (of the header, or of a multi-frame file's functional
    groups) is below 0: the CT would be read negated, air bright and bone dark, and was segmented
    with only the caution that no liver was found. A CT's slope is 1 on nearly every scanner."""
    items = [ds, *(group for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
                   for group in ds.get(sequence, []))]
    for item in items:
        for transformation in [item, *item.get("PixelValueTransformationSequence", [])]:
            try:
                slope, _ = _rescale(transformation)
            except (TypeError, ValueError):  # not one number: the rescale's own reading tells it
                continue
            if slope < 0:
                raise InputError(f"its RescaleSlope is {slope:g}: its values would be read negated, not as "
                                 "Hounsfield units (a CT's slope is 1 on nearly every scanner)", path,
                                 "the header is damaged or was edited; export the series again")


def _warn_of_a_rescale_unlike_the_others(datasets: Sequence[pydicom.Dataset], files: Sequence[Path],
                                         where: str | os.PathLike) -> None:
    """A warning where a few slices' RescaleSlope or RescaleIntercept differ from the rest's: a CT's
    rescale is the same over a series, so theirs is likely an edit's or an export's fault, and those
    slices' values are off by the difference (an intercept of 0 among -1024: 1024 HU brighter)."""
    rescales = [_rescale(ds) for ds in datasets]
    usual = max(set(rescales), key=rescales.count)
    odd = [path for path, rescale in zip(files, rescales) if rescale != usual]
    if odd and len(odd) <= len(files) // 4:
        slope, intercept = rescales[list(files).index(odd[0])]
        LOG.warning("%s: %d of its %d slices, e.g. %s, have another rescale than the rest (slope %g and intercept %g "
                    "against %g and %g): their values may be off by the difference; check those slices", where,
                    len(odd), len(files), odd[0].name, slope, intercept, *usual)


def _to_hounsfield(slices: list[np.ndarray], datasets: Sequence[pydicom.Dataset]) -> np.ndarray:
    """Stack slices as [k, j, i] in HU: int16 when every slope is 1 and every intercept whole
    (and the values fit), float32 otherwise. Filled slice by slice to keep memory low."""
    slopes, intercepts = zip(*(_rescale(ds) for ds in datasets))
    dtype = np.float32
    if all(s == 1 for s in slopes) and all(b == round(b) for b in intercepts):
        low = min(int(p.min()) + int(b) for p, b in zip(slices, intercepts))
        high = max(int(p.max()) + int(b) for p, b in zip(slices, intercepts))
        if np.iinfo(np.int16).min <= low and high <= np.iinfo(np.int16).max:
            dtype = np.int16
    array = np.empty((len(slices),) + slices[0].shape, dtype)
    for k, (pixels, slope, intercept) in enumerate(zip(slices, slopes, intercepts)):
        if dtype == np.int16:
            array[k] = pixels.astype(np.int32) + int(intercept)
        else:
            array[k] = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return array


# --- placing slices by position (masks, SEG frames) ---------------------------------------------

def slice_indices(volume: Volume, positions: np.ndarray, what: str, where: str | os.PathLike) -> np.ndarray:
    """The k index of each image position (rows of LPS mm) on `volume`'s grid.

    Each position must be the volume's in-plane origin on one of its slices; anything else (an
    offset in-plane, a position between slices or outside the volume) is a GeometryError.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    ijk = (positions - np.asarray(volume.origin)) @ np.linalg.inv(volume.direction @ np.diag(volume.spacing)).T
    mm = np.abs(ijk) * np.asarray(volume.spacing)  # offsets in mm
    bad_plane = np.flatnonzero(np.maximum(mm[:, 0], mm[:, 1]) > max(POSITION_TOLERANCE_MM,
                                                                     IN_PLANE_TOLERANCE_PIXELS * min(volume.spacing[:2])))
    if bad_plane.size:
        n = bad_plane[0]
        raise GeometryError(f"{what} at {_fmt(positions[n])} is shifted in-plane by ({ijk[n, 0]:.2f}, {ijk[n, 1]:.2f}) "
                            f"voxels from the CT's grid", where, "give a mask made on this CT series")
    k = np.round(ijk[:, 2]).astype(int)
    off = np.abs(ijk[:, 2] - k) * volume.spacing[2]
    tolerance = POSITION_TOLERANCE_MM + STEP_TOLERANCE * volume.spacing[2]
    bad = np.flatnonzero((off > tolerance) | (k < 0) | (k >= volume.shape[0]))
    if bad.size:
        n = bad[0]
        raise GeometryError(f"{what} at {_fmt(positions[n])} does not fall on a CT slice (k = {ijk[n, 2]:.2f} of "
                            f"0..{volume.shape[0] - 1})", where, "give a mask made on this CT series")
    return k


def check_in_plane_grid(volume: Volume, orientation, pixel_spacing, shape, what: str, where) -> None:
    """A mask slice must share the CT's orientation, pixel spacing and size. `orientation` and
    `pixel_spacing` are the values as its header holds them: missing, text or a single number is told."""
    directions = number_values(orientation, 6)
    if directions is None or not np.allclose(np.column_stack([directions[:3], directions[3:]]),
                                             volume.direction[:, :2], atol=DIRECTION_TOLERANCE):
        raise GeometryError(f"{what} has orientation {_described(orientation, 6)}, the CT "
                            f"{_fmt(np.concatenate([volume.direction[:, 0], volume.direction[:, 1]]))}", where,
                            "give a mask made on this CT series")
    spacing = number_values(pixel_spacing, 2)
    spacing_ij = None if spacing is None else (spacing[1], spacing[0])
    if spacing_ij is None or not np.allclose(spacing_ij, volume.spacing[:2], rtol=1e-4, atol=0):
        shown = _described(pixel_spacing, 2) if spacing_ij is None else _fmt(spacing_ij)
        raise GeometryError(f"{what} has pixel spacing {shown}, the CT {_fmt(volume.spacing[:2])}",
                            where, "give a mask made on this CT series")
    if tuple(shape) != tuple(volume.shape[1:]):
        raise GeometryError(f"{what} has {shape[0]} x {shape[1]} pixels, the CT {volume.shape[1]} x {volume.shape[2]}",
                            where, "give a mask made on this CT series")


# --- small helpers -----------------------------------------------------------------------------

def _orientation(ds) -> Optional[tuple[float, ...]]:
    """ImageOrientationPatient (a multi-frame image's: in its shared functional groups): two unit
    vectors at right angles; None when missing or unusable."""
    values = _numbers(ds, "ImageOrientationPatient", 6)
    if values is None and ds.get("SharedFunctionalGroupsSequence"):
        plane = ds.SharedFunctionalGroupsSequence[0].get("PlaneOrientationSequence")
        values = _numbers(plane[0], "ImageOrientationPatient", 6) if plane else None
    if values is None:
        return None
    row, column = np.array(values[:3]), np.array(values[3:])
    if not (np.allclose([np.linalg.norm(row), np.linalg.norm(column)], 1, atol=1e-2)
            and abs(float(row @ column)) < 1e-2):
        return None
    return values


def slice_height(path: Path, orientation: Sequence[float]) -> Optional[float]:
    """A slice file's position along the normal of `orientation` (mm), its header read as the series
    reader reads it; None where the header gives none or cannot be read."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["ImagePositionPatient"])
    except Exception:  # a damaged header: the series reader tells what is wrong with it
        return None
    height = float(_position(ds) @ _normal(orientation))
    return None if np.isnan(height) else height


def _position(ds) -> np.ndarray:
    values = _numbers(ds, "ImagePositionPatient", 3)
    return np.full(3, np.nan) if values is None else np.array(values)


def _numbers(ds, keyword: str, count: int) -> Optional[tuple[float, ...]]:
    """A header value of `count` finite numbers, or None (missing, text, another length)."""
    return number_values(ds.get(keyword), count)


def number_values(value, count: int) -> Optional[tuple[float, ...]]:
    """A header element's value as `count` finite numbers, or None (missing, text, another length)."""
    try:
        values = tuple(float(v) for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue))
                                          else [value]))
    except (TypeError, ValueError, OverflowError):
        return None
    if len(values) != count or not all(np.isfinite(values)):
        return None
    return values


def _normal(orientation: Sequence[float]) -> np.ndarray:
    normal = np.cross(orientation[:3], orientation[3:])
    return normal / np.linalg.norm(normal)


def _dominant_axis(vector: np.ndarray) -> int:
    return int(np.argmax(np.abs(vector)))


def _orientation_name(orientation) -> str:
    if orientation is None:
        return "no orientation"
    return ("sagittal", "coronal", "axial")[_dominant_axis(_normal(orientation))]


def _int_or_none(value) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _described(value, count: int) -> str:
    """A header value as a message shows it: its numbers, or what it holds instead."""
    numbers = number_values(value, count)
    if numbers is not None:
        return _fmt(numbers)
    return "none" if value is None or str(value) == "" else f"'{value}' ({count} numbers needed)"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"
