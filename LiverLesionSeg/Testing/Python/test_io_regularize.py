"""A gantry tilt and a slice spacing that changes, on real CT slices: resampled onto a regular grid
when read, and a DICOM SEG made on that grid lies back on the original slices."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from LiverLesionSegLib.errors import GeometryError, InputError
from LiverLesionSegLib.io.series_choice import read_ct_folder

SERIES_1211 = "tace/RadCTTACEomics_1211/10_AP_Ax2.50mm"  # 2.5 mm apart; dicom-00100 is the highest z


def copy_slices(data_dir: Path, folder: Path, numbers) -> Path:
    folder.mkdir()
    for n in numbers:
        shutil.copy(data_dir / SERIES_1211 / f"dicom-{n:05d}.dcm", folder / f"slice {n}")
    return folder


def shift_in_plane(folder: Path, shift_mm) -> None:
    """Move each slice in-plane by `shift_mm(z)` (x, y) in mm, z being its position."""
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        dx, dy = shift_mm(z)
        ds.ImagePositionPatient = [round(x + dx, 4), round(y + dy, 4), z]
        ds.save_as(path)


@pytest.fixture
def straight(data_dir, tmp_path):
    """Six slices as they are, and their volume."""
    folder = copy_slices(data_dir, tmp_path / "straight", range(100, 106))
    return folder, read_ct_folder(folder)


def tilted_copy(straight, tmp_path, pixels_per_slice: float) -> Path:
    """The six slices, each shifted along y in proportion to its distance from the lowest one."""
    folder, volume = straight
    tilted = tmp_path / "tilted"
    shutil.copytree(folder, tilted)
    z0, step, dy = volume.origin[2], volume.spacing[2], volume.spacing[1]
    shift_in_plane(tilted, lambda z: (0.0, (z - z0) / step * pixels_per_slice * dy))
    return tilted


def test_gantry_tilt_is_resampled_onto_a_regular_grid(straight, tmp_path, caplog):
    """One pixel of shift a slice: the k-th slice lies k rows down the grid, its pixels unchanged,
    and the rows the slice does not reach are the series' lowest value."""
    _, volume = straight
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        tilted = read_ct_folder(tilted_copy(straight, tmp_path, 1.0))
    count, rows, columns = volume.shape
    assert tilted.shape == (count, rows + count - 1, columns)
    assert tilted.spacing == pytest.approx(volume.spacing)
    assert tilted.origin == pytest.approx(volume.origin, abs=1e-3)
    np.testing.assert_allclose(tilted.direction, volume.direction, atol=1e-6)
    assert tilted.array.dtype == volume.array.dtype
    for k in range(count):
        np.testing.assert_array_equal(tilted.array[k, k:k + rows], volume.array[k])
        outside = np.concatenate([tilted.array[k, :k], tilted.array[k, k + rows:]])
        assert np.all(outside == volume.array.min())
    degrees = np.degrees(np.arctan2(volume.spacing[1], volume.spacing[2]))
    assert f"a gantry tilt of {degrees:.1f} degrees" in caplog.text
    assert "tilted" in caplog.text and f"{count} slices 2.50 mm apart" in caplog.text


def test_a_real_tilt_angle_round_trips_through_the_original_slices(straight, tmp_path):
    """15 degrees (0.67 mm of shift a slice, a fraction of a pixel): what the regular grid holds,
    put back on each original slice, is that slice (a tissue mask of it agrees voxel for voxel
    almost everywhere; bilinear interpolation blurs only the edges)."""
    from LiverLesionSegLib.io.dicom import slice_stack
    from LiverLesionSegLib.io.dicom_scan import find_series
    from LiverLesionSegLib.io.regularize import sample_slices

    _, volume = straight
    pixels = np.tan(np.radians(15)) * volume.spacing[2] / volume.spacing[1]
    folder = tilted_copy(straight, tmp_path, pixels)
    tilted = read_ct_folder(folder)
    series = find_series(folder)[0]
    stack = slice_stack([pydicom.dcmread(p, stop_before_pixels=True) for p in series.files], series.files, folder)
    assert stack.irregularity() == "a gantry tilt of 15.0 degrees"
    soft_tissue = tilted.with_array((tilted.array > 0).astype(np.uint8))
    back = sample_slices(soft_tissue, stack)
    agreement = np.mean(back == (volume.array > 0))
    assert agreement > 0.99, agreement


