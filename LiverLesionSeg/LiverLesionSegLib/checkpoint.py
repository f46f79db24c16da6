"""Checkpoints are data, not pickles: safetensors weights plus a JSON metadata block.

The metadata holds the format version, the full `Config` (architecture, encoder, preprocessing,
training settings) and the training state (cycles and epochs done, history, case names). Loading
reads the metadata first, builds the network it describes and checks every tensor's name and
shape against it before any weight is used, so a file for another architecture is refused with a
clear message. Nothing is ever unpickled.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from . import __version__
from .config import Config
from .errors import LiverLesionSegError, ModelError, first_line, refuse_an_empty_file
from .io.atomic import atomic_path
from .model import build_network

FORMAT = "liverlesionseg"
FORMAT_VERSION = 1
_MODEL = "model."
_OPTIMIZER = "optimizer."
DIGEST_KEY = "tensors_sha256"  # (checkpoints written before it came are read unchecked)


@dataclass
class Checkpoint:
    path: Path
    config: Config
    network: torch.nn.Module
    state: dict = field(default_factory=dict)  # training state: cycle, epoch, step, history, cases
    optimizer_state: Optional[dict] = None

    @property
    def description(self) -> str:
        model = self.config.model
        return f"{model.arch}/{model.encoder}, {self.config.preprocess.in_channels} input channel(s)"


def save_checkpoint(path: str | os.PathLike, network: torch.nn.Module, config: Config, state: dict,
                    optimizer: Optional[torch.optim.Optimizer] = None, half: bool = False) -> Path:
    """Write atomically: an interrupted write leaves any previous file at `path` intact."""
    from safetensors.torch import save

    tensors = {}
    for name, tensor in network.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[_MODEL + name] = tensor.contiguous()
    optimizer_meta = None
    if optimizer is not None:
        optimizer_state = optimizer.state_dict()
        for index, values in optimizer_state["state"].items():
            for key, value in values.items():
                tensors[f"{_OPTIMIZER}{index}.{key}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
        optimizer_meta = {"param_groups": optimizer_state["param_groups"]}
    meta = {
        "config": config.to_dict(),
        "state": state,
        "optimizer": optimizer_meta,
        "software": f"liverlesionseg {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "meta": json.dumps(meta),
                DIGEST_KEY: tensors_digest(tensors)}
    with atomic_path(path) as tmp:
        # Serialised here and written by us: safetensors' save_file writes through a `.tmpXXXXXX` of its own
        # beside the file, which a killed process leaves behind under a name nothing can recognise as ours.
        try:
            data = save(tensors, metadata=metadata)
        except Exception as exc:  # safetensors reports failures as its own error, an OS error inside
            raise _as_os_error(exc, tmp) from None
        with open(tmp, "wb") as f:
            f.write(data)
        del data
    return Path(path)


def is_stray_temporary(path: str | os.PathLike) -> bool:
    """True for a `.tmpXXXXXX` file that safetensors' own writer left when a process of an older
    LiverLesionSeg was killed while it wrote a checkpoint: named so and holding our metadata."""
    path = Path(path)
    if not re.fullmatch(r"\.tmp[A-Za-z0-9]{6}", path.name) or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = f.read(min(size, 1 << 20)) if size > 2 else b""
    except OSError:
        return False
    return header.startswith(b"{") and b'"format":"' + FORMAT.encode() + b'"' in header.replace(b" ", b"")


def _as_os_error(exc: Exception, path: Path) -> Exception:
    """safetensors' "I/O error: No space left on device (os error 28)" as the OSError it was."""
    from .io.atomic import write_failure_errno

    if isinstance(exc, OSError):
        return exc
    found = re.search(r"os error (\d+)", str(exc))
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    if "I/O error" in str(exc):
        return OSError(write_failure_errno(path), first_line(exc, 160))
    return exc


