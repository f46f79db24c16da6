"""Where the cases of public collections lie, by the names their files ship under: LiTS's and CT-ORG's
numbered pairs, SLIVER07's, BTCV's img/ + label/, the Medical Segmentation Decathlon's and nnU-Net's
imagesTr/ + labelsTr/ (and datasets shipped alike as images/ + labels/, FLARE22's), AbdomenCT-1K's image
parts + Mask/. Each case is an image and its label map (kind "image-pair"); what each collection's label
values mean is `dataset_labels`'s to say.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable, Optional

from ..errors import InputError
from .case_ref import CaseRef
from .images import image_stem, is_image_file

LOG = logging.getLogger("LiverLesionSeg")

LITS_NAME = re.compile(r"^(volume|segmentation|labels)-(\d+)\.nii(\.gz)?$", re.IGNORECASE)  # labels: CT-ORG's
LITS_LABELS = {"segmentation": "lits", "labels": "ct-org"}  # a label map's name -> its cases' names
SLIVER_NAME = re.compile(r"^liver-(orig|seg)(\d+)\.mhd$", re.IGNORECASE)
BTCV_NAME = re.compile(r"^(img|label)(\d+)(\.nii(?:\.gz)?)$", re.IGNORECASE)  # in img/ and label/
NNUNET_CHANNEL = re.compile(r"^(.+)_(\d{4})$")  # an nnU-Net image, CASE_0000: the case's channel 0
# A dataset's folder of images and its folder of label maps of the same names: the Decathlon's and nnU-Net's,
# and as others ship theirs alike (FLARE22)
PAIRED_FOLDERS = {"imagesTr": "labelsTr", "images": "labels"}
ABDOMENCT_MASKS = "Mask"
ABDOMENCT_PART = "abdomenct-1k-imagepart"  # AbdomenCT-1K-ImagePart1 ... 3, in lower case
ABDOMENCT_MASK_NAME = re.compile(r"^(case_\d+)(\.nii(?:\.gz)?)$", re.IGNORECASE)


def case_of_file(path: Path) -> Optional[CaseRef]:
    """The case a collection's image or label map given alone belongs to; None for a file named as no
    collection's. An incomplete pair is refused in one line."""
    lits = LITS_NAME.match(path.name)
    if lits:
        kind, number = lits.group(1).lower(), lits.group(2)
        ref = lits_case(path.parent, number, tuple(LITS_LABELS) if kind == "volume" else (kind,))
        if ref is None:
            labels = "labels" if kind == "labels" else "segmentation"
            raise InputError(f"the LiTS pair of case {number} is incomplete (volume-{number} and {labels}-{number} "
                             "are both needed)", path, "put both files in one folder")
        return ref
    sliver = SLIVER_NAME.match(path.name)
    if sliver:
        number = sliver.group(2)
        ref = sliver_case(path.parent, number)
        if ref is None:
            raise InputError(f"the SLIVER07 pair of case {number} is incomplete (liver-orig{number}.mhd and "
                             f"liver-seg{number}.mhd are both needed)", path, "put both files in one folder")
        return ref
    btcv = BTCV_NAME.match(path.name)
    if btcv and path.parent.name == btcv.group(1):
        ref = btcv_case(path.parent.parent, btcv.group(2), btcv.group(3))
        if ref is None:
            raise InputError(f"the BTCV pair of case {btcv.group(2)} is incomplete (img/img{btcv.group(2)} and "
                             f"label/label{btcv.group(2)} are both needed)", path, "keep the img and label folders")
        return ref
    if in_paired_folder(path) and is_image_file(path):
        ref = decathlon_case(path)
        if ref is None:
            raise InputError("the Decathlon image has no label map of the same name (or the reverse)", path,
                             "give imagesTr/X and labelsTr/X (nnU-Net's imagesTr/X_0000 and labelsTr/X)")
        return ref
    if is_abdomenct_file(path):
        ref = abdomenct_case(path)
        if ref is None:
            raise InputError("the AbdomenCT-1K pair of this case is incomplete (AbdomenCT-1K-ImagePartN/Case_N_0000 "
                             "and Mask/Case_N are both needed)", path, "keep the image part and Mask folders together")
        return ref
    return None


