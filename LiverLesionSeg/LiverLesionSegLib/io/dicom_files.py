"""One DICOM file at a time: list a folder's files, read a file (a bare dataset without preamble
too), decode its pixels, and turn what a damaged file raises into one line naming it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import PIL.Image
import pydicom
import pydicom.encaps
import pydicom.datadict
import pydicom.pixels
import pydicom.tag
from pydicom.dataelem import RawDataElement
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import _get_jpg_parameters  # a frame header's reader, as pydicom uses it

from ..errors import InputError, first_line
from .dicom_values import described, number_values, values_of
from .native_output import held_back

UNDEFINED_LENGTH = 0xFFFFFFFF  # an element's length where delimiters, not the length, end it

LOG = logging.getLogger("LiverLesionSeg")

SLICE_SUFFIXES = {"", ".dcm", ".dicom", ".ima"}  # and numbers: files named by their UIDs (1.2.840....5)


def list_files(folder: Path) -> list[Path]:
    """All files under `folder`, in a stable order (names may lack a suffix or hold spaces).

    Linked folders are followed, each real folder once (a link cycle ends there). Only regular files
    (linked ones too) are listed: a named pipe or a device among them would block the first read
    forever, a dangling link cannot be read.
    """
    found = []
    seen = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(names) if os.path.isfile(os.path.join(root, name)))
    return found


def dcmread(path: str | os.PathLike, **kwargs) -> pydicom.Dataset:
    """`pydicom.dcmread`, and a file written as a bare dataset (no 128-byte preamble, no "DICM", no
    file meta information; older systems and toolkits write such files, and DCMTK, GDCM and so 3D
    Slicer read them) read as the dataset it is, its transfer syntax the encoding it was found in."""
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        if not starts_as_a_bare_dataset(path):
            raise
    dataset = pydicom.dcmread(path, force=True, **kwargs)
    if "TransferSyntaxUID" not in dataset.file_meta:
        implicit, little = dataset.original_encoding
        dataset.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian if implicit else
            pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    return dataset


def check_not_cut_short(path: Path, ds: pydicom.Dataset, hint: str) -> None:
    """Refuse a file read just now (`ds`, its elements not yet looked at) that ends inside an element
    whose length it gives: pydicom reads what there is without a word, and an RT structure set cut
    short was told by what its last item lacked ("an item of its ROIContourSequence has no
    ReferencedROINumber", damage tool seeds 37040 and 37047). A damaged length reads alike (seed 38006:
    a StructureSetName of 2903958 bytes), so both are named."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)  # the element as read, before pydicom parses its value
        if (isinstance(raw, RawDataElement) and raw.value is not None and raw.length != UNDEFINED_LENGTH
                and len(raw.value) < raw.length):
            name = pydicom.datadict.keyword_for_tag(tag) or str(tag)
            raise InputError(f"the file ends within its {name}, after {len(raw.value)} of the element's "
                             f"{raw.length} bytes: it is cut short, or that element's length is damaged", path, hint)


def read_dataset(path: Path) -> pydicom.Dataset:
    """A whole DICOM file; a damaged one (or one that is not DICOM) is an InputError naming it."""
    ds = read_dataset_if_dicom(path)
    if ds is None:
        raise InputError("not a DICOM file", path, "give DICOM files")
    return ds


def read_dataset_if_dicom(path: Path) -> Optional[pydicom.Dataset]:
    """A whole DICOM file, or None when the file is not DICOM; a damaged one is an InputError."""
    try:
        return dcmread(path)
    except InvalidDicomError:
        if has_dicom_prefix(path):
            raise InputError("damaged DICOM file", path, "export the series again") from None
        return None
    except Exception as exc:
        raise InputError(f"cannot read the DICOM file ({pydicom_fault(exc)})", path,
                         "the file may be truncated or damaged; export the series again") from None


