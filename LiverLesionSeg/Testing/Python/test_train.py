"""Training on real slices: the loss falls and validation Dice rises; a resumed run repeats the
uninterrupted one; a non-finite loss stops with the last good checkpoint kept."""

import dataclasses
import json

import numpy as np
import pytest

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import epoch_order, prepare_case, SliceSet
from LiverLesionSegLib.errors import Cancelled, TrainingError
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.progress import CallbackProgress
from LiverLesionSegLib.train import LAST, learning_rate, train


@pytest.fixture(scope="module")
def prepared(data_dir):
    """3Dircadb1.17 for training, RadCTTACEomics_1211 held out for validation."""
    config = Config()
    train_case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    val_case = load_case(find_cases([data_dir / "tace" / "RadCTTACEomics_1211"])[0])
    return config, prepare_case(train_case, config.preprocess), prepare_case(val_case, config.preprocess, keep_volume=True)


def _short(config: Config, cycles: int, epochs: int, slices: int) -> Config:
    config = Config.from_dict(config.to_dict())
    config.train.cycles, config.train.epochs_per_cycle, config.train.max_slices_per_epoch = cycles, epochs, slices
    return config


@pytest.mark.slow
def test_loss_falls_and_validation_dice_rises(prepared, tmp_path):
    config, train_case, val_case = prepared
    config = _short(config, cycles=2, epochs=2, slices=64)
    events = []
    result = train([train_case], [val_case], config, tmp_path, progress=CallbackProgress(events.append))
    epochs = result.history["epochs"]
    assert len(epochs) == 4
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"] - 0.1
    assert epochs[-1]["val_liver_dice"] > epochs[0]["val_liver_dice"] + 0.05
    assert max(e["val_liver_dice"] for e in epochs) > 0.15
    # the model written is the best epoch by validation Dice, and carries the whole history
    best = load_checkpoint(result.model_path)
    assert best.state["history"]["epochs"] == json.loads((tmp_path / "history.json").read_text())["epochs"]
    kinds = [e["event"] for e in events]
    assert kinds.count("epoch") == 4 and kinds.count("checkpoint") == 2 and kinds[-1] == "done"
    steps = [e for e in events if e["event"] == "step"]
    assert all(e["eta_s"] >= 0 for e in steps) and steps[-1]["step"] == 16
    assert (tmp_path / "cycle-01.safetensors").exists() and (tmp_path / "cycle-02.safetensors").exists()


