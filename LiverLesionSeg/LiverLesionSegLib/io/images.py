"""NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd: Grand Challenge's format)
images and label maps, read through SimpleITK, and the refusals of images that are no CT.

SimpleITK gives the geometry in LPS (it converts NIfTI's RAS), as Slicer reads the same files.
What it hides (a truncated file, NaN voxels, a header announcing part of the data) is checked
before it reads (`header_checks`). Label maps hold 0 background, 1 liver and 2 lesion; the liver
mask is labels 1 and 2 (the lesions lie inside the liver).
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Optional, TypeVar

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError, first_line, refuse_an_empty_file, renamed
from ..memory import check_image_fits
from ..volume import Volume
from .atomic import NOT_TEXT, is_text_path
from .dataset_labels import as_liver_and_lesion_labels, dataset_json_place, label_roles_for, named_in
from .header_checks import (check_direction, check_finite, check_metaimage, check_metaimage_size, check_nifti,
                            check_nifti_affine, check_nrrd, check_origin, check_shape, in_mm, refuse_non_finite,
                            refuse_what_itk_could_not_read_in_a_metaimage)
from .itk_words import VOXELS_SHORT, itk_reason, metaimage_failure, reader_notes, tells_of_the_header
from .native_output import held_back
from .regularize import mask_to_grid
from .sheared import is_sheared, is_sheared_nifti_error, on_a_regular_grid, read_sheared_nifti, sheared_stack
from .stored_bytes import (checked_meanwhile, nrrd_encoding_misstated, refuse_a_damaged_gzip,
                           refuse_a_missing_data_file, refuse_another_data_type, voxel_dtype, voxel_itemsize)

LOG = logging.getLogger("LiverLesionSeg")
T = TypeVar("T")

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


def _sampled_share(volume: Volume, holds: Callable[[np.ndarray], np.ndarray]) -> Optional[float]:
    """The share of a thirty-second of the voxels (every second slice, every fourth row and column:
    milliseconds) for which `holds` is true; None for an image of no voxels."""
    sample = volume.array[::2, ::4, ::4]
    return np.count_nonzero(holds(sample)) / sample.size if sample.size else None


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
    low, high = RAW_SOFT_TISSUE
    share = _sampled_share(volume, lambda sample: (sample >= low) & (sample <= high))
    if share is not None and share >= MIN_RAW_SOFT_TISSUE_SHARE:
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
    share = _sampled_share(volume, lambda sample: sample > DENSE_HU)
    if share is not None and share >= MAX_DENSE_SHARE:
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


AIR_AND_FAT_BELOW_HU = -50.0
# Of the voxels below -50 HU (fat, air, lung, bowel gas): the shared cases hold 63 to 75 %, a box tight
# round their livers 23 to 35 %, the same clipped to a window of -100 to 400 as pipelines store them;
# an MR or PET image none.
MIN_AIR_AND_FAT_SHARE = 0.005


def refuse_an_image_without_air(volume: Volume, where: str | os.PathLike) -> None:
    """An InputError where next to no voxel lies below -50: a CT of the abdomen in Hounsfield units
    holds fat, air, lung and bowel gas there in every part of it. An MR image given as a NIfTI (a
    liver MR is as common as a liver CT) was segmented into a 5-litre liver and an 830 mL lesion,
    with cautions that it might not be a CT; a PET image, a CT of other values, likewise."""
    share = _sampled_share(volume, lambda sample: sample < AIR_AND_FAT_BELOW_HU)
    if share is not None and share < MIN_AIR_AND_FAT_SHARE:
        raise InputError(f"only {100 * share:.2g} % of its voxels lie below {AIR_AND_FAT_BELOW_HU:.0f}, where a CT's "
                         "fat, air, lung and bowel gas lie (over half of an abdominal CT; a fifth of a box round the "
                         "liver): not a CT in Hounsfield units (an MR or PET image, a CT masked to one organ, or "
                         "other values)", where, "give a CT in Hounsfield units, as scanned")


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
    raise InputError(f"its voxel spacing {in_mm(volume.spacing)} is not a CT's (each side {low:g} to {high:g} mm): "
                     "the header's spacing is damaged, or in other units than millimetres", where,
                     "export it again with its spacing in millimetres")


def refuse_a_non_ct(volume: Volume, where: str | os.PathLike) -> None:
    """Refuse what is given as a CT but is blank, a label map, a CT's values without their rescale or
    beyond Hounsfield units, a normalised image, one without air or fat (an MR image), an array saved
    with its axes reversed and no geometry, or of voxels no CT has or placed where no scan lies."""
    check_origin(where, volume.origin)  # a DICOM series' or a Slicer volume's (a file's is checked as read)
    refuse_an_implausible_spacing(volume, where)
    span = value_span(volume)
    refuse_a_blank_image(volume, where, span)
    refuse_a_label_map(volume, where, span)
    refuse_values_without_rescale(volume, where)
    refuse_values_beyond_hounsfield(volume, where)
    refuse_a_normalised_image(volume, where, span)
    refuse_an_image_without_air(volume, where)
    refuse_axes_out_of_order(volume, where)


def read_image(path: str | os.PathLike, resample_shear: bool = True) -> Volume:
    """A 3-D scalar image with its LPS geometry; refuse 2-D, 4-D, vector, non-finite or damaged files.
    An image whose voxel axes are sheared (a gantry tilt) is resampled onto a regular grid (`sheared`)
    where `resample_shear`, else left on its sheared grid (a label map, placed by `read_label_map`)."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path, "check the path")
    if not path.is_file():
        raise InputError("is not a file", path, f"give {IMAGE_FILES}")
    refuse_an_empty_file(path)
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
    image = _read_with_itk(path)
    volume = image if isinstance(image, Volume) else Volume.from_sitk(image, str(path))  # (a sheared NIfTI)
    if volume.array.dtype == np.float64:
        volume.array = volume.array.astype(np.float32)
    check_finite(path, volume.array)
    if is_sheared(volume.direction) and resample_shear:  # a tilted scan's grid, its axes as given
        return on_a_regular_grid(volume, path)
    return volume


