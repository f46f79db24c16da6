"""The lesion table: one row per connected lesion of a lesion mask.

A lesion is a connected component of the mask in 3-D with 26-connectivity (voxels that touch by a
face, an edge or a corner belong to one lesion). Rows are sorted by volume, largest first, and
numbered from 1 (equal volumes keep the order of their first voxel in the array).

- volume: voxel count * voxel volume, in mL (mm³ / 1000);
- centroid: the mean of the lesion's voxel centres, taken through the volume's geometry to LPS
  millimetres (and RAS, which flips the signs of the first two axes);
- slice range: the first and last k index (inclusive) the lesion occupies, on the mask's own grid
  (the images of the series it shows on);
- longest axial diameter: for each axial plane the lesion occupies, the maximum Feret diameter of
  the union of its pixels drawn as squares (the largest distance between two corners of the convex
  hull of the pixel corner points), in mm with the in-plane spacings, the direction matrix assumed
  orthonormal; the largest over the planes. A single pixel measures its diagonal. The planes are
  those of the volume put in axial order (`to_axial_lps`: whole-voxel permutations and flips), so
  a sagittal or coronal series is measured in the axial plane too. A grid turned more than
  `oblique.OBLIQUE_DEGREES` from the patient's axes (an oblique reformat) cuts a lesion at a slant:
  there each lesion is measured on an axial grid holding it (`oblique.on_axial_grid`, its mask
  interpolated linearly, inside from a half). `diameter_slice` is the k plane of the mask's grid
  where it was found, None where that grid's slices are not axial (the diameter then crosses
  several of them);
- long axis: the two hull corners the longest axial diameter joins, in LPS millimetres (a
  measurement line a viewer can draw: the DICOM SR report's);
- perpendicular diameter: in that plane, the lesion's width across the longest diameter (the
  extent of the same hull perpendicular to it), the second diameter of the WHO bidimensional
  measure;
- median HU: the median CT value of the lesion's voxels, when the CT is given (a cyst is under
  20 HU, a solid lesion above).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from .masks import bounding_box, label_components
from .oblique import OBLIQUE_DEGREES, degrees_off_axes, on_axial_grid
from .volume import LPS_TO_RAS, Reorientation, Volume, to_axial_lps


@dataclass
class Lesion:
    number: int  # 1 = largest
    voxels: int
    volume_ml: float
    longest_axial_diameter_mm: float
    perpendicular_diameter_mm: float  # across the longest, in its plane
    diameter_slice: Optional[int]  # k plane of the longest axial diameter; None on a non-axial grid
    centroid_lps: tuple[float, float, float]
    centroid_ras: tuple[float, float, float]
    first_slice: int  # k range, inclusive
    last_slice: int
    median_hu: Optional[float] = None  # None without the CT
    # the longest axial diameter's two ends (LPS mm), on plane `diameter_slice`
    long_axis_lps: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.0,) * 3, (0.0,) * 3)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def mask_volume_ml(mask: Volume) -> float:
    """The volume of a mask's nonzero voxels, in mL."""
    return float(np.count_nonzero(mask.array)) * mask.voxel_volume_mm3 / 1000.0


def lesion_table(mask: Volume, ct: Optional[Volume] = None) -> list[Lesion]:
    """One `Lesion` per 26-connected component of `mask`, largest first, numbered from 1; with
    `ct` (on the mask's grid), each lesion's median CT value too. Measured with the volume in axial
    order; the slice numbers given on the mask's own grid."""
    axial, reorientation = to_axial_lps(mask)
    binary = np.asarray(axial.array) > 0
    box = bounding_box(binary)
    if box is None:
        return []
    offset = np.array([s.start for s in box])  # (k, j, i) of the box corner
    labels, count = label_components(binary[box])
    ct_box = None if ct is None else reorientation.apply(np.asarray(ct.array))[box]
    measured = []
    for label, obj in enumerate(ndimage.find_objects(labels), start=1):
        corner = offset + [s.start for s in obj]
        lesion = _measure(labels[obj] == label, corner, axial, None if ct_box is None else ct_box[obj])
        if not reorientation.is_identity:
            extents = [(int(c), int(c) + s.stop - s.start - 1) for c, s in zip(corner, obj)]
            _slices_on_the_input_grid(lesion, extents, reorientation, axial.shape)
        measured.append(lesion)
    measured.sort(key=lambda lesion: -lesion.voxels)  # stable: ties keep label order
    for number, lesion in enumerate(measured, start=1):
        lesion.number = number
    return measured


