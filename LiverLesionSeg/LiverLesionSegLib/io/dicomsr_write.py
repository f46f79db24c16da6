"""The lesion table as a DICOM Structured Report over the CT series, through highdicom.

A TID 1500 Measurement Report (Comprehensive 3D SR), as PACS and viewers (OHIF, 3D Slicer's
Quantitative Reporting) read measurements: one planar ROI group per lesion, tracked as
"Lesion N" (the table's numbers), a lesion (SNOMED CT) found in the liver, after one group for
the liver itself (its volume; a CT without lesions gets only that one). A lesion's region is the
longest axial diameter drawn as a two-point line on the CT slice it lies on (image coordinates of
that slice, or patient coordinates where the CT was resampled and no slice holds it); its
measurements are the long axis and the width across it (mm), the volume (mL) and the median CT
value (HU). The device that made it is named, with the model(s), as an AI algorithm's result for
research: the figures are to be checked by a reader.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom
from pydicom.sr.coding import Code

from .. import __version__
from ..errors import OutputError, first_line
from ..lesions import Lesion
from .dicom_files import header_values
from .dicom_scan import SeriesInfo
from .dicomseg_write import described, frame_positions, source_headers
from .output_header import output_character_set

SERIES_NUMBER = 902  # beside the DICOM SEG's 901
SERIES_DESCRIPTION = "Liver lesion measurements (LiverLesionSeg)"
MILLILITRE = Code("mL", "UCUM", "milliliter")
HOUNSFIELD_UNIT = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
# A slice whose plane lies this close to the long axis holds it (positions are decimal text).
PLANE_TOLERANCE_MM = 0.1


def save_lesion_report(path: Path, lesions: Sequence[Lesion], liver_ml: Optional[float], source: SeriesInfo,
                       models: Sequence[str], corrected: bool = False,
                       headers: Optional[list[pydicom.Dataset]] = None) -> None:
    """Write the report of `lesions` and of the liver (`liver_ml`; None: not segmented, not
    reported), measured on `source`'s CT, to exactly `path`; `corrected`: measured on a
    segmentation a reader corrected; `headers`: `source_headers(source)`, where read already."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    headers = headers or source_headers(source)
    algorithm = hd.sr.AlgorithmIdentification(name="LiverLesionSeg", version=__version__,
                                              parameters=[", ".join(models)[:64]])
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="LiverLesionSeg", manufacturer_name="LiverLesionSeg", model_name=__version__))
    livers = [] if liver_ml is None else [hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Liver"),
        finding_type=codes.SCT.Liver, finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)],
        algorithm_id=algorithm,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=liver_ml, unit=MILLILITRE,
                                        algorithm_id=algorithm)])]
    slices = source_planes(headers, source) if lesions else []
    frame_of_reference = headers[0].get("FrameOfReferenceUID")
    groups = livers + [_lesion_group(lesion, slices, frame_of_reference, algorithm) for lesion in lesions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # highdicom's remarks on the source's own values
        try:
            report = hd.sr.MeasurementReport(
                observation_context=hd.sr.ObservationContext(observer_device_context=device),
                procedure_reported=hd.sr.CodedConcept("25045-6", "LN", "CT unspecified body region"),
                imaging_measurements=groups, title=codes.DCM.ImagingMeasurementReport)
            sr = hd.sr.Comprehensive3DSR(
                evidence=headers, content=report, series_instance_uid=hd.UID(), series_number=SERIES_NUMBER,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer="LiverLesionSeg",
                series_description=described(SERIES_DESCRIPTION, corrected),
                specific_character_set=output_character_set(headers))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise OutputError(f"cannot make a DICOM SR on this CT series ({first_line(exc)})", path,
                              "write the lesion table as .csv instead") from None
    sr.save_as(path)


def _lesion_group(lesion: Lesion, slices: list, frame_of_reference_uid: str, algorithm):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    measurements = [
        hd.sr.Measurement(name=codes.SCT.LongAxis, value=lesion.longest_axial_diameter_mm, unit=codes.UCUM.Millimeter,
                          algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.ShortAxis, value=lesion.perpendicular_diameter_mm, unit=codes.UCUM.Millimeter,
                          algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.Volume, value=lesion.volume_ml, unit=MILLILITRE, algorithm_id=algorithm)]
    if lesion.median_hu is not None:
        measurements.append(hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient, value=lesion.median_hu,
                                              unit=HOUNSFIELD_UNIT, derivation=codes.SCT.Median,
                                              algorithm_id=algorithm))
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"Lesion {lesion.number}"),
        referenced_region=long_axis_region(lesion, slices, frame_of_reference_uid), finding_type=codes.SCT.Lesion,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)], algorithm_id=algorithm,
        measurements=measurements)


def source_planes(headers: Sequence[pydicom.Dataset], source: SeriesInfo) -> list:
    """Each source slice (or frame): (position, header, frame number or None, its `_plane`)."""
    positions, frames = frame_positions(headers, source)
    return [(position, header, frame, _plane(header, frame, source.folder))
            for position, (header, frame) in zip(positions, frames)]


def long_axis_region(lesion: Lesion, slices: list, frame_of_reference_uid: str):
    """The long axis as a line on the source slice (or frame) of `slices` (`source_planes`) whose
    plane holds both its ends, in that image's coordinates (0, 0 the first pixel's outer corner);
    in patient coordinates where none does (a slice made between the acquired ones by resampling)."""
    import highdicom as hd

    ends = np.array(lesion.long_axis_lps)
    distances = [np.abs((ends - position) @ np.cross(row_dir, col_dir)).max()
                 for position, _, _, (row_dir, col_dir, _, _) in slices]
    nearest = int(np.argmin(distances))
    if distances[nearest] > PLANE_TOLERANCE_MM:
        return hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE, graphic_data=ends,
                                   frame_of_reference_uid=frame_of_reference_uid)
    position, header, frame, (row_dir, col_dir, row_spacing, column_spacing) = slices[nearest]
    offsets = ends - position
    xy = np.column_stack([offsets @ row_dir / column_spacing, offsets @ col_dir / row_spacing]) + 0.5
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=xy,
        source_image=hd.sr.SourceImageForRegion(header.SOPClassUID, header.SOPInstanceUID,
                                                None if frame is None else [frame]))


def _plane(header: pydicom.Dataset, frame: Optional[int], where: Path):
    """(row direction, column direction, row spacing, column spacing) of a file or one of its frames."""
    from .multiframe import functional_group_item

    with header_values(where):
        if frame is None:
            orientation, spacing = header.ImageOrientationPatient, header.PixelSpacing
        else:
            shared = header.get("SharedFunctionalGroupsSequence", [None])[0]
            group = header.PerFrameFunctionalGroupsSequence[frame - 1]
            plane = functional_group_item(group, shared, "PlaneOrientationSequence", where)
            orientation = plane.ImageOrientationPatient
            spacing = functional_group_item(group, shared, "PixelMeasuresSequence", where).PixelSpacing
        orientation = np.array([float(v) for v in orientation])
        return orientation[:3], orientation[3:], float(spacing[0]), float(spacing[1])
