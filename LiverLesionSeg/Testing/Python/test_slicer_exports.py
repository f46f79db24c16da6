"""Exports from the scene that must not go wrong on their names or their folders: the DICOM export of a
segmentation named as the logic names those of DICOM volumes ("3: ABD/PELVIS ... liver segmentation"),
and the training cases written from scene pairs, all or nothing, with a project error (not a raw
OSError) where the folder cannot be written.

Real MRML classes (`slicer-core`), the bundled sample DICOM series and a crop of 3D-IRCADb 3Dircadb1.17.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")

import slicer_logic_cases as cases  # noqa: E402
from bad_inputs import _disk_full_at_flush, make_read_only  # noqa: E402
from LiverLesionSegLib import mrml, mrml_export  # noqa: E402
from LiverLesionSegLib.errors import InputError, OutputError  # noqa: E402
from LiverLesionSegLib.io import atomic  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, load_case  # noqa: E402
from LiverLesionSegLib.segments import LIVER  # noqa: E402
from LiverLesionSegLib.training_process import TrainingProcess, TrainingSettings, new_run_folder  # noqa: E402

NAME_MAX_BYTES = 255  # the longest file name Linux, macOS and Windows file systems all allow
LONG_NAME = "Patient " + "x" * 292


@pytest.fixture(scope="module")
def crop(data_dir):
    """12 slices of 3Dircadb1.17 through its lesions: (CT, liver, lesion)."""
    full = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    return tuple(cases.crop_slices(volume, 90, 12) for volume in (full.ct, full.liver, full.lesion))


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


@pytest.fixture
def pair(crop, scene):
    """A CT node and a segmentation of it with "Liver" and "Liver lesion" segments."""
    ct, liver, lesion = crop
    volume_node = mrml.add_volume_node(scene, ct, "CT")
    segmentation_node = mrml.new_segmentation_node(scene, "CT liver segmentation")
    mrml.fill_segmentation_node(segmentation_node, volume_node, liver, lesion)
    return volume_node, segmentation_node


def default_names_pair(scene, volume_node, liver):
    """A segmentation of `volume_node` as the Segment Editor names a first segment: "Segment_1"."""
    node = mrml.new_segmentation_node(scene, "untouched default names")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    segment = mrml.make_segment(LIVER, liver)
    segment.SetName("Segment_1")
    node.GetSegmentation().AddSegment(segment, "Segment_1")
    return volume_node, node


def tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# --- DICOM export: file names ----------------------------------------------------------------------

@pytest.mark.parametrize("name, readable", [("3: ABD/PELVIS W CONTRAST liver segmentation", "ABD_PELVIS W CONTRAST"),
                                            ("../escaped", "escaped"), (LONG_NAME, "Patient xxx")])
def test_dicom_export_files_are_named_safely_inside_the_chosen_folder(tmp_path, name, readable):
    volume_node, segmentation_node, _, _ = cases.sample_case_drawn_by_hand(slicer.vtkMRMLScene())
    segmentation_node.SetName(name)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    exported = mrml_export.export_dicom(volume_node, segmentation_node, chosen)
    assert tree(tmp_path) == ["chosen", *sorted(f"chosen/{path.name}" for path in exported.files)]
    for path in exported.files:
        assert path.parent == chosen and path.is_file()
        assert readable in path.name and not set(path.name) & set('/\\:*?"<>|')
        assert len(path.name.encode()) < NAME_MAX_BYTES


def test_file_stem_keeps_letters_and_drops_what_windows_and_posix_refuse():
    from LiverLesionSegLib.io.dicom_export import file_stem

    assert file_stem("3: ABD/PELVIS W CONTRAST") == "3_ ABD_PELVIS W CONTRAST"
    assert file_stem("Leber Müller 肝") == "Leber Müller 肝"
    assert file_stem('..\\a<b>c|d?e*"f"\x00\tg. ') == 'a_b_c_d_e_f_g'
    assert file_stem(" ../ ") == "segmentation"
    long = file_stem("肝" * 200)
    assert long == "肝" * len(long) and len(long.encode()) <= 150


# --- training cases: all or nothing ----------------------------------------------------------------

def test_training_pair_leaves_nothing_when_its_labels_cannot_be_written(pair, tmp_path):
    with _disk_full_at_flush("labels"), pytest.raises(OutputError, match="disk is full"):
        mrml_export.export_training_pair(*pair, tmp_path / "cases", "case 1")
    assert tree(tmp_path) == [], "a case folder with an image and no labels was left"


def test_training_pairs_are_all_checked_before_any_is_written(scene, pair, crop, tmp_path):
    folder = tmp_path / "cases"
    earlier = folder / "earlier" / "image.nrrd"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"an earlier case the user wants to keep")
    bad = default_names_pair(scene, pair[0], crop[1])
    with pytest.raises(InputError, match="no liver segment .*Segment_1"):
        mrml_export.export_training_pairs([pair, bad], folder)
    assert tree(folder) == ["earlier", "earlier/image.nrrd"]
    assert earlier.read_bytes() == b"an earlier case the user wants to keep"


def test_training_from_the_scene_leaves_no_case_folder_when_a_pair_is_refused(scene, pair, crop, tmp_path,
                                                                               monkeypatch):
    """The panel's Train with a refused pair: no `scene-cases/<stamp>-scene` folder left for each try."""
    monkeypatch.setenv("LIVERLESIONSEG_HOME", str(tmp_path / "home"))
    with pytest.raises(InputError, match="no liver segment"):
        mrml.start_training(TrainingSettings(cases=[]), [pair, default_names_pair(scene, pair[0], crop[1])])
    assert tree(tmp_path / "home" / "scene-cases") == []


