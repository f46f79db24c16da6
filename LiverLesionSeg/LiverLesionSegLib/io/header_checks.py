"""What SimpleITK hides in the image files it reads: a shape that is no single volume, NIfTI voxels
missing, surplus, NaN or infinite, an affine that is not numbers or gives two spacings, no position,
and MetaImage geometry numbers it reads as others. Each check refuses with one line naming the file,
or warns where the image can be read as its header says."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError, first_line
from .seg_nrrd import is_slicer_segmentation
from .stored_bytes import (FloatVoxels, gzip_length, gzip_trailer_says, metaimage_data, metaimage_header,
                           nrrd_data_length, nrrd_header, refuse_a_damaged_gzip, refuse_another_data_type,
                           refuse_surplus, voxel_dtype)

LOG = logging.getLogger("LiverLesionSeg")


def check_shape(path: Path, dimension: int, size, components: int) -> None:
    if components != 1:
        if is_slicer_segmentation(path):  # its segments in layers, where a CT belongs (a label map's are read apart)
            raise InputError(f"is a 3D Slicer segmentation (its segments in {components} layers), not a CT image",
                             path, "give the CT image itself (a segmentation goes to measure, evaluate or train "
                             "as the reference)")
        raise InputError(f"a vector or colour image ({components} components per voxel)", path,
                         "give an image of one value per voxel: a grey-scale CT, or a label map")
    sides = " x ".join(map(str, size))
    if dimension < 2 or 0 in size:  # was told "a 2-D image (size ), not a volume"
        raise GeometryError(f"its header gives it no voxels or a single row of them ({dimension} dimension(s), "
                            f"size {sides or 'none'})", path, "the header may be damaged; export it again")
    if dimension < 3 or min(size[:3]) < 2:
        raise GeometryError(f"a 2-D image (size {sides}), not a volume", path, "give a 3-D volume of several slices")
    if dimension > 3:
        raise GeometryError(f"a {dimension}-D image (size {sides}), not a single 3-D volume", path,
                            "give one 3-D volume (one time point, one channel)")


def check_direction(path: Path, direction: Sequence[float]) -> None:
    """Refuse a 3-D image whose orientation's axes are not unit vectors (a MetaImage TransformMatrix of
    2 0 0 0 2 0 0 0 2, found by `tools/damage_inputs.py --kind mha`, seed 15013): ITK keeps them as
    given, and the lesions' positions were scaled without a word. (Axes at other than right angles, a
    sheared grid, are resampled after the read: `sheared`.)"""
    lengths = np.linalg.norm(np.asarray(direction, dtype=float).reshape(3, 3), axis=0)
    usable = np.isfinite(lengths) & (lengths > 0)  # an axis of no length, or not a number: ITK's reader says so
    if not np.allclose(lengths[usable], 1, atol=1e-3):
        raise GeometryError(f"its orientation's axes have lengths {', '.join(f'{v:.4g}' for v in lengths)}, where "
                            "they must be 1 (unit vectors): a damaged header would place the voxels elsewhere", path,
                            "write it again from the tool that made it")


MAX_ORIGIN_MM = 1e5  # 100 m: a scanner's coordinates lie within a few metres of its centre


def check_origin(where: str | os.PathLike | None, origin: Sequence[float]) -> None:
    """Refuse an image whose origin lies farther from the scanner's centre than any scan (a NIfTI's
    srow_x[3] of 1e30, found by `tools/damage_inputs.py --kind nifti`, seed 16013): read so, the
    voxels' positions lost their millimetres to rounding, two grids 10 mm apart compared as one, and
    the lesion table gave centres at 1e30 mm."""
    far = max((abs(float(v)) for v in origin), default=0.0)
    if not far <= MAX_ORIGIN_MM:  # (NaN too)
        shown = ", ".join(f"{float(v):.4g}" for v in origin)
        raise GeometryError(f"its origin ({shown}) lies {far:.3g} mm from the scanner's centre, farther than any scan "
                            "lies: a damaged header", where, "write it again from the tool that made it")


def check_nifti_affine(path: Path) -> tuple[object, np.ndarray]:
    """The NIfTI header (nibabel's image) and its affine in mm, refused where the affine is not numbers
    or of no volume. Run before ITK reads the header too: ITK's reader never returned on an sform of a
    0 and a NaN (`tools/damage_inputs.py --kind train`, seed 28063), which no other check reached."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:
        refuse_a_damaged_gzip(path)  # its header's bytes in a damaged stream: told as the stream's damage
        told = first_line(exc)
        if told.startswith("Valid slope but invalid intercept"):  # nibabel's words on scl_slope and scl_inter
            told = f"its scaling slope (scl_slope) is set but its intercept (scl_inter) is {told.split()[-1]}"
        raise InputError(f"cannot read the NIfTI header ({told})", path, "the file may be damaged; export it again"
                         ) from None
    if min(image.shape, default=1) <= 0:  # ITK reads a 0 as 1 ("a 2-D image (size 512 x 1 x 8)"), and -1 as none
        raise GeometryError(f"its header gives it no voxels along an axis (dim: {' x '.join(map(str, image.shape))}): "
                            "the header is damaged", path, "export it again")
    affine = nifti_affine_mm(image)
    if not np.all(np.isfinite(affine)):
        raise GeometryError("its affine (the header's sform or qform) holds values that are not numbers", path,
                            "write it again from the tool that made it")
    _check_unit(path, _spatial_unit(image.header), affine)
    axes = affine[:3, :3]
    # slices of no thickness were told as "two slices at the same position ... remove the duplicate files"
    if abs(np.linalg.det(axes)) <= 1e-6 * np.prod(np.linalg.norm(axes, axis=0)):
        raise GeometryError("its affine (the header's sform or qform) gives a voxel axis no length, or lays the "
                            "voxel axes in one plane", path, "write it again from the tool that made it")
    return image, affine


def check_nifti(path: Path, itk_spacing: Optional[Sequence[float]] = None, look_at_floats: bool = True
                ) -> Optional[FloatVoxels]:
    """What SimpleITK hides in a NIfTI file: missing voxels (truncation) or far more than announced (a
    damaged size or data type), NaN or infinite values (which ITK reads as 0), an affine that is not
    numbers, and (given the spacing ITK read, `itk_spacing`) a header of two voxel spacings. Without
    `look_at_floats`, the float voxels of a .nii.gz are not decompressed here but returned, to be
    looked at while ITK reads them (`checked_meanwhile`)."""
    image, affine = check_nifti_affine(path)
    if itk_spacing is not None:
        _check_one_spacing(path, itk_spacing, affine)
    _warn_of_no_position(path, image.header)
    proxy = image.dataobj
    announced = int(np.prod(proxy.shape)) * proxy.dtype.itemsize
    needed = proxy.offset + announced
    if path.name.lower().endswith(".gz"):
        try:
            available = needed if gzip_trailer_says(path, needed) else gzip_length(path)
        except (EOFError, OSError, zlib.error):
            raise InputError("the compressed file is truncated or damaged", path, "export it again") from None
    else:
        available = path.stat().st_size
    if available < needed:
        _refuse_shortfall(path, available, needed, proxy)
    refuse_surplus(path, available - proxy.offset, announced, proxy.shape, proxy.dtype)
    if not np.issubdtype(proxy.dtype, np.floating):
        return None
    if path.name.lower().endswith(".gz") and not look_at_floats:
        return FloatVoxels(proxy.offset, announced, proxy.dtype)
    check_finite(path, np.asarray(proxy.get_unscaled()))
    return None


def _refuse_shortfall(path: Path, available: int, needed: int, proxy) -> None:
    """A NIfTI holding fewer bytes than its header announces: cut short, unless its voxels are exactly
    what the header's shape takes at another data type's size (a damaged datatype), or a whole gzip
    stream holds them (it was written so: a damaged size or data type)."""
    held, voxels, dtype = available - proxy.offset, int(np.prod(proxy.shape)), proxy.dtype
    refuse_another_data_type(path, held, proxy.shape, dtype)
    shape = " x ".join(map(str, proxy.shape))
    if path.name.lower().endswith(".gz"):  # the stream was read whole (and its check passed)
        raise InputError(f"its whole compressed stream holds {held} of the {voxels * dtype.itemsize} bytes of voxels "
                         f"its header announces ({shape} of {dtype}): the header's size or data type is wrong", path,
                         "export it again")
    raise InputError(f"the file is truncated: it holds {available} of the {needed} bytes its header announces",
                     path, "export it again")


# The lengths of a NIfTI whose header gives them in metres or microns (xyzt_units), as ITK reads them: in mm
MM_PER_UNIT = {"meter": 1000.0, "micron": 0.001}
UNIT_NAMES = {"meter": "metres", "micron": "microns"}
LIKELY_VOXEL_MM = (0.05, 50.0)  # a CT's voxel sides lie well within this


def nifti_affine_mm(image) -> np.ndarray:
    """A nibabel NIfTI image's affine (IJK to RAS) in millimetres, as ITK reads it."""
    affine = np.array(image.affine, dtype=float)
    affine[:3] *= MM_PER_UNIT.get(_spatial_unit(image.header), 1.0)
    return affine


def _spatial_unit(header) -> str:
    """A NIfTI header's unit of length as nibabel names it ("mm", "meter", "micron"); "unknown" for a
    code NIfTI does not define, which ITK reads as millimetres."""
    try:
        return header.get_xyzt_units()[0]
    except KeyError:
        return "unknown"


def _check_unit(path: Path, unit: str, affine: np.ndarray) -> None:
    """Refuse a NIfTI whose header gives its lengths in metres or microns where its numbers are not (a
    damaged or carelessly set xyzt_units): read so, its voxels are a thousand times too large or small,
    which was told as an origin hundreds of metres away or as two voxel spacings."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if unit in MM_PER_UNIT and not np.all((spacing >= LIKELY_VOXEL_MM[0]) & (spacing <= LIKELY_VOXEL_MM[1])):
        raise GeometryError(f"its header gives its lengths in {UNIT_NAMES[unit]} (xyzt_units), which makes its "
                            f"voxels {in_mm(spacing)}: its numbers are not {UNIT_NAMES[unit]}", path,
                            "write it again with its unit set to millimetres")


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


def _check_one_spacing(path: Path, itk_spacing: Sequence[float], affine: np.ndarray) -> None:
    """A GeometryError where ITK's voxel spacing is not the affine's that nibabel reads: where the sform's
    scales differ from the header's pixdim, ITK (and so Slicer) takes pixdim, with a warning no one sees,
    and nibabel the sform; the lesions' volumes would depend on the reader (three times over, one such
    file of the sample case)."""
    affine_spacing = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    if not np.allclose(itk_spacing, affine_spacing, rtol=1e-3, atol=1e-4):
        raise GeometryError(f"its header gives two voxel spacings: {in_mm(itk_spacing)} (pixdim, which ITK and so "
                            f"Slicer read) and {in_mm(affine_spacing)} (its sform, which nibabel reads)", path,
                            "write it again from the tool that made it, with pixdim matching the affine")


def check_nrrd(path: Path, reader: sitk.ImageFileReader, inflated: Optional[int]) -> None:
    """After ITK read a NRRD: refuse one holding far more voxels than its header announces, and warn of one
    holding whole slices more (ITK reads the first of them), or giving no voxel spacing. `inflated`: the
    bytes its gzip-compressed data held (`checked_meanwhile`), else counted here."""
    size, dtype = reader.GetSize(), voxel_dtype(reader.GetPixelID())
    if dtype is None:
        return
    announced = int(np.prod(size)) * reader.GetNumberOfComponents() * dtype.itemsize
    held = inflated if inflated is not None else nrrd_data_length(path, announced)
    if held is not None:
        refuse_surplus(path, held, announced, size, dtype)
    _warn_of_no_nrrd_spacing(path)


def _warn_of_no_nrrd_spacing(path: Path) -> None:
    """A warning where a NRRD's header gives neither space directions nor spacings: ITK reads its voxels
    as 1 x 1 x 1 mm without a word (a MetaImage without ElementSpacing is warned of alike)."""
    read = nrrd_header(path)
    if read is None:
        return
    fields = read[0]
    if not {"space directions", "spacings"} & set(fields):
        LOG.warning("%s: its header gives no voxel spacing (no space directions or spacings line): it is read as "
                    "NRRD reads such a file, with voxels of 1 x 1 x 1 mm; volumes in mL and diameters in mm are right "
                    "only if they are (write the image with its spacing to be sure)", path)
    elif "space origin" not in fields:
        _warn_of_no_origin(path, "space origin")


def _warn_of_no_origin(path: Path, line: str) -> None:
    """A warning where a NRRD or MetaImage that gives its voxel spacing gives no position (its `line`
    missing): it is read at 0, 0, 0, as a NIfTI without sform and qform is (`_warn_of_no_position`)."""
    LOG.warning("%s: its header gives no position (no %s line): it is read at 0, 0, 0, as its format says; the "
                "segmentation lies on its grid, but the positions in the lesion table are not the patient's (write "
                "the image with its position to have them)", path, line)


def check_metaimage(path: Path) -> None:
    """Before ITK reads a MetaImage: refuse one whose geometry holds numbers ITK reads as others, and warn
    of one whose header gives no voxel spacing."""
    found = metaimage_header(path)
    if found is None:
        return
    header = found[0]
    _check_metaimage_numbers(path, header)
    _refuse_binary_voxels_read_as_text(path, header)
    if not re.search(rb"^Element(Spacing|Size) *=", header, flags=re.M):
        LOG.warning("%s: its header gives no voxel spacing (no ElementSpacing line): it is read as the MetaImage "
                    "format says, with voxels of 1 x 1 x 1 mm; volumes in mL and diameters in mm are right only if "
                    "they are (write the image with its spacing to be sure)", path)
    elif not re.search(rb"^(Offset|Position|Origin) *= *\S", header, flags=re.M):
        _warn_of_no_origin(path, "Offset")


def _refuse_binary_voxels_read_as_text(path: Path, header: bytes) -> None:
    """Refuse a MetaImage whose header says BinaryData = False while its voxels are bytes: told in ITK's
    words, "its voxel data cannot be read as its header describes it (its size, type, encoding or start)"."""
    data = metaimage_data(path)
    if _binary_data(header) or data is None or data[2]:
        return
    source, start, _ = data
    with open(source, "rb") as fh:
        fh.seek(start)
        sample = fh.read(4096)
    if re.search(rb"[^0-9eE+\-.\snaifNAIF]", sample):  # not numbers in text (nan and inf among them)
        raise InputError("says BinaryData = False, so its voxels would be read as numbers written in text, but they "
                         "are bytes: its header is damaged", path, "write it again from the tool that made it")


def _binary_data(header: bytes) -> bool:
    """Whether a MetaImage's voxels are bytes, not numbers in text: unless its header says BinaryData =
    False (ITK reads bytes where the line is missing)."""
    return not re.search(rb"^BinaryData *= *False\b", header, flags=re.M | re.I)


def refuse_what_itk_could_not_read_in_a_metaimage(path: Path) -> None:
    """Where ITK could not read a MetaImage's header, refuse in words a line that does not fit its NDims:
    ITK tells an NDims that is no number, or a DimSize or ElementSpacing of another count, as "finds no
    DimSize" (damage tool, mha seeds 42012, 42023, 42025). Run only after ITK failed: an NDims of 0 or 1,
    which ITK reads, is told after its read."""
    found = metaimage_header(path)
    if found is None:
        return
    header = found[0]
    ndims = re.search(rb"^NDims *= *(.*?)[ \t]*\r?$", header, flags=re.M)
    if ndims is not None and not re.fullmatch(rb"\d+", ndims[1]):
        raise InputError(f"its NDims '{ndims[1].decode(errors='replace')[:40]}' is not a number of dimensions: the "
                         "header is damaged", path, "write it again from the tool that made it")
    sizes = re.search(rb"^DimSize *= *(.*?)[ \t]*\r?$", header, flags=re.M)
    needed = _numbers_needed(header, "DimSize")
    if sizes is not None and needed and len(sizes[1].split()) != needed:
        raise InputError(f"its DimSize '{sizes[1].decode(errors='replace')[:60]}' holds {len(sizes[1].split())} "
                         f"numbers where its NDims asks for {needed}: one of the two lines is damaged", path,
                         "write it again from the tool that made it")
    _check_metaimage_numbers(path, header)


def check_metaimage_size(path: Path, reader: sitk.ImageFileReader, inflated: Optional[int]) -> None:
    """After ITK read a MetaImage: refuse one holding far more voxels than its header announces, or
    exactly its voxels at another data type's size, and warn of one holding whole slices more (ITK
    reads the first of them), as for a NIfTI or NRRD. `inflated`:
    the bytes its compressed data held (`checked_meanwhile`)."""
    data, dtype = metaimage_data(path), voxel_dtype(reader.GetPixelID())
    if data is None or dtype is None or not _binary_data(metaimage_header(path)[0]):  # (numbers in text: their
        return  # length is no count of voxels)
    source, start, compressed = data
    held = inflated if compressed else source.stat().st_size - start
    if held is not None:
        size = reader.GetSize()
        announced = int(np.prod(size)) * reader.GetNumberOfComponents() * dtype.itemsize
        if held < announced:  # (ITK's reader reads compressed data short of it without a word)
            refuse_another_data_type(path, held, size, dtype)
        refuse_surplus(path, held, announced, size, dtype)


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
        needed = _numbers_needed(header, field)
        if needed and len(numbers) == len(said.split()) and len(numbers) != needed:  # (damage tool, mha seed 39000:
            # an Offset of "0" was read as the origin 0, 0, 0 without a word)
            raise GeometryError(f"its {field} '{said}' holds {len(numbers)} number{'s' * (len(numbers) != 1)} where "
                                f"its NDims asks for {needed}: one of the two lines is damaged", path,
                                "write it again from the tool that made it")


def _numbers_needed(header: bytes, field: str) -> Optional[int]:
    """How many numbers a MetaImage header's `field` holds for its NDims (None where NDims is not told)."""
    ndims = re.search(rb"^NDims *= *(\d+)[ \t]*\r?$", header, flags=re.M)
    if ndims is None:
        return None
    return int(ndims[1]) ** (2 if field in ("TransformMatrix", "Rotation", "Orientation") else 1)


def check_finite(path: Path, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating):
        refuse_non_finite(path, np.count_nonzero(~np.isfinite(array)))


def refuse_non_finite(path: Path, count: int) -> None:
    if count:
        raise InputError(f"{count} voxels are NaN or infinite", path, "give an image with finite values")


def in_mm(spacing: Sequence[float]) -> str:
    return " x ".join(f"{value:.4g}" for value in spacing) + " mm"

