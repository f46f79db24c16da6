"""Where the bundled model and sample case live: `LiverLesionSeg/Resources/` in a checkout and in
Slicer, the `LiverLesionSegLib.resources` package data in an installed wheel."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError, ModelError

MODEL_FILE = "liverlesionseg-default.safetensors"
MODEL_CARD = "MODEL_CARD.md"
SAMPLE_FOLDER = "HCC_006_sample"


def resources_dir() -> Path:
    beside = Path(__file__).resolve().parent.parent / "Resources"
    if beside.is_dir():
        return beside
    from importlib.resources import files

    return Path(str(files("LiverLesionSegLib.resources")))


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