def read_metadata(path: str | os.PathLike) -> tuple[Config, dict]:
    """The configuration and training state of a checkpoint, without building the network."""
    meta, _ = _open(path, load_tensors=False)
    return _config(meta, path), _state(meta, path)


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu",
                    with_optimizer: bool = False) -> Checkpoint:
    meta, tensors = _open(path, load_tensors=True)
    config = _config(meta, path)
    state = _state(meta, path)
    try:
        network = build_network(config)
    except LiverLesionSegError as exc:
        raise ModelError(f"describes a network that cannot be built ({exc.problem})", path,
                         "update liverlesionseg (a newer one may know that network), or use the original checkpoint"
                         ) from None
    model_tensors = {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}
    _check_matches(network, model_tensors, config, path)
    try:
        network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in model_tensors.items()})
    except (RuntimeError, TypeError) as exc:  # tensors of a type a parameter cannot take
        raise ModelError(f"weights cannot be loaded ({first_line(exc, 160)})", path, "use the original checkpoint") from None
    network.to(device).eval()
    optimizer_state = _optimizer_state(meta, tensors, network, path) if with_optimizer else None
    return Checkpoint(Path(path), config, network, state, optimizer_state)


def _open(path, load_tensors: bool) -> tuple[dict, dict]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError("no such model file" if not path.exists() else "is not a file", path,
                         "give a .safetensors checkpoint written by liverlesionseg train")
    refuse_an_empty_file(path, ModelError, "copy the checkpoint again")
    kind = _pickle_kind(path)
    if kind:
        raise ModelError(f"is a {kind}: LiverLesionSeg never unpickles model files, because unpickling can run "
                         "any code hidden in them", path,
                         "give a .safetensors checkpoint written by liverlesionseg train")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ModelError("is a safetensors file but not a LiverLesionSeg checkpoint (no liverlesionseg metadata)",
                                 path, "give a checkpoint written by liverlesionseg train")
            tensors = {k: f.get_tensor(k) for k in f.keys()} if load_tensors else {}
    except ModelError:
        raise
    except Exception as exc:  # safetensors raises its own error types for bad headers and short files
        raise ModelError(f"is not a readable checkpoint ({_safetensors_fault(exc)})", path,
                         "give a .safetensors checkpoint written by liverlesionseg train; if it was copied, copy it again") from None
    try:
        version = int(metadata.get("format_version", "0"))
        meta = json.loads(metadata["meta"])
    except (KeyError, ValueError):
        raise ModelError("has damaged checkpoint metadata", path, "use another copy of the checkpoint") from None
    if not isinstance(meta, dict):
        raise ModelError("has damaged checkpoint metadata (not a JSON object)", path, "use another copy of the checkpoint")
    if version > FORMAT_VERSION:
        raise ModelError(f"was written by a newer LiverLesionSeg (checkpoint format {version})", path,
                         "update liverlesionseg")
    if tensors and DIGEST_KEY in metadata and tensors_digest(tensors) != metadata[DIGEST_KEY]:
        raise ModelError("its weights do not match the checksum written with them: bytes of the file were changed or "
                         "damaged after it was written", path, "use another copy of it, or an earlier checkpoint")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelError(f"holds weights that are not finite ({name})", path, "use an earlier checkpoint")
    return meta, tensors


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' names and bytes, which safetensors does not check: a bit flipped in a weight
    (a disk's or a copy's damage) would load as another model without a word."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _config(meta: dict, path) -> Config:
    try:
        return Config.from_dict(meta.get("config") or {}, str(path)).validated(str(path))
    except LiverLesionSegError as exc:
        raise ModelError(f"has a configuration this version cannot use ({exc.problem})", path,
                         "update liverlesionseg or retrain") from None


def _check_matches(network: torch.nn.Module, tensors: dict[str, torch.Tensor], config: Config, path) -> None:
    expected = network.state_dict()
    describe = f"{config.model.arch}/{config.model.encoder}"
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        if wrong:
            k = wrong[0]
            detail = f"{k} has shape {tuple(tensors[k].shape)}, {describe} needs {tuple(expected[k].shape)}"
        elif missing:
            detail = f"{len(missing)} tensor(s) of {describe} missing, e.g. {missing[0]}"
        else:
            detail = f"{len(unexpected)} tensor(s) that {describe} does not have, e.g. {unexpected[0]}"
        raise ModelError(f"weights do not match the architecture the checkpoint names ({detail})", path,
                         "the file is damaged or was edited; use the original checkpoint")


