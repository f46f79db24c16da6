"""A DICOM SEG's segment descriptions that lack what DICOM requires of them but where the segments lie
does not need: how a segment was made (SegmentAlgorithmType, the algorithm's family, name and
version), its category, or one of its label and coded type where the other names it. highdicom
refuses such a file ("Dataset does not have required attribute 'SegmentAlgorithmType'"), and a
clinic's segmentation was lost for a missing line of provenance. They are filled in memory (never
written) before highdicom reads the file, with a warning naming what was missing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import pydicom
from pydicom.dataset import Dataset

from ..errors import InputError
from .dicom_files import HEADER_ERRORS

LOG = logging.getLogger("LiverLesionSeg")

ALGORITHM_ELEMENTS = ("AlgorithmFamilyCodeSequence", "AlgorithmName", "AlgorithmVersion")
CODE_VALUES = ("CodeValue", "LongCodeValue", "URNCodeValue")


def mend_segment_descriptions(ds: pydicom.Dataset, path: Path) -> None:
    """Fill in `ds` what its segment descriptions lack of the above, with one warning naming it. A
    segment with neither a label nor a whole coded type is refused: what it segments cannot be told.
    A damaged value is left to the reading that follows."""
    try:
        lacking = [(item, _mend(item)) for item in ds.get("SegmentSequence") or []]
    except HEADER_ERRORS:
        return
    for item, missing in lacking:
        if not item.get("SegmentLabel") and _code(item, "SegmentedPropertyTypeCodeSequence") is None:
            raise InputError(f"its segment {item.get('SegmentNumber', '?')} has neither a SegmentLabel nor a whole "
                             "coded type (SegmentedPropertyTypeCodeSequence), so what it segments cannot be told",
                             path, "the file is damaged; export the segmentation again")
    told = [f"segment {item.get('SegmentNumber', '?')} ('{item.get('SegmentLabel', '')}') lacks {', '.join(missing)}"
            for item, missing in lacking if missing]
    if told:
        LOG.warning("%s: %s, which DICOM requires but where the segments lie does not need: read all the same",
                    path, "; ".join(told))


def _mend(item: Dataset) -> list[str]:
    """What `item` (a SegmentSequence item) lacked, filled in."""
    missing = []
    if "SegmentAlgorithmType" not in item:
        item.SegmentAlgorithmType = ""  # (which highdicom reads; none, it refuses)
        missing.append("SegmentAlgorithmType")
    algorithms = item.get("SegmentationAlgorithmIdentificationSequence")
    if algorithms is not None and not all(all(a.get(keyword) for keyword in ALGORITHM_ELEMENTS) for a in algorithms):
        del item.SegmentationAlgorithmIdentificationSequence  # provenance only
        missing.append("a whole SegmentationAlgorithmIdentificationSequence")
    if _code(item, "SegmentedPropertyCategoryCodeSequence") is None:
        item.SegmentedPropertyCategoryCodeSequence = [_not_given_code()]
        missing.append("SegmentedPropertyCategoryCodeSequence")
    label, kind = item.get("SegmentLabel"), _code(item, "SegmentedPropertyTypeCodeSequence")
    if label is None and kind is not None:  # named by its coded type, as highdicom would show it
        item.SegmentLabel = kind.CodeMeaning
        missing.append("SegmentLabel")
    elif kind is None and label:  # told by its label alone
        item.SegmentedPropertyTypeCodeSequence = [_not_given_code()]
        missing.append("a whole SegmentedPropertyTypeCodeSequence")
    return missing


def _code(item: Dataset, keyword: str) -> Optional[Dataset]:
    """The one code item of `item`'s sequence `keyword`, None where it is missing, empty or lacks a
    part highdicom needs (its scheme, its value or its meaning)."""
    sequence = item.get(keyword)
    if not sequence or len(sequence) != 1:
        return None
    code = sequence[0]
    whole = code.get("CodingSchemeDesignator") and code.get("CodeMeaning") and any(code.get(v) for v in CODE_VALUES)
    return code if whole else None


def _not_given_code() -> Dataset:
    """A code of a local scheme (DICOM's "99" prefix) that means nothing: no liver, no lesion."""
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "0", "99LLS", "not given"
    return code
