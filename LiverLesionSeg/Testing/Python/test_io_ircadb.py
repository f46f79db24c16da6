"""3D-IRCADb-01 cases: the numbers of cases.json, masks placed by position, the traps."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pydicom
import pytest

from case_checks import assert_case_matches
from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.ircadb import is_ircadb_case, lesion_folders, read_ircadb_case, read_mask_folder

IRCADB = ["3Dircadb1.1", "3Dircadb1.7", "3Dircadb1.17"]


@pytest.fixture(scope="session")
def ircadb_cases(data_dir):
    return {name: read_ircadb_case(data_dir / "ircadb" / name) for name in IRCADB}


@pytest.mark.parametrize("name", IRCADB)
def test_case_matches_cases_json(ircadb_cases, cases_json, name):
    case = ircadb_cases[name]
    assert case.name == name and case.labelled
    assert_case_matches(case, cases_json[name])
    assert case.ct.origin == pytest.approx(cases_json[name]["origin_lps_mm"])


@pytest.mark.parametrize("name", IRCADB)
def test_every_mask_folder_matches_cases_json(ircadb_cases, cases_json, data_dir, name):
    expected = cases_json[name]
    masks = data_dir / "ircadb" / name / "MASKS_DICOM"
    counts = {folder.name: int(read_mask_folder(folder, ircadb_cases[name].ct).sum())
              for folder in sorted(masks.iterdir())}
    assert counts == expected["mask_folders_voxels"]
    assert [p.name for p in lesion_folders(data_dir / "ircadb" / name)] == expected["liver_lesion_folders"]


def test_kidney_tumour_of_1_7_is_not_a_liver_lesion(ircadb_cases, data_dir, cases_json):
    case = ircadb_cases["3Dircadb1.7"]
    tumour = read_mask_folder(data_dir / "ircadb/3Dircadb1.7/MASKS_DICOM/tumor", case.ct)
    assert int(tumour.sum()) == 683_556  # the folder is there and read ...
    assert int(case.lesion.array.sum()) == 0  # ... but not taken as a liver lesion
    assert int((tumour & case.liver.array).sum()) == 230


def test_lesion_is_the_union_of_the_livertumor_folders_only(ircadb_cases, data_dir):
    case = ircadb_cases["3Dircadb1.1"]
    union = np.zeros(case.ct.shape, np.uint8)
    for folder in lesion_folders(data_dir / "ircadb/3Dircadb1.1"):
        union |= read_mask_folder(folder, case.ct)
    np.testing.assert_array_equal(case.lesion.array, union)
    for other in ("liverkyst", "portalvein"):  # they hold voxels that are not lesion
        mask = read_mask_folder(data_dir / "ircadb/3Dircadb1.1/MASKS_DICOM" / other, case.ct)
        assert int((mask & (1 - union)).sum()) > 0


def test_mask_slices_are_placed_by_position(ircadb_cases, data_dir, tmp_path):
    """Shuffled names and only the non-empty slices: the same masks, because the position decides."""
    source = data_dir / "ircadb/3Dircadb1.17"
    case = tmp_path / "3Dircadb1.17"
    (case / "MASKS_DICOM").mkdir(parents=True)
    os.symlink(source / "PATIENT_DICOM", case / "PATIENT_DICOM")
    rng = np.random.default_rng(17)
    for folder, renamed in (("liver", "liver"), ("livertumor2", "livertumors")):
        files = [p for p in sorted((source / "MASKS_DICOM" / folder).iterdir())
                 if pydicom.dcmread(p).pixel_array.any()]
        (case / "MASKS_DICOM" / renamed).mkdir()
        for path, new_name in zip(files, rng.permutation(len(files))):
            shutil.copy(path, case / "MASKS_DICOM" / renamed / f"image_{new_name}")
    copy = read_ircadb_case(case)
    original = ircadb_cases["3Dircadb1.17"]
    np.testing.assert_array_equal(copy.liver.array, original.liver.array)
    tumour2 = read_mask_folder(source / "MASKS_DICOM/livertumor2", original.ct)
    np.testing.assert_array_equal(copy.lesion.array, tumour2)
    assert int(copy.lesion.array.sum()) == 89_029


@pytest.fixture
def small_ircadb(data_dir, tmp_path, ircadb_cases):
    """3Dircadb1.17's CT (linked) with a liver mask folder of three copied slices."""
    source = data_dir / "ircadb/3Dircadb1.17"
    case = tmp_path / "small"
    (case / "MASKS_DICOM/liver").mkdir(parents=True)
    os.symlink(source / "PATIENT_DICOM", case / "PATIENT_DICOM")
    for n in (50, 51, 52):
        shutil.copy(source / f"MASKS_DICOM/liver/image_{n}", case / f"MASKS_DICOM/liver/image_{n}")
    return case


def test_small_copy_reads(small_ircadb, ircadb_cases, caplog):
    """Three of the CT's 119 mask slices: read, the other slices as empty, and that is told."""
    case = read_ircadb_case(small_ircadb)
    original = ircadb_cases["3Dircadb1.17"].liver.array
    np.testing.assert_array_equal(case.liver.array[50:53], original[50:53])
    assert int(case.liver.array.sum()) == int(original[50:53].sum()) > 0
    assert int(case.lesion.array.sum()) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "MASKS_DICOM/liver holds mask slices for 3 of the CT's 119 slices" in warned[0]
    assert "slices 0, 1, 2, 3, 4 and 111 more read as holding none of liver" in warned[0]


def test_every_mask_slice_there_is_not_warned_of(data_dir, ircadb_cases, caplog):
    case = ircadb_cases["3Dircadb1.17"]
    read_mask_folder(data_dir / "ircadb/3Dircadb1.17/MASKS_DICOM/liver", case.ct)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("inside", [True, False], ids=["a bit of the liver flipped", "a bit of the background flipped"])
