"""DICOM series discovery and reading, on the real cases and on small damaged copies of them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid as dicom_uid
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder

from bad_inputs import edit, refusal_in_a_process_of_its_own
from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.io.dicom import read_series
from LiverLesionSegLib.io.dicom_scan import find_series, scan_folder
from LiverLesionSegLib.io.series_choice import choose_ct_series, contrast_phase, read_ct_folder

# Where each case's CT is read from (the case folder itself where the reader must choose).
CT_FOLDERS = {
    "3Dircadb1.1": "ircadb/3Dircadb1.1/PATIENT_DICOM",
    "3Dircadb1.7": "ircadb/3Dircadb1.7/PATIENT_DICOM",
    "3Dircadb1.17": "ircadb/3Dircadb1.17/PATIENT_DICOM",
    "RadCTTACEomics_0697": "tace/RadCTTACEomics_0697",
    "RadCTTACEomics_1211": "tace/RadCTTACEomics_1211",
    "HCC_006": "hcc-tace-seg/HCC_006",
}
SERIES_1211 = "tace/RadCTTACEomics_1211/10_AP_Ax2.50mm"


@pytest.fixture(scope="session")
def ct_volumes(data_dir):
    return {name: read_ct_folder(data_dir / folder) for name, folder in CT_FOLDERS.items()}


def independent_slices(folder: Path, series_uid: str):
    """(IPP, file) of the series' axial slices, sorted by z, read straight with pydicom."""
    slices = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if ds.get("SeriesInstanceUID") != series_uid or [float(v) for v in ds.ImageOrientationPatient] != [1, 0, 0, 0, 1, 0]:
            continue
        slices.append((np.array([float(v) for v in ds.ImagePositionPatient]), path))
    return sorted(slices, key=lambda s: s[0][2])


def assert_one_line(exc: pytest.ExceptionInfo, *names: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"


# --- real cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CT_FOLDERS))
def test_ct_geometry_matches_cases_json(ct_volumes, cases_json, name):
    expected, volume = cases_json[name], ct_volumes[name]
    assert volume.shape == (expected["slices"], expected["rows"], expected["columns"])
    assert volume.array.dtype == np.int16
    row_spacing, column_spacing = expected["pixel_spacing_mm"]
    assert volume.spacing == pytest.approx((column_spacing, row_spacing, expected["slice_step_mm"]), abs=1e-5)
    assert volume.origin == pytest.approx(expected["origin_lps_mm"], abs=1e-3)
    orientation = np.array(expected["orientation"])
    normal = np.cross(orientation[:3], orientation[3:])
    np.testing.assert_allclose(volume.direction, np.column_stack([orientation[:3], orientation[3:], normal]))
    assert expected["series_uid"] in volume.source


@pytest.mark.parametrize("name", list(CT_FOLDERS))
def test_ct_geometry_and_pixels_match_the_headers(ct_volumes, cases_json, data_dir, name):
    volume = ct_volumes[name]
    slices = independent_slices(data_dir / CT_FOLDERS[name], cases_json[name]["series_uid"])
    assert len(slices) == volume.shape[0]
    for k, (position, _) in enumerate(slices):
        np.testing.assert_allclose(volume.physical_points([0, 0, k])[0], position, atol=1e-3)
    for k in (0, volume.shape[0] // 2, volume.shape[0] - 1):
        ds = pydicom.dcmread(slices[k][1])
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(volume.array[k], hu)
        # PixelSpacing is [row (j), column (i)]: voxel (i, j) lies at IPP + i*col_step*row_dir + j*row_step*col_dir.
        row_dir, col_dir = np.array(ds.ImageOrientationPatient[:3], float), np.array(ds.ImageOrientationPatient[3:], float)
        expected = slices[k][0] + 7 * float(ds.PixelSpacing[1]) * row_dir + 5 * float(ds.PixelSpacing[0]) * col_dir
        np.testing.assert_allclose(volume.physical_points([7, 5, k])[0], expected, atol=1e-3)


def test_0697_stray_coronal_reformat_is_left_out(data_dir, cases_json, caplog):
    folder = data_dir / "tace/RadCTTACEomics_0697/31_EQP_Ax5.00mm"
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        (series,) = find_series(folder)
    expected = cases_json["RadCTTACEomics_0697"]
    assert series.uid == expected["series_uid"] and series.modality == "CT"
    assert len(series.files) == expected["slices"] == 44
    assert len(series.left_out) == expected["stray_non_axial_images"] == 1
    stray = pydicom.dcmread(series.left_out[0], stop_before_pixels=True)
    assert [float(v) for v in stray.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
    assert series.left_out[0].name in caplog.text
    assert len(series.sop_instance_uids) == 44 and stray.SOPInstanceUID not in series.sop_instance_uids
    assert series.is_axial


def test_0697_folder_with_two_series_chooses_the_labelled_one_and_logs_it(data_dir, cases_json, caplog):
    folder = data_dir / "tace/RadCTTACEomics_0697"
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        volume = read_ct_folder(folder)
    assert cases_json["RadCTTACEomics_0697"]["series_uid"] in volume.source
    assert "31_EQP_Ax5.00mm" in volume.source and volume.shape[0] == 44
    chose = [r.getMessage() for r in caplog.records if "chose" in r.getMessage()]
    assert len(chose) == 1 and "31_EQP_Ax5.00mm" in chose[0] and "not chosen" in chose[0]
    assert "11_AP_Ax5.00mm" in chose[0].split("not chosen")[1]


@pytest.mark.parametrize("selector", ["11_AP_Ax5.00mm", "0", 0, "1801040320200103051513090319.697.1.0"])
def test_series_argument_picks_another_series(data_dir, selector):
    folder = data_dir / "tace/RadCTTACEomics_0697"
    series = choose_ct_series(scan_folder(folder), selector)
    assert series.description == "11_AP_Ax5.00mm" and len(series.files) == 44
    volume = read_series(series)
    assert volume.origin == pytest.approx((-208.816, -220.484, -308.187))
    assert "11_AP_Ax5.00mm" in volume.source


def test_series_argument_that_matches_nothing_lists_the_series(data_dir):
    with pytest.raises(InputError) as exc:
        read_ct_folder(data_dir / "tace/RadCTTACEomics_0697", series="99_XX")
    assert type(exc.value) is InputError
    assert_one_line(exc, "99_XX", "11_AP_Ax5.00mm", "31_EQP_Ax5.00mm")


def test_most_axial_slices_wins_without_a_seg(tmp_path, data_dir, caplog):
    """Two CT series, no SEG: the one with more axial slices, and covering more, is chosen and the
    choice logged."""
    source = data_dir / SERIES_1211
    for n in range(100, 106):
        shutil.copy(source / f"dicom-{n:05d}.dcm", tmp_path / f"long {n}")
    for n in range(100, 103):
        ds = pydicom.dcmread(source / f"dicom-{n:05d}.dcm")
        ds.SeriesInstanceUID, ds.SeriesDescription, ds.SeriesNumber = "1.2.3.4.5", "short", 7
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(tmp_path / f"short{n}")
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        volume = read_ct_folder(tmp_path)
    assert volume.shape[0] == 6 and "short" not in volume.source
    assert "it covers 12.5 mm along the body, series 7 'short'" in caplog.text and "only 5.0 mm" in caplog.text


# --- small synthetic series: copies of a few 1211 slices ----------------------------------------

@pytest.fixture
def small_series(tmp_path, data_dir) -> Path:
    """Six consecutive slices of 1211 under names without a suffix, in their own folder."""
    folder = tmp_path / "series with spaces"
    folder.mkdir()
    for n in range(100, 106):
        shutil.copy(data_dir / SERIES_1211 / f"dicom-{n:05d}.dcm", folder / f"slice {n}")
    return folder


def test_small_series_reads_and_file_names_do_not_matter(small_series, tmp_path):
    volume = read_ct_folder(small_series)
    assert volume.shape == (6, 512, 512)
    assert volume.spacing[2] == pytest.approx(2.5)
    # The same slices under shuffled names, some non-DICOM files beside them: the same volume.
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for new, old in zip(["b", "f", "a", "e", "c", "d"], sorted(small_series.iterdir())):
        shutil.copy(old, shuffled / new)
    (shuffled / "notes.txt").write_text("not DICOM")
    (shuffled / "DICOMDIR-like").write_bytes(b"\0" * 300)
    scan = scan_folder(shuffled)
    assert len(scan.skipped) == 2 and len(scan.series) == 1
    again = read_ct_folder(shuffled)
    np.testing.assert_array_equal(again.array, volume.array)
    assert again.origin == volume.origin


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_and_a_dangling_link_among_the_slices_are_passed_over(small_series, tmp_path):
    volume = read_ct_folder(small_series)
    os.mkfifo(small_series / "slice 999")  # opened for reading, it would block until someone writes
    (small_series / "slice 998").symlink_to(tmp_path / "gone")
    # in a process of its own: were the pipe opened, the read would block, and only a timeout ends it
    reader = ("import sys; from LiverLesionSegLib.io.dicom_scan import scan_folder; "
              "from LiverLesionSegLib.io.series_choice import read_ct_folder; import numpy as np; "
              "scan = scan_folder(sys.argv[1]); print(len(scan.series), len(scan.skipped)); "
              "np.save(sys.argv[2], read_ct_folder(sys.argv[1]).array)")
    run = subprocess.run([sys.executable, "-c", reader, str(small_series), str(tmp_path / "again.npy")],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "0"]  # one series, nothing skipped
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), volume.array)


def test_rle_compressed_copies_read_identically(small_series, tmp_path):
    volume = read_ct_folder(small_series)
    for path in small_series.iterdir():
        ds = pydicom.dcmread(path)
        ds.compress(dicom_uid.RLELossless)
        ds.save_as(path)
    np.testing.assert_array_equal(read_ct_folder(small_series).array, volume.array)


def test_rescale_slope_gives_float_hounsfield_units(small_series):
    reference = read_ct_folder(small_series)
    for path in small_series.iterdir():
        edit(path, RescaleSlope=0.5, RescaleIntercept=-1024)
    volume = read_ct_folder(small_series)
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array, reference.array.astype(np.float32) * 0.5 - 1024)


