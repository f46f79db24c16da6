"""A catalogue of broken inputs, each built in a temporary folder from the real shared cases.

Every entry builds its input and returns the command line to run, the exit status (that is, the
error class) it must end with, and a fragment the one-line message must hold. `test_cli_errors.py`
runs them all in-process; `new_user_pass.py` runs them through the installed `liverlesionseg`
command in a terminal, as a new user would. A new broken input is one more function here; its
docstring's first line is its row in docs/robustness.md.

Faults that no file can carry (a full disk, a file size limit) come as a `fault`: a context
manager around the run. Where the real thing needs privileges (a tiny tmpfs, a read-only bind
mount), the entry makes it when it can and is skipped when it cannot.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Optional

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

INPUT, GEOMETRY, MODEL, OUTPUT, TRAINING, RESOURCE = 3, 4, 5, 6, 7, 8


@dataclass
class BadInput:
    argv: list[str]
    exit_code: int
    fragment: str  # a piece of the message, lower case
    names: str  # a file or folder name the message must name
    existing: Optional[Path] = None  # an output the user already has (default: out.nii.gz in the folder)
    fault: Optional[Callable[[], ContextManager]] = None  # a simulated fault, active while the command runs
    in_process_only: bool = False  # the fault is a monkeypatch: it cannot reach a separate process
    cleanup: Optional[Callable[[], None]] = None  # undo what the entry set up outside its folder (mounts)


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
    """Set elements of the DICOM file at `path` (an element given None is removed)."""
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def multiframe_file(slices: list[Path], path: Path, series_uid: Optional[str] = None) -> Path:
    """The slices as one multi-frame DICOM file (a Legacy Converted Enhanced CT Image, made by
    highdicom), their frames in the order given."""
    import warnings

    import highdicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom on the anonymised patient name
        image = highdicom.legacy.LegacyConvertedEnhancedCTImage(
            [pydicom.dcmread(f) for f in slices], series_instance_uid=series_uid or highdicom.UID(),
            series_number=90, sop_instance_uid=highdicom.UID(), instance_number=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save_as(path)
    return path


def rewrite_checkpoint_metadata(source: Path, target: Path, edit: Callable[[dict, dict], None]) -> Path:
    """A copy of a checkpoint with its metadata changed by `edit(metadata, meta)`: the safetensors
    metadata and the JSON inside it. The tensors are unchanged."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    meta = json.loads(metadata["meta"])
    edit(metadata, meta)
    metadata["meta"] = json.dumps(meta)
    save_file(tensors, str(target), metadata=metadata)
    return target


def segment(input_path: Path, tmp: Path, model: Path, *extra: str) -> list[str]:
    return ["segment", str(input_path), "-o", str(tmp / "out.nii.gz"), "--model", str(model), *extra]


@entry
def empty_folder(data_dir, tmp, model):
    """An empty folder."""
    (tmp / "empty").mkdir()
    return BadInput(segment(tmp / "empty", tmp, model), INPUT, "no dicom", "empty")


@entry
def folder_of_non_dicom_files(data_dir, tmp, model):
    """A folder of files that are not DICOM."""
    folder = tmp / "notes"
    folder.mkdir()
    for n in range(3):
        (folder / f"note{n}.txt").write_text("not an image\n")
    return BadInput(segment(folder, tmp, model), INPUT, "no dicom", "notes")


@entry
def missing_input(data_dir, tmp, model):
    """An input path that does not exist."""
    return BadInput(segment(tmp / "nowhere", tmp, model), INPUT, "does not exist", "nowhere")


@entry
def named_pipe_given_as_the_input(data_dir, tmp, model):
    """A named pipe (or /dev/null, a device) given as the input."""
    os.mkfifo(tmp / "pipe")
    return BadInput(segment(tmp / "pipe", tmp, model), INPUT, "is neither a file nor a folder", "pipe")


@entry
def input_name_too_long(data_dir, tmp, model):
    """An input whose name is longer than the file system allows (300 characters)."""
    return BadInput(segment(tmp / ("L" * 293 + ".nii.gz"), tmp, model), INPUT, "cannot be looked up", "L" * 293)


@entry
def mr_series(data_dir, tmp, model):
    """An MR series instead of a CT series."""
    folder = six_edited(data_dir, tmp, "mr", Modality="MR", SOPClassUID=pydicom.uid.MRImageStorage)
    return BadInput(segment(folder, tmp, model), INPUT, "mr", "mr")


@entry
def single_slice(data_dir, tmp, model):
    """A DICOM folder with a single 2-D slice."""
    copy_slices(data_dir, tmp / "one", n=1)
    return BadInput(segment(tmp / "one", tmp, model), GEOMETRY, "slice", "one")


@entry
def two_dimensional_nifti(data_dir, tmp, model):
    """A 2-D NIfTI image."""
    image = sitk.GetImageFromArray(np.zeros((64, 64), np.int16))
    sitk.WriteImage(image, str(tmp / "flat.nii.gz"))
    return BadInput(segment(tmp / "flat.nii.gz", tmp, model), GEOMETRY, "2-d", "flat.nii.gz")


@entry
def metaimage_of_no_voxels(data_dir, tmp, model):
    """A MetaImage whose header gives a side of 0 voxels (a damaged DimSize)."""
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 64, 64), np.int16)), str(tmp / "empty.mha"))
    header_and_data = (tmp / "empty.mha").read_bytes()
    (tmp / "empty.mha").write_bytes(header_and_data.replace(b"DimSize = 64 64 8", b"DimSize = 64 64 0", 1))
    return BadInput(segment(tmp / "empty.mha", tmp, model), GEOMETRY, "no voxels", "empty.mha")


@entry
def label_map_given_as_the_ct(data_dir, tmp, model):
    """A label map (0 background, 1 liver, 2 lesion) given where the CT belongs."""
    case = small_case(data_dir, tmp / "case")
    return BadInput(segment(case / "labels.nii.gz", tmp, model), INPUT, "a label map or mask, not a ct",
                    "labels.nii.gz")


@entry
def dicom_series_of_a_mask(data_dir, tmp, model):
    """A DICOM series whose images hold a mask (0 background, 1 liver, 2 lesion): a tool's export labelled CT."""
    folder, files = copy_six(data_dir, tmp, "mask-series")
    for path in files:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array.dtype
        mask = np.zeros((ds.Rows, ds.Columns), stored)
        mask[100:300, 100:300] = 1
        mask[150:200, 150:200] = 2
        ds.PixelData, ds.RescaleIntercept, ds.RescaleSlope = mask.tobytes(), 0, 1
        ds.save_as(path)
    return BadInput(segment(folder, tmp, model), INPUT, "a label map or mask, not a ct", "mask-series")


@entry
def slicer_segmentation_given_as_the_ct(data_dir, tmp, model):
    """A Slicer segmentation (.seg.nrrd, this tool's own output) given where the CT belongs."""
    from LiverLesionSegLib.io.write import save_labels

    ct, labels = labelled_slices(data_dir)
    save_labels(tmp / "result.seg.nrrd", ct.with_array(labels), "segmentation")
    return BadInput(segment(tmp / "result.seg.nrrd", tmp, model), INPUT, "holds only the values 0, 1, 2",
                    "result.seg.nrrd")


@entry
def slices_with_a_gap(data_dir, tmp, model):
    """A DICOM series with a slice missing (a gap)."""
    files = copy_slices(data_dir, tmp / "gap")
    files[3].unlink()
    return BadInput(segment(tmp / "gap", tmp, model), GEOMETRY, "gap", "gap")


@entry
def slice_filed_under_another_series_uid(data_dir, tmp, model):
    """A DICOM series one of whose slices carries another SeriesInstanceUID (an edit, or an export that re-sent it)."""
    files = copy_slices(data_dir, tmp / "split")
    edit(files[3], SeriesInstanceUID="1.2.3")
    return BadInput(segment(tmp / "split", tmp, model), GEOMETRY, "another seriesinstanceuid", files[3].name)


