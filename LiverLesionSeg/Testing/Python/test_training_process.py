"""The Training panel's background process, run for real: `python -m LiverLesionSegLib train` on
a case exported from the scene (a crop of 3D-IRCADb 3Dircadb1.17 with its true masks), its JSON
progress read live into the chart nodes, the new model added to the catalogue, and a cancelled
run leaving the earlier models and its own last checkpoint intact."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")

import slicer_logic_cases as cases  # noqa: E402
from LiverLesionSegLib import mrml_tables  # noqa: E402
from LiverLesionSegLib.cli import build_parser  # noqa: E402
from LiverLesionSegLib.mrml_charts import TrainingCharts  # noqa: E402
from LiverLesionSegLib.slice_store import STORE_FOLDER  # noqa: E402
from LiverLesionSegLib.training_process import (ModelCatalogue, ModelEntry, TrainingProcess,  # noqa: E402
                                                TrainingSettings, describe_event, format_eta, parse_progress_line,
                                                step_percent, step_text)

QUICK = ["--max-slices-per-epoch", "4", "--batch-size", "2"]  # two steps an epoch
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def scene_case(data_dir, tmp_path_factory) -> Path:
    """A CT + corrected segmentation pair from the scene, exported as the training panel does."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    full = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    ct, liver, lesion = (cases.crop_slices(v, 88, 16) for v in (full.ct, full.liver, full.lesion))
    return cases.check_export_training_pair(slicer.vtkMRMLScene(), ct, liver, lesion,
                                            tmp_path_factory.mktemp("scene-cases"))


@pytest.fixture
def catalogue_with_earlier_model(tmp_path, model_path) -> ModelCatalogue:
    catalogue = ModelCatalogue(tmp_path / "models.json")
    catalogue.add(ModelEntry("earlier", str(model_path), "2026-01-01T00:00:00"))
    return catalogue