def test_values_beyond_int16_give_float(small_series):
    reference = read_ct_folder(small_series)
    for path in small_series.iterdir():
        edit(path, RescaleIntercept=32000)
    volume = read_ct_folder(small_series)
    assert volume.array.dtype == np.float32 and volume.array.max() > 32767
    np.testing.assert_array_equal(volume.array, reference.array.astype(np.float32) + 32000)


def test_missing_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        read_ct_folder(tmp_path / "nothing here")
    assert_one_line(exc, "nothing here", "does not exist")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        read_ct_folder(tmp_path)
    assert type(exc.value) is InputError
    assert_one_line(exc, str(tmp_path), "no DICOM files found")


def test_folder_of_non_dicom_files(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n" + b"\0" * 200)
    with pytest.raises(InputError) as exc:
        read_ct_folder(tmp_path)
    assert type(exc.value) is InputError
    assert_one_line(exc, str(tmp_path), "no DICOM files found among its 2 files")


def test_mr_series_is_refused_naming_the_modality(small_series):
    for path in small_series.iterdir():
        edit(path, Modality="MR", SOPClassUID=pydicom.uid.MRImageStorage)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert type(exc.value) is InputError
    assert_one_line(exc, "modality MR", "not CT", small_series.name)


@pytest.mark.parametrize("modality", ["MR", "LIVER", "SEG"])
def test_a_ct_series_whose_modality_is_damaged_is_told_so(small_series, modality):
    """Found by `tools/damage_inputs.py --kind multiframe`, seeds 37003 and 37044: a CT whose Modality was
    damaged ("LIVER", "é") was refused as not CT, "give a CT series", though its SOP class is CT's; made
    SEG (`--kind dicom`, seed 36008), as "holds only non-image DICOM objects (SEG), no CT series"."""
    for path in small_series.iterdir():
        edit(path, Modality=modality)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, f"has modality {modality}, though its SOP class is CT Image Storage: its header is damaged "
                         "or was edited. Export the series again.", small_series.name)


@pytest.mark.parametrize("how", ["a new one each", "removed"])
def test_images_an_anonymiser_gave_a_series_uid_each_are_read_as_one_series(small_series, tmp_path, how, caplog):
    """Every file with a SeriesInstanceUID of its own (or none), as some anonymisers leave a series: one
    series still, read as exported, told in a warning; a DICOM SEG over it is refused before any work.
    A second series so scattered, with another number, stays a series of its own."""
    from LiverLesionSegLib.errors import OutputError
    from LiverLesionSegLib.io.dicomseg_write import check_referenced_uids

    exported = read_ct_folder(small_series)
    second = _second_series(small_series, tmp_path / "second", SeriesNumber=2, SeriesDescription="Portal venous")
    shutil.move(second, small_series / "second")
    for path in [p for p in small_series.rglob("*") if p.is_file()]:
        ds = pydicom.dcmread(path)
        if how == "removed":
            del ds.SeriesInstanceUID
        else:
            ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(path)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        scan = scan_folder(small_series)
    assert [(s.number, s.images) for s in scan.series] == [(0, 6), (2, 6)] and not scan.skipped
    told = "6 images carry no SeriesInstanceUID" if how == "removed" else "6 images each carry a SeriesInstanceUID"
    assert told in caplog.text
    chosen = choose_ct_series(scan, 0)
    volume = read_series(chosen)
    np.testing.assert_array_equal(volume.array, exported.array)
    assert volume.origin == exported.origin
    with pytest.raises(OutputError, match="SeriesInstanceUID"):
        check_referenced_uids(chosen)


def test_two_single_images_sharing_a_series_number_stay_apart(small_series):
    """Two scouts of one number, each its own series, are not taken for a scattered series."""
    for path in sorted(small_series.iterdir())[2:]:
        path.unlink()
    for path in small_series.iterdir():
        edit(path, SeriesInstanceUID=pydicom.uid.generate_uid())
    assert [s.images for s in scan_folder(small_series).series] == [1, 1]


def test_ct_images_whose_modality_was_removed_are_read_as_ct(small_series):
    """The CT Image Storage class tells a CT whose Modality element an export left out."""
    exported = read_ct_folder(small_series)
    for path in small_series.iterdir():
        ds = pydicom.dcmread(path)
        del ds.Modality
        ds.save_as(path)
    np.testing.assert_array_equal(read_ct_folder(small_series).array, exported.array)


def test_signed_values_declared_unsigned_are_read_as_written(small_series, caplog):
    """Slices holding signed HU (air -1000) but declaring PixelRepresentation 0: read as declared,
    air would lie at 64 536 HU. They are read signed, with a warning, as the series exported right."""
    exported = read_ct_folder(small_series)
    for path in small_series.iterdir():
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        ds.PixelData, ds.PixelRepresentation, ds.RescaleIntercept = hu.astype(np.int16).tobytes(), 0, 0
        ds.BitsStored, ds.HighBit = 16, 15
        ds.file_meta.TransferSyntaxUID = dicom_uid.ExplicitVRLittleEndian
        ds.save_as(path)
    assert pydicom.dcmread(next(small_series.iterdir())).pixel_array.max() > 60000  # as declared
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        np.testing.assert_array_equal(read_ct_folder(small_series).array, exported.array)
    assert "6 slice(s)" in caplog.text and "declare their pixels unsigned (PixelRepresentation 0)" in caplog.text


def test_padding_written_signed_into_unsigned_pixels_is_read_as_padding(small_series):
    """Unsigned pixels (intercept -1024) whose padding outside the field of view was written as the
    signed -2000 (65 536 - 2000): the padding reads -3024 HU, not 62 512 HU; the rest as before."""
    exported = read_ct_folder(small_series)
    for path in small_series.iterdir():
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept) + 1024
        stored[:40, :40] = 65536 - 2000
        ds.PixelData, ds.PixelRepresentation, ds.RescaleIntercept = stored.astype(np.uint16).tobytes(), 0, -1024
        ds.BitsStored, ds.HighBit = 16, 15
        ds.file_meta.TransferSyntaxUID = dicom_uid.ExplicitVRLittleEndian
        ds.save_as(path)
    volume = read_ct_folder(small_series)
    assert (volume.array[:, :40, :40] == -3024).all()
    np.testing.assert_array_equal(volume.array[:, 40:], exported.array[:, 40:])


def test_single_slice(small_series):
    for path in sorted(small_series.iterdir())[1:]:
        path.unlink()
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "single slice", small_series.name)


def test_one_slice_given_reads_its_series_from_its_folder(small_series, caplog):
    """A file picked in a file dialog, as 3D Slicer loads a series from one of its files: refused before
    as "is a single DICOM slice. Give the folder that holds the whole series."."""
    original = read_ct_folder(small_series)
    (small_series / "notes.txt").write_text("not DICOM")
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        volume = read_input_volume(small_series / "slice 102")
    assert np.array_equal(volume.array, original.array) and volume.same_grid(original)
    assert "slice 102: a slice of series 0 '10_AP_Ax2.50mm'" in caplog.text and "(6 slices)" in caplog.text


def test_one_slice_given_without_others_of_its_series_beside_it_is_refused(small_series):
    """Alone in its folder, or beside the slices of another series: no volume to read."""
    for path in sorted(small_series.iterdir())[1:]:
        edit(path, SeriesInstanceUID="1.2.3")
    given = sorted(small_series.iterdir())[0]
    with pytest.raises(InputError) as exc:
        read_input_volume(given)
    assert str(exc.value) == f"{given}: is a single DICOM slice. Give the folder that holds the whole series."


def test_gap_names_the_positions(small_series):
    (small_series / "slice 103").unlink()
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    # Slices 100..105 of 1211 lie at z = 17.5 - 2.5 * (n - 1): 102 at -235.0 and 104 at -240.0.
    assert_one_line(exc, "-240.000", "-235.000", "slice 102", "slice 104", small_series.name)


