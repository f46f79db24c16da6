"""A ZIP or tar archive given as the input: what a PACS web viewer, a CD export or an e-mail brings
(ZIP), or a research download (.tar.gz, .tar.xz); or a CD or DVD image (`disc_image`).

It is unpacked into a temporary folder, which is then read like any other input folder; the
folder lives as long as the `Unpacked` object (a DICOM SEG written over the series reads its
headers there) and is removed with it. Messages name the files inside the archive
(`study.zip/CT/1-001.dcm`), not the temporary folder.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Optional

from ..errors import InputError, ResourceError, first_line, renamed
from .disc_image import DiscImage, is_disc_image

LOG = logging.getLogger("LiverLesionSeg")

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a ZIP's first file, or an empty ZIP
# Names that say what a file is meant to be where its first bytes are too damaged to tell (a Slicer
# .mrb is a ZIP): it is then refused as a damaged archive, not as an image of no known kind.
ZIP_SUFFIXES = (".zip", ".mrb")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz")
# A compressed stream's first bytes, and tarfile's name of its compression.
COMPRESSION_MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
DECOMPRESSING_OPENERS = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}
# Files a clinic or a download may bring that hold images this tool does not unpack: what each is, what to
# do, and the first bytes that tell it.
UNPACK_IT = "unpack it and give the folder it holds, or pack the series as a ZIP archive"
DECOMPRESS_IT = "decompress it and give the file or folder it holds"
OTHER_CONTAINERS = (
    ("a 7-Zip archive", UNPACK_IT, b"7z\xbc\xaf\x27\x1c"),
    ("a RAR archive", UNPACK_IT, b"Rar!\x1a\x07"),
    ("a gzip-compressed file", DECOMPRESS_IT, b"\x1f\x8b"),
    ("a bzip2-compressed file", DECOMPRESS_IT, b"BZh"),
    ("an xz-compressed file", DECOMPRESS_IT, b"\xfd7zXZ\x00"),
    ("a Zstandard-compressed file", DECOMPRESS_IT, b"\x28\xb5\x2f\xfd"),
)
DISC_IMAGE = "CD or DVD image"
# Room left on the temporary folder's disk after unpacking, for the outputs and other programs.
SPARE_BYTES = 512 * 1024 ** 2
# What a damaged or oddly packed archive raises while it is listed or unpacked.
UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, EOFError, NotImplementedError, zlib.error, lzma.LZMAError,
              ValueError, RuntimeError)


def is_archive(path: Path) -> bool:
    """Whether `path` is a ZIP or tar archive (plain or compressed) or a CD or DVD image, by its content
    or its name."""
    return is_zip(path) or is_disc_image(path) or is_tar(path)


def is_tar(path: Path) -> bool:
    """Whether `path` is a tar archive, by its name or by a first entry read (tarfile takes a file that
    starts with zero bytes, as a CD image does, for an empty archive)."""
    if _named(path, TAR_SUFFIXES):
        return True
    try:
        with tarfile.open(path) as opened:
            return opened.firstmember is not None
    except (OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError, ValueError):
        return False


def unread_container(path: Path) -> Optional[tuple[str, str]]:
    """What a file is, and what to do, where it is an archive or a compressed file of a kind this tool
    does not unpack (by its first bytes); None for any other file."""
    head = _first_bytes(path, 8)
    return next(((what, hint) for what, hint, magic in OTHER_CONTAINERS if head.startswith(magic)), None)


def is_zip(path: Path) -> bool:
    """Whether `path` is a ZIP archive, by its first bytes (a DICOM file starts with a preamble) or its
    name."""
    return _named(path, ZIP_SUFFIXES) or _first_bytes(path, 4) in ZIP_MAGIC


def _named(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.name.lower().endswith(suffixes) and path.is_file()


def _first_bytes(path: Path, count: int) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(count)
    except OSError:
        return b""


def _compression(path: Path) -> str:
    """How a tar archive's stream is compressed, by its first bytes: "gz", "bz2", "xz", or "" (plain)."""
    start = _first_bytes(path, 6)
    return next((name for magic, name in COMPRESSION_MAGIC.items() if start.startswith(magic)), "")


