"""Finding cases for training and evaluation, and the input volume for segmentation.

Understood layouts (`LAYOUTS` says the same to the user):
- 3D-IRCADb-01 case folders (PATIENT_DICOM/ + MASKS_DICOM/), named after the folder;
- a CT DICOM series with DICOM SEG objects referencing it, named after the folder holding both;
- LiTS pairs `volume-N.nii[.gz]` + `segmentation-N.nii[.gz]`, named `lits-N`, and CT-ORG's
  `volume-N.nii.gz` + `labels-N.nii.gz`, named `ct-org-N` (its organs' labels read by its list:
  the liver alone, its lesions not segmented), and SLIVER07's `liver-origNNN.mhd` + `liver-segNNN.mhd`,
  named `sliver-NNN` (the liver alone, its tumours inside it), and BTCV's `img/imgNNNN.nii.gz` +
  `label/labelNNNN.nii.gz`, named `btcv-NNNN` (its liver, label 6, alone);
- CHAOS's CT case folders (DICOM_anon/ + Ground/, one PNG mask a slice), named `chaos-N` (`chaos`);
- Medical Segmentation Decathlon task folders `imagesTr/X.nii.gz` + `labelsTr/X.nii.gz`, named X,
  and nnU-Net's datasets made from them, whose images carry their channel (`imagesTr/X_0000.nii.gz`),
  and datasets shipped alike as `images/` + `labels/` (FLARE22); their label values are read by the
  names in the dataset's `dataset.json` (`dataset_labels`);
- AbdomenCT-1K's `AbdomenCT-1K-ImagePart*/Case_N_0000.nii.gz` + `Mask/Case_N.nii.gz`, named Case_N
  (its liver, label 1, alone);
- a folder with a CT image (as below) and one mask per structure in `segmentations/`, named for it
  (TotalSegmentator's `ct.nii.gz` + `segmentations/liver.nii.gz`): its lesions count as not
  segmented unless a mask is named for them;
- a folder with `image.{nii,nii.gz,nrrd}` + `labels.{nii,nii.gz,nrrd}` (or a Slicer segmentation,
  `labels.seg.nrrd`, read by its segments' names), named after the folder; `ct`, `imaging` or
  `volume` for the image and `label`, `segmentation` or `mask` for the labels are read alike.
Label maps hold 0 background, 1 liver, 2 lesion, unless a `dataset.json` in the case's folder or the
folder of its cases names their values otherwise (as nnU-Net's). A folder is searched recursively;
what holds images but no labels is left out with a logged note. The public collections' own file
names are `collection_layouts`'s to know.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Iterable, Optional

import numpy as np

from ..caveats import label_caveats
from ..errors import InputError, first_line, refuse_an_empty_file
from ..report import refuse_a_report
from ..segments import meaning_of_segment_name
from ..volume import Case, Volume
from .archive import Unpacked, is_archive, unpack, unread_container
from .dicom_scan import LABEL_MODALITIES, NON_IMAGE_MODALITIES, FolderScan, SeriesInfo, scan_files, scan_folder
from .dataset_labels import CASE_FOLDER_LABELS, lesions_segmented
from .dicomseg import read_dicom_masks, read_seg_case
from .rtstruct import is_rtstruct
from .images import (image_stem, is_image_file, label_values_on, read_image, read_label_map, refuse_a_non_ct,
                     refuse_an_implausible_spacing, suffix_by_content)
from . import chaos, collection_layouts
from .case_ref import CaseRef
from .ircadb import CT_FOLDER, is_ircadb_case, read_ircadb_case
from .series_choice import choose_ct_file, choose_ct_series, read_chosen_series
from .slicer_scene import choose_scene_segmentation, choose_scene_volume, is_scene_bundle, is_scene_file, scene_file_in

LOG = logging.getLogger("LiverLesionSeg")

KINDS = ("ircadb", "chaos", "dicom-seg", "image-pair", "structure-masks", "slicer-scene")
STRUCTURE_MASKS = "segmentations"  # TotalSegmentator's folder of one mask per structure
LAYOUTS = ("3D-IRCADb-01 case folders (PATIENT_DICOM/ + MASKS_DICOM/), a CT DICOM series with DICOM SEG objects, "
           "LiTS volume-N.nii + segmentation-N.nii, CT-ORG volume-N.nii.gz + labels-N.nii.gz, "
           "SLIVER07 liver-origN.mhd + liver-segN.mhd, BTCV img/imgN.nii.gz + label/labelN.nii.gz, "
           "CHAOS CT case folders (DICOM_anon/ + Ground/), "
           "Decathlon or nnU-Net imagesTr/ + labelsTr/ (or images/ + labels/, as FLARE22), "
           "AbdomenCT-1K AbdomenCT-1K-ImagePart*/ + Mask/, "
           "TotalSegmentator ct.nii.gz + segmentations/liver.nii.gz, "
           "or image.nii|nii.gz|nrrd + labels.nii|nii.gz|nrrd (labels 0 background, 1 liver, 2 lesion) or "
           "labels.seg.nrrd (a Slicer segmentation), or 3D Slicer scenes (.mrb, or .mrml beside its data) "
           "holding a CT and its segmentation")
PAIR_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
# This tool's own names first, then those of other collections (KiTS: imaging + segmentation, but its label
# maps hold kidneys and no liver: `dataset_labels` refuses them)
PAIR_IMAGE_NAMES = tuple(stem + suffix for stem in ("image", "ct", "imaging", "volume") for suffix in PAIR_SUFFIXES)
PAIR_LABEL_NAMES = tuple(stem + suffix for stem in CASE_FOLDER_LABELS
                         for suffix in PAIR_SUFFIXES) + ("labels.seg.nrrd",)  # the last: Slicer's
IMAGE_WORDS = "image.*, ct.*, imaging.* or volume.*"
LABEL_WORDS = "labels.*, label.*, segmentation.* or mask.*"


def find_cases(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[CaseRef]:
    """Every labelled case under `paths` (case folders, folders of cases, or image files)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[CaseRef] = []
    for path in map(Path, paths):
        check_file_or_folder(path)
        if path.is_file():
            refuse_a_report(path, "a labelled case")
        refs = _cases_for_file(path) if path.is_file() else _cases_in_folder(path)
        if not refs:
            refuse_a_report(path, "a labelled case")
            raise InputError("holds no labelled case", path, f"understood layouts: {LAYOUTS}")
        found.extend(refs)
    unique = list({(ref.kind, tuple(p.resolve() for p in ref.paths)): ref for ref in found}.values())
    names = [ref.name for ref in unique]
    for name in sorted({n for n in names if names.count(n) > 1}):
        LOG.warning("several cases are named %s: %s", name, [str(r.paths[0]) for r in unique if r.name == name])
    return unique