@entry
def truncated_nifti(data_dir, tmp, model):
    """A NIfTI file cut in half."""
    image = sitk.GetImageFromArray(np.zeros((8, 64, 64), np.int16))
    sitk.WriteImage(image, str(tmp / "cut.nii"))
    data = (tmp / "cut.nii").read_bytes()
    (tmp / "cut.nii").write_bytes(data[: len(data) // 2])
    return BadInput(segment(tmp / "cut.nii", tmp, model), INPUT, "", "cut.nii")


@entry
def empty_image_file(data_dir, tmp, model):
    """An empty NIfTI file (0 bytes), as a copy that stopped before any data leaves it."""
    (tmp / "ct.nii.gz").write_bytes(b"")
    return BadInput(segment(tmp / "ct.nii.gz", tmp, model), INPUT, "is an empty file (0 bytes)", "ct.nii.gz")


@entry
def empty_segmentation_file(data_dir, tmp, model):
    """An empty DICOM SEG file (0 bytes) given to measure with its CT."""
    (tmp / "seg.dcm").write_bytes(b"")
    return BadInput(["measure", str(data_dir / "tace" / "RadCTTACEomics_0697"), str(tmp / "seg.dcm"), "--lesions",
                     str(tmp / "lesions.csv")], INPUT, "is an empty file (0 bytes)", "seg.dcm")


@entry
def mask_that_does_not_match_its_image(data_dir, tmp, model):
    """A label map whose shape differs from its image's (train)."""
    case = tmp / "pair"
    case.mkdir()
    image = sitk.GetImageFromArray(np.zeros((8, 64, 64), np.int16))
    labels = sitk.GetImageFromArray(np.zeros((8, 60, 64), np.uint8))
    sitk.WriteImage(image, str(case / "image.nii.gz"))
    sitk.WriteImage(labels, str(case / "labels.nii.gz"))
    return BadInput(["train", str(case), "--out", str(tmp / "run")], GEOMETRY, "", "labels.nii.gz")


@entry
def checkpoint_of_another_architecture(data_dir, tmp, model):
    """A checkpoint whose weights are not of the architecture its metadata names."""
    def claim_resnet34(metadata, meta):
        meta["config"]["model"]["encoder"] = "resnet34"

    rewrite_checkpoint_metadata(model, tmp / "other.safetensors", claim_resnet34)
    return BadInput(segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, tmp / "other.safetensors"),
                    MODEL, "do not match", "other.safetensors")


@entry
def empty_checkpoint(data_dir, tmp, model):
    """An empty checkpoint file (0 bytes) given to --model."""
    (tmp / "model.safetensors").write_bytes(b"")
    return BadInput(segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, tmp / "model.safetensors"), MODEL,
                    "is an empty file (0 bytes)", "model.safetensors")


@entry
def file_that_is_not_a_checkpoint(data_dir, tmp, model):
    """A text file given as the model."""
    (tmp / "model.safetensors").write_text("this is not a model")
    return BadInput(segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, tmp / "model.safetensors"),
                    MODEL, "not a readable checkpoint", "model.safetensors")


@entry
def output_folder_that_does_not_exist(data_dir, tmp, model):
    """An output in a folder that does not exist."""
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(tmp / "no" / "out.nii.gz"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "does not exist", "no")


@entry
def unknown_output_format(data_dir, tmp, model):
    """An output named with a suffix no writer knows (.png)."""
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(tmp / "out.png"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "unknown output format", "out.png")


@entry
def output_name_too_long(data_dir, tmp, model):
    """An output whose name is longer than the file system allows (300 characters)."""
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(tmp / ("L" * 293 + ".nii.gz")),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "the file name is too long", "L" * 293)


@entry
def overlay_in_a_picture_format_no_writer_knows(data_dir, tmp, model):
    """An overlay picture named with a suffix no picture writer knows (`.bmp`)."""
    argv = segment(data_dir / "tace" / "RadCTTACEomics_0697", tmp, model, "--overlay", str(tmp / "overlay.bmp"))
    return BadInput(argv, OUTPUT, "unknown picture format", "overlay.bmp")