def test_byte_for_byte_copies_of_slices_are_read_once(small_series, caplog):
    """A disc or export copied twice into one folder ("IM0001 - Copy", "IM0001 (1)"): files of one
    SOPInstanceUID and the same bytes are one image. Refused before as "two slices at the same position"."""
    original = read_ct_folder(small_series)
    for path in list(small_series.iterdir()):
        shutil.copy(path, small_series / f"{path.name} (1)")
    shutil.copy(small_series / "slice 103", small_series / "slice 103 - Copy")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_ct_folder(small_series)
    assert np.array_equal(volume.array, original.array) and volume.same_grid(original)
    assert ("left out 7 file(s) that are byte-for-byte copies of others (e.g. slice 100 (1), a copy of slice 100): "
            "each image read once") in caplog.text


def test_a_copy_whose_bytes_differ_is_still_two_slices_at_one_place(small_series):
    """The same SOPInstanceUID but other bytes (one of them edited or damaged): which to read cannot be
    told, so the folder is refused as before."""
    shutil.copy(small_series / "slice 103", small_series / "slice 103 - Copy")
    edit(small_series / "slice 103 - Copy", WindowCenter=41)
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "two slices at the same position", "slice 103")


def test_a_gap_filled_by_a_slice_of_another_series_uid_names_it(small_series):
    """A slice given its own SeriesInstanceUID (an edit, an export that re-sent it) leaves a gap in
    the series; the message names the file that lies there instead of only 'a slice is missing'."""
    edit(small_series / "slice 103", SeriesInstanceUID="1.2.3")
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice positions jump", "slice 103", "UID 1.2.3", "another SeriesInstanceUID")


@pytest.mark.parametrize("orientation, told", [
    ([-1, 1e30, 1e6, 1e6, 1e-30, 1e30], "has an unusable ImageOrientationPatient (-1, 1e+30, 1e+06, 1e+06, 1e-30"),
    ([1, 0, 0, 0, 0.8, 0.6],
     "its ImageOrientationPatient (1, 0, 0, 0, 0.8, 0.6) is not the series' (1, 0, 0, 0, 1, 0)"),
    (None, "has no ImageOrientationPatient")], ids=["unusable", "another", "none"])
def test_a_gap_where_a_slice_of_another_orientation_lies_names_it(small_series, orientation, told):
    """Found by `tools/damage_inputs.py --kind dicom` (seed 25006): a slice whose orientation was
    damaged is left out of its series as a reformat would be, and the gap it leaves was told as "a
    slice is missing", the file being there."""
    edit(small_series / "slice 103", ImageOrientationPatient=orientation)
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice positions jump", f"series' file slice 103 lies in a gap between its slices but {told}",
                    "perhaps the missing slice, its header damaged")


def test_a_gap_beside_another_series_elsewhere_is_told_as_a_gap(small_series):
    """Another series whose slices lie outside the gap (a phase over other positions) is not named."""
    edit(small_series / "slice 103", SeriesInstanceUID="1.2.3",
         ImagePositionPatient=[-200.0, -200.0, 900.0])
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice positions jump", "slice 102", "slice 104")
    assert "1.2.3" not in str(exc.value) and "another SeriesInstanceUID" not in str(exc.value)


def test_a_slice_whose_rescale_differs_from_the_others_is_warned_of(small_series, caplog):
    """A CT's rescale is the same over its series: one slice's intercept 1000 under the others' makes
    it 1000 HU darker, read as its header says, with a warning naming it."""
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        plain = read_ct_folder(small_series)
    assert "another rescale" not in caplog.text
    intercept = float(pydicom.dcmread(small_series / "slice 103", stop_before_pixels=True).RescaleIntercept)
    edit(small_series / "slice 103", RescaleIntercept=intercept - 1000)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        odd = read_ct_folder(small_series)
    assert "1 of its 6 slices, e.g. slice 103, have another rescale than the rest" in caplog.text
    assert f"intercept {intercept - 1000:g} against 1 and {intercept:g}" in caplog.text
    changed = [k for k in range(6) if not np.array_equal(odd.array[k], plain.array[k])]
    assert len(changed) == 1 and np.all(plain.array[changed[0]] - odd.array[changed[0]] == 1000)


@pytest.mark.parametrize("rescale, told", [
    ({"RescaleSlope": 1e30}, r"its RescaleSlope 1e\+30 and RescaleIntercept 0, unlike the other slices' 1 and 0, "
                             r"would put its values at \S+ HU \(their median\), where no CT's lie: its header is "
                             r"damaged\. Export the series again\."),
    ({"RescaleIntercept": 1e30}, r"its RescaleSlope 1 and RescaleIntercept 1e\+30, unlike .* would put its values at "
                                 r"1e\+30 HU"),
    ({"RescaleSlope": 1e-30}, r"its RescaleSlope 1e-30 and RescaleIntercept 0, unlike the other slices' 1 and 0, "
                              r"would make it one value, 0 HU, throughout: its header is damaged")])
def test_a_slice_whose_rescale_puts_it_off_any_ct_scale_is_refused(small_series, rescale, told):
    """One slice's slope of 1e30 or 1e-30, or intercept of 1e30, among the others' 1 and 0 was
    segmented with only the warning that its values "may be off by the difference"."""
    header = pydicom.dcmread(small_series / "slice 103", stop_before_pixels=True)
    assert (header.RescaleSlope, header.RescaleIntercept) == (1, 0)  # (this series stores signed HU)
    edit(small_series / "slice 103", **rescale)
    with pytest.raises(InputError, match=rf"^{re.escape(str(small_series / 'slice 103'))}: {told}"):
        read_ct_folder(small_series)


def test_duplicate_position(small_series):
    shutil.copy(small_series / "slice 102", small_series / "slice 102 copy")
    edit(small_series / "slice 102 copy", SOPInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "same position", "slice 102", small_series.name)


def test_mixed_pixel_spacing(small_series):
    edit(small_series / "slice 103", PixelSpacing=[0.7, 0.7])
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "mixed pixel spacing", "slice 103", small_series.name)


@pytest.mark.parametrize("slice_name, other", [("slice 103", "slice 105"), ("slice 105", "slice 104")])
def test_a_slice_without_the_pixel_spacing_the_others_give_is_named(small_series, slice_name, other):
    """Found removing each element of a slice in turn: "mixed pixel spacing: (0.7812, 0.7812) in
    slice-032.dcm but (nan) in slice-035.dcm"."""
    edit(small_series / slice_name, PixelSpacing=None)
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, f"{slice_name} has no PixelSpacing, which {other} gives. The file is damaged or was edited")


def test_an_empty_samples_per_pixel_is_told_as_the_header_s(small_series):
    """Found emptying each element of a slice in turn: Python's "int() argument must be a string, a
    bytes-like object or a real number, not 'NoneType'"."""
    ds = pydicom.dcmread(small_series / "slice 103")
    ds["SamplesPerPixel"].value = None
    ds.save_as(small_series / "slice 103")
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103: its header's description of its pixel data is damaged (Missing required element: "
                         "(0028,0002) 'Samples per Pixel')")


def test_pixel_spacing_with_a_decimal_comma_names_the_file_and_the_attribute(small_series):
    """As a system set to a German or French locale may write it: '0,703125\\0,703125'."""
    path = small_series / "slice 103"
    raw = pydicom.dcmread(path).get_item(0x00280030).value  # the stored bytes, as text
    data = path.read_bytes()
    assert data.count(raw) == 1
    path.write_bytes(data.replace(raw, raw.replace(b".", b",")))
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103 has an unusable PixelSpacing", "0,", small_series.name)


def test_an_empty_image_position_is_told_as_empty(small_series):
    """Found by `tools/damage_inputs.py --kind dicom` (seed 26024): "has an unusable ImagePositionPatient (None)"."""
    edit(small_series / "slice 103", ImagePositionPatient="")
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103 has an empty ImagePositionPatient. The file is damaged or was edited")


@pytest.mark.parametrize("edits, held", [({"Rows": 64}, "8 times the 65536"),
                                         ({"BitsAllocated": 8, "BitsStored": 8}, "2 times the 262144")])
def test_a_slice_whose_header_gives_a_fraction_of_its_pixels_is_refused(small_series, edits, held):
    """Found by `tools/damage_inputs.py --kind dicom` (seed 28016: every slice's Rows made 64): pydicom
    read each uncompressed 512-row slice as 8 frames of 64 rows, and the series was refused as "expected a
    3-D image, got 4-D of shape (8, 8, 64, 512)"."""
    for path in small_series.iterdir():  # every slice, as the damage did (one alone is of another size too)
        edit(path, **edits)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, f": its pixel data holds 524288 bytes, {held}", "the header is damaged")
    assert re.search(r"/slice 10\d: its pixel data", str(exc.value))


@pytest.mark.parametrize("edits, told", [
    ({"Columns": 1024}, "what 1 frame of 512 x 512 take, where its header gives 512 x 1024 (Rows x Columns)"),
    ({"BitsAllocated": 32}, "what its 1 frame of 512 x 512 take at 16 bits a pixel, where its BitsAllocated gives 32")])
