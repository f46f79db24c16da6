"""Why ITK could not read an image, in words: its exceptions end in a line of the format library's
own (the NRRD library's "[nrrd] _nrrdEncodingRaw_read: fread got only 753452 2-sized things, not
2097152"), in an operating system's error code left over while the reason went to the terminal (ITK's
MetaImage reader prints "DimSize required and not defined." there), or in the last row of a matrix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence


def itk_reason(exc: Exception, printed: Sequence[str] = ()) -> str:
    """Why ITK could not read a file, in words: its exception's last line, made plain, or what the
    format's own library `printed` where that line is only an operating system's error code left over
    ("Reason: No such file or directory", after ITK's MetaImage reader found its header wanting)."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    told = lines[-1] if lines else type(exc).__name__
    words = _image_words(text) or _nrrd_words(told)
    if words:
        return words
    if printed and (told.startswith("Reason:") or not re.search("[A-Za-z]", told)):
        return metaimage_failure(printed) or printed[0][:200]
    return told[:200]


# `_nrrd_words`' and `metaimage_failure`'s reason for voxel data short of what the header announces
VOXELS_SHORT = re.compile(r"^its voxel data holds (\d+) of the (\d+) bytes its header announces")

# `_image_words`' reasons that blame the header, though ITK may meet them only as it reads the voxels
HEADER_REASONS = ("its orientation (direction) ", "its voxel spacing is ", "its header ")


def tells_of_the_header(reason: str) -> bool:
    """Whether `itk_reason`'s `reason` is a fault of the header (not of the voxel data after it)."""
    return reason.startswith(HEADER_REASONS)


def _image_words(text: str) -> Optional[str]:
    """ITK's own refusals of an image's geometry or voxel type, in words."""
    if "Bad direction, determinant is 0" in text:
        return "its orientation (direction) gives a voxel axis no length, or lays the voxel axes in one plane"
    spacing = re.search(r"Refusing to change spacing from \[.*?\] to \[(.*?)\]", text)
    if spacing:
        return f"its voxel spacing is {spacing[1]}: a spacing of 0, or one that is not a number, is no image's"
    pixel_type = re.search(r"Unknown PixelType: (\w+)\(\d+\)", text)  # (the number is ITK's code of the type)
    if pixel_type:
        return ("its header names no voxel type the reader knows" if pixel_type[1] == "unknown" else
                f"its header lays out voxels of {pixel_type[1].replace('_', ' ')} in a number of components per voxel "
                "that SimpleITK cannot read")
    if "std::bad_alloc" in text:  # after `check_image_fits`: the header asks for what no image is
        return ("the reader ran out of memory reading it as its header describes: its encoding, compression or data "
                "files are likely wrong")
    if "Unable to determine ImageIO reader" in text:
        return "no image reader recognises its header"
    return None


def _nrrd_words(told: str) -> Optional[str]:
    """The NRRD library's "[nrrd] _nrrdFunction: what went wrong", in words: its function's name
    left out, the commonest made plain."""
    said = re.search(r"\[nrrd\] (\w+): (.*)", told)
    if said is None:
        return None
    function, message = said[1], said[2].strip()
    short = re.search(r"fread got only (\d+) (\d+)-sized things, not (\d+)", message)
    if short:
        size = int(short[2])
        return f"its voxel data holds {int(short[1]) * size} of the {int(short[3]) * size} bytes its header announces"
    short = re.search(r"expected (\d+) bytes but received (\d+)", message)
    if short:
        return f"its voxel data holds {short[2]} of the {short[1]} bytes its header announces"
    if function == "_nrrdSpaceVectorParse":
        return ("its space directions or space origin mixes numbers with NaN in one vector (a vector is all numbers, "
                "or all NaN where it is not known)" if "must be consistent" in message else
                f"its space directions or space origin is not a list of vectors of as many numbers as its space has "
                f"dimensions ({message})")
    unknown = re.search(r'failed to parse "(.*)" as field identifier', message)
    if unknown:
        return f"its header holds a field '{unknown[1]}' that NRRD does not know"
    twice = re.fullmatch(r"already set field (.*)", message)
    if twice:
        return f"its header gives its {twice[1]} field twice"
    if function == "_nrrdReadNrrdParse_sizes":
        return f"its sizes line does not give one size for each of its dimensions ({message})"
    if function == "_nrrdFieldCheck_kinds":
        return f"its kinds line does not fit its sizes ({message})"
    return message


def metaimage_failure(printed: Sequence[str]) -> Optional[str]:
    """What ITK's MetaImage reader's complaints (its first line says what is wrong) tell, in words;
    None where they tell no failure it is known for."""
    if not printed:
        return None
    text = "\n".join(printed)
    counts = re.search(r"ideal = (\d+) : actual = (\d+)", text)
    if counts:
        return f"its voxel data holds {counts[2]} of the {counts[1]} bytes its header announces"
    missing = re.match(r"(\w+) required and not defined", printed[0])
    if missing:
        return f"the MetaImage reader finds no {missing[1]} in its header"
    early = re.match(r"(\w+) defined prior to defining NDims", printed[0])
    if early:
        return f"its header gives {early[1]} before NDims, or an NDims that is not a number of dimensions"
    if re.search(r"Cannot open data file|cannot open slice", text):
        return "the data file its header names (ElementDataFile) cannot be opened"
    if "Uncompress failed" in text:
        return "its compressed voxel data cannot be decompressed"
    if "file stream is fail after read" in text:
        return "its voxel data cannot be read as its header describes it (its size, type, encoding or start)"
    return None


def reader_notes(printed: Sequence[str], path: Path) -> str:
    """What ITK printed on a file it read all the same, in words: its source file's line, its object's
    address and the file's path left out ("WARNING: In …/itkNiftiImageIO.cxx, line 2008", "NiftiImageIO
    (0x5562c254b560): /tmp/ct.nii.gz has unexpected scales in sform": "it has unexpected scales in sform")."""
    notes = []
    for line in printed:
        if re.fullmatch(r"(WARNING|ERROR|Warning|Error): In .*, line \d+", line):
            continue
        notes.append(re.sub(r"^\w+ \(0x[0-9a-fA-F]+\): ", "", line).replace(str(path), "it"))
    return "; ".join(dict.fromkeys(notes))[:300]
