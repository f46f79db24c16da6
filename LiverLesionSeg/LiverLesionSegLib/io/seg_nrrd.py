"""Slicer segmentation files (`.seg.nrrd`) read by their segments' names, as Slicer writes them.

Slicer stores each segment as a label value in a layer, and segments that overlap in layers of
their own: a segmentation whose "Liver" holds its lesions (this module's own result, saved from
Slicer) is a 4-D NRRD of two layers, which an image reader takes for a vector image. Files of
Slicer before 4.11 have one layer per segment and no label values. Slicer may also crop the file
to the segments' extent. So the file is read here with pynrrd: each segment's voxels (its label
value in its layer) sorted by what its name means (`segments.meaning_of_segment_name`: "Liver";
"Liver lesion", "Tumor 2", "HCC", ...), or where its name says nothing and Slicer made it from the
segment's terminology (a translated Slicer's "Maks") by that (`segments.meaning_of_segment`); others
are left out, as in training cases. They are placed on the CT's grid by position, the liver with its
lesions.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import numpy as np

from ..errors import GeometryError, InputError, LiverLesionSegError, first_line
from ..memory import check_image_fits
from ..segments import Code, meaning_of_segment, terminology_type, warn_of_left_out
from ..volume import DIRECTION_TOLERANCE, POSITION_TOLERANCE_MM, Volume
from .stored_bytes import COMPRESSED_DATA_DAMAGED, FAILED_CHECK

SEGMENT_KEY = re.compile(r"Segment(\d+)_ID")
# `space` values a NRRD may carry, as signs that take its axes to LPS
SPACE_TO_LPS = {"left-posterior-superior": (1, 1, 1), "right-anterior-superior": (-1, -1, 1),
                "left-anterior-superior": (1, -1, 1), "right-posterior-superior": (-1, 1, 1)}
HINT = "save the segmentation again from Slicer, with the CT as its reference geometry"
HEADER_BYTES_LOOKED_AT = 1 << 20  # a Slicer segmentation's header, hundreds of segments long, is well within


def is_slicer_segmentation(path: str | os.PathLike) -> bool:
    """A NRRD file whose header describes segments (a `Segment0_ID:=` line, ...), told by its lines, not
    by pynrrd's reading of them: one whose type or space origin was damaged was read as a label map, and
    refused in the image reader's words and advice ("export it again"), not as a segmentation."""
    if not str(path).lower().endswith(".nrrd") or not Path(path).is_file():
        return False
    try:
        with open(path, "rb") as fh:
            start = fh.read(HEADER_BYTES_LOOKED_AT)
    except OSError:  # the reader that opens it says why it cannot
        return False
    header = start.split(b"\n\n", 1)[0] if start.startswith(b"NRRD") else b""
    return any(SEGMENT_KEY.fullmatch(line.split(b":=", 1)[0].strip().decode("latin-1"))
               for line in header.splitlines() if b":=" in line)


def _text_lines(fh: BinaryIO, given: list[str]) -> Iterator[str]:
    """The lines of a NRRD header at `fh` as text for pynrrd, which leaves `fh` after the line that ends
    it; each is added to `given` (the last, where pynrrd fails, is the line it could not parse). Slicer
    writes segment names in UTF-8; pynrrd, given the file, drops every byte beyond ASCII: a liver named
    "肝脏" was read as "", a lesion named "Läsion" as "Lsion", and left out. A line of other bytes (an
    older tool's Latin-1) is read as Latin-1."""
    for line in fh:
        try:
            given.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            given.append(line.decode("latin-1"))
        yield given[-1]


PYNRRD_SIZE_FAULT = re.compile(r"does not equal the product of all the dimensions: (\d+)-(\d+)=")
PYNRRD_DIMENSION_FAULT = re.compile(r"^Number of elements in sizes does not match dimension")


