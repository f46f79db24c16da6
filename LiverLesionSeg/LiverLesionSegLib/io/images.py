"""NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd: Grand Challenge's format)
images and label maps, read through SimpleITK.

SimpleITK gives the geometry in LPS (it converts NIfTI's RAS), as Slicer reads the same files.
It reads a truncated NIfTI without complaint and turns NaN and infinite NIfTI voxels into 0, so
NIfTI files are first checked to hold all their voxels (nibabel reads the header, gzip counts the
bytes) and, when they hold floating-point values, that these are finite (nibabel reads them). Label maps hold 0 background, 1 liver
and 2 lesion; the liver mask is labels 1 and 2 (the lesions lie inside the liver).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError, first_line, renamed
from ..memory import check_image_fits
from ..volume import Volume
from .atomic import NOT_TEXT, is_text_path
from .itk_words import itk_reason, metaimage_failure
from .native_output import HeldBack, held_back
from .sheared import is_sheared_nifti_error, read_sheared_nifti

LOG = logging.getLogger("LiverLesionSeg")

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
# What a file's first bytes say it is, whatever its name (renamed by hand, or gzip-compressed by a
# tool that kept the .nii name): NIfTI-1 and NIfTI-2 by their magic, NRRD and MetaImage by their
# first line. A detached header (.nhdr, .mhd) is the same kind as its attached form.
NIFTI_MAGICS = ((344, b"n+1\0"), (4, b"n+2\0"))
HEAD_BYTES = 352
CONTENT_KINDS = {".nii.gz": "gzip-compressed NIfTI", ".nii": "NIfTI", ".nrrd": "NRRD", ".mha": "MetaImage"}
DETACHED = {".nhdr": ".nrrd", ".mhd": ".mha"}
IMAGE_FILES = "a .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file"
LABELS = {0: "background", 1: "liver", 2: "lesion"}
# A mask of one label named as lesions but larger than this (mL) is a liver: few tumours are so large,
# few adult livers smaller.
LIVER_SIZED_ML = 700.0


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def suffix_by_content(path: str | os.PathLike) -> Optional[str]:
    """The image suffix a file's first bytes tell ('.nii.gz', '.nii', '.nrrd', '.mha'), or None."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES)
        compressed = head[:2] == b"\x1f\x8b"
        if compressed:
            with gzip.open(path, "rb") as file:
                head = file.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return None
    if any(head[at:at + len(magic)] == magic for at, magic in NIFTI_MAGICS):
        return ".nii.gz" if compressed else ".nii"
    if compressed:
        return None
    if head.startswith(b"NRRD000"):
        return ".nrrd"
    return ".mha" if re.match(rb"(ObjectType|NDims) *=", head) else None


def mixed_case_nifti_suffix(path: str | os.PathLike) -> Optional[str]:
    """A NIfTI suffix written in mixed case ('.Nii', '.nii.GZ'), which the NIfTI library (and so
    ITK, SimpleITK and Slicer) refuses to read; None for any other name."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            written = name[-len(suffix):]
            return written if written not in (suffix, suffix.upper()) else None
    return None


def image_stem(path: str | os.PathLike) -> str:
    """The file name without its image suffix (`liver_3.nii.gz` -> `liver_3`)."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


ValueSpan = tuple[float, float]


def value_span(volume: Volume) -> ValueSpan | None:
    """The image's lowest and highest value, None where it holds no voxel: read once by `refuse_a_non_ct`
    and handed to each check (a pass over a large CT takes a tenth of a second)."""
    if volume.array.size == 0:
        return None
    return float(volume.array.min()), float(volume.array.max())


def refuse_a_blank_image(volume: Volume, where: str | os.PathLike, span: ValueSpan | None = None) -> None:
    """An InputError where every voxel holds one value (a failed export or conversion, a series whose
    pixel data was blanked, an empty volume made as a placeholder): segmented, it gave an empty result
    and a caution that the scan may not cover the liver; all zero, it was called a label map."""
    span = span or value_span(volume)
    if span is None:
        return
    low, high = span
    if high == low:
        raise InputError(f"holds the one value {low:g} in every voxel: a blank image, not a CT", where,
                         "export the CT again (a blank image comes from a failed export or conversion)")


MAX_LABEL_VALUES = 16  # an image of no more distinct values, all small whole numbers, is a label map


