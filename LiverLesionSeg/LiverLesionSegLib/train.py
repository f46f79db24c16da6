"""Multi-cycle training: N cycles of M epochs, the learning rate restarting each cycle (cosine
annealing with warm restarts).

Repeatable: every epoch draws its slices and augmentations from generators seeded by (seed, epoch),
so a run resumed from a checkpoint continues exactly as the uninterrupted run would have.
A checkpoint is written atomically after every epoch (`last.safetensors`) and at each cycle's end
(`cycle-NN.safetensors`), with the configuration and history inside.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import Config
from .dataset import PreparedCase, SliceSet, epoch_order
from .errors import Cancelled, OutputError, ResourceError, TrainingError
from .infer import segment_canonical
from .io.atomic import atomic_write_text
from .losses import SegmentationLoss
from .augment import augment_batch
from .metrics import dice
from .model import build_network, compute_dtype, is_out_of_memory
from .progress import NullProgress, Progress

log = logging.getLogger("LiverLesionSeg")

LAST = "last.safetensors"
FINAL = "model.safetensors"


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    history: dict
    best: dict = field(default_factory=dict)


def learning_rate(config: Config, epoch_in_cycle: int, fraction_of_epoch: float) -> float:
    """Cosine from learning_rate down to min_learning_rate over each cycle, then back up."""
    t = config.train
    progress_in_cycle = (epoch_in_cycle + fraction_of_epoch) / t.epochs_per_cycle
    return t.min_learning_rate + 0.5 * (t.learning_rate - t.min_learning_rate) * (1 + math.cos(math.pi * progress_in_cycle))


def cycle_checkpoint_name(cycle: int) -> str:
    return f"cycle-{cycle:02d}.safetensors"


def train(train_cases: list[PreparedCase], val_cases: list[PreparedCase], config: Config, out_dir: Path,
          device: torch.device | str = "cpu", progress: Optional[Progress] = None,
          resume: Optional[Checkpoint] = None, init: Optional[Checkpoint] = None,
          download_weights: bool = True) -> TrainResult:
    """Train and write checkpoints into `out_dir` (which must exist).

    `resume`: a checkpoint of this run (with optimizer state) to continue from; `init`: a model to
    fine-tune (its weights only; a fresh schedule).
    """
    progress = progress or NullProgress()
    device = torch.device(device)
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise OutputError("the output folder does not exist", out_dir, "create it first")
    if not train_cases:
        raise TrainingError("no training cases", hint="give at least one labelled case not held out for validation")
    slices = SliceSet(train_cases)
    t = config.train

    torch.manual_seed(t.seed)
    network = resume.network if resume else init.network if init else build_network(config, download_weights)
    network.to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    loss_fn = SegmentationLoss(config.loss).to(device)
    dtype = compute_dtype(device, t.precision)  # the loss itself stays in float32

    state = {"epoch": 0, "step": 0, "history": {"steps": [], "epochs": []}, "best": {},
             "train_cases": slices.names, "val_cases": [c.name for c in val_cases]}
    if resume:
        if resume.optimizer_state:
            optimizer.load_state_dict(resume.optimizer_state)
        state.update({k: v for k, v in resume.state.items() if k in state})
        resumed = state["history"]  # (a checkpoint's history may lack its steps or epochs: an edited one)
        state["history"] = {"steps": list(resumed.get("steps", [])), "epochs": list(resumed.get("epochs", []))}
        if sorted(state["train_cases"]) != sorted(slices.names):
            log.warning("Resuming with other training cases than the checkpoint's (%s): the run will not repeat exactly.",
                        ", ".join(state["train_cases"]))
        state["train_cases"] = slices.names
    total_epochs = t.cycles * t.epochs_per_cycle
    if resume:
        _complete_cycle_checkpoints(resume, network, config, state, optimizer, out_dir, progress)
    if state["epoch"] >= total_epochs:
        log.info("The checkpoint has finished all %d epochs; nothing left to train.", total_epochs)
    history = state["history"]

    clock = _Clock(total_epochs - state["epoch"])
    fit = _MemoryFit(t.batch_size)
    for epoch in range(state["epoch"], total_epochs):
        cycle, epoch_in_cycle = divmod(epoch, t.epochs_per_cycle)
        rng = np.random.default_rng([t.seed, epoch])
        generator = torch.Generator().manual_seed(t.seed * 1_000_003 + epoch)
        order = epoch_order(slices, t, rng)
        batches = [order[i:i + t.batch_size] for i in range(0, len(order), t.batch_size)]
        network.train()
        losses = []
        for b, batch in enumerate(batches):
            if progress.cancelled:
                raise Cancelled("training cancelled; the last checkpoint is kept", out_dir / LAST)
            lr = learning_rate(config, epoch_in_cycle, b / len(batches))
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = slices.batch(batch, config.preprocess)
            x, y = augment_batch(x, y, config.augment, generator)
            known = torch.from_numpy(slices.lesion_known[batch])  # (augmentation keeps the slices' order)
            while True:
                try:
                    loss = _loss_and_gradients(network, loss_fn, optimizer, x, y, known, device, dtype, fit.slices)
                    break
                except (RuntimeError, MemoryError) as exc:
                    if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):
                        raise
                    device = fit.after_out_of_memory(device, len(x), network, optimizer, loss_fn, exc)
                    dtype = compute_dtype(device, t.precision)
            if not torch.isfinite(loss):
                kept = (f"the last good checkpoint ({LAST}) is kept" if (out_dir / LAST).exists()
                        else "no checkpoint had been written yet")
                raise TrainingError(
                    f"the loss became {loss.item()} at cycle {cycle + 1}, epoch {epoch + 1}, step {state['step'] + 1}; "
                    f"training stopped and {kept}", out_dir,
                    "lower the learning rate or check the training images for extreme values")
            optimizer.step()
            state["step"] += 1
            losses.append(loss.item())
            record = {"step": state["step"], "cycle": cycle + 1, "epoch": epoch + 1, "loss": round(losses[-1], 6),
                      "lr": lr}
            history["steps"].append(record)
            total_steps = state["step"] - (b + 1) + len(batches) * (total_epochs - epoch)  # estimate
            progress.emit({"event": "step", **record, "total_steps": total_steps,
                           "eta_s": clock.eta(b + 1, len(batches))})
        due = (epoch + 1) % t.validate_every == 0 or epoch_in_cycle == t.epochs_per_cycle - 1
        val = validate(network, val_cases, config, device) if val_cases and due else {}
        epoch_record = {"epoch": epoch + 1, "cycle": cycle + 1, "train_loss": float(np.mean(losses)),
                        "val_lesion_dice": val.get("lesion_dice"), "val_liver_dice": val.get("liver_dice"),
                        "val_cases": val.get("cases", {})}
        history["epochs"].append(epoch_record)
        progress.emit({"event": "epoch", **{k: v for k, v in epoch_record.items() if k != "val_cases"}})
        state["epoch"] = epoch + 1
        if val and (not state["best"] or _sum_of_dice(val) > _sum_of_dice(state["best"])):
            state["best"] = {"epoch": epoch + 1, "lesion_dice": val["lesion_dice"], "liver_dice": val["liver_dice"]}
            save_checkpoint(out_dir / "best.safetensors", network, config, state)
        save_checkpoint(out_dir / LAST, network, config, state, optimizer)
        if epoch_in_cycle == t.epochs_per_cycle - 1:
            path = save_checkpoint(out_dir / cycle_checkpoint_name(cycle + 1), network, config, state, optimizer)
            progress.emit({"event": "checkpoint", "cycle": cycle + 1, "epoch": epoch + 1, "path": str(path)})
        clock.epoch_done()

    final = _write_final(network, config, state, out_dir)
    atomic_write_text(out_dir / "history.json", _json(history))
    atomic_write_text(out_dir / "config.json", config.to_json())
    progress.emit({"event": "done", "model": str(final), "best": state["best"],
                   "message": f"model written to {final}"})
    return TrainResult(out_dir, final, history, state["best"])


def _complete_cycle_checkpoints(resume: Checkpoint, network: torch.nn.Module, config: Config, state: dict,
                                optimizer: torch.optim.Optimizer, out_dir: Path, progress: Progress) -> None:
    """A resumed run writes the checkpoint of the cycle it resumes at the end of, where it is missing: the
    run was stopped after `last.safetensors` was written and before the cycle's own checkpoint was. A
    missing checkpoint of an earlier cycle of this folder's run cannot be made again: said in the log."""
    per_cycle = config.train.epochs_per_cycle
    cycles_done, into_cycle = divmod(state["epoch"], per_cycle)
    if cycles_done and not into_cycle and not (out_dir / cycle_checkpoint_name(cycles_done)).exists():
        path = save_checkpoint(out_dir / cycle_checkpoint_name(cycles_done), network, config, state, optimizer)
        log.info("Wrote %s, which the interrupted run had not written.", path)
        progress.emit({"event": "checkpoint", "cycle": cycles_done, "epoch": state["epoch"], "path": str(path)})
    if Path(resume.path).resolve().parent != out_dir.resolve():
        return  # resumed into another folder: the earlier cycles' checkpoints are in the first one
    missing = [cycle_checkpoint_name(c) for c in range(1, cycles_done + 1)
               if not (out_dir / cycle_checkpoint_name(c)).exists()]
    if missing:
        log.warning("The run folder %s lacks %s of an earlier cycle; it cannot be written again.", out_dir,
                    ", ".join(missing))


