"""A CD or DVD image (ISO 9660, `.iso`) given as the input: a patient's disc as a hospital's IT or a
disc-copying tool keeps it. Read through pycdlib; `archive.unpack` copies its files into a temporary
folder, as it does an archive's, which is then read as the disc's own folder (its DICOMDIR, or the
series on it)."""

from __future__ import annotations

import contextlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import first_line

# The first volume descriptor's signature, at the start of the disc's 17th sector of 2048 bytes.
SIGNATURE_AT, SIGNATURE = 0x8001, b"CD001"


SECTOR = 2048  # ISO 9660's logical sector: a disc image is a whole number of them
VOLUME_DESCRIPTOR_END = 17 * SECTOR  # the first volume descriptor fills sector 16


class DamagedDiscImage(ValueError):
    """pycdlib (or what it calls) could not read the disc's directories or files."""


def is_disc_image(path: Path) -> bool:
    """Whether `path` is a CD or DVD image, by its volume descriptor or by its name."""
    if not path.is_file():
        return False
    if path.name.lower().endswith(".iso"):
        return True
    try:
        with open(path, "rb") as file:
            file.seek(SIGNATURE_AT)
            return file.read(len(SIGNATURE)) == SIGNATURE
    except OSError:
        return False


@dataclass
class DiscFile:
    name: str  # its path on the disc, as a relative path of this system ("DICOM/IM000001")
    size: int
    on_disc: str  # its path as pycdlib names it


class DiscImage:
    """An open disc image: its files, and copies of them."""

    def __init__(self, file: BinaryIO):
        import pycdlib

        self._iso = pycdlib.PyCdlib()
        try:
            with _as_damage():
                self._iso.open_fp(file)
                # the names the disc was written with: Rock Ridge's or Joliet's long ones where it has them
                self._names = ("rr_path" if self._iso.has_rock_ridge() else
                               "joliet_path" if self._iso.has_joliet() else "iso_path")
        except DamagedDiscImage:
            _refuse_a_cut_image(file)
            raise

    def __enter__(self) -> "DiscImage":
        return self

    def __exit__(self, *exc) -> None:
        self._iso.close()

    def files(self) -> list[DiscFile]:
        """The files on the disc; refused where one of them ends beyond the image (a copy cut short)."""
        found, cut = [], 0
        with _as_damage():
            for folder, _, names in self._iso.walk(**{self._names: "/"}):
                for name in names:
                    on_disc = f"{folder.rstrip('/')}/{name}"
                    record = self._iso.get_record(**{self._names: on_disc})
                    if record.is_symlink():  # a Rock Ridge link: the file it names is on the disc itself
                        continue
                    cut += _cut_by_the_image_end(record)
                    found.append(DiscFile(_plain_name(on_disc), record.get_data_length(), on_disc))
        if cut:
            raise DamagedDiscImage(f"it is cut short: {cut} of the {len(found)} files on it "
                                   f"{'ends' if cut == 1 else 'end'} beyond it")
        return found

    def extract(self, files: list[DiscFile], folder: Path) -> None:
        """Copy `files` into `folder`; a name that would lead outside it (a damaged directory's "..") is
        left out."""
        inside = folder.resolve()
        for disc_file in files:
            target = (folder / disc_file.name).resolve()
            if not target.is_relative_to(inside) or target == inside:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with _as_damage():
                self._iso.get_file_from_iso(str(target), **{self._names: disc_file.on_disc})


def _refuse_a_cut_image(file: BinaryIO) -> None:
    """Where pycdlib cannot open an image that ends within its first volume descriptor, or within a sector,
    that it is cut short (it was told in pycdlib's or Python's words: "Failed to read entire volume
    descriptor", "index out of range"; damage tool, disc seeds 37000 to 37049)."""
    size = file.seek(0, 2)
    if size < VOLUME_DESCRIPTOR_END:
        raise DamagedDiscImage(f"it is cut short: it holds {size} bytes, where its first volume descriptor alone "
                               f"ends at byte {VOLUME_DESCRIPTOR_END}")
    if size % SECTOR:
        raise DamagedDiscImage(f"it is cut short: its {size} bytes are no whole number of {SECTOR}-byte sectors")


def _cut_by_the_image_end(record) -> bool:
    """Whether pycdlib shortened a file that ends beyond the image to what the image holds (it then gives
    the file out short without a word): its record keeps the end it read, its data (inode) the length
    left. A disc image that lacks only the padding after its last file is read as it is."""
    return record.inode is not None and record.inode.data_length != record.data_length


def _plain_name(on_disc: str) -> str:
    """An ISO 9660 name without its version and the dot of a name with no extension
    ("/DICOM/IM000001.;1" -> "DICOM/IM000001")."""
    return "/".join(re.sub(r"\.?(;\d+)?$", "", part) for part in on_disc.strip("/").split("/"))


@contextlib.contextmanager
def _as_damage() -> Iterator[None]:
    """What pycdlib raises on a damaged disc image, as `DamagedDiscImage` (an OSError of the disk the
    files are written to passes as it is)."""
    from pycdlib.pycdlibexception import PyCdlibException

    try:
        yield
    except (PyCdlibException, struct.error, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise DamagedDiscImage(first_line(exc)) from None
