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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError, first_line, refuse_an_empty_file

LOG = logging.getLogger("LiverLesionSeg")


# A compressed stream's own check failed (gzip's CRC, zlib's Adler-32): bytes damaged in a way that
# still decompresses, which ITK's NRRD and MetaImage readers read as voxels without a word.
FAILED_CHECK = ("CRC check failed", "incorrect data check")  # gzip's and zlib's words for a failed checksum
COMPRESSED_DATA_DAMAGED = "its compressed voxel data does not match its own checksum: bytes of it are damaged"
ZLIB_WBITS, GZIP_WBITS = 15, 31  # zlib's window bits for its own format and for gzip's


def nrrd_data_length(path: Path, expected: int) -> Optional[int]:
    """Bytes of voxel data (decompressed) a NRRD holds after its header, or in the one data file a
    detached header (.nhdr) names, `expected` of them when its gzip trailer says so (its CRC:
    `checked_meanwhile`); None where that is not simply counted (a list or pattern of data files,
    skipped bytes or lines, text encodings)."""
    import bz2

    encoding, source, start = _nrrd_data(path)
    if source is None:
        return None
    if encoding == "raw":
        return source.stat().st_size - start
    if encoding in ("gzip", "gz") and gzip_trailer_says(source, expected):
        return expected
    if encoding not in ("gzip", "gz", "bzip2", "bz2"):
        return None
    try:
        with open(source, "rb") as fh:
            fh.seek(start)
            if encoding in ("bzip2", "bz2"):
                return _stream_length(bz2.BZ2File(fh))
            length, ended = _inflated_length(fh, GZIP_WBITS)
            return length if ended else None  # cut short: ITK's reader says so
    except (EOFError, OSError, zlib.error) as exc:
        _refuse_a_failed_check(path, exc)
        return None  # damaged otherwise: ITK's reader says so


