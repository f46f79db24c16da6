"""What a Medical Segmentation Decathlon or nnU-Net dataset's label values mean, by the names its
`dataset.json` gives them, and its label maps read as 0 background, 1 liver, 2 lesion.

The Decathlon writes `"labels": {"0": "background", "1": "liver", "2": "cancer"}`; nnU-Net
`{"background": 0, "liver": 1, "tumor": 2}`, and a region as a list of values (`"liver": [1, 2]`).
A dataset of several organs (liver 1, kidney 2, spleen 3 ...) had its kidney read as liver lesion,
or its label maps refused for values beyond 2. Each value is read by its names as segment names are
(`segments.meaning_of_segment_name`): another organ's label is background.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
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


def label_roles_for(label_map: Path) -> Optional[Roles]:
    """The roles of the label values of a label map in a dataset's `labelsTr/` by its `dataset.json`;
    None where there is none, or it names no labels (the map is read as 0/1/2), with a warning where
    it cannot be read."""
    path = label_map.parent.parent / "dataset.json"
    if label_map.parent.name != "labelsTr" or not path.is_file():
        return None
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
        _tell_of_no_lesion_label(path)
    return roles or None


def lesions_segmented(label_map: Path) -> bool:
    """False where the label map's dataset.json names a liver but no lesion label (a dataset of organs:
    a tumour in its livers is segmented as liver, or not at all); True otherwise."""
    roles = label_roles_for(label_map)
    return roles is None or "lesion" in roles.values() or "liver" not in roles.values()


@functools.lru_cache(maxsize=None)
def _tell_of_no_lesion_label(path: Path) -> None:
    """Once per dataset: a liver but no lesion among its labels says nothing of the livers' tumours."""
    LOG.warning("%s: names a liver label but no lesion label: its cases' lesions are not segmented (a tumour may "
                "be segmented as liver), so training learns the liver alone from them, and evaluate measures "
                "their liver alone", path)


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
        raise InputError(f"the label map holds label(s) {shown}, which its dataset.json does not name", path,
                         "give the label map its dataset.json describes, or name the label there")
    if all(roles[value] == STANDARD.get(value, "another") for value in present):
        return array
    labels = np.zeros(array.shape, np.uint8)
    for value in present:
        labels[array == value] = {"liver": 1, "lesion": 2}.get(roles[value], 0)
    others = [value for value in present if roles[value] is None]
    if others:
        LOG.info("%s: label(s) %s, of neither liver nor lesion by its dataset.json, read as background", path,
                 ", ".join(str(v) for v in others))
        lesions, count = label_components(labels == 2)
        near_liver = ndimage.binary_dilation(labels == 1, np.ones((3, 3, 3), bool))
        touching = np.zeros(count + 1, bool)
        touching[lesions[near_liver & (lesions > 0)]] = True
        labels[(lesions > 0) & ~touching[lesions]] = 0
    return labels