def test_a_tilt_stored_in_the_orientation_is_resampled_on_its_tilted_planes(straight, tmp_path):
    """The other way scanners store a gantry tilt: each slice's orientation tilted 15 degrees, its
    position stepping straight along the table (z). The grid keeps the tilted planes, its slices
    2.5 * cos(15) mm apart along their normal, and holds each slice's own pixels again."""
    from LiverLesionSegLib.io.cases import find_input_ct
    from LiverLesionSegLib.io.regularize import sample_slices

    folder, volume = straight
    tilt = np.radians(15)
    column = [0.0, float(np.cos(tilt)), float(np.sin(tilt))]
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, *column]
        ds.save_as(path)
    found = find_input_ct(folder)
    grid = found.read()
    assert found.series and grid.acquired.irregularity() == "a gantry tilt of 15.0 degrees"
    np.testing.assert_allclose(grid.direction[:, 1], column, atol=1e-6)
    assert grid.spacing[2] == pytest.approx(volume.spacing[2] * np.cos(tilt), abs=1e-3)
    assert grid.shape[0] == volume.shape[0]
    back = sample_slices(grid.with_array((grid.array > 0).astype(np.uint8)), grid.acquired)
    assert np.mean(back == (volume.array > 0)) > 0.99


@pytest.mark.parametrize("degrees, refused", [(30, False), (50, True), (89.9, True)])
def test_slices_shifted_beyond_any_gantry_tilt_are_refused(straight, tmp_path, degrees, refused):
    """A gantry tilts at most 30 degrees; a NIfTI whose sform shifted each slice 1000 mm (89.9) was read
    as a tilted series onto a grid 13 000 pixels wide and segmented."""
    _, volume = straight
    pixels = np.tan(np.radians(degrees)) * volume.spacing[2] / volume.spacing[1]
    folder = tilted_copy(straight, tmp_path, pixels)
    if not refused:
        assert read_ct_folder(folder).acquired.irregularity() == f"a gantry tilt of {degrees:.1f} degrees"
        return
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(folder)
    assert f"as a gantry tilted {degrees:.1f} degrees would shift them" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_sheared_nifti_beyond_any_gantry_tilt_is_refused(straight, tmp_path):
    from LiverLesionSegLib.io.images import read_image

    _, volume = straight
    with pytest.raises(GeometryError) as exc:
        read_image(sheared_nifti(volume, 1000.0 / volume.spacing[1], tmp_path / "sheared.nii.gz"))
    assert "sheared.nii.gz" in str(exc.value) and "far more than a CT gantry tilts" in str(exc.value)


def test_a_section_at_another_spacing_is_resampled_at_the_finest(data_dir, tmp_path, caplog):
    """Slices 100..105 2.5 mm apart, then 107, 109, 111 5 mm apart: a grid 2.5 mm apart whose
    slices at the kept positions are the originals and between them the mean of their neighbours."""
    full = read_ct_folder(copy_slices(data_dir, tmp_path / "full", range(100, 112)))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        mixed = read_ct_folder(copy_slices(data_dir, tmp_path / "mixed", [*range(100, 106), 107, 109, 111]))
    assert mixed.same_grid(full)
    assert "slice spacing varying from 2.50 to 5.00 mm" in caplog.text
    # k runs up z: k = 0 is slice 111, k = 11 slice 100
    for k in (0, 2, 4, *range(6, 12)):
        np.testing.assert_array_equal(mixed.array[k], full.array[k])
    for k in (1, 3, 5):
        mean = (full.array[k - 1].astype(np.float32) + full.array[k + 1]) / 2
        np.testing.assert_array_equal(mixed.array[k], np.rint(mean).astype(np.int16))


