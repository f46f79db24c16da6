"""CT + DICOM SEG cases: a CT series and, beside it, SEG objects that reference it (or RT structure
sets, read by `rtstruct`).

Each SEG frame goes onto the CT slice at its PlanePositionSequence ImagePositionPatient, never by
frame order; a frame that is shifted in-plane or falls between slices is a GeometryError. On a CT
resampled from slices that were no grid (`regularize`), the frames go onto those slices as
acquired, and the masks are then resampled as the CT was. Each
segment is liver or lesion by its SegmentLabel and SegmentedPropertyType (lesion: tumour,
lesion, neoplasm, mass...); several lesion segments are united; other segments are ignored. A
LABELMAP SEG (DICOM's label-map segmentation, each pixel its segment's number) is read the same way.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional

import highdicom as hd
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError, first_line
from ..segments import LESION_CODES, Code, meaning_of_segment, warn_of_left_out
from ..volume import Case, Volume
from .dicom import check_in_plane_grid, read_series, slice_indices
from .dicom_files import (check_a_description_for_each_frame, check_no_surplus_frames, check_not_cut_short, dcmread,
                          has_dicom_prefix, missing_pixel_description, pixel_data_shortfall, pydicom_fault,
                          reading_fault, undecodable)
from .dicom_scan import LABEL_MODALITIES, FolderScan, SeriesInfo, scan_folder
from .dicom_values import int_or_none, text_as_written
from .multiframe import functional_group_item
from .regularize import mask_to_grid
from .rtstruct import is_rtstruct, read_rtstruct_masks
from .seg_mend import mend_what_masks_do_not_need

LOG = logging.getLogger("LiverLesionSeg")


def is_seg_case(folder: str | os.PathLike) -> bool:
    """True when the folder holds a DICOM SEG object or an RT structure set (headers only)."""
    folder = Path(folder)
    return folder.is_dir() and bool(seg_series(scan_folder(folder)))


def seg_series(scan: FolderScan) -> list[SeriesInfo]:
    """The series of label objects: DICOM SEG and RTSTRUCT."""
    return [s for s in scan.series if s.modality.upper() in LABEL_MODALITIES]


def read_dicom_masks(path: Path, ct: Volume) -> dict[str, np.ndarray]:
    """{'liver': mask, 'lesion': mask} (those present) of a DICOM SEG or an RT structure set, on `ct`'s grid."""
    if is_rtstruct(path):
        return read_rtstruct_masks(path, ct)
    _check_seg_header(path)
    return read_seg_masks(path, ct)


# DICOM's Segmentation and Label Map Segmentation Storage, the two highdicom reads
SEG_CLASSES = (pydicom.uid.SegmentationStorage, "1.2.840.10008.5.1.4.1.1.66.7")


