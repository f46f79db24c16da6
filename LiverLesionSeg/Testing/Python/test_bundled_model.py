"""The bundled model and sample: within their size limits, checked against the card before use,
and the README's main command works on them."""

import json
import shutil

import pytest
from safetensors import safe_open

from LiverLesionSegLib import resources
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import ModelError
from LiverLesionSegLib.io.cases import read_input_volume


def test_bundled_model_is_small_half_precision_and_matches_its_card():
    path = resources.bundled_model_path()
    assert path.stat().st_size <= 30 * 1024 * 1024
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys() if "weight" in k}
    assert dtypes == {"F16"}
    checkpoint = resources.load_model(None)
    card = json.loads(resources.model_card_path().read_text())
    assert resources.architecture_of(checkpoint.config) == card["architecture"]
    assert card["architecture"]["encoder"] == "resnet18" and card["architecture"]["input_size"] == 128
    assert (path.parent / resources.MODEL_CARD).read_text().count(card["sha256"]) == 1
    assert not any(p.suffix in (".pt", ".pth", ".ckpt", ".pkl") for p in path.parent.iterdir())


@pytest.fixture
def copied_resources(tmp_path, monkeypatch):
    """The Resources folder copied elsewhere, so a test can damage its copy."""
    copy = tmp_path / "Resources"
    shutil.copytree(resources.resources_dir() / "Models", copy / "Models")
    monkeypatch.setattr(resources, "resources_dir", lambda: copy)
    return copy


def test_model_that_differs_from_its_card_is_refused(copied_resources):
    weights = copied_resources / "Models" / resources.MODEL_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        resources.load_model(None)


def test_card_naming_another_architecture_is_refused(copied_resources):
    card_path = copied_resources / "Models" / resources.MODEL_CARD_DATA
    card = json.loads(card_path.read_text())
    card["architecture"]["encoder"] = "resnet34"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="architecture .* is not the one its card states"):
        resources.load_model(None)


def test_sample_case_is_a_small_real_ct_with_its_credit():
    folder = resources.sample_case_path()
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 10 * 1024 * 1024
    assert "CC BY 4.0" in (folder / "CREDIT.md").read_text() and "10.7937/TCIA.5FNA-0924" in (folder / "CREDIT.md").read_text()
    volume = read_input_volume(folder)
    assert volume.shape[1:] == (512, 512) and 40 <= volume.shape[0] <= 80
    assert -2048 <= volume.array.min() and volume.array.max() > 500  # HU: the scanner's padding, air, bone