def test_a_slice_whose_header_gives_more_pixels_than_it_holds_names_the_header(small_series, edits, told):
    """A Columns or BitsAllocated damaged to more (damage tool, multiframe seed 42006) was told as pixel data
    cut short: "cannot decode the pixel data (its pixel data holds 524288 of the 1048576 bytes …). The file
    may be truncated or damaged"; it holds exactly what a square slice of 16 bits takes."""
    for path in small_series.iterdir():
        edit(path, **edits)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, f"its header's description of its pixel data is damaged (its pixel data holds 524288 bytes, "
                         f"{told}). Export the series again.")


def test_mixed_rows_and_columns(small_series):
    ds = pydicom.dcmread(small_series / "slice 103")
    ds.PixelData = ds.pixel_array[:256, :256].copy().tobytes()
    ds.Rows, ds.Columns = 256, 256
    ds.save_as(small_series / "slice 103")
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "mixed image size", "slice 103", small_series.name)


@pytest.mark.parametrize("photometric, said", [("", "empty"), ("RGB", "'RGB'"), ("PALETTE COLOR", "'PALETTE COLOR'")])
def test_a_grey_slice_whose_photometric_interpretation_is_damaged_is_not_told_as_colour(small_series, photometric,
                                                                                      said):
    """Found by `tools/damage_inputs.py --kind dicom`: one sample per pixel and an empty (or colour)
    PhotometricInterpretation was told as "a colour image (1 samples per pixel, )"."""
    path = small_series / "slice 102"
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = photometric
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 102", f"its PhotometricInterpretation is {said}, where a slice of one sample per "
                                      "pixel, as a CT's is, says MONOCHROME2")


@pytest.mark.parametrize("samples, photometric", [(7, "MONOCHROME2"), (64, "MONOCHROME2"), (4, "RGB")])
def test_a_slice_whose_samples_per_pixel_is_damaged_is_not_told_as_colour(small_series, samples, photometric):
    """Found by `tools/damage_inputs.py --kind dicom` (seeds 25045, 25046): a grey slice given 7 or 64
    samples per pixel was told as "a colour image (7 samples per pixel, MONOCHROME2)"."""
    path = small_series / "slice 102"
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 102", f"its SamplesPerPixel is {samples} (PhotometricInterpretation {photometric}), "
                                      "where a grey-scale image has 1 and a colour one 3: the header is damaged")
    assert "colour image (" not in str(exc.value)


def test_rgb_image(small_series):
    path = small_series / "slice 102"
    ds = pydicom.dcmread(path)
    grey = (ds.pixel_array // 16).clip(0, 255).astype(np.uint8)
    ds.PixelData = np.repeat(grey[..., None], 3, axis=2).tobytes()
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.save_as(path)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert type(exc.value) is InputError
    assert_one_line(exc, "colour image", "slice 102")


def test_secondary_capture(small_series):
    edit(small_series / "slice 104", SOPClassUID=dicom_uid.SecondaryCaptureImageStorage)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert type(exc.value) is InputError
    assert_one_line(exc, "secondary capture", "slice 104")


def test_truncated_file(small_series):
    path = small_series / "slice 103"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert type(exc.value) is InputError
    assert_one_line(exc, "slice 103", "truncated")


def test_slices_placed_farther_than_any_scan_are_refused(small_series):
    """ImagePositionPatient's x damaged to 1e30 on every slice: the series was segmented, its output
    placed there."""
    for path in small_series.iterdir():
        ds = pydicom.dcmread(path)
        edit(path, ImagePositionPatient=[1e30, *ds.ImagePositionPatient[1:]])
    with pytest.raises(GeometryError) as exc:
        read_input_volume(small_series)
    assert_one_line(exc, "series with spaces", "its origin (1e+30", "farther than any scan lies")


def test_a_character_set_holding_a_null_character_is_named(small_series):
    """pydicom passes the SpecificCharacterSet to Python's codec lookup, which raised "embedded null
    character": the file was told as damaged in those words, which name nothing in it."""
    path = small_series / "slice 103"
    edit(path, SpecificCharacterSet="ISO_IR 100")
    path.write_bytes(path.read_bytes().replace(b"ISO_IR 100", b"ISO_IR\x00100", 1))
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103", "its SpecificCharacterSet holds a null character")


def test_an_element_length_that_fits_no_whole_value_is_named(small_series):
    """Found by `tools/damage_inputs.py --kind ircadb` (seed 41022): a FileMetaInformationGroupLength whose
    length was damaged was told in pydicom's words, which print the raw bytes of the header after it
    ("Expected total bytes to be an even multiple of bytes per value. Instead received b'\\xce\\x00…")."""
    path = small_series / "slice 103"
    data = path.read_bytes()
    assert data.count(b"\x02\x00\x00\x00UL\x04\x00") == 1
    path.write_bytes(data.replace(b"\x02\x00\x00\x00UL\x04\x00", b"\x02\x00\x00\x00UL\xf9\x00"))
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103", "(its FileMetaInformationGroupLength (0002,0000) is 249 bytes long, no whole "
                    "number of its values of 4 bytes (UL): its length is damaged)")
    assert "\\x" not in str(exc.value)


@pytest.mark.parametrize("held", [262144, 0, 262143])
def test_pixel_data_cut_short_is_told_in_bytes(small_series, held):
    """Found by the damage tool: half a slice's pixel data, none, or an odd count of bytes were told in
    numpy's words ("cannot reshape array of size 131072 into shape (512,512)", "buffer size must be a
    multiple of element size")."""
    path = small_series / "slice 103"
    ds = pydicom.dcmread(path)
    ds.PixelData = bytes(ds.PixelData)[:held]
    ds.save_as(path)  # (an odd count is padded to an even one in the file, as pydicom reads it back)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103", f"cannot decode the pixel data (its pixel data holds {held + held % 2} of the "
                    "524288 bytes its 1 frame of 512 x 512 need)")


@pytest.mark.parametrize("element, value, told", [
    ("BitsAllocated", 17, "its BitsAllocated is 17, where an image of grey values allocates 8, 16 or 32 bits"),
    ("PixelRepresentation", 12, "A (0028,0103) 'Pixel Representation' value of '12' is invalid, it must be 0 or 1")])
def test_a_header_fault_is_not_told_as_pixel_data_cut_short(small_series, element, value, told):
    """A damaged PixelRepresentation (damage_inputs --kind dicom, seed 31004) was "cannot decode the
    pixel data (…). The file may be truncated or damaged": its header is, the pixel data whole."""
    edit(small_series / "slice 103", **{element: value})
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 103", told if element == "BitsAllocated" else
                    f"its header's description of its pixel data is damaged ({told}")
    assert "truncated" not in str(exc.value)


def test_decoder_warnings_over_a_series_are_one_warning_naming_a_slice(small_series, capfd, caplog):
    """pydicom's Python warning on pixel data it decodes all the same reached stderr in two lines (its
    source line among them) outside the command line, and was taken for a C decoder's complaint."""
    for path in sorted(small_series.iterdir())[:4]:
        ds = pydicom.dcmread(path)
        ds.PixelData = bytes(ds.PixelData) + b"\0" * 4
        ds.save_as(path)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_ct_folder(small_series)
    assert volume.shape == (6, 512, 512)
    assert capfd.readouterr().err == ""
    told = [record.getMessage() for record in caplog.records if "decoder" in record.getMessage()]
    assert len(told) == 1, told
    assert re.search(r"report damage in 4 slices, e\.g\. slice 10[0-3] \(The pixel data is 524292 bytes long, which "
                     r"indicates it contains 4 bytes of excess padding to be removed\)", told[0])


def _second_series(small_series: Path, folder: Path, **changes) -> Path:
    """A copy of the six slices as another series (new series and instance UIDs), `changes` set."""
    slices = sorted(path for path in small_series.iterdir() if path.is_file())
    folder.mkdir()
    uid = pydicom.uid.generate_uid()
    for path in slices:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, pydicom.uid.generate_uid()
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / path.name)
    return folder


def test_ct_series_of_two_studies_are_not_guessed_between(small_series):
    """A baseline and a follow-up CT on one CD: which to segment is asked for, with both studies'
    dates and series, and --series with a UID picks one."""
    follow_up = _second_series(small_series, small_series / "follow-up", StudyInstanceUID=pydicom.uid.generate_uid(),
                               StudyDate="20240131", SeriesNumber=2, FrameOfReferenceUID=pydicom.uid.generate_uid())
    baseline = pydicom.dcmread(next(small_series.glob("slice *")))
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "holds the CT series of 2 studies", "study of 2024-01-31: series 2", "(6 slices)",
                    f"UID {baseline.SeriesInstanceUID}", "pass --series with the UID")
    chosen = pydicom.dcmread(next(follow_up.iterdir())).SeriesInstanceUID
    assert chosen in read_ct_folder(small_series, series=chosen).source


def test_a_single_image_of_another_study_does_not_make_it_a_candidate(small_series):
    """A scout (or a dose screen) of another study beside the CT: no choice to ask for."""
    scout = _second_series(small_series, small_series / "scout", StudyInstanceUID=pydicom.uid.generate_uid())
    for path in sorted(scout.iterdir())[1:]:
        path.unlink()
    assert read_ct_folder(small_series).shape == (6, 512, 512)


