"""Random damage to a real CT, each copy run through `liverlesionseg segment` (a label map's, a DICOM
SEG's, an RT structure set's or a 3D Slicer scene's, through `measure`; a 3D-IRCADb-01 case's masks,
through `evaluate`; a training case's, through `train`): the broken exports a clinic may hold beyond
the named cases of the test catalogue.

    .venv/bin/python tools/damage_inputs.py
        [--kind dicom|multiframe|nifti|nrrd|mha|labels|seg|rtstruct|segnrrd|ircadb|chaos|scene|checkpoint|train|
                archive|disc]
        [--first 0] [--count 100]

Seed N damages a copy of eight slices of the bundled sample case (HCC_006; kept JPEG-LS as it is
stored, or made RLE, JPEG 2000, JPEG lossless or plain): header values set to odd ones (NaN, 0,
1e30, empty, another UID, another photometric interpretation …) or deleted in one, two or all of its
DICOM files, any element of them as one multi-frame file (`multiframe`, its nested sequences too),
or the fields of a NIfTI, NRRD or MetaImage header (its size, data type, spacing, affine, scaling,
compression …), sometimes with header bytes changed, a bit of the data flipped or the file cut;
`labels` damages the NIfTI header of a label map given with the CT to `measure`; `seg` and
`rtstruct`, any element of a DICOM SEG or RT structure set made on the eight slices, given with them
to `measure`; `segnrrd`, the header lines of a Slicer .seg.nrrd of them, likewise; `ircadb`, the
mask slices of a 3D-IRCADb-01 case made of them (a file removed or copied over another, or any
element), given to `evaluate`; `chaos`, likewise a CHAOS CT case made of them (a PNG mask removed,
resized, stored in another colour mode or its bytes damaged; a stray file beside the masks; or any
element of its DICOM files); `scene`, the scene file of a Slicer scene bundle (.mrb) of them and
their segmentation (a node's attribute, its tag, the node or a data file removed), given to
`measure`; `checkpoint`, the metadata of a copy of the bundled model (its settings set to odd values
or deleted, its format fields, its first bytes), given to `segment --model` with the slices; `train`,
the image or label map of one of two training cases made of them (its NIfTI header, or the file
removed, emptied or cut), or the labels of the dataset.json of the two as an nnU-Net dataset or as case
folders, given to `train` for one short epoch; `archive`, a ZIP or tar archive of them (deflated or
stored, plain, .gz, .xz or .bz2) cut short, a bit of it flipped or bytes changed anywhere in it or in
its last 200, given to `segment`; `disc`, likewise a CD image (.iso) of them. Each
copy is segmented (measured, evaluated) in this process with the bundled model, and one line per
seed prints the exit status, the damage and the error line; where a copy of a fixed undamaged one
(all kinds but `dicom`) exits 0, whether its lesion table (and liver volume, or evaluation; for
`train`, the cases trained on and the epoch's loss) is the
undamaged copy's, and if not, the first line on stderr that the undamaged copy's run did not print
(a warning of the damage, or only the changed result).

Exits 1 where a run broke the command's contract: an internal error or a traceback, an error told in
several lines (a C library's own lines beside it, which ITK's MetaImage reader printed, count), or
files left in the output folder after a refusal. Read the runs that succeeded too: a damage
segmented without a word (a header announcing a strip of the voxels, read as that strip) breaks no
contract here and is what this tool found first. A seed that runs past `SEED_TIME_LIMIT_S` (a reader
that never returns, as ITK's NIfTI reader did on train seed 28063) ends the run with exit status 1 and
the traceback of where it hangs: it is the seed after the last one printed.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import csv
import faulthandler
import functools
import gzip
import io
import itertools
import json
import lzma
import math
import os
import random
import re
import shutil
import sys
import tarfile
import tempfile
import traceback
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

import numpy as np  # noqa: E402
import pycdlib  # noqa: E402
import pydicom  # noqa: E402
import pydicom.encaps  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from PIL import Image  # noqa: E402

from LiverLesionSegLib import cli  # noqa: E402
from LiverLesionSegLib.io.native_output import held_back  # noqa: E402
from LiverLesionSegLib.io.series_choice import read_ct_folder  # noqa: E402
from LiverLesionSegLib.resources import sample_case_path  # noqa: E402
from LiverLesionSegLib.volume import Volume  # noqa: E402

SLICES = 8
SEED_TIME_LIMIT_S = 600  # a train seed takes about 10 s, the others a few
ODD_NUMBERS = [0, -1, float("nan"), float("inf"), 1e30, 1e-30, "", 0.001, 1e6]  # "": empty
ODD_COUNTS = [0, 1, 7, 8, 12, 15, 16, 17, 32, 64, 65535]
NUMBER_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "RescaleSlope",
               "RescaleIntercept", "SpacingBetweenSlices", "WindowCenter", "WindowWidth", "SliceLocation"]
COUNT_TAGS = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel"]
CODE_TAGS = {"PhotometricInterpretation": ["RGB", "MONOCHROME1", "PALETTE COLOR", "YBR_FULL", ""],
             "Modality": ["MR", "", "SEG", "OT", "ct"],
             "ImageType": [["DERIVED", "SECONDARY"], ["ORIGINAL", "PRIMARY", "LOCALIZER"], ""],
             "PatientPosition": ["FFS", "HFP", "FFDR", "XXX", ""]}
UID_TAGS = ["SeriesInstanceUID", "StudyInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "SOPClassUID"]
ODD_TEXTS = ["", "XXX", "LIVER", "Tumor", "0", "é\x00", "A" * 200]
ODD_CHARACTER_SETS = ["", "XXX", "ISO-IR 100", "ISO_IR 999", "ISO 2022 IR 87", "GB18030"]
CONTRACT_EXITS = {0, 2, 3, 4, 5, 6, 7, 8}  # success, usage, and the project's kinds of error
NATIVE_MARK = "[written by a C library] "  # a line a C library wrote straight to file descriptor 2


@dataclass
class Outcome:
    seed: int
    damage: str
    exit_code: object
    error_lines: list[str]
    stderr: str
    left: list[str]  # files in the output folder afterwards
    table: Optional[str] = None  # the lesion table written, and the liver's volume told (`result_of`)
    said: tuple[str, ...] = ()  # the lines on stderr, the copy's temporary folder written TMP

    def breaches(self) -> list[str]:
        """How this run broke the command's contract (empty where it kept it)."""
        found = []
        if self.exit_code not in CONTRACT_EXITS:
            found.append(f"exit status {self.exit_code}")
        if "internal error" in self.stderr or "Traceback" in self.stderr:
            found.append("an internal error")
        if self.exit_code != 0 and len(self.error_lines) != 1:
            found.append(f"{len(self.error_lines)} error lines")
        if self.exit_code != 0 and NATIVE_MARK in self.stderr:
            found.append("a C library's lines beside the error line")
        if self.exit_code != 0 and self.left:
            found.append(f"left {', '.join(self.left)} after a refusal")
        return found


# --- damage ---------------------------------------------------------------------------------------