def pydicom_fault(exc: BaseException) -> str:
    """What pydicom's exception on reading a damaged file means: a SpecificCharacterSet holding a null
    character fails Python's codec lookup ("embedded null character"); an element whose length fits no
    whole number of its values is named; else its own words."""
    if isinstance(exc, ValueError) and "embedded null character" in str(exc):
        return "its SpecificCharacterSet holds a null character, so the character set of its text cannot be told"
    wrong_length = re.search(r"with length (\d+) and struct format .* bytes per value of (\d+)\. This occurred while "
                             r"trying to parse \((\w{4}),(\w{4})\) according to VR '(\w+)'", str(exc), flags=re.S)
    if isinstance(exc, BytesLengthException) and wrong_length:  # (its words hold the raw bytes of the header that
        # follows: damage tool, ircadb seed 41022, a FileMetaInformationGroupLength 249 bytes long)
        length, size, group, element, vr = wrong_length.groups()
        tag = pydicom.tag.Tag(int(group, 16), int(element, 16))
        name = pydicom.datadict.keyword_for_tag(tag) or "an element"
        return (f"its {name} {tag} is {length} bytes long, no whole number of its values of {size} bytes ({vr}): "
                "its length is damaged")
    return first_line(exc)


# What pydicom (which parses elements only when they are used) and arithmetic on header values
# raise for damaged elements.
HEADER_ERRORS = (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError, ZeroDivisionError,
                 NotImplementedError, EOFError, struct.error, InvalidDicomError, BytesLengthException)


@contextlib.contextmanager
def header_values(where: str | os.PathLike):
    """Header values of the wrong kind (text where a number belongs, one number where there
    should be three) in a damaged or hand-edited file end as an InputError naming it."""
    try:
        yield
    except HEADER_ERRORS as exc:
        raise InputError(f"has a header value that cannot be used ({pydicom_fault(exc)})", where,
                         "the file is damaged or was edited; export it again") from None


# Sequences of a multi-frame image or SEG that hold at least one item wherever they are present
# (DICOM PS3.3: its functional groups, segment descriptions and references). An empty one is where
# highdicom fails with "list index out of range" or "Sequence must contain a single item."
ITEMS_NEEDED = {"SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "FrameContentSequence",
                "PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence",
                "PixelValueTransformationSequence", "CTImageFrameTypeSequence", "SegmentIdentificationSequence",
                "SegmentSequence", "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence",
                "SegmentationAlgorithmIdentificationSequence", "AlgorithmFamilyCodeSequence",
                "DimensionIndexSequence", "ReferencedSeriesSequence", "ReferencedInstanceSequence",
                "SourceImageSequence", "ConversionSourceAttributesSequence"}


def reading_fault(exc: BaseException, path: Path) -> str:
    """What went wrong reading the multi-frame image or SEG `path`, for a message: a required sequence
    left empty, named with where it lies, else the library's own words (`first_line`)."""
    try:  # values are parsed as they are walked: a damaged one fails here, where the library may have
        # failed on another fault first ("list index out of range" for an empty sequence)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found = (empty_sequence_needed(ds) or _index_count_mismatch(ds) or _index_pointing_nowhere(ds) or
                 unusable_plane_value(ds) or _pixel_measure_empty(ds) or _frame_lacking(ds, first_line(exc)) or
                 ("no SOPClassUID" if not ds.get("SOPClassUID") else None) or missing_pixel_description(ds))
    except Exception as walked:
        found = f"its header is damaged: {pydicom_fault(walked)}"
    return found or first_line(exc)


def _pixel_measure_empty(ds: pydicom.Dataset) -> Optional[str]:
    """"the frames' shared PixelMeasuresSequence holds an empty SpacingBetweenSlices" where an element of
    the pixel measures is there but empty (highdicom said "no element (0028,9110) PixelMeasuresSequence",
    damage tool, multiframe seed 38005); None where none is."""
    for sequence, whose in (("SharedFunctionalGroupsSequence", "the frames' shared"),
                            ("PerFrameFunctionalGroupsSequence", "a frame's")):
        for group in ds.get(sequence) or []:
            for item in group.get("PixelMeasuresSequence") or []:
                empty = next((element.keyword for element in item if element.value in (None, "")), None)
                if empty:
                    return f"{whose} PixelMeasuresSequence holds an empty {empty}"
    return None