def dataset_folder_cases(folder: Path) -> Optional[list[CaseRef]]:
    """The cases of a collection's dataset folder (imagesTr/ + labelsTr/ or images/ + labels/, AbdomenCT-1K's
    parts + Mask/, BTCV's img/ + label/); None for a folder that is none."""
    if any((folder / images).is_dir() and (folder / labels).is_dir() for images, labels in PAIRED_FOLDERS.items()):
        return decathlon_cases(folder)
    if (folder / ABDOMENCT_MASKS).is_dir() and any(is_abdomenct_part(sub) for sub in folder.iterdir()):
        return abdomenct_cases(folder)
    if (folder / "img").is_dir() and (folder / "label").is_dir():
        return btcv_cases(folder)
    return None


def numbered_pair_cases(folder: Path, names: list[str]) -> Optional[list[CaseRef]]:
    """The LiTS, CT-ORG and SLIVER07 cases among a folder's file `names`, their images without a label map
    left out with a note; None where it holds none of their images."""
    lits = sorted((n for n in names if LITS_NAME.match(n) and n.lower().startswith("volume")), key=_lits_number)
    slivers = sorted(n for n in names if SLIVER_NAME.match(n) and n.lower().startswith("liver-orig"))
    if not lits and not slivers:
        return None
    refs = []
    for name in lits:
        number = LITS_NAME.match(name).group(2)
        ref = lits_case(folder, number)
        if ref is None:
            LOG.info("left out %s: no segmentation-%s (or CT-ORG's labels-%s) beside it", folder / name, number,
                     number)
        else:
            refs.append(ref)
    for name in slivers:
        number = SLIVER_NAME.match(name).group(2)
        ref = sliver_case(folder, number)
        if ref is None:
            LOG.info("left out %s: no liver-seg%s.mhd beside it (SLIVER07's test images have none)", folder / name,
                     number)
        else:
            refs.append(ref)
    return refs


def lits_case(folder: Path, number: str, label_stems: tuple[str, ...] = ("segmentation", "labels")
               ) -> Optional[CaseRef]:
    """LiTS's volume-N + segmentation-N (`lits-N`), else CT-ORG's volume-N + labels-N (`ct-org-N`), of
    the `label_stems` given; None where the image or label map is missing."""
    image = _first_file(folder, (f"volume-{number}.nii", f"volume-{number}.nii.gz"))
    for stem in label_stems:
        labels = _first_file(folder, (f"{stem}-{number}.nii", f"{stem}-{number}.nii.gz"))
        if image is not None and labels is not None:
            return CaseRef(f"{LITS_LABELS[stem]}-{number}", "image-pair", (image, labels))
    return None


def sliver_case(folder: Path, number: str) -> Optional[CaseRef]:
    """SLIVER07's liver-origNNN.mhd + liver-segNNN.mhd (`sliver-NNN`); None where either is missing."""
    image, labels = folder / f"liver-orig{number}.mhd", folder / f"liver-seg{number}.mhd"
    return CaseRef(f"sliver-{number}", "image-pair", (image, labels)) if image.is_file() and labels.is_file() else None


def btcv_cases(folder: Path) -> list[CaseRef]:
    refs = []
    for image in sorted((folder / "img").iterdir()):
        found = BTCV_NAME.match(image.name)
        if found is None or found.group(1) != "img":
            continue
        ref = btcv_case(folder, found.group(2), found.group(3))
        if ref is None:
            LOG.info("left out %s: no label/label%s%s", image, found.group(2), found.group(3))
        else:
            refs.append(ref)
    return refs


def btcv_case(folder: Path, number: str, suffix: str) -> Optional[CaseRef]:
    """BTCV's img/imgNNNN + label/labelNNNN (`btcv-NNNN`); None where either is missing."""
    image, labels = folder / "img" / f"img{number}{suffix}", folder / "label" / f"label{number}{suffix}"
    return CaseRef(f"btcv-{number}", "image-pair", (image, labels)) if image.is_file() and labels.is_file() else None


def decathlon_cases(task: Path) -> list[CaseRef]:
    refs, names = [], set()
    images = [path for folder, labels in PAIRED_FOLDERS.items() if (task / folder).is_dir() and (task / labels).is_dir()
              for path in sorted((task / folder).iterdir())]
    for image in images:
        if image.name.startswith(".") or not is_image_file(image):
            continue  # macOS "._" companions ship with the Decathlon archives
        ref = decathlon_case(image)
        if ref is None:
            LOG.info("left out %s: no %s/%s", image, PAIRED_FOLDERS[image.parent.name], image.name)
        elif ref.paths[0] != image:  # a case's other channel: the CT is channel 0
            LOG.info("left out %s: channel %s of case %s; the CT is read from its channel 0000", image,
                     NNUNET_CHANNEL.match(image_stem(image))[2], ref.name)
        elif ref.name not in names:
            names.add(ref.name)
            refs.append(ref)
    if (task / "imagesTs").is_dir():
        LOG.info("left out %s: test images have no labels", task / "imagesTs")
    return refs


