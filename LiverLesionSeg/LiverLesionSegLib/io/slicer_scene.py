"""A 3D Slicer scene given as the input: a scene bundle (.mrb, a ZIP archive, unpacked by
`archive.py`) or a scene file (.mrml) beside its data, as Slicer users share their work.

The scene file is XML (read by the standard library's parser, which resolves no external entity).
Each volume node names its storage node, and the storage node the file that holds the voxels,
relative to the scene's folder and URL-encoded by Slicer. The CT is the scene's one scalar volume,
or the one `--series` names: label maps, segmentations, vector volumes (other XML tags) and this
tool's own lesion probability maps (marked by `PROBABILITY_ROLE`) are not CTs. Its segmentation (for
`measure`: a reader's corrected result) is its one segmentation node, saved as a .seg.nrrd.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote

from ..errors import InputError, first_line
from .images import IMAGE_FILES, is_image_file

LOG = logging.getLogger("LiverLesionSeg")

SCENE_SUFFIX = ".mrml"
BUNDLE_SUFFIX = ".mrb"  # a ZIP archive of a scene and its data, as Slicer saves it
SCALAR_VOLUME_TAG = "Volume"  # vtkMRMLScalarVolumeNode's tag; label maps are "LabelMapVolume"
SEGMENTATION_TAG = "Segmentation"
# The storage node that saves a node of a tag: a segmentation's storage reference damaged to name a
# volume's storage node read the label map that node saves as the segmentation, without a word.
STORAGE_TAGS = {SEGMENTATION_TAG: "SegmentationStorage"}
ROLE_ATTRIBUTE = "LiverLesionSeg.Role"  # a node attribute Slicer saves with the scene
PROBABILITY_ROLE = "lesion probability"  # the role of the probability volumes this tool makes


@dataclass(frozen=True)
class SceneFile:
    """A node of the scene and the file that holds its data."""

    name: str
    path: Optional[Path]  # None where the node names no file (never saved)
    transform: Optional[str] = None  # the name of the transform the scene places the node under
    no_file: str = ""  # where `path` is None: why, in words ("it names no storage node")


def is_scene_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(SCENE_SUFFIX)


def is_scene_bundle(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(BUNDLE_SUFFIX)


def scene_file_in(folder: Path) -> Optional[Path]:
    """The scene file at the top of `folder` (an unpacked .mrb holds one), or None."""
    scenes = sorted(p for p in folder.iterdir() if is_scene_file(p) and p.is_file())
    return scenes[0] if len(scenes) == 1 else None


def scene_volumes(scene: Path) -> list[SceneFile]:
    """The scene's scalar volumes other than lesion probability maps, in the scene's order."""
    def is_ct(node: ElementTree.Element) -> bool:  # not a label map of scenes before Slicer 4.3, nor a map made here
        return node.get("labelMap") != "1" and not _is_probability_map(node)
    return _scene_files(scene, SCALAR_VOLUME_TAG, is_ct)


def scene_segmentations(scene: Path) -> list[SceneFile]:
    """The scene's segmentation nodes (saved as .seg.nrrd), in the scene's order."""
    return _scene_files(scene, SEGMENTATION_TAG, lambda node: True)


def choose_scene_volume(scene: Path, wanted: Optional[str | int] = None) -> Path:
    """The file of the scene's CT volume: its one scalar volume, or the one named `wanted`."""
    volumes = scene_volumes(scene)
    if not volumes:
        raise InputError("is a 3D Slicer scene without a scalar volume (no CT in it)", scene,
                         "save the scene with its CT volume, or give the CT's own file")
    chosen = _one(scene, volumes, wanted, "volume", "give --series the name of one volume from that list",
                  "give --series the name of the CT volume to segment")
    return _readable(scene, chosen, "volume")


def choose_scene_segmentation(scene: Path, wanted: Optional[str] = None) -> Path:
    """The file of the scene's one segmentation (a reader's corrected result, say), or of the one
    named `wanted`."""
    segmentations = scene_segmentations(scene)
    if not segmentations:
        raise InputError("is a 3D Slicer scene without a segmentation", scene,
                         "save the scene with its segmentation, or give the segmentation's own file (.seg.nrrd)")
    chosen = _one(scene, segmentations, wanted, "segmentation",
                  "nor is it a file: give a segmentation file, or the name of one segmentation from that list",
                  "give measure the name of the segmentation after the scene (for train and evaluate: save the "
                  "scene with one segmentation)")
    return _readable(scene, chosen, "segmentation")


def _one(scene: Path, nodes: list[SceneFile], wanted: Optional[str | int], what: str, hint_unnamed: str,
         hint_several: str) -> SceneFile:
    """The one node of `nodes` named `wanted` (in any case), or the only one."""
    listed = "; ".join(f"'{node.name}'" for node in nodes)
    if wanted is not None:
        nodes = [node for node in nodes if node.name.strip().lower() == str(wanted).strip().lower()]
        if len(nodes) != 1:
            how_many = f"no {what} is" if not nodes else f"{len(nodes)} {what}s are"
            raise InputError(f"{how_many} named '{wanted}' in the 3D Slicer scene; it holds {listed}", scene,
                             hint_unnamed)
    elif len(nodes) > 1:
        raise InputError(f"is a 3D Slicer scene with {len(nodes)} {what}s: {listed}", scene, hint_several)
    return nodes[0]