# The words for a frame's element missing or empty: highdicom's "no element (0020,9056) StackID", its
# frame table's "NOT NULL constraint failed: FrameLUT.ReferencedSegmentNumber", `first_line`'s "no X"
NO_ELEMENT = re.compile(r"^no element \([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\) (\w+)|NOT NULL constraint failed: \w+\.(\w+)|"
                        r"^no (\w+)$")


def _frame_lacking(ds: pydicom.Dataset, said: str) -> Optional[str]:
    """The frame that lacks a functional group or an element in one that the other frames hold, or
    holds it empty, where the reader `said` only "no element (0020,9056) StackID" (one frame's
    StackID removed) or "no FrameContentSequence"."""
    named = NO_ELEMENT.search(said)
    if named is None:
        return None
    keyword, frames = named[1] or named[2] or named[3], ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(frames) > 1 and any(keyword in frame for frame in frames):
        number = next((n for n, frame in enumerate(frames, start=1) if keyword not in frame), None)
        return f"frame {number} has no {keyword}, which the other frames hold" if number else None
    holding = {group.keyword for frame in frames for group in frame
               if group.VR == "SQ" and any(item.get(keyword) not in (None, "") for item in group.value)}
    for number, frame in enumerate(frames, start=1):
        for group in frame:
            if group.keyword in holding and not any(item.get(keyword) not in (None, "") for item in group.value):
                lacks = "an empty" if any(keyword in item for item in group.value) else "no"
                return f"frame {number}'s {group.keyword} has {lacks} {keyword}, which the other frames' hold"
    return None


def _index_count_mismatch(ds: pydicom.Dataset) -> Optional[str]:
    """A frame whose DimensionIndexValues hold another count of values than the DimensionIndexSequence
    has indices (highdicom: "Unexpected mismatch between dimension index values ...")."""
    indices = len(ds.get("DimensionIndexSequence") or [])
    for number, frame in enumerate(ds.get("PerFrameFunctionalGroupsSequence") or [], start=1):
        content = frame.get("FrameContentSequence")
        if not content or "DimensionIndexValues" not in content[0]:
            continue
        values = content[0].DimensionIndexValues
        count = 0 if values in (None, "") else len(values_of(values))
        if indices and count != indices:
            return (f"frame {number}'s DimensionIndexValues hold {count} value{'s' * (count != 1)}, where the "
                    f"file's DimensionIndexSequence has {indices} indices")
    return None


def _index_pointing_nowhere(ds: pydicom.Dataset) -> Optional[str]:
    """A DimensionIndexSequence item pointing to an element the frames' functional groups do not hold
    (highdicom: "no element (0000,0000) CommandGroupLength"), or a frame that lacks it (its plane
    position removed), named."""
    frames = ds.get("PerFrameFunctionalGroupsSequence") or [None]
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    for number, index in enumerate(ds.get("DimensionIndexSequence") or [], start=1):
        pointer, group = index.get("DimensionIndexPointer"), index.get("FunctionalGroupPointer")
        for keyword in ("DimensionIndexPointer", "FunctionalGroupPointer"):
            if keyword in index and index.get(keyword) in (None, ""):  # highdicom: "'None'"
                return f"its DimensionIndexSequence item {number} has an empty {keyword}"
        if pointer is not None and group is None and "FunctionalGroupPointer" not in index:  # (damage tool, seed
            # 39000: highdicom's "no element (0020,0032) ImagePositionPatient", which the frames hold)
            return (f"its DimensionIndexSequence item {number} has no FunctionalGroupPointer, so the functional group "
                    f"holding its {_tag_name(pointer)} cannot be told")
        if pointer is None or group is None:
            continue
        lacking = [(n, lacks) for n, frame in enumerate(frames, start=1)
                   if (lacks := _what_lacks(frame, shared, pointer, group))]
        if not lacking:
            continue
        (first, lacks), pointed, holder = lacking[0], _tag_name(pointer), _tag_name(group)
        if len(lacking) < len(frames):  # the pointer is right: the frame is damaged
            return (f"frame {first} has no {holder}" if lacks == "group" else
                    f"frame {first}'s {holder} has no {pointed}")
        where = f"its DimensionIndexSequence item {number} points to {pointed} in {holder}"
        return f"{where}, which its frames' {'functional groups do' if lacks == 'group' else f'{holder} does'} not hold"
    return None