def input_exists(path: Path) -> bool:
    """Whether an input path exists; one the system cannot look up (a name longer than the file system
    allows) is told in one line."""
    try:
        return path.exists()
    except OSError as exc:
        raise InputError(f"cannot be looked up ({exc.strerror or first_line(exc)})", path, "check the path") from None


def check_file_or_folder(path: Path) -> None:
    """An input must be a file or a folder: not missing, nor a pipe, socket or device (/dev/null)."""
    if not input_exists(path):
        raise InputError("does not exist", path, "check the path")
    if not (path.is_file() or path.is_dir()):
        raise InputError("is neither a file nor a folder (a pipe, socket or device)", path,
                         "give the CT's file or folder")
    refuse_an_empty_file(path)


def load_case(ref: CaseRef) -> Case:
    """Read a found case; its masks are checked to lie on the CT's grid."""
    if ref.kind == "ircadb":
        case = read_ircadb_case(ref.paths[0])
    elif ref.kind == "chaos":
        case = chaos.read_chaos_case(ref.paths[0])
    elif ref.kind == "dicom-seg":
        case = read_seg_case(ref.paths[0])
    elif ref.kind == "image-pair":
        image, labels = ref.paths
        ct = _read_case_image(image)
        liver, lesion = read_label_map(labels, ct)
        case = Case(ref.name, ct, liver, lesion, image, lesions_segmented=lesions_segmented(labels))
    elif ref.kind == "structure-masks":
        case = _read_structure_masks_case(ref)
    elif ref.kind == "slicer-scene":
        case = _read_scene_case(ref)
    else:
        raise InputError(f"unknown case kind '{ref.kind}' (known: {', '.join(KINDS)})", ref.paths[0])
    case.name = ref.name
    refuse_a_non_ct(case.ct, case.ct.source or ref.paths[0])  # trained on or measured so: nothing
    case.check()
    for caveat in label_caveats(case):
        LOG.warning("%s: %s", case.liver.source or ref.paths[0], caveat)
    return case