@pytest.mark.parametrize("numbers, what", [
    ([*range(100, 106), 107, 109], "two steps of 5 mm among 2.5 mm ones: slices missing"),
    ([100, 101, 102, 105, 106, 107], "one step of 7.5 mm: two slices missing"),
])
def test_a_few_uneven_steps_are_slices_missing_and_refused(data_dir, tmp_path, numbers, what):
    folder = copy_slices(data_dir, tmp_path / "gap", numbers)
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(folder)
    assert "slice positions jump" in str(exc.value) and "gap" in str(exc.value), what


def test_slices_shifted_unevenly_are_refused(straight, tmp_path):
    """One slice moved 2 mm, the others not: no tilt does that (several acquisitions mixed)."""
    folder, volume = straight
    z_moved = volume.origin[2] + 2 * volume.spacing[2]
    shift_in_plane(folder, lambda z: (0.0, 2.0 if abs(z - z_moved) < 0.1 else 0.0))
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(folder)
    text = str(exc.value)
    assert "not stacked along their normal" in text and "not those of a gantry tilt" in text and "\n" not in text


def test_dicom_seg_of_a_tilted_series_lies_on_its_own_slices(straight, tmp_path):
    """A label map made on the regular grid, written as a DICOM SEG of the tilted series: each
    frame references a CT slice and holds the grid's voxels under that slice's pixels."""
    import highdicom as hd

    from LiverLesionSegLib.io.cases import find_input_ct
    from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg

    _, volume = straight
    found = find_input_ct(tilted_copy(straight, tmp_path, 1.0))
    grid = found.read()
    labels = np.zeros(grid.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    save_dicom_seg(tmp_path / "tilted.dcm", grid.with_array(labels), found.series, ["m"])
    seg = hd.seg.segread(tmp_path / "tilted.dcm")
    rows = volume.shape[1]
    for k, uid in enumerate(found.series.sop_instance_uids):
        position_z = float(pydicom.dcmread(found.series.files[k], stop_before_pixels=True).ImagePositionPatient[2])
        k_grid = int(round((position_z - grid.origin[2]) / grid.spacing[2]))
        expected = labels[k_grid, k_grid:k_grid + rows]  # slice k_grid lies k_grid rows down the grid
        frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid], segment_numbers=[1, 2],
                                                   assert_missing_frames_are_empty=True)[0]
        np.testing.assert_array_equal(frames[..., 0], expected == 1)
        np.testing.assert_array_equal(frames[..., 1], expected == 2)
    # read back onto the regular grid (as evaluate reads a prediction): the same label map
    from LiverLesionSegLib.io.dicomseg import read_seg_masks

    masks = read_seg_masks(tmp_path / "tilted.dcm", grid)
    np.testing.assert_array_equal(masks["liver"], labels == 1)
    np.testing.assert_array_equal(masks["lesion"], labels == 2)


def test_a_mask_on_other_slices_than_the_acquired_ones_is_refused(straight, tmp_path):
    from LiverLesionSegLib.io.cases import find_input_ct

    grid = find_input_ct(tilted_copy(straight, tmp_path, 1.0)).read()
    positions = grid.acquired.positions + [0.0, 0.0, 1.0]  # 1 mm off every slice
    with pytest.raises(GeometryError) as exc:
        grid.acquired.slice_indices(positions, "a SEG frame", "seg.dcm")
    assert "does not lie on a slice of the CT series" in str(exc.value) and "seg.dcm" in str(exc.value)