def _slices_on_the_input_grid(lesion: Lesion, extents: list[tuple[int, int]], reorientation: Reorientation,
                              axial_shape: tuple[int, ...]) -> None:
    """Turn the lesion's slice numbers from the axial order (`extents`: its first and last index
    along each axial array axis) to the mask's own grid, whose k axis is axial axis `n`, flipped or
    not; the diameter's plane is one of the grid's slices only when n is 0."""
    n = reorientation.axes.index(0)
    first, last = extents[n]
    if reorientation.flips[n]:
        first, last = axial_shape[n] - 1 - last, axial_shape[n] - 1 - first
    lesion.first_slice, lesion.last_slice = first, last
    if n != 0:
        lesion.diameter_slice = None
    elif reorientation.flips[0] and lesion.diameter_slice is not None:
        lesion.diameter_slice = axial_shape[0] - 1 - lesion.diameter_slice


def _measure(component: np.ndarray, corner_kji: np.ndarray, geometry: Volume,
             ct: Optional[np.ndarray] = None) -> Lesion:
    """One lesion, given as a boolean array over its own bounding box whose first voxel is at
    `corner_kji` in the full volume (and `ct`, the CT over the same box)."""
    kji = np.argwhere(component)
    centroid_ijk = (kji.mean(axis=0) + corner_kji)[::-1]
    centroid_lps = geometry.physical_points(centroid_ijk)[0]
    centroid_ras = LPS_TO_RAS[:3, :3] @ centroid_lps
    diameters, ends_lps, k = _diameters_in_axial_planes(component, corner_kji, geometry)
    voxels = len(kji)
    return Lesion(
        number=0,
        voxels=voxels,
        volume_ml=voxels * geometry.voxel_volume_mm3 / 1000.0,
        longest_axial_diameter_mm=diameters.longest_mm,
        perpendicular_diameter_mm=diameters.across_mm,
        diameter_slice=k,
        centroid_lps=tuple(float(v) for v in centroid_lps),
        centroid_ras=tuple(float(v) for v in centroid_ras),
        first_slice=int(corner_kji[0]),
        last_slice=int(corner_kji[0] + component.shape[0] - 1),
        median_hu=None if ct is None else float(np.median(ct[component])),
        long_axis_lps=tuple(tuple(float(v) for v in point) for point in ends_lps),
    )


def _diameters_in_axial_planes(component: np.ndarray, corner_kji: np.ndarray,
                               geometry: Volume) -> tuple["AxialDiameters", np.ndarray, Optional[int]]:
    """The lesion's `AxialDiameters`, its long axis's ends in LPS mm, and the k plane of `geometry`
    that holds it (None where the grid is oblique and the lesion was measured on an axial one)."""
    if degrees_off_axes(geometry.direction) > OBLIQUE_DEGREES:
        padded = np.pad(component, 1).astype(np.float32)  # a voxel around it: the grid holds its edges
        box = Volume(padded, geometry.spacing, tuple(geometry.physical_points((corner_kji - 1)[::-1])[0]),
                     geometry.direction)
        axial = on_axial_grid(box)  # the mask interpolated linearly: inside from a half
        upright = axial.array >= 0.5
        if upright.any():  # a lesion of a voxel or two may fall between the axial grid's points
            diameters = axial_diameters(upright, axial.spacing[0], axial.spacing[1])
            ends = [(i, j, diameters.k) for i, j in diameters.ends_ij]
            return diameters, axial.physical_points(ends), None
    diameters = axial_diameters(component, geometry.spacing[0], geometry.spacing[1])
    k = int(corner_kji[0] + diameters.k)
    ends = [(i + corner_kji[2], j + corner_kji[1], k) for i, j in diameters.ends_ij]
    return diameters, geometry.physical_points(ends), k


