"""DICOM series: read one as a `Volume` (found in a folder from their headers by `dicom_scan.py`;
which one to segment: `series_choice.py`; one file at a time: `dicom_files.py`).

Geometry comes from the headers, never from file names or file order: slices are sorted by their
position along the slice normal (ImageOrientationPatient row x column), the first of them gives
the origin and the k axis runs along the normal, towards increasing position. PixelSpacing is
[row spacing (j), column spacing (i)].

A series read is reported in `Volume.source`, as
``<series folder> (series <number> '<description>', UID <uid>)``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom

from ..errors import GeometryError, InputError
from ..memory import check_image_fits
from ..volume import DIRECTION_TOLERANCE, POSITION_TOLERANCE_MM, Volume, in_brackets
from .dicom_files import (check_decoder, check_has_pixel_data, dcmread, decode_pixels, header_values, read_dataset,
                          tell_decoder_complaints)
from .dicom_scan import NON_IMAGE_MODALITIES, SeriesInfo
from .dicom_values import described, int_or_none, normal_of, number_values, numbers_of, orientation_of, position_of
from .regularize import IN_PLANE_TOLERANCE_PIXELS, MAX_TILT_DEGREES, STEP_TOLERANCE, Stack, stack_to_volume

LOG = logging.getLogger("LiverLesionSeg")

SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"  # .7, .7.1 ... .7.4: screenshots, not scans

# Fewer steps than this unlike the others are slices missing; as many or more, equal among
# themselves, are a section at another spacing (a thin-slice section), resampled (`regularize`).
SECTION_STEPS = 3
# CT values end near 30 000 HU (the extended scale, for metal); a value above MOST_HU is a negative
# one declared unsigned. Read signed, such values must be no lower than air and padding go.
MOST_HU = 32767
LEAST_HU = -4096


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
        refuse_an_unusable_rescale(ds, path)
    _warn_of_a_rescale_unlike_the_others(datasets, slices, info.files, where)
    return stack_to_volume(_to_hounsfield(slices, datasets), stack, f"{where} ({info.label})", where)


def _read_multiframe(info: SeriesInfo) -> Volume:
    """A series held in one multi-frame file (see `multiframe.py`)."""
    from .multiframe import read_multiframe_ct

    path, frames = next(iter(info.multiframe.items()))
    if len(info.files) > 1:
        raise InputError(f"{info.label} is split over {len(info.files)} files, {len(info.multiframe)} of them "
                         "multi-frame", info.folder, "give the series as one multi-frame file or as one file per slice")
    with header_values(path):  # the file named, not its folder
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
        spacing = numbers_of(ds, "PixelSpacing", 2)
        usable = {"ImagePositionPatient": numbers_of(ds, "ImagePositionPatient", 3) is not None,
                  "ImageOrientationPatient": orientation_of(ds) is not None,
                  "PixelSpacing": spacing is not None and min(spacing) > 0}
        for keyword, ok in usable.items():
            if not ok:
                value = ds.get(keyword)
                empty = value is None or str(value) == ""
                said = f"an empty {keyword}" if empty else f"an unusable {keyword} ({value!s:.60})"
                raise GeometryError(f"{path.name} has {said}", where,
                                    "the file is damaged or was edited; export the series again")
    orientation = orientation_of(datasets[0])
    row_spacing, col_spacing = (float(v) for v in datasets[0].PixelSpacing)
    stack = Stack(np.array([position_of(ds) for ds in datasets]), np.array(orientation[:3]), np.array(orientation[3:]),
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
            for lacking, giving, lacking_ds in ((path, files[0], ds), (files[0], path, datasets[0])):
                missing = [keyword for keyword in keywords if lacking_ds.get(keyword) in (None, "")]
                if missing:  # not another value: none (was "mixed pixel spacing: … but (nan) in …")
                    raise GeometryError(f"{lacking.name} has no {missing[0]}, which {giving.name} gives", where,
                                        "the file is damaged or was edited; export the series again")
            raise GeometryError(f"mixed {what}: {in_brackets(first)} in {files[0].name} but {in_brackets(other)} in "
                                f"{path.name}", where,
                                "the files do not form one volume; give one series of equal slices")


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
    check_pixel_layout(path, ds)
    check_has_pixel_data(path, ds)
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if ds.get(keyword) not in (None, "") and numbers_of(ds, keyword, 1) is None:
            raise InputError(f"has an unusable {keyword} ({ds.get(keyword)!s:.60})", path,
                             "the file is damaged or was edited; export the series again")


def check_pixel_layout(path: Path, ds: pydicom.Dataset) -> None:
    """Refuse a header whose pixels cannot be a CT's grey values: colour, or bits no CT stores (a damaged
    header, told before the decoder meets it in its own words, or reads it as another image)."""
    samples = int_or_none(ds.get("SamplesPerPixel"))
    samples = 1 if samples is None else samples  # (none, or empty: pydicom's decoder names it as missing)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if samples != 1 and (samples != 3 or photometric.startswith("MONOCHROME")):  # no colour image's either
        raise InputError(f"its SamplesPerPixel is {samples} (PhotometricInterpretation {photometric or 'empty'}), "
                         "where a grey-scale image has 1 and a colour one 3: the header is damaged", path,
                         "export the series again")
    if samples != 1:
        raise InputError(f"a colour image ({samples} samples per pixel, {photometric}), not a CT slice", path,
                         "give the original grey-scale CT series")
    if not photometric.startswith("MONOCHROME"):  # one sample per pixel: no colour image, a damaged header
        said = f"'{photometric}'" if photometric else "empty"
        raise InputError(f"its PhotometricInterpretation is {said}, where a slice of one sample per pixel, as a CT's "
                         "is, says MONOCHROME2", path, "the file is damaged or not a CT slice; export the series again")
    allocated, bits = int_or_none(ds.get("BitsAllocated")), int_or_none(ds.get("BitsStored"))
    if allocated is not None and allocated not in (8, 16, 32):  # (damage tool, multiframe seed 41002: 64 ended in
        # highdicom's "'_CombinedPixelTransform' object has no attribute ..."; 24 was told in NumPy's words)
        raise InputError(f"its BitsAllocated is {allocated}, where an image of grey values allocates 8, 16 or 32 bits "
                         "a pixel: the header is damaged", path, "export the series again")
    if bits is not None and 0 < bits < 8:  # (damage tool, dicom seed 39024: a BitsStored of 1 read as a blank image)
        raise InputError(f"its BitsStored is {bits}, where a CT stores 8 to 16 bits a pixel: the header is damaged",
                         path, "export the series again")
    if bits is not None and allocated and bits > allocated:  # (a multi-frame image was read without a word)
        raise InputError(f"its BitsStored ({bits}) is more than its BitsAllocated ({allocated}): the header is damaged",
                         path, "export the series again")


def _check_series_fits(first: pydicom.Dataset, count: int, where: Path) -> None:
    """Before decoding: `count` slices of the first one's size must fit in memory (the decoded
    slices and the volume made from them, float32 at worst)."""
    rows, columns = int_or_none(first.get("Rows")), int_or_none(first.get("Columns"))
    bits = int_or_none(first.get("BitsAllocated")) or 16
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


def refuse_an_unusable_rescale(ds: pydicom.Dataset, path: str | os.PathLike) -> None:
    """An InputError where a RescaleSlope or RescaleIntercept (of the header, or of a multi-frame file's
    functional groups) is not finite (a multi-frame CT's slope of inf was told as values "not Hounsfield
    units", damage tool seed 36001), or a slope below 0: the CT would be read negated, air bright and
    bone dark, and was segmented with only the caution that no liver was found. A CT's slope is 1 on
    nearly every scanner."""
    items = [ds, *(group for sequence in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
                   for group in ds.get(sequence, []))]
    for item in items:
        for transformation in [item, *item.get("PixelValueTransformationSequence", [])]:
            try:
                slope, intercept = _rescale(transformation)
            except (TypeError, ValueError):  # not one number: the rescale's own reading tells it
                continue
            for keyword, value in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
                if not np.isfinite(value):
                    raise InputError(f"has an unusable {keyword} ({value:g})", path,
                                     "the file is damaged or was edited; export the series again")
            if slope < 0:
                raise InputError(f"its RescaleSlope is {slope:g}: its values would be read negated, not as "
                                 "Hounsfield units (a CT's slope is 1 on nearly every scanner)", path,
                                 "the header is damaged or was edited; export the series again")


def _warn_of_a_rescale_unlike_the_others(datasets: Sequence[pydicom.Dataset], slices: Sequence[np.ndarray],
                                         files: Sequence[Path], where: str | os.PathLike) -> None:
    """A warning where a few slices' RescaleSlope or RescaleIntercept differ from the rest's: a CT's
    rescale is the same over a series, so theirs is likely an edit's or an export's fault, and those
    slices' values are off by the difference (an intercept of 0 among -1024: 1024 HU brighter). One
    whose rescale puts its values beyond any CT's, or makes the slice one value, is refused."""
    rescales = [_rescale(ds) for ds in datasets]
    usual = max(set(rescales), key=rescales.count)
    odd = [path for path, rescale in zip(files, rescales) if rescale != usual]
    for path, pixels, (slope, intercept) in zip(files, slices, rescales):
        if (slope, intercept) != usual:
            _refuse_a_slice_off_the_scale(pixels, slope, intercept, usual, path)
    if odd and len(odd) <= len(files) // 4:
        slope, intercept = rescales[list(files).index(odd[0])]
        LOG.warning("%s: %d of its %d slices, e.g. %s, have another rescale than the rest (slope %g and intercept %g "
                    "against %g and %g): their values may be off by the difference; check those slices", where,
                    len(odd), len(files), odd[0].name, slope, intercept, *usual)


def _refuse_a_slice_off_the_scale(pixels: np.ndarray, slope: float, intercept: float, usual: tuple[float, float],
                                  path: Path) -> None:
    """A slice whose own rescale, unlike the series', puts most of its values outside LEAST_HU to
    MOST_HU, or makes a slice of several stored values one value: a damaged header (a slope of 1e30
    or 1e-30 in one slice was segmented, with only the warning that its values may be off)."""
    hounsfield = pixels.astype(np.float64) * slope + intercept
    median = float(np.median(hounsfield))
    if not LEAST_HU <= median <= MOST_HU:
        found = f"would put its values at {median:g} HU (their median), where no CT's lie"
    elif float(np.ptp(hounsfield)) < 0.5 < float(np.ptp(pixels)):
        found = f"would make it one value, {round(median)} HU, throughout"
    else:
        return
    raise InputError(f"its RescaleSlope {slope:g} and RescaleIntercept {intercept:g}, unlike the other slices' "
                     f"{usual[0]:g} and {usual[1]:g}, {found}: its header is damaged", path,
                     "export the series again")


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
        raise GeometryError(f"{what} at {in_brackets(positions[n])} is shifted in-plane by ({ijk[n, 0]:.2f}, "
                            f"{ijk[n, 1]:.2f}) voxels from the CT's grid", where, "give a mask made on this CT series")
    k = np.round(ijk[:, 2]).astype(int)
    off = np.abs(ijk[:, 2] - k) * volume.spacing[2]
    tolerance = POSITION_TOLERANCE_MM + STEP_TOLERANCE * volume.spacing[2]
    bad = np.flatnonzero((off > tolerance) | (k < 0) | (k >= volume.shape[0]))
    if bad.size:
        n = bad[0]
        raise GeometryError(f"{what} at {in_brackets(positions[n])} does not fall on a CT slice (k = "
                            f"{ijk[n, 2]:.2f} of 0..{volume.shape[0] - 1})", where,
                            "give a mask made on this CT series")
    return k


def check_in_plane_grid(volume: Volume, orientation, pixel_spacing, shape, what: str, where) -> None:
    """A mask slice must share the CT's orientation, pixel spacing and size. `orientation` and
    `pixel_spacing` are the values as its header holds them: missing, text or a single number is told."""
    directions = number_values(orientation, 6)
    if directions is None or not np.allclose(np.column_stack([directions[:3], directions[3:]]),
                                             volume.direction[:, :2], atol=DIRECTION_TOLERANCE):
        raise GeometryError(f"{what}'s orientation is {described(orientation, 6)}, the CT's "
                            f"{in_brackets(np.concatenate([volume.direction[:, 0], volume.direction[:, 1]]))}", where,
                            "give a mask made on this CT series")
    spacing = number_values(pixel_spacing, 2)
    spacing_ij = None if spacing is None else (spacing[1], spacing[0])
    if spacing_ij is None or not np.allclose(spacing_ij, volume.spacing[:2], rtol=1e-4, atol=0):
        shown = described(pixel_spacing, 2) if spacing_ij is None else in_brackets(spacing_ij)
        raise GeometryError(f"{what}'s pixel spacing is {shown}, the CT's {in_brackets(volume.spacing[:2])}",
                            where, "give a mask made on this CT series")
    if tuple(shape) != tuple(volume.shape[1:]):
        raise GeometryError(f"{what} has {shape[0]} x {shape[1]} pixels, the CT {volume.shape[1]} x {volume.shape[2]}",
                            where, "give a mask made on this CT series")


def slice_height(path: Path, orientation: Sequence[float]) -> Optional[float]:
    """A slice file's position along the normal of `orientation` (mm), its header read as the series
    reader reads it; None where the header gives none or cannot be read."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["ImagePositionPatient"])
    except Exception:  # a damaged header: the series reader tells what is wrong with it
        return None
    height = float(position_of(ds) @ normal_of(orientation))
    return None if np.isnan(height) else height


