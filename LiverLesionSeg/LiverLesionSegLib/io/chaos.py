"""CHAOS's CT cases: `CT/N/DICOM_anon/` (the CT, one DICOM file a slice) and `CT/N/Ground/` (the liver,
one PNG mask a slice, 0 or 255), named `chaos-N`.

The challenge pairs the k-th mask with the k-th image in the order of their file names, "not by position
tags in DICOM files" (its evaluation code); each mask then goes onto the CT slice its image lies at. Its
CTs are of living liver donors, healthy livers: a case trains "no lesion" in its liver. CHAOS's MR cases
(`MR/N/T1DUAL`, `MR/N/T2SPIR`, laid out alike) are not CT and are left out where cases are found.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import GeometryError, InputError, listed
from ..volume import Case
from .dicom import slice_indices
from .dicom_files import dcmread
from .dicom_scan import NON_IMAGE_MODALITIES, scan_folder
from .dicom_values import position_of
from .series_choice import choose_ct_series, read_chosen_series

CT_FOLDER = "DICOM_anon"
MASK_FOLDER = "Ground"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MR_FOLDERS = ("T1DUAL", "T2SPIR")  # CHAOS's MR cases hold these two, each laid out as a CT case


def is_chaos_case(folder: str | os.PathLike) -> bool:
    """True for a folder laid out as a CHAOS case (DICOM_anon/ and Ground/), CT or MR."""
    folder = Path(folder)
    return (folder / CT_FOLDER).is_dir() and (folder / MASK_FOLDER).is_dir()


def is_chaos_mr(folder: Path) -> bool:
    """True for one of CHAOS's MR sequences (MR/N/T1DUAL, MR/N/T2SPIR)."""
    return folder.name.upper() in MR_FOLDERS


def chaos_case_name(folder: Path) -> str:
    return f"chaos-{folder.name}"


def read_chaos_case(folder: str | os.PathLike) -> Case:
    """The CT of a CHAOS case and its liver, each mask slice on the CT slice of the image its name pairs it with."""
    folder = Path(folder)
    scan = scan_folder(folder / CT_FOLDER)
    series = [s for s in scan.series if s.modality.upper() not in NON_IMAGE_MODALITIES]
    if len(series) > 1:  # the masks pair with every image: one series' slices alone would shift the pairs
        main, *others = sorted(series, key=lambda s: -len(s.files))
        odd = sorted(path.name for s in others for path in s.files)
        if len(odd) <= 2 < len(main.files):  # a damaged or edited UID, as the damage tool's seed 19116
            raise InputError(f"holds {listed(odd)} under another SeriesInstanceUID than its other {len(main.files)} "
                             f"images ({main.label}), where a CHAOS case holds one series, each of its images paired "
                             "with a mask: those files' headers are damaged or were edited", folder / CT_FOLDER,
                             "copy the case again from the CHAOS archive")
        raise InputError(f"holds {len(series)} series of images ({'; '.join(s.label for s in series)}), where a "
                         "CHAOS case holds one, each of its images paired with a mask", folder / CT_FOLDER,
                         "copy the case again from the CHAOS archive")
    ct = read_chosen_series(scan, choose_ct_series(scan))
    images = [f for s in series for f in s.files]
    masks = [p for p in (folder / MASK_FOLDER).iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")]
    if len(masks) != len(images):
        raise InputError(f"holds {len(masks)} PNG masks for the {len(images)} DICOM images of {CT_FOLDER}/ (CHAOS "
                         "pairs them one for one, in the order of their file names)", folder / MASK_FOLDER,
                         "copy the case again from the CHAOS archive")
    images, masks = _in_name_order(images), _in_name_order(masks)
    positions = [position_of(dcmread(path, stop_before_pixels=True, specific_tags=["ImagePositionPatient"]))
                 for path in images]
    slices = slice_indices(ct, np.array(positions), "image", folder / CT_FOLDER)
    liver = np.zeros(ct.shape, np.uint8)
    for k, mask in zip(slices, masks):
        liver[k] = _mask_slice(mask, ct.shape[1:]) > 0
    source = str(folder / MASK_FOLDER)
    return Case(chaos_case_name(folder), ct, ct.with_array(liver, source), ct.with_array(np.zeros_like(liver), source),
                folder)


def _mask_slice(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A PNG mask's pixels (rows, columns); a colour one read as grey, its transparency left aside."""
    try:
        with Image.open(path) as image:
            image.verify()  # every chunk's checksum: a bit flipped in the pixels would be read without a word
        with Image.open(path) as image:
            grey = image if image.mode in ("1", "L", "I", "I;16") else image.convert("L")
            pixels = np.asarray(grey)
    except UnidentifiedImageError:  # its words repeat the path
        reason = ("its header chunk (IHDR) is missing or damaged" if _starts_as_png(path) else
                  "its first bytes are no image's: damaged, or not a PNG")
        raise InputError(f"cannot read the PNG mask ({reason})", path,
                         "copy the case again from the CHAOS archive") from None
    except IndexError:  # Pillow's "list index out of range" on a PNG without image data (found removing each chunk)
        raise InputError("cannot read the PNG mask (it holds no image data: its IDAT chunk is missing)", path,
                         "copy the case again from the CHAOS archive") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's words for a damaged PNG ("broken PNG file")
        failed = re.search(r"bad header checksum in b'(\w+)'", str(exc))  # (Pillow's words for a chunk's CRC)
        reason = ("the file is cut short" if "truncated" in str(exc).lower() else  # "Truncated File Read"
                  f"its {failed[1]} chunk does not match its own checksum: bytes of it are damaged" if failed else
                  str(exc))
        raise InputError(f"cannot read the PNG mask ({reason})", path,
                         "copy the case again from the CHAOS archive") from None
    if pixels.shape != tuple(shape):
        raise GeometryError(f"the mask has {' x '.join(map(str, pixels.shape))} pixels, its CT slice "
                            f"{shape[0]} x {shape[1]}", path, "give the masks made on this CT")
    return pixels


def _starts_as_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _in_name_order(paths: list[Path]) -> list[Path]:
    """Paths in the order of their names, numbers by value (liver_GT_9 before liver_GT_10)."""
    return sorted(paths, key=lambda p: [int(part) if part.isdigit() else part
                                         for part in re.split(r"(\d+)", p.name.lower())])
