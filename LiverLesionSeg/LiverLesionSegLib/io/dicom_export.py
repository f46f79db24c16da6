"""A result's outputs written together, all or none (`write_together`: the label map in any format,
a DICOM SEG included, the probability map, the lesion table as CSV or DICOM SR, the RT structure
set), which `segment` and `measure` use; and the Slicer panel's export of a segmentation to DICOM
over the CT series it lies on, for a PACS (`export_to_dicom`: a DICOM SEG and the DICOM SR lesion
report measured on it, and an RT structure set if asked, above all for a segmentation a reader
corrected, a semi-automatic one in DICOM's terms, its series described as corrected). An export
never replaces an earlier one: its files are numbered instead.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..lesions import Lesion, lesion_table, mask_volume_ml
from ..segments import LESION, SEGMENTS
from ..volume import Volume
from .atomic import atomic_paths
from .dicom_scan import SeriesInfo
from .dicomseg_write import check_referenced_uids, save_dicom_seg, source_headers
from .dicomsr_write import save_lesion_report

INSTEAD = "save the segmentation as .seg.nrrd instead"
STEM_BYTES = 150  # a file name's start: with " 9999 SEG.dcm" well within the 255 bytes file systems allow


@dataclass
class DicomExport:
    seg: Path  # the DICOM SEG
    report: Path  # the DICOM SR lesion report
    structures: Optional[Path]  # the RT structure set, where one was asked for
    lesions: list[Lesion]
    liver_ml: Optional[float]  # None: the liver was not segmented
    corrected: bool  # marked as corrected by a reader

    @property
    def files(self) -> list[Path]:
        """The files written: the SEG, the report and, where asked for, the RT structure set."""
        return [path for path in (self.seg, self.report, self.structures) if path is not None]


def export_to_dicom(labels: Volume, ct: Volume, source: SeriesInfo, folder: str | os.PathLike, name: str,
                    models: Sequence[str], corrected: bool = True, liver: bool = True,
                    structures: bool = False) -> DicomExport:
    """Write `labels` (0/1/2 on the grid of `ct`, the CT read from `source`) as "`name` SEG.dcm",
    its lesions and liver as "`name` SR.dcm" and, with `structures`, its contours as "`name`
    RS.dcm" in `folder` (`name` made safe for a file name: `file_stem`): all or none. `models`
    names the model(s) the segmentation started from;
    `corrected`: a reader edited it; not `liver`: the liver was not segmented (the labels hold
    lesions alone)."""
    check_referenced_uids(source, "a DICOM SEG", INSTEAD)
    seg_path, report_path, structures_path = free_names(Path(folder), name)
    structures_path = structures_path if structures else None
    lesions, liver_ml = measure_labels(labels, ct, liver)
    write_together(labels, source, models, output=seg_path, tables=[report_path], measured=(name, lesions),
                   structures=structures_path, liver_ml=liver_ml, corrected=corrected)
    return DicomExport(seg_path, report_path, structures_path, lesions, liver_ml, corrected)


def measure_labels(labels: Volume, ct: Volume, liver: bool = True) -> tuple[list[Lesion], Optional[float]]:
    """The lesions of a 0/1/2 label map measured on `ct`, and the liver's volume (mL, its lesions
    included; None where the `liver` was not segmented and the labels hold lesions alone)."""
    array = np.asarray(labels.array)
    lesions = lesion_table(labels.with_array((array == LESION.label).astype(np.uint8)), ct)
    return lesions, mask_volume_ml(labels.with_array((array > 0).astype(np.uint8))) if liver else None


def write_together(labels: Volume, source: Optional[SeriesInfo], models: Sequence[str], *,
                   output: Optional[Path] = None, probabilities: Optional[tuple[Path, Volume]] = None,
                   tables: Sequence[Path] = (), measured: Optional[tuple[str, list[Lesion]]] = None,
                   structures: Optional[Path] = None, liver_ml: Optional[float], corrected: bool = False,
                   pictures: Sequence[tuple[Path, Callable[[Path], object]]] = ()) -> None:
    """The outputs of one result, those given, written atomically together: all or none.

    `output`: the 0/1/2 label map, in the format its suffix names (`.dcm`: a DICOM SEG over
    `source`); `probabilities`: (path, map); `tables`: the lesion table of `measured` (the case's
    name, its lesions), each a CSV or (`.dcm`) a DICOM SR over `source` with the liver's volume
    `liver_ml` (None: the liver was not segmented, and the DICOM objects hold the lesions alone);
    `structures`: the label map as a DICOM RT structure set over `source`. `models` names the
    model(s) for the DICOM objects; `corrected`: a reader edited the segmentation. `pictures`: (path,
    a function drawing the picture into the file it is given), such as the overlay."""
    from ..report import write_lesion_table
    from .rtstruct_write import save_rtstruct
    from .write import output_kind, save_image, save_labels

    segments = SEGMENTS if liver_ml is not None else (LESION,)
    headers = functools.cache(lambda: source_headers(source))  # read once for all DICOM outputs, if any
    paths = [path for path in (output, probabilities and probabilities[0], *tables, structures) if path]
    paths += [path for path, _ in pictures]
    with atomic_paths(*paths) as temporaries:
        written = dict(zip(paths, temporaries))
        if output is not None:
            kind = output_kind(output)
            if kind == "dicom-seg":
                save_dicom_seg(written[output], labels, source, models, corrected, segments, headers())
            else:
                save_labels(written[output], labels, kind)
        if probabilities is not None:
            save_image(written[probabilities[0]], probabilities[1])
        for path in tables:
            case, lesions = measured
            if is_dicom_report(path):
                save_lesion_report(written[path], lesions, liver_ml, source, models, corrected, headers())
            else:
                write_lesion_table(written[path], {case: lesions})
        if structures is not None:
            save_rtstruct(written[structures], labels, source, models, corrected, segments, headers())
        for path, draw in pictures:
            draw(written[path])


def is_dicom_report(path: Optional[Path]) -> bool:
    """A lesion table asked for as a DICOM SR (`.dcm`) rather than a CSV."""
    return path is not None and path.suffix.lower() == ".dcm"


def free_names(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """"`name` SEG.dcm", "`name` SR.dcm" and "`name` RS.dcm" in `folder`, `name` made safe for a
    file name (`file_stem`), numbered ("`name` 2 SEG.dcm") where any is taken."""
    name = file_stem(name)
    number = 1
    while True:
        stem = name if number == 1 else f"{name} {number}"
        paths = (folder / f"{stem} SEG.dcm", folder / f"{stem} SR.dcm", folder / f"{stem} RS.dcm")
        if not any(path.exists() for path in paths):
            return paths
        number += 1


def file_stem(name: str) -> str:
    """`name` as the start of a file name on Linux, macOS and Windows: no path separators, none of
    Windows' reserved characters ('<>:"/\\|?*') or control characters (each run becomes '_'), no
    leading or trailing dots or spaces, and at most `STEM_BYTES` bytes; letters of any script stay."""
    cleaned = "".join("_" if unicodedata.category(c).startswith("C") else c for c in name)
    cleaned = " ".join(re.sub(r'[<>:"/\\|?*_]+', "_", cleaned).split()).strip(" ._")
    shortened = cleaned.encode("utf-8")[:STEM_BYTES].decode("utf-8", "ignore")  # a cut character is dropped
    return shortened.rstrip(" ._") or "segmentation"
