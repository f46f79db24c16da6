"""What a dataset's label values mean, by the names its `dataset.json` gives them (the Medical
Segmentation Decathlon's, nnU-Net's), or for a collection that ships none by its published list
(CT-ORG, SLIVER07, BTCV, AbdomenCT-1K, FLARE22, KiTS), and its label maps read as 0 background,
1 liver, 2 lesion.

The Decathlon writes `"labels": {"0": "background", "1": "liver", "2": "cancer"}`; nnU-Net
`{"background": 0, "liver": 1, "tumor": 2}`, and a region as a list of values (`"liver": [1, 2]`).
A dataset of several organs (liver 1, kidney 2, spleen 3 ...) had its kidney read as liver lesion,
or its label maps refused for values beyond 2. Each value is read by its names as segment names are
(`segments.meaning_of_segment_name`): another organ's label is background. A dataset.json in a case
folder, or in the folder of case folders, is read alike: how any dataset made into case folders says
what its label maps hold.

CT-ORG (Rister et al. 2020, on TCIA: 140 CTs, most of them LiTS's) ships `volume-N.nii.gz` +
`labels-N.nii.gz` and no dataset.json; its README lists 1 liver, 2 bladder, 3 lungs, 4 kidneys,
5 bone, 6 brain. Read as LiTS is, its bladder was read as liver lesion. SLIVER07 (20 training CTs)
ships `liver-origNNN.mhd` + `liver-segNNN.mhd`, its livers (their tumours and vessels inside them) as 1.
BTCV's 30 training CTs (`img/imgNNNN.nii.gz` + `label/labelNNNN.nii.gz`) label 13 organs, the liver
6. AbdomenCT-1K's masks (`Mask/Case_N.nii.gz`) label 1 liver, 2 kidney, 3 spleen, 4 pancreas; FLARE22,
shipped as `images/` + `labels/`, 13 organs, the liver 1. All these are read as livers whose lesions
are not segmented. KiTS's cases (`case_00000/imaging.nii.gz` + `segmentation.nii.gz`: 1 kidney, 2 its
tumour, 3 cyst) were read as image + labels pairs, their kidneys as livers: their list names no liver,
so they are refused.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
from scipy import ndimage

from ..errors import InputError, first_line
from ..masks import label_components
from ..segments import meaning_of_segment_name

LOG = logging.getLogger("LiverLesionSeg")

Roles = Mapping[int, Optional[str]]  # a label value's role: 'liver', 'lesion' or None (background, another organ)
STANDARD: Roles = {0: None, 1: "liver", 2: "lesion"}
CASE_FOLDER_LABELS = ("labels", "label", "segmentation", "mask")  # a case folder's label map, NAME.nii.gz ...


@dataclass(frozen=True)
class KnownLabels:
    """A collection that ships no dataset.json, known by its label maps' names, and what their values are."""

    collection: str
    label_map: re.Pattern  # matched against the label map's folder and name, "FOLDER/NAME"
    layout: str
    roles: Roles
    values: str  # as a refusal gives them
    # what lies beside the label map in the collection's cases (a glob from its folder, "../" a folder up):
    # a label map of the same name elsewhere is read as 0/1/2
    beside: str = ""