def test_a_tilted_multiframe_file_reads_as_its_slices_do(data_dir, tmp_path):
    """The tilted slices as one Legacy Converted Enhanced CT file: highdicom finds no regular volume
    in it, its frames are placed by their plane positions and resampled, giving the slices' volume;
    its DICOM SEG output reads back onto that grid."""
    import bad_inputs
    from case_checks import assert_dicom_seg_reads_back

    from LiverLesionSegLib.io.cases import find_input_ct

    bad_inputs.copy_slices(data_dir, tmp_path / "straight")  # HCC_006's, which highdicom converts
    straight = (tmp_path / "straight", read_ct_folder(tmp_path / "straight"))
    slices = tilted_copy(straight, tmp_path, 1.0)
    path = bad_inputs.multiframe_file(sorted(slices.iterdir())[::-1], tmp_path / "enhanced" / "tilted.dcm")
    from_slices = read_ct_folder(slices)
    found = find_input_ct(path)
    from_file = found.read()
    assert from_file.same_grid(from_slices)
    np.testing.assert_array_equal(from_file.array, from_slices.array)
    assert_dicom_seg_reads_back(found, from_file, tmp_path / "seg.dcm")


def sheared_nifti(volume, pixels_per_slice: float, path):
    """`volume`'s voxels in a NIfTI whose affine shifts slice k by k * `pixels_per_slice` rows:
    the file a converter without tilt correction makes of the tilted series."""
    import nibabel as nib

    from LiverLesionSegLib.volume import LPS_TO_RAS

    ijk_to_lps = volume.ijk_to_lps()
    ijk_to_lps[:3, 2] += pixels_per_slice * volume.spacing[1] * volume.direction[:, 1]
    nib.save(nib.Nifti1Image(volume.array.transpose(2, 1, 0), LPS_TO_RAS @ ijk_to_lps), str(path))
    return path


def test_a_sheared_nifti_reads_as_the_tilted_series_does(straight, tmp_path):
    """ITK refuses a NIfTI with a sheared affine; read through nibabel and resampled, it gives the
    volume the tilted DICOM series gives, voxel for voxel on the same grid."""
    import SimpleITK as sitk

    _, volume = straight
    path = sheared_nifti(volume, 1.0, tmp_path / "sheared.nii.gz")
    with pytest.raises(RuntimeError, match="orthonormal"):
        sitk.ReadImage(str(path))
    from_dicom = read_ct_folder(tilted_copy(straight, tmp_path, 1.0))
    from LiverLesionSegLib.io.images import read_image

    from_nifti = read_image(path)
    assert from_nifti.same_grid(from_dicom, tolerance_mm=1e-3)
    np.testing.assert_array_equal(from_nifti.array, from_dicom.array)


def sheared_image(volume, pixels_per_slice: float, path):
    """As `sheared_nifti`, written by SimpleITK (a NRRD or MetaImage keeps the sheared axes, which ITK
    reads as given)."""
    import SimpleITK as sitk

    k_axis = volume.spacing[2] * volume.direction[:, 2] + pixels_per_slice * volume.spacing[1] * volume.direction[:, 1]
    spacing = (*volume.spacing[:2], float(np.linalg.norm(k_axis)))
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(np.column_stack([volume.direction[:, :2], k_axis / spacing[2]]).ravel()))
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_a_sheared_nrrd_or_metaimage_reads_as_the_tilted_series_does(straight, tmp_path, suffix):
    """ITK reads these with their axes as given and the slice spacing as the tilted axis's length, so
    that every volume was measured 1/cos(tilt) too large (here 1/cos(16 degrees), 4 %)."""
    from LiverLesionSegLib.io.images import read_image

    _, volume = straight
    path = sheared_image(volume, 1.0, tmp_path / f"sheared{suffix}")
    from_dicom = read_ct_folder(tilted_copy(straight, tmp_path, 1.0))
    from_file = read_image(path)
    assert from_file.same_grid(from_dicom, tolerance_mm=1e-3)
    np.testing.assert_array_equal(from_file.array, from_dicom.array)


