"""The one value that flows through every stage: an image array with its geometry.

`Volume.array` is indexed `[k, j, i]` (slice, row, column), the order SimpleITK and
`slicer.util.arrayFromVolume` use. `spacing` is (i, j, k) in mm, `origin` the LPS position of the
centre of voxel (0, 0, 0) and `direction` a 3x3 matrix whose columns are the i, j, k axes in LPS,
as in DICOM and ITK. Slicer's RAS differs by a sign on the first two axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import GeometryError

if TYPE_CHECKING:
    from .io.regularize import Stack

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Grids that differ by less than this are the same grid (DICOM stores positions as decimal text).
POSITION_TOLERANCE_MM = 1e-2
DIRECTION_TOLERANCE = 1e-3


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    source: str = ""  # where it came from, for messages
    # The slices as acquired, when they were no grid and this volume was resampled from them
    # (`io.regularize`): masks stored on those slices (a DICOM SEG) are brought onto this grid.
    acquired: Optional["Stack"] = None

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if self.array.ndim != 3:
            raise GeometryError(f"expected a 3-D image, got {self.array.ndim}-D of shape {self.array.shape}",
                                self.source or None, "give a volume with several slices")
        if min(self.spacing) <= 0 or not np.all(np.isfinite(self.spacing)):
            raise GeometryError(f"voxel spacing {self.spacing} is not positive", self.source or None,
                                "check the file's spacing header")

    # --- geometry --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def carries_no_geometry(self) -> bool:
        """Whether the grid is the default one a file gets when an array is saved without its geometry
        (`nibabel.Nifti1Image(array, np.eye(4))`, `SimpleITK.GetImageFromArray`): 1 mm voxels at the
        origin, axes along the patient's. A CT keeps its scanner's position, so its origin is not 0, 0, 0."""
        return (self.spacing == (1.0, 1.0, 1.0) and self.origin == (0.0, 0.0, 0.0)
                and np.array_equal(np.abs(self.direction), np.eye(3)))

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix taking (i, j, k, 1) to LPS millimetres."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction @ np.diag(self.spacing)
        matrix[:3, 3] = self.origin
        return matrix

    def ijk_to_ras(self) -> np.ndarray:
        return LPS_TO_RAS @ self.ijk_to_lps()

    def physical_points(self, ijk: np.ndarray) -> np.ndarray:
        """LPS positions of voxel indices given as rows of (i, j, k)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=float))
        return ijk @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def same_grid(self, other: "Volume", tolerance_mm: float = POSITION_TOLERANCE_MM) -> bool:
        return (self.shape == other.shape
                and np.allclose(self.spacing, other.spacing, atol=tolerance_mm)
                and np.allclose(self.origin, other.origin, atol=tolerance_mm)
                and np.allclose(self.direction, other.direction, atol=DIRECTION_TOLERANCE))

    def with_array(self, array: np.ndarray, source: Optional[str] = None) -> "Volume":
        """The same grid holding another array (a mask or a probability map)."""
        if array.shape != self.array.shape:
            raise GeometryError(f"array of shape {array.shape} does not fit a grid of shape {self.shape}",
                                source or self.source or None)
        return Volume(array, self.spacing, self.origin, self.direction.copy(),
                      self.source if source is None else source, self.acquired)

    # --- conversions -----------------------------------------------------------------------
    @classmethod
    def from_sitk(cls, image, source: str = "") -> "Volume":
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise GeometryError(f"expected a 3-D image, got {image.GetDimension()}-D", source or None,
                                "give a volume with several slices")
        return cls(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                   np.array(image.GetDirection()).reshape(3, 3), source)

    def to_sitk(self):
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.ravel()))
        return image

    @classmethod
    def from_ijk_to_ras(cls, array: np.ndarray, ijk_to_ras: np.ndarray, source: str = "") -> "Volume":
        """From an array and Slicer's 4x4 IJKToRAS matrix."""
        ijk_to_lps = LPS_TO_RAS @ np.asarray(ijk_to_ras, dtype=float)
        axes = ijk_to_lps[:3, :3]
        spacing = np.linalg.norm(axes, axis=0)
        return cls(array, tuple(spacing), tuple(ijk_to_lps[:3, 3]), axes / spacing, source)


