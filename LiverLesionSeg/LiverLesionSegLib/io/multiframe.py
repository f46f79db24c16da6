"""Multi-frame CT: one DICOM file holding every slice of a series (Enhanced CT, Legacy Converted
Enhanced CT), its geometry in functional groups rather than in one header per slice.

Read with highdicom, whose `Image.get_volume` sorts the frames into a regular volume (refusing
frames that are not one) and applies the rescale to HU. The result follows the single-frame
reader's conventions (`dicom.py`): the k axis along the slice normal towards increasing position,
int16 when the HU values are whole and fit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom

from ..errors import GeometryError, InputError
from ..volume import Volume
from .dicom import LEAST_HU, MOST_HU, check_pixel_layout, check_stack, refuse_an_unusable_rescale
from .dicom_files import (check_a_description_for_each_frame, check_coded_size, check_has_pixel_data,
                          check_no_surplus_frames, dcmread, decoding, empty_sequence_needed, reading_fault,
                          unusable_plane_value)

LOG = logging.getLogger("LiverLesionSeg")


def read_multiframe_ct(path: Path, frames: int, label: str) -> Volume:
    """The volume of the multi-frame image at `path` in HU (`label` names its series in `source`)."""
    import highdicom

    try:
        dataset = dcmread(path)
        if not dataset.get("StudyInstanceUID"):  # (an anonymiser's removal, which highdicom refuses: "no
            # StudyInstanceUID"; a series of slices so stripped is read, and a DICOM SEG of it refused as output)
            dataset.StudyInstanceUID = pydicom.uid.generate_uid()
        image = highdicom.Image.from_dataset(dataset, copy=False)
    except Exception as exc:  # highdicom and pydicom raise many kinds on damaged files
        raise InputError(f"cannot read the multi-frame image ({reading_fault(exc, path)})", path,
                         "the file may be truncated or damaged; export the series again") from None
    empty = empty_sequence_needed(image)  # (highdicom reads some, which fail as the frames are decoded)
    if empty:
        raise InputError(f"cannot read the multi-frame image ({empty})", path,
                         "the file may be truncated or damaged; export the series again")
    check_a_description_for_each_frame(path, image, frames, "the file is damaged; export the series again")
    check_pixel_layout(path, image)
    check_has_pixel_data(path, image)
    refuse_an_unusable_rescale(image, path)
    check_coded_size(path, image)
    check_no_surplus_frames(path, image)
    try:
        regular = image.get_volume_geometry(allow_duplicate_positions=False) is not None
    except (ValueError, RuntimeError, AttributeError, KeyError):  # positions missing or unusable
        regular = False
    if not regular:  # a gantry tilt or a spacing that changes is resampled, as for single-frame slices
        unusable = unusable_plane_value(image)  # or a frame's geometry is missing, which highdicom let pass
        if unusable:
            raise InputError(f"cannot read the multi-frame image ({unusable})", path,
                             "the file may be truncated or damaged; export the series again")
        return _frames_as_acquired(image, path, frames, label)
    with decoding(path):  # a missing decoder was refused before (dicom.check_decoder)
        volume = image.get_volume(dtype=np.float32)
    array = volume.array  # (slice, row, column): k, j, i
    # highdicom's direction columns follow the array's axes: slice, row (j), column (i).
    k_axis, j_axis, i_axis = (np.asarray(volume.direction)[:, n] for n in range(3))
    spacing_k, spacing_j, spacing_i = (float(s) for s in volume.spacing)
    origin = np.asarray(volume.position, float)
    if float(k_axis @ np.cross(i_axis, j_axis)) < 0:  # frames sorted against the normal: turn them round
        origin = origin + (array.shape[0] - 1) * spacing_k * k_axis
        k_axis, array = -k_axis, array[::-1]
    return Volume(_as_hounsfield(_signed_where_declared_unsigned(array, image, path)),
                  (spacing_i, spacing_j, spacing_k), tuple(origin),
                  np.column_stack([i_axis, j_axis, k_axis]), f"{path} ({label})")


def _as_hounsfield(array: np.ndarray) -> np.ndarray:
    """int16 when every value is whole and fits (as a single-frame series with slope 1 gives), else float32."""
    info = np.iinfo(np.int16)
    if array.size and info.min <= array.min() and array.max() <= info.max and np.array_equal(array, np.round(array)):
        return np.ascontiguousarray(array, dtype=np.int16)
    return np.ascontiguousarray(array, dtype=np.float32)


def _signed_where_declared_unsigned(hounsfield: np.ndarray, image, path: Path) -> np.ndarray:
    """The frames' HU where an export declared 16-bit pixels unsigned (PixelRepresentation 0) but wrote
    signed values, as `dicom._signed_where_declared_unsigned` reads such slices: with a value over
    MOST_HU, the stored values whose sign bit is set are read negative, where the frames share one
    rescale and that puts every value at or above LEAST_HU (a warning says so); else as declared."""
    if (image.get("PixelRepresentation") != 0 or image.get("BitsAllocated") != 16 or not hounsfield.size
            or float(hounsfield.max()) <= MOST_HU):
        return hounsfield
    shared = image.get("SharedFunctionalGroupsSequence", [None])[0]
    rescales = set()
    for group in image.PerFrameFunctionalGroupsSequence:
        try:
            rescale = functional_group_item(group, shared, "PixelValueTransformationSequence", path)
        except GeometryError:
            rescale = image  # the rescale of the image as a whole
        rescales.add((float(rescale.get("RescaleSlope", 1) or 1), float(rescale.get("RescaleIntercept", 0) or 0)))
    if len(rescales) != 1:
        return hounsfield
    slope, intercept = rescales.pop()
    if slope <= 0:
        return hounsfield
    sign_bit_set = hounsfield >= slope * (2 ** 15 - 0.5) + intercept
    signed = np.where(sign_bit_set, hounsfield - slope * 2 ** 16, hounsfield).astype(np.float32)
    if float(signed.min()) < LEAST_HU:
        return hounsfield
    LOG.warning("%s: its frames declare their pixels unsigned (PixelRepresentation 0), which would make their air "
                "over %d HU: read as signed values, as they were written", path, MOST_HU)
    return signed


def _frames_as_acquired(image, path: Path, frames: int, label: str) -> Volume:
    """Frames that are no regular volume, placed by their plane positions and checked as the
    single-frame reader checks slices (`dicom.check_stack`), then resampled (`regularize`)."""
    from .regularize import Stack, stack_to_volume

    shared = image.get("SharedFunctionalGroupsSequence", [None])[0]
    groups = image.PerFrameFunctionalGroupsSequence
    planes = {tuple(float(v) for v in functional_group_item(g, shared, "PlaneOrientationSequence", path)
                    .ImageOrientationPatient) for g in groups}
    spacings = {tuple(float(v) for v in functional_group_item(g, shared, "PixelMeasuresSequence", path)
                      .PixelSpacing) for g in groups}
    if len(planes) != 1 or len(spacings) != 1:
        raise GeometryError(f"its {frames} frames have {len(planes)} orientations and {len(spacings)} pixel spacings",
                            path, "give one series of equal slices")
    orientation, (row_spacing, col_spacing) = np.array(planes.pop()), spacings.pop()
    positions = np.array([functional_group_item(g, shared, "PlanePositionSequence", path).ImagePositionPatient
                          for g in groups], dtype=float)
    order = np.argsort(positions @ np.cross(orientation[:3], orientation[3:]), kind="stable")
    stack = Stack(positions[order], orientation[:3], orientation[3:], (col_spacing, row_spacing),
                  (int(image.Rows), int(image.Columns)))
    check_stack(stack, [f"frame {n + 1}" for n in order], path)
    with decoding(path):  # a missing decoder was refused before (dicom.check_decoder)
        array = np.stack([image.get_frame(int(n) + 1, dtype=np.float32, apply_real_world_transform=False,
                                          apply_modality_transform=True) for n in order])
    return stack_to_volume(_as_hounsfield(_signed_where_declared_unsigned(array, image, path)), stack,
                           f"{path} ({label})", path)


def functional_group_item(per_frame, shared, keyword: str, path: Path):
    """A functional group of one frame: its own, else the shared one."""
    for groups in (per_frame, shared):
        if groups is not None and keyword in groups:
            return groups[keyword].value[0]
    raise GeometryError(f"no {keyword} for its frames", path, "give a file made with its geometry")
