"""Fuzzing the readers and the checkpoint loader with hypothesis.

Each reader gets mutated bytes (and mutated header values) of a small file made from the real
shared cases: a CT slice of HCC_006 cropped to 64 x 64, the tumour DICOM SEG of
RadCTTACEomics_0697, NIfTI and NRRD files written from those slices, and a small checkpoint
written by the real `save_checkpoint`. Whatever the input, the only exceptions allowed to escape
are the project's own (`LiverLesionSegError` and its kinds), which the command line and Slicer
turn into one clear line.

The budget is fixed and the runs are derandomized: the same few thousand inputs on every run
(about 40 s on one core). LIVERLESIONSEG_FUZZ_SCALE=10 runs ten times as many, for a deeper look.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from LiverLesionSegLib.errors import LiverLesionSegError
from LiverLesionSegLib.io.write import save_seg_nrrd

import bad_inputs

SCALE = float(os.environ.get("LIVERLESIONSEG_FUZZ_SCALE", "1"))

# The libraries warn about the damaged files, as they should; here that is thousands of lines of noise.
pytestmark = pytest.mark.filterwarnings("ignore")


def budget(examples: int):
    """Hypothesis settings: `examples` inputs (times the scale), the same ones every run."""
    return settings(max_examples=max(1, int(examples * SCALE)), derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


def only_project_errors(read, *args) -> None:
    """Run a reader; anything but the project's own errors fails the test (with the input shown)."""
    try:
        read(*args)
    except LiverLesionSegError as exc:
        assert "\n" not in str(exc), f"a message of several lines: {exc!r}"


# --- mutations ------------------------------------------------------------------------------------

# Values that break length and size fields: zero, one, the largest and the "undefined length".
SPECIAL_INTS = [0, 1, 2, 3, 255, 256, 32767, 65535, 0x7FFFFFFF, 0xFFFFFFFF]


def byte_edits(size: int, header: int) -> st.SearchStrategy:
    """A few edits of a file of `size` bytes, half of them in its first `header` bytes (where a
    change matters most), then maybe a cut: (edits, length to cut to or None)."""
    offset = st.one_of(st.integers(0, max(header - 1, 0)), st.integers(0, size - 1))
    edit = st.one_of(
        st.tuples(st.just("byte"), offset, st.integers(0, 255)),
        st.tuples(st.just("int32"), offset, st.sampled_from(SPECIAL_INTS)),
        st.tuples(st.just("insert"), offset, st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), offset, st.integers(1, 64)),
    )
    cut = st.one_of(st.none(), st.none(), st.integers(0, size))
    return st.tuples(st.lists(edit, min_size=1, max_size=5), cut)


def mutate(data: bytes, mutation) -> bytes:
    edits, cut = mutation
    out = bytearray(data)
    for kind, offset, value in edits:
        offset = min(offset, max(len(out) - 1, 0))
        if kind == "byte" and out:
            out[offset] = value
        elif kind == "int32":
            out[offset:offset + 4] = struct.pack("<I", value)
        elif kind == "insert":
            out[offset:offset] = value
        elif kind == "delete":
            del out[offset:offset + value]
    return bytes(out[:cut] if cut is not None else out)


# Values for header fields: numbers of every awkward kind, text, lists of the wrong length.
NUMBERS = st.one_of(st.integers(-2**31, 2**31 - 1), st.sampled_from(SPECIAL_INTS),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e-30, 1e30]))
TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
FIELD_VALUES = st.one_of(NUMBERS, TEXT, st.lists(NUMBERS, max_size=7), st.none())


# --- the files to mutate, made from the real cases ------------------------------------------------

CROP = (slice(224, 288), slice(224, 288))  # 64 x 64 pixels around the middle of the slice