@entry
def dicom_report_for_a_nifti_input(data_dir, tmp, model):
    """A DICOM SR lesion report (`--lesions report.dcm`) asked for a NIfTI CT, which has no DICOM series to lie on."""
    ct, _ = labelled_slices(data_dir)
    sitk.WriteImage(ct.to_sitk(), str(tmp / "ct.nii.gz"))
    argv = ["segment", str(tmp / "ct.nii.gz"), "-o", str(tmp / "out.nii.gz"), "--lesions", str(tmp / "report.dcm"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "a dicom sr lesion report must lie on a dicom series", "report.dcm")


@entry
def dicom_seg_output_for_a_nifti_input(data_dir, tmp, model):
    """A DICOM SEG output (`.dcm`) asked for a NIfTI CT, which has no DICOM series to lie on."""
    ct, _ = labelled_slices(data_dir)
    sitk.WriteImage(ct.to_sitk(), str(tmp / "ct.nii.gz"))
    argv = ["segment", str(tmp / "ct.nii.gz"), "-o", str(tmp / "out.dcm"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "must lie on a dicom series", "out.dcm")


@entry
def several_inputs_one_of_them_missing(data_dir, tmp, model):
    """Several inputs, one of them a path that does not exist (a typo)."""
    argv = ["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), str(tmp / "typo"), "-o", str(tmp / "results"),
            "--model", str(model)]
    return BadInput(argv, INPUT, "does not exist (1 of the 2 inputs)", "typo")

@entry
def dicom_seg_output_for_a_series_without_frame_of_reference(data_dir, tmp, model):
    """A DICOM SEG output asked for a real series without FrameOfReferenceUID (3D-IRCADb-01's)."""
    argv = ["segment", str(data_dir / "ircadb" / "3Dircadb1.17"), "-o", str(tmp / "out.dcm"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "no frameofreferenceuid", "PATIENT_DICOM")


@entry
def dicom_seg_output_for_a_series_without_study_uid(data_dir, tmp, model):
    """A DICOM SEG output asked for a series whose StudyInstanceUID an anonymiser removed."""
    folder, files = copy_six(data_dir, tmp, "anonymised")
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.StudyInstanceUID
        ds.save_as(path)
    argv = ["segment", str(folder), "-o", str(tmp / "out.dcm"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "no studyinstanceuid", "anonymised")


@entry
def dicom_seg_output_for_a_series_split_over_two_studies(data_dir, tmp, model):
    """A DICOM SEG output asked for a series whose images an anonymiser gave two StudyInstanceUIDs."""
    folder, files = copy_six(data_dir, tmp, "split")
    study = pydicom.uid.generate_uid()
    for path in files[3:]:
        edit(path, StudyInstanceUID=study)
    argv = ["segment", str(folder), "-o", str(tmp / "out.dcm"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "carry different studyinstanceuids", "split")


@entry
def dicom_seg_output_for_images_sharing_one_uid(data_dir, tmp, model):
    """A DICOM SEG output asked for a series two of whose images an anonymiser gave one SOPInstanceUID."""
    folder, files = copy_six(data_dir, tmp, "same-uid")
    edit(files[3], SOPInstanceUID=pydicom.dcmread(files[0]).SOPInstanceUID)
    argv = ["segment", str(folder), "-o", str(tmp / "out.dcm"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "have the one sopinstanceuid", "same-uid")


# --- helpers for the entries below ---------------------------------------------------------------

def tace_case(data_dir: Path) -> Path:
    """A real case to segment where the input itself is fine (the fault is elsewhere)."""
    return data_dir / "tace" / "RadCTTACEomics_0697"


def copy_six(data_dir: Path, tmp: Path, name: str) -> tuple[Path, list[Path]]:
    """Six real CT slices in `tmp/name`: the folder and its files."""
    folder = tmp / name
    return folder, copy_slices(data_dir, folder)


def six_edited(data_dir: Path, tmp: Path, name: str, **changes) -> Path:
    """Six real CT slices in `tmp/name`, each with the DICOM attributes `changes` set."""
    folder, files = copy_six(data_dir, tmp, name)
    for path in files:
        edit(path, **changes)
    return folder


@functools.lru_cache(maxsize=None)
def labelled_slices(data_dir: Path):
    """Eight slices of 3Dircadb1.17 through its liver and lesions, with their true masks."""
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.volume import Volume

    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    crop = slice(88, 96)
    origin = case.ct.physical_points([[0, 0, crop.start]])[0]
    ct = Volume(case.ct.array[crop].copy(), case.ct.spacing, origin, case.ct.direction, "3Dircadb1.17 crop")
    return ct, case.label_map()[crop].copy()


def small_case(data_dir: Path, folder: Path) -> Path:
    """A real labelled case (image.nii.gz + labels.nii.gz) small enough to train on in seconds."""
    ct, labels = labelled_slices(data_dir)
    folder.mkdir(parents=True)
    sitk.WriteImage(ct.to_sitk(), str(folder / "image.nii.gz"))
    sitk.WriteImage(ct.with_array(labels).to_sitk(), str(folder / "labels.nii.gz"))
    return folder


def write_nifti(path: Path, array: np.ndarray, spacing=(0.8, 0.8, 2.5)) -> Path:
    """A [k, j, i] array as a NIfTI file (through SimpleITK, as other tools write them)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


def small_checkpoint(path: Path, edit_meta: Optional[Callable[[dict, dict], None]] = None, nan: bool = False) -> Path:
    """A real checkpoint of a small network (Linknet, tu-lcnet_035) written by `save_checkpoint`;
    `edit_meta(metadata, meta)` edits its safetensors metadata and the JSON inside afterwards;
    `nan` spoils one weight."""
    import torch

    from LiverLesionSegLib.checkpoint import save_checkpoint
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.model import build_network

    config = Config()
    config.model.arch, config.model.encoder, config.preprocess.size = "Linknet", "tu-lcnet_035", 64
    torch.manual_seed(0)
    network = build_network(config)
    if nan:
        with torch.no_grad():
            next(network.parameters()).view(-1)[0] = float("nan")
    save_checkpoint(path, network, config, {"epoch": 1, "step": 4})
    if edit_meta is not None:
        rewrite_checkpoint_metadata(path, path, edit_meta)
    return path


class _WritesAMarker:
    """Unpickled, this makes a folder: proof that code ran. Pickled by reference to os.mkdir."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def crafted_pickle(path: Path, marker: Path) -> Path:
    """A .pt/.pth/.ckpt file that runs code (makes `marker`) when unpickled: torch.save's zip
    format for .pt and .pth, a bare pickle otherwise."""
    import torch

    payload = {"state_dict": _WritesAMarker(marker)}
    if path.suffix in (".pt", ".pth"):
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(*command: str) -> bool:
    return subprocess.run(list(command), capture_output=True).returncode == 0


def _unmount(folder: Path) -> Callable[[], None]:
    return lambda: _run("umount", str(folder))


# --- more DICOM series -----------------------------------------------------------------------------

@entry
def several_series_and_an_unknown_choice(data_dir, tmp, model):
    """A folder with two CT series and --series naming neither."""
    folder, _ = copy_six(data_dir, tmp, "two")
    uid = pydicom.uid.generate_uid()
    for path in copy_slices(data_dir, tmp / "two" / "other", n=4):
        edit(path, SeriesInstanceUID=uid, SeriesNumber=7, SeriesDescription="other phase")
    return BadInput(segment(folder, tmp, model, "--series", "99"), INPUT, "no series matches '99'", "two")


@entry
def baseline_and_follow_up_in_one_folder(data_dir, tmp, model):
    """A patient's CD with a baseline and a follow-up CT (two studies): which to segment is asked, not guessed."""
    folder, _ = copy_six(data_dir, tmp, "cd")
    study, series, frame = (pydicom.uid.generate_uid() for _ in range(3))  # a follow-up: a frame of its own
    for path in copy_slices(data_dir, tmp / "cd" / "follow-up"):
        edit(path, StudyInstanceUID=study, StudyDate="20000301", SeriesInstanceUID=series, SeriesNumber=2,
             SOPInstanceUID=pydicom.uid.generate_uid(), FrameOfReferenceUID=frame)
    return BadInput(segment(folder, tmp, model), INPUT, "holds the ct series of 2 studies", "cd")


@entry
def ultrasound_series(data_dir, tmp, model):
    """An ultrasound series instead of a CT series."""
    folder = six_edited(data_dir, tmp, "us", Modality="US", SOPClassUID=pydicom.uid.UltrasoundImageStorage)
    return BadInput(segment(folder, tmp, model), INPUT, "modality us, not ct", "us")


@entry
def rgb_image(data_dir, tmp, model):
    """A DICOM series of RGB colour images."""
    folder, files = copy_six(data_dir, tmp, "rgb")
    for path in files:
        ds = pydicom.dcmread(path)
        grey = (np.clip(ds.pixel_array, 0, 255)).astype(np.uint8)
        ds.PixelData = np.repeat(grey[..., None], 3, axis=2).tobytes()
        ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.save_as(path)
    return BadInput(segment(folder, tmp, model), INPUT, "colour image", "rgb")


@entry
def secondary_capture(data_dir, tmp, model):
    """Secondary-capture images (screenshots) labelled CT."""
    folder = six_edited(data_dir, tmp, "sc", SOPClassUID="1.2.840.10008.5.1.4.1.1.7")
    return BadInput(segment(folder, tmp, model), INPUT, "secondary capture", "sc")


@entry
def multiframe_with_a_missing_frame(data_dir, tmp, model):
    """A multi-frame (enhanced) CT file with a frame missing (a gap)."""
    slices = ct_slices(data_dir)
    path = multiframe_file(slices[:3] + slices[4:], tmp / "enhanced" / "gap.dcm")
    return BadInput(segment(path.parent, tmp, model), GEOMETRY, "slice positions jump", "gap.dcm")


@entry
def truncated_multiframe(data_dir, tmp, model):
    """A multi-frame (enhanced) CT file cut short in its pixel data."""
    path = multiframe_file(ct_slices(data_dir), tmp / "cut" / "enhanced.dcm")
    path.write_bytes(path.read_bytes()[:-100_000])
    return BadInput(segment(path.parent, tmp, model), INPUT, "cannot decode", "enhanced.dcm")


@entry
def multiframe_split_over_two_files(data_dir, tmp, model):
    """One series held in two multi-frame files."""
    slices, uid = ct_slices(data_dir), pydicom.uid.generate_uid()
    multiframe_file(slices[:3], tmp / "halves" / "upper.dcm", uid)
    multiframe_file(slices[3:], tmp / "halves" / "lower.dcm", uid)
    return BadInput(segment(tmp / "halves", tmp, model), INPUT, "split over 2 files", "halves")


@entry
def single_dicom_slice_as_input(data_dir, tmp, model):
    """One DICOM slice given instead of its series' folder."""
    slice_file = copy_slices(data_dir, tmp / "series", n=1)[0]
    return BadInput(segment(slice_file, tmp, model), INPUT, "single dicom slice", slice_file.name)


@entry
def duplicate_slice_position(data_dir, tmp, model):
    """Two slices at the same position (a copied file)."""
    folder, files = copy_six(data_dir, tmp, "duplicate")
    copy = folder / "copy-of-a-slice.dcm"
    shutil.copy(files[2], copy)
    edit(copy, SOPInstanceUID=pydicom.uid.generate_uid())
    return BadInput(segment(folder, tmp, model), GEOMETRY, "same position", "duplicate")


@entry
def mixed_pixel_spacing(data_dir, tmp, model):
    """One slice with another pixel spacing than the rest of its series."""
    folder, files = copy_six(data_dir, tmp, "spacing")
    edit(files[3], PixelSpacing=[0.5, 0.5])
    return BadInput(segment(folder, tmp, model), GEOMETRY, "mixed pixel spacing", files[3].name)


@entry
def slices_shifted_unevenly(data_dir, tmp, model):
    """Axial slices of one series shifted in-plane, but not as a gantry tilt shifts them (two acquisitions mixed)."""
    folder, files = copy_six(data_dir, tmp, "shifted")
    for n, path in enumerate(files):
        x, y, z = (float(v) for v in pydicom.dcmread(path).ImagePositionPatient)
        edit(path, ImagePositionPatient=[x, y + (3.0 if n in (2, 3) else 0.0), z])
    return BadInput(segment(folder, tmp, model), GEOMETRY, "not those of a gantry tilt", "shifted")


def _undecodable_syntax():
    """A compressed transfer syntax that no installed pydicom decoder can read."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import HTJ2KLossless, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1

    for syntax in (JPEGLosslessSV1, JPEGLossless, JPEGExtended12Bit, HTJ2KLossless):
        if not get_decoder(syntax).is_available:
            return syntax
    pytest.skip("every compressed transfer syntax tried has a decoder installed here")


@entry
def compressed_without_a_decoder(data_dir, tmp, model):
    """Pixel data compressed in a syntax no installed decoder reads (High-Throughput JPEG 2000)."""
    # No encoder for that syntax is installed either, so the frame is a placeholder: the reader
    # refuses on the transfer syntax before it touches the frame. (JPEG Lossless, JPEG 2000, JPEG-LS
    # and RLE are decoded: test_io_dicom.py reads them.)
    syntax = _undecodable_syntax()
    folder, files = copy_six(data_dir, tmp, "jpeg")
    for path in files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xc3" + bytes(64) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
        ds.save_as(path, enforce_file_format=True)
    return BadInput(segment(folder, tmp, model), INPUT, "no decoder for it is installed", "jpeg")


@entry
def transfer_syntax_uid_naming_no_transfer_syntax(data_dir, tmp, model):
    """Slices whose TransferSyntaxUID (file meta) names no transfer syntax, as a damaged byte leaves it."""
    folder, files = copy_six(data_dir, tmp, "syntax")
    for path in files:  # pydicom writes no such file: one byte of the UID changed, "1.2.1" to "1.3.1"
        path.write_bytes(path.read_bytes().replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.3.1\x00", 1))
    return BadInput(segment(folder, tmp, model), INPUT, "names no transfer syntax", "syntax")


@entry
def compressed_in_a_form_the_decoders_do_not_support(data_dir, tmp, model):
    """Pixel data in JPEG Extended at 12 bits, which GDCM and Pillow do not decode (pylibjpeg-libjpeg would)."""
    gdcmconv = Path(sys.executable).parent / "gdcmconv"
    if not gdcmconv.is_file():
        pytest.skip("no gdcmconv (python-gdcm) to write JPEG Extended with")
    folder, files = copy_six(data_dir, tmp, "jpeg12")
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PixelData = np.clip(ds.pixel_array.astype(np.int32), 0, 4095).astype(np.uint16).tobytes()
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.save_as(path)
        subprocess.run([str(gdcmconv), "-J", "-Y", "-q", "95", str(path), str(path)], check=True, capture_output=True)
    with contextlib.suppress(Exception):
        pydicom.dcmread(files[0]).pixel_array
        pytest.skip("a decoder for 12-bit JPEG Extended is installed here")
    return BadInput(segment(folder, tmp, model), INPUT, "installed decoders cannot decode", "jpeg12")


@entry
def truncated_dicom_slice(data_dir, tmp, model):
    """A DICOM slice cut in half (its pixel data incomplete)."""
    folder, files = copy_six(data_dir, tmp, "cut")
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) // 2])
    return BadInput(segment(folder, tmp, model), INPUT, "truncated", files[2].name)


@entry
def truncated_dicom_header(data_dir, tmp, model):
    """A DICOM slice cut inside its header: left out, and the gap it leaves names it."""
    folder, files = copy_six(data_dir, tmp, "cut-header")
    files[2].write_bytes(files[2].read_bytes()[:400])
    return BadInput(segment(folder, tmp, model), GEOMETRY, "damaged, truncated or empty dicom file", files[2].name)


@entry
def empty_dicom_slice(data_dir, tmp, model):
    """An empty file (0 bytes) in place of a slice, as a failed copy leaves it: the gap names it."""
    folder, files = copy_six(data_dir, tmp, "copied")
    files[2].write_bytes(b"")
    return BadInput(segment(folder, tmp, model), GEOMETRY, "damaged, truncated or empty dicom file", files[2].name)


@entry
def every_dicom_file_empty(data_dir, tmp, model):
    """A series whose files are all empty (0 bytes): a copy that stopped before any data."""
    folder, files = copy_six(data_dir, tmp, "not-copied")
    for path in files:
        path.write_bytes(b"")
    return BadInput(segment(folder, tmp, model), INPUT, "no readable dicom files", "not-copied")


# --- NIfTI, NRRD and label maps --------------------------------------------------------------------

def zip_folder(folder: Path, archive: Path) -> Path:
    """`folder` packed into a ZIP archive under its own name, as a file manager packs it."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, path.relative_to(folder.parent))
    return archive


@entry
def damaged_zip_archive(data_dir, tmp, model):
    """A ZIP archive of a DICOM series cut short (an interrupted download)."""
    copy_slices(data_dir, tmp / "series")
    data = zip_folder(tmp / "series", tmp / "whole.zip").read_bytes()
    (tmp / "cut.zip").write_bytes(data[: len(data) // 2])
    (tmp / "whole.zip").unlink()
    return BadInput(segment(tmp / "cut.zip", tmp, model), INPUT, "damaged zip archive", "cut.zip")


@entry
def tar_gz_archive_with_a_damaged_byte(data_dir, tmp, model):
    """A .tar.gz of a DICOM series with one byte damaged in a way that still decompresses."""
    a_bit_flipped_where(tar_of_slices(data_dir, tmp / "study.tar.gz", "w:gz"), fails_only_its_crc)
    return BadInput(segment(tmp / "study.tar.gz", tmp, model), INPUT, "fails its own check", "study.tar.gz")


@entry
def tar_bz2_archive_damaged_in_its_first_block(data_dir, tmp, model):
    """A .tar.bz2 of a DICOM series with a bit flipped in its first compressed block."""
    data = bytearray(tar_of_slices(data_dir, tmp / "study.tar.bz2", "w:bz2").read_bytes())
    data[200] ^= 0x10
    (tmp / "study.tar.bz2").write_bytes(bytes(data))
    return BadInput(segment(tmp / "study.tar.bz2", tmp, model), INPUT, "fails its own check", "study.tar.bz2")


@entry
def zip_archive_whose_first_bytes_are_damaged(data_dir, tmp, model):
    """A ZIP archive of a DICOM series whose first bytes were overwritten (its signature lost)."""
    copy_slices(data_dir, tmp / "series")
    data = bytearray(zip_folder(tmp / "series", tmp / "study.zip").read_bytes())
    shutil.rmtree(tmp / "series")
    data[:4] = b"\0\0\0\0"
    (tmp / "study.zip").write_bytes(bytes(data))
    return BadInput(segment(tmp / "study.zip", tmp, model), INPUT, "is a damaged zip archive", "study.zip")


@entry
def disc_image_cut_short(data_dir, tmp, model):
    """A CD image (.iso) of a DICOM series cut short within its last file (a copy stopped early)."""
    import pycdlib

    disc = pycdlib.PyCdlib()
    disc.new(interchange_level=1)
    disc.add_directory("/SERIES")
    for n, path in enumerate(ct_slices(data_dir, 6)):
        disc.add_file(str(path), f"/SERIES/IM{n:06d}.;1")
    disc.write(str(tmp / "disc.iso"))
    disc.close()
    data = (tmp / "disc.iso").read_bytes()
    (tmp / "disc.iso").write_bytes(data[:len(data) - 200_000])  # within the last slice, past its padding
    return BadInput(segment(tmp / "disc.iso", tmp, model), INPUT, "is a damaged cd or dvd image (it is cut short",
                    "disc.iso")


def tar_of_slices(data_dir: Path, archive: Path, mode: str) -> Path:
    """Six CT slices packed into the tar archive `archive` (`mode`: "w:gz", "w:bz2" …) under `series/`."""
    copy_slices(data_dir, archive.parent / "series")
    with tarfile.open(archive, mode) as packed:
        packed.add(archive.parent / "series", "series")
    shutil.rmtree(archive.parent / "series")
    return archive


def refusal_in_a_process_of_its_own(path: Path, timeout: float = 300) -> str:
    """The line `read_input_volume(path)` refuses it with, read in a Python process of its own, so that a C
    library that ends the whole program, or never returns (`timeout` seconds), fails the calling test,
    not the test run."""
    script = ("from LiverLesionSegLib.io.cases import read_input_volume\n"
              "from LiverLesionSegLib.errors import InputError\n"
              f"try:\n    read_input_volume({str(path)!r})\nexcept InputError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr[-500:]
    return done.stdout.strip()


def a_bit_flipped_where(path: Path, damaged: Callable[[Path], bool]) -> None:
    """One bit of `path` flipped (a disk's or a download's damage), in the first byte from its middle on
    for which `damaged(path)` holds."""
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) - 8, 37):
        data[offset] ^= 0x10
        path.write_bytes(bytes(data))
        if damaged(path):
            return
        data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    raise AssertionError(f"no byte of {path} damages it so")


def fails_only_its_crc(path: Path) -> bool:
    """Whether the gzip file `path` decompresses whole to bytes its CRC does not match."""
    try:
        gzip.decompress(path.read_bytes())
    except gzip.BadGzipFile as exc:
        return "CRC check failed" in str(exc)
    except Exception:  # a stream that no longer decompresses
        return False
    return False


def itk_reads_other_voxels(path: Path, array: np.ndarray) -> bool:
    """Whether ITK reads the image file `path` without an error, as voxels other than `array`."""
    try:
        return bool((sitk.GetArrayFromImage(sitk.ReadImage(str(path))) != array).any())
    except RuntimeError:
        return False


def slicer_scene_bundle(ct, path: Path, names: tuple[str, ...] = ("CT",), probability: bool = True,
                        segmentations: tuple = (), moved_mm: float = 0.0) -> Path:
    """A scene as Slicer saves it (File > Save as a .mrb): a volume node per name holding `ct`, a label
    map, a lesion probability map made by this tool's Slicer logic, and a segmentation node ("Liver",
    "Liver lesion") for each (liver, lesion) pair of masks in `segmentations`; with `moved_mm`, the
    first volume under a transform that moves it so far to the right (a registration)."""
    slicer = pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    from LiverLesionSegLib import mrml

    scene = slicer.vtkMRMLScene()
    for name in names:
        mrml.add_volume_node(scene, ct, name)
    label_map = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "CT-label")
    mrml.update_volume_node(label_map, ct.with_array((ct.array > 100).astype(np.uint8)))
    if probability:
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{names[0]} lesion probability")
        mrml.fill_probability_node(node, ct.with_array(np.zeros(ct.shape, np.float32)))
    if moved_mm:
        import vtk

        matrix = vtk.vtkMatrix4x4()
        matrix.SetElement(0, 3, moved_mm)
        transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "Registration")
        transform.SetMatrixTransformToParent(matrix)
        scene.GetFirstNodeByName(names[0]).SetAndObserveTransformNodeID(transform.GetID())
    for number, (liver, lesion) in enumerate(segmentations, start=1):
        segmentation = mrml.new_segmentation_node(scene, f"Segmentation {number}")
        mrml.fill_segmentation_node(segmentation, scene.GetFirstNodeByName(names[0]), liver, lesion)
    work = path.parent / f"{path.stem} work"
    work.mkdir()
    scene.SetRootDirectory(str(work))
    assert scene.WriteToMRB(str(path)), f"writing {path} failed"
    shutil.rmtree(work)
    return path


@entry
def slicer_scene_with_two_ct_volumes(data_dir, tmp, model):
    """A 3D Slicer scene bundle (.mrb) holding two CT volumes and no --series to choose."""
    ct = six_slices_read(data_dir, tmp / "series")
    bundle = slicer_scene_bundle(ct, tmp / "study.mrb", names=("CT arterial", "CT portal"))
    return BadInput(segment(bundle, tmp, model), INPUT, "scene with 2 volumes: 'ct arterial'; 'ct portal'", "study.mrb")


@entry
def slicer_scene_file_without_its_data(data_dir, tmp, model):
    """A 3D Slicer scene file (.mrml) sent without the data folder beside it."""
    ct = six_slices_read(data_dir, tmp / "series")
    zipfile.ZipFile(slicer_scene_bundle(ct, tmp / "study.mrb")).extractall(tmp / "sent")
    scene = tmp / "sent" / "study" / "study.mrml"
    shutil.rmtree(scene.parent / "Data")
    return BadInput(segment(scene, tmp, model), INPUT, "volume 'ct' has no file (ct.nrrd is missing)", "study.mrml")


def six_slices_read(data_dir: Path, folder: Path):
    """Six real CT slices copied into `folder` and read as a volume."""
    from LiverLesionSegLib.io.cases import read_input_volume

    copy_slices(data_dir, folder)
    return read_input_volume(folder)


@entry
def zip_archive_of_a_series_with_a_gap(data_dir, tmp, model):
    """A ZIP archive of a DICOM series with a slice missing: the message names the files inside the archive."""
    files = copy_slices(data_dir, tmp / "gap")
    files[3].unlink()
    zip_folder(tmp / "gap", tmp / "study.zip")
    shutil.rmtree(tmp / "gap")
    return BadInput(segment(tmp / "study.zip", tmp, model), GEOMETRY, "slice positions jump", "study.zip/gap")


@entry
def truncated_gzip_nifti(data_dir, tmp, model):
    """A .nii.gz file cut short."""
    path = write_nifti(tmp / "cut.nii.gz", np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return BadInput(segment(path, tmp, model), INPUT, "truncated", "cut.nii.gz")


def nifti_with_header(path: Path, array: np.ndarray, edit: Callable, ijk_to_ras: Optional[np.ndarray] = None) -> Path:
    """A [k, j, i] array as a NIfTI whose header `edit(header)` damaged after the voxels were laid out
    (nibabel's own writer would lay them out as the damaged header says)."""
    import nibabel as nib

    affine = np.diag([-0.8, -0.8, 2.5, 1.0]) if ijk_to_ras is None else ijk_to_ras
    header = nib.Nifti1Image(array.transpose(2, 1, 0), affine).header.copy()
    header["vox_offset"] = 352  # the voxels right after the header and its 4 bytes of no extension
    edit(header)
    data = header.binaryblock + bytes(352 - 348) + array.transpose(2, 1, 0).tobytes(order="F")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@entry
def nifti_header_announcing_a_strip_of_its_voxels(data_dir, tmp, model):
    """A NIfTI whose damaged header announces 2 of its 64 columns: ITK reads a strip of the data."""
    array = np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16)
    path = nifti_with_header(tmp / "strip.nii", array, lambda header: header["dim"].__setitem__(1, 2))
    return BadInput(segment(path, tmp, model), INPUT, "header's size or data type is wrong", "strip.nii")


@entry
def nifti_affine_that_is_not_numbers(data_dir, tmp, model):
    """A NIfTI whose sform holds a NaN."""
    array = np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16)
    path = nifti_with_header(tmp / "nan.nii", array, lambda header: header["srow_x"].__setitem__(1, np.nan))
    return BadInput(segment(path, tmp, model), GEOMETRY, "not numbers", "nan.nii")


@entry
def nrrd_header_of_a_narrower_data_type(data_dir, tmp, model):
    """A NRRD whose header says 8-bit voxels where 16-bit ones are stored: ITK reads half of them as noise."""
    path = tmp / "narrow.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16)),
                    str(path), useCompression=True)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"\ntype: short\n", b"\ntype: uchar\n", 1))
    return BadInput(segment(path, tmp, model), INPUT, "header's size or data type is wrong", "narrow.nrrd")


@entry
def nrrd_with_a_bit_flipped_in_its_compressed_voxels(data_dir, tmp, model):
    """A gzip-encoded NRRD with one bit flipped where its voxels still decompress: only the CRC tells."""
    path = tmp / "flipped.nrrd"
    array = np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(path), useCompression=True)
    a_bit_flipped_where(path, lambda flipped: itk_reads_other_voxels(flipped, array))
    return BadInput(segment(path, tmp, model), INPUT, "does not match its own checksum", "flipped.nrrd")