def test_two_studies_in_one_frame_of_reference_are_one_exam(small_series, caplog):
    """Two series an anonymiser gave a study UID each, in one frame of reference (one patient
    position, one session): one exam, chosen between as usual, and the log says so. Any third
    study of its own frame still makes the folder ambiguous."""
    _second_series(small_series, small_series / "split", StudyInstanceUID=pydicom.uid.generate_uid(),
                   SeriesDescription="Portal venous 5.0", SeriesNumber=2)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        assert "Portal venous" in choose_ct_series(scan_folder(small_series)).description
    assert "shares its frame of reference: taken as one exam" in caplog.text
    _second_series(small_series, small_series / "follow-up", StudyInstanceUID=pydicom.uid.generate_uid(),
                   FrameOfReferenceUID=pydicom.uid.generate_uid(), StudyDate="20240131", SeriesNumber=3)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "holds the CT series of 2 studies", "study of 2024-01-31: series 3")


def test_ct_series_of_two_patients_are_refused_naming_them(small_series):
    _second_series(small_series, small_series / "other", PatientID="OTHER-42", StudyInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "holds the CT series of 2 patients", "patient 'OTHER-42'", "patient '1211'")


def test_two_series_of_one_study_are_still_chosen_between(small_series, caplog):
    """Two series of one study alike in every rule: the one numbered last (a later contrast phase is
    numbered after an earlier one; the tie went to the first), with a warning."""
    _second_series(small_series, small_series / "again", SeriesDescription="10_AP_Ax2.50mm again", SeriesNumber=11)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        assert read_ct_folder(small_series).source.count("series 11 '10_AP_Ax2.50mm again'") == 1
    assert "equally good candidates; chose the one numbered last" in caplog.text
    assert re.search(r"numbered after series \d+ '10_AP_Ax2.50mm', UID", caplog.text)


def test_0697_phases_without_their_seg_the_enhanced_phase_is_chosen(data_dir, tmp_path, caplog):
    """RadCTTACEomics_0697's arterial (11_AP) and equilibrium (31_EQP) phases, 44 slices each, its
    SEGs left behind: the later phase, with the liver enhanced (94 HU against 60), is chosen by its
    description (before, the tie went to the arterial phase, the series numbered first). The
    anonymiser gave each phase a study UID of its own, in one frame of reference: one exam (before,
    the folder was refused as two undated studies)."""
    for name in ("11_AP_Ax5.00mm", "31_EQP_Ax5.00mm"):
        shutil.copytree(data_dir / "tace/RadCTTACEomics_0697" / name, tmp_path / name)
    studies = {pydicom.dcmread(next((tmp_path / name).iterdir()), stop_before_pixels=True).StudyInstanceUID
               for name in ("11_AP_Ax5.00mm", "31_EQP_Ax5.00mm")}
    assert len(studies) == 2  # as the shared data has them, unedited
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(tmp_path))
    assert chosen.description == "31_EQP_Ax5.00mm"
    assert "taken as one exam" in caplog.text
    assert "the delayed phase, before the arterial phase" in caplog.text
    assert "equally good" not in caplog.text


def test_0697_phases_without_descriptions_the_later_acquired_is_chosen(data_dir, tmp_path, caplog):
    """RadCTTACEomics_0697's arterial and equilibrium phases with their descriptions removed, as
    de-identification removes them unless told to keep them: the tie went to the arterial phase,
    the series numbered first; the equilibrium phase, acquired 2.5 minutes later, is chosen now."""
    for name in ("11_AP_Ax5.00mm", "31_EQP_Ax5.00mm"):
        shutil.copytree(data_dir / "tace/RadCTTACEomics_0697" / name, tmp_path / name)
        for path in (tmp_path / name).iterdir():
            edit(path, SeriesDescription="")
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(tmp_path))
    assert chosen.number == 4 and chosen.files[0].parent.name == "31_EQP_Ax5.00mm"
    assert "acquired after series 0, UID" in caplog.text and "(14:39:58 against 14:37:20)" in caplog.text
    assert "equally good" not in caplog.text


@pytest.mark.parametrize("times, slices, expected", [
    (("100000", "100035", "100110"), (6, 6, 6), 3),  # before contrast, arterial, portal venous
    (("10:01:10", "10:00:35", "10:00:00"), (6, 6, 6), 1),  # numbered the other way round; older files' colons
    (("100110", "100114"), (6, 4), 1),  # two reconstructions of one scan, 4 s apart: the slice count decides
    (("100000", ""), (6, 6), 2),  # a time not given: the tie goes to the series numbered last
])
def test_of_phases_no_description_names_the_later_scan_is_chosen(small_series, times, slices, expected, caplog):
    as_series(small_series, [""] * len(times))
    for number, (time, count) in enumerate(zip(times, slices), start=1):
        files = sorted(p for p in (small_series / f"series {number}" if number > 1 else small_series).iterdir()
                       if p.is_file())
        for path in files:
            edit(path, AcquisitionTime=time)
        for path in files[count:]:
            path.unlink()
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        assert choose_ct_series(scan_folder(small_series)).number == expected
    assert ("acquired after" in caplog.text) == (len(set(slices)) == 1 and "" not in times)


@pytest.mark.parametrize("header, seconds", [
    ({"AcquisitionTime": "143720.844711"}, 52640.844711), ({"AcquisitionTime": "14:37:20"}, 52640.0),
    ({"AcquisitionTime": "1437"}, 52620.0), ({"AcquisitionDateTime": "20200103143720.5+0100"}, 52640.5),
    ({"AcquisitionTime": ""}, None), ({"AcquisitionTime": "996060"}, None), ({}, None)])
def test_an_acquisition_time_is_read_in_seconds_after_midnight(header, seconds):
    from LiverLesionSegLib.io.dicom_values import acquisition_time_of

    ds = pydicom.Dataset()
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    assert acquisition_time_of(ds) == (pytest.approx(seconds) if seconds is not None else None)


JAPANESE_PHASES = ("腹部単純 5mm", "動脈相 5mm", "門脈相 5mm", "平衡相 5mm")  # a Japanese hospital's protocol


@pytest.mark.parametrize("descriptions, expected, declared", [
    (("NC Abdomen 5.0", "Arterial 5.0", "Portal venous 5.0", "Delayed 5.0"), "Portal venous 5.0", True),
    (("Nativ 5mm", "Abdomen 5mm"), "Abdomen 5mm", True),  # a phase not named beats one before contrast
    (("PVP 3mm", "Spätphase 3mm"), "PVP 3mm", True),
    (JAPANESE_PHASES, "門脈相 5mm", True),
    (JAPANESE_PHASES, "門脈相 5mm", False),  # stored in UTF-8, no character set declared
])
def test_a_study_of_several_phases_chooses_the_portal_venous_one(small_series, descriptions, expected, declared,
                                                                 caplog):
    """A liver CT of several phases at one slice count (the usual protocol): which is chosen no longer
    depends on the series numbers; it is logged, and a series still overrides it. Descriptions stored
    in UTF-8 under no declared character set (DICOM's default, ASCII, which pydicom reads as Latin-1)
    had no phase found in them, and the arterial phase could be chosen."""
    def described(text: str) -> dict:
        stored = text.encode() + b" " * (len(text.encode()) % 2)  # the bytes as written, padded to even length
        return ({"SeriesDescription": text, "SpecificCharacterSet": "ISO_IR 192"} if declared else
                {"SeriesDescription": stored, "SpecificCharacterSet": ""})

    edit_all = [path for path in small_series.iterdir() if path.is_file()]
    for path in edit_all:
        edit(path, SeriesNumber=1, **described(descriptions[0]))
    for number, description in enumerate(descriptions[1:], start=2):
        _second_series(small_series, small_series / f"series {number}", SeriesNumber=number, **described(description))
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(small_series))
    assert chosen.description == expected
    assert "the model is made for a liver enhanced by contrast" in caplog.text
    assert choose_ct_series(scan_folder(small_series), descriptions[0]).description == descriptions[0]


@pytest.mark.parametrize("description, phase", [
    ("11_AP_Ax5.00mm", "arterial"), ("31_EQP_Ax5.00mm", "delayed"), ("PVP 3mm", "portal venous"),
    ("Portalvenös 5.0 B30f", "portal venous"), ("fase venosa", "portal venous"), ("NC Abd 5mm", "before contrast"),
    ("CT ABD W/O", "before contrast"), ("Nativ 5mm", "before contrast"), ("Sin contraste", "before contrast"),
    ("Late arterial 1.0", "arterial"), ("Fase arteriosa", "arterial"), ("Spätphase", "delayed"),
    ("Abdomen 5.0 B30f", None), ("ABD/PEL W CONTRAST", None), ("Liver 3mm", None), ("Capsule", None),
    # Japanese, Chinese and Korean, without spaces between words
    ("腹部単純CT 5mm", "before contrast"), ("動脈相 2.5mm", "arterial"), ("門脈相 5mm", "portal venous"),
    ("平衡相", "delayed"), ("早期相", "arterial"), ("上腹部平扫", "before contrast"), ("动脉期 1.25mm", "arterial"),
    ("门静脉期", "portal venous"), ("延遲期", "delayed"), ("복부 문맥기 5mm", "portal venous"),
    ("동맥기", "arterial"), ("造影CT 腹部", None), ("肝臓 ダイナミック", None),
    # Russian, Greek, Polish, Czech, Turkish
    ("Артериальная фаза 1.5", "arterial"), ("Портальная фаза", "portal venous"), ("Отсроченная фаза", "delayed"),
    ("Нативная фаза", "before contrast"), ("Φλεβική φάση", "portal venous"), ("Faza tętnicza", "arterial"),
    ("Faza żylna", "portal venous"), ("Faza opóźniona", "delayed"), ("Nativní", "before contrast"),
    ("Venózní fáze", "portal venous"), ("Kontrastsız", "before contrast"), ("Geç faz", "delayed"),
])
def test_contrast_phase_read_from_descriptions(description, phase):
    """Whole words only: "ap" in "Capsule" or "art" in "Start" name no phase."""
    assert contrast_phase(description) == phase


