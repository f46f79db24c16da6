"""Faults during training, for real where they can be had for real.

- A training process killed with SIGKILL while it writes a checkpoint keeps the previous
  checkpoint intact and loadable: `python -m LiverLesionSegLib train` runs as a real process on a
  small real case, and the test kills it the moment the temporary `.partial` file of a checkpoint
  write appears in the run folder (no hook in the child: the write of a 170 MB checkpoint with its
  optimizer state takes long enough to be caught by polling the folder).
- `--resume` after that kill continues the cycle schedule and gives the same history as an
  uninterrupted run with the same seed.
- A loss that stops being finite ends the process with exit status 7, one line, and the last good
  checkpoint as it was.
- Out of memory while training: the batch goes through the network in halves, then (on a GPU)
  training moves to the CPU, each step said in the log. Without a GPU here the out-of-memory
  error is injected: a forward hook on the real network raises a real `torch.OutOfMemoryError`,
  the exception type PyTorch raises. The move to the CPU needs a GPU and is skipped without one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from LiverLesionSegLib.checkpoint import Checkpoint, load_checkpoint
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.errors import ResourceError
from LiverLesionSegLib.train import LAST, train

import bad_inputs

LIBRARY_ROOT = Path(__file__).resolve().parents[2]  # the folder holding LiverLesionSegLib

# Two cycles of one epoch, two steps an epoch: every kind of checkpoint, in seconds.
SCHEDULE = ["--cycles", "2", "--epochs", "1", "--max-slices-per-epoch", "4", "--batch-size", "2",
            "--size", "64", "--seed", "3", "--device", "cpu"]
TIMEOUT_S = 180


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_process(*args: str) -> subprocess.Popen:
    """`python -m LiverLesionSegLib train ...` as the Slicer panel starts it, one thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(LIBRARY_ROOT)] + [os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", "LiverLesionSegLib", "train", *args, "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, out, err


def partial_files(folder: Path, target: str) -> list[Path]:
    return [p for p in folder.glob(f".{target}.*") if ".partial" in p.name] if folder.is_dir() else []


def wait_for(condition, process: subprocess.Popen, what: str, poll_s: float = 0.002):
    """Poll until `condition()` is true (returns it), or None when the process ended first."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            return None
        time.sleep(poll_s)
    process.kill()
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def case(data_dir, tmp_path_factory) -> Path:
    return bad_inputs.small_case(data_dir, tmp_path_factory.mktemp("case") / "ircadb17-crop")


@pytest.fixture(scope="module")
def uninterrupted(case, tmp_path_factory) -> dict:
    """The history of the whole run, never interrupted."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    code, _, err = finish(train_process(str(case), "--out", str(out), *SCHEDULE))
    assert code == 0, err
    return json.loads((out / "history.json").read_text())


@pytest.fixture(scope="module")
def killed(case, tmp_path_factory) -> dict:
    """A run killed with SIGKILL while it writes the checkpoint of its second epoch (tried again,
    up to three times, should a busy machine let the write slip by between two looks)."""
    for _ in range(3):
        out = tmp_path_factory.mktemp("killed") / "run"
        process = train_process(str(case), "--out", str(out), *SCHEDULE)
        if not wait_for(lambda: (out / LAST).is_file(), process, "the first checkpoint", poll_s=0.01):
            pytest.fail(f"training ended before its first checkpoint: {process.communicate()[1][-2000:]}")
        first = digest(out / LAST)  # the first epoch's checkpoint, complete (it is renamed into place whole)
        # The next temporary last.safetensors is the second epoch's: kill the process while it is written.
        partial = wait_for(lambda: partial_files(out, LAST), process, "the second checkpoint write")
        if partial:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=TIMEOUT_S)
        if partial:
            return {"out": out, "first_digest": first, "partial": partial[0], "returncode": process.returncode}
    pytest.fail("three runs ended before the second checkpoint write could be caught")


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(killed):
    out = killed["out"]
    assert killed["returncode"] == -signal.SIGKILL
    assert killed["partial"].exists(), "the kill came after the write: it did not test what it should"
    assert digest(out / LAST) == killed["first_digest"], "the previous checkpoint was changed"
    checkpoint = load_checkpoint(out / LAST, with_optimizer=True)
    assert checkpoint.state["epoch"] == 1 and checkpoint.optimizer_state is not None
    assert not (out / "model.safetensors").exists()


def test_resume_after_sigkill_repeats_the_uninterrupted_run(killed, uninterrupted, case, tmp_path):
    """Resumed from the checkpoint the killed process left, the run continues the cycle schedule
    and its history equals the uninterrupted run's, step for step."""
    out = tmp_path / "run"
    shutil.copytree(killed["out"], out)  # the killed run's folder, as the user finds it
    code, stdout, err = finish(train_process(str(case), "--out", str(out), "--resume", str(out / LAST)))
    assert code == 0, err
    history = json.loads((out / "history.json").read_text())
    a, b = uninterrupted["steps"], history["steps"]
    assert [s["cycle"] for s in b] == [1, 1, 2, 2] and [s["step"] for s in b] == [1, 2, 3, 4]
    assert [s["lr"] for s in b] == [s["lr"] for s in a]
    np.testing.assert_allclose([s["loss"] for s in b], [s["loss"] for s in a], atol=1e-5)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert not partial_files(out, LAST), "the killed write's temporary file was left behind"
    load_checkpoint(out / "model.safetensors")
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert [e["step"] for e in events if e["event"] == "step"] == [3, 4]  # only the second epoch was run again