def damage_dataset(ds: pydicom.Dataset, rng: random.Random) -> str:
    """One damage to a DICOM file's header or pixel data, in words ("" where nothing changed)."""
    kind = rng.choice(["number", "count", "code", "uid", "delete", "pixels"])
    if kind == "number":
        tag = rng.choice(NUMBER_TAGS)
        values = [rng.choice(ODD_NUMBERS) for _ in range(rng.choice([1, 2, 3, 6]))]
        current = ds.get(tag)
        if current is not None and rng.random() < 0.5 and isinstance(current, pydicom.multival.MultiValue):
            values = [float(v) for v in current]  # one value of a real list made odd
            values[rng.randrange(len(values))] = rng.choice(ODD_NUMBERS)
        if "" in values:  # pydicom takes an empty value alone, not in a list
            values = [""]
        setattr(ds, tag, values if len(values) > 1 else values[0])
        return f"{tag}={values}"
    if kind == "count":
        tag, value = rng.choice(COUNT_TAGS), rng.choice(ODD_COUNTS)
    elif kind == "code":
        tag = rng.choice(list(CODE_TAGS))
        value = rng.choice(CODE_TAGS[tag])
    elif kind == "uid":
        tag, value = rng.choice(UID_TAGS), rng.choice(["", "1.2.3", "1.2.840.10008.5.1.4.1.1.4", "not a uid"])
    elif kind == "delete":
        tag = rng.choice(NUMBER_TAGS + COUNT_TAGS + list(CODE_TAGS) + UID_TAGS + ["PixelData"])
        if tag not in ds:
            return ""
        delattr(ds, tag)
        return f"no {tag}"
    else:
        data = ds.get("PixelData")
        if not data:  # deleted by an earlier damage of this file
            return ""
        how = rng.choice(["half", "longer", "empty", "a byte short"])
        ds.PixelData = {"half": data[:len(data) // 2], "longer": data + data[:1000], "empty": b"",
                        "a byte short": data[:-1]}[how]
        return f"PixelData {how}"
    setattr(ds, tag, value)
    return f"{tag}={value}"


def damaged_dicom(folder: Path, rng: random.Random) -> str:
    """Eight sample slices in `folder`, the same damage (one or two) in one, two or all of them."""
    files = sorted(sample_case_path().glob("*.dcm"))
    start = rng.randrange(len(files) - SLICES)
    which = rng.choice(["one", "two", "all"])
    targets = {"one": rng.sample(range(SLICES), 1), "two": rng.sample(range(SLICES), 2),
               "all": list(range(SLICES))}[which]
    damage_seeds = [rng.random() for _ in range(rng.choice([1, 1, 2]))]
    # the sample is JPEG-LS: kept so, or RLE, JPEG 2000 or JPEG lossless as archives send them, or made plain
    syntax = rng.choice([None] * 6 + ["JPEG-LS"] * 3 + ["RLE", "JPEG 2000", "JPEG lossless"])
    told: list[str] = [syntax] if syntax else []
    folder.mkdir()
    for n, source in enumerate(files[start:start + SLICES]):
        ds = pydicom.dcmread(source)
        if syntax != "JPEG-LS":
            ds.decompress(generate_instance_uid=False)  # the same bytes each run
        if syntax == "RLE":
            ds.compress(pydicom.uid.RLELossless)
        elif syntax in GDCM_SYNTAXES:
            ds = gdcm_transcoded(ds, syntax)
        if n in targets:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns of the odd values set, as it should
                done = [damage_dataset(ds, random.Random(seed)) for seed in damage_seeds]
            if n == targets[0]:
                told += [d for d in done if d]
        try:
            ds.save_as(folder / source.name, enforce_file_format=False)
        except ValueError:  # compressed pixel data damaged out of its encapsulation: the damage kept inside it
            ds.PixelData = pydicom.encaps.encapsulate([bytes(ds.PixelData).ljust(2, b"\0")])
            ds.save_as(folder / source.name, enforce_file_format=False)
    if rng.random() < 0.15:
        told.append(damage_bytes(folder / files[start + rng.randrange(SLICES)].name, rng, 3000))
    return f"dicom, {which}: " + "; ".join(told)


GDCM_SYNTAXES = {"JPEG 2000": "JPEG2000Lossless", "JPEG lossless": "JPEGLosslessProcess14_1"}


def gdcm_transcoded(ds: pydicom.Dataset, syntax: str) -> pydicom.Dataset:
    """A slice in a transfer syntax pydicom has no encoder for here, as GDCM writes it."""
    import gdcm

    with tempfile.TemporaryDirectory() as folder:
        plain, coded = Path(folder, "plain.dcm"), Path(folder, "coded.dcm")
        ds.save_as(plain, enforce_file_format=False)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(plain))
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, GDCM_SYNTAXES[syntax])))
        if not reader.Read():
            raise RuntimeError("GDCM cannot read the slice")
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError(f"GDCM cannot write the slice as {syntax}")
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(coded))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise RuntimeError(f"GDCM cannot write the slice as {syntax}")
        return pydicom.dcmread(coded)


def damaged_nifti(path: Path, rng: random.Random, volume: Optional[Volume] = None) -> str:
    """The sample slices (or `volume`) as a NIfTI whose header fields were changed after its voxels
    were laid out."""
    import nibabel as nib

    volume = _sample_volume() if volume is None else volume
    header = nib.Nifti1Image(volume.array.transpose(2, 1, 0), volume.ijk_to_ras()).header.copy()
    header["vox_offset"] = 352
    told = []
    for _ in range(rng.choice([1, 1, 2])):
        field = rng.choice(["pixdim", "dim", "datatype", "scl_slope", "scl_inter", "qform_code", "sform_code",
                            "quatern_b", "srow_x", "srow_y", "srow_z", "xyzt_units", "intent_code"])
        if field in ("pixdim", "dim", "srow_x", "srow_y", "srow_z"):
            index = rng.randrange(4 if field.startswith("srow") else 5)
            value = rng.choice([0, -1, float("nan"), 1e30, 1e-30, 2, 1000] if field != "dim" else [0, 1, 2, 5, -1])
            header[field][index] = value
            told.append(f"{field}[{index}]={value}")
        elif field == "datatype":
            value = rng.choice([2, 4, 8, 16, 64, 128, 256, 512, 768, 2304])
            header.set_data_dtype(value)
            told.append(f"datatype={value}")
        else:
            value = rng.choice([0, 1, 2, 3, 99, float("nan"), -1, 1e30])
            try:
                header[field] = value
            except (OverflowError, ValueError):
                continue
            told.append(f"{field}={value}")
    data = header.binaryblock + bytes(4) + volume.array.transpose(2, 1, 0).tobytes(order="F")
    path.write_bytes(gzip.compress(data, compresslevel=1))
    if rng.random() < 0.15:
        told.append(damage_bytes(path, rng, 200))
    return "nifti: " + "; ".join(told)