@pytest.fixture(scope="module")
def slices(data_dir, tmp_path_factory) -> list[bytes]:
    """Three consecutive real CT slices of HCC_006, cropped to 64 x 64 (positions moved to match)."""
    folder = tmp_path_factory.mktemp("slices")
    out = []
    for source in bad_inputs.ct_slices(data_dir, 3):
        ds = pydicom.dcmread(source)
        pixels = ds.pixel_array[CROP]
        row_step, column_step = (float(v) for v in ds.PixelSpacing)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x + CROP[1].start * column_step, y + CROP[0].start * row_step, z]
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        path = folder / source.name
        ds.save_as(path)
        out.append(path.read_bytes())
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def header_length(dicom: bytes) -> int:
    """Where a DICOM file's pixel data starts (its header is everything before)."""
    return dicom.rfind(b"\xe0\x7f\x10\x00")  # the (7FE0,0010) Pixel Data tag


# --- DICOM ----------------------------------------------------------------------------------------

def read_dicom_folder(folder: Path) -> None:
    from LiverLesionSegLib.io.series_choice import read_ct_folder

    read_ct_folder(folder)


def write_series(folder: Path, files: list[bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for n, data in enumerate(files):
        (folder / f"slice{n}.dcm").write_bytes(data)
    return folder


def test_dicom_reader_survives_mutated_bytes(slices, scratch):
    @budget(500)
    @given(which=st.integers(0, 2), mutation=byte_edits(len(slices[0]), header_length(slices[0])))
    def fuzz(which, mutation):
        files = list(slices)
        files[which] = mutate(files[which], mutation)
        only_project_errors(read_dicom_folder, write_series(scratch / "dicom-bytes", files))

    fuzz()


DICOM_FIELDS = ["Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
                "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
                "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept", "Modality", "SeriesInstanceUID",
                "SOPClassUID", "NumberOfFrames", "InstanceNumber", "SeriesNumber", "SliceThickness",
                "PlanarConfiguration", "WindowCenter"]


def with_field(data: bytes, keyword: str, value) -> bytes | None:
    """The slice with one header value changed (deleted for None), or None when pydicom cannot
    write that value at all."""
    ds = pydicom.dcmread(io.BytesIO(data))
    return saved_with(ds, ds, keyword, value)


def saved_with(ds: pydicom.Dataset, holder: pydicom.Dataset, keyword: str, value) -> bytes | None:
    """`ds` written with `keyword` of `holder` (`ds` or an item in it) set to `value` (deleted for
    None), or None when pydicom cannot write that value."""
    try:
        if value is None:
            if keyword in holder:
                delattr(holder, keyword)
        else:
            setattr(holder, keyword, value)
        out = io.BytesIO()
        ds.save_as(out)
    except Exception:
        return None
    return out.getvalue()


def test_dicom_reader_survives_mutated_header_values(slices, scratch):
    @budget(400)
    @given(keyword=st.sampled_from(DICOM_FIELDS), value=FIELD_VALUES, everywhere=st.booleans(),
           which=st.integers(0, 2))
    def fuzz(keyword, value, everywhere, which):
        files = list(slices)
        for n in range(3) if everywhere else [which]:
            changed = with_field(files[n], keyword, value)
            if changed is None:
                return  # pydicom refuses to write it: no such file can exist
            files[n] = changed
        only_project_errors(read_dicom_folder, write_series(scratch / "dicom-values", files))

    fuzz()


# --- DICOM SEG ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seg_and_ct(data_dir):
    """The real tumour SEG of RadCTTACEomics_0697 and the CT it was made on."""
    from LiverLesionSegLib.io.dicomseg import read_seg_case

    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    return (folder / "31_EQP_Ax5.00mm_ManualROI_Tumor.dcm").read_bytes(), read_seg_case(folder).ct


def read_seg(path: Path, ct) -> None:
    from LiverLesionSegLib.io.dicom_scan import scan_files
    from LiverLesionSegLib.io.dicomseg import read_seg_masks

    scan_files([path])  # case discovery reads the headers first
    read_seg_masks(path, ct)


def fuzz_file_bytes(data: bytes, header: int, path: Path, examples: int, read, *args) -> None:
    """`read(path, *args)` of `examples` byte mutations of `data` written to `path`."""
    @budget(examples)
    @given(mutation=byte_edits(len(data), header))
    def fuzz(mutation):
        path.write_bytes(mutate(data, mutation))
        only_project_errors(read, path, *args)

    fuzz()


def test_dicom_seg_reader_survives_mutated_bytes(seg_and_ct, scratch):
    seg, ct = seg_and_ct
    fuzz_file_bytes(seg, header_length(seg), scratch / "seg.dcm", 400, read_seg, ct)


# --- RT structure sets ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtstruct_and_ct(slices, tmp_path_factory):
    """An RTSTRUCT (liver and GTV, written by rt-utils) over the three cropped slices, and their CT."""
    pytest.importorskip("rt_utils", reason="rt-utils writes the structure set (setup.sh installs it)")
    from LiverLesionSegLib.io.series_choice import read_ct_folder

    folder = write_series(tmp_path_factory.mktemp("rt-ct"), slices)
    ct = read_ct_folder(folder)
    liver, lesion = np.zeros(ct.shape, bool), np.zeros(ct.shape, bool)
    liver[:, 8:56, 8:56] = True
    liver[1, 28:36, 28:36] = False  # a hole
    lesion[:, 20:30, 20:30] = True
    path = bad_inputs.write_rtstruct(folder, {"Liver": liver, "GTV": lesion}, folder.parent / "rs.dcm")
    return path.read_bytes(), ct


def read_rtstruct(path: Path, ct) -> None:
    from LiverLesionSegLib.io.cases import read_segmentations
    from LiverLesionSegLib.io.dicom_scan import scan_files

    scan_files([path])  # case discovery reads the headers first
    read_segmentations([path], ct, require_liver=False)


def test_rtstruct_reader_survives_mutated_bytes(rtstruct_and_ct, scratch):
    data, ct = rtstruct_and_ct
    fuzz_file_bytes(data, len(data), scratch / "rs-bytes.dcm", 300, read_rtstruct, ct)  # no pixel data: all header


RTSTRUCT_FIELDS = ["ContourData", "ContourGeometricType", "NumberOfContourPoints", "ReferencedROINumber",
                   "ROINumber", "ROIName", "RTROIInterpretedType", "ContourSequence", "ROIContourSequence",
                   "StructureSetROISequence", "Modality"]


def with_rtstruct_field(data: bytes, keyword: str, value, which: int) -> bytes | None:
    """The structure set with `keyword` changed (deleted for None) wherever it is, in the `which`-th
    of its items holding it, or None when pydicom cannot write that value."""
    ds = pydicom.dcmread(io.BytesIO(data))
    holders = []
    ds.walk(lambda dataset, element: holders.append(dataset) if element.keyword == keyword else None)
    return saved_with(ds, holders[which % len(holders)], keyword, value) if holders else None


def test_rtstruct_reader_survives_mutated_values(rtstruct_and_ct, scratch):
    data, ct = rtstruct_and_ct

    @budget(300)
    @given(keyword=st.sampled_from(RTSTRUCT_FIELDS), value=FIELD_VALUES, which=st.integers(0, 50))
    def fuzz(keyword, value, which):
        changed = with_rtstruct_field(data, keyword, value, which)
        if changed is None:
            return  # pydicom refuses to write it: no such file can exist
        path = scratch / "rs-values.dcm"
        path.write_bytes(changed)
        only_project_errors(read_rtstruct, path, ct)

    fuzz()


# --- NIfTI and NRRD -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(slices, tmp_path_factory) -> dict[str, bytes]:
    """The three cropped slices as a small volume, written as NIfTI (int16, float32, gzip) and
    NRRD (gzip, raw) by SimpleITK and pynrrd, as users' files are."""
    import nrrd

    from LiverLesionSegLib.io.series_choice import read_ct_folder

    folder = tmp_path_factory.mktemp("images")
    volume = read_ct_folder(write_series(folder / "dicom", slices))
    files = {}
    for name, array in (("ct.nii", volume.array), ("ct.nii.gz", volume.array),
                        ("float.nii", volume.array.astype(np.float32)), ("ct.nrrd", volume.array)):
        sitk.WriteImage(volume.with_array(array).to_sitk(), str(folder / name), useCompression=name.endswith(".gz")
                        or name.endswith(".nrrd"))
        files[name] = (folder / name).read_bytes()
    nrrd.write(str(folder / "raw.nrrd"), volume.array.transpose(2, 1, 0), {"encoding": "raw"}, index_order="F")
    files["raw.nrrd"] = (folder / "raw.nrrd").read_bytes()
    # a Slicer segmentation file (read by its segments' names), labels from the CT's values
    save_seg_nrrd(folder / "labels.seg.nrrd", volume.with_array(((volume.array > 0).astype(np.uint8)
                                                                  + (volume.array > 100))))
    files["labels.seg.nrrd"] = (folder / "labels.seg.nrrd").read_bytes()
    return files


def read_image_and_labels(path: Path) -> None:
    from LiverLesionSegLib.io.images import read_image, read_label_map

    volume = read_image(path)
    read_label_map(path, volume)  # the same file as a label map on its own grid


def nrrd_header_length(data: bytes) -> int:
    end = data.find(b"\n\n")
    return end + 2 if end >= 0 else len(data)


def test_nifti_and_nrrd_readers_survive_mutated_bytes(images, scratch):
    @budget(600)
    @given(name=st.sampled_from(sorted(images)), data=st.data())
    def fuzz(name, data):
        original = images[name]
        header = nrrd_header_length(original) if name.endswith(".nrrd") else 352
        if name.endswith(".gz"):
            header = 64  # the gzip header and the start of the stream
        mutation = data.draw(byte_edits(len(original), header), label="mutation")
        path = scratch / name
        path.write_bytes(mutate(original, mutation))
        only_project_errors(read_image_and_labels, path)

    fuzz()


NIFTI_FIELDS = ["dim", "pixdim", "datatype", "bitpix", "vox_offset", "scl_slope", "scl_inter", "qform_code",
                "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "srow_x", "srow_z", "magic",
                "xyzt_units", "intent_code", "dim_info", "slice_code", "cal_max", "sizeof_hdr"]


def test_nifti_reader_survives_mutated_header_values(images, scratch):
    original = images["ct.nii"]
    template = nib.Nifti1Header.from_fileobj(io.BytesIO(original))

    @budget(400)
    @given(field=st.sampled_from(NIFTI_FIELDS), values=st.lists(NUMBERS, min_size=1, max_size=8),
           index=st.integers(0, 7))
    def fuzz(field, values, index):
        header = template.copy()
        current = np.array(header[field])
        try:
            if current.shape:  # an array field: change one of its values
                current = current.copy()
                current[index % current.size] = values[0]
                header[field] = current
            else:
                header[field] = values[0]
        except (ValueError, TypeError, OverflowError):
            return  # the field cannot hold that value: no such file can exist
        path = scratch / "header.nii"
        path.write_bytes(header.binaryblock + original[len(header.binaryblock):])
        only_project_errors(read_image_and_labels, path)

    fuzz()


NRRD_FIELDS = ["type", "dimension", "space", "sizes", "space directions", "kinds", "endian", "encoding",
               "space origin", "data file", "byte skip", "line skip",
               "Segment0_ID", "Segment0_Name", "Segment1_LabelValue", "Segment1_Layer", "Segment2_ID"]


def test_nrrd_reader_survives_mutated_header_values(images, scratch):
    @budget(300)
    @given(name=st.sampled_from(["ct.nrrd", "raw.nrrd", "labels.seg.nrrd"]), field=st.sampled_from(NRRD_FIELDS),
           value=st.one_of(TEXT, st.lists(NUMBERS, max_size=4).map(lambda v: " ".join(map(str, v)))),
           drop=st.booleans())
    def fuzz(name, field, value, drop):
        original = images[name]
        end = nrrd_header_length(original)
        lines = original[:end].decode("latin-1").rstrip("\n").split("\n")
        lines = [line for line in lines if not line.startswith(field + ":")]
        if not drop:
            lines.append(f"{field}: {value}")
        path = scratch / name
        path.write_bytes(("\n".join(lines) + "\n\n").encode("latin-1") + original[end:])
        only_project_errors(read_image_and_labels, path)

    fuzz()


# --- checkpoints ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, slices) -> Path:
    """A small real checkpoint: a Linknet with a tiny encoder, one real training step on the
    cropped slices, written with its optimizer state by `save_checkpoint`."""
    from LiverLesionSegLib.checkpoint import save_checkpoint
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.model import build_network

    config = Config()
    config.model.arch, config.model.encoder, config.preprocess.size = "Linknet", "tu-lcnet_035", 64
    torch.manual_seed(0)
    network = build_network(config)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    x = torch.stack([torch.from_numpy(pydicom.dcmread(io.BytesIO(s)).pixel_array.astype(np.float32) / 1000)
                     for s in slices])[:, None]
    network(x).mean().backward()
    optimizer.step()
    state = {"epoch": 1, "step": 1, "history": {"steps": [{"step": 1, "loss": 0.5}], "epochs": []}, "best": {},
             "train_cases": ["HCC_006"], "val_cases": []}
    return save_checkpoint(tmp_path_factory.mktemp("checkpoint") / "small.safetensors", network, config, state,
                           optimizer)


def load_all_ways(path: Path) -> None:
    from LiverLesionSegLib.checkpoint import load_checkpoint, read_metadata

    read_metadata(path)
    load_checkpoint(path, with_optimizer=True)


def test_checkpoint_loader_survives_mutated_bytes(checkpoint, scratch):
    original = checkpoint.read_bytes()
    header = 8 + struct.unpack("<Q", original[:8])[0]

    @budget(500)
    @given(mutation=byte_edits(len(original), header))
    def fuzz(mutation):
        path = scratch / "bytes.safetensors"
        path.write_bytes(mutate(original, mutation))
        only_project_errors(load_all_ways, path)

    fuzz()


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)


def mutate_json(tree, data) -> object:
    """Replace one value somewhere in `tree` (drawn step by step from the root), or delete a key."""
    if isinstance(tree, dict) and tree and data.draw(st.booleans(), label="descend"):
        key = data.draw(st.sampled_from(sorted(tree)), label="key")
        if data.draw(st.integers(0, 5), label="delete") == 0:
            return {k: v for k, v in tree.items() if k != key}
        return {**tree, key: mutate_json(tree[key], data)}
    if isinstance(tree, list) and tree and data.draw(st.booleans(), label="descend"):
        index = data.draw(st.integers(0, len(tree) - 1), label="index")
        return tree[:index] + [mutate_json(tree[index], data)] + tree[index + 1:]
    return data.draw(JSON_VALUES, label="value")


def test_checkpoint_loader_survives_mutated_metadata(checkpoint, scratch):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    meta = json.loads(metadata["meta"])

    @budget(300)
    @given(data=st.data(), where=st.sampled_from(["meta", "meta", "meta", "format", "format_version", "raw"]))
    def fuzz(data, where):
        changed = dict(metadata)
        if where == "meta":
            changed["meta"] = json.dumps(mutate_json(meta, data), allow_nan=True)
        elif where == "raw":  # not JSON at all, or JSON of the wrong shape
            changed["meta"] = data.draw(st.one_of(TEXT, JSON_VALUES.map(json.dumps)), label="raw")
        else:
            changed[where] = data.draw(TEXT, label=where)
        path = scratch / "meta.safetensors"
        save_file(tensors, str(path), metadata=changed)
        only_project_errors(load_all_ways, path)

    fuzz()