def total_volume_ml(lesions: list[Lesion]) -> float:
    return sum(lesion.volume_ml for lesion in lesions)


def tumour_burden(lesions: list[Lesion], liver_ml: float) -> float:
    """The lesions' total volume as a share of the liver's (the liver volume holds its lesions);
    0 where no liver was found."""
    return total_volume_ml(lesions) / liver_ml if liver_ml > 0 else 0.0


def longest_axial_diameter(mask: np.ndarray, spacing_i: float, spacing_j: float) -> tuple[float, int]:
    """(largest in-plane Feret diameter in mm over the k planes of a [k, j, i] mask, its k)."""
    diameters = axial_diameters(mask, spacing_i, spacing_j)
    return diameters.longest_mm, diameters.k


class AxialDiameters(NamedTuple):
    longest_mm: float  # the largest in-plane Feret diameter over the k planes
    across_mm: float  # the width across it, in its plane
    k: int  # its plane
    ends_ij: tuple[tuple[float, float], tuple[float, float]]  # its two ends, (i, j) in voxels (pixel corners)


def axial_diameters(mask: np.ndarray, spacing_i: float, spacing_j: float) -> AxialDiameters:
    """The longest axial diameter of a [k, j, i] mask, the width across it and where it lies."""
    mask = np.asarray(mask, dtype=bool)
    # Per row (k, j): the first and last set column. Only the outer squares of each row can
    # give hull corners, so 4 corners per row replace 4 per pixel.
    rows_present = mask.any(axis=2)
    first = np.argmax(mask, axis=2)
    last = mask.shape[2] - 1 - np.argmax(mask[:, :, ::-1], axis=2)
    best = AxialDiameters(0.0, 0.0, 0, ((0.0, 0.0), (0.0, 0.0)))
    for k in range(mask.shape[0]):
        j = np.flatnonzero(rows_present[k])
        if j.size == 0:
            continue
        diameter, across, ends_mm = _feret_of_rows(j, first[k, j], last[k, j], spacing_i, spacing_j)
        if diameter > best.longest_mm:
            ends_ij = tuple((float(x / spacing_i), float(y / spacing_j)) for x, y in ends_mm)
            best = AxialDiameters(diameter, across, k, ends_ij)
    return best


def axial_diameter(slice_mask: np.ndarray, spacing_i: float, spacing_j: float) -> float:
    """Maximum Feret diameter in mm of the pixels of one [j, i] plane (0 when empty)."""
    return longest_axial_diameter(np.asarray(slice_mask)[np.newaxis], spacing_i, spacing_j)[0]


def _feret_of_rows(j: np.ndarray, first_i: np.ndarray, last_i: np.ndarray,
                   spacing_i: float, spacing_j: float) -> tuple[float, float, np.ndarray]:
    """Largest corner-to-corner distance of the rows' pixel runs [first_i, last_i] x {j}, their
    extent perpendicular to it, and its two corners (x, y in mm from voxel (0, 0)'s centre)."""
    left, right = first_i - 0.5, last_i + 0.5
    top, bottom = j - 0.5, j + 0.5
    x = np.concatenate([left, left, right, right]) * spacing_i
    y = np.concatenate([top, bottom, top, bottom]) * spacing_j
    points = np.column_stack([x, y])
    if len(points) > 8:  # more than two rows: keep the hull's corners only
        points = points[ConvexHull(points).vertices]
    differences = points[:, np.newaxis, :] - points[np.newaxis, :, :]
    distances = np.sqrt((differences ** 2).sum(axis=-1))
    a, b = np.unravel_index(distances.argmax(), distances.shape)
    axis = (points[b] - points[a]) / distances[a, b]
    across = points @ np.array([-axis[1], axis[0]])
    return float(distances[a, b]), float(across.max() - across.min()), points[[a, b]]