def refuse_a_label_map(volume: Volume, where: str | os.PathLike, span: ValueSpan | None = None) -> None:
    """An InputError where the image given as a CT is a label map or mask (a handful of distinct
    whole values from 0 to 255: 0/1/2, a tool's own output given back): a CT in Hounsfield units holds
    air below 0 and thousands of values. Cheap for a CT: its minimum is below 0."""
    span = span or value_span(volume)
    if span is None or span[0] < 0 or span[1] > 255:
        return
    array = volume.array
    if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        return
    values = np.flatnonzero(np.bincount(array.astype(np.uint8).ravel(), minlength=256))
    if len(values) <= MAX_LABEL_VALUES:
        listed = ", ".join(str(int(v)) for v in values)
        raise InputError(f"holds only the values {listed}: a label map or mask, not a CT", where,
                         "give the CT image itself (a label map goes to evaluate or train as the reference)")


# HU -124 to 176 (fat's edge to enhanced soft tissue) with the usual rescale intercept of -1024 left out
RAW_SOFT_TISSUE = (900.0, 1200.0)
MIN_RAW_SOFT_TISSUE_SHARE = 0.2  # in HU only dense bone and contrast lie there: 0.02 to 0.17 % of the shared cases


def refuse_values_without_rescale(volume: Volume, where: str | os.PathLike) -> None:
    """An InputError where a CT's values are the stored ones, their rescale to Hounsfield units left out
    (a converter that ignored RescaleIntercept, an anonymiser that removed it): a fifth or more of the
    voxels at 900 to 1200, where soft tissue lies with 1024 added; in Hounsfield units only dense bone
    and contrast lie there (the region outside the scanner's field of view may hold any value, so air
    is no guide). Segmented, such a CT gave a 34-litre liver (liver Dice 0.10 and 0.47 on two shared
    cases so stored), a caution being all a reader got."""
    sample = volume.array[::2, ::4, ::4]  # a thirty-second of the voxels: milliseconds
    if sample.size == 0:
        return
    low, high = RAW_SOFT_TISSUE
    share = np.count_nonzero((sample >= low) & (sample <= high)) / sample.size
    if share >= MIN_RAW_SOFT_TISSUE_SHARE:
        raise InputError(f"its values look stored without their rescale to Hounsfield units: {100 * share:.0f} % of "
                         f"the voxels lie at {low:.0f} to {high:.0f}, where soft tissue lies with the usual 1024 added "
                         "(in Hounsfield units only dense bone does)", where, "export it again in Hounsfield units "
                         "(the DICOM rescale applied), or subtract its RescaleIntercept (often -1024) from every "
                         "voxel; an image that is not a CT is not what the model reads")


DENSE_HU = 4000.0  # above the densest bone and contrast (3071 HU on most scanners): only metal lies beyond
MAX_DENSE_SHARE = 0.05  # voxels beyond DENSE_HU: none in the shared cases; 29 to 47 % of them with bytes swapped


def refuse_values_beyond_hounsfield(volume: Volume, where: str | os.PathLike) -> None:
    """An InputError where 5 % or more of the voxels lie above 4000: in Hounsfield units only metal
    does. A CT read with its bytes in the wrong order (a NRRD header saying big-endian over
    little-endian data) has 29 to 47 % of its voxels there, and one scaled far beyond Hounsfield units
    all of its tissue; both were segmented, a caution being all a reader got."""
    sample = volume.array[::2, ::4, ::4]  # as `refuse_values_without_rescale`: milliseconds
    if sample.size == 0:
        return
    share = np.count_nonzero(sample > DENSE_HU) / sample.size
    if share >= MAX_DENSE_SHARE:
        raise InputError(f"{100 * share:.0f} % of its voxels lie above {DENSE_HU:.0f}, where in Hounsfield units only "
                         "metal does: its values are not Hounsfield units (bytes read in the wrong order, or another "
                         "data type or scale)", where, "export it again in Hounsfield units")


MIN_CT_SPAN = 50.0  # a CT's values span air to bone, over 1000 HU; a normalised image spans a few units


