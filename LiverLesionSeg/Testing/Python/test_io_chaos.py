"""CHAOS's CT cases (DICOM_anon/ + Ground/, one PNG mask a slice), made here of twelve real 3Dircadb1.7 slices:
each mask goes onto the slice of the image its file name pairs it with, as the challenge pairs them."""

from __future__ import annotations

import logging
import re
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.cases import CaseRef, find_cases, find_input_ct, load_case
from LiverLesionSegLib.io.ircadb import read_ircadb_case

SLICES = [f"image_{n}" for n in range(96, 108)]  # the liver's area differs slice by slice


@pytest.fixture(scope="module")
def ircadb_slices(data_dir, tmp_path_factory):
    """The twelve slices read as the 3D-IRCADb case they come from: the masks placed by position."""
    source, case = data_dir / "ircadb/3Dircadb1.7", tmp_path_factory.mktemp("ircadb") / "3Dircadb1.7"
    for sub in ("PATIENT_DICOM", "MASKS_DICOM/liver"):
        (case / sub).mkdir(parents=True)
        for name in SLICES:
            shutil.copy(source / sub / name, case / sub / name)
    return read_ircadb_case(case)


@pytest.fixture(scope="module")
def chaos_root(data_dir, tmp_path_factory):
    """Train_Sets/CT/1 as CHAOS ships a case: i0000,0000b.dcm ... in DICOM_anon/ (each file a series UID of
    its own, as an anonymiser leaves them), liver_GT_000.png ... (0/255) in Ground/; the names count from the
    top slice down, against the slices' positions; and an MR case, Train_Sets/MR/1/T1DUAL."""
    source = data_dir / "ircadb/3Dircadb1.7"
    root = tmp_path_factory.mktemp("chaos") / "Train_Sets"
    case = root / "CT" / "1"
    (case / "DICOM_anon").mkdir(parents=True)
    (case / "Ground").mkdir()
    heights = {name: float(pydicom.dcmread(source / "PATIENT_DICOM" / name).ImagePositionPatient[2]) for name in SLICES}
    for n, name in enumerate(sorted(SLICES, key=heights.get, reverse=True)):
        ds = pydicom.dcmread(source / "PATIENT_DICOM" / name)
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(case / "DICOM_anon" / f"i{n:04d},0000b.dcm")
        mask = pydicom.dcmread(source / "MASKS_DICOM/liver" / name).pixel_array
        sitk.WriteImage(sitk.GetImageFromArray(np.where(mask > 0, 255, 0).astype(np.uint8)),
                        str(case / "Ground" / f"liver_GT_{n:03d}.png"))
    mr = root / "MR" / "1" / "T1DUAL"
    (mr / "DICOM_anon" / "InPhase").mkdir(parents=True)
    (mr / "Ground").mkdir()
    shutil.copy(case / "Ground" / "liver_GT_000.png", mr / "Ground" / "IMG-0004-00002.png")
    return root


def test_a_chaos_ct_case_is_read_each_mask_on_the_slice_its_name_pairs(chaos_root, ircadb_slices, caplog):
    """CHAOS's CTs were refused ("holds no labelled case"); paired by position order rather than by name,
    the masks here would lie upside down."""
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        refs = find_cases(chaos_root)
    assert refs == [CaseRef("chaos-1", "chaos", (chaos_root / "CT/1",))]
    assert f"left out {chaos_root / 'MR/1/T1DUAL'}: one of CHAOS's MR sequences, not CT" in caplog.text
    case = load_case(refs[0])
    assert case.name == "chaos-1" and case.lesions_segmented and not case.lesion.array.any()
    np.testing.assert_array_equal(case.ct.array, ircadb_slices.ct.array)
    assert case.ct.origin == pytest.approx(ircadb_slices.ct.origin)
    assert case.liver.array.any()
    np.testing.assert_array_equal(case.liver.array, ircadb_slices.liver.array)
    assert find_cases(chaos_root / "CT/1") == refs


def test_a_chaos_case_given_to_segment_is_its_ct(chaos_root, ircadb_slices):
    np.testing.assert_array_equal(find_input_ct(chaos_root / "CT/1").read().array, ircadb_slices.ct.array)


