"""Images whose voxel axes are sheared: a gantry-tilted CT converted without tilt correction.

ITK (so SimpleITK and Slicer) refuses such a NIfTI file ("only supports orthonormal direction
cosines"), whose slices are read through nibabel. A NRRD or MetaImage so written ITK reads with its
axes as given, and its slice spacing as the length of the tilted axis, so that every volume came out
1/cos(tilt) too large. Either way the slices are placed by the axes (slice k's first voxel at
origin + k * the k axis) and resampled onto a regular grid as a tilted DICOM series is
(`regularize`); a shear within the slices' own plane, which no tilt gives, is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import GeometryError
from ..volume import Volume
from .header_checks import nifti_affine_mm
from .regularize import Stack, stack_to_volume

IN_PLANE_RIGHT_ANGLE = 1e-3  # |cos| of the angle between the i and j axes
SHEAR_TOLERANCE = 1e-4  # |cos| between two voxel axes beyond which they are not at right angles


def is_sheared_nifti_error(path: Path, reason: str) -> bool:
    """Whether ITK refused a NIfTI file for its sheared (non-orthonormal) axes."""
    return path.name.lower().endswith((".nii", ".nii.gz")) and "orthonormal" in reason


def is_sheared(direction: np.ndarray) -> bool:
    """Whether the unit voxel axes (the columns of `direction`) are not at right angles."""
    off_diagonal = direction.T @ direction - np.eye(3)
    return bool(np.abs(off_diagonal).max() > SHEAR_TOLERANCE)


def read_sheared_nifti(path: Path) -> Volume:
    """The image on its own sheared grid, as ITK reads a sheared NRRD: its direction's unit axes not at
    right angles (`on_a_regular_grid` resamples it)."""
    import nibabel as nib

    image = nib.load(str(path))
    array = np.asarray(image.dataobj).transpose(2, 1, 0)  # [i, j, k] -> [k, j, i]
    array = array.astype(np.int16 if _fits_int16(array) else np.float32)
    return Volume.from_ijk_to_ras(np.ascontiguousarray(array), nifti_affine_mm(image), str(path))  # IJK to RAS


def on_a_regular_grid(volume: Volume, where: str | os.PathLike) -> Volume:
    """A volume on a sheared grid resampled onto the regular grid of its slices (a warning says so)."""
    return stack_to_volume(*sheared_stack(volume, where), volume.source, where)


def sheared_stack(volume: Volume, where: str | os.PathLike) -> tuple[np.ndarray, Stack]:
    """The voxels of a volume on a sheared grid as slices sorted along their normal, and where each
    lies; refused where they are no tilted acquisition's."""
    from .dicom import check_stack

    row_dir, col_dir, k_axis = volume.direction.T
    array = volume.array
    if abs(float(row_dir @ col_dir)) > IN_PLANE_RIGHT_ANGLE:
        raise GeometryError("its voxel axes are sheared within its slices (the i and j axes are not at right "
                            "angles), which no gantry tilt gives", where, "resample it to a regular grid first")
    positions = np.asarray(volume.origin, float) + np.outer(np.arange(array.shape[0]), volume.spacing[2] * k_axis)
    names = [f"slice {k}" for k in range(array.shape[0])]
    if float(k_axis @ np.cross(row_dir, col_dir)) < 0:  # slices stored against the normal: turn them round
        positions, array, names = positions[::-1], array[::-1], names[::-1]
    stack = Stack(positions, row_dir, col_dir, (float(volume.spacing[0]), float(volume.spacing[1])), array.shape[1:])
    check_stack(stack, names, where)
    return np.ascontiguousarray(array), stack


def _fits_int16(array: np.ndarray) -> bool:
    info = np.iinfo(np.int16)
    return (np.issubdtype(array.dtype, np.integer) and array.size > 0
            and info.min <= array.min() and array.max() <= info.max)
