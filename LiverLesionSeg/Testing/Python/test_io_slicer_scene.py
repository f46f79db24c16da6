"""A 3D Slicer scene as the input (a .mrb bundle, or a .mrml file beside its data): its CT volume is
read, not its label maps or the probability maps this tool made; the scenes are written by Slicer's
own MRML classes (the `slicer-core` wheel) where the test can, and by hand only for older forms."""

from __future__ import annotations

import numpy as np
import pytest

from bad_inputs import slicer_scene_bundle
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.cases import find_input_ct, read_input_volume
from LiverLesionSegLib.io.slicer_scene import choose_scene_segmentation, choose_scene_volume, scene_volumes
from LiverLesionSegLib.resources import sample_case_path


@pytest.fixture(scope="module")
def ct():
    return read_input_volume(sample_case_path())


def test_a_scene_bundle_gives_its_ct_not_its_label_map_or_probability_map(ct, tmp_path):
    bundle = slicer_scene_bundle(ct, tmp_path / "liver study.mrb")
    with find_input_ct(bundle) as found:
        assert found.image.name == "CT.nrrd"
        volume = found.read()
    assert np.array_equal(volume.array, ct.array) and volume.same_grid(ct)
    assert volume.source == str(bundle / "liver study" / "Data" / "CT.nrrd")  # named inside the bundle


def test_the_volume_named_by_series_is_chosen_and_several_without_a_name_are_asked_about(ct, tmp_path):
    bundle = slicer_scene_bundle(ct, tmp_path / "two.mrb", names=("CT arterial", "CT portal 100%"))
    with pytest.raises(InputError, match=r"scene with 2 volumes: 'CT arterial'; 'CT portal 100%'") as raised:
        find_input_ct(bundle)
    assert "--series" in str(raised.value) and "two.mrb" in str(raised.value)
    with find_input_ct(bundle, series="ct portal 100%") as found:  # its file name URL-encoded in the scene
        assert found.image.name == "CT portal 100%.nrrd"
        assert found.read().same_grid(ct)
    with pytest.raises(InputError, match=r"no volume is named 'venous' in the 3D Slicer scene; it holds 'CT"):
        find_input_ct(bundle, series="venous")


def test_a_scene_file_beside_its_data_and_an_unpacked_bundle_folder(ct, tmp_path):
    import zipfile

    bundle = slicer_scene_bundle(ct, tmp_path / "study.mrb", probability=False)
    zipfile.ZipFile(bundle).extractall(tmp_path / "unpacked")
    scene_file = tmp_path / "unpacked" / "study" / "study.mrml"
    assert choose_scene_volume(scene_file) == scene_file.parent / "Data" / "CT.nrrd"
    for given in (scene_file, scene_file.parent):
        assert read_input_volume(given).same_grid(ct)


OLD_SCENE = """<?xml version="1.0" encoding="UTF-8"?>
<MRML version="Slicer4">
 <VolumeArchetypeStorage id="vtkMRMLVolumeArchetypeStorageNode1" fileName="{ct}"></VolumeArchetypeStorage>
 <VolumeArchetypeStorage id="vtkMRMLVolumeArchetypeStorageNode2" fileName="labels.nrrd"></VolumeArchetypeStorage>
 <Volume id="vtkMRMLScalarVolumeNode1" name="abdomen" storageNodeRef="vtkMRMLVolumeArchetypeStorageNode1"></Volume>
 <Volume id="vtkMRMLScalarVolumeNode2" name="labels" labelMap="1"
   storageNodeRef="vtkMRMLVolumeArchetypeStorageNode2"></Volume>
 <SceneView id="vtkMRMLSceneViewNode1" name="View 1">
  <Volume id="vtkMRMLScalarVolumeNode1" name="abdomen" storageNodeRef="vtkMRMLVolumeArchetypeStorageNode1"></Volume>
 </SceneView>
</MRML>
"""