def _what_lacks(frame: Optional[pydicom.Dataset], shared: Optional[pydicom.Dataset], pointer, group) -> str:
    """Whether a frame's functional groups (its own, and the shared) lack the `group` ("group") or
    hold it without the element `pointer` ("pointer"); empty where they hold both."""
    groups = [g[group].value[0] for g in (frame, shared) if g is not None and group in g and len(g[group].value)]
    if not groups:
        return "group"
    return "" if any(pointer in g for g in groups) else "pointer"


# A frame's geometry: the functional group that holds it, the element and how many numbers it needs
PLANE_VALUES = (("PlanePositionSequence", "ImagePositionPatient", 3),
                ("PlaneOrientationSequence", "ImageOrientationPatient", 6),
                ("PixelMeasuresSequence", "PixelSpacing", 2))


def unusable_plane_value(ds: pydicom.Dataset) -> Optional[str]:
    """A frame whose position, orientation or pixel spacing is empty or not its count of numbers
    (highdicom: "'NoneType' object is not subscriptable", "list index out of range")."""
    shared = (ds.get("SharedFunctionalGroupsSequence") or [pydicom.Dataset()])[0]
    for number, frame in enumerate(ds.get("PerFrameFunctionalGroupsSequence") or [], start=1):
        for sequence, keyword, count in PLANE_VALUES:
            own = frame.get(sequence)
            items = own or shared.get(sequence)
            value = items[0].get(keyword) if items else None
            if items and number_values(value, count) is None:
                whose = f"frame {number}'s" if own else "the frames' shared"
                return f"{whose} {keyword} (in {sequence}) is {described(value, count)}"
    return None


def _tag_name(tag) -> str:
    tag = pydicom.tag.Tag(tag)
    return f"{tag} {pydicom.datadict.keyword_for_tag(tag)}".rstrip()


def empty_sequence_needed(ds: pydicom.Dataset) -> Optional[str]:
    """"its PlanePositionSequence (in PerFrameFunctionalGroupsSequence item 3) is empty, where an item
    is needed" for the first sequence of `ITEMS_NEEDED` in `ds` left empty; None where there is none."""
    empty = _empty_sequence(ds, "")
    return f"its {empty} is empty, where an item is needed" if empty else None


def _empty_sequence(ds: pydicom.Dataset, where: str) -> Optional[str]:
    """The first sequence of `ITEMS_NEEDED` within `ds` that holds no item, with where it lies."""
    for element in ds:
        if element.VR != "SQ":
            continue
        if element.keyword in ITEMS_NEEDED and len(element.value) == 0:
            return element.keyword + where
        for number, item in enumerate(element.value, start=1):
            found = _empty_sequence(item, f" (in {element.keyword} item {number})" if not where else where)
            if found:
                return found
    return None