def as_series(small_series: Path, descriptions) -> None:
    """The six slices as the first description's series, and copies of them as the others' (numbered 2, 3, ...)."""
    for path in small_series.iterdir():
        if path.is_file():
            edit(path, SeriesNumber=1, SeriesDescription=descriptions[0])
    for number, description in enumerate(descriptions[1:], start=2):
        _second_series(small_series, small_series / f"series {number}", SeriesNumber=number,
                       SeriesDescription=description)


@pytest.mark.parametrize("descriptions, expected, why", [
    (("PV Iodine Density", "PV Z Effective", "PV MonoE 40keV", "PV MonoE 70keV", "PV VNC"), "PV MonoE 70keV",
     "nearest a conventional CT image in energy"),  # Philips spectral, numbered as the scanner sends them
    (("PV GSI MD Iodine(Water)", "Arterial 1.0"), "Arterial 1.0", "is a material map of a dual-energy CT"),
    (("DE_Abd 1.0 Q30f 3 A_80kV", "DE_Abd 1.0 Q30f 3 B_Sn140kV", "DE_Abd 1.0 Q30f 3 F_0.5"),
     "DE_Abd 1.0 Q30f 3 F_0.5", "nearest a conventional CT image in energy"),  # Siemens dual source: mixed
    (("LiverVNC", "Abdomen 5.0"), "Abdomen 5.0", "before contrast"),
])
def test_of_a_dual_energy_ct_the_image_nearest_a_conventional_one_is_chosen(small_series, descriptions, expected,
                                                                              why, caplog):
    """A dual-energy scanner sends one acquisition as several series of one slice count: the tie
    went to the series numbered first, an iodine map or a virtual non-contrast image as often as
    not, whose values are no enhanced CT's."""
    as_series(small_series, descriptions)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(small_series))
    assert chosen.description == expected
    assert why in caplog.text and "equally good" not in caplog.text


def test_a_material_map_chosen_is_warned_of(small_series, caplog):
    as_series(small_series, ("PV MonoE 70keV", "PV Iodine Density"))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        assert choose_ct_series(scan_folder(small_series)).description == "PV MonoE 70keV"
        assert "material map" not in caplog.text
        assert choose_ct_series(scan_folder(small_series), "PV Iodine Density").description == "PV Iodine Density"
    assert re.search(r"series 2 'PV Iodine Density', UID [0-9.]+ is a material map of a dual-energy CT", caplog.text)


MULTI_ENERGY = ["DERIVED", "PRIMARY", "AXIAL"]  # Image Type's first values; value 4 says what the image is


@pytest.mark.parametrize("headers, expected, why", [
    (({"ImageType": MULTI_ENERGY + ["MAT_SPECIFIC"], "RescaleType": "MGML"},
      {"ImageType": MULTI_ENERGY + ["VMI"], "MonoenergeticEnergyEquivalent": 40.0},
      {"ImageType": MULTI_ENERGY + ["VMI"], "MonoenergeticEnergyEquivalent": 70.0},
      {"ImageType": MULTI_ENERGY + ["MAT_REMOVED"]}), 3, "nearest a conventional CT image in energy"),
    (({"ImageType": MULTI_ENERGY + ["EFF_ATOMIC_NUM"]}, {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]}), 2,
     "material map of a dual-energy CT (by Image Type EFF_ATOMIC_NUM)"),
    (({"RescaleType": "Z_EFF"}, {"RescaleType": "HU"}), 2, "(by Rescale Type Z_EFF)"),
    (({"ImageType": MULTI_ENERGY + ["MAT_REMOVED"]}, {"ImageType": MULTI_ENERGY + ["VMI"]}), 2, "before contrast"),
    (({"ImageType": ["DERIVED", "SECONDARY", "AXIAL", "MAXIMUM"]}, {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]}), 2,
     "intensity projections"),
], ids=["spectral", "Z effective", "rescale type", "material removed", "MIP"])
def test_a_de_identified_series_is_told_by_dicoms_own_terms(small_series, headers, expected, why, caplog):
    """De-identification removes series descriptions (unless told to keep them), and left a dual-energy
    CT's images, material maps and MIPs alike: the tie went to the series numbered first. DICOM's
    own terms for them, which it keeps (Image Type, Rescale Type, Monoenergetic Energy Equivalent),
    decide as the descriptions do."""
    as_series(small_series, [""] * len(headers))
    for number, changes in enumerate(headers, start=1):
        for path in (small_series / f"series {number}" if number > 1 else small_series).iterdir():
            if path.is_file():
                edit(path, **changes)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(small_series))
    assert chosen.number == expected
    assert why in caplog.text and "equally good" not in caplog.text


def test_an_enhanced_ct_is_told_a_material_map_by_its_shared_functional_groups(data_dir, tmp_path, caplog):
    """A multi-frame (enhanced) CT keeps its Rescale Type and energy in the functional groups its frames share."""
    from pydicom.dataset import Dataset

    from bad_inputs import ct_slices, multiframe_file

    maps = {}
    for name, group, keyword, value in (("iodine", "PixelValueTransformationSequence", "RescaleType", "MGML"),
                                        ("70 keV", "MultienergyCTCharacteristicsSequence",
                                         "MonoenergeticEnergyEquivalent", 70.0),
                                        ("40 keV", "MultienergyCTCharacteristicsSequence",
                                         "MonoenergeticEnergyEquivalent", 40.0)):
        path = multiframe_file(ct_slices(data_dir), tmp_path / "study" / f"{name}.dcm")
        ds = pydicom.dcmread(path)
        ds.SeriesDescription = ""
        shared = ds.SharedFunctionalGroupsSequence[0]
        if group not in shared:
            setattr(shared, group, [Dataset()])
        setattr(getattr(shared, group)[0], keyword, value)
        ds.save_as(path)
        maps[name] = ds.SeriesInstanceUID
    scan = scan_folder(tmp_path / "study")
    assert {s.uid: (s.rescale_type, s.kev) for s in scan.series}[maps["iodine"]][0] == "MGML"
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        assert choose_ct_series(scan).uid == maps["70 keV"]
        assert choose_ct_series(scan, maps["iodine"]).uid == maps["iodine"]
    assert "material map of a dual-energy CT (iodine, Z effective or electron density, by Rescale Type MGML)" \
        in caplog.text


@pytest.mark.parametrize("sharp", [{"SeriesDescription": "Abdomen 1.0", "ConvolutionKernel": ["Br64d", "3"]},
                                   {"SeriesDescription": "Lung 1.0"},
                                   {"SeriesDescription": "Abdomen 1.25", "ConvolutionKernel": "BONEPLUS"},
                                   {"SeriesDescription": "Ax MIP 3mm"}],
                         ids=["Siemens kernel", "description", "GE kernel", "projection"])
def test_a_soft_tissue_reconstruction_is_chosen_over_a_sharp_one_of_more_slices(small_series, sharp, caplog):
    """A study's thin lung or bone reconstruction, of more slices, went before its soft-tissue one."""
    for path in small_series.iterdir():
        edit(path, SeriesNumber=1, SeriesDescription="Abdomen 5.0", ConvolutionKernel="Br40d")
    for path in sorted(small_series.iterdir())[4:]:
        path.unlink()
    _second_series(small_series, small_series / "sharp", SeriesNumber=2, **sharp)
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = choose_ct_series(scan_folder(small_series))
    assert chosen.description == "Abdomen 5.0" and chosen.images == 4
    assert re.search(r"a (soft-tissue|plain) reconstruction, where series 2", caplog.text)


@pytest.mark.parametrize("description, kernel, sharp", [
    ("Abdomen 5.0 B30f", "B30f", False), ("Abd", "Br40d\\3", False), ("Abd", "Br64d\\3", True), ("Abd", "I70f", True),
    ("Abd", "Qr40", False), ("Abd", "STANDARD", False), ("Abd", "SOFT", False), ("Abd", "BONE PLUS", True),
    ("Abd", "LUNG", True), ("Abd", "FC08", False), ("Abd", "FC52", True), ("Abd", "B", False),
    ("Thorax 5.0", "B31f", False), ("Knochen 2.0", "", True), ("Lungenfenster", "", True), ("PV 5mm", "", False),
])
def test_a_sharp_reconstruction_is_told_by_its_description_or_kernel(description, kernel, sharp):
    from LiverLesionSegLib.io.reconstruction import is_sharp

    assert is_sharp(description, kernel) == sharp