def test_a_scene_from_before_slicer_4_3(ct, tmp_path):
    """Storage named by `storageNodeRef`, label maps marked `labelMap="1"`, file names not encoded, and a
    scene view holding a copy of the CT's node (one CT, not two)."""
    (tmp_path / "ct 100%41.nrrd").write_bytes(b"")
    (tmp_path / "scene.mrml").write_text(OLD_SCENE.format(ct="ct 100%41.nrrd"))
    assert [v.name for v in scene_volumes(tmp_path / "scene.mrml")] == ["abdomen"]
    assert choose_scene_volume(tmp_path / "scene.mrml") == tmp_path / "ct 100%41.nrrd"  # not 'ct 100A.nrrd'


@pytest.mark.parametrize("text, fragment", [
    ("<MRML><Volume id='v' name='CT'", "is not a readable 3d slicer scene"),
    ("<svg></svg>", "is an xml file but not a 3d slicer scene (its root is <svg>)"),
    ("<MRML><LabelMapVolume id='l' name='labels'/></MRML>", "a 3d slicer scene without a scalar volume"),
    ("<MRML><Volume id='v' name='CT' references='display:d1;'/></MRML>",
     "volume 'ct' has no file (it names no storage node)"),
    # found by `tools/damage_inputs.py --kind scene`: a reference or a file name damaged was told as "has no file"
    ("<MRML><Volume id='v' name='CT' references='storage:s9;'/><VolumeArchetypeStorage id='s1' fileName='ct.nrrd'/>"
     "</MRML>", "volume 'ct' has no file (its storage node 's9' is not in the scene)"),
    ("<MRML><Volume id='v' name='CT' references='storage:s1;'/><VolumeArchetypeStorage id='s1'/></MRML>",
     "volume 'ct' has no file (its storage node 's1' names no file)"),
    (OLD_SCENE.format(ct="missing.nrrd"), "volume 'abdomen' has no file (missing.nrrd is missing)"),
    (OLD_SCENE.format(ct="ct.vtk"), "volume 'abdomen' is stored as ct.vtk, which cannot be read here"),
])
def test_a_broken_scene_is_refused_in_one_line_naming_it(text, fragment, tmp_path):
    (tmp_path / "ct.vtk").write_bytes(b"# vtk DataFile Version 3.0\n")
    (tmp_path / "scene.mrml").write_text(text)
    with pytest.raises(InputError) as raised:
        find_input_ct(tmp_path / "scene.mrml")
    message = str(raised.value)
    assert fragment in message.lower() and "scene.mrml" in message and "\n" not in message


@pytest.mark.parametrize("reference, file_name, told", [
    ("st2", "corrected.seg.nrrd", "its storage node 'st2' is a VolumeArchetypeStorage, which saves no segmentation"),
    ("st1", "labels%20map.nrrd", "its storage node names labels map.nrrd, which the VolumeArchetypeStorage node "
                                 "'st2' saves")])
def test_a_segmentation_whose_storage_names_a_volumes_file_is_refused(tmp_path, reference, file_name, told):
    """Found by `tools/damage_inputs.py --kind scene`, seeds 12002 and 13005: a segmentation node whose
    storage reference, or whose storage node's file name, was damaged to name the label map's was
    measured as that label map, another lesion table without a word."""
    (tmp_path / "labels map.nrrd").write_bytes(b"")
    (tmp_path / "scene.mrml").write_text(
        f"<MRML><Segmentation id='s' name='corrected' references='storage:{reference};'/>"
        f"<SegmentationStorage id='st1' fileName='{file_name}'/>"
        "<VolumeArchetypeStorage id='st2' fileName='labels%20map.nrrd'/></MRML>")
    with pytest.raises(InputError) as raised:
        choose_scene_segmentation(tmp_path / "scene.mrml")
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "scene.mrml"))
    assert f"the 3D Slicer scene's segmentation 'corrected' has no file ({told})" in message


def test_segment_a_scene_bundle_from_the_command_line(ct, tmp_path, model_path):
    bundle = slicer_scene_bundle(ct, tmp_path / "study.mrb")
    assert main(["segment", str(bundle), "-o", str(tmp_path / "out.nii.gz"), "--model", str(model_path),
                 "--progress", "none"]) == 0
    import SimpleITK as sitk

    written = sitk.ReadImage(str(tmp_path / "out.nii.gz"))
    assert written.GetSize() == ct.shape[::-1] and np.allclose(written.GetSpacing(), ct.spacing)


