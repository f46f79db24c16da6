"""The result as a DICOM SEG object that references the CT series it was made on, through highdicom.

A PACS or a DICOM viewer shows it over that series: it shares the series' study, patient and
frame of reference, and each of its frames names the CT slice (or frame) it lies on. It holds
the label map's two segments, "Liver" (1) and "Liver lesion" (2), which do not overlap, coded as
the `.seg.nrrd` is (SNOMED CT), marked as made automatically by an AI algorithm for research.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom

from .. import __version__
from ..errors import OutputError, first_line
from ..segments import LIVER, SEGMENTS, Code, SegmentSpec
from ..volume import Volume
from .dicom import slice_indices
from .dicom_files import dcmread, header_values
from .dicom_scan import SeriesInfo
from .output_header import (give_slice_thickness, make_orientation_shared, make_patient_and_study_writable,
                            output_character_set)
from .regularize import sample_slices

SERIES_NUMBER = 901  # apart from a scanner's usual numbers (1 to a few hundred)
CONTENT_LABEL = "LIVERLESIONSEG"


def save_dicom_seg(path: Path, labels: Volume, source: SeriesInfo, models: Sequence[str],
                   corrected: bool = False, segments: Sequence[SegmentSpec] = SEGMENTS,
                   headers: Optional[list[pydicom.Dataset]] = None) -> None:
    """Write the 0/1/2 label map (on the grid of `source`'s CT) to exactly `path`.

    `models` names the model file(s) that made it, for the algorithm's identification;
    `corrected`: a reader edited the model's result (a semi-automatic segmentation in DICOM's terms);
    `segments`: those written (the lesions alone where the liver was not segmented), numbered from 1
    as DICOM wants; `headers`: `source_headers(source)`, where the caller has read them already.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    headers = headers or source_headers(source)
    labelled = source_frames(headers, labels, source)
    frames = np.zeros(labelled.shape, np.uint8)
    for number, spec in enumerate(segments, start=1):
        frames[labelled == spec.label] = number
    algorithm = hd.AlgorithmIdentificationSequence(
        name="LiverLesionSeg", version=__version__, family=codes.cid7162.ArtificialIntelligence,
        parameters={"model": ", ".join(models)[:64]})
    descriptions = [_description(spec, number, algorithm, corrected) for number, spec in enumerate(segments, 1)]
    subject = "Liver and liver lesions" if LIVER in segments else "Liver lesions"
    with warnings.catch_warnings():
        # highdicom warns about the source's own values (a patient name of one component): not ours to fix
        warnings.simplefilter("ignore", UserWarning)
        try:
            seg = hd.seg.Segmentation(
                headers, frames, hd.seg.SegmentationTypeValues.BINARY, descriptions,
                series_instance_uid=hd.UID(), series_number=SERIES_NUMBER, sop_instance_uid=hd.UID(),
                instance_number=1, manufacturer="LiverLesionSeg", manufacturer_model_name="LiverLesionSeg",
                software_versions=__version__, device_serial_number="none", content_label=CONTENT_LABEL,
                content_description=f"{subject}, " + ("automatic, corrected by a reader" if corrected
                                                      else "segmented automatically"),
                series_description=described(f"{subject} (LiverLesionSeg)", corrected),
                content_qualification=hd.ContentQualificationValues.RESEARCH,
                specific_character_set=output_character_set(headers))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise OutputError(f"cannot make a DICOM SEG on this CT series ({first_line(exc)})", path,
                              "write a .seg.nrrd or .nii.gz instead") from None
    seg.save_as(path)


# The CT's identifiers a DICOM output shares (its study, its frame of reference) or references its images by:
# required in a CT, but anonymisers remove them.
SHARED_UIDS = ("StudyInstanceUID", "FrameOfReferenceUID")
REFERENCED_UIDS = ("SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")