def _check_seg_header(path: Path) -> None:
    """Refuse a file that is not a DICOM SEG by its header (it is not an RT structure set either), or
    whose header cannot be read: each was told as a SEG that highdicom could not read."""
    try:  # (pydicom parses a value when it is asked for)
        header = dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
        modality, sop_class = (str(header.get(keyword, "") or "") for keyword in ("Modality", "SOPClassUID"))
    except InvalidDicomError:
        if not has_dicom_prefix(path):
            raise InputError("is not a DICOM file", path,
                             "give the segmentation's DICOM SEG or RTSTRUCT file") from None
        raise InputError("damaged DICOM file", path, "export the segmentation again") from None
    except Exception as exc:
        raise InputError(f"damaged or truncated DICOM file ({pydicom_fault(exc)})", path,
                         "export the segmentation again") from None
    kind = pydicom.uid.UID(sop_class).name.removesuffix(" Storage")
    shown = re.split(r"[^ -~]", sop_class)[0][:64]  # up to a byte of the next element (a damaged length)
    shown += "…" if shown != sop_class else ""
    if modality == "SEG" and sop_class not in SEG_CLASSES:  # (damage tool, seg seed 41012: highdicom's "Dataset
        # is not a Segmentation.", told as a SEG that may be truncated)
        said = (f"its SOP class is {kind}" if kind != sop_class else f"its SOPClassUID is {shown}") if shown else \
            "it has no SOPClassUID"
        raise InputError(f"has Modality SEG, though {said}: its header is damaged or was edited", path,
                         "export the segmentation again")
    if modality != "SEG" and sop_class != pydicom.uid.SegmentationStorage:
        if kind != sop_class and modality.upper() not in LABEL_MODALITIES:  # a whole object of another kind
            raise InputError(f"is a DICOM {kind} object{f' (Modality {modality})' if modality else ''}, not a "
                             "segmentation", path, "give the segmentation's DICOM SEG or RTSTRUCT file")
        raise InputError(f"is neither a DICOM SEG nor an RT structure set: its header gives "
                         f"{f'Modality {modality}' if modality else 'no Modality'} and "
                         f"{f'SOPClassUID {shown}' if shown else 'no SOPClassUID'}", path,
                         "give the segmentation's DICOM SEG or RTSTRUCT file; if this is one, it is damaged: "
                         "export it again")


def referenced_ct_series(scan: FolderScan) -> SeriesInfo:
    """The one image series the folder's SEG objects reference (it must be in the folder)."""
    present = {s.uid: s for s in scan.series}
    segs = seg_series(scan)
    if not segs:
        raise InputError("no DICOM SEG or RTSTRUCT object found", scan.folder,
                         "give a folder holding a CT series and its SEG (or RTSTRUCT)")
    wanted: dict[str, Path] = {}
    for seg in segs:
        kind = seg.modality.upper()
        if not seg.referenced_series_uids:
            raise InputError(f"the {kind} references no series", seg.files[0], f"give a {kind} made on a CT series")
        for uid in seg.referenced_series_uids:
            if uid not in present:
                raise InputError(f"the {kind} references series {uid}, which is not in {scan.folder}", seg.files[0],
                                 f"put the CT series the {kind} was made on beside it")
            wanted.setdefault(uid, seg.files[0])
    if len(wanted) > 1:
        raise InputError("the SEG objects reference different series: " +
                         "; ".join(f"{path.name} -> {present[uid].label}" for uid, path in wanted.items()),
                         scan.folder, "keep one CT series and the SEG objects made on it in a case folder")
    return present[next(iter(wanted))]


def read_seg_case(folder: str | os.PathLike) -> Case:
    """The referenced CT and the liver and lesion masks of every SEG object in the folder."""
    folder = Path(folder)
    scan = scan_folder(folder)
    ct_info = referenced_ct_series(scan)
    ct = read_series(ct_info)
    liver: Optional[np.ndarray] = None
    lesion: Optional[np.ndarray] = None
    for seg in seg_series(scan):
        for path in seg.files:
            masks = read_dicom_masks(path, ct)
            if "liver" in masks:
                liver = masks["liver"] if liver is None else liver | masks["liver"]
            if "lesion" in masks:
                lesion = masks["lesion"] if lesion is None else lesion | masks["lesion"]
    if liver is None:
        raise InputError("none of the SEG (or RTSTRUCT) objects holds a liver segment", folder,
                         "give a SEG with a segment labelled Liver, or an RTSTRUCT with an ROI named so")
    if lesion is None:
        LOG.warning("%s: no lesion segment in the SEG (or RTSTRUCT) objects; the lesion mask is left unknown",
                    folder)
    return Case(folder.name, ct, ct.with_array(liver, str(folder)),
                None if lesion is None else ct.with_array(lesion, str(folder)), folder).check()