@dataclass(frozen=True)
class InputCT:
    """Where the CT to segment lies, found from the file names and DICOM headers before any pixel
    is read: an image file, or the DICOM series chosen (and the scan it was chosen from)."""

    path: Path  # as given
    image: Optional[Path] = None  # a NIfTI, NRRD or MetaImage file
    scan: Optional[FolderScan] = None
    series: Optional[SeriesInfo] = None  # the DICOM series, with `scan`
    unpacked: Optional[Unpacked] = None  # where `path` is an archive (ZIP, tar): the files above lie in it
    scene: Optional[Path] = None  # the 3D Slicer scene file `image` was chosen from

    def read(self) -> Volume:
        with self.named_inside():
            volume = self._read()
        volume.source = self.shown(volume.source)
        return volume

    def shown(self, path: str | os.PathLike) -> str:
        """A path as messages show it: a file inside the archive `path` named within it."""
        return str(path) if self.unpacked is None else str(path).replace(self.unpacked.temporary.name, str(self.path))

    def scene_segmentation(self, wanted: Optional[str] = None) -> Path:
        """The segmentation of the 3D Slicer scene the CT was read from: its one segmentation node, or
        the one named `wanted`."""
        if self.scene is None:
            raise InputError("is not a 3D Slicer scene, and no segmentation was given", self.path,
                             "give the segmentation after the CT")
        with self.named_inside():
            return choose_scene_segmentation(self.scene, wanted)

    def named_inside(self) -> ContextManager[None]:
        """Errors raised within name the files inside the archive `path`, where it is one."""
        return self.unpacked.named_in_archive() if self.unpacked is not None else contextlib.nullcontext()

    def close(self) -> None:
        """Remove the unpacked archive now (it goes anyway when this object does)."""
        if self.unpacked is not None:
            self.unpacked.cleanup()

    def __enter__(self) -> "InputCT":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self) -> Volume:
        if self.image is not None:
            volume = read_image(self.image)
        else:
            volume = read_chosen_series(self.scan, self.series)
        # a label map given, a spacing or rescale damaged, pixel data blanked, a mask exported as CT images ...
        refuse_a_non_ct(volume, self.image or volume.source or self.scan)
        return volume


def find_input_ct(path: str | os.PathLike, series: Optional[str | int] = None) -> InputCT:
    """The CT to segment: a DICOM folder (its axial CT series, or `series`), an IRCADb, CHAOS or SEG case
    folder (its CT), a folder with image.nii|nii.gz|nrrd, a .nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd file, a
    multi-frame DICOM file, a 3D Slicer scene (.mrml; its CT volume, or the one named `series`), or a
    ZIP or tar archive of any of these (a Slicer .mrb bundle among them)."""
    path = Path(path)
    check_file_or_folder(path)
    if path.is_file():
        if is_image_file(path):
            return InputCT(path, image=path)
        if is_scene_file(path):
            return InputCT(path, image=choose_scene_volume(path, series), scene=path)
        if is_archive(path):
            return _archive_input(path, series)
        if suffix_by_content(path):  # an image under another name (a NIfTI named .dcm, say)
            return InputCT(path, image=path)
        if path.name.upper() == "DICOMDIR":  # a disc's index: the images lie in the folders beside it
            return _dicom_input(path.parent, path.parent, series)
        found = choose_ct_file(path)  # a multi-frame DICOM image
        if found is None:
            container = unread_container(path)
            if container is not None:
                raise InputError(f"is {container[0]}, which this tool does not unpack", path, container[1])
            raise InputError("is neither a DICOM, NIfTI or NRRD image nor a folder", path,
                             "give the folder that holds the DICOM series, or a .nii, .nii.gz or .nrrd file")
        return InputCT(path, scan=found[0], series=found[1])
    if (path / CT_FOLDER).is_dir():
        return _dicom_input(path, path / CT_FOLDER, series)
    if chaos.is_chaos_case(path):  # its CT alone, not the PNG masks beside it
        return _dicom_input(path, path / chaos.CT_FOLDER, series)
    image = _first_existing(path, PAIR_IMAGE_NAMES)
    if image is not None:
        return InputCT(path, image=image)
    scene = scene_file_in(path)  # an unpacked .mrb
    if scene is not None:
        return InputCT(path, image=choose_scene_volume(scene, series), scene=scene)
    # A SEG case folder gives its referenced CT: `choose_ct_series` puts that one first.
    return _dicom_input(path, path, series)