def check_decoder(path: Path, ds: pydicom.Dataset) -> None:
    """Compressed pixel data needs a decoder: refuse, naming what to install, when there is none."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None and "PixelData" in ds:  # pydicom's words: "'transfer_syntax_uid' is required if ..."
        raise InputError("its file meta information gives no TransferSyntaxUID (the group is missing or damaged), so "
                         "how its pixel data is stored cannot be told", path, "the file is damaged; export the "
                         "series again")
    if syntax is not None and not syntax.is_transfer_syntax:
        raise InputError(f"its TransferSyntaxUID '{syntax}' names no transfer syntax, so how its pixel data is "
                         "stored cannot be told", path, "the file is damaged; export the series again")
    if syntax is not None and syntax.is_compressed:
        decoder = get_decoder(syntax)
        if not decoder.is_available:
            raise InputError(f"the pixel data is compressed as {syntax.name} ({syntax}) and no decoder for it "
                             "is installed", path,
                             "install pylibjpeg with its plugins (pylibjpeg-libjpeg, pylibjpeg-openjpeg) or "
                             "python-gdcm, or export the series uncompressed")


def decode_pixels(path: Path, ds: pydicom.Dataset, complaints: Optional[list[tuple[Path, str]]] = None
                  ) -> np.ndarray:
    """The stored pixel values of a single-frame image, with clear errors for what cannot be decoded
    (a decoder's complaint on what it decodes: see `decoding`)."""
    check_has_pixel_data(path, ds)
    check_decoder(path, ds)
    check_coded_size(path, ds)
    check_no_surplus_frames(path, ds)
    with decoding(path, complaints):
        return ds.pixel_array


def check_has_pixel_data(path: Path, ds: pydicom.Dataset) -> None:
    """Refuse an image without pixel data in one line (pydicom: "The dataset in 'src' has no 'Pixel
    Data', 'Float Pixel Data' or 'Double Float Pixel Data' element, no pixel data to decode")."""
    if "PixelData" not in ds:
        raise InputError("has no pixel data (a truncated file?)", path, "export the series again")


def check_coded_size(path: Path, ds: pydicom.Dataset) -> None:
    """Refuse a compressed image whose first frame's own size is not the header's Rows and Columns, before
    any decoder sees it: GDCM, the fallback where the first decoder fails, ends the whole program (a C++
    exception nothing catches) on a JPEG-LS frame smaller than the header says, and a larger header read
    other pixels as the image without a word."""
    try:
        syntax = ds.file_meta.TransferSyntaxUID
        if not syntax.is_compressed:
            return
        declared = (int(ds.Rows), int(ds.Columns))
        frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1)))
    except Exception:  # the header's or the fragments' own fault, told where the pixels are decoded
        return
    coded = coded_size(frame, syntax)
    if coded is not None and coded != declared:
        raise InputError(f"its header gives its image {declared[0]} x {declared[1]} pixels (Rows x Columns), but its "
                         f"compressed image holds {coded[0]} x {coded[1]}: the header is damaged", path,
                         "export the series again")


def coded_size(frame: bytes, syntax: pydicom.uid.UID) -> Optional[tuple[int, int]]:
    """A compressed frame's own rows and columns, from its codestream's header (pydicom's reading of a JPEG
    or JPEG-LS frame header, Pillow's of a JPEG 2000 one), or None where it cannot be told (RLE holds none)."""
    try:
        if syntax in pydicom.uid.JPEG2000TransferSyntaxes:
            with PIL.Image.open(io.BytesIO(frame)) as image:  # reads the header only
                return image.height, image.width
        if syntax in JPEG_SYNTAXES:
            header = _get_jpg_parameters(frame)
            return (header["height"], header["width"]) if header else None
    except Exception:  # a header too damaged to read: the decoders tell it
        return None
    return None


# JPEG transfer syntaxes whose frame header gives the image's size (baseline, extended, lossless, JPEG-LS)
JPEG_SYNTAXES = (*pydicom.uid.JPEGTransferSyntaxes, *pydicom.uid.JPEGLSTransferSyntaxes)
# pixel data cut short, in pydicom's words (which count one frame's bytes) or numpy's
SHORT_WORDS = re.compile(r"^The number of bytes of pixel data is less than expected|^cannot reshape array of size|"
                         r"^buffer size must be a multiple of element size")
