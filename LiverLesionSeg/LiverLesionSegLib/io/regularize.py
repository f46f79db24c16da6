"""Slices that are not a regular stack, put on one: a gantry tilt, a slice spacing that changes.

A scanner whose gantry was tilted stores axial slices whose positions drift in-plane from slice
to slice (the stack is sheared); a series may also change its slice spacing part-way (a thin
section through the liver). Neither is a grid a `Volume` can hold. As 3D Slicer's DICOM reader
does (its acquisition geometry regularisation), the slices are resampled onto the regular grid
that keeps their in-plane axes and pixel size: k along the slice normal at about the finest step of
the series (from the first slice to the last), the in-plane extent grown to hold every slice. Each
voxel blends the two slices either side of it along the normal, each sampled bilinearly at the
voxel's own position; outside every slice is the series' lowest value (air, or the scanner's
padding).

`sample_slices` goes the other way (nearest voxel), to put a label map made on that grid back on
the original slices, as a DICOM SEG of them needs.

A slice missing from an evenly spaced series is not resampled: that is data lost, and the reader
refuses it (`dicom._check_steps`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy import ndimage

from ..errors import GeometryError
from ..memory import check_image_fits
from ..volume import POSITION_TOLERANCE_MM, Volume

LOG = logging.getLogger("LiverLesionSeg")

# Slices of one stack may drift in-plane by at most this fraction of a pixel and still be a grid.
IN_PLANE_TOLERANCE_PIXELS = 0.1
# Steps along the normal may differ by this fraction of the step (plus the position tolerance).
STEP_TOLERANCE = 0.01
# CT gantries tilt at most 30 degrees; slices shifted as by a tilt beyond this have a damaged position or affine.
MAX_TILT_DEGREES = 45.0


@dataclass
class Stack:
    """Where each slice of a series lies: sorted along the normal, each `shape` (rows, columns)."""

    positions: np.ndarray  # (n, 3) LPS of each slice's first pixel
    row_dir: np.ndarray  # direction of increasing column index i
    col_dir: np.ndarray  # direction of increasing row index j
    pixel: tuple[float, float]  # (i spacing, j spacing) in mm
    shape: tuple[int, int]  # (rows, columns)

    @property
    def normal(self) -> np.ndarray:
        normal = np.cross(self.row_dir, self.col_dir)
        return normal / np.linalg.norm(normal)

    @property
    def along(self) -> np.ndarray:
        """Each slice's distance along the normal from the first, in mm."""
        return (self.positions - self.positions[0]) @ self.normal

    @property
    def drift_mm(self) -> np.ndarray:
        """Each slice's in-plane offset from the first along (i, j), in mm: (n, 2)."""
        offsets = self.positions - self.positions[0]
        return np.column_stack([offsets @ self.row_dir, offsets @ self.col_dir])

    @property
    def drift(self) -> np.ndarray:
        """`drift_mm` in pixels."""
        return self.drift_mm / np.asarray(self.pixel)

    @property
    def in_plane_tolerance_mm(self) -> float:
        return max(POSITION_TOLERANCE_MM, IN_PLANE_TOLERANCE_PIXELS * min(self.pixel))

    def steps_vary(self) -> bool:
        steps = np.diff(self.along)
        return bool(np.ptp(steps) > POSITION_TOLERANCE_MM + STEP_TOLERANCE * float(np.median(steps)))

    def is_tilted(self) -> bool:
        return bool(np.abs(self.drift_mm).max() > self.in_plane_tolerance_mm)

    def shear_is_even(self) -> bool:
        """A gantry tilt shifts each slice in proportion to its distance along the normal; slices
        shifted any other way are not one tilted acquisition."""
        along, drift = self.along, self.drift_mm
        slope = along @ drift / max(float(along @ along), 1e-12)  # least squares through the first slice
        return bool(np.abs(drift - np.outer(along, slope)).max() <= self.in_plane_tolerance_mm)

    def tilt_degrees(self) -> float:
        return float(np.degrees(np.arctan2(np.linalg.norm(self.drift_mm[-1]), self.along[-1])))

    def plane(self) -> Volume:
        """A one-slice volume on the slices' in-plane grid, for checks that compare a mask's plane with it."""
        return Volume(np.broadcast_to(np.uint8(0), (1,) + tuple(self.shape)), self.pixel + (1.0,),
                      tuple(self.positions[0]), np.column_stack([self.row_dir, self.col_dir, self.normal]))

    def slice_indices(self, positions: np.ndarray, what: str, where: str | os.PathLike) -> np.ndarray:
        """The slice at each image position (rows of LPS mm); one that is not a slice's is a GeometryError."""
        along = self.along
        indices = []
        for position in np.atleast_2d(positions):
            offset = position - self.positions[0]
            k = int(np.argmin(np.abs(along - offset @ self.normal)))
            miss = position - self.positions[k]
            if (abs(miss @ self.normal) > POSITION_TOLERANCE_MM + STEP_TOLERANCE * float(np.median(np.diff(along)))
                    or max(abs(miss @ self.row_dir), abs(miss @ self.col_dir)) > self.in_plane_tolerance_mm):
                raise GeometryError(f"{what} at ({', '.join(f'{v:.4g}' for v in position)}) does not lie on a slice "
                                    "of the CT series", where, "give a mask made on this CT series")
            indices.append(k)
        return np.array(indices, int)

    def irregularity(self) -> Optional[str]:
        """What keeps the slices from being a grid, in words; None when they are one."""
        reasons = []
        if self.is_tilted():
            reasons.append(f"a gantry tilt of {self.tilt_degrees():.1f} degrees")
        if self.steps_vary():
            steps = np.diff(self.along)
            reasons.append(f"slice spacing varying from {steps.min():.2f} to {steps.max():.2f} mm")
        return " and ".join(reasons) or None