@pytest.mark.slow
def test_readme_main_command_segments_the_sample(tmp_path, monkeypatch, capsys):
    """`liverlesionseg segment` with no input: the sample, a .seg.nrrd and a PNG in the current folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["segment", "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "liverlesionseg-sample.seg.nrrd").stat().st_size > 1000
    assert (tmp_path / "liverlesionseg-sample.png").stat().st_size > 10_000
    liver_ml = float(printed.split("Liver: ")[1].split(" mL")[0])
    assert 800 < liver_ml < 3000  # an adult liver (its slices are in the sample)


@pytest.mark.slow
def test_the_progress_bar_moves_on_through_the_search_and_the_box():
    """The bundled model on the sample, as the Slicer panel runs it: the search for the liver, the
    slices between, then the liver's box. Each event of the network's stage puts the bar further on
    (none sends it back to that stage's start), through many positions; the bar ends full."""
    from LiverLesionSegLib.infer import SEARCH_SHARE
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.segment_job import STAGES, SegmentationJob, progress_percent

    job = SegmentationJob(read_input_volume(resources.sample_case_path()), device="cpu").start()
    assert job.wait(300) and job.error is None, job.error
    events = job.poll()
    network = [progress_percent(e) for e in events if e.get("stage") == "model" and e["event"] in ("progress", "stage")]
    assert network == sorted(network) and network[-1] == STAGES["model"][1], network
    start, end = STAGES["model"]
    search_end = start + (end - start) * SEARCH_SHARE
    assert any(start < p < search_end for p in network) and any(search_end < p < end for p in network)  # in steps
    positions = [p for p in map(job.progress_bar.update, events) if p is not None]
    assert positions == sorted(positions) and positions[-1] == 100


def test_bundled_model_runs_with_the_bundled_recipes_settings():
    from LiverLesionSegLib.recipes import bundled

    recipe = bundled().to_dict()
    stored = resources.load_model(None).config.to_dict()
    recipe["train"].pop("seed"), stored["train"].pop("seed")
    assert stored == recipe


def test_bundling_takes_the_recipes_inference_settings_only_for_weights_trained_with_it():
    import sys
    from pathlib import Path

    from LiverLesionSegLib.errors import InputError
    from LiverLesionSegLib.recipes import bundled, notebook

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
    from bundle_model import with_inference_of

    trained = bundled()
    trained.inference.min_liver_around_lesion, trained.train.seed = 0.0, 3
    updated = with_inference_of(trained, bundled(), Path("run/model.safetensors"))
    assert updated.inference == bundled().inference and updated.train.seed == 3
    refused = "run/model.safetensors: the model was trained with other settings"
    with pytest.raises(InputError, match=refused):
        with_inference_of(notebook(), bundled(), Path("run/model.safetensors"))


def test_bundling_the_same_weights_again_keeps_the_bundled_file(tmp_path, monkeypatch):
    # a new card for the same weights must not rewrite the 29 MB file (each rewrite stays in git's history)
    import datetime
    import sys
    from pathlib import Path

    import torch

    from LiverLesionSegLib import checkpoint as checkpoint_module
    from LiverLesionSegLib.checkpoint import save_checkpoint
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.model import build_network

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
    from bundle_model import same_apart_from_the_date

    config = Config()
    network = build_network(config)
    old = save_checkpoint(tmp_path / "old.safetensors", network, config, {"epoch": 3}, half=True)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2030, 1, 1, tzinfo=tz)

    monkeypatch.setattr(checkpoint_module.datetime, "datetime", Later)
    again = save_checkpoint(tmp_path / "again.safetensors", network, config, {"epoch": 3}, half=True)
    assert again.read_bytes() != old.read_bytes()  # only the date differs
    assert same_apart_from_the_date(again, old)
    assert not same_apart_from_the_date(again, tmp_path / "missing.safetensors")
    other_state = save_checkpoint(tmp_path / "state.safetensors", network, config, {"epoch": 4}, half=True)
    assert not same_apart_from_the_date(other_state, old)
    with torch.no_grad():
        next(network.parameters()).add_(1.0)
    other_weights = save_checkpoint(tmp_path / "weights.safetensors", network, config, {"epoch": 3}, half=True)
    assert not same_apart_from_the_date(other_weights, old)


def test_unpacked_cases_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERLESIONSEG_DATA", str(tmp_path))
    assert resources.unpacked_cases_dir() == tmp_path
    monkeypatch.setenv("LIVERLESIONSEG_DATA", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resources.unpacked_cases_dir() == tmp_path / "home" / ".cache" / "liverlesionseg" / "data"


def test_the_model_card_is_what_the_bundling_tool_writes():
    """MODEL_CARD.md edited by hand drifts from `tools/bundle_model.py`, and the next bundling would
    silently undo the edit: the card must be the tool's rendering of the card's JSON and the model."""
    import importlib.util
    from pathlib import Path

    tool = Path(__file__).resolve().parents[3] / "tools" / "bundle_model.py"
    spec = importlib.util.spec_from_file_location("bundle_model", tool)
    bundle_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle_model)
    card = json.loads(resources.model_card_path().read_text())
    written = (resources.model_card_path().parent / resources.MODEL_CARD).read_text()
    assert written == bundle_model.render(card, resources.load_model(None).config)