INTERNAL_WORDS = re.compile(r"object has no attribute|object is not (subscriptable|callable|iterable)")
# pydicom's check of the header's image description: "A (0028,0103) 'Pixel Representation' value of '12' is
# invalid, it must be 0 or 1" (Rows, Columns, BitsAllocated, BitsStored, SamplesPerPixel, NumberOfFrames ...);
# pixel data that fits the header's frames at another BitsAllocated (`pixel_data_shortfall`); and one of
# those elements missing where highdicom decodes a SEG's frames ("no Rows", `first_line`'s words)
PIXEL_DESCRIPTION = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                     "PixelRepresentation", "NumberOfFrames")
HEADER_FAULT_WORDS = re.compile(r"^A \(0028,[0-9A-Fa-f]{4}\) '[^']*' value of|^A value of '.*' for \(0028,|"
                                r"^Missing required element: \(0028,|^Unknown \(0028,|where its BitsAllocated gives|"
                                r"where its header gives \d+ x \d+ \(Rows x Columns\)|"
                                rf"^no ({'|'.join(PIXEL_DESCRIPTION)})$")


@contextlib.contextmanager
def decoding(path: Path, complaints: Optional[list[tuple[Path, str]]] = None):
    """Pixel data that fails to decode (cut short, damaged) told in one line naming `path`; a
    decoder's own complaint on data it decodes all the same (libjpeg's "Corrupt JPEG data: 8
    extraneous bytes before marker 0xd9", printed straight to the terminal) told as a warning naming
    it, or added to `complaints` for `tell_decoder_complaints` (a series told once, not per slice).
    Call `check_decoder` first: a missing decoder has its own message."""
    try:
        with held_back(pass_on=False) as printed, warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            yield
            said = [" ".join(str(w.message).split()) for w in warned if _of_a_decoder(w)]
            # pydicom logs each warning too: where a handler prints it to stderr, it was held with the rest
            said_here = said + [line for line in printed.lines() if not any(words in line for words in said)]
        for w in warned:  # the others go on to whoever listens (the command line tells them after its run)
            if not _of_a_decoder(w):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except Exception as exc:
        # pydicom lists each decoder's reason on a line of its own, after a first line that says none
        reasons = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        # a plugin's own failure in Python's words (gdcm's "'NoneType' object has no attribute 'encode'",
        # on a damaged JPEG-LS slice) says nothing of the file where another plugin's reason does
        reasons = ([reason for reason in reasons if not INTERNAL_WORDS.search(reason)]
                   or [f"{reason.split(':')[0]}: its compressed data cannot be decoded" for reason in reasons])
        # Python's name of a buffer, as pillow gives it ("cannot identify image file <_io.BytesIO object at 0x7f…>")
        reasons = [re.sub(r" *<_io\.BytesIO object at 0x[0-9a-f]+>", "", reason) for reason in reasons]
        if reasons and all("does not support" in reason for reason in reasons):
            raise InputError(f"the pixel data is compressed in a form the installed decoders cannot decode "
                             f"({'; '.join(reasons)})", path,
                             "install pylibjpeg with its plugins (pylibjpeg-libjpeg, pylibjpeg-openjpeg), or export "
                             "the series uncompressed") from None
        detail = "; ".join(reasons) if reasons else _first_frame_fault(path) or first_line(exc)
        if SHORT_WORDS.search(detail):  # pixel data cut short is told in bytes
            detail = _shortfall_of(path) or detail
        raise undecodable("the pixel data", detail, path, "export the series again") from None
    if said_here:
        told = (path, "; ".join(said_here)[:300])
        if complaints is None:
            tell_decoder_complaints(path, [told])
        else:
            complaints.append(told)


