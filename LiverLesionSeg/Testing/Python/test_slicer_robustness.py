"""The Slicer side of "nothing lost": what test_mrml.py and test_training_process.py do not
already cover.

- A segmentation cancelled, or failed, while the user had chosen an existing segmentation and a
  probability volume as outputs leaves those nodes and the whole scene as they were, and a failure
  is one of the project's errors (the panel shows its one line, not a traceback).
- Training cancelled from the panel at the worst moment, while a checkpoint is being written:
  the process ends cleanly (SIGTERM is taken like Ctrl-C), leaves no temporary file, the previous
  checkpoint intact and loadable, and the model list as it was.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.errors import Cancelled, LiverLesionSegError, ModelError, ResourceError
from LiverLesionSegLib.segment_job import SegmentationJob
from LiverLesionSegLib.train import LAST
from LiverLesionSegLib.training_process import ModelCatalogue, ModelEntry, TrainingProcess, TrainingSettings

import bad_inputs

TIMEOUT_S = 180


@pytest.fixture(scope="module")
def ct(data_dir):
    """Eight real slices of 3Dircadb1.17 through its liver."""
    return bad_inputs.labelled_slices(data_dir)[0]


@pytest.fixture
def scene_with_chosen_outputs(ct):
    """A scene as a user leaves it before pressing Apply: the CT, their own segmentation chosen as
    the output to replace, and a probability volume chosen for the map."""
    slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    from LiverLesionSegLib import mrml
    from LiverLesionSegLib.segments import LIVER

    scene = slicer.vtkMRMLScene()
    input_node = mrml.add_volume_node(scene, ct, "CT")
    mine = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my corrected segmentation")
    segment = mrml.make_segment(LIVER, ct.with_array((ct.array > 100).astype(np.uint8)))
    segment.SetName("My edits")
    mine.GetSegmentation().AddSegment(segment, "mine")
    probability = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "probability")
    return scene, input_node, mine, probability


def fingerprint(scene) -> tuple:
    """Every node's ID and modification time: any change to any node changes it."""
    nodes = scene.GetNodes()
    return tuple((nodes.GetItemAsObject(n).GetID(), nodes.GetItemAsObject(n).GetMTime())
                 for n in range(nodes.GetNumberOfItems()))


def run_job_as_the_panel_does(scene, input_node, output, probability, model, cancel: bool = False):
    """Start the background job, cancel it once the network runs (if asked), and write into the
    scene only when it ended with a result, as the panel's timer does."""
    from LiverLesionSegLib import mrml

    job = SegmentationJob(mrml.volume_from_node(input_node), str(model), "cpu").start()
    events: list[dict] = []
    deadline = time.monotonic() + TIMEOUT_S
    while cancel and not job.done and not any(e.get("stage") == "model" for e in events):
        assert time.monotonic() < deadline, "the job never reached the network"
        events += job.poll()
        time.sleep(0.01)
    if cancel:
        job.cancel()
    assert job.wait(TIMEOUT_S)
    if job.error is None:
        mrml.write_outputs(scene, input_node, job.result, output_segmentation=output, probability_node=probability)
    return job


def test_cancelled_segmentation_leaves_the_chosen_outputs_as_they_were(scene_with_chosen_outputs, model_path):
    from LiverLesionSegLib import mrml

    scene, input_node, mine, probability = scene_with_chosen_outputs
    before, my_voxels = fingerprint(scene), mrml.segment_mask(mine, "mine", mrml.volume_from_node(input_node)).sum()
    job = run_job_as_the_panel_does(scene, input_node, mine, probability, model_path, cancel=True)
    assert isinstance(job.error, Cancelled) and job.result is None
    assert fingerprint(scene) == before, "cancelling changed the scene"
    assert mrml.segment_ids(mine) == ["mine"]
    assert mrml.segment_mask(mine, "mine", mrml.volume_from_node(input_node)).sum() == my_voxels
    assert probability.GetImageData() is None  # never filled


@pytest.mark.parametrize("fault", ["truncated model", "too little memory"])
def test_failed_segmentation_is_one_line_and_changes_nothing(fault, scene_with_chosen_outputs, model_path, tmp_path,
                                                              monkeypatch):
    scene, input_node, mine, probability = scene_with_chosen_outputs
    model = model_path
    if fault == "truncated model":
        model = tmp_path / "copied.safetensors"
        model.write_bytes(model_path.read_bytes()[:100_000])
    else:
        from LiverLesionSegLib import memory

        monkeypatch.setattr(memory, "available_bytes", lambda: 32 * 2**20)  # simulated: 32 MiB free
    before = fingerprint(scene)
    job = run_job_as_the_panel_does(scene, input_node, mine, probability, model)
    assert isinstance(job.error, ModelError if fault == "truncated model" else ResourceError), repr(job.error)
    assert isinstance(job.error, LiverLesionSegError) and "\n" not in str(job.error)  # the panel shows str()
    assert fingerprint(scene) == before, "a failed segmentation changed the scene"


def test_training_cancelled_while_a_checkpoint_is_written_keeps_everything(data_dir, model_path, tmp_path):
    case = bad_inputs.small_case(data_dir, tmp_path / "case")
    catalogue = ModelCatalogue(tmp_path / "models.json")
    catalogue.add(ModelEntry("earlier", str(model_path), "2026-01-01T00:00:00"))
    listed = catalogue.path.read_bytes()
    # Four epochs: four checkpoint writes to catch one of, after the first is on disk.
    settings = TrainingSettings([str(case)], cycles=1, epochs_per_cycle=4, start_from="scratch", device="cpu",
                                extra=["--max-slices-per-epoch", "4", "--batch-size", "2", "--size", "64"])
    process = TrainingProcess(settings, tmp_path / "runs", catalogue).start()
    run = process.run_dir
    wait = Waiter(process)
    wait.until(lambda: (run / LAST).is_file(), "the first checkpoint")
    first = bad_inputs.file_digest(run / LAST)
    wait.until(lambda: [p for p in run.glob(f".{LAST}.*") if ".partial" in p.name], "a later checkpoint write")
    process.cancel()
    events = process.poll()

    assert process.state == "cancelled" and process.returncode == 130, (process.returncode, events[-3:])
    assert [p.name for p in run.iterdir() if ".partial" in p.name] == [], "a temporary file was left behind"
    # The previous checkpoint as it was; or, had the signal come just after the rename, the new one, whole.
    last = load_checkpoint(run / LAST)
    assert bad_inputs.file_digest(run / LAST) == first or last.state["epoch"] >= 2
    assert catalogue.path.read_bytes() == listed and process.model_entry is None
    assert not (run / "model.safetensors").exists()
    assert any(e.get("event") == "error" and "interrupted" in e.get("message", "") for e in events)


class Waiter:
    def __init__(self, process: TrainingProcess):
        self.process = process

    def until(self, condition, what: str):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            assert self.process.running, f"training ended before {what}: {self.process.poll()[-3:]}"
            time.sleep(0.002)
        self.process.cancel()
        pytest.fail(f"timed out waiting for {what}")