def metaimage_with_header(path: Path, field: str, value: Optional[str]) -> Path:
    """Eight random CT-like slices as a MetaImage whose header line `field` says `value` (None: removed)."""
    import re

    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64), np.int16)),
                    str(path))
    data = path.read_bytes()
    line = b"" if value is None else f"{field} = {value}\n".encode()
    path.write_bytes(re.sub(rf"^{field} = .*\n".encode(), line, data, count=1, flags=re.M))
    return path


@entry
def metaimage_header_without_its_size(data_dir, tmp, model):
    """A MetaImage whose header lost its DimSize line: ITK's reader printed four lines of its own beside the error."""
    path = metaimage_with_header(tmp / "sizeless.mha", "DimSize", None)
    return BadInput(segment(path, tmp, model), INPUT, "finds no dimsize in its header", "sizeless.mha")


@entry
def metaimage_header_announcing_half_its_slices(data_dir, tmp, model):
    """A MetaImage whose header announces 4 of the 8 slices it holds: read as those 4, without a word."""
    path = metaimage_with_header(tmp / "half.mha", "DimSize", "64 64 4")
    return BadInput(segment(path, tmp, model), INPUT, "header's size or data type is wrong", "half.mha")


@entry
def nifti_of_a_spacing_in_metres(data_dir, tmp, model):
    """A NIfTI whose spacing is in metres (0.0008 x 0.0008 x 0.0025) without its header saying so."""
    ct, _ = labelled_slices(data_dir)
    path = write_nifti(tmp / "metres.nii.gz", ct.array, spacing=(0.0008, 0.0008, 0.0025))
    return BadInput(segment(path, tmp, model), INPUT, "not a ct's", "metres.nii.gz")