def tell_decoder_complaints(where: Path, complaints: list[tuple[Path, str]]) -> None:
    """One warning for the slices whose decoders reported damage on data they decoded all the same."""
    if len(complaints) == 1:
        LOG.warning("%s: its pixel data's decoder reports damage (%s) but decodes it: read as decoded; check the "
                    "image, or export the series again", *complaints[0])
    elif complaints:
        LOG.warning("%s: the pixel data's decoders report damage in %d slices, e.g. %s (%s), but decode them: read as "
                    "decoded; check the image, or export the series again", where, len(complaints),
                    complaints[0][0].name, complaints[0][1])


def _of_a_decoder(warning: warnings.WarningMessage) -> bool:
    """A Python warning of pydicom's pixel decoders ("The pixel data is 524292 bytes long, which indicates
    it contains 4 bytes of excess padding to be removed"), which would otherwise reach stderr as two lines."""
    parts = Path(warning.filename).parts
    return "pydicom" in parts and "pixels" in parts


def _shortfall_of(path: Path) -> Optional[str]:
    try:
        ds = pydicom.dcmread(path)
        bits = int(ds.get("BitsAllocated") or 16)
        return pixel_data_shortfall(ds, usual_bits=16 if bits > 16 else None)  # a CT's 16 bits told as 32 or 64
    except Exception:  # what cannot be read is told in the library's words
        return None


def missing_pixel_description(ds: pydicom.Dataset) -> Optional[str]:
    """"no Rows" where a multi-frame image's or SEG's header lacks an element that describes its pixel
    data, or holds it empty (highdicom: "unsupported operand type(s) for *: 'NoneType' and 'int'")."""
    missing = [keyword for keyword in PIXEL_DESCRIPTION if ds.get(keyword) in (None, "")]
    return f"no {missing[0]}" if missing else None


def undecodable(what: str, detail: str, path: Path, again: str) -> InputError:
    """The error for `what` ("the pixel data") that cannot be decoded for `detail`, told as the
    header's fault where its description of the pixel data is (the pixel data may be whole)."""
    if HEADER_FAULT_WORDS.search(detail):
        return InputError(f"its header's description of its pixel data is damaged ({detail})", path, again)
    return InputError(f"cannot decode {what} ({detail})", path, f"the file may be truncated or damaged; {again}")


