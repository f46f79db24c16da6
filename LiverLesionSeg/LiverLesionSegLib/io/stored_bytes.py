"""How many bytes of voxel data an image file holds, counted without trusting its header, and what
to do when that is not what its header announces. SimpleITK reads a file of more voxels than announced
as the first of them, and a truncated NIfTI or NRRD without complaint."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError, first_line

LOG = logging.getLogger("LiverLesionSeg")


# A compressed stream's own check failed (gzip's CRC, zlib's Adler-32): bytes damaged in a way that
# still decompresses, which ITK's NRRD and MetaImage readers read as voxels without a word.
FAILED_CHECK = ("CRC check failed", "incorrect data check")
ZLIB_WBITS, GZIP_WBITS = 15, 31  # zlib's window bits for its own format and for gzip's


def nrrd_data_length(path: Path, expected: int) -> Optional[int]:
    """Bytes of voxel data (decompressed) a NRRD holds after its header, `expected` of them when its
    gzip trailer says so (its CRC: `gzip_checked_meanwhile`); None where that is not simply counted (a
    detached data file, skipped bytes or lines, text encodings)."""
    import bz2

    encoding, start = _nrrd_data_start(path)
    if start is None:
        return None
    if encoding == "raw":
        return path.stat().st_size - start
    if encoding in ("gzip", "gz") and gzip_trailer_says(path, expected):
        return expected
    if encoding not in ("gzip", "gz", "bzip2", "bz2"):
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            if encoding in ("bzip2", "bz2"):
                return _stream_length(bz2.BZ2File(fh))
            length, ended = _inflated_length(fh, GZIP_WBITS)
            return length if ended else None  # cut short: ITK's reader says so
    except (EOFError, OSError, zlib.error) as exc:
        _refuse_a_failed_check(path, exc)
        return None  # damaged otherwise: ITK's reader says so


def metaimage_data_length(path: Path, header: bytes, last: re.Match) -> Optional[int]:
    """Bytes of voxel data (decompressed) a MetaImage holds, after its `header` and its `last` line
    (ElementDataFile) or in the one data file that line names, refused where compressed data fails its
    Adler-32 check; None where that is not simply counted (a list or pattern of data files, a
    HeaderSize, a stream damaged otherwise)."""
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
    try:
        with open(source, "rb") as fh:
            fh.seek(start)
            return _inflated_length(fh, ZLIB_WBITS)[0]
    except zlib.error as exc:
        _refuse_a_failed_check(path, exc)
        return None  # damaged otherwise: ITK's reader says so


def _inflated_length(fh, wbits: int) -> tuple[int, bool]:
    """Bytes the zlib (`ZLIB_WBITS`) or gzip (`GZIP_WBITS`, every member) stream from `fh`'s position
    decompresses to, and whether it reached its end; zlib.error where its check (Adler-32, CRC) fails.
    (One loop for both: zlib's own format has no file object as gzip's has.)"""
    inflate, length = zlib.decompressobj(wbits), 0
    while chunk := fh.read(1 << 22):
        while chunk:
            length += len(inflate.decompress(chunk))
            chunk = b""
            if inflate.eof and inflate.unused_data and wbits == GZIP_WBITS:  # another gzip member follows
                chunk, inflate = inflate.unused_data, zlib.decompressobj(wbits)
    return length + len(inflate.flush()), inflate.eof


@contextlib.contextmanager
def gzip_checked_meanwhile(path: Path) -> Iterator[None]:
    """Within, a gzip-compressed NIfTI's or NRRD's stream is decompressed to its end in a thread of its
    own and its CRC checked; on leaving, a failed check is refused. ITK never reads the CRC: a bit
    flipped where the voxels still decompress was read as voxels without a word. Meant around ITK's
    read of the voxels: zlib and ITK both let go of Python's lock, so on a 207-slice CT the check
    costs 0.16 s beside ITK's 0.47 s, where after it it would cost 0.62 s."""
    start = _gzip_stream_start(path)
    if start is None:
        yield
        return
    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(_gzip_check_failure, path, start)
        yield
        failure = checked.result()
    if failure:
        _refuse_a_failed_check(path, failure)


def _gzip_stream_start(path: Path) -> Optional[int]:
    """Where the gzip stream of a .nii.gz (its start) or of a gzip-encoded .nrrd (after its header)
    begins; None for another file."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return 0
    if not name.endswith(".nrrd"):
        return None
    encoding, start = _nrrd_data_start(path)
    return start if encoding in ("gzip", "gz") else None


def _nrrd_data_start(path: Path) -> tuple[Optional[str], Optional[int]]:
    """A NRRD's encoding and where its data begins, after its header; (None, None) where that is not
    simply its data (a detached data file, skipped bytes or lines) or pynrrd cannot read its header
    (ITK read it: what pynrrd cannot read is left to ITK)."""
    import nrrd

    try:
        with open(path, "rb") as fh:
            header = nrrd.read_header(fh)
            start = fh.tell()
    except Exception:
        return None, None
    if {"data file", "datafile", "byte skip", "line skip"} & set(header):
        return None, None
    return header.get("encoding"), start


def _gzip_check_failure(path: Path, start: int) -> Optional[Exception]:
    """The error of a gzip stream from `start` whose check fails, else None (cut short or damaged
    otherwise: the other checks and ITK's reader say so)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            _inflated_length(fh, GZIP_WBITS)
    except (OSError, zlib.error) as exc:
        return exc
    return None


def _refuse_a_failed_check(path: Path, exc: Exception) -> None:
    if any(words in str(exc) for words in FAILED_CHECK):
        raise InputError("its compressed voxel data does not match its own checksum: bytes of it are damaged", path,
                         "copy or export it again") from None


def refuse_surplus(path: Path, held: int, announced: int, shape: Sequence[int], dtype: np.dtype) -> None:
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


def gzip_trailer_says(path: Path, length: int) -> bool:
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


def gzip_damage(path: Path) -> Optional[str]:
    """What the gzip reader says of a .gz file whose stream does not decompress to its end and pass its
    CRC; None for another file, or a whole one. (ITK's NIfTI reader, given a stream damaged anywhere,
    says only that no reader knows the file.)"""
    if not path.name.lower().endswith(".gz"):
        return None
    try:
        gzip_length(path)
    except (EOFError, OSError, zlib.error) as exc:
        return first_line(exc)
    return None
    try:
        with gzip.open(path, "rb") as f:
            f.read(1 << 16)
    except (EOFError, OSError, zlib.error) as exc:
        return first_line(exc)
    return None


def gzip_length(path: Path) -> int:
    with gzip.open(path, "rb") as f:
        return _stream_length(f)


def _stream_length(stream) -> int:
    length = 0
    while chunk := stream.read(1 << 24):
        length += len(chunk)
    return length


def voxel_itemsize(pixel_id: int) -> int:
    """Bytes a voxel of this SimpleITK pixel type takes (8 where it cannot be told)."""
    dtype = voxel_dtype(pixel_id)
    return 8 if dtype is None else dtype.itemsize


def voxel_dtype(pixel_id: int) -> Optional[np.dtype]:
    """The numpy type of a voxel of this SimpleITK pixel type (of one component); None where it cannot be told."""
    try:
        return sitk.GetArrayViewFromImage(sitk.Image([1, 1, 1], pixel_id)).dtype
    except RuntimeError:
        return None