def damaged_nrrd(path: Path, rng: random.Random) -> str:
    """The sample slices as a NRRD whose header lines were changed."""
    sitk.WriteImage(_sample_volume().to_sitk(), str(path), useCompression=rng.random() < 0.5)
    data = path.read_bytes()
    end = data.index(b"\n\n")
    header = data[:end].decode()
    field, value = rng.choice([("sizes", "2 512 8"), ("sizes", "512 512 4"), ("sizes", "512 512 16"),
                               ("type", "uchar"), ("type", "int"), ("type", "double"), ("endian", "big"),
                               ("space directions", "(0,0,0) (0,0.78,0) (0,0,2.5)"),
                               ("space directions", "(nan,0,0) (0,nan,0) (0,0,nan)"),
                               ("space origin", "(nan,0,0)"), ("encoding", "raw"), ("encoding", "gzip"),
                               ("dimension", "2"), ("kinds", "RGB-color domain domain")])
    header = re.sub(rf"^{field}: .*$", f"{field}: {value}", header, flags=re.M)
    path.write_bytes(header.encode() + data[end:])
    told = f"nrrd: {field}: {value}"
    if rng.random() < 0.15:
        told += "; " + damage_bytes(path, rng, 400)
    return told


MHA_LINES = [("NDims", ["2", "4", "0", "x"]), ("DimSize", ["512 512 4", "512 512 16", "2 512 8", "512 512", "0 0 0"]),
             ("ElementType", ["MET_UCHAR", "MET_INT", "MET_DOUBLE", "MET_FLOAT", "MET_XXX", ""]),
             ("ElementSpacing", ["0 0 0", "nan nan nan", "1e30 1 1", "-1 0.78 2.5", "0.78"]),
             ("TransformMatrix", ["0 0 0 0 0 0 0 0 0", "1 0 0 0 1 0 0 0 0", "nan 0 0 0 1 0 0 0 1", "2 0 0 0 2 0 0 0 2",
                                  "1 0 0 1 0 0 0 0 1", "1 0 0"]),
             ("Offset", ["nan 0 0", "1e30 0 0", "0"]), ("BinaryDataByteOrderMSB", ["True"]),
             ("CompressedData", ["True", "False"]), ("ElementNumberOfChannels", ["3", "0"]),
             ("AnatomicalOrientation", ["LPS", "XXX", "RAS"]), ("ElementDataFile", ["ct.raw", "LIST", ""]),
             ("HeaderSize", ["-1", "100", "1000000"]), ("ElementByteOrderMSB", ["True"]), ("BinaryData", ["False"])]


def damaged_mha(path: Path, rng: random.Random) -> str:
    """The sample slices as a MetaImage (.mha) whose header lines were changed, added or removed."""
    sitk.WriteImage(_sample_volume().to_sitk(), str(path), useCompression=rng.random() < 0.5)
    data = path.read_bytes()
    end = data.index(b"ElementDataFile = LOCAL\n")
    lines, told = data[:end].decode().splitlines(), []
    for _ in range(rng.choice([1, 1, 2])):
        field, values = rng.choice(MHA_LINES)
        if rng.random() < 0.2:
            lines = [line for line in lines if not line.startswith(f"{field} =")]
            told.append(f"no {field}")
            continue
        value = rng.choice(values)
        at = next((n for n, line in enumerate(lines) if line.startswith(f"{field} =")), len(lines))
        lines[at:at + 1] = [f"{field} = {value}"]  # in its place, or added
        told.append(f"{field} = {value}")
    data_line = next((t.split(" = ")[1] for t in told if t.startswith("ElementDataFile =")), "LOCAL")
    lines = [line for line in lines if not line.startswith("ElementDataFile =")]
    path.write_bytes(("\n".join(lines) + f"\nElementDataFile = {data_line}\n").encode()
                     + data[end + len(b"ElementDataFile = LOCAL\n"):])
    if rng.random() < 0.15:
        told.append(damage_bytes(path, rng, 400))
    return "mha: " + "; ".join(told)


def damaged_labels(folder: Path, rng: random.Random) -> str:
    """The sample slices as a NIfTI CT, beside a label map of them (liver and lesion by CT value) whose
    NIfTI header was damaged, for `measure`."""
    _write_labels_case(folder)
    return damaged_nifti(folder / "labels.nii.gz", rng, tissue_labels(_sample_volume())).replace("nifti", "labels", 1)


def tissue_labels(ct: Volume) -> Volume:
    """A label map of `ct` by its values: soft tissue as "liver", its darker part as "lesion"."""
    labels = ((ct.array > 40) & (ct.array < 200)).astype(np.uint8)
    labels[(ct.array > 40) & (ct.array < 80)] = 2
    return ct.with_array(labels)