def stack_to_volume(array: np.ndarray, stack: Stack, source: str, where: str | os.PathLike) -> Volume:
    """The slices ([k, j, i]) as a Volume: on their own grid when they are one, else resampled
    onto the regular grid (said in a warning, as the results will lie on it)."""
    reason = stack.irregularity()
    if reason is None:
        direction = np.column_stack([stack.row_dir, stack.col_dir, stack.normal])
        return Volume(array, stack.pixel + (regular_grid_step(stack),), tuple(stack.positions[0]), direction, source)
    count, rows, columns = regular_grid_shape(stack)
    check_image_fits((count, rows, columns), array.itemsize, where, copies=1)
    volume = resample_to_grid(array, stack, source)
    LOG.warning("%s: the slices are not a regular stack (%s); resampled onto a regular grid of %d slices %.2f mm "
                "apart, as 3D Slicer's DICOM reader does. The results lie on that grid", where, reason,
                volume.shape[0], volume.spacing[2])
    return volume


def regular_grid_shape(stack: Stack) -> tuple[int, int, int]:
    """([k, j, i]) of the regular grid."""
    low, high = _in_plane_margins(stack)
    count = int(round(stack.along[-1] / regular_grid_step(stack))) + 1
    return count, stack.shape[0] + high[1] - low[1], stack.shape[1] + high[0] - low[0]


def _in_plane_margins(stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """How many pixels (i, j) the grid reaches before the first slice's first pixel (negative) and
    beyond its last, to hold every slice."""
    drift = stack.drift
    return (np.floor(np.minimum(drift.min(axis=0), 0)).astype(int),
            np.ceil(np.maximum(drift.max(axis=0), 0)).astype(int))


def regular_grid_step(stack: Stack) -> float:
    """The k spacing of the regular grid: where the steps vary, about the series' finest step, made a
    whole part of the distance from the first slice to the last, so that the grid ends on the last
    slice (slice positions jittered by 0.01 mm give a finest step of 2.48 mm for 2.5: 61 of them fell
    1.2 mm short of the last slice); else their mean (a tilted series keeps its slice count)."""
    span = float(stack.along[-1])
    if stack.steps_vary():
        return span / max(round(span / float(np.diff(stack.along).min())), 1)
    return span / (len(stack.positions) - 1)


def resample_to_grid(slices: np.ndarray, stack: Stack, source: str = "", fill: Optional[float] = None) -> Volume:
    """The slices ([k, j, i], sorted along the normal) on the regular grid described above, in
    their own dtype (whole numbers rounded); `fill` (default: their lowest value) outside them."""
    along, drift = stack.along, stack.drift
    step = regular_grid_step(stack)
    low, _ = _in_plane_margins(stack)
    count, rows, columns = regular_grid_shape(stack)
    fill = float(slices.min()) if fill is None else fill

    @lru_cache(maxsize=4)
    def moved(k: int) -> np.ndarray:
        """Slice k sampled on the grid's pixels: grid pixel (j, i) is slice pixel (j + low_j - drift_j, ...)."""
        offset = (low[1] - drift[k, 1], low[0] - drift[k, 0])
        return ndimage.affine_transform(slices[k], np.eye(2), offset=offset, output_shape=(rows, columns),
                                        output=np.float32, order=1, mode="grid-constant", cval=fill)

    array = np.empty((count, rows, columns), slices.dtype)
    fractional = np.interp(np.arange(count) * step, along, np.arange(len(along)))
    for m, f in enumerate(fractional):
        k = min(int(f), len(along) - 2)
        weight = np.float32(f - k)
        blended = moved(k) * (1 - weight) + moved(k + 1) * weight
        array[m] = np.rint(blended) if np.issubdtype(slices.dtype, np.integer) else blended
    origin = stack.positions[0] + low[0] * stack.pixel[0] * stack.row_dir + low[1] * stack.pixel[1] * stack.col_dir
    direction = np.column_stack([stack.row_dir, stack.col_dir, stack.normal])
    return Volume(array, (stack.pixel[0], stack.pixel[1], step), tuple(origin), direction, source, acquired=stack)


def mask_to_grid(mask: np.ndarray, stack: Stack, grid: Volume) -> np.ndarray:
    """A 0/1 mask on the acquired slices ([k, j, i] of `stack`) on `grid`, the volume resampled from
    them: interpolated linearly, then cut at one half."""
    resampled = resample_to_grid(mask.astype(np.float32), stack, fill=0.0)
    if not resampled.same_grid(grid):
        raise GeometryError("the mask's slices are not those the CT was resampled from", grid.source or None,
                            "give a mask made on this CT series")
    return (resampled.array >= 0.5).astype(np.uint8)


def sample_slices(volume: Volume, stack: Stack) -> np.ndarray:
    """`volume`'s voxel nearest each pixel of each slice of `stack`: ([k, j, i] of the stack), 0 outside."""
    to_index = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
    j, i = np.mgrid[0:stack.shape[0], 0:stack.shape[1]]
    in_plane = (np.multiply.outer(to_index @ (stack.pixel[0] * stack.row_dir), i)
                + np.multiply.outer(to_index @ (stack.pixel[1] * stack.col_dir), j))  # (3, rows, columns)
    result = np.zeros((len(stack.positions),) + tuple(stack.shape), volume.array.dtype)
    for k, position in enumerate(stack.positions):
        ijk = in_plane + (to_index @ (position - np.asarray(volume.origin)))[:, None, None]
        result[k] = ndimage.map_coordinates(volume.array, ijk[::-1], order=0, mode="grid-constant", cval=0)
    return result