def read_input_volume(path: str | os.PathLike, series: Optional[str | int] = None) -> Volume:
    """The CT that `find_input_ct` finds at `path`, read."""
    with find_input_ct(path, series) as found:
        return found.read()


def read_segmentation(path: str | os.PathLike, ct: Volume) -> tuple[Volume, Volume]:
    """(liver, lesion) uint8 masks on `ct`'s grid from a segmentation file of it, the liver with its
    lesions: a 0/1/2 label map (.nii.gz, .nii, .nrrd, .mha), a Slicer segmentation (.seg.nrrd, read
    by its segments' names), or a DICOM SEG (.dcm) made on the CT's series by any tool, its segments
    told apart as in training cases (no lesion segment is no lesion)."""
    return read_segmentations([path], ct)


def read_segmentations(paths: Iterable[str | os.PathLike], ct: Volume, require_liver: bool = True
                       ) -> tuple[Optional[Volume], Volume]:
    """As `read_segmentation`, several files united (a liver SEG and a tumour SEG, as HCC-TACE-Seg
    ships them); one of them must hold the liver. Without `require_liver`, segmentations of lesions
    only give the liver as None (not segmented); one of them must hold a liver or a lesion segment."""
    liver, lesion = np.zeros(ct.shape, np.uint8), np.zeros(ct.shape, np.uint8)
    paths = [Path(p) for p in paths]
    found = set()
    for path in paths:
        exists = input_exists(path)
        if not exists or not path.is_file():
            raise InputError("is not a file" if exists else "does not exist", path,
                             "give the segmentation file")
        refuse_an_empty_file(path, hint="export the segmentation again")
        if path.suffix.lower() == ".dcm":
            masks = read_dicom_masks(path, ct)
            parts = masks.get("liver"), masks.get("lesion")
        else:
            parts = tuple(None if mask is None else mask.array for mask in read_label_map(path, ct, require_liver))
        for role, total, part in zip(("liver", "lesion"), (liver, lesion), parts):
            if part is not None:
                found.add(role)
                total |= part.astype(np.uint8)
    if "liver" not in found and (require_liver or "lesion" not in found):
        if require_liver:
            one, several, names = "has no liver segment", "holds a liver segment", "Liver"
        else:
            one, several = "has neither a liver nor a lesion segment", "holds a liver or a lesion segment"
            names = "Liver or Tumor"
        hint = f"give a SEG with a segment labelled {names} (an RTSTRUCT: an ROI named so)"
        if len(paths) == 1:  # only a DICOM file can give neither: the other readers say what is wrong themselves
            if is_rtstruct(paths[0]):  # the hint worded for the kind of file given
                kind, hint = "RT structure set", f"give an RT structure set with an ROI named {names} (or a SEG)"
            else:
                kind = "DICOM SEG"
            raise InputError(f"the {kind} {one}", paths[0], hint)
        raise InputError(f"none of the {len(paths)} segmentations {several}", paths[0].parent,
                         "give the liver's segmentation too" if require_liver else hint)
    source = ", ".join(str(p) for p in paths)
    if not require_liver and not (liver & (1 - lesion)).any():  # as for a label map: no liver voxel, no liver
        found.discard("liver")
    return (ct.with_array(liver | lesion, source) if "liver" in found else None), ct.with_array(lesion, source)


def _read_scene_case(ref: CaseRef) -> Case:
    """A 3D Slicer scene's CT and its one segmentation (which must hold the liver), read."""
    with find_input_ct(ref.paths[0]) as found:
        if found.scene is None:  # a .mrb that holds no scene file
            raise InputError("holds no 3D Slicer scene file (.mrml)", ref.paths[0], "save the scene again from Slicer")
        ct = found.read()
        segmentation = found.scene_segmentation()
        with found.named_inside():
            liver, lesion = read_label_map(segmentation, ct)
    liver.source = lesion.source = found.shown(lesion.source)
    return Case(ref.name, ct, liver, lesion, ref.paths[0])