def damage_element(ds: pydicom.Dataset, rng: random.Random) -> str:
    """One damage to any element of `ds`, nested sequences' too, by its value representation, in words."""
    elements = [element for element in ds.iterall() if element.tag.group > 0x0002]
    element = rng.choice(elements)
    holder = next(d for d in _datasets(ds) if element.tag in d and d[element.tag] is element)
    name = element.keyword or str(element.tag)
    how = rng.random()
    if how < 0.25:
        del holder[element.tag]
        return f"no {name}"
    if element.VR == "SQ":
        if element.value and how < 0.6:
            del element.value[rng.randrange(len(element.value))]
            return f"{name}: an item removed"
        element.value = []
        return f"{name} empty"
    if element.VR in ("OB", "OW", "OF", "UN"):
        data = element.value or b""
        element.value = rng.choice([b"", data[:len(data) // 2], data + bytes(8)])
        return f"{name}: {len(element.value)} bytes, not {len(data)}"
    if element.VR in ("US", "UL", "SS", "SL", "IS"):
        value = rng.choice(ODD_COUNTS if element.VR != "IS" else ODD_COUNTS + [-1])
    elif element.VR in ("DS", "FD", "FL"):
        value = rng.choice([v for v in ODD_NUMBERS if v != ""] if element.VR != "DS" else ODD_NUMBERS)
    elif element.VR == "UI":
        value = rng.choice(["", "1.2.3", "1.2.840.10008.5.1.4.1.1.4", "not a uid"])
    elif element.keyword == "SpecificCharacterSet":  # pydicom cannot write one holding a null character
        value = rng.choice(ODD_CHARACTER_SETS)
    else:
        value = rng.choice(ODD_TEXTS)
    before = element.value
    try:
        element.value = value
    except (ValueError, TypeError, OverflowError):
        return ""
    return "" if element.value == before else f"{name}={value!r:.40}"


def _datasets(ds: pydicom.Dataset):
    """`ds` and every dataset nested in its sequences."""
    yield ds
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _datasets(item)


@functools.lru_cache(maxsize=None)
def _measured_objects() -> dict[str, tuple[bytes, dict[str, bytes]]]:
    """The eight sample slices (decompressed), and a DICOM SEG, an RT structure set and a Slicer
    .seg.nrrd of an ellipse and two discs on them (`shape_labels`) written by `measure` over them:
    each object's bytes, and the slices' files by name."""
    with tempfile.TemporaryDirectory() as tmp:
        slices, labels = Path(tmp) / "slices", Path(tmp) / "labels.nii.gz"
        slices.mkdir()
        files = sorted(sample_case_path().glob("*.dcm"))
        middle = len(files) // 2
        for source in files[middle:middle + SLICES]:
            ds = pydicom.dcmread(source)
            ds.decompress(generate_instance_uid=False)  # the same bytes each run
            ds.save_as(slices / source.name, enforce_file_format=False)
        sitk.WriteImage(shape_labels(read_ct_folder(slices)).to_sitk(), str(labels))
        made = {kind: str(Path(tmp, name)) for kind, name in OBJECT_FILES.items()}
        for outputs in (["-o", made["seg"], "--rtstruct", made["rtstruct"]], ["-o", made["segnrrd"]]):
            code, stderr, _ = run_command(["measure", str(slices), str(labels), *outputs])
            if code != 0:
                raise RuntimeError(f"the sample objects were not made: {stderr}")
        return {kind: (Path(tmp, name).read_bytes(), {p.name: p.read_bytes() for p in slices.iterdir()})
                for kind, name in OBJECT_FILES.items()}


def shape_labels(ct: Volume) -> Volume:
    """An ellipse of "liver" on each slice of `ct`, two discs of "lesion" in it: few contours, unlike
    `tissue_labels`, whose thousands of islands make a structure set of 25 MB."""
    _, rows, columns = np.ogrid[:ct.shape[0], :ct.shape[1], :ct.shape[2]]
    labels = np.zeros(ct.shape, np.uint8)
    labels[:] = (((rows - 250) / 120.0) ** 2 + ((columns - 180) / 90.0) ** 2 <= 1)
    for row, column, radius in ((230, 170, 25), (300, 200, 12)):
        labels[:] += ((rows - row) ** 2 + (columns - column) ** 2 <= radius ** 2) & (labels == 1)
    return ct.with_array(labels)


# what `measure` reads beside the slices, by kind
OBJECT_FILES = {"seg": "seg.dcm", "rtstruct": "rtstruct.dcm", "segnrrd": "segmentation.seg.nrrd"}
DICOM_OBJECTS = ("seg", "rtstruct")


def damaged_dicom_object(kind: str, folder: Path, rng: random.Random) -> str:
    """The eight slices in `folder`/slices and `folder`/KIND.dcm, a DICOM SEG or RT structure set over
    them with one to three of its elements damaged (sometimes bytes flipped or the file cut)."""
    return f"{kind}: " + damage_elements(write_object(kind, folder), rng)


def damaged_seg_nrrd(folder: Path, rng: random.Random) -> str:
    """The eight slices in `folder`/slices and a Slicer .seg.nrrd of them whose header lines (the
    segments' names, layers and label values, the geometry, sizes ...) were changed or deleted."""
    path = write_object("segnrrd", folder)
    data = path.read_bytes()
    end = data.index(b"\n\n")
    lines = data[:end].decode().split("\n")
    told = []
    fields = [n for n, line in enumerate(lines) if n and not line.startswith("#")]  # not the magic line, comments
    for _ in range(rng.choice([1, 1, 2])):
        n = rng.choice(fields)
        key = re.split(r":=|: ", lines[n], maxsplit=1)[0]
        if rng.random() < 0.25:
            lines[n] = "#"  # a comment: the line gone, the header's form kept
            told.append(f"no {key}")
            continue
        value = rng.choice(["", "0", "1", "2", "7", "-1", "nan", "XXX", "Liver", "Tumor", "1 2 3"])
        separator = ":=" if ":=" in lines[n] else ": "
        lines[n] = f"{key}{separator}{value}"
        told.append(f"{key}{separator}{value}")
    path.write_bytes("\n".join(lines).encode() + data[end:])
    if rng.random() < 0.15:
        told.append(damage_bytes(path, rng, end))
    return "segnrrd: " + "; ".join(told)


def damage_elements(path: Path, rng: random.Random) -> str:
    """One to three elements of the DICOM file `path` damaged (`damage_element`), sometimes its bytes
    too; in words."""
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the odd values set, as it should
        told = [damage_element(ds, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        ds.save_as(path, enforce_file_format=True)
    if rng.random() < 0.15:
        told.append(damage_bytes(path, rng, 3000))
    return "; ".join(t for t in told if t)


@functools.lru_cache(maxsize=1)
def _multiframe_bytes() -> bytes:
    """The eight sample slices of `_measured_objects` as one multi-frame DICOM file (a Legacy Converted
    Enhanced CT Image, as highdicom converts a series)."""
    import highdicom as hd

    _, slices = _measured_objects()["seg"]
    datasets = [pydicom.dcmread(io.BytesIO(slices[name])) for name in sorted(slices)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom on the anonymised patient name
        image = hd.legacy.LegacyConvertedEnhancedCTImage(datasets, series_instance_uid=hd.UID(), series_number=90,
                                                         sop_instance_uid=hd.UID(), instance_number=1)
    buffer = io.BytesIO()
    image.save_as(buffer)
    return buffer.getvalue()


def damaged_multiframe(path: Path, rng: random.Random) -> str:
    """The eight slices as one multi-frame DICOM file with one to three of its elements damaged (its
    per-frame functional groups too; sometimes bytes flipped or the file cut)."""
    path.write_bytes(_multiframe_bytes())
    return "multiframe: " + damage_elements(path, rng)


def write_object(kind: str, folder: Path) -> Path:
    """The eight slices in `folder`/slices, the undamaged SEG, RT structure set or .seg.nrrd over them
    in `folder` (returned)."""
    data, _ = _measured_objects()[kind]
    _write_slices(folder / "slices")
    (folder / OBJECT_FILES[kind]).write_bytes(data)
    return folder / OBJECT_FILES[kind]


def _write_slices(folder: Path) -> dict[str, bytes]:
    """The eight slices of `_measured_objects` as files in `folder` (made); their bytes by name."""
    _, slices = _measured_objects()["seg"]
    folder.mkdir(parents=True)
    for name, content in slices.items():
        (folder / name).write_bytes(content)
    return slices


IRCADB_MASKS = {"liver": 1, "livertumor01": 2}  # MASKS_DICOM/ folder: the `shape_labels` value inside


def write_ircadb_case(folder: Path) -> None:
    """The eight slices as a 3D-IRCADb-01 case in `folder`: PATIENT_DICOM/, and MASKS_DICOM/liver/ and
    livertumor01/ holding `shape_labels`' ellipse and its discs as that dataset's masks are, one 0/255
    8-bit DICOM file a CT slice (its header the slice's)."""
    slices = _write_slices(folder / "PATIENT_DICOM")
    labels = shape_labels(read_ct_folder(folder / "PATIENT_DICOM")).array[0]  # the same on every slice
    for mask, value in IRCADB_MASKS.items():
        (folder / "MASKS_DICOM" / mask).mkdir(parents=True)
        for n, content in enumerate(slices.values()):
            ds = pydicom.dcmread(io.BytesIO(content))
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            ds.RescaleIntercept, ds.RescaleSlope = 0, 1
            ds.PixelData = np.where(labels >= value, 255, 0).astype(np.uint8).tobytes()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            ds.save_as(folder / "MASKS_DICOM" / mask / f"image_{n}", enforce_file_format=False)


def damaged_ircadb(folder: Path, rng: random.Random) -> str:
    """A 3D-IRCADb-01 case (`write_ircadb_case`) whose liver or lesion mask lost a slice's file, gained
    a copy of one, or had one to three elements damaged in one, two or all of its files (the same
    damage in each; sometimes bytes flipped or a file cut)."""
    write_ircadb_case(folder)
    mask = rng.choice(sorted(IRCADB_MASKS))
    files = sorted((folder / "MASKS_DICOM" / mask).iterdir())
    chosen = rng.choice(files)
    way = rng.random()
    if way < 0.1:
        chosen.unlink()
        return f"ircadb: {mask}/{chosen.name} removed"
    if way < 0.2:
        copied = rng.choice([f for f in files if f != chosen])
        chosen.write_bytes(copied.read_bytes())
        return f"ircadb: {mask}/{chosen.name} replaced by a copy of {copied.name}"
    return f"ircadb, {mask}, " + damage_some(files, rng, chosen)


def damage_some(files: list[Path], rng: random.Random, chosen: Optional[Path] = None) -> str:
    """One to three elements damaged in one of `files` (`chosen`, else one drawn), two or all of them, the
    same damage in each (`damage_elements`); in words."""
    which = rng.choice(["one", "two", "all"])
    targets = {"one": [chosen or rng.choice(files)], "two": rng.sample(files, 2), "all": files}[which]
    damage_seed = rng.random()
    return f"{which}: " + [damage_elements(path, random.Random(damage_seed)) for path in targets][0]


@functools.lru_cache(maxsize=1)
def _scene_bundle_bytes() -> bytes:
    """A 3D Slicer scene bundle (.mrb) as Slicer saves one, made with the real MRML classes: the eight
    slices as the volume "CT", a label map of them, a lesion probability map, and the segmentation
    "Segmentation" of `shape_labels`' liver and lesion on the CT."""
    import slicer

    from LiverLesionSegLib import mrml

    ct = _sample_volume()
    labels = shape_labels(ct)
    scene = slicer.vtkMRMLScene()
    ct_node = mrml.add_volume_node(scene, ct, "CT")
    mrml.add_volume_node(scene, ct.with_array((labels.array > 0).astype(np.uint8)), "CT-label",
                         "vtkMRMLLabelMapVolumeNode")
    mrml.fill_probability_node(scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT lesion probability"),
                               ct.with_array(np.zeros(ct.shape, np.float32)))
    mrml.fill_segmentation_node(mrml.new_segmentation_node(scene, "Segmentation"), ct_node,
                                labels.with_array((labels.array >= 1).astype(np.uint8)),
                                labels.with_array((labels.array == 2).astype(np.uint8)))
    with tempfile.TemporaryDirectory() as tmp:
        scene.SetRootDirectory(tmp)
        if not scene.WriteToMRB(str(Path(tmp, "study.mrb"))):
            raise RuntimeError("the sample scene was not written")
        return Path(tmp, "study.mrb").read_bytes()


SCENE_VALUES = ["", "XXX", "0", "1", "CT", "Liver", "Segmentation", "storage:", "storage:XXX;", "transform:XXX;"]
SCENE_TAGS = ["Volume", "LabelMapVolume", "Segmentation", "VolumeArchetypeStorage", "SegmentationStorage"]
SCENE_KEYS = ["id", "name", "references", "fileName", "attributes", "labelMap", "storageNodeRef"]


def damaged_scene(path: Path, rng: random.Random) -> str:
    """The scene bundle (`_scene_bundle_bytes`) with its scene file's nodes damaged: an attribute
    (names, ids, references, file names, node attributes) deleted or set to an odd value or to another
    node's, a node's tag changed or the node removed; or one of its data files removed."""
    import xml.etree.ElementTree as ElementTree
    import zipfile

    with zipfile.ZipFile(io.BytesIO(_scene_bundle_bytes())) as bundle:
        members = {info.filename: bundle.read(info) for info in bundle.infolist() if not info.is_dir()}
    scene_name = next(name for name in members if name.endswith(".mrml"))
    root = ElementTree.fromstring(members[scene_name])
    told = []
    for _ in range(rng.choice([1, 1, 2])):
        read = [node for node in root if node.tag in SCENE_TAGS]  # the nodes the reader reads, mostly damaged
        node = rng.choice(read if read and rng.random() < 0.8 else list(root))
        way = rng.random()
        if way < 0.1:
            root.remove(node)
            told.append(f"<{node.tag} {node.get('name') or node.get('id')}> removed")
        elif way < 0.2:
            tag, node.tag = node.tag, rng.choice(SCENE_TAGS + ["XXX"])
            told.append(f"<{tag} {node.get('name') or node.get('id')}> as <{node.tag}>")
        elif way < 0.3:
            data = rng.choice(sorted(name for name in members if name != scene_name))
            del members[data]
            told.append(f"{Path(data).name} removed")
        else:
            read_keys = sorted(set(node.keys()) & set(SCENE_KEYS))
            key = rng.choice(read_keys if read_keys and rng.random() < 0.8 else sorted(node.keys()))
            if rng.random() < 0.3:
                del node.attrib[key]
                told.append(f"<{node.tag}> no {key}")
            else:
                others = [other.get(key) for other in root if other.get(key) and other is not node]
                node.set(key, rng.choice(SCENE_VALUES + others))
                told.append(f"<{node.tag}> {key}={node.get(key)[:60]!r}")
    members[scene_name] = ElementTree.tostring(root)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return "scene: " + "; ".join(told)


@functools.lru_cache(maxsize=1)
def _bundled_model() -> tuple[dict, dict]:
    """The bundled model's tensors and metadata (its format fields, the JSON "meta": config, state; and the
    tensors' digest)."""
    from safetensors import safe_open

    from LiverLesionSegLib.checkpoint import DIGEST_KEY, tensors_digest
    from LiverLesionSegLib.resources import bundled_model_path

    with safe_open(str(bundled_model_path()), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        # with its tensors' digest, as `train` writes a checkpoint (the bundled file, older, is checked by its card)
        return tensors, {**f.metadata(), DIGEST_KEY: tensors_digest(tensors)}


def write_checkpoint_case(folder: Path, metadata: Optional[dict] = None) -> None:
    """The sample slices as ct.nii.gz in `folder`, beside model.safetensors: the bundled model's
    tensors, with `metadata` (default: its own)."""
    from safetensors.torch import save_file

    tensors, bundled = _bundled_model()
    folder.mkdir()
    _write_sample(folder / "ct.nii.gz")
    save_file(tensors, str(folder / "model.safetensors"), metadata=metadata or bundled)


ODD_SETTINGS = [0, -1, 0.5, float("nan"), float("inf"), 1e30, -1e30, "", "XXX", None, True, [], [1, 2, 3], {}]


def damaged_checkpoint(folder: Path, rng: random.Random) -> str:
    """The sample slices as a NIfTI beside a copy of the bundled model whose metadata had one or two of
    its settings (the config's, the format fields) set to odd values or deleted, or whose first bytes
    were changed or the file cut; given to `segment --model`."""
    tensors, bundled = _bundled_model()
    metadata = dict(bundled)
    meta = json.loads(metadata["meta"])
    told = []
    for _ in range(rng.choice([1, 1, 2])):
        if rng.random() < 0.1:
            key = rng.choice(["format", "format_version"])
            metadata[key] = str(rng.choice(ODD_SETTINGS))
            told.append(f"{key}={metadata[key]!r}")
            continue
        section = rng.choice(sorted(meta["config"]))
        setting = rng.choice(sorted(meta["config"][section]))
        if rng.random() < 0.15:
            del meta["config"][section][setting]
            told.append(f"no {section}.{setting}")
        else:
            meta["config"][section][setting] = rng.choice(ODD_SETTINGS)
            told.append(f"{section}.{setting}={meta['config'][section][setting]!r}")
    metadata["meta"] = json.dumps(meta)
    write_checkpoint_case(folder, metadata)
    if rng.random() < 0.1:
        told.append(damage_bytes(folder / "model.safetensors", rng, 2000))
    return "checkpoint: " + "; ".join(told)


def damage_bytes(path: Path, rng: random.Random, head: int) -> str:
    """A file cut short, a few of its first `head` bytes changed, or one bit of a byte beyond them flipped
    (a disk's or a download's damage, which only a compressed stream's checksum can tell)."""
    raw = bytearray(path.read_bytes())
    draw = rng.random()
    if draw < 0.4:
        cut = rng.randrange(len(raw))
        path.write_bytes(bytes(raw[:cut]))
        return f"{path.name} cut at byte {cut}"
    if draw < 0.6 and len(raw) > head:
        at = rng.randrange(head, len(raw))
        raw[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(raw))
        return f"{path.name}: a bit flipped at byte {at}"
    for _ in range(rng.randrange(1, 20)):
        raw[rng.randrange(min(len(raw), head))] = rng.randrange(256)
    path.write_bytes(bytes(raw))
    return f"{path.name}: header bytes changed"


def write_chaos_case(folder: Path) -> None:
    """The eight slices as a CHAOS CT case in `folder`: DICOM_anon/i0000,0000b.dcm ..., the names counting
    from the top slice down, and Ground/liver_GT_000.png ..., `shape_labels`' ellipse as its liver (0/255;
    its discs are liver too, CHAOS labelling no lesion)."""
    slices = _write_slices(folder / "DICOM_anon")
    liver = shape_labels(read_ct_folder(folder / "DICOM_anon")).array[0] >= 1  # the same on every slice
    (folder / "Ground").mkdir()
    heights = {name: float(pydicom.dcmread(io.BytesIO(content)).ImagePositionPatient[2])
               for name, content in slices.items()}
    for n, name in enumerate(sorted(slices, key=heights.get, reverse=True)):
        (folder / "DICOM_anon" / name).rename(folder / "DICOM_anon" / f"i{n:04d},0000b.dcm")
        Image.fromarray(np.where(liver, 255, 0).astype(np.uint8)).save(folder / "Ground" / f"liver_GT_{n:03d}.png")


def damaged_chaos(folder: Path, rng: random.Random) -> str:
    """A CHAOS case (`write_chaos_case`) with one of its PNG masks removed, resized, stored in another
    colour mode or its bytes damaged, a stray file beside the masks, or one to three elements damaged in
    one, two or all of its DICOM files."""
    write_chaos_case(folder)
    masks = sorted((folder / "Ground").iterdir())
    mask = rng.choice(masks)
    way = rng.random()
    if way < 0.1:
        mask.unlink()
        return f"chaos: {mask.name} removed"
    if way < 0.2:
        size = rng.choice([(256, 256), (512, 511), (1, 1), (1024, 1024)])
        with Image.open(mask) as image:
            image.resize(size).save(mask)
        return f"chaos: {mask.name} resized to {size}"
    if way < 0.35:
        mode = rng.choice(["1", "P", "RGB", "RGBA", "LA", "I;16", "I", "F"])
        with Image.open(mask) as image:
            converted = image.convert(mode)
        try:
            converted.save(mask)
        except OSError:  # a mode PNG cannot hold (F): written as TIFF under the PNG's name
            converted.save(mask, format="TIFF")
        return f"chaos: {mask.name} stored as mode {mode}"
    if way < 0.45:
        stray = folder / "Ground" / rng.choice(["Thumbs.db", ".DS_Store", "liver_GT_999.txt", "notes.PNG"])
        stray.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))))
        return f"chaos: a stray {stray.name} beside the masks"
    if way < 0.7:
        return "chaos: " + damage_bytes(mask, rng, 64)
    return "chaos, DICOM_anon, " + damage_some(sorted((folder / "DICOM_anon").iterdir()), rng)


ARCHIVE_FORMATS = {"zip": zipfile.ZIP_DEFLATED, "zip, stored": zipfile.ZIP_STORED, "tar": None,
                   "tar.gz": functools.partial(gzip.compress, mtime=0), "tar.xz": lzma.compress,
                   "tar.bz2": bz2.compress}


def write_archive(folder: Path, form: str = "zip") -> Path:
    """The eight slices in an archive of the form `form` (`ARCHIVE_FORMATS`, or "iso") in `folder` (made), under a
    folder `study/` as a PACS web viewer's download holds them, with fixed times (so a seed damages the
    same bytes each run; a CD image's dates are pycdlib's, on the same bytes); its path."""
    folder.mkdir()
    slices = _write_slices(folder / "study")
    shutil.rmtree(folder / "study")
    archive, packed = folder / f"study.{form.split(',')[0]}", io.BytesIO()
    if form.startswith("zip"):
        with zipfile.ZipFile(packed, "w", ARCHIVE_FORMATS[form]) as zipped:
            for name, content in slices.items():
                zipped.writestr(zipfile.ZipInfo(f"study/{name}", (2020, 1, 1, 0, 0, 0)), content,
                                ARCHIVE_FORMATS[form])
        archive.write_bytes(packed.getvalue())
        return archive
    if form == "iso":  # a disc's names, as ISO 9660 level 1 allows them
        disc = pycdlib.PyCdlib()
        disc.new(interchange_level=1)
        disc.add_directory("/STUDY")
        for n, content in enumerate(slices.values()):
            disc.add_fp(io.BytesIO(content), len(content), f"/STUDY/IM{n:06d}.;1")
        disc.write_fp(packed)
        archive.write_bytes(packed.getvalue())
        return archive
    with tarfile.open(fileobj=packed, mode="w") as tarred:
        for name, content in slices.items():
            member = tarfile.TarInfo(f"study/{name}")
            member.size = len(content)
            tarred.addfile(member, io.BytesIO(content))
    compress = ARCHIVE_FORMATS[form] or bytes
    archive.write_bytes(compress(packed.getvalue()))
    return archive


def damaged_archive(folder: Path, rng: random.Random) -> str:
    """The eight slices in a ZIP or tar archive (`write_archive`, any of its forms), damaged by
    `damaged_packed`."""
    form = rng.choice(sorted(ARCHIVE_FORMATS))
    return damaged_packed(write_archive(folder, form), f"archive {form}", rng)


def damaged_disc_image(folder: Path, rng: random.Random) -> str:
    """The eight slices on a CD image (`write_archive`'s "iso"), damaged by `damaged_packed`."""
    return damaged_packed(write_archive(folder, "iso"), "disc", rng)


def damaged_packed(archive: Path, told: str, rng: random.Random) -> str:
    """`archive` cut short, a bit of it flipped, or bytes changed in its first header, anywhere, or in its
    last 200 (a ZIP's central directory, a compressed stream's check)."""
    if rng.random() < 0.5:
        return f"{told}: " + damage_bytes(archive, rng, 512)
    raw = bytearray(archive.read_bytes())
    first = len(raw) - 200 if rng.random() < 0.4 else 0
    places = sorted(rng.randrange(first, len(raw)) for _ in range(rng.randrange(1, 20)))
    for at in places:
        raw[at] = rng.randrange(256)
    archive.write_bytes(bytes(raw))
    return f"{told}: bytes changed at {', '.join(map(str, places[:5]))}{' …' if len(places) > 5 else ''}" \
           f" of {len(raw)}"


@functools.lru_cache(maxsize=1)
def _sample_volume() -> Volume:
    """Eight slices from the middle of the bundled sample case."""
    volume = read_ct_folder(sample_case_path())
    middle = volume.shape[0] // 2
    return Volume(volume.array[middle:middle + SLICES].copy(), volume.spacing,
                  volume.physical_points([0, 0, middle])[0], volume.direction, "sample")


def write_training_cases(folder: Path) -> None:
    """Two training cases, `a` and `b`, each the sample slices as ct.nii.gz beside their labels.nii.gz."""
    folder.mkdir()
    for name in ("a", "b"):
        _write_labels_case(folder / name)


ODD_LABEL_VALUES = [1.5, -1, 3, 0, "x", "2", True, None, [1, 2], {"a": 1}, 10**20]
ODD_LABEL_NAMES = ["", "kidney", "Leber", "tumour", "liver", "background", "Vessel", 7]


def damaged_training_cases(folder: Path, rng: random.Random) -> str:
    """Two training cases, case b's image or label map damaged: its NIfTI header, or the file removed,
    emptied or cut; or the two as an nnU-Net dataset, or as case folders, whose dataset.json's labels were
    changed."""
    write_training_cases(folder)
    if rng.random() < 0.3:
        return _damaged_dataset_json(folder, rng)
    victim = folder / "b" / rng.choice(["ct.nii.gz", "labels.nii.gz"])
    if rng.random() < 0.2:
        how = rng.choice(["removed", "emptied", "cut"])
        data = victim.read_bytes()
        victim.unlink()
        if how != "removed":
            victim.write_bytes(b"" if how == "emptied" else data[:rng.randrange(1, len(data))])
        return f"train: b/{victim.name} {how}"
    labels = tissue_labels(_sample_volume()) if victim.name == "labels.nii.gz" else None
    return damaged_nifti(victim, rng, labels).replace("nifti", f"train: b/{victim.name}", 1)


def _damaged_dataset_json(folder: Path, rng: random.Random) -> str:
    """The two training cases moved into an nnU-Net dataset (imagesTr/a_0000.nii.gz + labelsTr/a.nii.gz),
    or left as case folders with a dataset.json beside them, its labels changed: a value or a name set to
    an odd one, a label removed, the labels replaced, or the file cut."""
    nnunet = rng.random() < 0.5
    for name in ("a", "b") if nnunet else ():
        for sub in ("imagesTr", "labelsTr"):
            (folder / sub).mkdir(exist_ok=True)
        (folder / name / "ct.nii.gz").rename(folder / "imagesTr" / f"{name}_0000.nii.gz")
        (folder / name / "labels.nii.gz").rename(folder / "labelsTr" / f"{name}.nii.gz")
        (folder / name).rmdir()
    labels = {"background": 0, "liver": 1, "tumor": 2}
    how = rng.choice(["value", "value", "name", "removed", "replaced", "cut"])
    key = rng.choice(list(labels))
    if how == "value":
        labels[key] = rng.choice(ODD_LABEL_VALUES)
        told = f"{key}={labels[key]!r}"
    elif how == "name":
        name = rng.choice(ODD_LABEL_NAMES)
        labels = {(n if n != key else name): v for n, v in labels.items()}
        told = f"{key} renamed {name!r}"
    elif how == "removed":
        del labels[key]
        told = f"{key} removed"
    elif how == "replaced":
        labels = rng.choice([[], "liver", None, {"0": "background", "1": "liver", "2": "cancer"}])
        told = f"labels={labels!r}"
    text = json.dumps({"labels": labels, "file_ending": ".nii.gz"})
    if how == "cut":
        text = text[:rng.randrange(1, len(text))]
        told = "cut"
    (folder / "dataset.json").write_text(text)
    return f"train: {'nnU-Net' if nnunet else 'case folders with a'} dataset.json: {told}"


DAMAGE = {"dicom": (damaged_dicom, "slices"), "nifti": (damaged_nifti, "ct.nii.gz"),
          "nrrd": (damaged_nrrd, "ct.nrrd"), "mha": (damaged_mha, "ct.mha"), "labels": (damaged_labels, "case"),
          "seg": (functools.partial(damaged_dicom_object, "seg"), "case"),
          "rtstruct": (functools.partial(damaged_dicom_object, "rtstruct"), "case"),
          "segnrrd": (damaged_seg_nrrd, "case"),
          "multiframe": (damaged_multiframe, "ct.dcm"), "ircadb": (damaged_ircadb, "case"),
          "chaos": (damaged_chaos, "case"), "archive": (damaged_archive, "case"),
          "disc": (damaged_disc_image, "case"),
          "scene": (damaged_scene, "study.mrb"), "checkpoint": (damaged_checkpoint, "case"),
          "train": (damaged_training_cases, "cases")}


def _write_sample(path: Path) -> None:
    sitk.WriteImage(_sample_volume().to_sitk(), str(path))


def _write_labels_case(folder: Path) -> None:
    """The sample slices as ct.nii.gz in `folder`, beside labels.nii.gz of them (`tissue_labels`)."""
    folder.mkdir()
    _write_sample(folder / "ct.nii.gz")
    sitk.WriteImage(tissue_labels(_sample_volume()).to_sitk(), str(folder / "labels.nii.gz"))


# the undamaged copy of each kind whose copies start from one (not `dicom`: eight slices from anywhere)
UNDAMAGED = {"nifti": _write_sample, "nrrd": _write_sample, "mha": _write_sample,
             "labels": _write_labels_case,
             "seg": functools.partial(write_object, "seg"),
             "rtstruct": functools.partial(write_object, "rtstruct"),
             "segnrrd": functools.partial(write_object, "segnrrd"),
             "multiframe": lambda path: path.write_bytes(_multiframe_bytes()),
             "ircadb": write_ircadb_case,
             "chaos": write_chaos_case,
             "archive": write_archive,
             "disc": functools.partial(write_archive, form="iso"),
             "scene": lambda path: path.write_bytes(_scene_bundle_bytes()),
             "checkpoint": write_checkpoint_case,
             "train": write_training_cases}


# --- running ----------------------------------------------------------------------------------------

def run_seed(kind: str, seed: int, damage=None) -> Outcome:
    """Damage a copy as seed `seed` says (or with `damage`) and segment it (measure it, for a label map
    or DICOM object; evaluate it, for a case); what happened."""
    damage, name = damage or DAMAGE[kind][0], DAMAGE[kind][1]
    with tempfile.TemporaryDirectory() as tmp:
        given, out = Path(tmp) / name, Path(tmp) / "out"
        told = damage(given, random.Random(seed))
        out.mkdir()
        code, stderr, stdout = run_command(command(kind, given, out))
        left = sorted(p.name for p in out.iterdir())
        table = result_of(out, stdout)
    errors = [line for line in stderr.splitlines() if line.startswith("liverlesionseg: error:")]
    said = stderr.replace(tmp, "TMP")
    if kind == "archive":  # the undamaged copy is a ZIP: its lines name the same archive
        said = re.sub(r"study\.(zip|tar[.a-z0-9]*)", "study.zip", said)
    return Outcome(seed, told, code, errors, stderr, left, table, tuple(said.splitlines()))


def command(kind: str, given: Path, out: Path) -> list[str]:
    """The command run on the copy `given`: `measure` for a label map or DICOM object, with its CT;
    else `segment`."""
    if kind == "labels":
        return ["measure", str(given / "ct.nii.gz"), str(given / "labels.nii.gz"),
                "--lesions", str(out / "lesions.csv")]
    if kind in ("ircadb", "chaos"):
        return ["evaluate", str(given), "--out", str(out)]
    if kind == "checkpoint":
        return ["segment", str(given / "ct.nii.gz"), "--model", str(given / "model.safetensors"),
                "-o", str(out / "result.seg.nrrd"), "--lesions", str(out / "lesions.csv")]
    if kind == "train":  # one short epoch, as little as shows the cases were read
        return ["train", str(given), "--out", str(out / "run"), "--epochs", "1", "--cycles", "1",
                "--max-slices-per-epoch", "4", "--batch-size", "2", "--seed", "0"]
    if kind in ("archive", "disc"):  # the one archive or disc image in the copy's folder
        return ["segment", str(next(given.iterdir())), "-o", str(out / "result.seg.nrrd"),
                "--lesions", str(out / "lesions.csv")]
    if kind == "scene":  # its CT, with its one segmentation
        return ["measure", str(given), "--lesions", str(out / "lesions.csv")]
    if kind in OBJECT_FILES:
        return ["measure", str(given / "slices"), str(given / OBJECT_FILES[kind]),
                "--lesions", str(out / "lesions.csv")]
    return ["segment", str(given), "-o", str(out / "result.seg.nrrd"), "--lesions", str(out / "lesions.csv")]


def undamaged_table(kind: str) -> Optional[str]:
    """The lesion table the command writes from the undamaged copy of `kind` (None for `dicom`)."""
    return undamaged_run(kind).table if kind in UNDAMAGED else None


@functools.lru_cache(maxsize=None)
def undamaged_run(kind: str) -> Outcome:
    """The command run on the undamaged copy of `kind` (one of `UNDAMAGED`): what a damaged copy's
    run is compared with."""
    outcome = run_seed(kind, 0, damage=lambda given, rng: UNDAMAGED[kind](given) or "none")
    if outcome.exit_code != 0:
        raise RuntimeError(f"the undamaged {kind} copy failed: {outcome.stderr}")
    return outcome


def result_of(out: Path, stdout: str) -> Optional[str]:
    """What a run found: its lesion table and the line that gives the liver's volume; a training run's
    cases and its epoch's loss (None where it wrote neither)."""
    if (out / "run" / "history.json").exists():
        cases = [line for line in stdout.splitlines() if line.startswith("Training on")]
        loss = json.loads((out / "run" / "history.json").read_text())["epochs"][-1]["train_loss"]
        return "".join(line + "\n" for line in cases) + f"train_loss,{loss}\n"
    if not (out / "lesions.csv").exists():
        return None
    liver = [line for line in stdout.splitlines() if line.startswith("Liver:")]
    metrics = (out / "metrics.csv").read_text() if (out / "metrics.csv").exists() else ""  # `evaluate`'s
    return metrics + (out / "lesions.csv").read_text() + "".join(line + "\n" for line in liver)


def same_table(table: str, other: str) -> bool:
    """Two lesion tables hold the same lesions: their cells equal, numbers to a millionth (the writers
    of the undamaged and of the damaged copies round positions differently in the last digits)."""
    rows, other_rows = (list(csv.reader(io.StringIO(t))) for t in (table, other))
    if [len(row) for row in rows] != [len(row) for row in other_rows]:
        return False
    for cell, other_cell in zip(itertools.chain(*rows), itertools.chain(*other_rows)):
        try:
            if not math.isclose(float(cell), float(other_cell), rel_tol=1e-6, abs_tol=1e-6):
                return False
        except ValueError:
            if cell != other_cell:
                return False
    return True


def run_command(argv: list[str]) -> tuple[object, str, str]:
    """`liverlesionseg ARGV...` in this process: its exit status, stderr and stdout. What C libraries
    write straight to file descriptor 2 (ITK's MetaImage reader does) ends stderr, each line marked
    `NATIVE_MARK`."""
    stderr, stdout = io.StringIO(), io.StringIO()
    with held_back(pass_on=False) as native, contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            code = cli.main(argv + ["--progress", "none"])
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # noqa: BLE001 - anything escaping `main` is what this looks for
            code = "raised"
            stderr.write(traceback.format_exc())
        printed = native.lines()
    return code, stderr.getvalue() + "".join(f"{NATIVE_MARK}{line}\n" for line in printed), stdout.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=sorted(DAMAGE), default="dicom")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--count", type=int, default=100, help="how many seeds")
    args = parser.parse_args(argv)
    broken = []
    counts = {"exit 0": 0, "refused": 0, "another table": 0, "unsaid": 0}
    # a C library that never returns holds Python's lock: only faulthandler's own thread can end it, writing
    # to the terminal's stderr (a command's fd 2 is held back while it runs)
    terminal = os.fdopen(os.dup(2), "w")
    for seed in range(args.first, args.first + args.count):
        faulthandler.dump_traceback_later(SEED_TIME_LIMIT_S, exit=True, file=terminal)
        outcome = run_seed(args.kind, seed)
        faulthandler.cancel_dump_traceback_later()
        counts["exit 0" if outcome.exit_code == 0 else "refused"] += 1
        error = outcome.error_lines[0] if outcome.error_lines else ""
        if outcome.table is not None and args.kind in UNDAMAGED:  # the damage changed the lesions found, or not
            undamaged = undamaged_run(args.kind)
            same = same_table(outcome.table, undamaged.table)
            new_lines = [line for line in outcome.said if line not in undamaged.said]
            error = "the undamaged lesion table" if same else "ANOTHER TABLE" + (
                f"; new on stderr: {new_lines[0][:300]}" if new_lines else ", nothing new on stderr")
            counts["another table"] += not same
            counts["unsaid"] += not same and not new_lines
        print(f"{seed}: exit {outcome.exit_code}, {outcome.damage}" + (f" -> {error}" if error else ""), flush=True)
        if outcome.breaches():
            broken.append(outcome)
    another = (f" ({counts['another table']} with another lesion table, {counts['unsaid']} of them with nothing new "
               f"on stderr)" if args.kind in UNDAMAGED else "")
    print(f"{counts['exit 0']} exited 0{another}, {counts['refused']} refused, {len(broken)} broke the contract")
    for outcome in broken:
        print(f"seed {outcome.seed} ({outcome.damage}): {'; '.join(outcome.breaches())}\n{outcome.stderr[-2000:]}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