def _unreadable_header(path: Path, reason: str) -> InputError:
    return InputError(f"cannot read the image header ({reason})", path,
                      "the file may be damaged or not an image; export it again")


def _read_with_itk(path: Path) -> sitk.Image | Volume:
    """The image as SimpleITK reads it, with the checks of what it hides (`check_nifti`, `check_metaimage`
    before its read; the compressed stream's check beside it, `checked_meanwhile`; the voxels a NRRD or
    MetaImage holds after it); a sheared NIfTI, which ITK refuses, as `_read_sheared` reads it."""
    if path.name.lower().endswith((".nii", ".nii.gz")):
        check_nifti_affine(path)  # ITK's reader hangs on some affines that nibabel reads at once
    refuse_a_missing_data_file(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    _, exc, header_printed = _held_back(reader.ReadImageInformation)
    if exc is not None:
        if is_sheared_nifti_error(path, itk_reason(exc)):
            with checked_meanwhile(path):  # nibabel does not read the CRC either
                return _read_sheared(path)  # (what ITK printed on the way is left out with its read)
        refuse_a_damaged_gzip(path)  # ITK only says it knows no reader for the file
        if path.name.lower().endswith((".mha", ".mhd")):
            refuse_what_itk_could_not_read_in_a_metaimage(path)
        raise _unreadable_header(path, itk_reason(exc, header_printed)) from None
    check_image_fits(tuple(reversed(reader.GetSize())), voxel_itemsize(reader.GetPixelID()), path)
    name, floats = path.name.lower(), None
    metaimage = name.endswith((".mha", ".mhd"))
    if name.endswith((".nii", ".nii.gz")):  # before the shape's check: a damaged dim[2] of 1 made "a 2-D image"
        spacing = reader.GetSpacing()
        floats = check_nifti(path, spacing if len(spacing) == 3 else None, look_at_floats=False)
    check_shape(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents())
    check_direction(path, reader.GetDirection())
    if metaimage:
        check_metaimage(path)
    check_origin(path, reader.GetOrigin())
    with checked_meanwhile(path, floats) as inflated:
        image, exc, data_printed = _held_back(reader.Execute)
    # ITK's MetaImage reader goes on after its decompression failed (it only prints so), with voxels of no one's
    failure = (itk_reason(exc, data_printed) if exc is not None else
               metaimage_failure(data_printed) if metaimage else None)
    if failure is not None:
        if tells_of_the_header(failure):  # (a spacing of 0, met only as the voxels are read)
            raise _unreadable_header(path, failure)
        short = VOXELS_SHORT.search(failure)
        dtype = voxel_dtype(reader.GetPixelID())
        if short and dtype is not None:  # exactly its voxels at another data type's size: not cut short
            refuse_another_data_type(path, int(short[1]), reader.GetSize(), dtype)
        misstated = nrrd_encoding_misstated(path) if short and name.endswith((".nrrd", ".nhdr")) else None
        if misstated:
            raise _unreadable_header(path, misstated)
        raise InputError(f"cannot read the image data ({failure})", path, "the file may be truncated or damaged, "
                         "or the data file an .nhdr or .mhd header names missing; export it again")
    if name.endswith((".nrrd", ".nhdr")):
        check_nrrd(path, reader, inflated.length)
    elif metaimage:
        check_metaimage_size(path, reader, inflated.length)
    refuse_non_finite(path, inflated.non_finite)  # (after the sizes: voxels read as another type are no values)
    _tell_reader_notes(path, header_printed + data_printed)
    return image


def _held_back(call: Callable[[], T]) -> tuple[Optional[T], Optional[RuntimeError], list[str]]:
    """`call()`'s result or RuntimeError (ITK's), and the lines C libraries printed meanwhile, held
    back from the terminal: they make an error's reason, or a warning naming the file."""
    with held_back(pass_on=False) as native:
        try:
            return call(), None, native.lines()
        except RuntimeError as exc:
            return None, exc, native.lines()


def _tell_reader_notes(path: Path, printed: list[str]) -> None:
    """What ITK printed on a file it read all the same, as one warning naming it (not its lines,
    "WARNING: In …/itkNiftiImageIO.cxx, line 2008" among them)."""
    if printed:
        LOG.warning("%s: the image reader reports: %s; read as it reads it", path, reader_notes(printed, path))


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
    """(liver, lesion) uint8 0/1 masks on `reference`'s grid from a 0/1/2 label map (a dataset's
    whose dataset.json names its labels otherwise: by those names), or from a Slicer segmentation
    file by its segments' names (`seg_nrrd`). Without `require_liver`, a
    segmentation of lesions only (no segment, or no voxel, of liver outside them) gives the liver
    as None: not segmented."""
    from .seg_nrrd import is_slicer_segmentation, read_slicer_segmentation

    if is_slicer_segmentation(path):
        return read_slicer_segmentation(path, reference, require_liver)
    array = label_values_on(path, reference)
    roles = label_roles_for(Path(path))  # the names a dataset.json gives its labels (or a collection's list)
    if roles is not None:
        array = as_liver_and_lesion_labels(array, roles, Path(path))
        if require_liver and "liver" not in roles.values():  # a dataset of the liver's vessels and tumours
            raise InputError(f"{named_in(Path(path))} names no label of the liver: the liver is not segmented, and a "
                             "case needs it", path, "give a dataset whose label maps hold the liver")
    named = None if require_liver or roles is not None else _one_label_named(path, array, reference)
    if named is not None:
        return named
    unknown = (array != 0) & (array != 1) & (array != 2)
    if unknown.any():
        values = np.unique(array[unknown])
        # numpy's shortest text of each stored value: 1.000001 is not shown as 1
        shown = ", ".join(str(v) for v in values[:10]) + (" ..." if values.size > 10 else "")
        scaling = _scaling_of_labels(Path(path))  # a label map its header's scaling shifts
        # or a dataset of organs whose labels no dataset.json names
        raise InputError(f"the label map holds label(s) {shown} besides 0 background, 1 liver, 2 lesion{scaling}",
                         path, "write it again without a scaling (scl_slope 0 or 1, scl_inter 0)" if scaling else
                         f"give a label map with 0, 1 and 2 only, or name the dataset's labels in a dataset.json "
                         f'{dataset_json_place(Path(path))}, as nnU-Net\'s '
                         '{"labels": {"background": 0, "liver": 1, ...}}')
    if not array.any():  # a blank export, or another image of the scan given for its labels
        LOG.warning("%s: the label map holds background (0) only, no voxel of liver or lesion; if it should, "
                    "give the label map that holds them", path)
    lesion = reference.with_array((array == 2).astype(np.uint8), str(path))
    if not require_liver and not (array == 1).any():
        return None, lesion
    return reference.with_array(((array == 1) | (array == 2)).astype(np.uint8), str(path)), lesion


def _scaling_of_labels(path: Path) -> str:
    """", as its header scales its stored values (scl_slope 1, scl_inter 1)" for a NIfTI label map whose
    header scales them, which a label map's never needs (damage tool, labels seeds 37008, 37045: the
    scaling read as labels 3, 99 …); "" otherwise."""
    if suffix_by_content(path) not in (".nii", ".nii.gz"):
        return ""
    import nibabel as nib

    with nib.openers.ImageOpener(str(path)) as opened:  # as stored: nibabel's image shows a NaN slope's intercept NaN
        header = nib.load(str(path)).header_class.from_fileobj(opened)
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    if (math.isnan(slope) or slope in (0, 1)) and (math.isnan(inter) or inter == 0):  # (ITK adds an intercept
        return ""  # beside a NaN slope: labels seed 37008)
    return f", as its header scales its stored values (scl_slope {slope:g}, scl_inter {inter:g})"


def label_values_on(path: str | os.PathLike, reference: Volume) -> np.ndarray:
    """A label map's or mask's values on `reference`'s voxels: on its grid, on its voxels stored in
    another order, or on the sheared grid of the tilted scan it was resampled from; a GeometryError
    where it was made on another image."""
    labels = read_image(path, resample_shear=False)
    if is_sheared(labels.direction):  # as the CT's slices were, where it was read from this tilted grid
        array = _sheared_labels_on(labels, reference, path)
    else:
        array = labels.array if labels.same_grid(reference) else _on_the_voxels_of(labels, reference)
    if array is None:
        if labels.shape != reference.shape:
            raise GeometryError(f"the label map has {_size(labels)} voxels but the image {_size(reference)}", path,
                                "give the label map made on this image")
        if np.allclose(labels.spacing, reference.spacing) and np.allclose(labels.direction, reference.direction):
            # only the origin differs: the image's header may be the damaged one (damage tool, train seeds)
            raise GeometryError(f"the label map lies elsewhere than the image: its origin is {_fmt(labels.origin)}, "
                                f"the image's {_fmt(reference.origin)} (the same voxel size and axes)", path,
                                "give the label map made on this image; if it is, one of the two headers is damaged: "
                                "export the damaged one again")
        raise GeometryError(f"the label map's geometry ({_geometry(labels)}) differs from the image's "
                            f"({_geometry(reference)})", path, "give the label map made on this image")
    return array


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


def _read_sheared(path: Path) -> Volume:
    import nibabel as nib

    check_nifti(path)  # a damaged header (an affine of NaN, of no thickness) is told as such, not as a shear
    shape = nib.load(str(path)).shape
    check_shape(path, len(shape), shape, 1)
    check_image_fits(tuple(reversed(shape)), 4, path)
    try:
        volume = read_sheared_nifti(path)
    except (OSError, EOFError, zlib.error) as exc:  # nibabel reads the stream as it goes: where it reaches the
        # end, gzip checks the CRC (damage tool, nifti seed 42018: an internal error, "BadGzipFile: CRC check failed")
        refuse_a_damaged_gzip(path)
        raise InputError(f"cannot read the image data ({first_line(exc)})", path,
                         "the file may be truncated or damaged; export it again") from None
    check_origin(path, volume.origin)
    return volume


def _sheared_labels_on(labels: Volume, reference: Volume, path: Path) -> np.ndarray:
    """A label map on a tilted scan's sheared grid, on the grid of the CT resampled from that scan: each
    label resampled as the CT's slices were (a lesion's within the liver's, so that no voxel between the
    two is lost). Refused for a CT that was not resampled from these slices."""
    if reference.acquired is None:
        raise GeometryError("the label map's voxel axes are sheared (the grid of a gantry-tilted scan), but the "
                            "image's are not", path, "give the label map made on this image")
    array, stack = sheared_stack(labels, path)
    if stack.shape != reference.acquired.shape or len(stack.positions) != len(reference.acquired.positions):
        raise GeometryError(f"the label map has {_size(labels)} voxels but the image's slices as acquired "
                            f"{reference.acquired.shape[1]} x {reference.acquired.shape[0]} x "
                            f"{len(reference.acquired.positions)}", path, "give the label map made on this image")
    placed = np.zeros(reference.shape, array.dtype)
    for value in np.unique(array[array != 0]):  # 1 liver, then 2 lesion over it (any other label is refused after)
        within = array >= value if value > 0 else array == value
        placed[mask_to_grid(within, stack, reference) > 0] = value
    return placed


def _size(volume: Volume) -> str:
    return " x ".join(str(n) for n in reversed(volume.shape)) + " (i x j x k)"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def _geometry(volume: Volume) -> str:
    return (f"spacing {_fmt(volume.spacing)}, origin {_fmt(volume.origin)}, "
            f"direction {_fmt(volume.direction.ravel())}")
