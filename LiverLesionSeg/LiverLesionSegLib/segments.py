"""The two output segments, with Slicer's standard terminology and colours.

Shared by the `.seg.nrrd` writer and the Slicer logic so both describe segments the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentSpec:
    segment_id: str
    name: str
    label: int  # value in the label map
    color: tuple[float, float, float]
    terminology: str  # Slicer's TerminologyEntry tag


LIVER = SegmentSpec(
    "liver", "Liver", 1, (221 / 255, 130 / 255, 101 / 255),
    "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^"
    "~Anatomic codes - DICOM master list~^^~^^")
LESION = SegmentSpec(
    "liver_lesion", "Liver lesion", 2, (144 / 255, 238 / 255, 144 / 255),
    "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Altered Structure"
    "~SCT^4147007^Mass~^^~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^")
SEGMENTS = (LIVER, LESION)

# Names users give segments in the Segment Editor, mapped to what they mean here (lower case).
LIVER_NAMES = ("liver",)
LESION_WORDS = ("lesion", "tumor", "tumour", "mass", "metasta", "hcc", "nodule", "cancer", "neoplasm")


def meaning_of_segment_name(name: str) -> str | None:
    """'liver', 'lesion' or None for a segment name as users type it."""
    text = name.strip().lower()
    if any(word in text for word in LESION_WORDS):
        return "lesion"
    if text in LIVER_NAMES or text.startswith("liver"):
        return "liver"
    return None