def decathlon_case(path: Path) -> Optional[CaseRef]:
    """The image-pair case of an image in imagesTr/ or a label map in labelsTr/ (or images/ and labels/):
    labelsTr/ holds the image's label map under the same name (the Medical Segmentation Decathlon),
    or imagesTr/ holds the case's image with its channel, CASE_0000 (nnU-Net's datasets); None
    where the other file is not there."""
    task, stem = path.parent.parent, image_stem(path)
    suffix = path.name[len(stem):]
    images_folder = next((images for images, labels in PAIRED_FOLDERS.items() if path.parent.name == labels), None)
    if images_folder is not None:
        images = [task / images_folder / name for name in (path.name, f"{stem}_0000{suffix}")]
        image = next((image for image in images if image.is_file()), None)
        return None if image is None else CaseRef(stem, "image-pair", (image, path))
    return _image_of_channel(path, task / PAIRED_FOLDERS[path.parent.name])


def _image_of_channel(image: Path, labels_folder: Path) -> Optional[CaseRef]:
    """The case of an image and its label map of the same name in `labels_folder`, the image's name
    perhaps carrying its channel (nnU-Net's CASE_0000, read as CASE; another channel gives channel 0's
    image); None where a file is not there."""
    stem = image_stem(image)
    suffix = image.name[len(stem):]
    channel = NNUNET_CHANNEL.match(stem)
    for name in [stem] + ([channel[1]] if channel else []):
        labels = labels_folder / f"{name}{suffix}"
        if labels.is_file():
            channel_0 = image if name == stem else image.parent / f"{name}_0000{suffix}"
            return CaseRef(name, "image-pair", (channel_0, labels)) if channel_0.is_file() else None
    return None


def in_paired_folder(path: Path) -> bool:
    return path.parent.name in PAIRED_FOLDERS or path.parent.name in PAIRED_FOLDERS.values()


def is_abdomenct_part(folder: Path) -> bool:
    return folder.is_dir() and folder.name.lower().startswith(ABDOMENCT_PART)


def is_abdomenct_file(path: Path) -> bool:
    """An AbdomenCT-1K mask (Mask/Case_N.nii.gz) or image (AbdomenCT-1K-ImagePartN/Case_N_0000.nii.gz)."""
    return (path.parent.name == ABDOMENCT_MASKS and ABDOMENCT_MASK_NAME.match(path.name) is not None) or (
        is_abdomenct_part(path.parent) and is_image_file(path))


def abdomenct_cases(root: Path) -> list[CaseRef]:
    """AbdomenCT-1K's cases: each image in its image parts with its mask in Mask/; images without one
    (its unlabelled cases) left out in one note."""
    refs, unlabelled = [], []
    for part in sorted(sub for sub in root.iterdir() if is_abdomenct_part(sub)):
        for image in sorted(part.iterdir()):
            if image.name.startswith(".") or not is_image_file(image):
                continue
            ref = abdomenct_case(image)
            if ref is None:
                unlabelled.append(image)
            else:
                refs.append(ref)
    if unlabelled:
        LOG.info("left out %d AbdomenCT-1K image(s) with no mask in %s, e.g. %s", len(unlabelled),
                 root / ABDOMENCT_MASKS, unlabelled[0].name)
    return refs


def abdomenct_case(path: Path) -> Optional[CaseRef]:
    """The case of an AbdomenCT-1K image or mask; None where the other file is not there."""
    if path.parent.name != ABDOMENCT_MASKS:
        return _image_of_channel(path, path.parent.parent / ABDOMENCT_MASKS)
    found = ABDOMENCT_MASK_NAME.match(path.name)
    name = f"{found[1]}_0000{found[2]}"  # Case_N.nii.gz's image: Case_N_0000.nii.gz, in one of the parts
    parts = sorted(sub for sub in path.parent.parent.iterdir() if is_abdomenct_part(sub))
    image = next((part / name for part in parts if (part / name).is_file()), None)
    return None if image is None else CaseRef(found[1], "image-pair", (image, path))


def _first_file(folder: Path, names: Iterable[str]) -> Optional[Path]:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _lits_number(name: str) -> int:
    return int(LITS_NAME.match(name).group(2))