@dataclass
class Case:
    """A CT volume and, for training and evaluation, its liver and lesion masks on the same grid."""

    name: str
    ct: Volume
    liver: Optional[Volume] = None
    lesion: Optional[Volume] = None
    source: Optional[Path] = None
    # False where the labels segment the liver but say nothing of its lesions (a dataset of organs): the
    # lesion mask is empty for want of labels, and training learns the liver alone from the case.
    lesions_segmented: bool = True

    @property
    def labelled(self) -> bool:
        return self.liver is not None and self.lesion is not None

    def check(self) -> "Case":
        """Masks must lie on the CT's grid and be binary."""
        for what, mask in (("liver", self.liver), ("lesion", self.lesion)):
            if mask is None:
                continue
            where = mask.source or str(self.source or self.name)
            if not mask.same_grid(self.ct):
                raise GeometryError(
                    f"the {what} mask (shape {mask.shape}, spacing {in_brackets(mask.spacing)}, origin "
                    f"{in_brackets(mask.origin)}) does not lie on the CT's grid (shape {self.ct.shape}, spacing "
                    f"{in_brackets(self.ct.spacing)}, origin {in_brackets(self.ct.origin)})", where,
                    "give a mask made on this CT")
            if mask.array.dtype != np.uint8 or mask.array.max(initial=0) > 1:
                raise GeometryError(f"the {what} mask is not binary", where, "masks must hold 0 and 1 only")
        return self

    def label_map(self) -> np.ndarray:
        """0 background, 1 liver, 2 lesion (lesion wins where both are set)."""
        labels = np.zeros(self.ct.shape, np.uint8)
        if self.liver is not None:
            labels[self.liver.array > 0] = 1
        if self.lesion is not None:
            labels[self.lesion.array > 0] = 2
        return labels


def in_brackets(values) -> str:
    """Numbers as messages show them: "(0.7813, 0.7813, 2.5)"."""
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


# --- orientation ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reorientation:
    """How an array was permuted and flipped to reach the axial LPS order; `undo` goes back."""

    axes: tuple[int, int, int]  # new array axis n takes old array axis axes[n]
    flips: tuple[bool, bool, bool]  # per new array axis

    def apply(self, array: np.ndarray) -> np.ndarray:
        out = np.transpose(array, self.axes + tuple(range(3, array.ndim)))
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis)
        return out

    def undo(self, array: np.ndarray) -> np.ndarray:
        out = array
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis)
        inverse = tuple(int(a) for a in np.argsort(self.axes))
        return np.transpose(out, inverse + tuple(range(3, array.ndim)))

    @property
    def is_identity(self) -> bool:
        return self.axes == (0, 1, 2) and not any(self.flips)


def to_axial_lps(volume: Volume) -> tuple[Volume, Reorientation]:
    """Permute and flip the voxel axes so i runs to patient left, j posterior and k superior.

    Only whole-voxel permutations and flips: no resampling, so `Reorientation.undo` restores the
    input array exactly. An oblique volume lands on the nearest such order and stays oblique
    (`oblique` resamples it for the network).
    """
    # Column c of `direction` is array axis (2 - c) in [k, j, i] order.
    direction = volume.direction
    dominant = np.argmax(np.abs(direction), axis=0)  # LPS axis that each of i, j, k points along
    if len(set(dominant.tolist())) != 3:
        # Strongly oblique: choose the assignment greedily by the largest cosines.
        dominant = _greedy_axes(np.abs(direction))
    # For LPS axis a (x, y, z) find the source ijk column, then map to array axes [k, j, i].
    source_column = [int(np.where(dominant == a)[0][0]) for a in range(3)]  # column feeding new i, j, k
    new_direction = np.empty((3, 3))
    flips_ijk = []
    for new_col, old_col in enumerate(source_column):
        column = direction[:, old_col]
        flip = column[new_col] < 0
        flips_ijk.append(flip)
        new_direction[:, new_col] = -column if flip else column
    array_axes = tuple(2 - source_column[2 - n] for n in range(3))  # new array axis n <- old axis
    flips = tuple(flips_ijk[2 - n] for n in range(3))
    reorientation = Reorientation(array_axes, flips)

    new_spacing = tuple(volume.spacing[c] for c in source_column)
    # The new voxel (0, 0, 0) is the old voxel at the far end of every flipped axis.
    old_index = np.zeros(3)
    for new_col, old_col in enumerate(source_column):
        if flips_ijk[new_col]:
            old_index[old_col] = volume.array.shape[2 - old_col] - 1
    new_origin = tuple(volume.physical_points(old_index)[0])
    array = np.ascontiguousarray(reorientation.apply(volume.array))
    return Volume(array, new_spacing, new_origin, new_direction, volume.source), reorientation


def _greedy_axes(cosines: np.ndarray) -> np.ndarray:
    dominant = np.full(3, -1)
    c = cosines.copy()
    for _ in range(3):
        axis, column = np.unravel_index(np.argmax(c), c.shape)
        dominant[column] = axis
        c[axis, :] = -1
        c[:, column] = -1
    return dominant