def _state(meta: dict, path) -> dict:
    """The training state, checked to have the shape that resuming and plotting rely on."""
    state = meta.get("state") or {}
    if not _usable_state(state):
        raise ModelError("has a damaged training state in its metadata", path, "use another copy of the checkpoint")
    return state


def _usable_state(state) -> bool:
    if not isinstance(state, dict):
        return False
    history = state.get("history", {})
    if not isinstance(history, dict):
        return False
    steps, epochs = history.get("steps", []), history.get("epochs", [])
    if not (isinstance(steps, list) and isinstance(epochs, list)):
        return False
    return (all(_count(state.get(key, 0)) for key in ("epoch", "step"))
            and all(isinstance(r, dict) and _count(r.get("step")) and _number(r.get("loss")) for r in steps)
            and all(isinstance(r, dict) and _count(r.get("epoch")) for r in epochs)
            and isinstance(state.get("best", {}), dict)
            and all(isinstance(names, list) and all(isinstance(n, str) for n in names)
                    for names in (state.get("train_cases", []), state.get("val_cases", []))))


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optimizer_state(meta: dict, tensors: dict[str, torch.Tensor], network: torch.nn.Module,
                     path) -> Optional[dict[str, Any]]:
    """The optimizer state to resume with, checked by loading it into an optimizer for `network`."""
    optimizer = meta.get("optimizer")
    if not optimizer:
        return None
    try:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for name, tensor in tensors.items():
            if name.startswith(_OPTIMIZER):
                index, key = name[len(_OPTIMIZER):].split(".", 1)
                state.setdefault(int(index), {})[key] = tensor
        result = {"state": state, "param_groups": optimizer["param_groups"]}
        trial = torch.optim.AdamW(network.parameters())
        trial.load_state_dict(result)
        for group in trial.param_groups:
            betas = group["betas"]
            if not (all(_number(group[key]) and group[key] >= 0 for key in ("lr", "weight_decay", "eps"))
                    and len(betas) == 2 and all(_number(b) and 0 <= b < 1 for b in betas)):
                raise ValueError("settings out of range")
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        raise ModelError(f"has a damaged optimizer state ({first_line(exc, 160)})", path,
                         "use another copy of the checkpoint, or fine-tune it with --init instead of --resume") from None
    return result


# safetensors' words for a damaged file ("Error while deserializing header: …"), and what they mean
NO_HEADER_LENGTH = ("its first 8 bytes give no header length a safetensors file has: it is no checkpoint, or its "
                    "start is damaged")
SAFETENSORS_FAULTS = {
    "incomplete metadata, file not fully covered": "its tensors do not fill the file as its header lays them out: "
                                                   "it is cut short, has bytes added, or its header is damaged",
    "invalid UTF-8 in header": "its header holds bytes that are no text: it is damaged",
    "header too large": NO_HEADER_LENGTH,
    "invalid header length": NO_HEADER_LENGTH,
}


def _safetensors_fault(exc: Exception) -> str:
    """What safetensors' error on reading a file means (its own words where none is known)."""
    return next((meaning for words, meaning in SAFETENSORS_FAULTS.items() if words in str(exc)), first_line(exc, 160))


def _pickle_kind(path: Path) -> Optional[str]:
    """What a file is when it is a pickle in disguise: a `torch.save` file (a zip archive holding
    a pickle) or a bare pickle; None otherwise. Only the first bytes are read."""
    with open(path, "rb") as f:
        start = f.read(9)
    if start[8:9] == b"{":  # the safetensors layout: an 8-byte length, then the JSON header
        return None
    if start.startswith(b"PK\x03\x04"):
        return "PyTorch file in torch.save's zip format (.pt, .pth, .ckpt), which holds a pickle"
    if len(start) >= 2 and start[0] == 0x80 and 2 <= start[1] <= 5:  # the PROTO opcode, protocols 2-5
        return "Python pickle (.pt, .pth, .ckpt or .pkl)"
    return None