def _header_fault(exc: Exception, header: dict, lines: list[str]) -> str:
    """What a reader's exception says of the header: the line pynrrd could not parse (`lines`' last,
    where it failed before it gave a header), a KeyError of pynrrd's ("'XXX'" for a type it does not
    know, "'sizes'" for a field gone), damaged compressed voxels, told as such."""
    if not header and lines:  # pynrrd's words do not name the line ("Vector should be enclosed by parentheses.")
        field, separator, value = lines[-1].strip().partition(":")
        if separator and not value.lstrip("=").strip():  # pynrrd: "string index out of range" (damage seed 41020)
            return f"its header line '{field}' has no value"
        reason = ("it is no 'field: value' line" if "values to unpack" in str(exc)  # (Python's words for it)
                  else "it is not a whole number" if "invalid literal for int()" in str(exc)
                  else "it holds a value that is not a number" if "could not convert string to float" in str(exc)
                  else first_line(exc).rstrip("."))
        return f"its header line '{lines[-1].strip()[:80]}' cannot be read: {reason}"
    if isinstance(exc, zlib.error):
        return (COMPRESSED_DATA_DAMAGED if any(words in str(exc) for words in FAILED_CHECK) else
                f"its compressed voxel data is damaged ({first_line(exc)})")
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if key is not None and key == header.get("type"):
        return f"its type '{key}' is no NRRD data type"
    if isinstance(key, str) and key not in header:
        return f"its header has no '{key}' field"
    counts = PYNRRD_SIZE_FAULT.search(str(exc))  # "... product of all the dimensions: 2097152-1221798=875354"
    if counts:
        announced, held = int(counts[1]), int(counts[2])
        if held > announced:  # (the sizes line damaged to "1 2 3": "holds 2097152 of the 6 voxels")
            return f"its voxel data holds {held} voxels, more than the {announced} its header's sizes announce"
        return f"its voxel data holds {held} of the {announced} voxels its header announces"
    if PYNRRD_DIMENSION_FAULT.search(str(exc)):  # "... Dimension: 3, len(sizes): 1"
        sizes = len(header["sizes"])
        return f"its header gives {sizes} size{'s' * (sizes != 1)} where its dimension is {header['dimension']}"
    missing = re.match(r"Header is missing required field: (.+)", str(exc))
    if missing:  # (pynrrd's words on a line gone; as for a KeyError above)
        return f"its header has no '{missing[1]}' field"
    if str(exc).startswith("Unsupported encoding"):
        return f"its encoding '{header.get('encoding')}' is not raw, gzip, bzip2 or ascii"
    return first_line(exc)


def read_slicer_segmentation(path: str | os.PathLike, reference: Volume, require_liver: bool = True
                             ) -> tuple[Optional[Volume], Volume]:
    """(liver, lesion) uint8 masks on `reference`'s grid (the liver with its lesions). Without
    `require_liver`, a file of lesion segments only gives the liver as None (not segmented)."""
    import nrrd

    path = Path(path)
    header: dict = {}
    lines: list[str] = []
    try:
        with open(path, "rb") as fh:  # the header read once: checked for size, then the data after it
            header = nrrd.read_header(_text_lines(fh, lines))
            check_image_fits(tuple(int(s) for s in header["sizes"]), 1, path)
            data = nrrd.read_data(header, fh, str(path), index_order="F")  # [layer,] i, j, k
        layers, ijk_to_lps = _layers_and_geometry(data, header)
        segments = _segments(header, len(layers))
        _check_claimed(layers, segments)
    except LiverLesionSegError:  # a volume too large for memory, say
        raise
    except Exception as exc:  # pynrrd, zlib and numpy raise many kinds on damaged files
        raise InputError(f"cannot read the segmentation ({_header_fault(exc, header, lines)})", path, HINT) from None
    meanings = [meaning_of_segment(segment.name, segment.type_code) for segment in segments]
    present = set(meanings)
    if "liver" not in present and (require_liver or "lesion" not in present):
        what = "no liver segment" if require_liver else "neither a liver nor a lesion segment"
        listed = ", ".join(f"'{s.name}'" for s in segments) or "none"  # quoted, as the left-out warning's: '' shows
        raise InputError(f"has {what} (segments: {listed})", path,
                         "name the liver segment 'Liver' and lesion segments e.g. 'Liver lesion' or 'Tumor'")
    warn_of_left_out(path, [segment.name for segment, meaning in zip(segments, meanings) if meaning is None])
    masks = {"liver": np.zeros(layers[0].shape, bool), "lesion": np.zeros(layers[0].shape, bool)}
    for segment, meaning in zip(segments, meanings):
        if meaning is not None:
            masks[meaning] |= layers[segment.layer] == segment.value
    masks["liver"] |= masks["lesion"]
    offset = _offset_on(reference, ijk_to_lps, path)
    liver, lesion = (_placed(masks[key].transpose(2, 1, 0), offset, reference, path) for key in ("liver", "lesion"))
    lesion = reference.with_array(lesion, str(path))
    return (reference.with_array(liver, str(path)) if "liver" in present else None), lesion


def _layers_and_geometry(data: np.ndarray, header: dict) -> tuple[np.ndarray, np.ndarray]:
    """The layers as [layer, i, j, k] and the i, j, k axes' 4x4 matrix to LPS."""
    if data.ndim == 3:
        data = data[np.newaxis]
    if data.ndim != 4:
        raise ValueError(f"{data.ndim} dimensions")
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space not in SPACE_TO_LPS:
        raise ValueError(f"its space '{space[:40]}' is none of {', '.join(SPACE_TO_LPS)}")
    signs = np.array(SPACE_TO_LPS[space], float)
    missing = [field for field in ("space directions", "space origin") if field not in header]
    if missing:
        raise ValueError(f"its header has no {missing[0]}, so where its voxels lie cannot be told")
    axes = np.asarray(header["space directions"], dtype=float)[-3:]  # one row per axis i, j, k
    matrix = np.eye(4)
    matrix[:3, :3] = (axes * signs).T
    matrix[:3, 3] = np.asarray(header["space origin"], dtype=float) * signs
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix[:3, :3])) < 1e-9:
        raise ValueError("unusable space directions or origin")
    return data, matrix


