"""A segmentation in the scene written out: as a DICOM SEG, an SR lesion report and an RT structure
set over the DICOM series its CT was loaded from, or with its CT as a case folder that training
reads. It reads the nodes through `mrml` and node methods only, so it runs in the Slicer
application and on the `slicer-core` wheel as `mrml` does."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .errors import InputError
from .mrml import (DICOM_FOLDER_ATTRIBUTE, MODELS_ATTRIBUTE, RESULT_DIGEST_ATTRIBUTE, check_pair, label_digest,
                   label_map_from_segmentation, on_grid_of, volume_from_node)
from .segments import LIVER

DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"  # set by Slicer's DICOM module on the volumes it loads
GRID_TOLERANCE_MM = 0.01  # Slicer's DICOM reader and ours may place voxels this far apart
CASE_NAME_MAX = 100  # characters: with a '-2' the folder name stays well within the file system's 255 bytes


def export_dicom(volume_node, segmentation_node, folder: str | Path, file_for_instance=None, structures: bool = False):
    """`segmentation_node` (a segmentation of `volume_node`, corrected or not) as a DICOM SEG and a
    DICOM SR lesion report (with `structures`, an RT structure set too) over the DICOM series the
    volume was loaded from, in `folder` (`io.dicom_export.export_to_dicom`), naming the models that
    made it; marked as corrected by a reader unless its voxels are still those the model wrote.
    `file_for_instance`: a SOP instance UID's file, Slicer's DICOM database's `fileForInstance` in
    the application."""
    from .io.dicom import read_series
    from .io.dicom_export import export_to_dicom

    check_pair(volume_node, segmentation_node)
    source = dicom_series_of(volume_node, file_for_instance)
    ct = read_series(source)
    if ct.acquired is None and not on_grid_of(volume_node, ct, GRID_TOLERANCE_MM):
        raise InputError("the volume no longer lies where its DICOM series does (moved, cropped or resampled since "
                         "it was loaded)", volume_node.GetName(),
                         "segment the volume as loaded from DICOM, or save the segmentation as .seg.nrrd")
    labels = ct.with_array(label_map_from_segmentation(segmentation_node, ct, require_liver=False))
    models = (segmentation_node.GetAttribute(MODELS_ATTRIBUTE) or "unknown model").splitlines()
    corrected = label_digest(labels.array) != segmentation_node.GetAttribute(RESULT_DIGEST_ATTRIBUTE)
    # a liver segment emptied, or under lesions only, is no liver segmented (as `mrml.measure_again` says)
    return export_to_dicom(labels, ct, source, folder, segmentation_node.GetName(), models, corrected,
                           liver=bool((labels.array == LIVER.label).any()), structures=structures)


def dicom_series_of(volume_node, file_for_instance=None):
    """The DICOM series (`io.dicom.SeriesInfo`) `volume_node` was loaded from: its files found
    from its instance UIDs through `file_for_instance`, or in the folder the sample case names."""
    from .io.dicom_scan import scan_files, scan_folder
    from .io.series_choice import choose_ct_series

    name = volume_node.GetName()
    uids = (volume_node.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    sample_folder = volume_node.GetAttribute(DICOM_FOLDER_ATTRIBUTE)
    if uids and file_for_instance is not None:
        files = [file_for_instance(uid) or "" for uid in uids]
        missing = [uid for uid, file in zip(uids, files) if not file or not Path(file).is_file()]
        if missing:
            raise InputError(f"{len(missing)} of the {len(uids)} DICOM files it was loaded from are no longer in "
                             f"the DICOM database or on disk (e.g. instance {missing[0]})", name,
                             "import the series into the DICOM database again and load it from there")
        series, _ = scan_files([Path(file) for file in dict.fromkeys(files)])
        for info in series:
            if set(uids) <= set(info.sop_instance_uids):
                return info
        raise InputError("its DICOM files do not make one image series", name,
                         "load the CT series again through the DICOM module")
    if sample_folder:
        return choose_ct_series(scan_folder(sample_folder))
    raise InputError("was not loaded from DICOM, so there is no DICOM series for a DICOM SEG to lie on", name,
                     "load the CT through the DICOM module, or save the segmentation as .seg.nrrd")


# --- training cases from the scene ---------------------------------------------------------------

def export_training_pair(volume_node, segmentation_node, folder: str | Path, name: Optional[str] = None) -> Path:
    """Write a CT volume node and a segmentation of it (corrected in the Segment Editor) as an
    image + labels case folder (`image.nrrd`, `labels.nrrd`: 0 background, 1 liver, 2 lesion)
    that `liverlesionseg train` reads: both files or nothing. Returns the case folder,
    `folder/name` (made safe for a folder name)."""
    ct, labels = _training_case(volume_node, segmentation_node)
    with _all_or_nothing(Path(folder)) as written:
        return _write_case(Path(folder), name or volume_node.GetName(), ct, labels, written)


def export_training_pairs(pairs: Iterable[tuple], folder: str | Path) -> list[str]:
    """`export_training_pair` for each (volume node, segmentation node); the case folders. All or
    nothing: every pair is checked before any is written, and a failure removes what was written."""
    pairs = list(pairs)
    for volume_node, segmentation_node in pairs:  # read again below: holding every CT at once could take GBs
        _training_case(volume_node, segmentation_node)
    with _all_or_nothing(Path(folder)) as written:
        return [str(_write_case(Path(folder), volume_node.GetName(), *_training_case(volume_node, segmentation_node),
                                written)) for volume_node, segmentation_node in pairs]


def _training_case(volume_node, segmentation_node) -> tuple:
    """(the CT, its 0/1/2 label map as a volume): an `InputError` where the pair cannot be a case."""
    from .io.images import refuse_a_non_ct

    check_pair(volume_node, segmentation_node)  # under another transform, the labels are not where they are seen
    ct = volume_from_node(volume_node)
    refuse_a_non_ct(ct, ct.source)
    labels = label_map_from_segmentation(segmentation_node, ct)
    return ct, ct.with_array(labels, source=segmentation_node.GetName())


def _write_case(parent: Path, name: str, ct, labels, written: list[Path]) -> Path:
    """A new case folder in `parent` holding `ct` and `labels`, both files or neither; listed in
    `written` as soon as it exists."""
    from .io.atomic import atomic_paths, new_folder
    from .io.write import save_image

    stem = safe_case_name(name)
    case = new_folder(parent, (stem if n == 1 else f"{stem}-{n}" for n in range(1, 10000)))
    written.append(case)
    with atomic_paths(case / "image.nrrd", case / "labels.nrrd") as (image_file, labels_file):
        save_image(image_file, ct)
        save_image(labels_file, labels)
    return case


@contextlib.contextmanager
def _all_or_nothing(folder: Path) -> Iterator[list[Path]]:
    """Yields the list of case folders written inside; on any failure they go, with the folders
    made on the way to `folder` (where still empty)."""
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # innermost first
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for case in written:
            shutil.rmtree(case, ignore_errors=True)
        for path in made:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def safe_case_name(name: str) -> str:
    """A folder name made of letters, digits, '-', '_' and '.', at most `CASE_NAME_MAX` characters;
    case names double as folder names."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return cleaned[:CASE_NAME_MAX].rstrip("._") or "case"