@entry
def nrrd_read_with_its_bytes_swapped(data_dir, tmp, model):
    """A NRRD whose header says big-endian over little-endian voxels: read with their bytes swapped."""
    ct, _ = labelled_slices(data_dir)
    path = tmp / "swapped.nrrd"
    sitk.WriteImage(ct.to_sitk(), str(path), useCompression=True)
    path.write_bytes(path.read_bytes().replace(b"\nendian: little\n", b"\nendian: big\n", 1))
    return BadInput(segment(path, tmp, model), INPUT, "not hounsfield units", "swapped.nrrd")


@entry
def nifti_with_nan(data_dir, tmp, model):
    """A float NIfTI holding NaN voxels."""
    array = np.zeros((8, 64, 64), np.float32)
    array[3, 10, 10] = np.nan
    return BadInput(segment(write_nifti(tmp / "nan.nii", array), tmp, model), INPUT, "nan or infinite", "nan.nii")


@entry
def nifti_with_infinity(data_dir, tmp, model):
    """A float NIfTI holding infinite voxels."""
    array = np.zeros((8, 64, 64), np.float32)
    array[2, 5, 5] = np.inf
    return BadInput(segment(write_nifti(tmp / "inf.nii.gz", array), tmp, model), INPUT, "nan or infinite",
                    "inf.nii.gz")