@pytest.fixture
def chaos_case(chaos_root, tmp_path):
    return shutil.copytree(chaos_root / "CT/1", tmp_path / "1")


def test_a_mask_missing_is_refused_as_the_pairs_no_longer_hold(chaos_case):
    (chaos_case / "Ground/liver_GT_005.png").unlink()
    with pytest.raises(InputError, match="holds 11 PNG masks for the 12 DICOM images of DICOM_anon/") as caught:
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))
    assert caught.value.path == str(chaos_case / "Ground")


def test_a_damaged_mask_is_named(chaos_case):
    mask = chaos_case / "Ground/liver_GT_003.png"
    mask.write_bytes(mask.read_bytes()[:60])
    with pytest.raises(InputError, match=r"cannot read the PNG mask \(the file is cut short\)") as caught:
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))
    assert caught.value.path == str(mask)


def _png_chunks(data: bytes) -> list[bytes]:
    """A PNG's chunks (each whole: length, type, data, CRC) after its signature."""
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        chunks.append(data[at:at + 12 + length])
        at += 12 + length
    return chunks


@pytest.mark.parametrize("chunk, told", [
    (b"IDAT", "it holds no image data: its IDAT chunk is missing"),  # was an internal error, an IndexError
    (b"IHDR", "its header chunk (IHDR) is missing or damaged")])  # was "its first bytes are no image's"
def test_a_mask_without_a_chunk_it_needs_is_named(chaos_case, chunk, told):
    """Found removing each chunk of a CHAOS mask in turn."""
    mask = chaos_case / "Ground/liver_GT_003.png"
    data = mask.read_bytes()
    mask.write_bytes(data[:8] + b"".join(c for c in _png_chunks(data) if c[4:8] != chunk))
    with pytest.raises(InputError, match=rf"liver_GT_003\.png: cannot read the PNG mask \({re.escape(told)}\)\. Copy "
                                         r"the case again from the CHAOS archive\."):
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))


def test_a_bit_flipped_in_a_masks_pixels_is_refused(chaos_case):
    """Found by `tools/damage_inputs.py --kind chaos` (seed 19069): the flipped bit decoded into another mask,
    without a word; each chunk's checksum tells it."""
    mask = chaos_case / "Ground/liver_GT_003.png"
    raw = bytearray(mask.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    mask.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"cannot read the PNG mask \(its IDAT chunk does not match its own "
                                         r"checksum: bytes of it are damaged\)"):  # was Pillow's "bad header checksum"
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))


def test_images_of_two_series_are_refused_as_the_pairs_would_shift(chaos_case):
    """Found by `--kind chaos` (seed 19116): two files whose SeriesInstanceUID was blanked made a series of
    their own; the CT was read from the others, and the pairs were refused as "does not fall on a CT slice"."""
    for name in ("i0002,0000b.dcm", "i0005,0000b.dcm"):
        ds = pydicom.dcmread(chaos_case / "DICOM_anon" / name)
        ds.SeriesInstanceUID = ""
        ds.save_as(chaos_case / "DICOM_anon" / name)
    with pytest.raises(InputError, match=r"holds i0002,0000b\.dcm, i0005,0000b\.dcm under another SeriesInstanceUID "
                                         r"than its other 10 images \(series, UID [\d.]+\), where a CHAOS case holds "
                                         r"one series, each of its images paired with a mask: those files' headers are "
                                         r"damaged or were edited") as caught:  # (was "holds 2 series of images (…)")
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))
    assert caught.value.path == str(chaos_case / "DICOM_anon")


def test_a_colour_mask_is_read_as_grey_its_transparency_left_aside(chaos_case, ircadb_slices):
    for mask in (chaos_case / "Ground").iterdir():
        with Image.open(mask) as image:
            image.convert("RGBA").save(mask)  # opaque: alpha 255 on every pixel, inside the liver or not
    case = load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))
    np.testing.assert_array_equal(case.liver.array, ircadb_slices.liver.array)


def test_a_mask_of_another_size_is_refused(chaos_case):
    mask = chaos_case / "Ground/liver_GT_007.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((256, 256), np.uint8)), str(mask))
    with pytest.raises(GeometryError, match="the mask has 256 x 256 pixels, its CT slice 512 x 512"):
        load_case(CaseRef("chaos-1", "chaos", (chaos_case,)))