def test_a_sheared_nrrd_label_map_is_refused_in_one_line_for_an_image_not_sheared(straight, tmp_path):
    from LiverLesionSegLib.io.images import read_label_map

    _, volume = straight
    path = sheared_image(volume.with_array(np.zeros(volume.shape, np.uint8)), 1.0, tmp_path / "labels.nrrd")
    with pytest.raises(GeometryError, match=r"labels\.nrrd: the label map's voxel axes are sheared [^\n]*$"):
        read_label_map(path, volume)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_a_label_map_on_the_sheared_grid_of_its_ct_is_resampled_as_the_ct(straight, tmp_path, suffix):
    """A tilted scan's case folder written without tilt correction, its CT and its label map on one
    sheared grid: the label map was refused. Its labels are resampled as the CT's slices are; with a
    shift of one whole pixel a slice, voxel for voxel where the CT's values say (1 over 100 HU, 2 over
    300 HU, within it)."""
    from LiverLesionSegLib.io.images import read_image, read_label_map

    _, volume = straight
    labels = (volume.array > 100).astype(np.uint8) + (volume.array > 300)
    assert 0 < np.count_nonzero(labels == 2) < np.count_nonzero(labels == 1)
    write = sheared_nifti if suffix == ".nii.gz" else sheared_image
    ct = read_image(write(volume, 1.0, tmp_path / f"ct{suffix}"))
    liver, lesion = read_label_map(write(volume.with_array(labels), 1.0, tmp_path / f"labels{suffix}"), ct)
    np.testing.assert_array_equal(liver.array, ct.array > 100)
    np.testing.assert_array_equal(lesion.array, ct.array > 300)
    odd = labels.astype(np.int16)
    odd[0, :4, :4] = -1  # a label of no meaning, refused as on a regular grid
    with pytest.raises(InputError, match=r"holds label\(s\) -1 besides 0 background"):
        read_label_map(write(volume.with_array(odd), 1.0, tmp_path / f"odd{suffix}"), ct)


def test_what_itk_printed_on_a_sheared_nifti_it_gave_up_is_left_out(straight, tmp_path, capfd):
    """Found by `damage_inputs.py --kind nifti`: a sheared NIfTI whose pixdim is not its sform's scales
    made ITK print "WARNING: In …/itkNiftiImageIO.cxx, line 2008" and "NiftiImageIO (0x…): … has
    unexpected scales in sform" on its way to giving up; read through nibabel, the two lines reached the
    terminal all the same, beside the command's error line where the image was then refused."""
    import nibabel as nib

    from LiverLesionSegLib.io.images import read_image

    _, volume = straight
    path = sheared_nifti(volume, 1.0, tmp_path / "sheared.nii.gz")
    image = nib.load(str(path))
    image.header["pixdim"][3] *= 0.8  # (nibabel keeps the sform as it is)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, image.header), str(path))
    capfd.readouterr()
    assert read_image(path).shape[0] == volume.shape[0]
    assert capfd.readouterr().err == ""


def test_what_itk_prints_on_a_file_it_reads_is_one_warning_naming_it(caplog):
    from LiverLesionSegLib.io.images import _tell_reader_notes

    path = Path("/data/ct.nii.gz")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        _tell_reader_notes(path, ["WARNING: In /tmp/SimpleITK-build/ITK/Modules/IO/NIFTI/src/itkNiftiImageIO.cxx, "
                                  "line 2008",
                                  "NiftiImageIO (0x5562c254b560): /data/ct.nii.gz has unexpected scales in sform"])
    assert caplog.messages == ["/data/ct.nii.gz: the image reader reports: it has unexpected scales in sform; read as "
                               "it reads it"]