def metaimage_header(path: Path) -> Optional[tuple[bytes, re.Match]]:
    """A MetaImage's header (the lines before its last) and its last line, ElementDataFile, which the
    format makes the last (no library tells where the header ends); None where no such line is found
    in its first 64 kB (ITK's reader requires the line: a header longer than any it writes)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    last = re.search(rb"^ElementDataFile *= *(.*?)[ \t]*\r?\n", head, flags=re.M)
    return None if last is None else (head[:last.start()], last)


def metaimage_data(path: Path) -> Optional[tuple[Path, int, bool]]:
    """The file holding a MetaImage's voxel data (itself, or the one data file its ElementDataFile line
    names), where in it they begin, and whether they are compressed; None where that is not simply told
    (a list or pattern of data files, a HeaderSize, a data file missing: ITK's reader says what is)."""
    found = metaimage_header(path)
    if found is None:
        return None
    header, last = found
    if re.search(rb"^HeaderSize *=", header, flags=re.M):
        return None
    if last[1] == b"LOCAL":
        source, start = path, last.end()
    else:
        named = _metaimage_data_file(last)
        if not named or not (path.parent / named).is_file():
            return None
        source, start = path.parent / named, 0
    return source, start, bool(re.search(rb"^CompressedData *= *True", header, flags=re.M | re.I))


def _metaimage_data_file(last: re.Match) -> Optional[str]:
    """The one data file a MetaImage's ElementDataFile line (`metaimage_header`'s match) names, as
    written ("" where it names none); None for LOCAL (the voxels follow the header), a LIST or a pattern."""
    named = os.fsdecode(last[1])
    return None if named in ("LOCAL", "LIST") or "%" in named else named


def _inflated_length(fh, wbits: int, read: Optional[Callable[[bytes], None]] = None) -> tuple[int, bool]:
    """Bytes the zlib (`ZLIB_WBITS`) or gzip (`GZIP_WBITS`, every member) stream from `fh`'s position
    decompresses to (each piece given to `read`), and whether it reached its end; zlib.error where its
    check (Adler-32, CRC) fails. (One loop for both: zlib's own format has no file object as gzip's has.)"""
    inflate, length = zlib.decompressobj(wbits), 0
    read = read or (lambda data: None)
    while chunk := fh.read(1 << 22):
        while chunk:
            data = inflate.decompress(chunk)
            length += len(data)
            read(data)
            chunk = b""
            if inflate.eof and inflate.unused_data and wbits == GZIP_WBITS:  # another gzip member follows
                chunk, inflate = inflate.unused_data, zlib.decompressobj(wbits)
    data = inflate.flush()
    read(data)
    return length + len(data), inflate.eof


@dataclass(frozen=True)
class FloatVoxels:
    """Where a NIfTI's float voxels lie in its decompressed data: from byte `offset`, `size` bytes of `dtype`."""
    offset: int
    size: int
    dtype: np.dtype


class _NonFiniteCount:
    """Counts the NaN or infinite values of `voxels` in the decompressed bytes it is given, piece by piece."""

    def __init__(self, voxels: FloatVoxels):
        self.voxels, self.seen, self.rest, self.count = voxels, 0, b"", 0

    def __call__(self, data: bytes) -> None:
        first, end = self.voxels.offset - self.seen, self.voxels.offset + self.voxels.size - self.seen
        self.seen += len(data)
        data = self.rest + data[max(first, 0):max(end, 0)]
        whole = len(data) - len(data) % self.voxels.dtype.itemsize
        values = np.frombuffer(data, self.voxels.dtype, whole // self.voxels.dtype.itemsize)
        self.count += values.size - int(np.count_nonzero(np.isfinite(values)))
        self.rest = data[whole:]


@dataclass
class Inflated:
    """What a compressed voxel stream held, set on leaving `checked_meanwhile`: the bytes it decompressed
    to, cut short or not (None for a file of no such stream, or one damaged otherwise), and how many of
    the float voxels it was asked to look at are NaN or infinite."""
    length: Optional[int] = None
    non_finite: int = 0


@contextlib.contextmanager
def checked_meanwhile(path: Path, floats: Optional[FloatVoxels] = None) -> Iterator[Inflated]:
    """Within, the compressed voxel stream of a .nii.gz, a gzip-encoded NRRD or a zlib-compressed
    MetaImage is decompressed to its end in a thread of its own and its check (CRC, Adler-32) made; on
    leaving, a failed check is refused, else the bytes it held are counted, and the NaN or infinite
    values among `floats` (a NIfTI's: ITK's reader reads them as 0). ITK never reads the check: a bit
    flipped where the voxels still decompress was read as voxels without a word. Meant around ITK's
    read of the voxels: zlib, numpy and ITK let go of Python's lock, so on a 207-slice CT the check
    costs 0.16 s beside ITK's 0.47 s, where after it it would cost 0.62 s. (The thread only counts: a
    warning logged from it would be taken for what ITK prints meanwhile.)"""
    inflated, stream = Inflated(), _compressed_voxels(path)
    if stream is None:
        yield inflated
        return
    non_finite = _NonFiniteCount(floats) if floats is not None else None
    with ThreadPoolExecutor(1) as pool:
        counted = pool.submit(_count_inflated, *stream, non_finite)
        yield inflated
        length, failure = counted.result()
    if failure:
        _refuse_a_failed_check(path, failure)
    inflated.length = length
    inflated.non_finite = non_finite.count if non_finite is not None else 0


def _compressed_voxels(path: Path) -> Optional[tuple[Path, int, int]]:
    """The file, the start and zlib's window bits (`GZIP_WBITS`, `ZLIB_WBITS`) of the compressed voxel
    stream of a .nii.gz (the whole file), a gzip-encoded .nrrd (after its header) or a compressed
    MetaImage (after its header, or its data file); None for another file."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return path, 0, GZIP_WBITS
    if name.endswith((".nrrd", ".nhdr")):
        encoding, source, start = _nrrd_data(path)
        return (source, start, GZIP_WBITS) if source is not None and encoding in ("gzip", "gz") else None
    data = metaimage_data(path) if name.endswith((".mha", ".mhd")) else None
    return (data[0], data[1], ZLIB_WBITS) if data and data[2] else None


def nrrd_header(path: Path) -> Optional[tuple[dict, int]]:
    """A NRRD header's fields as pynrrd reads them and where the data after it begins; None where
    pynrrd cannot read it (ITK read it: what pynrrd cannot read is left to ITK)."""
    import nrrd

    try:
        with open(path, "rb") as fh:
            return nrrd.read_header(fh), fh.tell()
    except Exception:
        return None


def _nrrd_data(path: Path) -> tuple[Optional[str], Optional[Path], Optional[int]]:
    """A NRRD's encoding, the file holding its data (itself, or the one data file a detached header
    names) and where in it the data begins; (None, None, None) where that is not simply told (a list
    or pattern of data files, skipped bytes or lines, a data file missing) or pynrrd cannot read its
    header (ITK read it: what pynrrd cannot read is left to ITK)."""
    read = nrrd_header(path)
    if read is None:
        return None, None, None
    header, start = read
    detached = {"data file", "datafile"} & set(header)
    if {"byte skip", "line skip"} & set(header):
        return None, None, None
    if not detached:
        return header.get("encoding"), path, start
    named = _nrrd_data_file(header)
    if not named or not (path.parent / named).is_file():
        return None, None, None
    return header.get("encoding"), path.parent / named, 0


def _nrrd_data_file(header: dict) -> Optional[str]:
    """The one data file a NRRD header names, as written ("" where its line names none); None where it
    names none (the voxels follow the header), a list or a pattern of data files ("ct.%03d.raw 1 8 1")."""
    named = header.get("data file", header.get("datafile"))
    if not isinstance(named, str) or named.startswith("LIST") or " " in named or "%" in named:
        return None
    return named


def refuse_a_missing_data_file(path: Path) -> None:
    """Refuse a header (.nhdr, .mhd; or a .nrrd, .mha naming a data file) whose one data file is missing,
    not a file, empty or unnamed, naming it: ITK said "couldn't open "/…/ct.raw" (data file 1 of 1) for
    reading", "the data file its header names (ElementDataFile) cannot be opened", or counted a folder's
    0 bytes as voxels cut short (found taking a header's data file away in turn)."""
    name = _data_file_named(path)
    if name is None:
        return
    one_file = "or export the image again as one file (.nrrd, .mha or .nii.gz)"
    if not name.strip():
        raise InputError("its header names no data file", path, f"give the header its data file's name, {one_file}")
    source = path.parent / name
    if not source.exists():
        put = f"copy {name} beside {path.name}" if Path(name).name == name else f"put its data file at {source}"
        raise InputError(f"its data file {name} is missing", path, f"{put}, {one_file}")
    if not source.is_file():
        raise InputError(f"its data file {name} is not a file", path, f"give the header its data file, {one_file}")
    refuse_an_empty_file(source)


def _data_file_named(path: Path) -> Optional[str]:
    """The one data file a detached NRRD or MetaImage header names (as written, relative to its folder),
    "" where the line names none; None for an image holding its own voxels, a list or pattern of data
    files, or a header that cannot be read (its reader says why)."""
    if path.suffix.lower() in (".mhd", ".mha"):
        found = metaimage_header(path)
        return None if found is None else _metaimage_data_file(found[1])
    if path.suffix.lower() in (".nhdr", ".nrrd"):
        read = nrrd_header(path)
        return None if read is None else _nrrd_data_file(read[0])
    return None


COMPRESSION_MAGICS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2"}


def nrrd_encoding_misstated(path: Path) -> Optional[str]:
    """Where a NRRD's header says its voxels are raw but they begin as compressed data do (its encoding
    line damaged or edited: ITK read the compressed bytes as voxels and ran short), that, told."""
    encoding, source, start = _nrrd_data(path)
    if encoding != "raw" or source is None:
        return None
    with open(source, "rb") as fh:
        fh.seek(start)
        first = fh.read(3)
    kind = next((kind for magic, kind in COMPRESSION_MAGICS.items() if first.startswith(magic)), None)
    return None if kind is None else f"its voxel data is {kind}-compressed, where its encoding line says raw"


def _count_inflated(source: Path, start: int, wbits: int, read: Optional[Callable[[bytes], None]] = None
                    ) -> tuple[Optional[int], Optional[Exception]]:
    """Bytes the stream from `start` decompresses to (each piece given to `read`), and the error of one
    whose check fails or that is damaged otherwise (length None: the other checks and ITK's reader say so)."""
    try:
        with open(source, "rb") as fh:
            fh.seek(start)
            return _inflated_length(fh, wbits, read)[0], None
    except (OSError, zlib.error) as exc:
        return None, exc


def _refuse_a_failed_check(path: Path, exc: Exception) -> None:
    if any(words in str(exc) for words in FAILED_CHECK):
        raise InputError(COMPRESSED_DATA_DAMAGED, path, "copy or export it again") from None


def refuse_another_data_type(path: Path, held: int, shape: Sequence[int], dtype: np.dtype) -> None:
    """Refuse voxels that fall short of what the header announces but are exactly what `shape` takes
    at another data type's size than `dtype`'s: a damaged data type (a label map's uint8 made uint32)
    or size (8 slices made 16), which was told as a file cut short."""
    voxels = int(np.prod(shape))
    size = next((size for size in (1, 2, 4, 8) if size != dtype.itemsize and held == voxels * size), None)
    if size is not None:  # (or as many more voxels as the type is wider: a size made 16 of 8 slices reads so)
        raise InputError(f"it holds {held} bytes of voxels, {held / (voxels * dtype.itemsize):g} times the "
                         f"{voxels * dtype.itemsize} its header announces ({' x '.join(map(str, shape))} of {dtype}), "
                         f"exactly its voxels at {size} byte{'s' * (size != 1)} each: the header's size or data type "
                         "is wrong", path, "export it again")


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


def refuse_a_damaged_gzip(path: Path) -> None:
    """Refuse a .gz file whose stream is damaged (`gzip_damage`): one that fails its checksum as the
    voxels' reader tells it, not in gzip's words ("CRC check failed 0x5c34c84a != 0xf89e2cff")."""
    damage = gzip_damage(path)
    if damage is not None:
        _refuse_a_failed_check(path, ValueError(damage))
        if damage.startswith("Not a gzipped file"):  # gzip's words, with the first bytes ("(b'hi')")
            raise InputError("is named .gz but is not gzip-compressed (its first bytes are no gzip stream's): damaged, "
                             "or another file under its name", path, "give the image as it was exported")
        raise InputError(f"the compressed file is damaged ({damage})", path, "export it again")


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