def read_seg_masks(path: Path, ct: Volume) -> dict[str, np.ndarray]:
    """{'liver': mask, 'lesion': mask} (those present) of one SEG file, on `ct`'s grid."""
    seg = _segread(path)
    roles = {number: segment_role(seg, number) for number in seg.segment_numbers}
    warn_of_left_out(path, [segment_label(seg, number) for number, role in roles.items() if role is None])
    kind = segmentation_type(seg, path)
    frames = _binary_frames(seg, kind, path)
    shared = seg.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = seg.get("PerFrameFunctionalGroupsSequence") or []  # (highdicom reads a SEG without)
    check_a_description_for_each_frame(path, seg, len(frames), "the file is damaged; export the segmentation again")
    # The frames lie on the CT's slices as acquired: its grid, or the slices it was resampled from.
    acquired = ct.acquired
    plane = ct if acquired is None else acquired.plane()
    slices = ct.shape[0] if acquired is None else len(acquired.positions)
    masks = {role: np.zeros((slices,) + plane.shape[1:], np.uint8) for role in roles.values() if role is not None}
    positions = np.array([functional_group_item(fg, shared, "PlanePositionSequence", path).ImagePositionPatient
                          for fg in per_frame], dtype=float)
    if acquired is None:
        ks = slice_indices(ct, positions, "a SEG frame", path)
    else:
        ks = acquired.slice_indices(positions, "a SEG frame", path)
    labelmap = kind == hd.seg.SegmentationTypeValues.LABELMAP
    for index, fg in enumerate(per_frame):
        orientation = functional_group_item(fg, shared, "PlaneOrientationSequence", path).ImageOrientationPatient
        spacing = functional_group_item(fg, shared, "PixelMeasuresSequence", path).PixelSpacing
        check_in_plane_grid(plane, orientation, spacing, frames[index].shape, f"SEG frame {index + 1}", path)
        if labelmap:  # each pixel holds its segment's number
            for number, role in roles.items():
                if role is not None:
                    masks[role][ks[index]] |= (frames[index] == number).astype(np.uint8)
            continue
        number = int(functional_group_item(fg, shared, "SegmentIdentificationSequence", path).ReferencedSegmentNumber)
        if number not in roles:  # left out, it was a liver's or a lesion's slice lost without a word
            described = f"segments {', '.join(str(n) for n in roles)}" if roles else "it describes none"
            raise InputError(f"its frame {index + 1} is of segment {number}, which its SegmentSequence does not "
                             f"describe ({described})", path,
                             "the file is damaged; export the segmentation again")
        role = roles[number]
        if role is not None:
            masks[role][ks[index]] |= frames[index]
    if acquired is not None:
        masks = {role: mask_to_grid(mask, acquired, ct) for role, mask in masks.items()}
    return masks


def segment_role(seg: hd.seg.Segmentation, number: int) -> Optional[str]:
    """'liver', 'lesion' or None, from the segment's property type where it is a lesion's, else its label
    read as segment names are everywhere ("Liver incl. tumor" is liver, "Leber" and "간" too), else its
    property type (a liver's, unless the label names a vessel or cyst)."""
    prop, label = seg.get_segment_description(number).segmented_property_type, segment_label(seg, number)
    if prop.value in LESION_CODES:
        return "lesion"
    return meaning_of_segment(label, Code(prop.scheme_designator, prop.value, prop.meaning))


def segment_label(seg: hd.seg.Segmentation, number: int) -> str:
    """The label of segment `number`, as its writer meant it (`text_as_written`)."""
    return text_as_written(seg.get_segment_description(number).segment_label, seg)


def _segread(path: Path) -> hd.seg.Segmentation:
    try:
        ds = dcmread(path)
        check_not_cut_short(path, ds, "copy or export the segmentation again")
        check_no_surplus_frames(path, ds, "export the segmentation again")
        _check_segment_numbers(ds, path)
        mend_what_masks_do_not_need(ds, path)  # provenance a segment lacks does not lose the segmentation
        return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except InputError:
        raise
    except Exception as exc:
        if _frame_count(path) == 0:  # highdicom fails on it with an IndexError
            raise InputError("the DICOM SEG holds no frames (NumberOfFrames 0), so no segment has a voxel", path,
                             "export the segmentation again after drawing the liver") from None
        raise InputError(f"cannot read the DICOM SEG ({reading_fault(exc, path)})", path,
                         "the file may be truncated or not a valid SEG; export it again") from None