@dataclass(frozen=True)
class Segment:
    name: str
    layer: int
    value: int  # its label value in its layer
    type_code: Optional[Code]  # its terminology's type, where Slicer made its name from it


def _segments(header: dict, layers: int) -> list[Segment]:
    """Each segment in the header."""
    numbers = sorted(int(match.group(1)) for key in header if (match := SEGMENT_KEY.fullmatch(key)))
    segments = []
    for n in numbers:
        name = str(header.get(f"Segment{n}_Name", header[f"Segment{n}_ID"]))
        # Slicer before 4.11: one layer per segment, each holding 1
        layer = _whole(header, f"Segment{n}_Layer", n if layers > 1 else 0)
        value = _whole(header, f"Segment{n}_LabelValue", 1)
        if not 0 <= layer < layers:
            raise ValueError(f"segment '{name}' lies in layer {layer}, where the file holds layer"
                             f"{f's 0 to {layers - 1}' if layers > 1 else ' 0 alone'}")
        auto_named = str(header.get(f"Segment{n}_NameAutoGenerated", "0")).strip() == "1"
        code = _terminology_type(str(header.get(f"Segment{n}_Tags", ""))) if auto_named else None
        segments.append(Segment(name, layer, value, code))
    return segments


def _terminology_type(tags: str) -> Optional[Code]:
    """The type of the TerminologyEntry among a segment's tags ("key:value|key:value|", as Slicer writes them)."""
    for tag in tags.split("|"):
        key, _, value = tag.partition(":")
        if key.strip() == "TerminologyEntry":
            return terminology_type(value)
    return None


def _check_claimed(layers: np.ndarray, segments: list[Segment]) -> None:
    """Every value a layer holds but 0 is a segment's label value. Slicer writes no other; a header
    whose label value, layer or segment was damaged left those voxels out without a word."""
    claimed = {(segment.layer, segment.value) for segment in segments}
    for index, layer in enumerate(layers):
        values = np.flatnonzero(np.bincount(layer.ravel())) if layer.dtype.kind == "u" else np.unique(layer)
        unclaimed = [int(v) for v in values if v and (index, int(v)) not in claimed]
        if unclaimed:
            raise ValueError(f"its layer {index} holds voxels of value {unclaimed[0]}, which no segment's label value "
                             "names")


def _whole(header: dict, key: str, default: int) -> int:
    """The header's whole number `key` (`default` where it is absent), named where it is none."""
    value = header.get(key, default)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"its {key} '{str(value)[:40]}' is not a whole number") from None


def _offset_on(reference: Volume, ijk_to_lps: np.ndarray, path: Path) -> np.ndarray:
    """Where the file's first voxel lies on `reference`'s grid (i, j, k); the file's axes must be the CT's."""
    axes = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if not (np.allclose(spacing, reference.spacing, atol=POSITION_TOLERANCE_MM)
            and np.allclose(axes / spacing, reference.direction, atol=DIRECTION_TOLERANCE)):
        raise GeometryError(f"the segmentation's voxels (spacing {_rounded(spacing)} mm) do not lie on the CT's "
                            f"grid (spacing {_rounded(reference.spacing)} mm)", path, HINT)
    corner = np.linalg.solve(reference.ijk_to_lps()[:3, :3], ijk_to_lps[:3, 3] - np.asarray(reference.origin))
    offset = np.round(corner)
    if np.abs((corner - offset) * np.asarray(reference.spacing)).max() > POSITION_TOLERANCE_MM:
        raise GeometryError("the segmentation's voxels lie between the CT's voxels (shifted by a fraction of one)",
                            path, HINT)
    return offset.astype(int)


def _placed(mask_kji: np.ndarray, offset_ijk: np.ndarray, reference: Volume, path: Path) -> np.ndarray:
    """`mask_kji` (the file's extent) pasted into an empty array of `reference`'s shape at `offset_ijk`."""
    placed = np.zeros(reference.shape, np.uint8)
    start = offset_ijk[::-1]  # k, j, i
    end = start + np.array(mask_kji.shape)
    low, high = np.maximum(start, 0), np.minimum(end, reference.shape)
    inside = tuple(slice(a - s, b - s) for a, b, s in zip(low, high, start))
    if np.any(high <= low) or np.count_nonzero(mask_kji[inside]) != np.count_nonzero(mask_kji):
        if np.count_nonzero(mask_kji):
            raise GeometryError("the segmentation reaches beyond the CT's volume", path,
                                "give the segmentation made on this CT")
        return placed
    placed[tuple(slice(a, b) for a, b in zip(low, high))] = mask_kji[inside]
    return placed


def _rounded(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in np.round(np.asarray(values, float), 4)) + ")"