@dataclass
class Unpacked:
    """An archive unpacked into a temporary folder, removed when this object is."""

    archive: Path
    temporary: tempfile.TemporaryDirectory

    @property
    def content(self) -> Path:
        """What to read: the archive's single top entry (a folder, or one image file) where it has
        one, else the folder it was unpacked into."""
        root = Path(self.temporary.name)
        entries = [p for p in root.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        return entries[0] if len(entries) == 1 else root

    def named_in_archive(self) -> ContextManager[None]:
        """Errors raised inside name their files within the archive, not in the temporary folder."""
        return renamed(self.temporary.name, str(self.archive))

    def cleanup(self) -> None:
        self.temporary.cleanup()


class ArchiveReadError(OSError):
    """Seeking in the archive itself failed (a damaged offset seeks before its start): an OSError, as the
    readers expect of a seek, but without an errno, so it is told as the archive's fault, not as one of
    the disk where it is unpacked."""


class _ArchiveFile(io.FileIO):
    def seek(self, *args) -> int:
        try:
            return super().seek(*args)
        except OSError:
            raise ArchiveReadError("an offset in it points before the file's start") from None


def unpack(archive: Path) -> Unpacked:
    """Unpack a ZIP or tar archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) or a CD or DVD image (.iso),
    refusing a damaged or encrypted one and one that would fill the disk."""
    zip_file = is_zip(archive)
    try:
        file = _ArchiveFile(archive)
    except OSError as exc:
        raise InputError(f"cannot be read ({first_line(exc)})", archive, "check that it can be read") from None
    with file:
        if zip_file:
            return _unpack(archive, file, "ZIP archive", lambda: zipfile.ZipFile(file))
        if is_disc_image(archive):
            return _unpack(archive, file, DISC_IMAGE, lambda: DiscImage(file))
        return _unpack(archive, file, "tar archive",
                       lambda: tarfile.open(fileobj=file, mode=f"r:{_compression(archive)}"))


def _unpack(archive: Path, file: _ArchiveFile, kind: str, opener) -> Unpacked:
    zip_file, tar_file = kind == "ZIP archive", kind == "tar archive"
    try:
        opened = opener()
    except (*UNREADABLE, OSError) as exc:
        if tar_file:
            _check_whole_stream(archive)
        raise InputError(f"is a damaged {kind} ({first_line(exc)})", archive,
                         "copy or download it again, or unpack it and give the folder") from None
    try:
        with opened:
            if zip_file:
                members = [m for m in opened.infolist() if not m.is_dir()]
                _check_zip_members(archive, members)
                size = sum(m.file_size for m in members)
            elif not tar_file:
                members = opened.files()
                if not members:
                    raise InputError("is an empty CD or DVD image", archive,
                                     "give the image of the disc that holds the CT series")
                size = sum(m.size for m in members)
            else:  # links and devices are left out: only files can hold the images
                members = [m for m in opened.getmembers() if m.isfile()]
                if not members:
                    _check_whole_stream(archive)  # a damaged stream may read as holding nothing
                    raise InputError("is an empty tar archive", archive, "give the archive that holds the CT series")
                size = sum(m.size for m in members)
            temporary = tempfile.TemporaryDirectory(prefix="liverlesionseg-unpacked-")
            try:
                _check_room(archive, kind, size, Path(temporary.name))
                if zip_file:
                    opened.extractall(temporary.name, members)  # names with .. or a leading / stay inside it
                elif not tar_file:
                    opened.extract(members, Path(temporary.name))
                else:
                    opened.extractall(temporary.name, members, filter="data")  # nothing outside it
                    _read_to_its_check(archive, opened.fileobj)
            except BaseException:
                temporary.cleanup()
                raise
    except (*UNREADABLE, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # writing failed: the disk, the rights
            raise InputError(f"cannot be unpacked into the temporary folder ({first_line(exc)})", archive,
                             "unpack it yourself and give the folder") from None
        # a stream that does not decompress (gzip's and bz2's errors are OSErrors without an errno)
        if tar_file:
            _check_whole_stream(archive)
            if str(exc) == "unexpected end of data":  # tar's words for a plain archive cut within a file
                raise _cut_short(archive) from None
        elif not isinstance(exc, NotImplementedError):  # the ZIP's own checks failed (a CRC-32, a header, a stream)
            raise InputError(f"is a damaged {kind} ({first_line(exc)})", archive,
                             "copy or download it again, or unpack it and give the folder") from None
        raise InputError(f"is a damaged {kind}, or one packed in a way that cannot be read here ({first_line(exc)})",
                         archive, "copy or download it again, or unpack it and give the folder") from None
    LOG.info("Unpacked %s (%d files, %.0f MB) into a temporary folder", archive, len(members), size / 1e6)
    return Unpacked(archive, temporary)


def _read_to_its_check(archive: Path, stream) -> None:
    """Refuse a compressed tar archive whose stream fails its own check (gzip's CRC, xz's and bzip2's):
    tarfile stops at the archive's end marker, before the check, so bytes damaged in a way that still
    decompresses would reach the images unseen (a damaged JPEG-LS slice was all that told)."""
    if not isinstance(stream, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile)):
        return  # an uncompressed tar holds no checksum of its data
    try:
        while stream.read(1 << 20):  # to the stream's end, where its check is
            pass
    except EOFError:  # the compressed data ends before its end marker
        raise _cut_short(archive) from None
    except (OSError, zlib.error, lzma.LZMAError) as exc:
        raise InputError(f"is a damaged tar archive: its compressed data fails its own check ({first_line(exc)})",
                         archive, "copy or download it again") from None


def _cut_short(archive: Path) -> InputError:
    return InputError("is a damaged tar archive: it is cut short", archive, "copy or download it again")


def _check_whole_stream(archive: Path) -> None:
    """Where a compressed tar archive could not be read, whether its stream is what is damaged (refused
    so), before tar's own words for what the damage left (an "invalid header", no files at all)."""
    opener = DECOMPRESSING_OPENERS.get(_compression(archive))
    if opener is not None:
        with opener(archive) as stream:
            _read_to_its_check(archive, stream)


def _check_room(archive: Path, kind: str, size: int, folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if size + SPARE_BYTES > free:
        raise ResourceError(f"the {kind} unpacks to {_size(size)}, more than the {_size(free)} free in the "
                            f"temporary folder {folder.parent}", archive,
                            "unpack it where there is room and give the folder, or set TMPDIR to a folder with room")


def _check_zip_members(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    if not members:
        raise InputError("is an empty ZIP archive", archive, "give the archive that holds the CT series")
    if any(m.flag_bits & 0x1 for m in members):
        raise InputError("is a password-protected ZIP archive", archive,
                         "unpack it with its password and give the folder")


def _size(count: int) -> str:
    """A byte count as people read it: 0.8 MB, 2.4 GB."""
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"
