"""The Slicer logic on real MRML classes (the `slicer-core` wheel) with a real shared CT case.

A crop of 3D-IRCADb 3Dircadb1.17 (32 slices through its liver and both lesions) goes into a
volume node, through the logic, and out as a segmentation node, a lesion table and a probability
volume, each checked against the core's own output for the same CT. The bodies of the checks are
in `slicer_logic_cases.py`, which the module's Slicer self-test runs too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")

import slicer_logic_cases as cases  # noqa: E402
from shared_cases import every_shared_case  # noqa: E402
from LiverLesionSegLib import mrml, mrml_export  # noqa: E402
from LiverLesionSegLib.errors import InputError  # noqa: E402
from LiverLesionSegLib.parameters import SegmentParameters  # noqa: E402
from LiverLesionSegLib.segments import LIVER  # noqa: E402

RECORDED_PROGRESS = Path(__file__).resolve().parents[1] / "Data" / "training_progress.jsonl"
FIRST_SLICE, SLICES = 80, 32  # 3Dircadb1.17: lesions on slices 78-113, liver on 1-113


@pytest.fixture(scope="module")
def case(data_dir):
    from LiverLesionSegLib.io.cases import find_cases, load_case

    full = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    return {name: cases.crop_slices(volume, FIRST_SLICE, SLICES)
            for name, volume in (("ct", full.ct), ("liver", full.liver), ("lesion", full.lesion))}


@pytest.fixture(scope="module")
def core(case, model_path):
    return cases.core_segmentation(case["ct"], model_path)


@pytest.fixture(scope="module")
def axial_run(case, model_path):
    return cases.run_logic(slicer.vtkMRMLScene(), case["ct"], model_path)


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


def test_volume_node_keeps_voxels_and_geometry(axial_run):
    cases.check_input_node_geometry(axial_run)


def test_segments_names_terminology_reference(axial_run):
    cases.check_segments(axial_run)


def test_segment_voxels_equal_core_output(axial_run, core):
    cases.check_masks_match_core(axial_run, core)
    cases.check_physical_points_match(axial_run, core)


def test_a_liver_cut_by_the_crop_is_told_in_the_panel_and_on_the_node(axial_run, core):
    """The crop (slices 80-111 of a liver on 1-113) cuts the liver at both ends of the scan."""
    cases.check_cautions(axial_run, core)
    assert len(core.caveats) == 1 and "reaches the scan's lower and upper end" in core.caveats[0]
    assert axial_run.outputs.cautions.startswith("\nCaution: the liver reaches")


def test_probability_volume(axial_run, core):
    cases.check_probability_volume(axial_run, core)


def test_lesion_table(axial_run, core):
    cases.check_lesion_table(axial_run, core)


def test_long_axis_lines(axial_run):
    cases.check_long_axis_lines(axial_run)


def test_reoriented_volume_lands_on_same_physical_points(case, core, model_path, scene):
    """The same CT stored in another voxel order (axes permuted and flipped, so the IJKToRAS
    direction is not the identity and the 1.6 mm slice spacing lies along i): the segments sit on
    the same RAS points as the core's output for the axial original, and equal the core's output
    for the reoriented volume voxel for voxel."""
    reoriented = cases.reoriented(case["ct"], axes=(1, 2, 0), flips=(True, False, True))
    assert not np.allclose(reoriented.direction, np.eye(3))
    assert reoriented.spacing[0] == pytest.approx(case["ct"].spacing[2])  # the slice step now runs along i
    run = cases.run_logic(scene, reoriented, model_path)
    cases.check_input_node_geometry(run)
    cases.check_segments(run)
    cases.check_physical_points_match(run, core)
    cases.check_masks_match_core(run, cases.core_segmentation(reoriented, model_path))
    assert run.outputs.caveats == core.caveats  # the ends of the scan are the patient's, not the array's


def test_oblique_grid_segments_and_probability(case, scene):
    """Real masks on an oblique grid (turned 25 degrees) with three different spacings."""
    def oblique(volume):
        return cases.rotated(volume, 25.0, spacing=(0.7, 0.9, 2.0))

    cases.check_oblique_segments(scene, oblique(case["ct"]), oblique(case["liver"]), oblique(case["lesion"]))


def test_seg_nrrd_round_trip(axial_run, tmp_path):
    path = cases.check_seg_nrrd_round_trip(axial_run, tmp_path)
    assert path.stat().st_size > 0


def test_outputs_come_back_when_the_scene_is_saved_and_reopened(axial_run, tmp_path):
    cases.check_saved_scene_reopens(axial_run, tmp_path)


def test_existing_segmentation_replaced_only_when_chosen(axial_run, core):
    cases.check_existing_segmentation_kept(axial_run.scene, axial_run, core)


def test_cancel_leaves_scene_unchanged_and_device_fallback_is_said(case, model_path, scene):
    import torch

    device = "cpu" if torch.cuda.is_available() else "cuda"  # without CUDA, asking for it falls back
    events = cases.check_cancel_leaves_scene_unchanged(scene, case["ct"], model_path, device)
    logged = [e["message"] for e in events if e["event"] == "log"]
    assert "Running on CPU." in logged
    if device == "cuda":
        assert any("CUDA was asked for" in m and "running on the CPU" in m for m in logged), logged


def test_progress_events_become_bar_and_status():
    from LiverLesionSegLib.segment_job import progress_percent, stage_text

    model = {"event": "progress", "stage": "model", "done": 10, "total": 40}
    assert progress_percent({"event": "stage", "stage": "load model", "state": "start"}) == 0
    assert progress_percent(model) == 36 and stage_text(model) == "Running the network: 10 of 40 slices"
    assert progress_percent({"event": "stage", "stage": "postprocess", "state": "end"}) == 100
    assert progress_percent({"event": "log", "message": "x"}) is None


def test_a_pass_of_several_maps_its_events_into_its_share_of_the_stage():
    """The second half of the box's pass (itself the stage's share 0.4 to 1) is at 0.7 to 1: its events
    carry that fraction, the bar follows it, and a cancel reaches the outer job."""
    from LiverLesionSegLib.progress import CallbackProgress
    from LiverLesionSegLib.segment_job import progress_percent

    events: list[dict] = []
    job = CallbackProgress(events.append)
    second_half = job.part(0.4, 1).part(0.5, 1)
    with second_half.stage("model"):
        second_half.emit({"event": "progress", "stage": "model", "done": 10, "total": 40})
    assert [e.get("fraction") for e in events] == pytest.approx([0.7, 0.775, 1.0])
    assert [progress_percent(e) for e in events] == [65, 70, 85]  # the network's stage is 20 to 85 %
    second_half.cancel()
    assert job.cancelled


def test_removed_or_changed_input_is_refused_and_deleted_outputs_fall_back(axial_run, core):
    scene = axial_run.scene
    other_scene = slicer.vtkMRMLScene()
    stray = mrml.add_volume_node(other_scene, axial_run.ct, "elsewhere")
    with pytest.raises(InputError, match="removed from the scene"):
        mrml.write_outputs(scene, stray, core)
    changed = mrml.add_volume_node(scene, cases.crop_slices(axial_run.ct, 0, 8), "changed while running")
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="changed while it was being segmented"):
        mrml.write_outputs(scene, changed, core)
    assert scene.GetNumberOfNodes() == before
    deleted = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "deleted while running")
    scene.RemoveNode(deleted)
    outputs = mrml.write_outputs(scene, axial_run.input_node, core, output_segmentation=deleted)
    assert outputs.segmentation_node is not deleted and outputs.segmentation_node.GetScene() is scene


def test_an_output_segmentation_made_without_a_display_node_gets_one(axial_run, core):
    """A segmentation node a script added (no display node) chosen as the output: the panel's showing
    of the result failed on its missing display node; now the result brings one."""
    scene = axial_run.scene
    bare = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "made by a script")
    assert bare.GetDisplayNode() is None
    outputs = mrml.write_outputs(scene, axial_run.input_node, core, output_segmentation=bare)
    assert outputs.segmentation_node is bare and bare.GetDisplayNode() is not None
    assert bare.GetSegmentation().GetNumberOfSegments() == 2


def test_training_charts_from_recorded_progress(scene):
    events = [json.loads(line) for line in RECORDED_PROGRESS.read_text().splitlines() if line.strip()]
    assert sum(e["event"] == "step" for e in events) >= 10 and any(e["event"] == "done" for e in events)
    charts = cases.check_training_charts(scene, events)
    assert charts.boundary_steps() == [6.5]  # the recorded run: 2 cycles of 6 steps


def test_scene_pair_exported_for_training(case, scene, tmp_path):
    cases.check_export_training_pair(scene, case["ct"], case["liver"], case["lesion"], tmp_path)


def test_segmentation_compared_with_a_reference_in_the_scene(case, core, scene):
    cases.check_comparison_with_reference(scene, case["ct"], core, case["liver"], case["lesion"])


def test_export_without_liver_segment_says_so(case, scene, tmp_path):
    volume_node = mrml.add_volume_node(scene, case["ct"], "CT")
    segmentation = mrml.new_segmentation_node(scene, "Only vessels")
    vein = mrml.make_segment(LIVER, case["liver"])
    vein.SetName("Hepatic vein")
    segmentation.GetSegmentation().AddSegment(vein, "vessels")
    with pytest.raises(InputError, match="no liver segment .*Hepatic vein"):
        mrml_export.export_training_pair(volume_node, segmentation, tmp_path)
    assert not any(tmp_path.iterdir()), "a failed export left files behind"


def test_the_panels_job_votes_with_the_models_listed(case, model_path, other_model, scene):
    """The Segment panel's path (parameter node -> job in a thread) with two more models listed:
    they outvote the model chosen above, each with the panel's lesion threshold."""
    from LiverLesionSegLib.segment_job import run_segmentation

    parameters = SegmentParameters(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LiverLesionSeg"))
    parameters.input_volume = mrml.add_volume_node(scene, case["ct"], "CT")
    parameters.model, parameters.device = str(model_path), "cpu"
    parameters.vote_models = [str(other_model), str(other_model)]
    job, _ = mrml.start_segmentation(parameters)
    assert job.wait(900) and job.error is None, job.error
    assert "Majority vote of 3 models." in [event.get("message") for event in job.poll()]
    alone = run_segmentation(case["ct"], model_path, "cpu", parameters.lesion_threshold)[0]
    other = run_segmentation(case["ct"], other_model, "cpu", parameters.lesion_threshold)[0]
    assert not np.array_equal(alone.liver.array, other.liver.array)
    assert not np.array_equal(alone.lesion.array, other.lesion.array)
    assert np.array_equal(job.result.label_map(), other.label_map())


def test_a_mask_loaded_as_a_scalar_volume_is_refused_as_the_ct(case, scene):
    parameters = SegmentParameters(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LiverLesionSeg"))
    labels = case["liver"].array.astype(np.int16) + case["lesion"].array  # 0, 1 liver, 2 lesion
    parameters.input_volume = mrml.add_volume_node(scene, case["ct"].with_array(labels), "liver mask")
    with pytest.raises(InputError, match="liver mask: holds only the values 0, 1, 2: a label map or mask, not a CT"):
        mrml.start_segmentation(parameters)


def test_parameters_survive_a_saved_scene(scene, tmp_path):
    """The Segment panel's settings live in the parameter node: saved with the scene and read
    back from the .mrml file."""
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "chosen output")
    probability = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "probability")
    parameters = SegmentParameters(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LiverLesionSeg"))
    assert (parameters.model, parameters.device, parameters.lesion_threshold) == ("bundled", "auto", 0.5)
    # the model's clean-up
    assert not (parameters.keep_edge_lesions or parameters.keep_fluid_lesions or parameters.keep_liver_density_lesions)
    assert parameters.output_segmentation is None  # default: create a new segmentation
    assert parameters.vote_models == []  # default: the model alone
    parameters.keep_edge_lesions = parameters.keep_fluid_lesions = parameters.keep_liver_density_lesions = True
    parameters.input_volume, parameters.output_segmentation, parameters.probability_volume = volume, output, probability
    parameters.model, parameters.device, parameters.lesion_threshold = "/models/run/model.safetensors", "cuda", 0.35
    parameters.vote_models = ["/models/seed 1/model.safetensors", "/models/seed 2/model.safetensors"]
    with pytest.raises(ValueError):
        parameters.device = "tpu"
    with pytest.raises(ValueError):
        parameters.lesion_threshold = 1.5

    scene.SetRootDirectory(str(tmp_path))
    scene.SetURL(str(tmp_path / "scene.mrml"))
    assert scene.Commit()
    restored_scene = slicer.vtkMRMLScene()
    restored_scene.SetURL(str(tmp_path / "scene.mrml"))
    assert restored_scene.Connect()
    restored = SegmentParameters(restored_scene.GetFirstNodeByName("LiverLesionSeg"))
    assert restored.input_volume.GetName() == "CT"
    assert restored.output_segmentation.GetName() == "chosen output"
    assert restored.probability_volume.GetName() == "probability"
    assert (restored.model, restored.device, restored.lesion_threshold) == ("/models/run/model.safetensors", "cuda", 0.35)
    assert restored.keep_edge_lesions is True and restored.keep_fluid_lesions is True
    assert restored.keep_liver_density_lesions is True
    assert restored.vote_models == ["/models/seed 1/model.safetensors", "/models/seed 2/model.safetensors"]
    restored.output_segmentation = None
    assert restored.output_segmentation is None


@pytest.mark.slow
@pytest.mark.parametrize("name, folder", every_shared_case())
def test_logic_segments_every_shared_case_like_the_core(name, folder, model_path, core_segmentation):
    """Every whole shared case through the Slicer logic (with the bundled model when it exists):
    the segments hold exactly the core's voxels."""
    ct, core = core_segmentation(folder)
    run = cases.run_logic(slicer.vtkMRMLScene(), ct, model_path, name)
    cases.check_segments(run)
    cases.check_masks_match_core(run, core)
    cases.check_cautions(run, core)
    assert any("55 HU" in caveat for caveat in core.caveats) == (name == "RadCTTACEomics_1211")


def test_sample_case_loads_as_a_volume_node(scene):
    """What the Sample Data module loads: the bundled DICOM sample, on the reader's own grid."""
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.resources import sample_case_path

    node = mrml.load_sample_case(scene)
    expected = read_input_volume(sample_case_path())
    loaded = mrml.volume_from_node(node)
    assert node.GetName() == mrml.SAMPLE_NODE_NAME
    assert loaded.same_grid(expected) and np.array_equal(loaded.array, expected.array)
    assert node.GetDisplayNode().GetWindow() == 350


def test_segmentation_job_logs_how_long_each_stage_took(case, model_path):
    """What the panel's status line and Slicer's log show after a segmentation."""
    from LiverLesionSegLib.progress import CallbackProgress
    from LiverLesionSegLib.segment_job import run_segmentation

    events = []
    result, device = run_segmentation(case["ct"], model_path, "cpu", None, CallbackProgress(events.append))
    logged = [e["message"] for e in events if e["event"] == "log"]
    assert logged[0] == "Running on CPU." and logged[-1].startswith("Segmented in load model ")
    for stage in ("preprocess", "model", "postprocess", "total"):
        assert f"{stage} " in logged[-1]
    assert set(result.timings) == {"load model", "preprocess", "model", "postprocess"}


@pytest.mark.parametrize("option", ["keep_edge_lesions", "keep_fluid_lesions", "keep_liver_density_lesions"])
def test_keeping_edge_fluid_or_liver_density_lesions_turns_that_clean_up_rule_off(data_dir, tmp_path, option):
    """The panel's "Keep lesions at the liver's edge", "Keep lesions of fluid density" and "Keep
    lesions of liver density": the bundled model's clean-up drops a lesion of RadCTTACEomics_0697 of
    fluid density and one of its liver's density, and its weights with the rule on the liver around a
    lesion at 60 % (not 40 %) drop one with little liver around it; with the box ticked the segment
    keeps that one (the lesion the first rule drops is fluid too: fluid lesions are kept in both runs
    there)."""
    from LiverLesionSegLib.checkpoint import load_checkpoint, save_checkpoint
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.resources import bundled_model_path
    from LiverLesionSegLib.segments import LESION

    model = bundled_model_path()
    if option == "keep_edge_lesions":
        bundled = load_checkpoint(model)
        bundled.config.inference.min_liver_around_lesion = 0.6
        model = save_checkpoint(tmp_path / "stricter.safetensors", bundled.network, bundled.config, bundled.state)
    ct = read_input_volume(data_dir / "tace" / "RadCTTACEomics_0697")
    lesions = {}
    for keep in (False, True):
        scene = slicer.vtkMRMLScene()
        outputs = mrml.segment_volume_node(scene, mrml.add_volume_node(scene, ct, "CT"), model, "cpu",
                                           **{"keep_fluid_lesions": option == "keep_edge_lesions", option: keep})
        lesions[keep] = mrml.segment_mask(outputs.segmentation_node, LESION.segment_id, ct) > 0
    assert lesions[False].any() and lesions[False].sum() < lesions[True].sum()
    assert not (lesions[False] & ~lesions[True]).any()


def test_the_panels_job_takes_its_settings_from_the_parameter_node(data_dir, scene):
    """What Apply starts: the input copied from its node, the panel's settings passed on, and the
    result written to the chosen nodes."""
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.segments import LESION

    ct = read_input_volume(data_dir / "tace" / "RadCTTACEomics_0697")
    parameters = SegmentParameters(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "LiverLesionSeg"))
    parameters.input_volume = mrml.add_volume_node(scene, ct, "CT")
    parameters.device, parameters.lesion_threshold, parameters.keep_edge_lesions = "cpu", 0.5, True
    parameters.keep_fluid_lesions = True
    job, targets = mrml.start_segmentation(parameters)
    assert job.wait(300) and job.error is None
    assert (job.lesion_threshold, job.keep_edge_lesions, job.keep_fluid_lesions) == (0.5, True, True)
    outputs = mrml.write_outputs(scene, targets["input"], job.result, targets["output"], targets["probability"])
    kept = mrml.segment_mask(outputs.segmentation_node, LESION.segment_id, ct) > 0
    assert np.array_equal(kept, job.result.lesion.array > 0) and kept.any()