def refuse_a_normalised_image(volume: Volume, where: str | os.PathLike, span: ValueSpan | None = None) -> None:
    """An InputError where the values span less than 50 (a CT normalised to 0 to 1, -1 to 1 or z-scores
    by a pipeline): in Hounsfield units nothing of it would be tissue. A blank image (one value) is
    `refuse_a_blank_image`'s."""
    span = span or value_span(volume)
    if span is None:
        return
    low, high = span
    if 0 < high - low < MIN_CT_SPAN:
        raise InputError(f"its values span only {low:.3g} to {high:.3g}: a normalised image, not Hounsfield units (a "
                         "CT's span from air to bone is over 1000)", where, "give the CT as the scanner stored it, or "
                         "converted with its DICOM rescale to Hounsfield units")


def refuse_axes_out_of_order(volume: Volume, where: str | os.PathLike) -> None:
    """An InputError where an image without geometry (`Volume.carries_no_geometry`) has square slices
    across its axial ones, which are not square: an array in (slice, row, column) order saved as if it
    were (column, row, slice), which the model would read in sagittal planes (a 167 mL liver). A CT's
    axial slices are square (512 x 512) but for a crop."""
    slices, rows, columns = volume.shape
    if not volume.carries_no_geometry or rows == columns or slices not in (rows, columns):
        return
    across = f"{slices} x {rows if slices == rows else columns}"
    raise InputError(f"holds no geometry (1 mm voxels at 0, 0, 0) and its axial slices are {columns} x {rows} voxels, "
                     f"while the square {across} planes lie across them: an array in (slice, row, column) order "
                     "saved as if it were (column, row, slice)", where, "save the image with the CT's own geometry "
                     "(its affine, or the DICOM series), or with its array's axes reversed")


CT_VOXEL_MM = (0.05, 50.0)  # a CT's pixels are 0.2 to 2 mm, its slices 0.5 to 10 mm apart; far beyond, a header's fault


def refuse_an_implausible_spacing(volume: Volume, where: str | os.PathLike) -> None:
    """An InputError where a voxel side is far from any CT's: a damaged spacing (1e30 mm gave an internal
    error; 1e-30 mm, measures of no size), or one in other units (metres without the header saying so)."""
    low, high = CT_VOXEL_MM
    if all(low <= side <= high for side in volume.spacing):
        return
    raise InputError(f"its voxel spacing {_mm(volume.spacing)} is not a CT's (each side {low:g} to {high:g} mm): "
                     "the header's spacing is damaged, or in other units than millimetres", where,
                     "export it again with its spacing in millimetres")


def refuse_a_non_ct(volume: Volume, where: str | os.PathLike) -> None:
    """Refuse what is given as a CT but is blank, a label map, a CT's values without their rescale or
    beyond Hounsfield units, a normalised image, an array saved with its axes reversed and no
    geometry, or of voxels no CT has."""
    refuse_an_implausible_spacing(volume, where)
    span = value_span(volume)
    refuse_a_blank_image(volume, where, span)
    refuse_a_label_map(volume, where, span)
    refuse_values_without_rescale(volume, where)
    refuse_values_beyond_hounsfield(volume, where)
    refuse_a_normalised_image(volume, where, span)
    refuse_axes_out_of_order(volume, where)