def test_loss_that_stops_being_finite_exits_7_and_keeps_the_last_checkpoint(killed, case, tmp_path):
    """The first epoch's checkpoint resumed with a learning rate of 1e30 (its configuration edited;
    infinity is refused as no finite number): the second epoch's loss turns NaN, the process ends with
    one line and exit status 7, and the checkpoint is as it was."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "run"
    out.mkdir()
    with safe_open(str(killed["out"] / LAST), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    meta = json.loads(metadata["meta"])
    meta["config"]["train"]["learning_rate"] = 1e30
    metadata["meta"] = json.dumps(meta)
    save_file(tensors, str(out / LAST), metadata=metadata)
    good = digest(out / LAST)

    code, _, err = finish(train_process(str(case), "--out", str(out), "--resume", str(out / LAST)))
    lines = err.strip().splitlines()
    assert code == 7, err
    assert lines[-1].startswith("liverlesionseg: error: ") and "Traceback" not in err
    assert "the loss became nan" in lines[-1] and "the last good checkpoint (last.safetensors) is kept" in lines[-1]
    assert digest(out / LAST) == good
    assert load_checkpoint(out / LAST).state["epoch"] == 1
    assert not (out / "model.safetensors").exists()


# --- out of memory ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(data_dir):
    from LiverLesionSegLib.dataset import prepare_case
    from LiverLesionSegLib.volume import Case

    ct, labels = bad_inputs.labelled_slices(data_dir)
    config = small_config()
    case = Case("ircadb17-crop", ct, ct.with_array((labels > 0).astype(np.uint8)),
                ct.with_array((labels == 2).astype(np.uint8)))
    return prepare_case(case, config.preprocess)


def small_config(batch_size: int = 4) -> Config:
    config = Config()
    config.preprocess.size = 64
    config.train.cycles, config.train.epochs_per_cycle = 1, 1
    config.train.batch_size, config.train.max_slices_per_epoch = batch_size, 8
    return config


def network_that_runs_out_of_memory(config: Config, too_many) -> tuple[torch.nn.Module, list]:
    """The real network with a forward hook that raises a real torch.OutOfMemoryError when
    `too_many(batch)` says the batch does not fit (injected: there is no GPU here to fill)."""
    from LiverLesionSegLib.model import build_network

    torch.manual_seed(0)
    network = build_network(config)
    raised = []

    def hook(module, inputs):
        x = inputs[0]
        if too_many(x):
            raised.append((len(x), x.device.type))
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected, batch {len(x)})")

    network.register_forward_pre_hook(hook)
    return network, raised


def test_out_of_memory_halves_the_slices_at_once(prepared, tmp_path, caplog):
    config = small_config(batch_size=4)
    network, raised = network_that_runs_out_of_memory(config, lambda x: len(x) > 2)
    with caplog.at_level("WARNING", logger="LiverLesionSeg"):
        result = train([prepared], [], config, tmp_path, init=Checkpoint(tmp_path / "start", config, network))
    steps = result.history["steps"]
    assert len(steps) == 2 and all(math.isfinite(s["loss"]) for s in steps)  # the same schedule: 8 slices, 4 a step
    assert raised == [(4, "cpu")], "the smaller pieces should fit from then on"
    assert "Out of memory on CPU with 4 slices at a time: going on with 2" in caplog.text
    load_checkpoint(tmp_path / LAST)


def test_out_of_memory_at_one_slice_on_the_cpu_is_a_resource_error(prepared, tmp_path):
    config = small_config(batch_size=2)
    network, raised = network_that_runs_out_of_memory(config, lambda x: True)
    with pytest.raises(ResourceError, match="not enough memory to train on one slice at a time"):
        train([prepared], [], config, tmp_path, init=Checkpoint(tmp_path / "start", config, network))
    assert [n for n, _ in raised] == [2, 1]
    assert not (tmp_path / LAST).exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="moving to the CPU needs a GPU to move from")
def test_out_of_memory_at_one_slice_on_the_gpu_moves_to_the_cpu(prepared, tmp_path, caplog):
    config = small_config(batch_size=4)
    network, raised = network_that_runs_out_of_memory(config, lambda x: x.device.type == "cuda")
    with caplog.at_level("WARNING", logger="LiverLesionSeg"):
        result = train([prepared], [], config, tmp_path, device="cuda",
                       init=Checkpoint(tmp_path / "start", config, network))
    assert [n for n, _ in raised] == [4, 2, 1]
    assert "training goes on on the CPU" in caplog.text
    assert next(network.parameters()).device.type == "cpu"
    assert len(result.history["steps"]) == 2