def _check_segment_numbers(ds: pydicom.Dataset, path: Path) -> None:
    """Refuse a segment description without a usable SegmentNumber (highdicom: "Dataset does not have
    required attribute 'SegmentNumber'", or an internal error for an empty one)."""
    for item_number, item in enumerate(ds.get("SegmentSequence") or [], start=1):
        written = item.get("SegmentNumber")
        number = int_or_none(written)
        if number is None or number < 0:  # (a LABELMAP SEG may describe 0, its background)
            said = "no SegmentNumber" if written in (None, "") else f"an unusable SegmentNumber ({written!s:.20})"
            raise InputError(f"its SegmentSequence item {item_number} has {said}, so its frames cannot be told to "
                             "their segment", path, "the file is damaged; export the segmentation again")


def _frame_count(path: Path) -> Optional[int]:
    """The header's NumberOfFrames, None where it cannot be read."""
    try:
        return int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)
    except Exception:
        return None


def segmentation_type(seg: hd.seg.Segmentation, path: Path) -> hd.seg.SegmentationTypeValues:
    """The SEG's SegmentationType. One missing or damaged is BINARY where the frames hold one bit a
    pixel (no other type does); else the frames' values cannot be read, and it is refused."""
    written = str(seg.get("SegmentationType", "") or "").strip()
    try:
        return hd.seg.SegmentationTypeValues(written.upper())
    except ValueError:
        pass
    said = f"'{written}'" if written else "missing"
    if seg.get("BitsAllocated") == 1:
        LOG.warning("%s: its SegmentationType is %s; read as BINARY, as its frames of one bit a pixel are", path, said)
        return hd.seg.SegmentationTypeValues.BINARY
    raise InputError(f"its SegmentationType is {said}, where BINARY, FRACTIONAL or LABELMAP tells what its "
                     f"frames' values mean", path, "the file is damaged; export the segmentation again")


def _binary_frames(seg: hd.seg.Segmentation, kind: hd.seg.SegmentationTypeValues, path: Path) -> np.ndarray:
    """Frames as 0/1 uint8 (fractional SEGs cut at half their maximum value); a LABELMAP SEG's as
    they are, each pixel its segment's number."""
    try:
        frames = np.asarray(seg.get_stored_frames())
    except Exception as exc:
        usual_bits = 1 if kind == hd.seg.SegmentationTypeValues.BINARY else 8
        detail = missing_pixel_description(seg) or pixel_data_shortfall(seg, usual_bits) or first_line(exc)
        raise undecodable("the SEG frames", detail, path, "export the segmentation again") from None
    if frames.ndim == 2:
        frames = frames[None]
    if kind == hd.seg.SegmentationTypeValues.FRACTIONAL:
        return (frames >= _maximum_fractional_value(seg, path) / 2).astype(np.uint8)
    if kind == hd.seg.SegmentationTypeValues.LABELMAP:
        return frames
    return (frames > 0).astype(np.uint8)


def _maximum_fractional_value(seg: hd.seg.Segmentation, path: Path) -> int:
    """A FRACTIONAL SEG's MaximumFractionalValue (the value of a pixel wholly in the segment)."""
    written = seg.get("MaximumFractionalValue")
    value = int_or_none(written)
    if value is None or value <= 0:
        said = "missing" if written in (None, "") else f"{written!s:.30}"
        raise InputError(f"is a FRACTIONAL SEG whose MaximumFractionalValue is {said}, so its frames' values "
                         "cannot be read", path,
                         "the file is damaged; export the segmentation again")
    return value