def read_image(path: str | os.PathLike, resample_shear: bool = True) -> Volume:
    """A 3-D scalar image with its LPS geometry; refuse 2-D, 4-D, vector, non-finite or damaged files.
    A NIfTI whose affine is sheared (a gantry tilt) is resampled onto a regular grid (`sheared`)
    where `resample_shear`, else refused."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path, "check the path")
    if not path.is_file():
        raise InputError("is not a file", path, f"give {IMAGE_FILES}")
    if not is_text_path(path):  # ITK's reader aborts the whole process on such a name
        raise InputError(NOT_TEXT, path, "rename the file with letters this system shows")
    held = suffix_by_content(path)
    named = next((suffix for suffix in IMAGE_SUFFIXES if path.name.lower().endswith(suffix)), None)
    if held is not None and (DETACHED.get(named, named) != held or mixed_case_nifti_suffix(path)):
        return _read_misnamed(path, held, resample_shear)  # a '.Nii' too, which the NIfTI library refuses
    if not is_image_file(path):
        raise InputError("is not a NIfTI, NRRD or MetaImage file", path, f"give {IMAGE_FILES}")
    mixed = mixed_case_nifti_suffix(path)
    if mixed:
        raise InputError(f"its suffix '{mixed}' mixes lower and upper case, which NIfTI readers refuse", path,
                         f"rename it {mixed.lower()} (or {mixed.upper()})")
    with held_back() as native:  # ITK's MetaImage reader prints its complaints: they make the error's reason
        image = _read_with_itk(path, resample_shear, native)
    if isinstance(image, Volume):  # a sheared NIfTI, resampled
        return image
    volume = Volume.from_sitk(image, str(path))
    if volume.array.dtype == np.float64:
        volume.array = volume.array.astype(np.float32)
    _check_finite(path, volume.array)
    return volume


def _read_with_itk(path: Path, resample_shear: bool, native: HeldBack) -> sitk.Image | Volume:
    """The image as SimpleITK reads it, after the checks of what it hides (`_check_nifti`,
    `_check_nrrd`); a sheared NIfTI as `_read_sheared` reads it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        if is_sheared_nifti_error(path, itk_reason(exc)):
            return _read_sheared(path, resample_shear)
        damage = _gzip_start_damage(path)  # ITK only says it knows no reader for the file
        if damage:
            raise InputError(f"the compressed file is damaged ({damage})", path, "export it again") from None
        raise InputError(f"cannot read the image header ({itk_reason(exc, native.lines())})", path,
                         "the file may be damaged or not an image; export it again") from None
    _check_shape(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents())
    check_image_fits(tuple(reversed(reader.GetSize())), _itemsize(reader.GetPixelID()), path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti(path, reader.GetSpacing())
    elif path.name.lower().endswith(".nrrd"):
        _check_nrrd(path, reader)
    elif path.name.lower().endswith((".mha", ".mhd")):
        _check_metaimage(path, reader)
    try:
        image = reader.Execute()
        # ITK's MetaImage reader goes on after its decompression failed, with voxels of no one's
        failure = metaimage_failure(native.lines()) if path.name.lower().endswith((".mha", ".mhd")) else None
    except RuntimeError as exc:
        failure = itk_reason(exc, native.lines())
    if failure is not None:
        raise InputError(f"cannot read the image data ({failure})", path, "the file may be truncated or damaged, "
                         "or the data file an .nhdr or .mhd header names missing; export it again")
    return image


def _read_misnamed(path: Path, held: str, resample_shear: bool) -> Volume:
    """An image whose name says another kind than its content (`held`), read as what it holds through
    a link of the right name (readers go by the name); messages name the file itself."""
    LOG.warning("%s: holds a %s image but is named so: read as what it holds (give it the suffix %s)", path,
                CONTENT_KINDS[held], held)
    with tempfile.TemporaryDirectory(prefix="liverlesionseg-") as folder:
        link = Path(folder) / f"image{held}"
        try:
            link.symlink_to(path.resolve())
        except OSError:  # no symbolic links here (Windows without the right): a copy
            shutil.copyfile(path, link)
        with renamed(str(link), str(path)):
            volume = read_image(link, resample_shear)
    volume.source = str(path)
    return volume


def read_label_map(path: str | os.PathLike, reference: Volume, require_liver: bool = True
                   ) -> tuple[Optional[Volume], Volume]:
    """(liver, lesion) uint8 0/1 masks on `reference`'s grid from a 0/1/2 label map, or from a
    Slicer segmentation file by its segments' names (`seg_nrrd`). Without `require_liver`, a
    segmentation of lesions only (no segment, or no voxel, of liver outside them) gives the liver
    as None: not segmented."""
    from .seg_nrrd import is_slicer_segmentation, read_slicer_segmentation

    if is_slicer_segmentation(path):
        return read_slicer_segmentation(path, reference, require_liver)
    labels = read_image(path, resample_shear=False)
    array = labels.array if labels.same_grid(reference) else _on_the_voxels_of(labels, reference)
    if array is None:
        if labels.shape != reference.shape:
            raise GeometryError(f"the label map has {_size(labels)} voxels but the image {_size(reference)}", path,
                                "give the label map made on this image")
        raise GeometryError(f"the label map's geometry ({_geometry(labels)}) differs from the image's "
                            f"({_geometry(reference)})", path, "give the label map made on this image")
    named = None if require_liver else _one_label_named(path, array, reference)
    if named is not None:
        return named
    unknown = (array != 0) & (array != 1) & (array != 2)
    if unknown.any():
        values = np.unique(array[unknown])
        # numpy's shortest text of each stored value: 1.000001 is not shown as 1
        shown = ", ".join(str(v) for v in values[:10]) + (" ..." if values.size > 10 else "")
        raise InputError(f"the label map holds label(s) {shown} besides 0 background, 1 liver, 2 lesion", path,
                         "give a label map with 0, 1 and 2 only")
    if not array.any():  # a blank export, or another image of the scan given for its labels
        LOG.warning("%s: the label map holds background (0) only, no voxel of liver or lesion; if it should, "
                    "give the label map that holds them", path)
    lesion = reference.with_array((array == 2).astype(np.uint8), str(path))
    if not require_liver and not (array == 1).any():
        return None, lesion
    return reference.with_array(((array == 1) | (array == 2)).astype(np.uint8), str(path)), lesion


def _one_label_named(path: Path, array: np.ndarray, reference: Volume
                     ) -> Optional[tuple[Optional[Volume], Volume]]:
    """A mask of one label whose file name says what it holds: lesions ("tumour.nii.gz", "GTV.nrrd",
    not "liver_tumor.nii.gz", which may be a 0/1/2 label map without tumour) or the liver
    ("Leber.nii.gz" of 0 and 255). Read so, with a warning; None for any other label map."""
    from ..segments import LIVER_WORDS, meaning_of_segment_name, plain_text

    stem = image_stem(path)
    role = meaning_of_segment_name(stem.replace("_", " "))
    if role is None or (role == "lesion" and any(word in plain_text(stem) for word in LIVER_WORDS)):
        return None
    values = np.unique(array[array != 0])
    if values.size != 1 or (role == "liver" and values[0] == 1):
        return None
    if role == "lesion" and np.count_nonzero(array) * float(np.prod(reference.spacing)) / 1000 > LIVER_SIZED_ML:
        return None  # a liver's size: the 1s of a 0/1/2 map named for its patient's tumour ("HCC_006.nii.gz")
    LOG.warning("%s: holds one label (%s) and is named as %s: its voxels are read as %s", path, values[0],
                "lesions" if role == "lesion" else "the liver", "lesions" if role == "lesion" else "liver")
    mask = reference.with_array((array == values[0]).astype(np.uint8), str(path))
    return (None, mask) if role == "lesion" else (mask, mask.with_array(np.zeros_like(mask.array)))


def _on_the_voxels_of(labels: Volume, reference: Volume) -> Optional[np.ndarray]:
    """The label map's array in the reference's voxel order where both hold the same voxels stored
    in another order (axes swapped or flipped, as tools that save in RAS order write them), else None."""
    from ..volume import to_axial_lps

    axial_labels, labels_order = to_axial_lps(labels)
    axial_reference, reference_order = to_axial_lps(reference)
    if not axial_labels.same_grid(axial_reference):
        return None
    return np.ascontiguousarray(reference_order.undo(labels_order.apply(labels.array)))


def _read_sheared(path: Path, resample: bool) -> Volume:
    import nibabel as nib

    _check_nifti(path)  # a damaged header (an affine of NaN, of no thickness) is told as such, not as a shear
    shape = nib.load(str(path)).shape
    _check_shape(path, len(shape), shape, 1)
    check_image_fits(tuple(reversed(shape)), 4, path)
    if not resample:
        raise GeometryError("the label map's affine is sheared (the grid of a gantry-tilted scan), so it lies on "
                            "no regular grid", path, "give the label map on the image's regular grid, as "
                            "liverlesionseg segment writes it")
    return read_sheared_nifti(path)


# --- checks ------------------------------------------------------------------------------------

def _check_shape(path: Path, dimension: int, size, components: int) -> None:
    if components != 1:
        raise InputError(f"a vector or colour image ({components} components per voxel)", path,
                         "give a grey-scale CT volume")
    if dimension < 3 or min(size[:3]) < 2:
        raise GeometryError(f"a 2-D image (size {' x '.join(map(str, size))}), not a volume", path,
                            "give a 3-D volume of several slices")
    if dimension > 3:
        raise GeometryError(f"a {dimension}-D image (size {' x '.join(map(str, size))}), not a single 3-D volume", path,
                            "give one 3-D volume (one time point, one channel)")


def _check_nifti(path: Path, itk_spacing: Optional[Sequence[float]] = None) -> None:
    """What SimpleITK hides in a NIfTI file: missing voxels (truncation) or far more than announced (a
    damaged size or data type), NaN or infinite values, an affine that is not numbers, and (given
    the spacing ITK read, `itk_spacing`) a header of two voxel spacings."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:
        told = first_line(exc)
        if told.startswith("Valid slope but invalid intercept"):  # nibabel's words on scl_slope and scl_inter
            told = f"its scaling slope (scl_slope) is set but its intercept (scl_inter) is {told.split()[-1]}"
        raise InputError(f"cannot read the NIfTI header ({told})", path, "the file may be damaged; export it again"
                         ) from None
    if not np.all(np.isfinite(image.affine)):
        raise GeometryError("its affine (the header's sform or qform) holds values that are not numbers", path,
                            "write it again from the tool that made it")
    axes = image.affine[:3, :3]
    # slices of no thickness were told as "two slices at the same position ... remove the duplicate files"
    if abs(np.linalg.det(axes)) <= 1e-6 * np.prod(np.linalg.norm(axes, axis=0)):
        raise GeometryError("its affine (the header's sform or qform) gives a voxel axis no length, or lays the "
                            "voxel axes in one plane", path, "write it again from the tool that made it")
    if itk_spacing is not None:
        _check_one_spacing(path, itk_spacing, image.affine)
    _warn_of_no_position(path, image.header)
    proxy = image.dataobj
    announced = int(np.prod(proxy.shape)) * proxy.dtype.itemsize
    needed = proxy.offset + announced
    if path.name.lower().endswith(".gz"):
        try:
            available = needed if _gzip_trailer_says(path, needed) else _gzip_length(path)
        except (EOFError, OSError, zlib.error):
            raise InputError("the compressed file is truncated or damaged", path, "export it again") from None
    else:
        available = path.stat().st_size
    if available < needed:
        raise InputError(f"the file is truncated: it holds {available} of the {needed} bytes its header announces",
                         path, "export it again")
    _refuse_surplus(path, available - proxy.offset, announced, proxy.shape, proxy.dtype)
    if np.issubdtype(proxy.dtype, np.floating):
        _check_finite(path, np.asarray(proxy.get_unscaled()))


def _warn_of_no_position(path: Path, header) -> None:
    """A warning where a NIfTI with voxel sizes gives neither a sform nor a qform (both codes 0, or a
    code no reader knows): it is read at 0, 0, 0 in voxel order, the lesion table's positions are not
    the patient's, and nothing said so. One of 1 mm voxels is a bare array, which `geometry_caveats` tells."""
    if int(header["sform_code"]) or int(header["qform_code"]) or np.allclose(header["pixdim"][1:4], 1):
        return
    LOG.warning("%s: its header gives no position or orientation (sform_code and qform_code 0): it is read as NIfTI "
                "reads such a file, the first voxel at 0, 0, 0 and its axes in voxel order; the segmentation lies on "
                "its grid, but the positions in the lesion table are not the patient's (write the image with its "
                "affine to have them)", path)


def _check_nrrd(path: Path, reader: sitk.ImageFileReader) -> None:
    """Refuse a NRRD holding far more voxels than its header announces (ITK reads the first of them)."""
    size, dtype = reader.GetSize(), _dtype(reader.GetPixelID())
    if dtype is None:
        return
    announced = int(np.prod(size)) * reader.GetNumberOfComponents() * dtype.itemsize
    held = nrrd_data_length(path, announced)
    if held is not None:
        _refuse_surplus(path, held, announced, size, dtype)


def _check_metaimage(path: Path, reader: sitk.ImageFileReader) -> None:
    """Refuse a MetaImage holding far more voxels than its header announces, and warn of one holding
    whole slices more (ITK reads the first of them), as for a NIfTI or NRRD; refuse one whose geometry
    holds numbers ITK reads as others; warn of one whose header gives no voxel spacing. No library
    tells where the header ends: the format makes its ElementDataFile line the last."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    last = re.search(rb"^ElementDataFile *= *(.*?)[ \t]*\r?\n", head, flags=re.M)
    if last is None:  # ITK's reader requires the line: a header longer than any it writes
        return
    header = head[:last.start()]
    _check_metaimage_numbers(path, header)
    if not re.search(rb"^Element(Spacing|Size) *=", header, flags=re.M):
        LOG.warning("%s: its header gives no voxel spacing (no ElementSpacing line): it is read as the MetaImage "
                    "format says, with voxels of 1 x 1 x 1 mm; volumes in mL and diameters in mm are right only if "
                    "they are (write the image with its spacing to be sure)", path)
    size, dtype = reader.GetSize(), _dtype(reader.GetPixelID())
    held = _metaimage_data_length(path, header, last)
    if dtype is not None and held is not None:
        _refuse_surplus(path, held, int(np.prod(size)) * reader.GetNumberOfComponents() * dtype.itemsize, size, dtype)


def _check_metaimage_numbers(path: Path, header: bytes) -> None:
    """Refuse a MetaImage whose spacing, position or orientation line holds NaN or infinity, or a side
    of 0 or less: ITK reads NaN in them as 0 and a negative side as its size, so the lesions' positions
    or volumes would be another image's, with nothing said."""
    for field in ("ElementSpacing", "ElementSize", "Offset", "Position", "Origin", "TransformMatrix", "Rotation",
                  "Orientation"):
        line = re.search(rb"^" + field.encode() + rb" *= *(.*?)[ \t]*\r?$", header, flags=re.M)
        if line is None:
            continue
        numbers = []
        for word in line[1].decode(errors="replace").split():
            with contextlib.suppress(ValueError):  # what Python does not read as a number is left to ITK
                numbers.append(float(word))
        spacing, said = field.startswith("Element"), line[1].decode(errors="replace")
        if not all(math.isfinite(n) and (n > 0 or not spacing) for n in numbers):
            what = ("a voxel side of 0 or less, or one that is not a number (ITK would read another)" if spacing else
                    "a value that is not a number (ITK would read it as 0)")
            raise GeometryError(f"its {field} '{said}' holds {what}", path, "write it again from the tool that made it")


def _metaimage_data_length(path: Path, header: bytes, last: re.Match) -> Optional[int]:
    """Bytes of voxel data (decompressed) a MetaImage holds, after its `header` and its `last` line
    (ElementDataFile) or in the one data file that line names; None where that is not simply counted
    (a list or pattern of data files, a HeaderSize, a damaged stream)."""
    if re.search(rb"^HeaderSize *=", header, flags=re.M):
        return None
    if last[1] == b"LOCAL":
        source, start = path, last.end()
    else:
        source, start = path.parent / os.fsdecode(last[1]), 0
        if last[1] in (b"", b"LIST") or b"%" in last[1] or not source.is_file():
            return None  # ITK's reader says what is missing
    if not re.search(rb"^CompressedData *= *True", header, flags=re.M | re.I):
        return source.stat().st_size - start
    inflate, length = zlib.decompressobj(), 0
    try:
        with open(source, "rb") as fh:
            fh.seek(start)
            while chunk := fh.read(1 << 22):
                length += len(inflate.decompress(chunk))
        return length + len(inflate.flush())
    except zlib.error:
        return None  # damaged: ITK's reader says so


def nrrd_data_length(path: Path, expected: int) -> Optional[int]:
    """Bytes of voxel data (decompressed) a NRRD holds after its header, `expected` of them when its
    gzip trailer says so; None where that is not simply counted (a detached data file, skipped bytes
    or lines, text encodings)."""
    import bz2

    import nrrd

    try:
        with open(path, "rb") as fh:
            header = nrrd.read_header(fh)
            start = fh.tell()
    except Exception:  # ITK read the header: what pynrrd cannot read is left to ITK
        return None
    if {"data file", "datafile", "byte skip", "line skip"} & set(header):
        return None
    encoding = header.get("encoding")
    if encoding == "raw":
        return path.stat().st_size - start
    if encoding in ("gzip", "gz") and _gzip_trailer_says(path, expected):
        return expected
    opener = {"gzip": gzip.GzipFile, "gz": gzip.GzipFile, "bzip2": bz2.BZ2File, "bz2": bz2.BZ2File}.get(encoding)
    if opener is None:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return _stream_length(opener(fileobj=fh))
    except (EOFError, OSError, zlib.error):
        return None  # damaged: ITK's reader says so


def _refuse_surplus(path: Path, held: int, announced: int, shape: Sequence[int], dtype: np.dtype) -> None:
    """Read as announced ((i, j, k) `shape` of `dtype`), an image holding twice its header's voxels or
    more is a fragment of its data (a 2 x 512 strip, or 8-bit noise, which was segmented): refused.
    One holding whole slices more is read without them, with a warning."""
    what = f"{' x '.join(map(str, shape))} of {dtype}"
    if announced and held >= 2 * announced:
        raise InputError(f"it holds {held / announced:.1f} times the {announced} bytes of voxels its header "
                         f"announces ({what}): the header's size or data type is wrong", path, "export it again")
    slice_bytes = announced // shape[2] if len(shape) > 2 and shape[2] else 0
    if slice_bytes and held - announced >= slice_bytes:
        LOG.warning("%s: it holds %d bytes of voxels more than its header announces (%s), as many as %d slice(s): "
                    "they are not read; check that the volume covers what it should", path, held - announced, what,
                    (held - announced) // slice_bytes)


def _check_one_spacing(path: Path, itk_spacing: Sequence[float], affine: np.ndarray) -> None:
    """A GeometryError where ITK's voxel spacing is not the affine's that nibabel reads: where the sform's
    scales differ from the header's pixdim, ITK (and so Slicer) takes pixdim, with a warning no one sees,
    and nibabel the sform; the lesions' volumes would depend on the reader (three times over, one such
    file of the sample case)."""
    affine_spacing = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    if not np.allclose(itk_spacing, affine_spacing, rtol=1e-3, atol=1e-4):
        raise GeometryError(f"its header gives two voxel spacings: {_mm(itk_spacing)} (pixdim, which ITK and so Slicer "
                            f"read) and {_mm(affine_spacing)} (its sform, which nibabel reads)", path,
                            "write it again from the tool that made it, with pixdim matching the affine")


def _mm(spacing: Sequence[float]) -> str:
    return " x ".join(f"{value:.4g}" for value in spacing) + " mm"


def _gzip_trailer_says(path: Path, length: int) -> bool:
    """Whether the gzip stream ending the file says in its last 4 bytes (ISIZE, its length modulo
    2**32) that it holds `length` bytes: a whole stream of that length does, a cut, damaged or
    longer one almost never. Where it does not, the stream is decompressed and counted (0.6 s for
    a CT of 207 slices), so this only spares that count for a file that is as its header says."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 4:
            return False
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little") == length % 2 ** 32


def _gzip_start_damage(path: Path) -> Optional[str]:
    """What the gzip reader says of a .gz file whose start (its header, for an image) cannot be
    decompressed; None for another file, or one whose start decompresses."""
    if not path.name.lower().endswith(".gz"):
        return None
    try:
        with gzip.open(path, "rb") as f:
            f.read(1 << 16)
    except (EOFError, OSError, zlib.error) as exc:
        return first_line(exc)
    return None


def _gzip_length(path: Path) -> int:
    with gzip.open(path, "rb") as f:
        return _stream_length(f)


def _stream_length(stream) -> int:
    length = 0
    while chunk := stream.read(1 << 24):
        length += len(chunk)
    return length


def _check_finite(path: Path, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = np.count_nonzero(~np.isfinite(array))
        if bad:
            raise InputError(f"{bad} voxels are NaN or infinite", path, "give an image with finite values")


def _itemsize(pixel_id: int) -> int:
    """Bytes a voxel of this SimpleITK pixel type takes (8 where it cannot be told)."""
    dtype = _dtype(pixel_id)
    return 8 if dtype is None else dtype.itemsize


def _dtype(pixel_id: int) -> Optional[np.dtype]:
    """The numpy type of a voxel of this SimpleITK pixel type (of one component); None where it cannot be told."""
    try:
        return sitk.GetArrayViewFromImage(sitk.Image([1, 1, 1], pixel_id)).dtype
    except RuntimeError:
        return None


def _size(volume: Volume) -> str:
    return " x ".join(str(n) for n in reversed(volume.shape)) + " (i x j x k)"


def _geometry(volume: Volume) -> str:
    def fmt(values):
        return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"

    return (f"spacing {fmt(volume.spacing)}, origin {fmt(volume.origin)}, "
            f"direction {fmt(volume.direction.ravel())}")
