"""A catalogue of broken inputs, each built in a temporary folder from the real shared cases.

Every entry builds its input and returns the command line to run, the exit status (that is, the
error class) it must end with, and a fragment the one-line message must hold. `test_cli_errors.py`
runs them all; a new broken input is one more function here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import SimpleITK as sitk

INPUT, GEOMETRY, MODEL, OUTPUT, TRAINING = 3, 4, 5, 6, 7


@dataclass
class BadInput:
    argv: list[str]
    exit_code: int
    fragment: str  # a piece of the message, lower case
    names: str  # a file or folder name the message must name


CATALOGUE: dict[str, Callable[..., BadInput]] = {}


def entry(function):
    CATALOGUE[function.__name__] = function
    return function


def ct_slices(data_dir: Path, n: int = 6) -> list[Path]:
    """n consecutive real CT slices of HCC_006 (file names in slice order)."""
    series = next((data_dir / "hcc-tace-seg" / "HCC_006").glob("*/*"))
    return sorted(series.glob("1-*.dcm"))[40:40 + n]


def copy_slices(data_dir: Path, folder: Path, n: int = 6) -> list[Path]:
    folder.mkdir(parents=True)
    return [Path(shutil.copy(f, folder / f.name)) for f in ct_slices(data_dir, n)]


def edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)


def segment(input_path: Path, tmp: Path, model: Path, *extra: str) -> list[str]:
    return ["segment", str(input_path), "-o", str(tmp / "out.nii.gz"), "--model", str(model), *extra]


@entry
def empty_folder(data_dir, tmp, model):
    (tmp / "empty").mkdir()
    return BadInput(segment(tmp / "empty", tmp, model), INPUT, "no dicom", "empty")


@entry
def folder_of_non_dicom_files(data_dir, tmp, model):
    folder = tmp / "notes"
    folder.mkdir()
    for n in range(3):
        (folder / f"note{n}.txt").write_text("not an image\n")
    return BadInput(segment(folder, tmp, model), INPUT, "no dicom", "notes")


@entry
def missing_input(data_dir, tmp, model):
    return BadInput(segment(tmp / "nowhere", tmp, model), INPUT, "does not exist", "nowhere")


@entry
def mr_series(data_dir, tmp, model):
    for path in copy_slices(data_dir, tmp / "mr"):
        edit(path, Modality="MR")
    return BadInput(segment(tmp / "mr", tmp, model), INPUT, "mr", "mr")


@entry
def single_slice(data_dir, tmp, model):
    copy_slices(data_dir, tmp / "one", n=1)
    return BadInput(segment(tmp / "one", tmp, model), GEOMETRY, "slice", "one")


@entry
def two_dimensional_nifti(data_dir, tmp, model):
    image = sitk.GetImageFromArray(np.zeros((64, 64), np.int16))
    sitk.WriteImage(image, str(tmp / "flat.nii.gz"))
    return BadInput(segment(tmp / "flat.nii.gz", tmp, model), GEOMETRY, "2-d", "flat.nii.gz")


@entry
def slices_with_a_gap(data_dir, tmp, model):
    files = copy_slices(data_dir, tmp / "gap")
    files[3].unlink()
    return BadInput(segment(tmp / "gap", tmp, model), GEOMETRY, "gap", "gap")


@entry
def truncated_nifti(data_dir, tmp, model):
    image = sitk.GetImageFromArray(np.zeros((8, 64, 64), np.int16))
    sitk.WriteImage(image, str(tmp / "cut.nii"))
    data = (tmp / "cut.nii").read_bytes()
    (tmp / "cut.nii").write_bytes(data[: len(data) // 2])
    return BadInput(segment(tmp / "cut.nii", tmp, model), INPUT, "", "cut.nii")


@entry
def mask_that_does_not_match_its_image(data_dir, tmp, model):
    case = tmp / "pair"
    case.mkdir()
    image = sitk.GetImageFromArray(np.zeros((8, 64, 64), np.int16))
    labels = sitk.GetImageFromArray(np.zeros((8, 60, 64), np.uint8))
    sitk.WriteImage(image, str(case / "image.nii.gz"))
    sitk.WriteImage(labels, str(case / "labels.nii.gz"))
    return BadInput(["train", str(case), "--out", str(tmp / "run")], GEOMETRY, "", "labels.nii.gz")


@entry
def checkpoint_of_another_architecture(data_dir, tmp, model):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    meta = json.loads(metadata["meta"])
    meta["config"]["model"]["encoder"] = "resnet34"
    metadata["meta"] = json.dumps(meta)
    save_file(tensors, str(tmp / "other.safetensors"), metadata=metadata)
    return BadInput(segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, tmp / "other.safetensors"),
                    MODEL, "do not match", "other.safetensors")


@entry
def file_that_is_not_a_checkpoint(data_dir, tmp, model):
    (tmp / "model.safetensors").write_text("this is not a model")
    return BadInput(segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, tmp / "model.safetensors"),
                    MODEL, "not a readable checkpoint", "model.safetensors")


@entry
def output_folder_that_does_not_exist(data_dir, tmp, model):
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(tmp / "no" / "out.nii.gz"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "does not exist", "no")


@entry
def unknown_output_format(data_dir, tmp, model):
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(tmp / "out.png"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "unknown output format", "out.png")