@pytest.mark.parametrize("description, projection", [
    ("MIP 10mm", True), ("Ax MinIP 5", True), ("Maximum Intensity Projection", True), ("VRT", True),
    ("Abdomen 5.0", False), ("Mipmap", False), ("Oblique", False)])
def test_a_projection_is_told_by_its_description(description, projection):
    from LiverLesionSegLib.io.reconstruction import is_projection

    assert is_projection(description) == projection


@pytest.mark.parametrize("description, material_map, virtual_non_contrast, offset", [
    ("MonoE 70keV", False, False, 0.0), ("Mono+ 40 keV", False, False, 30.0), ("B_Sn140kV", False, False, 20.0),
    ("A_80kV", False, False, 40.0), ("Abdomen 120kVp", False, False, 0.0), ("Abd 1.0 F_0.5", False, False, None),
    ("Iodine Density", True, False, None), ("Water(Iodine)", True, False, None), ("Jodkarte", True, False, None),
    ("Z Effective", True, False, None), ("Effective-Z", True, False, None), ("Electron Density", True, False, None),
    ("VNC", False, True, None), ("DE_LiverVNC", False, True, None), ("Virtual Non-Contrast", False, True, None),
    ("Portal venous 5.0 B30f", False, False, None), ("Start", False, False, None), ("Rhombus", False, False, None),
])
def test_what_a_description_says_of_a_dual_energy_image(description, material_map, virtual_non_contrast, offset):
    from LiverLesionSegLib.io.reconstruction import energy_offset, is_virtual_non_contrast, material_map_evidence

    assert (material_map_evidence(description) is not None) == material_map
    assert is_virtual_non_contrast(description) == virtual_non_contrast
    assert energy_offset(description) == offset


def test_the_phase_comes_before_the_slice_count_but_not_before_an_axial_volume(small_series):
    """A portal venous phase of 4 slices beats an arterial one of 6; a coronal reformat named
    portal venous does not beat the axial series."""
    for path in small_series.iterdir():
        edit(path, SeriesDescription="Arterial 1mm")
    short = _second_series(small_series, small_series / "pv", SeriesDescription="PV 5mm", SeriesNumber=3)
    for path in sorted(short.iterdir())[4:]:
        path.unlink()
    assert choose_ct_series(scan_folder(small_series)).description == "PV 5mm"
    for path in short.iterdir():
        edit(path, ImageOrientationPatient=[1, 0, 0, 0, 0, -1])  # coronal
    assert choose_ct_series(scan_folder(small_series)).description == "Arterial 1mm"


def test_empty_files_named_as_slices_are_taken_for_failed_copies(small_series):
    """An empty file named as the slices are ("IM0007", "1.2.3.7", "x.dcm") is a slice whose copy
    failed; an empty hidden file or one of another kind's suffix is not, and leaves the series alone."""
    for name in (".DS_Store", "notes.txt", "IM0007", "1.2.3.7", "x.dcm"):
        (small_series / name).write_bytes(b"")
    scan = scan_folder(small_series)
    assert [path.name for path in scan.damaged] == ["1.2.3.7", "IM0007", "x.dcm"] and len(scan.skipped) == 5
    assert read_ct_folder(small_series).shape == (6, 512, 512)  # complete: the empty files change nothing
    (small_series / "slice 102").write_bytes(b"")
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 101", "slice 103", "damaged, truncated or empty", "perhaps the missing slice")
    for path in small_series.iterdir():
        path.write_bytes(b"")
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "no readable DICOM files: 9 of its 11 files", "xport the series again")


def _transcoded(source: Path, target: Path, syntax) -> None:
    """`source` written again by GDCM, its pixel data compressed as `syntax` (gdcm.TransferSyntax)."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    assert reader.Read(), source
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    change.SetInput(reader.GetImage())
    assert change.Change(), syntax
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(target))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write(), target


@pytest.mark.parametrize("syntax, name", [
    ("JPEGLosslessProcess14_1", "JPEG Lossless, Non-Hierarchical, First-Order Prediction"),
    ("JPEG2000Lossless", "JPEG 2000 Image Compression (Lossless Only)"),
    ("JPEGLSLossless", "JPEG-LS Lossless Image Compression"),
    ("RLELossless", "RLE Lossless")])
def test_compressed_series_reads_as_the_uncompressed_one(small_series, tmp_path, syntax, name):
    """What archives and scanners send: the same slices compressed losslessly (by GDCM) read to the
    same CT values on the same grid."""
    import gdcm

    folder = tmp_path / syntax
    folder.mkdir()
    for path in small_series.iterdir():
        _transcoded(path, folder / path.name, getattr(gdcm.TransferSyntax, syntax))
    written = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert written.is_compressed and written.name.startswith(name)
    original, compressed = read_ct_folder(small_series), read_ct_folder(folder)
    assert compressed.same_grid(original) and np.allclose(compressed.direction, original.direction)
    assert np.array_equal(compressed.array, original.array) and compressed.array.std() > 100


def test_a_damaged_compressed_slice_is_told_in_the_decoders_words_not_a_plugins_internal_error(small_series,
                                                                                                tmp_path):
    """Found by damaging JPEG-LS slices (the bundled sample's syntax): gdcm's plugin failed in Python's
    words ("'NoneType' object has no attribute 'encode'"), beside pyjpegls' "Invalid JPEG-LS stream"."""
    import gdcm

    folder = tmp_path / "jpegls"
    folder.mkdir()
    for path in small_series.iterdir():
        _transcoded(path, folder / path.name, gdcm.TransferSyntax.JPEGLSLossless)
    damaged = folder / "slice 101"
    data = bytearray(damaged.read_bytes())
    data[-3000:-2000] = bytes(1000)  # within the compressed stream
    damaged.write_bytes(bytes(data))
    with pytest.raises(InputError) as exc:
        read_ct_folder(folder)
    assert_one_line(exc, "slice 101", "cannot decode the pixel data (")
    assert "object has no attribute" not in str(exc.value)


def test_a_jpeg_lossless_slice_cut_within_its_frame_is_told_without_the_plugins_internal_error(small_series,
                                                                                               tmp_path):
    """Found by `tools/damage_inputs.py --kind dicom` (seeds 26008, 26020): GDCM, the one decoder of JPEG
    lossless here, failed on a frame cut in half in Python's words alone ("gdcm: 'NoneType' object has
    no attribute 'encode'")."""
    import gdcm

    folder = tmp_path / "jpeg-lossless"
    folder.mkdir()
    for path in small_series.iterdir():
        _transcoded(path, folder / path.name, gdcm.TransferSyntax.JPEGLosslessProcess14_1)
    ds = pydicom.dcmread(folder / "slice 101")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:len(frame) // 2]])
    ds.save_as(folder / "slice 101", enforce_file_format=False)
    assert refusal_in_a_process_of_its_own(folder) == (
        f"{folder / 'slice 101'}: cannot decode the pixel data (gdcm: its compressed data cannot be decoded). The file "
        "may be truncated or damaged; export the series again.")


@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEGLosslessProcess14_1", "JPEG2000Lossless"])
@pytest.mark.parametrize("rows, columns", [(512, 1024), (256, 256)])
def test_a_compressed_slice_whose_header_gives_another_size_is_refused_before_decoding(small_series, tmp_path,
                                                                                        syntax, rows, columns):
    """Found by `tools/damage_inputs.py --kind dicom`, seed 23052 (JPEG-LS slices given 65535 columns): the
    first decoder failed and GDCM, the next, ended the whole program (SIGABRT, no message); a JPEG-LS
    header of fewer pixels was decoded as other pixels without a word; JPEG lossless and JPEG 2000 were
    told in Python's words ("'NoneType' object has no attribute 'encode'", "could not broadcast …")."""
    import gdcm

    folder = tmp_path / syntax
    folder.mkdir()
    for path in small_series.iterdir():
        _transcoded(path, folder / path.name, getattr(gdcm.TransferSyntax, syntax))
    read_ct_folder(folder)  # whole, it reads
    ds = pydicom.dcmread(folder / "slice 101")
    ds.Rows, ds.Columns = rows, columns
    ds.save_as(folder / "slice 101", enforce_file_format=False)
    assert refusal_in_a_process_of_its_own(folder) == (
        f"{folder / 'slice 101'}: its header gives its image {rows} x {columns} pixels (Rows x Columns), but its "
        f"compressed image holds 512 x 512: the header is damaged. Export the series again.")


def test_a_slice_whose_file_meta_lost_its_transfer_syntax_is_told_so(small_series):
    """Found by `tools/damage_inputs.py --kind ircadb`, seed 13039: header bytes damaged in the file meta
    group left no TransferSyntaxUID, told in pydicom's words ("'transfer_syntax_uid' is required if the
    dataset in 'src' is not in the DICOM File Format")."""
    damaged = small_series / "slice 102"
    data = damaged.read_bytes()
    assert data.count(b"\x02\x00\x10\x00UI") == 1
    damaged.write_bytes(data.replace(b"\x02\x00\x10\x00UI", b"\x02\x00\x11\x00UI"))  # (0002,0011): no such element
    assert "TransferSyntaxUID" not in pydicom.dcmread(damaged).file_meta
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "slice 102: its file meta information gives no TransferSyntaxUID (the group is missing or "
                         "damaged), so how its pixel data is stored cannot be told")