def _loss_and_gradients(network: torch.nn.Module, loss_fn: SegmentationLoss, optimizer: torch.optim.Optimizer,
                        x: torch.Tensor, y: torch.Tensor, lesion_known: torch.Tensor, device: torch.device,
                        dtype: Optional[torch.dtype], slices_at_once: int) -> torch.Tensor:
    """The batch's loss, its gradients left in the parameters, `slices_at_once` slices through the
    network at a time: the pieces' gradients add up to (about) the whole batch's, so a smaller
    piece costs memory, not a different schedule. With the whole batch at once it is the plain step."""
    optimizer.zero_grad(set_to_none=True)
    total = None
    for start in range(0, len(x), slices_at_once):
        piece = x[start:start + slices_at_once].to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = network(piece)
        loss, _ = loss_fn(logits.float(), y[start:start + slices_at_once].to(device),
                          lesion_known[start:start + slices_at_once].to(device))
        if len(piece) < len(x):
            loss = loss * (len(piece) / len(x))
        loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total


class _MemoryFit:
    """How many slices go through the network at once. Out of memory halves it; at one slice on
    a GPU, training moves to the CPU (where it starts again from the whole batch). Each change is
    said in the log; out of memory at one slice on the CPU is a ResourceError."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.slices = batch_size

    def after_out_of_memory(self, device: torch.device, batch: int, network: torch.nn.Module,
                            optimizer: torch.optim.Optimizer, loss_fn: torch.nn.Module,
                            exc: BaseException) -> torch.device:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        at_once = min(self.slices, batch)
        if at_once > 1:
            self.slices = at_once // 2
            log.warning("Out of memory on %s with %d slices at a time: going on with %d (the gradients of the "
                        "pieces add up to the same batch of %d).", device.type.upper(), at_once, self.slices, batch)
            return device
        if device.type != "cpu":
            cpu = torch.device("cpu")
            network.to(cpu)
            loss_fn.to(cpu)
            for values in optimizer.state.values():
                for key, value in values.items():
                    if torch.is_tensor(value):
                        values[key] = value.to(cpu)
            self.slices = self.batch_size
            log.warning("Out of memory on %s even with one slice at a time: training goes on on the CPU "
                        "(slower), %d slices at a time.", device.type.upper(), self.slices)
            return cpu
        raise ResourceError("not enough memory to train on one slice at a time",
                            hint="close other programs, or train with a smaller --size") from exc


def validate(network: torch.nn.Module, cases: list[PreparedCase], config: Config,
             device: torch.device | str = "cpu") -> dict:
    """Mean 3-D lesion and liver Dice over the validation cases: the whole inference, on their
    full-resolution grids."""
    per_case = {}
    for case in cases:
        liver, lesion, *_ = segment_canonical(case.ct, network, config.preprocess, config.inference, device)
        per_case[case.name] = {"lesion_dice": dice(lesion, case.lesion) if case.lesions_segmented else None,
                               "liver_dice": dice(liver, case.liver)}
    network.train()
    lesion_dices = [c["lesion_dice"] for c in per_case.values() if c["lesion_dice"] is not None]
    return {"lesion_dice": float(np.mean(lesion_dices)) if lesion_dices else None,  # no case's lesions segmented
            "liver_dice": float(np.mean([c["liver_dice"] for c in per_case.values()])),
            "cases": per_case}


def _sum_of_dice(scores: dict) -> float:
    """What the best checkpoint is chosen by: lesion and liver Dice (the lesions' where measured)."""
    return (scores["lesion_dice"] or 0.0) + scores["liver_dice"]


def _write_final(network: torch.nn.Module, config: Config, state: dict, out_dir: Path) -> Path:
    """model.safetensors: the best epoch by validation Dice when there was validation, else the last."""
    best = out_dir / "best.safetensors"
    if state["best"] and best.exists():
        best_checkpoint = load_checkpoint(best)
        best_checkpoint.state["history"] = state["history"]  # the whole run's history, not the best epoch's
        return save_checkpoint(out_dir / FINAL, best_checkpoint.network, config, best_checkpoint.state)
    return save_checkpoint(out_dir / FINAL, network, config, state)


def _json(data) -> str:
    import json

    return json.dumps(data, indent=1, allow_nan=False, default=float)


class _Clock:
    """Estimates the time left from the mean epoch duration so far."""

    def __init__(self, epochs_left: int):
        self.epochs_left = epochs_left
        self.epoch_started = time.perf_counter()
        self.epoch_seconds: list[float] = []

    def eta(self, batches_done: int, batches: int) -> float:
        elapsed = time.perf_counter() - self.epoch_started
        per_epoch = np.mean(self.epoch_seconds) if self.epoch_seconds else elapsed / batches_done * batches
        left_this_epoch = max(per_epoch - elapsed, 0.0)
        return round(left_this_epoch + per_epoch * (self.epochs_left - 1), 1)

    def epoch_done(self) -> None:
        self.epoch_seconds.append(time.perf_counter() - self.epoch_started)
        self.epochs_left -= 1
        self.epoch_started = time.perf_counter()