def liver_and_lesion(ct):
    """A box of liver on the real CT with a box of lesion inside it."""
    liver, lesion = np.zeros(ct.shape, np.uint8), np.zeros(ct.shape, np.uint8)
    liver[10:40, 150:350, 100:300] = 1
    lesion[20:30, 200:240, 150:190] = 1
    return ct.with_array(liver), ct.with_array(lesion)


def test_measure_a_scene_bundle_measures_its_segmentation(ct, tmp_path):
    """A reader's corrected segmentation saved with its CT in a .mrb: `measure scene.mrb` measures it."""
    import csv

    liver, lesion = liver_and_lesion(ct)
    bundle = slicer_scene_bundle(ct, tmp_path / "corrected.mrb", segmentations=[(liver, lesion)])
    assert main(["measure", str(bundle), "--lesions", str(tmp_path / "lesions.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "lesions.csv")))
    volume_ml = next(value for key, value in rows[0].items() if "volume" in key.lower() and "ml" in key.lower())
    assert len(rows) == 1
    assert float(volume_ml) == pytest.approx(lesion.array.sum() * np.prod(ct.spacing) / 1000, rel=1e-3)


def test_measure_a_scene_with_two_segmentations_or_none_asks_which(ct, tmp_path, capsys):
    liver, lesion = liver_and_lesion(ct)
    two = slicer_scene_bundle(ct, tmp_path / "two.mrb", segmentations=[(liver, lesion), (liver, lesion)])
    none = slicer_scene_bundle(ct, tmp_path / "none.mrb")
    for given, message in [
            (two, "two.mrb/two/two.mrml: is a 3D Slicer scene with 2 segmentations: 'Segmentation 1'; "
                  "'Segmentation 2'"),
            (none, "none.mrb/none/none.mrml: is a 3D Slicer scene without a segmentation. Save the scene with its "
                   "segmentation"),
            (sample_case_path(), "is not a 3D Slicer scene, and no segmentation was given")]:
        assert main(["measure", str(given), "--lesions", str(tmp_path / "lesions.csv")]) == 3
        assert message in capsys.readouterr().err
    assert not (tmp_path / "lesions.csv").exists()


def test_measure_the_segmentation_a_scene_holds_under_a_given_name(ct, tmp_path, capsys):
    """A reader who kept the tool's result and a corrected copy names the one to measure after the scene."""
    import csv

    liver, lesion = liver_and_lesion(ct)
    smaller = lesion.with_array(np.zeros_like(lesion.array))
    smaller.array[22:26, 200:220, 150:170] = 1
    bundle = slicer_scene_bundle(ct, tmp_path / "two.mrb", segmentations=[(liver, lesion), (liver, smaller)])
    table = tmp_path / "lesions.csv"
    assert main(["measure", str(bundle), "segmentation 2", "--lesions", str(table)]) == 0
    volume_ml = next(value for key, value in next(csv.DictReader(open(table))).items() if "ml" in key.lower())
    assert float(volume_ml) == pytest.approx(smaller.array.sum() * np.prod(ct.spacing) / 1000, rel=1e-3)
    table.unlink()
    assert main(["measure", str(bundle), "Segmentation 3", "--lesions", str(table)]) == 3
    assert ("no segmentation is named 'Segmentation 3' in the 3D Slicer scene; it holds 'Segmentation 1'; "
            "'Segmentation 2'. Nor is it a file") in capsys.readouterr().err
    assert not table.exists()


def test_a_probability_map_saved_before_its_role_was_is_not_taken_for_a_ct(ct, tmp_path):
    """Scenes saved before the probability map carried its role attribute: the panel's name tells it."""
    slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    from LiverLesionSegLib import mrml

    scene = slicer.vtkMRMLScene()
    mrml.add_volume_node(scene, ct, "CT")
    mrml.add_volume_node(scene, ct.with_array(np.zeros(ct.shape, np.float32)), "Lesion probability_1")
    (tmp_path / "work").mkdir()
    scene.SetRootDirectory(str(tmp_path / "work"))
    assert scene.WriteToMRB(str(tmp_path / "old.mrb"))
    with find_input_ct(tmp_path / "old.mrb") as found:
        assert [volume.name for volume in scene_volumes(found.scene)] == ["CT"]
        assert found.image.name == "CT.nrrd"


def test_scenes_as_training_cases_bundles_and_scene_folders(ct, tmp_path):
    """Scenes a reader corrected and saved, as training or reference cases: .mrb bundles in a folder,
    and a scene saved beside its data, each its CT with its segmentation."""
    import zipfile

    from LiverLesionSegLib.io.cases import find_cases, load_case

    liver, lesion = liver_and_lesion(ct)
    (tmp_path / "cases").mkdir()
    slicer_scene_bundle(ct, tmp_path / "cases" / "patient 1.mrb", segmentations=[(liver, lesion)])
    bundle = slicer_scene_bundle(ct, tmp_path / "patient 2.mrb", segmentations=[(liver, lesion)])
    zipfile.ZipFile(bundle).extractall(tmp_path / "cases" / "patient 2")
    refs = find_cases([tmp_path / "cases"])
    assert [(ref.name, ref.kind) for ref in refs] == [("patient 1", "slicer-scene"), ("patient 2", "slicer-scene")]
    for ref in refs:
        case = load_case(ref)
        assert case.ct.same_grid(ct) and np.array_equal(case.ct.array, ct.array)
        assert np.array_equal(case.liver.array, liver.array) and np.array_equal(case.lesion.array, lesion.array)
    assert [ref.kind for ref in find_cases([bundle])] == ["slicer-scene"]


def test_train_on_scene_bundles_and_refuse_one_without_a_segmentation(ct, tmp_path, capsys):
    liver, lesion = liver_and_lesion(ct)
    (tmp_path / "cases").mkdir()
    for name in ("a", "b"):
        slicer_scene_bundle(ct, tmp_path / "cases" / f"{name}.mrb", segmentations=[(liver, lesion)])
    assert main(["train", str(tmp_path / "cases"), "--out", str(tmp_path / "run"), "--cycles", "1", "--epochs", "1",
                 "--max-slices-per-epoch", "8", "--progress", "none"]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
    slicer_scene_bundle(ct, tmp_path / "cases" / "c.mrb")
    assert main(["train", str(tmp_path / "cases"), "--out", str(tmp_path / "refused"), "--cycles", "1",
                 "--epochs", "1", "--progress", "none"]) == 3
    assert "c.mrb/c/c.mrml: is a 3D Slicer scene without a segmentation" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_a_volume_under_a_transform_is_read_as_stored_with_a_warning(ct, tmp_path, caplog):
    """A CT a registration moved in the scene: its file holds it unmoved, and the outputs lie there."""
    bundle = slicer_scene_bundle(ct, tmp_path / "registered.mrb", moved_mm=10.0)
    with find_input_ct(bundle) as found:
        assert found.read().same_grid(ct)
    assert "places the volume 'CT' under the transform 'Registration'" in caplog.text
    caplog.clear()
    with find_input_ct(slicer_scene_bundle(ct, tmp_path / "plain.mrb")):
        pass
    assert "transform" not in caplog.text


def test_a_node_without_an_id_is_not_taken_for_the_transform_of_the_others(tmp_path, caplog):
    """Found removing each attribute of a Slicer scene's nodes in turn: a display node saved without its
    id was taken for the transform of every node that names none ("the scene places the volume 'CT'
    under the transform 'VolumeDisplay'"), a warning of a registration that is not there."""
    (tmp_path / "ct.nrrd").write_bytes(b"")
    (tmp_path / "scene.mrml").write_text(
        "<MRML><Volume id='v' name='CT' references='display:d;storage:s;'/><VolumeDisplay name='VolumeDisplay'/>"
        "<VolumeArchetypeStorage id='s' fileName='ct.nrrd'/></MRML>")
    assert choose_scene_volume(tmp_path / "scene.mrml") == tmp_path / "ct.nrrd"
    assert "transform" not in caplog.text