def pixel_data_shortfall(ds: pydicom.Dataset, usual_bits: Optional[int] = None) -> Optional[str]:
    """How many bytes uncompressed pixel data holds of those its frames need, where it holds fewer
    (pydicom tells it of one frame, numpy as "cannot reshape array of size 237760 into shape (512,512)");
    None where it holds them all, or where that cannot be counted. Where it holds exactly what the
    frames take at the `usual_bits` a pixel of its kind (a BINARY SEG's 1, made 16), or at a square size
    its header's Rows or Columns gives, that is told instead (the header is damaged, not the data)."""
    counts = _pixel_data_counts(ds)
    if counts is None or counts[0] >= counts[1]:
        return None
    held, needed, frames = counts
    if usual_bits is not None:
        fitting = (needed * 8 // int(ds.BitsAllocated) * usual_bits + 7) // 8
        if held in (fitting, fitting + fitting % 2):  # (padded to an even length in the file)
            return (f"its pixel data holds {held} bytes, what {_its_frames(ds, frames)} take at {usual_bits} "
                    f"bit{'s' * (usual_bits != 1)} a pixel, where its BitsAllocated gives {int(ds.BitsAllocated)}")
    rows, columns = int(ds.Rows), int(ds.Columns)
    for side in {rows, columns} if rows != columns else ():  # a square image whose Rows or Columns is damaged
        if held * rows * columns == needed * side * side:  # (damage tool, multiframe seed 42006: "holds 4194304 of
            # the 536862720 bytes its 8 frames of 512 x 65535 need … may be truncated")
            return (f"its pixel data holds {held} bytes, what {frames} frame{'s' * (frames != 1)} of {side} x {side} "
                    f"take, where its header gives {rows} x {columns} (Rows x Columns)")
    return f"its pixel data holds {held} of the {needed} bytes {_its_frames(ds, frames)} need"


def check_no_surplus_frames(path: Path, ds: pydicom.Dataset, hint: str = "export the series again") -> None:
    """Refuse uncompressed pixel data of a whole frame or more beyond what the header's frames need: a
    damaged Rows, Columns or BitsAllocated, which pydicom reads as several frames of another image (a
    Rows of 64 made a 512-row slice 8 frames, refused then as "expected a 3-D image, got 4-D"; a SEG's
    Rows of 16 was refused as a mask of another size than the CT's, damage tool seed 37019)."""
    counts = _pixel_data_counts(ds)
    if counts is not None and counts[0] >= 2 * counts[1]:
        held, needed, frames = counts
        raise InputError(f"its pixel data holds {held} bytes, {held / needed:.3g} times the {needed} "
                         f"{_its_frames(ds, frames)} (Rows x Columns) need: the header is damaged", path, hint)


def check_a_description_for_each_frame(path: Path, ds: pydicom.Dataset, frames: int, hint: str) -> None:
    """Refuse a multi-frame file whose per-frame functional groups are not one for each of its `frames`:
    highdicom read one with a description missing (a SEG's frames after it were placed by the next one's;
    a CT's told as a slice missing, damage tool seed 37010)."""
    described = len(ds.get("PerFrameFunctionalGroupsSequence") or [])
    if described != frames:
        raise InputError(f"holds {frames} frames but {described} per-frame descriptions "
                         "(PerFrameFunctionalGroupsSequence), so where each frame lies cannot be told", path, hint)


def _its_frames(ds: pydicom.Dataset, frames: int) -> str:
    """The frames the header gives, as the pixel-data counts name them ("its 1 frame of 512 x 512")."""
    return f"its {frames} frame{'s' * (frames != 1)} of {int(ds.Rows)} x {int(ds.Columns)}"


def _pixel_data_counts(ds: pydicom.Dataset) -> Optional[tuple[int, int, int]]:
    """(bytes held, bytes needed, frames) of uncompressed pixel data; None where compressed or not counted."""
    try:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            return None
        frames = int(ds.get("NumberOfFrames") or 1)
        bits = int(ds.Rows) * int(ds.Columns) * frames * int(ds.BitsAllocated) * int(ds.get("SamplesPerPixel") or 1)
        needed = (bits + 7) // 8
        return (len(ds.PixelData or b""), needed, frames) if needed > 0 else None  # an empty element's value is None
    except Exception:
        return None


def _first_frame_fault(path: Path) -> Optional[str]:
    """pydicom's reason for not decoding the first frame of `path`, None where it does: highdicom's
    own failure on a multi-frame file may be an internal one ("'_CombinedPixelTransform' object has no
    attribute 'input_dtype'", for a BitsAllocated of 0), where pydicom names the element."""
    try:
        pydicom.pixels.pixel_array(os.fspath(path), index=0)
    except Exception as exc:
        return first_line(exc)
    return None


def is_empty_slice_file(path: Path) -> bool:
    """An empty file named as DICOM slices are (not a hidden file, no other kind's suffix)."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        return False
    suffix = path.suffix.lower()
    return empty and not path.name.startswith(".") and (suffix in SLICE_SUFFIXES or suffix[1:].isdigit())


def has_dicom_prefix(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def starts_as_a_bare_dataset(path: str | os.PathLike) -> bool:
    """The file begins with an element of group 0008 (or 0002, meta information without its
    preamble), little endian, as a dataset written without preamble does."""
    try:
        with open(path, "rb") as f:
            group, element = struct.unpack("<HH", f.read(4))
    except (OSError, struct.error):
        return False
    return group in (0x0002, 0x0008) and element < 0x0100