KNOWN_LABELS = (
    # CT-ORG's README: 1 liver, 2 bladder, 3 lungs, 4 kidneys, 5 bone, 6 brain
    KnownLabels("CT-ORG", re.compile(r"/labels-\d+\.nii(\.gz)?$", re.IGNORECASE), "labels-N beside volume-N",
                {0: None, 1: "liver", 2: None, 3: None, 4: None, 5: None, 6: None}, "labels 0 to 6"),
    # SLIVER07's reference segmentations: the liver, its tumours and vessels inside it, as 1
    KnownLabels("SLIVER07", re.compile(r"/liver-seg\d+\.mhd$", re.IGNORECASE), "liver-segN beside liver-origN",
                {0: None, 1: "liver"}, "0 and 1"),
    # BTCV (Multi-Atlas Labeling Beyond the Cranial Vault): 13 organs, the liver 6
    KnownLabels("BTCV", re.compile(r"(^|/)label/label\d+\.nii(\.gz)?$", re.IGNORECASE), "label/labelN beside img/imgN",
                {value: "liver" if value == 6 else None for value in range(14)}, "labels 0 to 13", beside="../img"),
    # AbdomenCT-1K (Ma et al. 2021): Mask/Case_N.nii.gz, 1 liver, 2 kidney, 3 spleen, 4 pancreas
    KnownLabels("AbdomenCT-1K", re.compile(r"(^|/)mask/case_\d+\.nii(\.gz)?$", re.IGNORECASE),
                "Mask/Case_N beside AbdomenCT-1K-ImagePart*/Case_N_0000",
                {0: None, 1: "liver", 2: None, 3: None, 4: None}, "labels 0 to 4", beside="../AbdomenCT-1K-ImagePart*"),
    # FLARE22 (as its organisers ship it, images/ + labels/ without a dataset.json): 13 organs, the liver 1
    KnownLabels("FLARE22", re.compile(r"(^|/)labels/flare22_tr_\d+\.nii(\.gz)?$", re.IGNORECASE),
                "labels/FLARE22_Tr_N beside images/FLARE22_Tr_N_0000",
                {value: "liver" if value == 1 else None for value in range(14)}, "labels 0 to 13", beside="../images"),
    # KiTS19/21/23: 1 kidney, 2 its tumour, 3 cyst, and no liver: read as 0/1/2, its kidneys were livers
    KnownLabels("KiTS", re.compile(r"^case_\d+/segmentation\.nii(\.gz)?$", re.IGNORECASE),
                "case_N/segmentation beside imaging", {0: None, 1: None, 2: None, 3: None}, "labels 0 to 3",
                beside="imaging.nii.gz"),
)