@entry
def four_dimensional_nifti(data_dir, tmp, model):
    """A 4-D NIfTI (a time series)."""
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((64, 64, 8, 3), np.int16), np.eye(4)), str(tmp / "series.nii.gz"))
    return BadInput(segment(tmp / "series.nii.gz", tmp, model), GEOMETRY, "4-d image", "series.nii.gz")


@entry
def label_map_on_another_grid(data_dir, tmp, model):
    """A label map of the right shape but another spacing than its image (train)."""
    case = tmp / "grid"
    case.mkdir()
    write_nifti(case / "image.nii.gz", np.zeros((8, 64, 64), np.int16), spacing=(0.8, 0.8, 2.5))
    write_nifti(case / "labels.nii.gz", np.zeros((8, 64, 64), np.uint8), spacing=(0.8, 0.8, 5.0))
    return BadInput(["train", str(case), "--out", str(tmp / "run")], GEOMETRY, "geometry", "labels.nii.gz")


@entry
def segmentation_of_another_ct_to_measure(data_dir, tmp, model):
    """A segmentation of another CT (another size) given to `measure`."""
    ct = np.full((8, 64, 64), -1000, np.int16)
    ct[:, 16:48, 16:48] = 40  # a body in air: a blank image would be refused as such first
    write_nifti(tmp / "ct.nii.gz", ct, spacing=(0.8, 0.8, 2.5))
    write_nifti(tmp / "other.nii.gz", np.zeros((8, 60, 64), np.uint8), spacing=(0.8, 0.8, 2.5))
    return BadInput(["measure", str(tmp / "ct.nii.gz"), str(tmp / "other.nii.gz"), "-o", str(tmp / "out.nii.gz")],
                    GEOMETRY, "the label map has", "other.nii.gz")


@entry
def segmentation_given_as_the_ct(data_dir, tmp, model):
    """A DICOM SEG file (a real one) given to `segment` as its CT."""
    seg = tace_case(data_dir) / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    return BadInput(segment(seg, tmp, model), INPUT, "is a dicom seg object, not a ct image", "ManualROI_Tumor.dcm")


def relabelled_as_spleen(seg_path: Path, out: Path) -> Path:
    """A copy of a real one-segment DICOM SEG whose segment is labelled and coded as the spleen."""
    seg = pydicom.dcmread(seg_path)
    item = seg.SegmentSequence[0]
    item.SegmentLabel = "Spleen"
    item.SegmentedPropertyTypeCodeSequence[0].CodeValue = "78961009"  # SNOMED CT
    item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "Spleen"
    seg.save_as(out)
    return out


def write_rtstruct(series_folder: Path, rois: dict, path: Path) -> Path:
    """An RTSTRUCT written by rt-utils (an independent writer: OpenCV traces each slice's mask into
    contours, as planning systems export them) over the series in `series_folder`, one ROI per
    [k, j, i] mask, k ascending along the slice normal (as rt-utils and our reader sort the slices)."""
    from rt_utils import RTStructBuilder

    structure_set = RTStructBuilder.create_new(dicom_series_path=str(series_folder))
    for name, mask in rois.items():
        structure_set.add_roi(mask=mask.transpose(1, 2, 0).astype(bool), name=name)  # rows, columns, slices
    structure_set.save(str(path))
    return path


def moved_contours(path: Path, out: Path, move_mm) -> Path:
    """A copy of an RTSTRUCT whose contour points are all moved by `move_mm` (x, y, z), or by
    `move_mm(point)` for each (n, 3) array of a contour's points."""
    structures = pydicom.dcmread(path)
    for roi in structures.ROIContourSequence:
        for contour in roi.ContourSequence:
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            points = points + (move_mm(points) if callable(move_mm) else np.asarray(move_mm))
            contour.ContourData = [round(float(v), 4) for v in points.ravel()]
    structures.save_as(out)
    return out


@entry
def rtstruct_of_another_series_to_measure(data_dir, tmp, model):
    """An RT structure set drawn on another CT series (its contours between this one's slices), given to `measure`."""
    folder = tmp / "ct"
    copy_slices(data_dir, folder, n=4)
    liver = np.zeros((4, 512, 512), bool)
    liver[1:3, 150:300, 150:300] = True
    drawn = write_rtstruct(folder, {"Liver": liver}, tmp / "drawn.dcm")
    other = moved_contours(drawn, tmp / "other-series.dcm", (0.0, 0.0, 1.2))
    return BadInput(["measure", str(folder), str(other), "--lesions", str(tmp / "t.csv")], GEOMETRY,
                    "does not lie on a slice", "other-series.dcm")


@entry
def dicom_seg_of_another_organ_to_measure(data_dir, tmp, model):
    """A DICOM SEG of neither liver nor lesion (a real one relabelled as the spleen), given to `measure`."""
    case = data_dir / "tace" / "RadCTTACEomics_1211"
    spleen = relabelled_as_spleen(case / "10_AP_Ax2.50mm_ManualROI_Tumor.dcm", tmp / "spleen.dcm")
    return BadInput(["measure", str(case / "10_AP_Ax2.50mm"), str(spleen), "-o", str(tmp / "out.nii.gz")], INPUT,
                    "has neither a liver nor a lesion segment", "spleen.dcm")


