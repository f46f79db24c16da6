"""3D-IRCADb-01 cases: `PATIENT_DICOM/` (the CT) and `MASKS_DICOM/<structure>/` (one 0/255 DICOM a slice).

The liver is `MASKS_DICOM/liver`; the liver lesions are the union of every folder whose name
starts with `livertumor` (livertumor01..07, livertumor1, livertumor, livertumors...). Other
structures are ignored, among them `tumor` (3Dircadb1.7: a tumour of the kidney region, not a
liver lesion) and `liverkyst` (a cyst). Each mask slice goes onto the CT slice at its
ImagePositionPatient, never by file name or order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import GeometryError, InputError, listed
from ..volume import Case, Volume
from .dicom import check_in_plane_grid, slice_indices
from .dicom_files import decode_pixels, list_files, read_dataset_if_dicom, tell_decoder_complaints
from .dicom_values import number_values
from .series_choice import read_ct_folder

LOG = logging.getLogger("LiverLesionSeg")

CT_FOLDER = "PATIENT_DICOM"
MASKS_FOLDER = "MASKS_DICOM"
LIVER_FOLDER = "liver"
LESION_PREFIX = "livertumor"


def is_ircadb_case(folder: str | os.PathLike) -> bool:
    """True for a folder laid out as a 3D-IRCADb-01 case (PATIENT_DICOM/ and MASKS_DICOM/)."""
    folder = Path(folder)
    return (folder / CT_FOLDER).is_dir() and (folder / MASKS_FOLDER).is_dir()


def lesion_folders(folder: str | os.PathLike) -> list[Path]:
    """The mask folders that hold liver lesions, by name."""
    masks = Path(folder) / MASKS_FOLDER
    return sorted(p for p in masks.iterdir() if p.is_dir() and p.name.lower().startswith(LESION_PREFIX))


def read_ircadb_case(folder: str | os.PathLike) -> Case:
    """The CT, the liver mask and the union of the liver-lesion masks of a 3D-IRCADb-01 case."""
    folder = Path(folder)
    if not is_ircadb_case(folder):
        raise InputError(f"not a 3D-IRCADb-01 case: no {CT_FOLDER}/ and {MASKS_FOLDER}/ folders", folder,
                         "give a folder such as 3Dircadb1.1")
    ct = read_ct_folder(folder / CT_FOLDER)
    liver_folder = folder / MASKS_FOLDER / LIVER_FOLDER
    if not liver_folder.is_dir():
        raise InputError(f"no liver mask ({MASKS_FOLDER}/{LIVER_FOLDER}/ is missing)", folder,
                         "give a complete 3D-IRCADb-01 case")
    liver = read_mask_folder(liver_folder, ct)
    lesion = np.zeros(ct.shape, np.uint8)
    for mask_folder in lesion_folders(folder):
        lesion |= read_mask_folder(mask_folder, ct)
    ignored = sorted(p.name for p in (folder / MASKS_FOLDER).iterdir()
                     if p.is_dir() and p.name != LIVER_FOLDER and not p.name.lower().startswith(LESION_PREFIX))
    LOG.debug("%s: liver lesions from %s; ignored %s", folder, [p.name for p in lesion_folders(folder)], ignored)
    return Case(folder.name, ct, ct.with_array(liver, str(liver_folder)),
                ct.with_array(lesion, str(folder / MASKS_FOLDER)), folder).check()


def read_mask_folder(folder: Path, ct: Volume) -> np.ndarray:
    """A folder of mask slices (any non-zero value is inside) as a uint8 0/1 array on `ct`'s grid; a CT
    slice without its mask slice is read as empty, with a warning."""
    mask = np.zeros(ct.shape, np.uint8)
    filled, complaints, slices_holding, voxels_of = {}, [], {}, {}
    for path in list_files(folder):
        ds = read_dataset_if_dicom(path)
        if ds is None:
            continue
        pixels = decode_pixels(path, ds, complaints)
        what = f"mask slice {path.name}"
        check_in_plane_grid(ct, ds.get("ImageOrientationPatient"), ds.get("PixelSpacing"), pixels.shape, what, folder)
        position = number_values(ds.get("ImagePositionPatient"), 3)
        if position is None:
            raise GeometryError(f"{what} has no usable ImagePositionPatient", folder,
                                "give masks exported with their geometry")
        k = int(slice_indices(ct, [position], what, folder)[0])
        if k in filled:
            if np.array_equal(mask[k], pixels > 0):
                raise GeometryError(f"mask slices {filled[k].name} and {path.name} lie on the same CT slice {k}, and "
                                    "hold the same mask: one is a copy", folder, "remove the duplicate file")
            # (a damaged position was told as a duplicate file to remove)
            raise GeometryError(f"mask slices {filled[k].name} and {path.name} lie on the same CT slice {k}, but hold "
                                "different masks: the ImagePositionPatient of one is damaged", folder,
                                "copy the case again")
        filled[k] = path
        inside = pixels > 0
        mask[k] = inside
        values = pixels[inside]
        for value in {int(values.min()), int(values.max())} if values.size else ():
            slices_holding.setdefault(value, []).append(path.name)
            voxels_of[value] = voxels_of.get(value, 0) + int(np.count_nonzero(values == value))
    tell_decoder_complaints(folder, complaints)
    _tell_odd_values(folder, slices_holding, voxels_of)
    if not filled:
        raise InputError("no DICOM mask slices found", folder, "give a complete 3D-IRCADb-01 case")
    missing = sorted(set(range(ct.shape[0])) - set(filled))
    if missing:  # an export of the non-empty slices only, or a copy that lost files: not told apart here
        LOG.warning("%s holds mask slices for %d of the CT's %d slices: %s %s read as holding none of %s; "
                    "if files were lost, copy the case again", folder, len(filled), ct.shape[0],
                    "slice" if len(missing) == 1 else "slices", listed(missing), folder.name)
    return mask


def _tell_odd_values(folder: Path, slices_holding: dict[int, list[str]], voxels_of: dict[int, int]) -> None:
    """Warn of mask slices holding other non-zero values than the mask's (the one most voxels hold, 255
    in every 3D-IRCADb-01 mask): a bit flipped or a byte changed in a mask's pixels, read without a word
    before (damage tool, ircadb seed 41006)."""
    if len(slices_holding) < 2:
        return
    usual = max(voxels_of, key=voxels_of.get)
    odd = sorted({name for value, names in slices_holding.items() if value != usual for name in names})
    values = ", ".join(str(value) for value in sorted(slices_holding) if value != usual)
    one = len(odd) == 1
    LOG.warning("%s: %s %s hold%s the value(s) %s besides 0 and %d, the mask's: bytes of %s pixels may be damaged; "
                "every voxel not 0 is read as inside %s. If the case was copied, copy it again", folder,
                "mask slice" if one else "mask slices", listed(odd), "s" if one else "", values, usual,
                "its" if one else "their", folder.name)
