"""Where the bundled model and sample case live: `LiverLesionSeg/Resources/` in a checkout and in
Slicer, the `LiverLesionSegLib.resources` package data in an installed wheel.

The bundled model comes with a machine-readable card (`liverlesionseg-default.json`): before use,
the file's SHA-256 and the architecture its metadata names are checked against the card.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from .config import Config
from .errors import InputError, ModelError

MODEL_FILE = "liverlesionseg-default.safetensors"
MODEL_CARD = "MODEL_CARD.md"
MODEL_CARD_DATA = "liverlesionseg-default.json"
SAMPLE_FOLDER = "HCC_006_sample"


def unpacked_cases_dir() -> Path:
    """Where `../shared/data/unpack` puts the real cases for the tests, benchmarks and tools:
    $LIVERLESIONSEG_DATA, else ~/.cache/liverlesionseg/data."""
    return Path(os.environ.get("LIVERLESIONSEG_DATA") or Path.home() / ".cache" / "liverlesionseg" / "data")


def resources_dir() -> Path:
    beside = Path(__file__).resolve().parent.parent / "Resources"
    if beside.is_dir():
        return beside
    from importlib.resources import files

    return Path(str(files("LiverLesionSegLib.resources")))


def model_card_path() -> Path:
    return resources_dir() / "Models" / MODEL_CARD_DATA


def bundled_model_path() -> Path:
    path = resources_dir() / "Models" / MODEL_FILE
    if not path.is_file():
        raise ModelError("the bundled model is missing", path,
                         "reinstall liverlesionseg, or give a checkpoint with --model")
    return path


def sample_case_path() -> Path:
    path = resources_dir() / "SampleData" / SAMPLE_FOLDER
    if not path.is_dir():
        raise InputError("the bundled sample case is missing", path, "reinstall liverlesionseg, or give an input")
    return path


def architecture_of(config: Config) -> dict:
    """What must agree between a model's metadata and its card."""
    return {"arch": config.model.arch, "encoder": config.model.encoder,
            "in_channels": config.preprocess.in_channels, "classes": list(config.model.classes),
            "input_size": config.preprocess.size, "zoom": config.preprocess.zoom}


def load_model(path: Optional[str | os.PathLike], device="cpu"):
    """A checkpoint given by the user, or (path None) the bundled model checked against its card."""
    from .checkpoint import load_checkpoint

    if path is not None:
        return load_checkpoint(path, device)
    path = bundled_model_path()
    card = _read_card()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != card.get("sha256"):
        raise ModelError("the bundled model does not match its card (another SHA-256): the file was changed or "
                         "damaged", path, "reinstall liverlesionseg")
    checkpoint = load_checkpoint(path, device)
    found = architecture_of(checkpoint.config)
    if found != card.get("architecture"):
        raise ModelError(f"the bundled model's architecture {found} is not the one its card states "
                         f"{card.get('architecture')}", path, "reinstall liverlesionseg")
    return checkpoint


def _read_card() -> dict:
    path = model_card_path()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the bundled model's card ({exc})", path, "reinstall liverlesionseg") from None