@entry
def mask_with_unexpected_labels(data_dir, tmp, model):
    """A label map holding labels other than 0, 1 and 2 (train)."""
    case = tmp / "labels5"
    case.mkdir()
    labels = np.zeros((8, 64, 64), np.uint8)
    labels[2:5, 10:20, 10:20] = 5
    write_nifti(case / "image.nii.gz", np.zeros((8, 64, 64), np.int16))
    write_nifti(case / "labels.nii.gz", labels)
    return BadInput(["train", str(case), "--out", str(tmp / "run")], INPUT, "label(s) 5", "labels.nii.gz")


@entry
def seg_referencing_another_series(data_dir, tmp, model):
    """A DICOM SEG beside a CT series other than the one it was made on (train)."""
    case = tmp / "seg-case"
    copy_slices(data_dir, case / "ct", n=4)
    seg = tace_case(data_dir) / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm"
    shutil.copy(seg, case / seg.name)
    return BadInput(["train", str(case), "--out", str(tmp / "run")], INPUT, "references series", seg.name)


@entry
def ircadb_mask_slice_of_one_spacing_number(data_dir, tmp, model):
    """A 3D-IRCADb-01 mask slice whose PixelSpacing is one number, not two (evaluate)."""
    source = data_dir / "ircadb" / "3Dircadb1.17"
    case = tmp / "3Dircadb1.17"
    (case / "MASKS_DICOM" / "liver").mkdir(parents=True)
    os.symlink(source / "PATIENT_DICOM", case / "PATIENT_DICOM")
    for n in (50, 51, 52):
        shutil.copy(source / "MASKS_DICOM" / "liver" / f"image_{n}", case / "MASKS_DICOM" / "liver")
    edit(case / "MASKS_DICOM" / "liver" / "image_51", PixelSpacing=0.743)
    return BadInput(["evaluate", str(case), "--out", str(tmp / "report"), "--model", str(model)], GEOMETRY,
                    "pixel spacing is '0.743' (2 numbers needed)", "liver")


@entry
def volume_too_large_for_memory(data_dir, tmp, model):
    """A NIfTI whose header announces 32767^3 voxels (70 TB): refused before any allocation."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((32767, 32767, 32767))
    header.set_data_dtype(np.int16)
    header["vox_offset"] = 352
    (tmp / "huge.nii").write_bytes(header.binaryblock + bytes(4))  # the header alone: no 70 TB on disk
    return BadInput(segment(tmp / "huge.nii", tmp, model), RESOURCE, "of memory, but only", "huge.nii")


# --- models ------------------------------------------------------------------------------------------

@entry
def truncated_checkpoint(data_dir, tmp, model):
    """A checkpoint cut short (an interrupted copy)."""
    path = small_checkpoint(tmp / "cut.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "not a readable checkpoint", "cut.safetensors")


@entry
def pickled_checkpoint_that_would_run_code(data_dir, tmp, model):
    """A .pt pickle that would run code when unpickled: refused unread (the marker never appears)."""
    path = crafted_pickle(tmp / "model.pt", tmp / "code-ran")
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "never unpickles", "model.pt")


@entry
def weights_of_another_network_without_metadata(data_dir, tmp, model):
    """A plain safetensors state dict of another network (Linknet), as other tools write."""
    import torch
    from safetensors.torch import save_file

    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.model import build_network

    config = Config()
    config.model.arch, config.model.encoder = "Linknet", "tu-lcnet_035"
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in build_network(config).state_dict().items()}
    save_file(state, str(tmp / "linknet.safetensors"))
    return BadInput(segment(tace_case(data_dir), tmp, tmp / "linknet.safetensors"), MODEL,
                    "not a liverlesionseg checkpoint", "linknet.safetensors")


@entry
def checkpoint_naming_an_unknown_encoder(data_dir, tmp, model):
    """A checkpoint whose metadata names an encoder that does not exist."""
    path = small_checkpoint(tmp / "unknown.safetensors",
                            lambda metadata, meta: meta["config"]["model"].update(encoder="resnet9000"))
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "cannot be built", "unknown.safetensors")


@entry
def checkpoint_with_non_finite_weights(data_dir, tmp, model):
    """A checkpoint holding a NaN weight (a run that diverged)."""
    path = small_checkpoint(tmp / "nan.safetensors", nan=True)
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "not finite", "nan.safetensors")


@entry
def checkpoint_with_a_bit_flipped_in_its_weights(data_dir, tmp, model):
    """A checkpoint with one bit of a weight flipped (a disk's or a copy's damage)."""
    path = small_checkpoint(tmp / "flipped.safetensors")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # in the weights: the header is the first few kilobytes
    path.write_bytes(bytes(data))
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "do not match the checksum", "flipped.safetensors")


@entry
def checkpoint_from_a_newer_version(data_dir, tmp, model):
    """A checkpoint in a format version newer than this software."""
    path = small_checkpoint(tmp / "newer.safetensors", lambda metadata, meta: metadata.update(format_version="99"))
    return BadInput(segment(tace_case(data_dir), tmp, path), MODEL, "newer liverlesionseg", "newer.safetensors")


@entry
def resume_with_another_encoder(data_dir, tmp, model):
    """Resuming a run with --encoder changed (train)."""
    case = small_case(data_dir, tmp / "case")
    return BadInput(["train", str(case), "--out", str(tmp / "run"), "--resume", str(model), "--encoder", "resnet34"],
                    INPUT, "cannot change when resuming", model.name)


@entry
def configuration_file_that_is_not_json(data_dir, tmp, model):
    """A --config file that is not JSON (train)."""
    case = small_case(data_dir, tmp / "case")
    (tmp / "settings.json").write_text("cycles = 3\n")
    return BadInput(["train", str(case), "--out", str(tmp / "run"), "--config", str(tmp / "settings.json")],
                    INPUT, "cannot read the configuration", "settings.json")


# --- training --------------------------------------------------------------------------------------

@entry
def loss_that_stops_being_finite(data_dir, tmp, model):
    """A learning rate so high (1e30) that the loss turns NaN: training stops, nothing half-written (train)."""
    case = small_case(data_dir, tmp / "case")
    argv = ["train", str(case), "--out", str(tmp / "run"), "--lr", "1e30", "--cycles", "1", "--epochs", "1",
            "--max-slices-per-epoch", "4", "--batch-size", "2", "--size", "32", "--no-augment"]
    return BadInput(argv, TRAINING, "the loss became nan", "run")


# --- outputs ---------------------------------------------------------------------------------------

@entry
def output_folder_that_is_a_file(data_dir, tmp, model):
    """An output path whose folder is a file."""
    (tmp / "afile").write_text("a file, not a folder")
    argv = ["segment", str(tace_case(data_dir)), "-o", str(tmp / "afile" / "out.nii.gz"), "--model", str(model)]
    return BadInput(argv, OUTPUT, "is a file, not a folder", "afile")


@entry
def output_folder_read_only(data_dir, tmp, model):
    """An output in a read-only folder (a read-only bind mount as root, permissions otherwise)."""
    folder = tmp / "readonly"
    folder.mkdir()
    existing = folder / "out.nii.gz"
    existing.write_bytes(b"an earlier result the user wants to keep")
    cleanup = make_read_only(folder)
    argv = ["segment", str(tace_case(data_dir)), "-o", str(existing), "--model", str(model)]
    return BadInput(argv, OUTPUT, "not writable", "readonly", existing=existing, cleanup=cleanup)


def make_read_only(folder: Path):
    """Make `folder` read-only for this process (a read-only bind mount as root, whom permission
    bits do not stop; permissions otherwise); returns what undoes it. Skips where neither works."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if _run("mount", "--bind", str(folder), str(folder)) and _run("mount", "-o", "remount,bind,ro", str(folder)):
        return _unmount(folder)
    _run("umount", str(folder))
    pytest.skip("root without the right to mount: no way to make a folder read-only for root")


