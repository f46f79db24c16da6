"""NIfTI images whose affine is sheared: a gantry-tilted CT converted without tilt correction.

ITK (so SimpleITK and Slicer) refuses such a file ("only supports orthonormal direction
cosines"). Its slices are read through nibabel, placed by the affine (slice k's first voxel at
affine @ (0, 0, k)) and resampled onto a regular grid as a tilted DICOM series is
(`regularize`); a shear within the slices' own plane, which no tilt gives, is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GeometryError
from ..volume import LPS_TO_RAS, Volume

IN_PLANE_RIGHT_ANGLE = 1e-3  # |cos| of the angle between the i and j axes


def is_sheared_nifti_error(path: Path, reason: str) -> bool:
    """Whether ITK refused a NIfTI file for its sheared (non-orthonormal) axes."""
    return path.name.lower().endswith((".nii", ".nii.gz")) and "orthonormal" in reason


def read_sheared_nifti(path: Path) -> Volume:
    """The image, resampled onto the regular grid of its tilted slices (a warning says so)."""
    import nibabel as nib

    from .dicom import check_stack
    from .regularize import Stack, stack_to_volume

    image = nib.load(str(path))
    affine = LPS_TO_RAS @ np.asarray(image.affine, float)  # RAS to LPS: the same sign flips
    axes = affine[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    row_dir, col_dir = axes[:, 0] / spacing[0], axes[:, 1] / spacing[1]
    if abs(float(row_dir @ col_dir)) > IN_PLANE_RIGHT_ANGLE:
        raise GeometryError("the image's affine is sheared within its slices (the i and j axes are not at right "
                            "angles), which no gantry tilt gives", path, "resample it to a regular grid first")
    array = np.asarray(image.dataobj).transpose(2, 1, 0)  # [i, j, k] -> [k, j, i]
    array = array.astype(np.int16 if _fits_int16(array) else np.float32)
    positions = np.array([affine[:3, 3] + k * axes[:, 2] for k in range(array.shape[0])])
    names = [f"slice {k}" for k in range(array.shape[0])]
    if float(axes[:, 2] @ np.cross(row_dir, col_dir)) < 0:  # slices stored against the normal: turn them round
        positions, array, names = positions[::-1], array[::-1], names[::-1]
    stack = Stack(positions, row_dir, col_dir, (float(spacing[0]), float(spacing[1])), array.shape[1:])
    check_stack(stack, names, path)
    return stack_to_volume(np.ascontiguousarray(array), stack, str(path), path)


def _fits_int16(array: np.ndarray) -> bool:
    info = np.iinfo(np.int16)
    return (np.issubdtype(array.dtype, np.integer) and array.size > 0
            and info.min <= array.min() and array.max() <= info.max)