def poll_until(process: TrainingProcess, stop, timeout: float = TIMEOUT_S) -> list[dict]:
    """Poll as the panel's timer does, until `stop(events so far)` or the process ends."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += process.poll()
        if stop(events) or (not process.running and process.state != "running"):
            return events
        time.sleep(0.1)
    process.cancel()
    pytest.fail(f"training did not get there in {timeout} s; events: {events[-5:]}")


def test_training_run_adds_its_model_and_keeps_earlier_ones(scene_case, catalogue_with_earlier_model, model_path,
                                                            tmp_path):
    earlier_digest = cases.file_digest(model_path)
    settings = TrainingSettings([str(scene_case)], cycles=2, epochs_per_cycle=1, start_from="scratch",
                                device="cpu", extra=QUICK + ["--size", "64"])
    scene = slicer.vtkMRMLScene()
    charts = TrainingCharts(scene, "Live")
    process = TrainingProcess(settings, tmp_path / "runs", catalogue_with_earlier_model, label="test").start()
    assert process.running and process.run_dir.is_dir()

    events = []
    while process.state == "running":
        batch = poll_until(process, lambda seen: bool(seen))
        charts.add_events(batch)
        events += batch
    events += process.poll()

    assert process.state == "finished", (process.error_message, events[-3:])
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 4 and [e["cycle"] for e in steps] == [1, 1, 2, 2]
    assert [r["Step"] for r in mrml_tables.table_rows(charts.loss_table)] == [1, 2, 3, 4]
    assert charts.boundary_steps() == [2.5]
    models = catalogue_with_earlier_model.models()
    assert [m.name for m in models] == ["earlier", process.run_dir.name]
    assert Path(models[1].path) == process.run_dir / "model.safetensors"
    assert models[1].cases == [scene_case.name] and models[1].started_from == "scratch"
    assert cases.file_digest(model_path) == earlier_digest, "an earlier model was changed"
    from LiverLesionSegLib.checkpoint import load_checkpoint

    assert load_checkpoint(models[1].path).state["train_cases"] == [scene_case.name]
    assert json.loads((process.run_dir / "command.json").read_text())[1:4] == ["-m", "LiverLesionSegLib", "train"]


def test_cancel_keeps_models_and_last_checkpoint(scene_case, catalogue_with_earlier_model, model_path, tmp_path):
    from LiverLesionSegLib.checkpoint import load_checkpoint

    catalogue_before = catalogue_with_earlier_model.path.read_bytes()
    earlier_digest = cases.file_digest(model_path)
    settings = TrainingSettings([str(scene_case)], cycles=1, epochs_per_cycle=50, start_from=str(model_path),
                                device="cpu", extra=QUICK)
    process = TrainingProcess(settings, tmp_path / "runs", catalogue_with_earlier_model).start()
    # Wait for a step of the second epoch: the first epoch's checkpoint is then on disk.
    poll_until(process, lambda seen: any(e["event"] == "step" and e["epoch"] == 2 for e in seen))
    assert process.running
    process.cancel()
    process.poll()

    assert process.state == "cancelled" and not process.running and process.returncode != 0
    assert process.model_entry is None
    assert catalogue_with_earlier_model.path.read_bytes() == catalogue_before, "the model list changed"
    assert cases.file_digest(model_path) == earlier_digest, "the model it started from was changed"
    assert not (process.run_dir / "model.safetensors").exists()
    assert not (process.run_dir / STORE_FOLDER).exists(), "the training slices were left on disk"
    last = load_checkpoint(process.run_dir / "last.safetensors")
    assert last.state["epoch"] >= 1, "the last good checkpoint is not loadable"


def test_failed_run_reports_one_line(tmp_path):
    settings = TrainingSettings([str(tmp_path / "no such case")], cycles=1, epochs_per_cycle=1, start_from="scratch")
    catalogue = ModelCatalogue(tmp_path / "models.json")
    process = TrainingProcess(settings, tmp_path / "runs", catalogue).start()
    process.wait(TIMEOUT_S)
    assert process.state == "failed"
    assert "no such case" in process.error_message and "does not exist" in process.error_message
    assert "\n" not in process.error_message and "Traceback" not in process.error_message
    assert not catalogue.path.exists()


def test_settings_become_command_line_options(tmp_path):
    settings = TrainingSettings(["a", "b"], validate=["b"], validate_every=2, cycles=4, epochs_per_cycle=3,
                                learning_rate=3e-4, bce_weight=0.5, dice_weight=2.0, tversky_weight=0.0, augment=False,
                                start_from="bundled", device="cuda")
    args = settings.arguments(tmp_path / "run")
    assert args[:3] == ["train", str(Path("a").resolve()), str(Path("b").resolve())]
    text = " ".join(args)
    for expected in ("--out " + str(tmp_path / "run"), "--progress json", "--device cuda", "--cycles 4",
                     "--epochs 3", "--lr 0.0003", "--bce-weight 0.5", "--dice-weight 2.0",
                     "--tversky-weight 0.0", "--validate b --validate-every 2", "--no-augment", "--init bundled"):
        assert expected in text, expected
    parsed = build_parser().parse_args(args)  # as the command reads them
    assert parsed.validate == ["b"] and parsed.validate_every == 2 and parsed.cycles == 4
    assert "--init" not in TrainingSettings(["a"], start_from="scratch").arguments(tmp_path)


def test_progress_lines_and_messages():
    assert parse_progress_line('{"event":"step","step":3,"loss":0.5}')["step"] == 3
    assert parse_progress_line("Traceback (most recent call last):") == {
        "event": "log", "level": "info", "message": "Traceback (most recent call last):"}
    assert parse_progress_line("[1, 2]")["event"] == "log"
    epoch = {"event": "epoch", "cycle": 2, "epoch": 5, "train_loss": 0.25, "val_lesion_dice": 0.5,
             "val_liver_dice": 0.9}
    assert describe_event(epoch) == "cycle 2 epoch 5: loss 0.2500, validation lesion Dice 0.500, liver Dice 0.900"
    liver_only = {**epoch, "val_lesion_dice": None}  # no validation case's lesions segmented: the liver's alone
    assert describe_event(liver_only) == ("cycle 2 epoch 5: loss 0.2500, validation liver Dice 0.900 (no validation "
                                          "case's lesions are segmented)")
    assert describe_event({**epoch, "val_lesion_dice": None, "val_liver_dice": None}) == "cycle 2 epoch 5: loss 0.2500"
    assert describe_event({"event": "step", "step": 1}) is None
    assert format_eta(3725) == "1 h 02 min" and format_eta(75) == "1 min 15 s" and format_eta(None) == "estimating"
    step = {"event": "step", "step": 30, "cycle": 2, "epoch": 4, "loss": 0.41, "total_steps": 120, "eta_s": 210}
    assert step_percent(step) == 25
    assert step_text(step) == "Cycle 2, epoch 4, step 30 of 120; loss 0.4100; time left 3 min 30 s"


def test_catalogue_ignores_missing_files_and_damage(tmp_path):
    catalogue = ModelCatalogue(tmp_path / "models.json")
    assert catalogue.models() == []
    real = tmp_path / "m.safetensors"
    real.write_bytes(b"x")
    catalogue.add(ModelEntry("gone", str(tmp_path / "gone.safetensors"), "t"))
    catalogue.add(ModelEntry("real", str(real), "t"))
    assert [m.name for m in catalogue.models()] == ["real"]
    catalogue.path.write_text("{not json")
    assert catalogue.models() == []