def test_a_mask_slice_holding_another_value_than_the_others_is_warned_of(small_ircadb, ircadb_cases, caplog, inside):
    """Found by `tools/damage_inputs.py --kind ircadb` (seed 41006: bytes of a liver mask slice changed, which
    gave another lesion table without a word). Every 3D-IRCADb-01 mask slice holds 0 and 255, so a bit
    flipped in one holds 127, or 4 in its background."""
    path = small_ircadb / "MASKS_DICOM/liver/image_51"
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    where = tuple(np.argwhere(pixels == (255 if inside else 0))[0])
    pixels[where] ^= 128 if inside else 4
    ds.PixelData = pixels.tobytes()
    ds.save_as(path)
    case = read_ircadb_case(small_ircadb)
    original = ircadb_cases["3Dircadb1.17"].liver.array[51]
    assert int(case.liver.array[51].sum()) == int(original.sum()) + (0 if inside else 1)
    assert (f"MASKS_DICOM/liver: mask slice image_51 holds the value(s) {127 if inside else 4} besides 0 and 255, the "
            "mask's: bytes of its pixels may be damaged; every voxel not 0 is read as inside liver. If the case was "
            "copied, copy it again") in caplog.text


@pytest.mark.parametrize("keyword, value, told", [
    ("PixelSpacing", 0.743, "mask slice image_51's pixel spacing is '0.743' (2 numbers needed)"),
    ("PixelSpacing", "", "mask slice image_51's pixel spacing is empty or missing"),
    ("ImageOrientationPatient", "1", "mask slice image_51's orientation is '1' (6 numbers needed)"),
    ("ImagePositionPatient", 96.0, "mask slice image_51 has no usable ImagePositionPatient"),
    ("ImagePositionPatient", ["0", "0"], "mask slice image_51 has no usable ImagePositionPatient"),
])
def test_a_mask_slice_header_of_odd_numbers_is_told(small_ircadb, keyword, value, told):
    """A single number where the header holds several, or none: one line, not Python's TypeError."""
    path = small_ircadb / "MASKS_DICOM/liver/image_51"
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, value)
    ds.save_as(path)
    with pytest.raises(GeometryError) as exc:
        read_ircadb_case(small_ircadb)
    assert told in str(exc.value) and "\n" not in str(exc.value)


def test_a_mask_slice_without_pixel_data_is_told_as_one(small_ircadb):
    """Found by `tools/damage_inputs.py --kind ircadb`: told in pydicom's words ("The dataset in 'src' has
    no 'Pixel Data', 'Float Pixel Data' or 'Double Float Pixel Data' element, no pixel data to decode")."""
    path = small_ircadb / "MASKS_DICOM/liver/image_51"
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_ircadb_case(small_ircadb)
    assert str(exc.value) == f"{path}: has no pixel data (a truncated file?). Export the series again."


def shift(path, dx=0.0, dz=0.0):
    ds = pydicom.dcmread(path)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x + dx, y, z + dz]
    ds.save_as(path)


def test_mask_slice_between_ct_slices(small_ircadb):
    shift(small_ircadb / "MASKS_DICOM/liver/image_51", dz=0.8)
    with pytest.raises(GeometryError) as exc:
        read_ircadb_case(small_ircadb)
    assert "\n" not in str(exc.value) and "does not fall on a CT slice" in str(exc.value)
    assert "image_51" in str(exc.value)


def test_mask_slice_shifted_in_plane(small_ircadb):
    shift(small_ircadb / "MASKS_DICOM/liver/image_52", dx=3.0)
    with pytest.raises(GeometryError) as exc:
        read_ircadb_case(small_ircadb)
    assert "\n" not in str(exc.value) and "shifted in-plane" in str(exc.value) and "image_52" in str(exc.value)


@pytest.mark.parametrize("how", ["a copy", "a damaged position"])
def test_two_mask_slices_on_one_ct_slice(small_ircadb, how):
    """A copy is a duplicate to remove; a mask slice placed on another's CT slice by a damaged position was
    told so too ("remove the duplicate file"), where neither is one."""
    masks = small_ircadb / "MASKS_DICOM/liver"
    if how == "a copy":
        shutil.copy(masks / "image_51", masks / "image_51 again")
    else:
        ds = pydicom.dcmread(masks / "image_52")
        ds.ImagePositionPatient = pydicom.dcmread(masks / "image_51").ImagePositionPatient
        ds.save_as(masks / "image_52")
    with pytest.raises(GeometryError) as exc:
        read_ircadb_case(small_ircadb)
    assert "\n" not in str(exc.value) and "lie on the same CT slice 51" in str(exc.value)
    assert ("hold the same mask: one is a copy. Remove the duplicate file." if how == "a copy" else
            "but hold different masks: the ImagePositionPatient of one is damaged. Copy the case again.") \
        in str(exc.value)


def test_missing_liver_folder(small_ircadb):
    shutil.rmtree(small_ircadb / "MASKS_DICOM/liver")
    with pytest.raises(InputError) as exc:
        read_ircadb_case(small_ircadb)
    assert type(exc.value) is InputError and "no liver mask" in str(exc.value) and str(small_ircadb) in str(exc.value)


def test_is_ircadb_case(data_dir):
    assert is_ircadb_case(data_dir / "ircadb/3Dircadb1.1")
    assert not is_ircadb_case(data_dir / "ircadb")
    assert not is_ircadb_case(data_dir / "ircadb/3Dircadb1.1/PATIENT_DICOM")
    assert not is_ircadb_case(data_dir / "tace/RadCTTACEomics_0697")