def check_referenced_uids(source: SeriesInfo, what: str = "a DICOM SEG",
                          instead: str = "write a .seg.nrrd or .nii.gz instead") -> None:
    """Refuse, before any work, a series that a DICOM SEG (or SR, RT structure set: `what`) cannot lie
    on: one without the study, the frame of reference or the identifiers it must share or reference."""
    first = source.files[0]
    with header_values(first):
        header = dcmread(first, stop_before_pixels=True)
    for keyword in SHARED_UIDS + REFERENCED_UIDS:
        if not header.get(keyword):
            needs = "share with it" if keyword in SHARED_UIDS else "reference its images by"
            raise OutputError(f"the CT series has no {keyword}, which {what} must {needs} (an anonymiser may have "
                              "removed it)", first, instead)
    if source.differing_uids:
        raise OutputError(f"the CT series' images carry different {source.differing_uids[0]}s, and {what} must "
                          "share one with all of them (an anonymiser may have given images their own)", source.folder,
                          instead)
    seen: dict[str, Path] = {}
    for path, uid in zip(source.files, source.sop_instance_uids):
        if uid in seen:
            raise OutputError(f"two of the CT's images, {seen[uid].name} and {path.name}, have the one SOPInstanceUID "
                              f"{uid}, so {what} could not tell them apart (an anonymiser may have given them the same "
                              "new UID)", path.parent, instead)
        seen[uid] = path


def source_headers(source: SeriesInfo) -> list[pydicom.Dataset]:
    """The series' headers (no pixels), one per file (a multi-frame CT is one file), for an output to
    copy from: their patient and study attributes made writable, their orientation one value, their
    slice thickness given where missing (`output_header`)."""
    headers = []
    for file in source.files:
        with header_values(file):
            headers.append(dcmread(file, stop_before_pixels=True))
    make_patient_and_study_writable(headers)
    make_orientation_shared(headers)
    give_slice_thickness(headers)
    return headers


def source_frames(headers: Sequence[pydicom.Dataset], labels: Volume, source: SeriesInfo) -> np.ndarray:
    """The label map under each source frame, in the order highdicom takes the frames: file by
    file, and a multi-frame file's frames in their stored order. On a CT resampled from slices that
    were no grid (`regularize`), the voxels nearest each slice's pixels."""
    positions, _ = frame_positions(headers, source)
    if labels.acquired is not None:
        return sample_slices(labels, dataclasses.replace(labels.acquired, positions=positions))
    return labels.array[slice_indices(labels, positions, "a CT slice", source.folder)]


def frame_positions(headers: Sequence[pydicom.Dataset], source: SeriesInfo
                    ) -> tuple[np.ndarray, list[tuple[pydicom.Dataset, Optional[int]]]]:
    """Each source frame's position (rows of LPS mm) in highdicom's order, with its file's header
    and its frame number (None in a single-frame file)."""
    positions, frames = [], []
    for header in headers:
        with header_values(source.folder):
            if "PerFrameFunctionalGroupsSequence" in header:
                for number, group in enumerate(header.PerFrameFunctionalGroupsSequence, start=1):
                    positions.append(group.PlanePositionSequence[0].ImagePositionPatient)
                    frames.append((header, number))
            else:
                positions.append(header.ImagePositionPatient)
                frames.append((header, None))
    return np.array(positions, dtype=float), frames


def described(description: str, corrected: bool) -> str:
    """A series description, marked when a reader corrected the result: "... (LiverLesionSeg, corrected)"."""
    return description[:-1] + ", corrected)" if corrected else description


def _description(spec: SegmentSpec, number: int, algorithm, corrected: bool):
    import highdicom as hd

    types = hd.seg.SegmentAlgorithmTypeValues
    kind = types.SEMIAUTOMATIC if corrected else types.AUTOMATIC
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=spec.name, segmented_property_category=_code(spec.category),
        segmented_property_type=_code(spec.type), algorithm_type=kind,
        algorithm_identification=algorithm, anatomic_regions=[_code(spec.region)] if spec.region else None,
        display_color=hd.color.CIELabColor.from_rgb(*(round(c * 255) for c in spec.color)))


def _code(code: Code):
    import highdicom as hd

    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)