def test_compressed_without_decoder(small_series):
    """The pixel data is declared (and encapsulated) as a syntax no installed plugin decodes."""
    candidates = [dicom_uid.JPEGLosslessSV1, dicom_uid.JPEGLossless, dicom_uid.HTJ2KLossless,
                  dicom_uid.JPEG2000Lossless, dicom_uid.JPEGLSLossless]
    missing = [u for u in candidates if not get_decoder(u).is_available]
    if not missing:
        pytest.skip("every candidate compressed transfer syntax has a decoder here")
    path = small_series / "slice 101"
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([ds.PixelData])
    ds.file_meta.TransferSyntaxUID = missing[0]
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert type(exc.value) is InputError
    assert_one_line(exc, "slice 101", missing[0].name, "pylibjpeg", "gdcm")


def two_acquisitions(small_series: Path) -> Path:
    """The six slices as acquisition 1 and, with other pixels, as acquisition 2 of the same series
    (two phases stored under one series UID, as some scanners do)."""
    for path in sorted(small_series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.AcquisitionNumber = 1
        ds.save_as(path)
        ds.AcquisitionNumber = 2
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.PixelData = (ds.pixel_array // 2).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(small_series / f"{path.name} phase 2")
    return small_series


def test_two_acquisitions_in_one_series_are_told_apart_and_the_later_chosen(small_series, tmp_path, caplog):
    first = read_ct_folder(small_series)
    folder = two_acquisitions(small_series)
    (tmp_path / "phase 2").mkdir()
    for path in folder.glob("* phase 2"):
        shutil.copy(path, tmp_path / "phase 2" / path.name)
    second = read_ct_folder(tmp_path / "phase 2")
    assert len({s.uid for s in find_series(folder)}) == 1
    assert [s.acquisition for s in find_series(folder)] == [1, 2]
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        chosen = read_ct_folder(folder)
    assert "acquisition 2" in chosen.source and "the later acquisition of its series" in caplog.text
    np.testing.assert_array_equal(chosen.array, second.array)
    assert not np.array_equal(second.array, first.array)
    number = find_series(folder)[0].number
    np.testing.assert_array_equal(read_ct_folder(folder, f"{number}:1").array, first.array)
    with pytest.raises(InputError) as exc:
        read_ct_folder(folder, str(number))
    assert_one_line(exc, "holds 2 acquisitions over the same positions", f"{number}:2")


def test_acquisition_numbers_of_slices_at_other_positions_keep_one_series(small_series):
    """Scanners that number each rotation's slices as an acquisition cover no position twice: one volume."""
    for n, path in enumerate(sorted(small_series.iterdir())):
        edit(path, AcquisitionNumber=n + 1)
    (series,) = find_series(small_series)
    assert series.acquisition is None and len(series.files) == 6
    assert read_ct_folder(small_series).shape[0] == 6


def test_a_patient_cd_with_a_dicomdir_reads_as_its_series(small_series, tmp_path):
    """A CD or USB export as PACS burn it (pydicom's File-set writer): a DICOMDIR at the top, the
    files renamed to IM000000... without suffix in PT/ST/SE folders. The folder reads as the series."""
    from pydicom.fileset import FileSet

    files = FileSet()
    for path in sorted(small_series.iterdir()):
        ds = pydicom.dcmread(path)
        # a DICOMDIR's study record needs these, which the anonymised slices left empty
        ds.StudyDate, ds.StudyTime = ds.get("StudyDate") or "20200101", ds.get("StudyTime") or "120000"
        ds.StudyID = ds.get("StudyID") or "1"
        files.add(ds)
    files.write(tmp_path / "cd")
    assert (tmp_path / "cd" / "DICOMDIR").is_file() and not list((tmp_path / "cd").rglob("*.dcm"))
    from_cd, original = read_ct_folder(tmp_path / "cd"), read_ct_folder(small_series)
    assert from_cd.same_grid(original)
    np.testing.assert_array_equal(from_cd.array, original.array)
    # the DICOMDIR itself given: its disc read
    np.testing.assert_array_equal(read_input_volume(tmp_path / "cd" / "DICOMDIR").array, original.array)
    # the DICOMDIR copied alone: said so
    (tmp_path / "index only").mkdir()
    shutil.copy(tmp_path / "cd" / "DICOMDIR", tmp_path / "index only" / "DICOMDIR")
    with pytest.raises(InputError, match="holds a DICOMDIR but none of the images it lists"):
        read_input_volume(tmp_path / "index only")


def bare_copy(series: Path, folder: Path, implicit: bool) -> Path:
    """The series' files written as bare datasets: no 128-byte preamble, no "DICM", no file meta
    information (as older systems and toolkits write them)."""
    folder.mkdir()
    for path in sorted(series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.preamble = None
        del ds.file_meta
        ds.save_as(folder / path.name, enforce_file_format=False, implicit_vr=implicit, little_endian=True)
    return folder


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit VR", "explicit VR"])
def test_files_without_preamble_or_meta_read_as_the_series(small_series, tmp_path, implicit):
    bare = bare_copy(small_series, tmp_path / "bare", implicit)
    first = sorted(bare.iterdir())[0].read_bytes()
    assert first[128:132] != b"DICM" and first[:2] == b"\x08\x00"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(sorted(bare.iterdir())[0])  # pydicom alone refuses them
    original, volume = read_ct_folder(small_series), read_ct_folder(bare)
    assert volume.same_grid(original)
    np.testing.assert_array_equal(volume.array, original.array)


def test_a_gap_filled_by_a_bare_slice_of_another_series_uid_names_it(small_series, tmp_path):
    """The slice filed apart is found as the series reader reads it, without preamble too."""
    edit(small_series / "slice 103", SeriesInstanceUID="1.2.3")
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(bare_copy(small_series, tmp_path / "bare", implicit=True))
    assert_one_line(exc, "slice positions jump", "slice 103", "UID 1.2.3", "another SeriesInstanceUID")


def test_a_dicom_seg_lies_on_a_series_without_preamble(small_series, tmp_path):
    """The outputs that lie on the input series (a DICOM SEG here) work over bare files too."""
    from case_checks import assert_dicom_seg_reads_back
    from LiverLesionSegLib.io.cases import find_input_ct

    found = find_input_ct(bare_copy(small_series, tmp_path / "bare", implicit=True))
    assert_dicom_seg_reads_back(found, found.read(), tmp_path / "seg.dcm")


def test_an_end_slice_of_a_damaged_orientation_is_left_out_as_damaged(small_series, caplog):
    """Found by `tools/damage_inputs.py --kind dicom`, seed 37015: an end slice whose row direction was made
    (1e-30, 0, 0) was left out "of another orientation than the 5 kept (axial)", a reformat's words."""
    end = small_series / "slice 100"  # (the six are consecutive slices)
    edit(end, ImageOrientationPatient=[1e-30, 0.0, 0.0, 0.0, 1.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_ct_folder(small_series)
    assert volume.shape[0] == 5
    assert (f"left out 1 image(s) whose ImageOrientationPatient is missing or not two unit vectors at right angles "
            f"(a damaged header), e.g. {end}") in caplog.text
    assert "another orientation" not in caplog.text


@pytest.mark.parametrize("bits, told", [
    (24, "its BitsAllocated is 24, where an image of grey values allocates 8, 16 or 32 bits a pixel: the header is "
         "damaged"),
    (64, "its BitsAllocated is 64, where")])
def test_a_ct_slice_allocating_bits_no_image_of_grey_values_does_is_refused_as_a_damaged_header(small_series, bits,
                                                                                               told):
    """24 was told in NumPy's words ("The data type 'i3' needed to contain the pixel data is not supported
    by NumPy"), 64 as pixel data cut short (a multi-frame image's, damage tool seed 41002, in highdicom's)."""
    for path in small_series.iterdir():
        edit(path, BitsAllocated=bits)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert told in str(exc.value) and "/slice 10" in str(exc.value)


def test_a_ct_slice_stored_in_fewer_than_eight_bits_is_refused_as_a_damaged_header(small_series):
    """Found by `tools/damage_inputs.py --kind dicom`, seed 39024: a BitsStored of 1, which pydicom applies to
    plain pixel data, read every voxel as -1024 or -1023 ("its values span only -1.02e+03 to -1.02e+03"); a
    JPEG-LS slice's decoder ignored it (seed 37030)."""
    for path in small_series.iterdir():
        edit(path, BitsStored=1)
    with pytest.raises(InputError) as exc:
        read_ct_folder(small_series)
    assert_one_line(exc, "its BitsStored is 1, where a CT stores 8 to 16 bits a pixel: the header is damaged")
