"""A label map written back to DICOM over the CT series it lies on, for a PACS: a DICOM SEG and the
DICOM SR lesion report measured on it, side by side, in one step.

What the Slicer panel's export uses, above all for a segmentation a reader corrected (a
semi-automatic segmentation in DICOM's terms, its series described as corrected); the command line
writes the same two objects for the model's own result (`segment -o RESULT.dcm --lesions REPORT.dcm`).
An export never replaces an earlier one: its files are numbered instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..lesions import Lesion, lesion_table, mask_volume_ml
from ..segments import LESION
from ..volume import Volume
from .atomic import atomic_paths
from .dicom import SeriesInfo
from .dicomseg_write import check_frame_of_reference, save_dicom_seg
from .dicomsr_write import save_lesion_report

INSTEAD = "save the segmentation as .seg.nrrd instead"


@dataclass
class DicomExport:
    seg: Path  # the DICOM SEG
    report: Path  # the DICOM SR lesion report
    lesions: list[Lesion]
    liver_ml: float
    corrected: bool  # marked as corrected by a reader


def export_to_dicom(labels: Volume, ct: Volume, source: SeriesInfo, folder: str | os.PathLike, name: str,
                    models: Sequence[str], corrected: bool = True) -> DicomExport:
    """Write `labels` (0/1/2 on the grid of `ct`, the CT read from `source`) as "`name` SEG.dcm" and
    its lesions and liver as "`name` SR.dcm" in `folder`: both or neither. `models` names the
    model(s) the segmentation started from; `corrected`: a reader edited it."""
    check_frame_of_reference(source, "a DICOM SEG", INSTEAD)
    seg_path, report_path = free_names(Path(folder), name)
    lesions, liver_ml = write_dicom_outputs(seg_path, report_path, labels, ct, source, models, corrected)
    return DicomExport(seg_path, report_path, lesions, liver_ml, corrected)


def write_dicom_outputs(seg_path: Optional[Path], report_path: Optional[Path], labels: Volume, ct: Volume,
                        source: SeriesInfo, models: Sequence[str], corrected: bool) -> tuple[list[Lesion], float]:
    """`labels` as a DICOM SEG at `seg_path` and its lesions and liver as a DICOM SR at
    `report_path` (either may be None), written together: all or nothing. Returns the lesions and
    the liver's volume (mL, its lesions included) measured on `ct`."""
    array = np.asarray(labels.array)
    lesions = lesion_table(labels.with_array((array == LESION.label).astype(np.uint8)), ct)
    liver_ml = mask_volume_ml(labels.with_array((array > 0).astype(np.uint8)))
    paths = [path for path in (seg_path, report_path) if path is not None]
    with atomic_paths(*paths) as temporaries:
        written = dict(zip(paths, temporaries))
        if seg_path is not None:
            save_dicom_seg(written[seg_path], labels, source, models, corrected)
        if report_path is not None:
            save_lesion_report(written[report_path], lesions, liver_ml, source, models, corrected)
    return lesions, liver_ml


def free_names(folder: Path, name: str) -> tuple[Path, Path]:
    """"`name` SEG.dcm" and "`name` SR.dcm" in `folder`, numbered ("`name` 2 SEG.dcm") where
    either is taken."""
    number = 1
    while True:
        stem = name if number == 1 else f"{name} {number}"
        paths = (folder / f"{stem} SEG.dcm", folder / f"{stem} SR.dcm")
        if not any(path.exists() for path in paths):
            return paths
        number += 1