def test_a_training_pair_under_another_transform_or_of_a_label_map_is_refused(scene, pair, crop, tmp_path):
    """Exported unmoved, the labels were not where the user saw them; a label map chosen as the CT
    was written as a case's image."""
    volume_node, segmentation_node = pair
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    segmentation_node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="CT liver segmentation: is under another transform than the volume CT"):
        mrml_export.export_training_pair(volume_node, segmentation_node, tmp_path / "cases")
    segmentation_node.SetAndObserveTransformNodeID(None)
    labels = mrml.add_volume_node(scene, crop[0].with_array((crop[1].array + crop[2].array).astype(np.int16)),
                                  "labels")
    with pytest.raises(InputError, match=r"^labels: holds only the values 0, 1, 2"):
        mrml_export.export_training_pair(labels, segmentation_node, tmp_path / "cases")
    assert not (tmp_path / "cases").exists()


def test_training_pairs_written_are_removed_when_a_later_one_fails(pair, tmp_path, monkeypatch):
    flush = atomic._fsync
    flushed = []

    def disk_full_at_the_second_labels(path):  # simulated, as bad_inputs does: ENOSPC at the flush
        flushed.append(Path(path).name)
        if sum(".labels.nrrd." in name for name in flushed) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return flush(path)

    monkeypatch.setattr(atomic, "_fsync", disk_full_at_the_second_labels)
    with pytest.raises(OutputError, match="disk is full"):
        mrml_export.export_training_pairs([pair, pair], tmp_path / "cases")
    assert tree(tmp_path) == [], "the first pair's case was left behind"


def test_training_pairs_written_together(pair, tmp_path):
    folders = mrml_export.export_training_pairs([pair, pair], tmp_path)
    assert [Path(folder).name for folder in folders] == ["CT", "CT-2"]
    assert tree(tmp_path) == ["CT", "CT-2", "CT-2/image.nrrd", "CT-2/labels.nrrd", "CT/image.nrrd", "CT/labels.nrrd"]


# --- training cases and runs: folders that cannot be written ----------------------------------------

def test_training_pair_into_a_read_only_folder_is_an_output_error(pair, tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    undo = make_read_only(folder)
    try:
        with pytest.raises(OutputError, match="readonly/CT: cannot make this folder: .*not writable"):
            mrml_export.export_training_pair(*pair, folder)
    finally:
        undo()
    assert tree(folder) == []


def test_training_pair_into_a_file_is_an_output_error(pair, tmp_path):
    a_file = tmp_path / "cases"
    a_file.write_text("not a folder")
    for folder in (a_file, a_file / "below"):
        with pytest.raises(OutputError, match="cases: is a file, not a folder"):
            mrml_export.export_training_pair(*pair, folder)
    assert tree(tmp_path) == ["cases"] and a_file.read_text() == "not a folder"


def test_training_pair_with_a_300_character_name_is_shortened(pair, tmp_path):
    case = mrml_export.export_training_pair(*pair, tmp_path, LONG_NAME)
    assert case.parent == tmp_path and case.name.startswith("Patient_xxx")
    assert len(case.name) <= mrml_export.CASE_NAME_MAX
    loaded = load_case(find_cases([case])[0])
    assert np.array_equal(loaded.ct.array, mrml.volume_from_node(pair[0]).array)
    assert mrml_export.export_training_pair(*pair, tmp_path, LONG_NAME).name == case.name + "-2"


def test_training_with_a_read_only_home_is_an_output_error(pair, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LIVERLESIONSEG_HOME", str(home))
    undo = make_read_only(home)
    try:
        process = TrainingProcess(TrainingSettings(cases=[str(tmp_path)]))
        with pytest.raises(OutputError, match="home/runs: .*not writable. Set LIVERLESIONSEG_HOME"):
            process.start()
        assert process.state == "ready" and not process.running
        with pytest.raises(OutputError, match="home/scene-cases: .*not writable. Set LIVERLESIONSEG_HOME"):
            mrml.start_training(TrainingSettings(cases=[]), [pair])
    finally:
        undo()
    assert tree(home) == []


def test_run_folder_under_a_file_is_an_output_error(tmp_path):
    (tmp_path / "home").write_text("not a folder")
    with pytest.raises(OutputError, match="home: is a file, not a folder"):
        new_run_folder(tmp_path / "home" / "runs")