def _archive_input(path: Path, series: Optional[str | int]) -> InputCT:
    unpacked = unpack(path)
    try:
        with unpacked.named_in_archive():
            if is_archive(unpacked.content):  # an archive in the archive (or one that holds itself)
                raise InputError(f"holds another archive, {unpacked.content.name}", path,
                                 "unpack it and give the folder")
            found = find_input_ct(unpacked.content, series)
    except BaseException:
        unpacked.cleanup()
        raise
    return dataclasses.replace(found, path=path, unpacked=unpacked)


def _dicom_input(path: Path, folder: Path, series: Optional[str | int]) -> InputCT:
    scan = scan_folder(folder)
    return InputCT(path, scan=scan, series=choose_ct_series(scan, series))


# --- files -------------------------------------------------------------------------------------

def _cases_for_file(path: Path) -> list[CaseRef]:
    ref = collection_layouts.case_of_file(path)
    if ref is not None:
        return [ref]
    if path.name.lower() in PAIR_IMAGE_NAMES + PAIR_LABEL_NAMES:
        return _image_pair_folder(path.parent)
    if is_scene_file(path) or is_scene_bundle(path):
        return [CaseRef(path.stem, "slicer-scene", (path,))]
    if is_archive(path):  # a dataset as it was downloaded (Task03_Liver.tar, a LiTS zip)
        raise InputError("is an archive or disc image: cases for training and evaluation are read from folders",
                         path, "unpack it and give the folder of its cases")
    raise InputError("a single file is a case only as a LiTS, CT-ORG, SLIVER07, BTCV or AbdomenCT-1K image/label map, "
                     "a Decathlon image/label, an image/labels pair or a 3D Slicer scene", path,
                     f"understood layouts: {LAYOUTS}")


# --- folders -----------------------------------------------------------------------------------

def _cases_in_folder(root: Path) -> list[CaseRef]:
    """Walk top-down: known layouts stop the descent; other files are scanned as DICOM at the end."""
    refs: list[CaseRef] = []
    other_files: list[Path] = []
    seen = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        if os.path.realpath(folder) in seen:  # a link cycle, or a folder linked twice
            dirs[:] = []
            continue
        seen.add(os.path.realpath(folder))
        folder = Path(folder)
        dirs.sort()
        layout = _layout_cases(folder, names)
        if layout is not None:
            refs.extend(layout)
            dirs[:] = []
            continue
        bundles = [n for n in sorted(names) if is_scene_bundle(n) and not n.startswith(".")]
        refs.extend(CaseRef(Path(n).stem, "slicer-scene", (folder / n,)) for n in bundles)
        other_files.extend(folder / n for n in sorted(names) if not n.startswith(".") and not is_image_file(n)
                           and n not in bundles and (folder / n).is_file())
    return refs + _dicom_seg_cases(other_files)


def _layout_cases(folder: Path, names: list[str]) -> Optional[list[CaseRef]]:
    """The cases of a folder in a non-DICOM-SEG layout, or None when it is none of them."""
    if is_ircadb_case(folder):
        return [CaseRef(folder.name, "ircadb", (folder,))]
    if chaos.is_chaos_case(folder):
        if chaos.is_chaos_mr(folder):
            LOG.info("left out %s: one of CHAOS's MR sequences, not CT", folder)
            return []
        return [CaseRef(chaos.chaos_case_name(folder), "chaos", (folder,))]
    dataset = collection_layouts.dataset_folder_cases(folder)
    if dataset is not None:
        return dataset
    image = _first_existing(folder, PAIR_IMAGE_NAMES)
    if image and not _first_existing(folder, PAIR_LABEL_NAMES) and _structure_masks(folder / STRUCTURE_MASKS):
        return [CaseRef(folder.name, "structure-masks", (image, folder / STRUCTURE_MASKS))]
    if _first_existing(folder, PAIR_IMAGE_NAMES + PAIR_LABEL_NAMES) is not None:
        return _image_pair_folder(folder, strict=False)
    scene = scene_file_in(folder)  # a scene saved beside its data (or an unpacked .mrb)
    if scene is not None:
        return [CaseRef(folder.name, "slicer-scene", (scene,))]
    return collection_layouts.numbered_pair_cases(folder, names)