def _scene_files(scene: Path, tag: str, keep) -> list[SceneFile]:
    """The scene's nodes of one XML tag that `keep` keeps, each with its storage node's file."""
    try:
        root = ElementTree.parse(scene).getroot()
    except (ElementTree.ParseError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"is not a readable 3D Slicer scene ({first_line(exc)})", scene,
                         "save the scene again in Slicer, or give the CT's own file") from None
    if root.tag != "MRML":
        raise InputError(f"is an XML file but not a 3D Slicer scene (its root is <{root.tag}>)", scene,
                         "give a scene saved by Slicer (.mrb or .mrml), or the CT's own file")
    storages = {node.get("id"): node for node in root if node.get("id")}
    # only nodes with an id: one saved without its id was taken for the transform of every node naming none
    names = {node.get("id"): node.get("name") or node.get("id") for node in root if node.get("id")}
    found = []
    for node in root:  # the scene's own nodes, not the copies a scene view holds within it
        if node.tag == tag and keep(node):
            storage = _reference(node, "storage")
            no_file = _why_no_file(storage, storages, tag)
            file_name = storages[storage].get("fileName") if not no_file else None
            found.append(SceneFile(node.get("name") or node.get("id") or "unnamed",
                                   _data_file(scene.parent, file_name) if file_name else None,
                                   names.get(_reference(node, "transform")), no_file))
    return found


def _why_no_file(storage: Optional[str], storages: dict[str, ElementTree.Element], tag: str) -> str:
    """Why a node of `tag` whose storage reference is `storage` has no file of its own, in words ("" where
    it has one). A segmentation's storage reference, or its storage node's file name, damaged to name a
    volume's was read as that volume's label map, another lesion table without a word."""
    if not storage:
        return "it names no storage node"
    if storage not in storages:
        return f"its storage node '{storage}' is not in the scene"
    saver, wanted = storages[storage], STORAGE_TAGS.get(tag)
    if wanted and saver.tag != wanted:
        return f"its storage node '{storage}' is a {saver.tag}, which saves no {tag.lower()}"
    file_name = saver.get("fileName")
    if not file_name:
        return f"its storage node '{storage}' names no file"
    if wanted:
        other = next((node for node in storages.values() if node.tag != wanted and node.get("fileName") == file_name),
                     None)
        if other is not None:
            return f"its storage node names {unquote(file_name)}, which the {other.tag} node '{other.get('id')}' saves"
    return ""


def _readable(scene: Path, chosen: SceneFile, what: str) -> Path:
    """The chosen node's file, refused where it is missing or in a format not read here."""
    if chosen.path is None or not chosen.path.is_file():
        where = f" ({chosen.path.name} is missing)" if chosen.path is not None else f" ({chosen.no_file})"
        raise InputError(f"the 3D Slicer scene's {what} '{chosen.name}' has no file{where}", scene,
                         "save the scene again in Slicer with its data (File > Save, or as a .mrb bundle)")
    if not is_image_file(chosen.path):
        raise InputError(f"the 3D Slicer scene's {what} '{chosen.name}' is stored as {chosen.path.name}, "
                         f"which cannot be read here", scene,
                         f"save the {what} from Slicer as {IMAGE_FILES} and give that")
    if chosen.transform:  # a registration moved it in the scene; its file holds it where it was acquired
        LOG.warning("%s: the scene places the %s '%s' under the transform '%s'; it is read as its file holds it, "
                    "without the transform (in Slicer, put the outputs under the same transform)",
                    scene.name, what, chosen.name, chosen.transform)
    return chosen.path


def _is_probability_map(node: ElementTree.Element) -> bool:
    """A lesion probability map this tool's Slicer logic made: marked by its role, or, saved before
    the role was, named so (the panel names a new map "Lesion probability")."""
    role = _attributes(node).get(ROLE_ATTRIBUTE)
    return role == PROBABILITY_ROLE or (role is None and PROBABILITY_ROLE in (node.get("name") or "").lower())


def _reference(node: ElementTree.Element, role: str) -> Optional[str]:
    """The id of the node a node references in `role` ("storage", "transform"):
    `references="storage:ID;display:ID1 ID2;"` (`storageNodeRef`, `transformNodeRef` before Slicer 4.3)."""
    for reference in (node.get("references") or "").split(";"):
        named, _, ids = reference.partition(":")
        if named.strip() == role and ids.split():
            return ids.split()[0]
    return node.get(f"{role}NodeRef")


def _attributes(node: ElementTree.Element) -> dict[str, str]:
    """A node's attributes, saved as `attributes="name:value;name:value"` (each URL-encoded)."""
    pairs = (item.partition(":") for item in (node.get("attributes") or "").split(";") if item)
    return {unquote(name): unquote(value) for name, _, value in pairs}


def _data_file(folder: Path, file_name: str) -> Path:
    """A storage node's file: URL-encoded by Slicer (a space as %20), taken as written where the
    decoded name does not exist (scenes from before the encoding)."""
    decoded = folder / unquote(file_name)
    return decoded if decoded.exists() else folder / file_name
