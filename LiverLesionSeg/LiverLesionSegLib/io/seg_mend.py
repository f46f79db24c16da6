"""What a DICOM SEG lacks that DICOM requires but where its segments lie does not need: how a segment
was made (SegmentAlgorithmType, the algorithm's family, name and version), its category, one of its
label and coded type where the other names it, whole codes of the anatomy it lies in, the UIDs of a
source image it refers to (the frames are placed by their positions, not by their sources), and its
StudyInstanceUID, which anonymisers remove.
highdicom refuses such a file ("Dataset does not have required attribute 'SegmentAlgorithmType'"), and
a clinic's segmentation was lost for a missing line of provenance. They are mended in memory (never
written) before highdicom reads the file, with a warning naming what was missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from ..errors import InputError
from .dicom_files import HEADER_ERRORS

LOG = logging.getLogger("LiverLesionSeg")

ALGORITHM_VALUES = ("AlgorithmName", "AlgorithmVersion")
CODE_VALUES = ("CodeValue", "LongCodeValue", "URNCodeValue")
REFERENCE_UIDS = ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID")
ANATOMY_CODES = ("AnatomicRegionSequence", "PrimaryAnatomicStructureSequence")


def mend_what_masks_do_not_need(ds: pydicom.Dataset, path: Path) -> None:
    """Mend in `ds` what it lacks of the above, with one warning naming it. A segment with neither a
    label nor a whole coded type is refused: what it segments cannot be told. A damaged value is
    left to the reading that follows."""
    try:
        lacking = [(item, _mend_segment(item)) for item in ds.get("SegmentSequence") or []]
        references = _drop_broken_references(ds)
        study = not ds.get("StudyInstanceUID")  # (an anonymiser's removal; highdicom: "no StudyInstanceUID")
        if study:
            ds.StudyInstanceUID = pydicom.uid.generate_uid()
    except HEADER_ERRORS:
        return
    for item, _ in lacking:
        if not item.get("SegmentLabel") and not _is_one_whole_code(item.get("SegmentedPropertyTypeCodeSequence")):
            raise InputError(f"its segment {item.get('SegmentNumber', '?')} has neither a SegmentLabel nor a whole "
                             "coded type (SegmentedPropertyTypeCodeSequence), so what it segments cannot be told",
                             path, "the file is damaged; export the segmentation again")
    told = [f"segment {item.get('SegmentNumber', '?')} ('{item.get('SegmentLabel', '')}') lacks {', '.join(missing)}"
            for item, missing in lacking if missing]
    if references:
        told.append(f"{references} reference(s) to a source image lack its UIDs (left out)")
    if study:
        told.append("it lacks its StudyInstanceUID")
    if told:
        LOG.warning("%s: %s, which DICOM requires but where the segments lie does not need: read all the same",
                    path, "; ".join(told))


def _mend_segment(item: Dataset) -> list[str]:
    """What `item` (a SegmentSequence item) lacked, filled in."""
    missing = []
    if "SegmentAlgorithmType" not in item:
        item.SegmentAlgorithmType = ""  # (which highdicom reads; none, it refuses)
        missing.append("SegmentAlgorithmType")
    algorithms = item.get("SegmentationAlgorithmIdentificationSequence")
    if algorithms is not None and not all(_is_whole_algorithm(algorithm) for algorithm in algorithms):
        del item.SegmentationAlgorithmIdentificationSequence  # provenance only
        missing.append("a whole SegmentationAlgorithmIdentificationSequence")
    if not _is_one_whole_code(item.get("SegmentedPropertyCategoryCodeSequence")):
        item.SegmentedPropertyCategoryCodeSequence = [_not_given_code()]
        missing.append("SegmentedPropertyCategoryCodeSequence")
    for keyword in ANATOMY_CODES:  # where in the body, in words: the frames' positions place the segment
        codes = item.get(keyword)
        if codes is not None and not all(map(_is_whole, codes)):  # (damage tool, seg seed 41027: highdicom's
            # "Dataset does not contain the following attribute required for coded concepts")
            del item[keyword]
            missing.append(f"a whole {keyword}")
    label, types = item.get("SegmentLabel"), item.get("SegmentedPropertyTypeCodeSequence")
    if label is None and _is_one_whole_code(types):  # named by its coded type, as highdicom would show it
        item.SegmentLabel = types[0].CodeMeaning
        missing.append("SegmentLabel")
    elif label and not _is_one_whole_code(types):  # told by its label alone
        item.SegmentedPropertyTypeCodeSequence = [_not_given_code()]
        missing.append("a whole SegmentedPropertyTypeCodeSequence")
    return missing


def _is_whole_algorithm(algorithm: Dataset) -> bool:
    family = algorithm.get("AlgorithmFamilyCodeSequence")
    return all(algorithm.get(keyword) for keyword in ALGORITHM_VALUES) and bool(family) and all(map(_is_whole, family))


def _is_one_whole_code(sequence) -> bool:
    """Whether a code sequence holds one code with all highdicom needs of it."""
    return bool(sequence) and len(sequence) == 1 and _is_whole(sequence[0])


def _is_whole(code: Dataset) -> bool:
    """Whether a code has its scheme, a value and its meaning."""
    return bool(code.get("CodingSchemeDesignator") and code.get("CodeMeaning") and
                any(code.get(keyword) for keyword in CODE_VALUES))


def _not_given_code() -> Dataset:
    """A code of a local scheme (DICOM's "99" prefix) that means nothing: no liver, no lesion."""
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "0", "99LLS", "not given"
    return code


def _drop_broken_references(ds: pydicom.Dataset) -> int:
    """Leave out the references to source images (the series' instances, the SEG's and each frame's
    sources) that lack a UID; how many were left out."""
    holders = [ds, *(series for series in ds.get("ReferencedSeriesSequence") or []),
               *(derivation for frame in ds.get("PerFrameFunctionalGroupsSequence") or []
                 for derivation in frame.get("DerivationImageSequence") or [])]
    dropped = 0
    for holder in holders:
        for keyword in ("ReferencedInstanceSequence", "SourceImageSequence"):
            items = holder.get(keyword)
            if items:
                whole = [item for item in items if all(item.get(uid) for uid in REFERENCE_UIDS)]
                dropped += len(items) - len(whole)
                if len(whole) != len(items):
                    setattr(holder, keyword, whole)
    return dropped