def test_a_case_whose_lesions_are_not_segmented_trains_and_validates_its_liver_alone(prepared, tmp_path):
    """A case of a dataset of organs (liver labelled, lesions not): its slices count for the liver
    channel only (`SegmentationLoss`), and as a validation case it gives a liver Dice and no lesion Dice."""
    config, train_case, val_case = prepared
    liver_only = dataclasses.replace(train_case, name="organs-1", lesions_segmented=False)
    slices = SliceSet([train_case, liver_only])
    assert slices.lesion_known.tolist() == [True] * (len(slices) // 2) + [False] * (len(slices) // 2)
    held_out = dataclasses.replace(val_case, lesions_segmented=False)
    result = train([train_case, liver_only], [held_out], _short(config, cycles=1, epochs=1, slices=8), tmp_path)
    (epoch,) = result.history["epochs"]
    assert epoch["val_lesion_dice"] is None and 0 <= epoch["val_liver_dice"] <= 1
    assert epoch["val_cases"][val_case.name]["lesion_dice"] is None and result.best["lesion_dice"] is None


def test_validation_every_few_epochs_and_at_each_cycles_end(prepared, tmp_path):
    """Each validation case is segmented whole at every epoch, minutes an epoch for many of them:
    `validate_every` 2 over a cycle of five epochs validates epochs 2, 4 and 5 (the cycle's end), and the model
    written is the best of those."""
    config, train_case, val_case = prepared
    config = _short(config, cycles=1, epochs=5, slices=4)
    config.train.validate_every = 2
    result = train([train_case], [val_case], config, tmp_path)
    validated = [e["epoch"] for e in result.history["epochs"] if e["val_liver_dice"] is not None]
    assert validated == [2, 4, 5] and [e["epoch"] for e in result.history["epochs"]] == [1, 2, 3, 4, 5]
    assert result.best["epoch"] in validated


def test_learning_rate_restarts_every_cycle():
    config = Config()
    config.train.learning_rate, config.train.min_learning_rate, config.train.epochs_per_cycle = 1e-3, 1e-5, 4
    assert learning_rate(config, 0, 0.0) == pytest.approx(1e-3)
    assert learning_rate(config, 2, 0.0) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(config, 3, 0.999) == pytest.approx(1e-5, abs=1e-7)


def test_resumed_run_continues_the_cycle_schedule_exactly(prepared, tmp_path):
    config, train_case, _ = prepared
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    uninterrupted = train([train_case], [], _short(config, cycles=2, epochs=1, slices=32), tmp_path / "a")
    first_half = _short(config, cycles=1, epochs=1, slices=32)
    train([train_case], [], first_half, tmp_path / "b")
    checkpoint = load_checkpoint(tmp_path / "b" / LAST, with_optimizer=True)
    checkpoint.config.train.cycles = 2
    resumed = train([train_case], [], checkpoint.config, tmp_path / "b", resume=checkpoint)
    a, b = uninterrupted.history["steps"], resumed.history["steps"]
    assert [s["cycle"] for s in b] == [1, 1, 2, 2] and [s["step"] for s in b] == [1, 2, 3, 4]
    assert [s["lr"] for s in a] == [s["lr"] for s in b]
    assert np.allclose([s["loss"] for s in a], [s["loss"] for s in b], atol=1e-5)


@pytest.mark.parametrize("history", [{}, None], ids=["empty", "missing"])
def test_a_checkpoint_without_its_history_resumes(prepared, tmp_path, history):
    """Found changing each field of a checkpoint's training state in turn: a history of {}, which the
    checkpoint's check lets pass, ended the resumed run in a KeyError ('steps'); one with no history
    resumed, as it does still."""
    config, train_case, _ = prepared
    train([train_case], [], _short(config, cycles=1, epochs=1, slices=32), tmp_path)
    checkpoint = load_checkpoint(tmp_path / LAST, with_optimizer=True)
    if history is None:
        del checkpoint.state["history"]
    else:
        checkpoint.state["history"] = history
    checkpoint.config.train.cycles = 2
    resumed = train([train_case], [], checkpoint.config, tmp_path, resume=checkpoint)
    assert [s["step"] for s in resumed.history["steps"]] == [3, 4] and len(resumed.history["epochs"]) == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(prepared, tmp_path):
    config, train_case, _ = prepared
    config = _short(config, cycles=2, epochs=1, slices=32)
    train([train_case], [], _short(config, 1, 1, 32), tmp_path)
    good = (tmp_path / LAST).read_bytes()
    checkpoint = load_checkpoint(tmp_path / LAST, with_optimizer=True)
    checkpoint.config.train.cycles = 2
    checkpoint.config.train.learning_rate = float("inf")  # the next cycle blows up
    with pytest.raises(TrainingError, match="the loss became nan.*last good checkpoint"):
        train([train_case], [], checkpoint.config, tmp_path, resume=checkpoint)
    assert (tmp_path / LAST).read_bytes() == good
    load_checkpoint(tmp_path / LAST)  # still loadable


def test_cancel_stops_between_steps_and_keeps_the_checkpoint(prepared, tmp_path):
    config, train_case, _ = prepared
    progress = CallbackProgress(lambda e: progress.cancel() if e["event"] == "step" and e["step"] == 2 else None)
    with pytest.raises(Cancelled):
        train([train_case], [], _short(config, 1, 1, 64), tmp_path, progress=progress)
    assert not (tmp_path / "model.safetensors").exists()


def test_epoch_order_oversamples_lesion_slices(prepared):
    config, train_case, _ = prepared
    slices = SliceSet([train_case])
    config = Config.from_dict(config.to_dict())
    plain = epoch_order(slices, config.train, np.random.default_rng(0))
    config.train.lesion_oversample = 3.0
    boosted = epoch_order(slices, config.train, np.random.default_rng(0))
    share = lambda order: slices.has_lesion[order].mean()
    assert share(boosted) > 1.5 * share(plain)
    assert slices.has_liver[plain].sum() == slices.has_liver.sum()  # every liver slice once


def test_a_case_whose_masks_are_all_zero_is_named(data_dir, caplog):
    """Labels of all 0 (a mask exported empty): a warning names the case when it is prepared, and
    the refusal to train on no liver names the cases it looked at."""
    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    case.liver.array[:] = 0
    case.lesion.array[:] = 0
    config = Config()
    with caplog.at_level("WARNING", logger="LiverLesionSeg"):
        prepared = prepare_case(case, config.preprocess)
    assert any("3Dircadb1.17" in r.getMessage() and "no liver voxel" in r.getMessage() for r in caplog.records)
    with pytest.raises(TrainingError) as exc:
        epoch_order(SliceSet([prepared]), config.train, np.random.default_rng(0))
    assert "no slice of the training cases (3Dircadb1.17) holds liver" in str(exc.value)