def test_a_sheared_nifti_with_a_bit_flipped_past_decompression_is_refused(straight, tmp_path):
    """nibabel, which reads a sheared NIfTI, does not read the gzip stream's CRC either."""
    from bad_inputs import a_bit_flipped_where, fails_only_its_crc
    from LiverLesionSegLib.errors import InputError
    from LiverLesionSegLib.io.images import read_image

    _, volume = straight
    path = sheared_nifti(volume, 1.0, tmp_path / "sheared.nii.gz")
    a_bit_flipped_where(path, fails_only_its_crc)
    with pytest.raises(InputError, match=r"sheared\.nii\.gz: its compressed voxel data does not match its own "
                                         r"checksum"):
        read_image(path)


def test_a_sheared_nifti_whose_stream_fails_its_crc_where_nibabel_reads_it_is_refused(tmp_path):
    """Found by `tools/damage_inputs.py --kind nifti`, seed 42018 (its affine made sheared, a bit of its
    stream flipped): where nibabel's read of a sheared NIfTI reaches the stream's end, gzip checks the
    CRC itself, and its BadGzipFile ended in an internal error. The seed's damage, done again."""
    import random
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
    import damage_inputs
    from LiverLesionSegLib.errors import InputError
    from LiverLesionSegLib.io.images import read_image

    path = tmp_path / "ct.nii.gz"
    assert damage_inputs.damaged_nifti(path, random.Random(42018)).startswith("nifti: srow_x[0]=1e-30; ct.nii.gz: "
                                                                             "a bit flipped")
    with pytest.raises(InputError, match=r"ct\.nii\.gz: its compressed voxel data does not match its own checksum"):
        read_image(path)


def test_a_sheared_label_map_is_refused_in_one_line(straight, tmp_path):
    from LiverLesionSegLib.io.images import read_label_map

    _, volume = straight
    path = sheared_nifti(volume.with_array(np.zeros(volume.shape, np.uint8)), 1.0, tmp_path / "labels.nii.gz")
    with pytest.raises(GeometryError) as exc:
        read_label_map(path, volume)
    text = str(exc.value)
    assert "labels.nii.gz" in text and "sheared" in text and "\n" not in text


def test_a_changing_spacing_beside_a_damaged_file_is_refused_not_resampled(data_dir, tmp_path):
    """The slices missing from the 5 mm section may be the folder's damaged files: told, not filled in."""
    folder = copy_slices(data_dir, tmp_path / "mixed", [*range(100, 106), 107, 109, 111])
    damaged = folder / "slice 108"
    damaged.write_bytes((data_dir / SERIES_1211 / "dicom-00108.dcm").read_bytes()[:300])
    with pytest.raises(GeometryError) as exc:
        read_ct_folder(folder)
    text = str(exc.value)
    assert "slice spacing varies" in text and "slice 108" in text and "damaged" in text and "\n" not in text


def test_slice_positions_jittered_by_a_hundredth_of_a_millimetre_keep_their_extent(data_dir, tmp_path):
    """Twelve slices 2.5 mm apart whose positions are off by +-0.01 mm (rounding in an export): the
    steps vary from 2.48 to 2.52 mm, so they are resampled; the grid runs from the first slice to
    the last at 2.5 mm (before: at the finest step, 2.48 mm, ending 0.2 mm short of the last slice
    here, 1.2 mm on a series of 62), each slice within a hundredth of a step of its own."""
    folder = copy_slices(data_dir, tmp_path / "jittered", range(100, 112))
    straight = read_ct_folder(folder)
    for n, path in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + (0.01 if n % 2 else -0.01) * (n not in (0, 11))]
        ds.save_as(path)
    jittered = read_ct_folder(folder)
    assert jittered.shape == straight.shape
    assert jittered.spacing[2] == pytest.approx(2.5, abs=1e-6)
    last = np.array(jittered.origin) + (jittered.shape[0] - 1) * jittered.spacing[2] * jittered.direction[:, 2]
    np.testing.assert_allclose(last, np.array(straight.origin) + 11 * 2.5 * straight.direction[:, 2], atol=1e-6)
    difference = np.abs(jittered.array.astype(float) - straight.array).max()
    assert difference <= 0.01 * np.ptp(straight.array)
