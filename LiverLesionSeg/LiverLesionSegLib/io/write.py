"""Writers for segmentation outputs, all atomic and all on the input's own grid.

- a label map (`.nii.gz`, `.nii`, `.nrrd`): 0 background, 1 liver, 2 lesion, through SimpleITK;
- a Slicer segmentation (`.seg.nrrd`): the same labels in one layer, with Slicer's segment
  metadata (names, colours, terminology), through pynrrd;
- a DICOM SEG (`.dcm`) over the CT's DICOM series: see `dicomseg_write`;
- a probability map (`.nii.gz`, `.nii`, `.nrrd`): float32 in [0, 1].
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import OutputError
from ..segments import SEGMENTS
from ..volume import Volume
from .atomic import atomic_path, write_failure_errno
from .images import mixed_case_nifti_suffix
from .native_output import held_back
from .stored_bytes import gzip_trailer_says, nrrd_data_length

LABEL_MAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
SEGMENTATION_SUFFIX = ".seg.nrrd"
DICOM_SEG_SUFFIX = ".dcm"
# zlib level 1: label maps compress almost as well as at level 9, in a fraction of the time
# (level 9 took a fifth of a whole segmentation's time)
FAST_COMPRESSION = 1


def output_kind(path: str | os.PathLike) -> str:
    """'segmentation' for .seg.nrrd, 'labelmap' for the image formats, 'dicom-seg' for .dcm (see
    `dicomseg_write`, which needs the CT's DICOM series); OutputError otherwise."""
    name = str(path).lower()
    if name.endswith(SEGMENTATION_SUFFIX):
        return "segmentation"
    if name.endswith(LABEL_MAP_SUFFIXES):
        mixed = mixed_case_nifti_suffix(path)
        if mixed:
            raise OutputError(f"a NIfTI file whose suffix '{mixed}' mixes lower and upper case cannot be read back "
                              "(NIfTI readers refuse it)", path, f"name it {mixed.lower()} or {mixed.upper()}")
        return "labelmap"
    if name.endswith(DICOM_SEG_SUFFIX):
        return "dicom-seg"
    raise OutputError("unknown output format", path,
                      "name the output .nii.gz, .nrrd or .mha (label map), .seg.nrrd (Slicer segmentation) or .dcm "
                      "(DICOM SEG)")


def write_segmentation_output(path: str | os.PathLike, labels: Volume) -> Path:
    """Write a 0/1/2 label map atomically, as the format the file name asks for."""
    kind = output_kind(path)
    with atomic_path(path) as tmp:
        save_labels(tmp, labels, kind)
    return Path(path)


def write_image(path: str | os.PathLike, volume: Volume) -> Path:
    with atomic_path(path) as tmp:
        save_image(tmp, volume)
    return Path(path)


def save_labels(path: Path, labels: Volume, kind: str) -> None:
    """Write to exactly `path` (no temporary file): for callers that manage atomicity themselves."""
    if kind == "dicom-seg":
        raise ValueError("a DICOM SEG needs the CT's series: write it with dicomseg_write.save_dicom_seg")
    if kind == "segmentation":
        save_seg_nrrd(path, labels)
    else:
        save_image(path, labels.with_array(labels.array.astype(np.uint8, copy=False)))


def save_image(path: Path, volume: Volume) -> None:
    import SimpleITK as sitk

    if not str(path).lower().endswith(LABEL_MAP_SUFFIXES):
        raise OutputError("unknown image format", path, "name it .nii.gz, .nii, .nrrd or .mha")
    with held_back():  # the libraries' own complaints ("** ERROR: NWAD …"): left out where the write failed
        try:
            sitk.WriteImage(volume.to_sitk(), str(path), useCompression=True, compressionLevel=FAST_COMPRESSION)
            failure = None
        except RuntimeError as exc:  # SimpleITK reports some I/O failures (MetaImage) this way
            failure = str(exc).strip().splitlines()[-1]
        if failure is None:
            failure = _incomplete(path, volume)
        if failure is not None:  # the one-line error says it all
            raise OSError(_errno_of(failure, path), failure)


def _incomplete(path: Path, volume: Volume) -> Optional[str]:
    """Why a just-written NIfTI or NRRD file is incomplete, or None: their writers report a short write
    (a full disk, a file size limit) only on stderr (NIfTI's) or not at all (NRRD's)."""
    if str(path).lower().endswith((".nii", ".nii.gz")):
        return _incomplete_nifti(path)
    if str(path).lower().endswith(".nrrd"):
        expected = volume.array.size * volume.array.dtype.itemsize
        held = nrrd_data_length(path, expected)  # None: its header or compressed data cannot be read back
        return None if held is not None and held >= expected else "the file was written incompletely"
    return None


def _incomplete_nifti(path: Path) -> Optional[str]:
    """Why a just-written NIfTI file is incomplete, or None when it holds every byte it announces."""
    import nibabel as nib

    try:
        proxy = nib.load(str(path)).dataobj
        needed = int(proxy.offset) + int(np.prod(proxy.shape)) * proxy.dtype.itemsize
    except Exception:
        return "the file was written incompletely (its header cannot be read back)"
    if str(path).lower().endswith(".gz"):
        complete = gzip_trailer_says(path, needed)
    else:
        complete = path.stat().st_size >= needed
    return None if complete else "the file was written incompletely"


def _errno_of(message: str, path: Path) -> Optional[int]:
    text = message.lower()
    if "no space left" in text:
        return errno.ENOSPC
    if "file too large" in text:
        return errno.EFBIG
    return write_failure_errno(path)


def save_seg_nrrd(path: Path, labels: Volume) -> None:
    """A Slicer `.seg.nrrd`: one labelmap layer holding the Liver (1) and Liver lesion (2) segments."""
    import nrrd

    array = labels.array.astype(np.uint8, copy=False)
    header = {
        "space": "left-posterior-superior",
        "space directions": (labels.direction @ np.diag(labels.spacing)).T,
        "space origin": np.array(labels.origin),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    extent = f"0 {array.shape[2] - 1} 0 {array.shape[1] - 1} 0 {array.shape[0] - 1}"
    for n, segment in enumerate(SEGMENTS):
        prefix = f"Segment{n}_"
        header.update({
            prefix + "ID": segment.segment_id,
            prefix + "Name": segment.name,
            prefix + "NameAutoGenerated": "0",
            prefix + "Color": " ".join(f"{c:.6f}" for c in segment.color),
            prefix + "ColorAutoGenerated": "0",
            prefix + "LabelValue": str(segment.label),
            prefix + "Layer": "0",
            prefix + "Extent": extent,
            prefix + "Tags": f"Segmentation.Status:inprogress|TerminologyEntry:{segment.terminology}|",
        })
    # NRRD data runs i fastest: the [k, j, i] array goes in as [i, j, k] in Fortran order.
    nrrd.write(str(path), array.transpose(2, 1, 0), header, index_order="F", compression_level=FAST_COMPRESSION)
