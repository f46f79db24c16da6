"""The liver and its lesions as a DICOM RT Structure Set over the CT series, for the planning
systems of radiotherapy and radioembolisation (SIRT), which take contours rather than a SEG.

Two ROIs: "Liver" (the whole organ, its lesions included, as planning systems keep an organ) and
"Liver lesion" (interpreted type GTV), each slice's mask traced by marching squares (contourpy,
which matplotlib uses) half-way between the pixels in and out: the pixels' edges, so that the area
inside a contour is its pixels' area and a reader that takes the pixels whose centres lie inside
(as `rtstruct` does) gets the mask back exactly; a hole is a contour of its own inside the outer
one. Each contour references its CT slice (or frame). pydicom writes the dataset; highdicom, which
writes the SEG and the SR, has no structure sets.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import format_number_as_ds

from .. import __version__
from ..errors import OutputError
from ..segments import LESION, LIVER, SEGMENTS, SegmentSpec
from ..volume import Volume
from .dicom_scan import SeriesInfo
from .dicomseg_write import described, source_frames, source_headers
from .dicomsr_write import source_planes
from .output_header import output_character_set
from .rtstruct import RTSTRUCT_SOP_CLASS

SERIES_NUMBER = 903  # beside the DICOM SEG's 901 and the SR's 902
SERIES_DESCRIPTION = "Liver and liver lesion contours (LiverLesionSeg)"
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"  # what an RT structure set's study reference names
PATIENT_AND_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                     "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
                     "StudyDescription")


def save_rtstruct(path: Path, labels: Volume, source: SeriesInfo, models: Sequence[str], corrected: bool = False,
                  segments: Sequence[SegmentSpec] = SEGMENTS, headers: Optional[list[pydicom.Dataset]] = None) -> None:
    """Write the 0/1/2 label map (on the grid of `source`'s CT) as an RT structure set to exactly
    `path`: an ROI per segment of `segments` ("Liver" with its lesions), its contours on the
    source slices. `models` names the model(s); `corrected`: a reader edited the result;
    `headers`: `source_headers(source)`, where read already."""
    headers = headers or source_headers(source)
    first = headers[0]
    frame_of_reference = str(first.get("FrameOfReferenceUID", ""))
    if not frame_of_reference:
        raise OutputError("the CT series has no FrameOfReferenceUID, which an RT structure set must name", path,
                          "write a .seg.nrrd or .nii.gz instead")
    labelled = source_frames(headers, labels, source)
    planes = source_planes(headers, source)
    images = [_image_reference(header, frame) for _, header, frame, _ in planes]
    dataset = _structure_set(first, models, corrected)
    dataset.ReferencedFrameOfReferenceSequence = DicomSequence([_frame_of_reference(first, frame_of_reference,
                                                                                    images)])
    dataset.StructureSetROISequence = DicomSequence()
    dataset.ROIContourSequence = DicomSequence()
    dataset.RTROIObservationsSequence = DicomSequence()
    for number, spec in enumerate(segments, start=1):
        mask = labelled >= spec.label if spec is LIVER else labelled == spec.label  # the liver holds its lesions
        contours = [_contour(_in_patient(line, position, plane), images[k])
                    for k, (position, _, _, plane) in enumerate(planes) for line in _traced(mask[k])]
        dataset.StructureSetROISequence.append(_roi(number, spec, frame_of_reference, corrected))
        dataset.ROIContourSequence.append(_roi_contours(number, spec, contours))
        dataset.RTROIObservationsSequence.append(_observation(number, spec))
    dataset.save_as(path, enforce_file_format=True)


def _traced(mask: np.ndarray) -> list[np.ndarray]:
    """The contours of a slice's mask, (n, 2) of column i, row j, in pixels, each closed (not repeated)."""
    import contourpy

    if not mask.any():
        return []
    padded = np.pad(mask.astype(np.float32), 1)  # so that a region touching the image's edge is closed too
    lines = contourpy.contour_generator(z=padded, line_type="Separate").lines(0.5)
    return [(line[:-1] if np.allclose(line[0], line[-1]) else line) - 1 for line in lines]


def _in_patient(line: np.ndarray, position: np.ndarray, plane) -> np.ndarray:
    """(n, 3) patient coordinates (mm) of pixel coordinates (i, j) on a slice at `position`."""
    row_dir, col_dir, row_spacing, column_spacing = plane
    return (np.asarray(position, float) + np.outer(line[:, 0] * column_spacing, row_dir)
            + np.outer(line[:, 1] * row_spacing, col_dir))


def _structure_set(first: pydicom.Dataset, models: Sequence[str], corrected: bool) -> Dataset:
    """The dataset's patient, study, series, equipment and structure set header, from the CT's."""
    now = datetime.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SpecificCharacterSet = output_character_set([first]) or "ISO_IR 100"  # as pydicom read an undeclared one
    dataset.SOPClassUID, dataset.SOPInstanceUID = RTSTRUCT_SOP_CLASS, meta.MediaStorageSOPInstanceUID
    for keyword in PATIENT_AND_STUDY:
        setattr(dataset, keyword, first.get(keyword, ""))
    dataset.Modality = "RTSTRUCT"
    dataset.SeriesInstanceUID = pydicom.uid.generate_uid()
    dataset.SeriesNumber, dataset.InstanceNumber = SERIES_NUMBER, 1
    dataset.SeriesDescription = described(SERIES_DESCRIPTION, corrected)
    dataset.Manufacturer = dataset.ManufacturerModelName = "LiverLesionSeg"
    dataset.SoftwareVersions = __version__
    dataset.StructureSetLabel = "LIVERLESIONSEG"
    dataset.StructureSetName = ("corrected; " if corrected else "") + ("model " + ", ".join(models))[:58]
    dataset.StructureSetDate, dataset.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    dataset.ContentDate, dataset.ContentTime = dataset.StructureSetDate, dataset.StructureSetTime
    return dataset


def _image_reference(header: pydicom.Dataset, frame) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = header.SOPClassUID, header.SOPInstanceUID
    if frame is not None:
        item.ReferencedFrameNumber = frame
    return item


def _frame_of_reference(first: pydicom.Dataset, uid: str, images: list[Dataset]) -> Dataset:
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = DicomSequence(images)
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = DETACHED_STUDY_MANAGEMENT, first.StudyInstanceUID
    study.RTReferencedSeriesSequence = DicomSequence([series])
    item = Dataset()
    item.FrameOfReferenceUID = uid
    item.RTReferencedStudySequence = DicomSequence([study])
    return item


def _roi(number: int, spec: SegmentSpec, frame_of_reference: str, corrected: bool) -> Dataset:
    item = Dataset()
    item.ROINumber, item.ReferencedFrameOfReferenceUID, item.ROIName = number, frame_of_reference, spec.name
    item.ROIGenerationAlgorithm = "SEMIAUTOMATIC" if corrected else "AUTOMATIC"
    return item


def _contour(points: np.ndarray, image: Dataset) -> Dataset:
    item = Dataset()
    item.ContourImageSequence = DicomSequence([image])
    item.ContourGeometricType = "CLOSED_PLANAR"
    item.NumberOfContourPoints = len(points)
    item.ContourData = [format_number_as_ds(float(v)) for v in points.ravel()]  # DS: 16 characters at most
    return item


def _roi_contours(number: int, spec: SegmentSpec, contours: list[Dataset]) -> Dataset:
    item = Dataset()
    item.ReferencedROINumber = number
    item.ROIDisplayColor = [round(c * 255) for c in spec.color]
    item.ContourSequence = DicomSequence(contours)
    return item


def _observation(number: int, spec: SegmentSpec) -> Dataset:
    item = Dataset()
    item.ObservationNumber = item.ReferencedROINumber = number
    item.RTROIInterpretedType = "GTV" if spec is LESION else "ORGAN"
    item.ROIInterpreter = ""
    return item