def label_roles_for(label_map: Path) -> Optional[Roles]:
    """The roles of a label map's values by its dataset's `dataset.json` (`dataset_json_of`), or by the
    list of a collection known by its label maps' names (`KNOWN_LABELS`); None for other label maps, and
    where the dataset.json names no labels (the map is read as 0/1/2), with a warning where it cannot be
    read."""
    naming = _naming(label_map)
    if naming is None:
        return None
    if isinstance(naming, KnownLabels):
        if "liver" in naming.roles.values():
            _tell_of_no_lesion_label(label_map.parent, f"belongs to the {naming.collection} dataset ({naming.layout}): "
                                     "its label maps name a liver but no lesion")
        return naming.roles
    path = naming
    try:
        names = _names_by_value(_labels_of(json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        LOG.warning("%s: cannot read its label names (%s); label maps are read as 0 background, 1 liver, 2 lesion",
                    path, first_line(exc))
        return None
    roles = {}
    for value, value_names in names.items():
        meanings = {meaning_of_segment_name(name) for name in value_names}
        roles[value] = "lesion" if "lesion" in meanings else "liver" if "liver" in meanings else None
    if "liver" in roles.values() and "lesion" not in roles.values():
        _tell_of_no_lesion_label(path, "names a liver label but no lesion label")
    return roles or None


def dataset_json_of(label_map: Path) -> Optional[Path]:
    """The dataset.json naming a label map's values: beside the labelsTr/ folder of a Decathlon or nnU-Net
    dataset (or the labels/ folder beside images/), else in the label map's folder, or for a case folder's
    label map (`labels.nii.gz`) in the folder of its cases; None where there is none. (Not higher:
    predictions saved in a folder inside a dataset's hold this tool's own values.)"""
    if _in_labels_folder(label_map):
        folders = [label_map.parent.parent]
    elif _in_case_folder(label_map):
        folders = [label_map.parent, label_map.parent.parent]
    else:
        folders = [label_map.parent]
    return next((folder / "dataset.json" for folder in folders if (folder / "dataset.json").is_file()), None)


def dataset_json_place(label_map: Path) -> str:
    """Where `dataset_json_of` looks for a label map's dataset.json, in words for a message."""
    if _in_labels_folder(label_map):
        return f"beside its {label_map.parent.name} folder"
    return "in its folder or the folder of its cases" if _in_case_folder(label_map) else "in its folder"


def _in_labels_folder(label_map: Path) -> bool:
    """In a dataset's folder of label maps: the Decathlon's and nnU-Net's labelsTr/, or labels/ beside images/."""
    return label_map.parent.name == "labelsTr" or (label_map.parent.name == "labels"
                                                   and (label_map.parent.parent / "images").is_dir())


def _in_case_folder(label_map: Path) -> bool:
    """A case folder's label map (`labels.nii.gz`, `segmentation.nrrd` ...)."""
    return label_map.name.lower().split(".")[0] in CASE_FOLDER_LABELS


def _naming(label_map: Path) -> Optional[Path | KnownLabels]:
    """What names a label map's values: its dataset.json (`dataset_json_of`), else the collection known by
    its name; None where neither does."""
    return dataset_json_of(label_map) or _known_labels(label_map)


def _known_labels(label_map: Path) -> Optional[KnownLabels]:
    folder_and_name = f"{label_map.parent.name}/{label_map.name}"
    return next((known for known in KNOWN_LABELS if known.label_map.search(folder_and_name)
                 and _lies_as_shipped(label_map, known.beside)), None)


def _lies_as_shipped(label_map: Path, beside: str) -> bool:
    """Whether what a collection's label maps lie beside (`KnownLabels.beside`) is there."""
    folder = label_map.parent
    while beside.startswith("../"):
        folder, beside = folder.parent, beside[3:]
    return not beside or any(True for _ in folder.glob(beside))


def named_in(label_map: Path) -> str:
    """What names a label map's values, in a message: "its dataset.json", or "CT-ORG's list of labels"."""
    return _named_by(_naming(label_map))


def _named_by(naming: Optional[Path | KnownLabels]) -> str:
    return f"{naming.collection}'s list of labels" if isinstance(naming, KnownLabels) else "its dataset.json"


def lesions_segmented(label_map: Path) -> bool:
    """False where the label map's dataset.json (or its collection's list) names a liver but no lesion label (a
    dataset of organs: a tumour in its livers is segmented as liver, or not at all); True otherwise."""
    roles = label_roles_for(label_map)
    return roles is None or "lesion" in roles.values() or "liver" not in roles.values()


@functools.lru_cache(maxsize=None)
def _tell_of_no_lesion_label(path: Path, why: str) -> None:
    """Once per dataset: a liver but no lesion among its labels says nothing of the livers' tumours."""
    LOG.warning("%s: %s: its cases' lesions are not segmented (a tumour may be segmented as liver), so training "
                "learns the liver alone from them, and evaluate measures their liver alone", path, why)


def _labels_of(data) -> dict:
    """The "labels" object of a dataset.json's data (empty where it has none)."""
    if not isinstance(data, dict):
        raise ValueError("it holds no JSON object")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValueError("its labels are no object of names and values")
    return labels


def _names_by_value(labels: dict) -> dict[int, list[str]]:
    """Each label value's names: the Decathlon's {"1": "liver"} and nnU-Net's {"liver": 1} or
    {"liver": [1, 2]}."""
    names: dict[int, list[str]] = defaultdict(list)
    for key, value in labels.items():
        if isinstance(value, str):
            names[_label_value(key)].append(value)
        else:
            for number in value if isinstance(value, list) else [value]:
                names[_label_value(number)].append(str(key))
    return dict(names)


def _label_value(value) -> int:
    """A label value as dataset.json writes it (1, 1.0 or "1"); ValueError for anything else."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{value!r} is no label value")


def as_liver_and_lesion_labels(array: np.ndarray, roles: Roles, path: Path) -> np.ndarray:
    """The label map as 0 background, 1 liver, 2 lesion by its values' roles. Where another organ's
    label was left out, lesions touching no liver are too: a multi-organ dataset's tumour label holds
    every organ's tumours."""
    present = [value for value in np.unique(array) if value != 0]
    unnamed = [value for value in present if value not in roles]
    if unnamed:
        shown = ", ".join(str(v) for v in unnamed[:10])
        naming = _naming(path)
        hint = (f"give {naming.collection}'s label map as it ships ({naming.values}), or name the label in a "
                "dataset.json beside it" if isinstance(naming, KnownLabels) else
                "give the label map its dataset.json describes, or name the label there")
        raise InputError(f"the label map holds label(s) {shown}, which {_named_by(naming)} does not name", path,
                         hint)
    if all(roles[value] == STANDARD.get(value, "another") for value in present):
        return array
    labels = np.zeros(array.shape, np.uint8)
    for value in present:
        labels[array == value] = {"liver": 1, "lesion": 2}.get(roles[value], 0)
    others = [value for value in present if roles[value] is None]
    if others:
        LOG.info("%s: label(s) %s, of neither liver nor lesion by %s, read as background", path,
                 ", ".join(str(v) for v in others), named_in(path))
        lesions, count = label_components(labels == 2)
        near_liver = ndimage.binary_dilation(labels == 1, np.ones((3, 3, 3), bool))
        touching = np.zeros(count + 1, bool)
        touching[lesions[near_liver & (lesions > 0)]] = True
        labels[(lesions > 0) & ~touching[lesions]] = 0
    return labels