@contextlib.contextmanager
def _disk_full_at_flush(name_part: str = ""):
    """Simulated: flushing a temporary output whose name holds `name_part` (any, by default) fails
    with ENOSPC, as a full disk makes it fail; the others flush. Patched in this process only;
    `disk_full_for_real` has the real thing where it may mount."""
    from LiverLesionSegLib.io import atomic

    original = atomic._fsync

    def full(path):
        if name_part not in Path(path).name:
            return original(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    atomic._fsync = full
    try:
        yield
    finally:
        atomic._fsync = original


@entry
def disk_full_while_writing(data_dir, tmp, model):
    """A full disk while the outputs are written (simulated: ENOSPC when the temporary file is flushed)."""
    folder, _ = copy_six(data_dir, tmp, "ct")
    return BadInput(segment(folder, tmp, model, "--probabilities", str(tmp / "p.nii.gz")), OUTPUT,
                    "the disk is full", "out.nii.gz", fault=_disk_full_at_flush, in_process_only=True)


@entry
def disk_full_while_the_lesion_table_is_written(data_dir, tmp, model):
    """A full disk when the lesion table is flushed, after the label map (simulated): no output is written."""
    folder, _ = copy_six(data_dir, tmp, "ct")
    return BadInput(segment(folder, tmp, model, "--lesions", str(tmp / "lesions.csv")), OUTPUT,
                    "the disk is full", "lesions.csv", fault=functools.partial(_disk_full_at_flush, ".csv"),
                    in_process_only=True)


@entry
def disk_full_for_real(data_dir, tmp, model):
    """A full disk for real: the output on a 1 MiB tmpfs filled to the last byte (needs the right to mount)."""
    disk = tmp / "disk"
    disk.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)):
        pytest.skip("no right to mount a tmpfs here")
    try:
        existing = disk / "out.nii.gz"
        existing.write_bytes(b"an earlier result the user wants to keep")
        with open(disk / "filler", "wb", buffering=0) as f:
            with contextlib.suppress(OSError):  # until the disk is full
                while True:
                    f.write(bytes(4096))
        folder, _ = copy_six(data_dir, tmp, "ct")
    except BaseException:
        _unmount(disk)()
        raise
    argv = ["segment", str(folder), "-o", str(existing), "--model", str(model)]
    return BadInput(argv, OUTPUT, "the disk is full", "out.nii.gz", existing=existing, cleanup=_unmount(disk))


# Above the label map of six slices (about 6 KiB compressed), below their probability map (about
# 40 KiB with the bundled model: its values vary, so it compresses less).
FILE_SIZE_LIMIT = 16 * 1024


@contextlib.contextmanager
def _file_size_limit(limit: int = FILE_SIZE_LIMIT):
    """A real file size limit (ulimit -f) in this process and the ones it starts: writes past it
    fail with EFBIG once SIGXFSZ is ignored (as the command line does), or kill the writer."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@entry
def file_size_limit_while_writing(data_dir, tmp, model):
    """A file size limit (ulimit -f 16 KiB) reached while the probability map is written."""
    folder, _ = copy_six(data_dir, tmp, "ct")
    return BadInput(segment(folder, tmp, model, "--probabilities", str(tmp / "p.nii.gz")), OUTPUT,
                    "larger than allowed", "p.nii.gz", fault=_file_size_limit)


@entry
def file_size_limit_while_a_nrrd_or_metaimage_is_written(data_dir, tmp, model):
    """A file size limit reached while the outputs are written as NRRD and MetaImage (whose writer printed a line)."""
    folder, _ = copy_six(data_dir, tmp, "ct")
    argv = ["segment", str(folder), "-o", str(tmp / "out.mha"), "--probabilities", str(tmp / "p.nrrd"),
            "--model", str(model)]
    return BadInput(argv, OUTPUT, "larger than allowed", "p.nrrd", existing=tmp / "out.mha", fault=_file_size_limit)


@entry
def compressed_slice_cut_short(data_dir, tmp, model):
    """A JPEG-LS slice cut short within its pixel data: pydicom's warning printed two lines beside the error."""
    from LiverLesionSegLib.resources import sample_case_path

    folder = tmp / "cut"
    folder.mkdir()
    for source in sorted(sample_case_path().glob("*.dcm"))[20:26]:
        shutil.copy(source, folder / source.name)
    cut = sorted(folder.iterdir())[2]
    cut.write_bytes(cut.read_bytes()[:-20000])
    return BadInput(segment(folder, tmp, model), INPUT, "has no pixel data (a truncated file?)", cut.name)


@entry
def ct_values_without_their_rescale(data_dir, tmp, model):
    """A CT's stored values without the rescale intercept of -1024 (a uint16 NIfTI: air at 0, liver at 1130)."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    ct = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0]).ct
    raw = ct.with_array(np.clip(ct.array.astype(np.int32) + 1024, 0, None).astype(np.uint16))
    sitk.WriteImage(raw.to_sitk(), str(tmp / "stored.nii.gz"))
    return BadInput(segment(tmp / "stored.nii.gz", tmp, model), INPUT, "without their rescale to hounsfield units",
                    "stored.nii.gz")


@entry
def dicom_series_whose_rescale_intercept_is_zero(data_dir, tmp, model):
    """A DICOM series whose RescaleIntercept was set to 0 (its stored values read as Hounsfield units)."""
    folder = six_edited(data_dir, tmp, "stored", RescaleIntercept=0)
    return BadInput(segment(folder, tmp, model), INPUT, "without their rescale to hounsfield units", "stored")


@entry
def normalised_ct(data_dir, tmp, model):
    """A CT normalised to 0 to 1 by a pipeline (float32 NIfTI), not in Hounsfield units."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    ct = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0]).ct
    normalised = (np.clip(ct.array.astype(np.float32), -1000, 1000) + 1000) / 2000
    sitk.WriteImage(ct.with_array(normalised).to_sitk(), str(tmp / "normalised.nii.gz"))
    return BadInput(segment(tmp / "normalised.nii.gz", tmp, model), INPUT, "a normalised image, not hounsfield units",
                    "normalised.nii.gz")


@entry
def mr_image_given_as_ct(data_dir, tmp, model):
    """An MR image given as a NIfTI where the CT belongs (values 0 to about 700: no fat or air below -50)."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    ct = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0]).ct
    # a T1-weighted look: air dark, fat bright, liver brighter than muscle, bone dark
    mr = np.interp(ct.array, [-1000, -100, 0, 60, 200, 1000], [5, 700, 200, 420, 350, 80]).astype(np.int16)
    sitk.WriteImage(ct.with_array(mr).to_sitk(), str(tmp / "t1_vibe.nii.gz"))
    return BadInput(segment(tmp / "t1_vibe.nii.gz", tmp, model), INPUT, "not a ct in hounsfield units",
                    "t1_vibe.nii.gz")


@entry
def blank_image(data_dir, tmp, model):
    """A blank image: every voxel -1024 (a failed conversion), with a CT's geometry."""
    from LiverLesionSegLib.io.cases import find_cases, load_case

    ct = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0]).ct
    sitk.WriteImage(ct.with_array(np.full(ct.shape, -1024, np.int16)).to_sitk(), str(tmp / "blank.nii.gz"))
    return BadInput(segment(tmp / "blank.nii.gz", tmp, model), INPUT, "holds the one value -1024 in every voxel",
                    "blank.nii.gz")


@entry
def dicom_series_blanked(data_dir, tmp, model):
    """A DICOM series whose pixel data was blanked (every stored value 0, read as -1024 HU)."""
    folder, files = copy_six(data_dir, tmp, "blanked")
    for path in files:
        ds = pydicom.dcmread(path)
        ds.PixelData = bytes(len(ds.PixelData))
        ds.save_as(path)
    return BadInput(segment(folder, tmp, model), INPUT, "a blank image, not a ct", "blanked")


@entry
def array_saved_with_its_axes_reversed(data_dir, tmp, model):
    """A CT's array in (slice, row, column) order saved with an identity affine (nibabel), no geometry."""
    import nibabel as nib
    from LiverLesionSegLib.io.cases import find_cases, load_case

    ct = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0]).ct
    nib.save(nib.Nifti1Image(ct.array[:, ::2, ::2], np.eye(4)), tmp / "array.nii.gz")
    return BadInput(segment(tmp / "array.nii.gz", tmp, model), INPUT, "saved as if it were (column, row, slice)",
                    "array.nii.gz")