def _image_pair_folder(folder: Path, strict: bool = True) -> list[CaseRef]:
    image = _first_existing(folder, PAIR_IMAGE_NAMES)
    labels = _first_existing(folder, PAIR_LABEL_NAMES)
    if image is None or labels is None:
        if strict:
            raise InputError(f"an image/labels pair needs both {IMAGE_WORDS} and {LABEL_WORDS}", folder,
                             "put image.nii.gz (or .nii, .nrrd) and labels.nii.gz (or .nii, .nrrd) in the folder")
        LOG.info("left out %s: it holds %s but no %s", folder, (image or labels).name,
                 f"label map ({LABEL_WORDS})" if labels is None else f"image ({IMAGE_WORDS})")
        return []
    return [CaseRef(folder.name, "image-pair", (image, labels))]


def _structure_masks(folder: Path) -> dict[Path, str]:
    """The masks of the liver and its lesions in a folder of one mask per structure, by their names
    ("liver.nii.gz", "liver_tumor.nii.gz"; the spleen's and others' left out); empty where the folder
    is none or holds no liver mask."""
    if not folder.is_dir():
        return {}
    masks = {path: meaning_of_segment_name(image_stem(path).replace("_", " ")) for path in sorted(folder.iterdir())
             if is_image_file(path) and not path.name.startswith(".")}
    masks = {path: role for path, role in masks.items() if role is not None}
    return masks if "liver" in masks.values() else {}


def _read_case_image(image: Path) -> Volume:
    """A case's CT file, its spacing checked before its label map's or masks' grid is compared with it
    (a damaged spacing was blamed on the label map)."""
    ct = read_image(image)
    refuse_an_implausible_spacing(ct, image)
    return ct


def _read_structure_masks_case(ref: CaseRef) -> Case:
    """A CT and its folder of one mask per structure: the liver's mask (with its lesions'), and the
    lesions' where a mask is named for them; else its lesions count as not segmented."""
    image, folder = ref.paths
    ct = _read_case_image(image)
    liver, lesion = np.zeros(ct.shape, np.uint8), np.zeros(ct.shape, np.uint8)
    masks = _structure_masks(folder)
    for path, role in masks.items():
        (liver if role == "liver" else lesion)[label_values_on(path, ct) != 0] = 1
    return Case(ref.name, ct, ct.with_array(liver | lesion, str(folder)), ct.with_array(lesion, str(folder)), image,
                lesions_segmented="lesion" in masks.values())


def _dicom_seg_cases(files: list[Path]) -> list[CaseRef]:
    """Group SEG objects with the series they reference; the case folder holds both."""
    if not files:
        return []
    series, _ = scan_files(files)
    by_uid = {s.uid: s for s in series}
    case_folders: dict[Path, list[SeriesInfo]] = defaultdict(list)
    for seg in (s for s in series if s.modality.upper() in LABEL_MODALITIES):
        referenced = [by_uid[uid] for uid in seg.referenced_series_uids if uid in by_uid]
        folders = [str(f.parent) for f in seg.files] + [str(f.parent) for s in referenced for f in s.files]
        # Where the referenced series is missing, the case still stands: loading it says what is missing.
        case_folders[Path(os.path.commonpath(folders))].append(seg)
    refs = [CaseRef(folder.name, "dicom-seg", (folder,)) for folder in sorted(case_folders)]
    unlabelled = defaultdict(list)
    for s in series:
        if s.modality.upper() in NON_IMAGE_MODALITIES:
            continue
        if not any(_is_within(s.folder, folder) for folder in case_folders):
            unlabelled[s.folder].append(s)
    for folder, members in unlabelled.items():
        LOG.info("left out %s: %s has no labels (no DICOM SEG or RTSTRUCT references it)", folder,
                 "; ".join(s.label for s in members))
    return refs


# --- helpers -----------------------------------------------------------------------------------

def _first_existing(folder: Path, names: Iterable[str]) -> Optional[Path]:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
