"""NIfTI and NRRD images and label maps written from the real cases, and bad files."""

from __future__ import annotations

import gzip
import io
import logging
import re

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.errors import GeometryError, InputError, OutputError
from LiverLesionSegLib.io.dicomseg import read_seg_case
from LiverLesionSegLib.io.images import image_stem, read_image, read_label_map
from LiverLesionSegLib.io.ircadb import read_ircadb_case
from LiverLesionSegLib.io.write import write_segmentation_output
from LiverLesionSegLib.volume import Volume

import bad_inputs


@pytest.fixture(scope="session")
def case_0697(data_dir):
    return read_seg_case(data_dir / "tace/RadCTTACEomics_0697")


@pytest.fixture(scope="session")
def case_1_17(data_dir):
    return read_ircadb_case(data_dir / "ircadb/3Dircadb1.17")


@pytest.fixture(scope="session")
def small(case_0697) -> Volume:
    """Eight slices of 0697's CT, for the bad-file tests."""
    ct = case_0697.ct
    return Volume(ct.array[10:18].copy(), ct.spacing, ct.physical_points([0, 0, 10])[0], ct.direction, "small")


def assert_same_volume(read: Volume, written: Volume, tolerance: float = 1e-4) -> None:
    np.testing.assert_array_equal(read.array, written.array)
    assert read.array.dtype == written.array.dtype
    np.testing.assert_allclose(read.spacing, written.spacing, atol=tolerance)
    np.testing.assert_allclose(read.origin, written.origin, atol=tolerance)
    np.testing.assert_allclose(read.direction, written.direction, atol=1e-6)


def write_sitk(volume: Volume, path, array=None) -> None:
    image = volume.to_sitk() if array is None else volume.with_array(array).to_sitk()
    sitk.WriteImage(image, str(path), useCompression=str(path).endswith(".gz"))


def write_nibabel(volume: Volume, path, array=None) -> None:
    """NIfTI in nibabel's own terms: voxel order [i, j, k] and a RAS affine."""
    data = (volume.array if array is None else array).transpose(2, 1, 0)
    nib.save(nib.Nifti1Image(data, volume.ijk_to_ras()), str(path))


# --- real cases written and read back ----------------------------------------------------------

@pytest.mark.parametrize("case_name,suffix", [("case_0697", ".nii.gz"), ("case_0697", ".nii"),
                                              ("case_0697", ".nrrd"), ("case_1_17", ".nrrd"),
                                              ("case_0697", ".mha"), ("case_1_17", ".mhd")])
def test_pair_written_with_simpleitk_reads_back_identical(request, tmp_path, case_name, suffix):
    case = request.getfixturevalue(case_name)
    write_sitk(case.ct, tmp_path / f"image{suffix}")
    write_sitk(case.ct, tmp_path / f"labels{suffix}", case.label_map())
    ct = read_image(tmp_path / f"image{suffix}")
    assert_same_volume(ct, case.ct)
    assert ct.origin == pytest.approx(case.ct.origin, abs=1e-4)
    liver, lesion = read_label_map(tmp_path / f"labels{suffix}", ct)
    np.testing.assert_array_equal(lesion.array, case.lesion.array)
    # A label map cannot hold lesion outside the liver: its liver is labels 1 and 2.
    np.testing.assert_array_equal(liver.array, case.liver.array | case.lesion.array)
    assert liver.array.dtype == lesion.array.dtype == np.uint8
    assert liver.same_grid(ct) and lesion.same_grid(ct)


def test_nibabel_ras_file_reads_back_in_lps(case_0697, tmp_path):
    write_nibabel(case_0697.ct, tmp_path / "ras.nii.gz")
    ct = read_image(tmp_path / "ras.nii.gz")
    assert_same_volume(ct, case_0697.ct)
    assert ct.origin == pytest.approx((-207.609, -220.886, -308.187), abs=1e-3)


def test_nibabel_oblique_file_reads_back_in_lps(small, tmp_path):
    """A rotated, permuted grid: only a correct RAS -> LPS conversion gives the same geometry back."""
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    direction = rotation @ np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)
    volume = Volume(small.array, (0.8, 0.9, 5.0), (10.0, -20.0, 30.0), direction)
    write_nibabel(volume, tmp_path / "oblique.nii")
    assert_same_volume(read_image(tmp_path / "oblique.nii"), volume, tolerance=1e-3)


@pytest.mark.parametrize("role", ["CT", "label map"])
def test_a_vector_image_is_refused_in_either_role(small, tmp_path, role):
    """A NIfTI of 4 components per voxel (a datatype code damaged to RGBA: `--kind nifti` and `--kind
    labels`, seed 25004) is no CT and no label map; the hint no longer asks for a CT where a label map
    was given."""
    path = tmp_path / "vector.nii.gz"
    image = sitk.Compose([small.to_sitk()] * 4)
    sitk.WriteImage(image, str(path))
    with pytest.raises(InputError) as exc:
        if role == "CT":
            read_image(path)
        else:
            read_label_map(path, small)
    assert str(exc.value) == (f"{path}: a vector or colour image (4 components per voxel). Give an image of one value "
                              "per voxel: a grey-scale CT, or a label map.")


def test_a_nifti_affine_on_which_itk_never_returns_is_refused_before_itk_reads_it(small, tmp_path):
    """Found by `tools/damage_inputs.py --kind train` (seed 28063): an sform of a 0 and a NaN (srow_x[0] 0,
    srow_z[2] NaN) made ITK's NIfTI reader run for ever in ReadImageInformation, in `segment` as in
    `train`, before any check of the affine ran. Read in a process of its own, so that a hang fails the
    test and not the run."""
    header = nib.Nifti1Image(small.array.transpose(2, 1, 0), small.ijk_to_ras()).header.copy()
    header["vox_offset"] = 352
    header["srow_x"][0], header["srow_z"][2] = 0, float("nan")
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + bytes(4) + small.array.transpose(2, 1, 0).tobytes(order="F")))
    assert bad_inputs.refusal_in_a_process_of_its_own(path, timeout=60) == (
        f"{path}: its affine (the header's sform or qform) holds values that are not numbers. Write it again "
        "from the tool that made it.")


def test_a_nifti_whose_pixdim_and_affine_disagree_is_refused(small, tmp_path):
    """pixdim rewritten (1 mm slices) but not the sform (5 mm): ITK, and so Slicer, read pixdim, with a
    warning no one saw, and nibabel the sform; the lesions' volumes depended on the reader. The same
    file with a pixdim that agrees reads."""
    image = nib.Nifti1Image(small.array.transpose(2, 1, 0), small.ijk_to_ras())
    image.to_filename(tmp_path / "agreeing.nii.gz")
    assert read_image(tmp_path / "agreeing.nii.gz").spacing == pytest.approx(small.spacing)
    image.header.set_zooms((*small.spacing[:2], 1.0))
    image.to_filename(tmp_path / "two spacings.nii.gz")
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "two spacings.nii.gz")
    assert_one_line(exc, "two spacings.nii.gz", "two voxel spacings", "x 1 mm (pixdim", "x 5 mm (its sform")


@pytest.mark.parametrize("unit, scale", [("meter", 1e-3), ("micron", 1e3)])
def test_a_nifti_in_metres_or_microns_reads_in_millimetres(small, tmp_path, unit, scale):
    """NIfTI may give its lengths in metres or microns (xyzt_units): ITK reads them in millimetres, but
    the check of two voxel spacings compared its spacing with nibabel's affine in the file's own unit,
    and refused the file ("0.7813 x 0.7813 x 2.5 mm (pixdim ...) and 0.0007813 x 0.0007813 x 0.0025 mm
    (its sform ...)"). A sheared one is read in millimetres too."""
    affine = small.ijk_to_ras().copy()
    affine[:3] *= scale
    image = nib.Nifti1Image(small.array.transpose(2, 1, 0), affine)
    image.header.set_xyzt_units(xyz=unit)
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    assert_same_volume(read_image(tmp_path / "ct.nii.gz"), small)
    affine[:3, 2] += affine[:3, 1] * 0.2  # slices shifted along j as a gantry tilt shifts them
    image = nib.Nifti1Image(small.array.transpose(2, 1, 0), affine)
    image.header.set_xyzt_units(xyz=unit)
    nib.save(image, str(tmp_path / "tilted.nii.gz"))
    tilted = read_image(tmp_path / "tilted.nii.gz", resample_shear=False)
    np.testing.assert_allclose(tilted.ijk_to_ras(), np.vstack([affine[:3] / scale, affine[3:]]), atol=1e-3)


@pytest.mark.parametrize("unit, told", [
    ("meter", "in metres (xyzt_units), which makes its voxels 804.7 x 804.7 x 5000 mm"),
    ("micron", "in microns (xyzt_units), which makes its voxels 0.0008047 x 0.0008047 x 0.005 mm")])
def test_a_nifti_whose_unit_is_not_its_numbers_is_refused(small, tmp_path, unit, told):
    """Found by `tools/damage_inputs.py --kind train`, seed 17027: millimetres under a unit of metres were
    told as an origin 225 m from the scanner's centre, under microns as two voxel spacings."""
    image = nib.Nifti1Image(small.array.transpose(2, 1, 0), small.ijk_to_ras())
    image.header.set_xyzt_units(xyz=unit)
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "ct.nii.gz")
    assert_one_line(exc, "ct.nii.gz: its header gives its lengths " + told, "Write it again with its unit set to "
                                                                             "millimetres")


def nifti_with_header(volume: Volume, path, edit) -> None:
    bad_inputs.nifti_with_header(path, volume.array, edit, volume.ijk_to_ras())


@pytest.mark.parametrize("edit, what", [
    (lambda h: h["dim"].__setitem__(1, 2), "2 x 512 x 8 of int16"),  # 2 pixels wide: a strip of the data
    (lambda h: h.set_data_dtype(np.uint8), "512 x 512 x 8 of uint8"),  # half the bytes a voxel: noise
    (lambda h: h["dim"].__setitem__(2, 1), "512 x 1 x 8 of int16"),  # was "a 2-D image" (train, seed 34000)
], ids=["size", "data type", "a side of 1"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_nifti_holding_far_more_voxels_than_its_header_announces_is_refused(small, tmp_path, edit, what, suffix):
    """A damaged size or data type reads as a fragment of the data, and the fragment was segmented."""
    nifti_with_header(small, tmp_path / f"as stored{suffix}", lambda h: None)
    assert_same_volume(read_image(tmp_path / f"as stored{suffix}"), small)
    nifti_with_header(small, tmp_path / f"damaged{suffix}", edit)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / f"damaged{suffix}")
    assert_one_line(exc, f"damaged{suffix}", "times the", f"bytes of voxels its header announces ({what})")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("side", [0, -1])
def test_a_nifti_whose_header_gives_an_axis_no_voxels_is_told_so(small, tmp_path, suffix, side):
    """damage_inputs --kind nifti, seed 31006: a dim[2] of 0, which ITK reads as 1, was refused as "a
    2-D image (size 512 x 1 x 8), not a volume. Give a 3-D volume of several slices"; one of -1 (seed
    35002) in ITK's words, "ITK ERROR: NiftiImageIO(0x55929ce8ef40): … is not recognized as a NIFTI file"."""
    nifti_with_header(small, tmp_path / f"ct{suffix}", lambda h: h["dim"].__setitem__(2, side))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / f"ct{suffix}")
    assert_one_line(exc, f"ct{suffix}: its header gives it no voxels along an axis (dim: 512 x {side} x 8): the "
                         "header is damaged. Export it again.")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_nifti_whose_voxels_fit_another_data_type_is_told_so(small, tmp_path, suffix):
    """damage_inputs --kind labels, seed 32002: a label map whose datatype uint8 was made uint16 was
    "the file is truncated: it holds 2097504 of the 4194656 bytes …", the file whole."""
    nifti_with_header(small, tmp_path / f"ct{suffix}", lambda h: h.set_data_dtype(np.int32))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / f"ct{suffix}")
    voxels = small.array.size
    assert_one_line(exc, f"ct{suffix}: it holds {voxels * 2} bytes of voxels, 0.5 times the {voxels * 4} its header "
                         "announces (512 x 512 x 8 of int32), exactly its voxels at 2 bytes each: the header's size or "
                         "data type is wrong. Export it again.")


def test_a_whole_compressed_nifti_short_of_its_voxels_blames_its_header(small, tmp_path):
    """A .nii.gz whose gzip stream is whole (its check passed) was not cut after it was written: a
    header announcing more slices than it holds is the header's fault, not truncation."""
    nifti_with_header(small, tmp_path / "ct.nii.gz", lambda h: h["dim"].__setitem__(3, 11))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.nii.gz")
    assert_one_line(exc, f"ct.nii.gz: its whole compressed stream holds {small.array.nbytes} of the "
                         f"{small.array.nbytes * 11 // 8} bytes of voxels its header announces (512 x 512 x 11 of "
                         "int16): the header's size or data type is wrong")


def test_a_nifti_compressed_in_several_gzip_members_reads(small, tmp_path):
    """bgzip and some pipelines write a gzip file of several members: its last 4 bytes give the last
    member's length only, so its length is counted, not taken from them."""
    import gzip

    write_sitk(small, tmp_path / "whole.nii")
    data = (tmp_path / "whole.nii").read_bytes()
    (tmp_path / "members.nii.gz").write_bytes(b"".join(gzip.compress(data[n:n + 65536])
                                                       for n in range(0, len(data), 65536)))
    assert_same_volume(read_image(tmp_path / "members.nii.gz"), small)


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("field, value, what", [("sizes", "2 512 8", "2 x 512 x 8 of int16"),
                                                ("type", "uchar", "512 x 512 x 8 of uint8")], ids=["size", "data type"])
def test_a_nrrd_holding_far_more_voxels_than_its_header_announces_is_refused(small, tmp_path, compressed, field, value,
                                                                            what):
    """ITK reads as many voxels as the header announces, and a damaged one gave a fragment."""
    name = "damaged.nrrd"
    sitk.WriteImage(small.to_sitk(), str(tmp_path / name), useCompression=compressed)
    assert_same_volume(read_image(tmp_path / name), small)
    data = (tmp_path / name).read_bytes()
    assert (b"encoding: gzip" in data) == compressed
    header_end = data.index(b"\n\n")
    header = re.sub(rf"^{field}: .*$".encode(), f"{field}: {value}".encode(), data[:header_end], flags=re.M)
    (tmp_path / name).write_bytes(header + data[header_end:])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / name)
    assert_one_line(exc, name, "times the", f"bytes of voxels its header announces ({what})")


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_an_image_whose_voxels_fit_another_data_type_is_told_so(small, tmp_path, compressed, suffix):
    """damage_inputs --kind nrrd, seed 33003: int16 voxels whose header says double were "cannot read the
    image data (its voxel data holds 4194304 of the 16777216 bytes …). The file may be truncated"."""
    path = tmp_path / f"ct{suffix}"
    if suffix == ".mha":
        write_metaimage(small, path, "ElementType", "MET_DOUBLE", compressed)
    else:
        sitk.WriteImage(small.to_sitk(), str(path), useCompression=compressed)
        data = path.read_bytes()
        header_end = data.index(b"\n\n")
        path.write_bytes(re.sub(rb"^type: .*$", b"type: double", data[:header_end], flags=re.M) + data[header_end:])
    with pytest.raises(InputError) as exc:
        read_image(path)
    held = small.array.nbytes
    assert_one_line(exc, f"ct{suffix}: it holds {held} bytes of voxels, 0.25 times the {held * 4} its header "
                         "announces (512 x 512 x 8 of float64), exactly its voxels at 2 bytes each: the header's size "
                         "or data type is wrong. Export it again.")


def test_a_nrrd_whose_compressed_voxels_are_said_raw_is_told_so(small, tmp_path):
    """damage_inputs --kind nrrd, seed 35007: gzip-compressed voxels under `encoding: raw` were "cannot
    read the image data (its voxel data holds 1506904 of the 4194304 bytes …). The file may be truncated"."""
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(small.to_sitk(), str(path), useCompression=True)
    path.write_bytes(path.read_bytes().replace(b"encoding: gzip", b"encoding: raw", 1))
    with pytest.raises(InputError) as exc:
        read_image(path)
    assert_one_line(exc, "ct.nrrd: cannot read the image header (its voxel data is gzip-compressed, where its encoding "
                         "line says raw). The file may be damaged")


def test_a_nrrd_without_voxel_spacing_is_warned_of(small, tmp_path, caplog):
    """Found removing each header line in turn: a NRRD without its space directions (or spacings) was
    read with voxels of 1 x 1 x 1 mm without a word, where a MetaImage without ElementSpacing is warned of."""
    sitk.WriteImage(small.to_sitk(), str(tmp_path / "whole.nrrd"))
    data = (tmp_path / "whole.nrrd").read_bytes()
    (tmp_path / "bare.nrrd").write_bytes(re.sub(rb"^space directions: .*\n", b"", data, count=1, flags=re.M))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_image(tmp_path / "whole.nrrd")
        assert "WARNING" not in caplog.text
        assert read_image(tmp_path / "bare.nrrd").spacing == (1.0, 1.0, 1.0)
    assert (f"{tmp_path / 'bare.nrrd'}: its header gives no voxel spacing (no space directions or spacings line): "
            "it is read as NRRD reads such a file, with voxels of 1 x 1 x 1 mm") in caplog.text


@pytest.mark.parametrize("suffix, line", [(".mha", "Offset"), (".nrrd", "space origin")])
def test_an_image_without_its_position_is_warned_of(small, tmp_path, caplog, suffix, line):
    """Found removing each header line in turn: a MetaImage without its Offset, or a NRRD without its
    space origin, was read at 0, 0, 0 without a word, where a NIfTI without sform and qform is warned of."""
    path = tmp_path / f"ct{suffix}"
    if suffix == ".mha":
        write_metaimage(small, path, "Offset", None)
    else:
        sitk.WriteImage(small.to_sitk(), str(path))
        path.write_bytes(re.sub(rb"^space origin: .*\n", b"", path.read_bytes(), count=1, flags=re.M))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        assert read_image(path).origin == (0.0, 0.0, 0.0)
    assert (f"{path}: its header gives no position (no {line} line): it is read at 0, 0, 0, as its format says; "
            "the segmentation lies on its grid, but the positions in the lesion table are not the patient's") \
        in caplog.text


def test_a_nrrd_of_a_zero_voxel_side_is_told_in_words(small, tmp_path):
    """ITK's words were "Refusing to change spacing from [1, 1, 1] to [0, 0.78125, 2.5]". ITK meets it
    as it reads the voxels: it was told as the data's ("cannot read the image data … The file may be
    truncated …"; damage_inputs --kind nrrd, seed 31007), a fault of the header."""
    sitk.WriteImage(small.to_sitk(), str(tmp_path / "flat.nrrd"))
    data = (tmp_path / "flat.nrrd").read_bytes()
    header_end = data.index(b"\n\n")
    header = re.sub(rb"^space directions: \(([^)]*)\)", b"space directions: (0,0,0)", data[:header_end], flags=re.M)
    (tmp_path / "flat.nrrd").write_bytes(header + data[header_end:])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "flat.nrrd")
    assert_one_line(exc, "flat.nrrd: cannot read the image header (its voxel spacing is 0, ",
                    ": a spacing of 0, or one that is not a number, is no image's). The file may be damaged or not an "
                    "image; export it again.")


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
def test_a_nrrd_cut_short_says_how_many_bytes_it_holds(small, tmp_path, compressed):
    """The NRRD library's words were "[nrrd] _nrrdEncodingRaw_read: fread got only 753452 2-sized
    things, not 2097152 (35.9274% of expected)" (found by `tools/damage_inputs.py --kind nrrd`)."""
    sitk.WriteImage(small.to_sitk(), str(tmp_path / "cut.nrrd"), useCompression=compressed)
    data = (tmp_path / "cut.nrrd").read_bytes()
    header_end = data.index(b"\n\n") + 2
    # the raw data cut by a quarter; the gzip stream given a 2-slice size, as if the file were cut after it
    kept = data[:header_end + (len(data) - header_end) * 3 // 4] if not compressed else (
        data[:header_end] + gzip.compress(small.array[:2].tobytes()))
    (tmp_path / "cut.nrrd").write_bytes(kept)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "cut.nrrd")
    held = (len(kept) - header_end) if not compressed else small.array[:2].nbytes
    assert_one_line(exc, "cut.nrrd", f"cannot read the image data (its voxel data holds {held} of the "
                                     f"{small.array.nbytes} bytes its header announces)")


@pytest.mark.parametrize("line, told", [
    ("sizes: 512 512", "(its sizes line does not give one size for each of its dimensions (parsed 2 values, but "
                       "dimension is 3))"),
    ("kinds: RGB-color domain domain", "(its kinds line does not fit its sizes (axis 0 kind RGB-color requires size "
                                       "3, but have 512))"),
    ("dimeMsion: 3", "(its header holds a field 'dimeMsion' that NRRD does not know)"),
    ("space: left-posterior-superior", "(its header gives its space field twice)")])
def test_a_nrrd_header_line_that_is_wrong_is_told_without_the_librarys_function(small, tmp_path, line, told):
    """The NRRD library's words began with its function's name: "[nrrd] _nrrdFieldCheck_kinds: axis 0
    kind RGB-color requires size 3, but have 512" (found by `tools/damage_inputs.py --kind nrrd`)."""
    sitk.WriteImage(small.to_sitk(), str(tmp_path / "lines.nrrd"))
    data = (tmp_path / "lines.nrrd").read_bytes()
    field = line.split(":")[0] if not line.startswith("dimeMsion") else "dimension"
    header_end = data.index(b"\n\n")
    header = re.sub(rf"^{field}: .*$".encode(), line.encode(), data[:header_end], flags=re.M)
    if line.startswith("space:"):  # a field given twice
        header += b"\n" + line.encode()
    (tmp_path / "lines.nrrd").write_bytes(header + data[header_end:])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "lines.nrrd")
    assert_one_line(exc, "lines.nrrd", f"cannot read the image header {told}")
    assert "[nrrd]" not in str(exc.value)


@pytest.mark.parametrize("field, value, told", [
    ("space directions", "(nan,0,0) (0,0.78,0) (0,0,2.5)", "(its space directions or space origin mixes numbers with "
                                                           "NaN in one vector"),
    ("space origin", "(1,2)", "(its space directions or space origin is not a list of vectors of as many numbers as "
                              "its space has dimensions (parsed 2 values, but space dimension is 3))")])
def test_a_nrrd_vector_that_is_not_one_is_told_in_words(small, tmp_path, field, value, told):
    """Found by `tools/damage_inputs.py --kind nrrd`: the NRRD library's words were "[nrrd]
    _nrrdSpaceVectorParse: existance of all space vector coefficients must be consistent (val[0] not
    like val[1])"."""
    sitk.WriteImage(small.to_sitk(), str(tmp_path / "vector.nrrd"))
    data = (tmp_path / "vector.nrrd").read_bytes()
    header_end = data.index(b"\n\n")
    header = re.sub(rf"^{field}: .*$".encode(), f"{field}: {value}".encode(), data[:header_end], flags=re.M)
    (tmp_path / "vector.nrrd").write_bytes(header + data[header_end:])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "vector.nrrd")
    assert_one_line(exc, "vector.nrrd", f"cannot read the image header {told}")


def test_a_nifti_holding_whole_slices_more_than_announced_is_read_without_them_and_warned_of(small, tmp_path, caplog):
    """A header announcing 5 of its 8 slices: the 5 are whole slices of the CT, read, with a warning."""
    nifti_with_header(small, tmp_path / "five.nii", lambda h: h["dim"].__setitem__(3, 5))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_image(tmp_path / "five.nii")
    np.testing.assert_array_equal(volume.array, small.array[:5])
    assert "five.nii: it holds 1572864 bytes of voxels more than its header announces (512 x 512 x 5 of int16), " \
           "as many as 3 slice(s): they are not read" in caplog.text


@pytest.mark.parametrize("code", [0, -1])
def test_a_nifti_of_no_position_is_warned_of(small, tmp_path, caplog, code):
    """Found by `tools/damage_inputs.py --kind nifti`: a sform_code of 0 (or one no reader knows, -1)
    beside a qform_code of 0 read the CT at 0, 0, 0 in voxel order, its lesion table's positions
    another than the patient's, with nothing said."""
    def no_position(header):
        header["sform_code"], header["qform_code"] = code, 0

    nifti_with_header(small, tmp_path / "placed.nii", lambda h: None)
    nifti_with_header(small, tmp_path / "unplaced.nii", no_position)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_image(tmp_path / "placed.nii")
        assert "no position" not in caplog.text
        volume = read_image(tmp_path / "unplaced.nii")
    np.testing.assert_array_equal(volume.array, small.array)
    assert "unplaced.nii: its header gives no position or orientation (sform_code and qform_code 0)" in caplog.text


def test_a_nifti_of_an_unknown_sform_code_is_told_in_the_commands_words(small, tmp_path, capsys):
    """nibabel printed its own line ("sform_code -1 not valid; setting to 0") on the command's stderr,
    through the handler it gives its logger (here pointed at a buffer to be read)."""
    from LiverLesionSegLib.cli import main

    def unknown_code(header):
        header["sform_code"], header["qform_code"] = -1, 0

    nifti_with_header(small, tmp_path / "unknown.nii", unknown_code)
    nibabel_handler = logging.getLogger("nibabel.global").handlers[0]
    printed = io.StringIO()
    before = nibabel_handler.setStream(printed)
    try:
        assert main(["segment", str(tmp_path / "unknown.nii"), "-o", str(tmp_path / "out.nii.gz"),
                     "--progress", "none"]) == 0
    finally:
        nibabel_handler.setStream(before)
    assert "its header gives no position or orientation" in capsys.readouterr().err
    assert "not valid" not in printed.getvalue()


@pytest.mark.parametrize("row", ["srow_x", "srow_z"])
def test_a_nifti_whose_affine_is_not_numbers_is_refused(small, tmp_path, row):
    """A NaN in the sform was told as slices 'shifted nan mm in-plane ... not a gantry tilt'."""
    nifti_with_header(small, tmp_path / "nan.nii", lambda h: h[row].__setitem__(1, np.nan))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "nan.nii")
    assert_one_line(exc, "nan.nii", "affine", "not numbers")


def test_a_label_map_whose_affine_is_not_numbers_is_told_so_not_as_sheared(small, tmp_path):
    """ITK takes a NaN sform for a sheared one; a label map so damaged was told it was 'sheared (the
    grid of a gantry-tilted scan)'."""
    labels = small.with_array((small.array > 0).astype(np.uint8))
    nifti_with_header(labels, tmp_path / "nan labels.nii", lambda h: h["srow_y"].__setitem__(1, np.nan))
    with pytest.raises(GeometryError) as exc:
        read_label_map(tmp_path / "nan labels.nii", small)
    assert_one_line(exc, "nan labels.nii", "affine", "not numbers")


@pytest.mark.parametrize("row, column", [("srow_z", 2), ("srow_x", 0)])
def test_a_nifti_whose_affine_gives_an_axis_no_length_is_refused(small, tmp_path, row, column):
    """A zero in the sform's slice column was told as 'two slices at the same position ... remove the
    duplicate files'."""
    nifti_with_header(small, tmp_path / "flat.nii", lambda h: h[row].__setitem__(column, 0.0))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "flat.nii")
    assert_one_line(exc, "flat.nii", "affine", "no length, or lays the voxel axes in one plane")


def test_float_image_is_float32(small, tmp_path):
    write_sitk(small, tmp_path / "float.nrrd", small.array.astype(np.float64) / 3)
    assert read_image(tmp_path / "float.nrrd").array.dtype == np.float32


# --- bad files ---------------------------------------------------------------------------------

def assert_one_line(exc, *parts):
    text = str(exc.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "absent.nii.gz")
    assert_one_line(exc, "absent.nii.gz", "does not exist")


def test_not_an_image_suffix(tmp_path):
    (tmp_path / "scan.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "scan.png")
    assert_one_line(exc, "scan.png", "not a NIfTI, NRRD or MetaImage file")


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.nrrd"])
def test_nan_values(small, tmp_path, name):
    array = small.array.astype(np.float32)
    array[3, 100, 100] = np.nan
    array[4, 10, 10] = np.inf
    write_sitk(small, tmp_path / name, array)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / name)
    assert type(exc.value) is InputError
    assert_one_line(exc, name, "2 voxels are NaN or infinite")


@pytest.mark.parametrize("layout", ["big-endian", "after a header extension", "float64"])
def test_nan_values_of_a_compressed_nifti_are_found_whatever_its_layout(small, tmp_path, layout):
    """The NaN and infinite voxels of a .nii.gz (which ITK reads as 0) are counted in the decompressed
    stream while ITK reads the voxels, piece by piece, from where the header says they begin."""
    array = small.array.transpose(2, 1, 0).astype(">f4" if layout == "big-endian" else
                                                  np.float64 if layout == "float64" else np.float32)
    array[100, 100, 3] = np.nan
    array[10, 10, 4] = -np.inf
    array[-1, -1, -1] = np.nan  # the last voxel: the stream's last piece
    image = nib.Nifti1Image(array, np.diag([0.8, 0.8, 2.5, 1]))
    if layout == "after a header extension":
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"x" * 1001))
    nib.save(image, str(tmp_path / "nan.nii.gz"))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "nan.nii.gz")
    assert_one_line(exc, "nan.nii.gz: 3 voxels are NaN or infinite")


def test_non_finite_values_are_counted_in_pieces_of_any_length():
    from LiverLesionSegLib.io.stored_bytes import FloatVoxels, _NonFiniteCount

    rng = np.random.default_rng(0)
    values = rng.normal(size=5000).astype("<f4")
    values[rng.choice(5000, 40, replace=False)] = np.nan
    values[:3], values[-2:] = np.inf, np.nan  # before the voxels begin and after they end: not counted
    data = b"h" * 13 + values.tobytes()
    count = _NonFiniteCount(FloatVoxels(13 + 3 * 4, 4 * 4995, np.dtype("<f4")))
    cuts = np.sort(rng.choice(len(data), 60, replace=False))
    for piece in np.split(np.frombuffer(data, np.uint8), cuts):
        count(piece.tobytes())
    assert count.count == np.count_nonzero(~np.isfinite(values[3:-2]))


def test_four_d_nifti(small, tmp_path):
    data = np.stack([small.array.transpose(2, 1, 0)] * 2, axis=-1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "4d.nii.gz"))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "4d.nii.gz")
    assert_one_line(exc, "4d.nii.gz", "4-D image")


@pytest.mark.parametrize("shape", [(512, 512), (512, 512, 1)])
def test_two_d_image(small, tmp_path, shape):
    data = small.array[0].T.reshape(shape)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "slice.nii.gz"))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "slice.nii.gz")
    assert_one_line(exc, "slice.nii.gz", "2-D image")


@pytest.mark.parametrize("ndims, size", [("0", None), ("1", "512"), ("3", "0 0 0"), ("3", "512 512 0")])
def test_an_image_of_no_voxels_is_told_so(small, tmp_path, ndims, size):
    """Found by `tools/damage_inputs.py --kind mha` (seeds 10010, 10036): a header of no dimensions or
    a side of 0 was told "a 2-D image (size ), not a volume", "a 2-D image (size 0 x 0 x 0)"."""
    write_metaimage(small, tmp_path / "ct.mha", "NDims", ndims)
    if size is not None:
        set_header_line(tmp_path / "ct.mha", "DimSize", size)
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha: its header gives it no voxels or a single row of them "
                         f"({ndims} dimension(s), size {(size or 'none').replace(' ', ' x ')})")


def test_vector_image(small, tmp_path):
    image = sitk.Compose([small.to_sitk()] * 3)
    sitk.WriteImage(image, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "rgb.nrrd")
    assert type(exc.value) is InputError
    assert_one_line(exc, "rgb.nrrd", "3 components")


@pytest.mark.parametrize("name", ["cut.nii.gz", "cut.nii", "cut.nrrd", "cut.mha"])
def test_truncated_file(small, tmp_path, name):
    write_sitk(small, tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / name)
    assert type(exc.value) is InputError
    assert_one_line(exc, name)
    assert "truncated" in str(exc.value)


CHECKSUM_FAILS = "its compressed voxel data does not match its own checksum: bytes of it are damaged"


@pytest.mark.parametrize("name, side, told", [
    ("ct.nrrd", 128, CHECKSUM_FAILS), ("ct.mha", 128, CHECKSUM_FAILS), ("ct.nii.gz", 128, CHECKSUM_FAILS),
    ("small.nii.gz", 64, CHECKSUM_FAILS)])  # was "the compressed file is damaged (CRC check failed …)"
def test_compressed_voxels_damaged_past_their_check_are_refused(tmp_path, name, side, told):
    """Found damaging compressed files by hand and with `damage_inputs.py` (NIfTI, seed 7031): a bit of a
    gzip-compressed NIfTI or NRRD (a Slicer .seg.nrrd too), or of a zlib-compressed MetaImage, flipped
    where the stream still decompresses was read by ITK as voxels without a word (it never reads the
    stream's CRC or Adler-32); in a small .nii.gz ITK refuses the header, which was told as "cannot
    read the image header (no image reader recognises its header)"."""
    array = np.random.default_rng(0).normal(0, 300, (8, side, side)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(tmp_path / name), useCompression=True)
    bad_inputs.a_bit_flipped_where(tmp_path / name, lambda path: bad_inputs.itk_reads_other_voxels(path, array) or
                                   side == 64 and bad_inputs.fails_only_its_crc(path))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / name)
    assert_one_line(exc, f"{name}: {told}")


def test_a_detached_nrrd_data_file_is_checked_as_an_attached_one_is(tmp_path, caplog):
    """A NRRD whose header (.nhdr) names its data file (ct.raw.gz, as SimpleITK and Slicer write one):
    a bit flipped where the gzip stream still decompresses, and a raw data file holding more slices
    than the header announces, were read without a word (only a .nrrd's attached data was checked)."""
    array = np.random.default_rng(0).normal(0, 300, (8, 128, 128)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    sitk.WriteImage(image, str(tmp_path / "ct.nhdr"), useCompression=True)
    assert "data file: ct.raw.gz" in (tmp_path / "ct.nhdr").read_text()
    bad_inputs.a_bit_flipped_where(tmp_path / "ct.raw.gz",
                                   lambda path: bad_inputs.itk_reads_other_voxels(tmp_path / "ct.nhdr", array))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.nhdr")
    assert_one_line(exc, f"ct.nhdr: {CHECKSUM_FAILS}")

    sitk.WriteImage(image, str(tmp_path / "raw.nhdr"))
    header = (tmp_path / "raw.nhdr").read_text()
    (tmp_path / "raw.nhdr").write_text(header.replace("sizes: 128 128 8", "sizes: 128 128 6"))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_image(tmp_path / "raw.nhdr")
    np.testing.assert_array_equal(volume.array, array[:6])
    assert "raw.nhdr: it holds 65536 bytes of voxels more than its header announces (128 x 128 x 6 of int16), " \
           "as many as 2 slice(s)" in caplog.text


@pytest.mark.parametrize("written,named", [(".nii.gz", "scan.nii"), (".nii", "scan.nii.gz"), (".nii.gz", "scan.dcm"),
                                           (".nrrd", "scan.img"), (".mha", "scan")])
def test_an_image_named_as_another_kind_is_read_as_what_it_holds(small, tmp_path, written, named, caplog):
    """A NIfTI gzip-compressed by a tool that kept the .nii name, an uncompressed one named .nii.gz,
    an image renamed by hand: read by their content, a warning naming the file and the suffix to give."""
    import logging

    from LiverLesionSegLib.io.cases import read_input_volume

    write_sitk(small, tmp_path / f"image{written}")
    (tmp_path / f"image{written}").rename(tmp_path / named)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_input_volume(tmp_path / named)
    assert_same_volume(volume, small)
    assert volume.source == str(tmp_path / named)
    assert f"{tmp_path / named}: holds a" in caplog.text and f"give it the suffix {written}" in caplog.text


def test_a_misnamed_image_that_is_damaged_is_told_under_its_own_name(small, tmp_path):
    write_sitk(small, tmp_path / "cut.nii.gz")
    data = (tmp_path / "cut.nii.gz").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "cut.nii")
    assert_one_line(exc, str(tmp_path / "cut.nii"), "truncated")
    assert "liverlesionseg-" not in str(exc.value)


def test_garbage_file(tmp_path):
    (tmp_path / "junk.nrrd").write_bytes(b"this is not an image" * 10)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "junk.nrrd")
    assert_one_line(exc, "junk.nrrd", "cannot read")


def test_label_map_of_another_shape(small, tmp_path):
    reference = read_image_written(small, tmp_path)
    other = Volume(np.zeros((8, 256, 512), np.uint8), small.spacing, small.origin, small.direction)
    write_sitk(other, tmp_path / "labels.nii.gz")
    with pytest.raises(GeometryError) as exc:
        read_label_map(tmp_path / "labels.nii.gz", reference)
    assert_one_line(exc, "labels.nii.gz", "512 x 256 x 8", "512 x 512 x 8")


def test_label_map_of_another_geometry(small, tmp_path):
    """Only its origin another: the label map was blamed alone ("give the label map made on this image"),
    where the image's header may be the damaged one (damage tool, train seed 42018: the image's sform_code
    made -1, read at 0, 0, 0 with a warning)."""
    reference = read_image_written(small, tmp_path)
    shifted = Volume(np.zeros(small.shape, np.uint8), small.spacing,
                     np.array(small.origin) + (0, 0, 2.5), small.direction)
    write_sitk(shifted, tmp_path / "labels.nrrd")
    with pytest.raises(GeometryError) as exc:
        read_label_map(tmp_path / "labels.nrrd", reference)
    assert_one_line(exc, "labels.nrrd: the label map lies elsewhere than the image: its origin is (", "-255.7",
                    "-258.2", "(the same voxel size and axes). Give the label map made on this image; if it is, one "
                    "of the two headers is damaged: export the damaged one again.")


def test_label_map_of_the_same_voxels_stored_flipped_or_transposed_reads_onto_the_image(small, tmp_path):
    """The same voxel centres in another order: i and j flipped (the origin at the far corner, as tools
    that save in RAS order write it), or i and j swapped; read back voxel for voxel on the image."""
    reference = read_image_written(small, tmp_path)
    labels = np.zeros(small.shape, np.uint8)
    labels[2, 5:9, 5:30] = 1
    labels[3, 40:60, 7:9] = 2
    flipped_origin = small.physical_points([small.shape[2] - 1, small.shape[1] - 1, 0])[0]
    flipped = Volume(labels[:, ::-1, ::-1].copy(), small.spacing, flipped_origin,
                     small.direction @ np.diag([-1.0, -1.0, 1.0]))
    swapped_spacing = (small.spacing[1], small.spacing[0], small.spacing[2])
    swapped = Volume(np.ascontiguousarray(labels.transpose(0, 2, 1)), swapped_spacing, small.origin,
                     small.direction[:, [1, 0, 2]])
    for name, volume in (("flipped.nii.gz", flipped), ("swapped.nrrd", swapped)):
        write_sitk(volume, tmp_path / name)
        liver, lesion = read_label_map(tmp_path / name, reference)
        np.testing.assert_array_equal(lesion.array, labels == 2)
        np.testing.assert_array_equal(liver.array, labels > 0)
        assert liver.same_grid(reference)


def test_label_map_with_label_3(small, tmp_path):
    reference = read_image_written(small, tmp_path)
    labels = np.zeros(small.shape, np.uint8)
    labels[2, 5:9, 5:9] = 1
    labels[3, 5:9, 5:9] = 3
    labels[4, 1, 1] = 2
    write_sitk(small, tmp_path / "labels.nii.gz", labels)
    with pytest.raises(InputError) as exc:
        read_label_map(tmp_path / "labels.nii.gz", reference)
    assert_one_line(exc, "labels.nii.gz", "label(s) 3 ")


def test_a_float_label_near_1_is_shown_as_it_is(small, tmp_path):
    """1.000001 is not shown as "1" (which would read as a label the map may hold)."""
    reference = read_image_written(small, tmp_path)
    labels = np.zeros(small.shape, np.float32)
    labels[2, 5:9, 5:9] = 1.000001
    write_sitk(small, tmp_path / "labels.nii.gz", labels)
    with pytest.raises(InputError) as exc:
        read_label_map(tmp_path / "labels.nii.gz", reference)
    assert_one_line(exc, "labels.nii.gz", "label(s) 1.000001 besides")


def test_label_map_values(small, tmp_path):
    reference = read_image_written(small, tmp_path)
    labels = np.zeros(small.shape, np.int16)
    labels[2, 5:9, 5:9] = 1
    labels[3, 5:9, 5:9] = 2
    write_sitk(small, tmp_path / "labels.nii.gz", labels)
    liver, lesion = read_label_map(tmp_path / "labels.nii.gz", reference)
    assert int(liver.array.sum()) == 32 and int(lesion.array.sum()) == 16
    assert liver.array.dtype == np.uint8 and lesion.array[3].sum() == 16


@pytest.mark.parametrize("require_liver", [True, False])
def test_a_label_map_of_background_only_is_read_with_a_warning(small, tmp_path, caplog, require_liver):
    """Found by the damage tool: a scene's segmentation stored as its probability map (all zeros) was
    measured as "Liver: not segmented. Lesions: 0" with nothing said."""
    reference = read_image_written(small, tmp_path)
    write_sitk(small, tmp_path / "labels.nii.gz", np.zeros(small.shape, np.float32))
    liver, lesion = read_label_map(tmp_path / "labels.nii.gz", reference, require_liver)
    assert not lesion.array.any() and (liver is None) == (not require_liver)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"{tmp_path / 'labels.nii.gz'}: the label map holds background (0) only, no voxel of liver "
                      "or lesion; if it should, give the label map that holds them"]


def test_a_label_map_with_labels_is_not_warned_of(small, tmp_path, caplog):
    reference = read_image_written(small, tmp_path)
    labels = np.zeros(small.shape, np.uint8)
    labels[3, 5:9, 5:9] = 2
    write_sitk(small, tmp_path / "labels.nii.gz", labels)
    read_label_map(tmp_path / "labels.nii.gz", reference)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("where", [3, 30])  # the gzip header's compression method; the deflate stream's start
def test_a_nifti_gz_damaged_at_its_start_is_told_so(small, tmp_path, where):
    """Found by `tools/damage_inputs.py --kind nifti`: told as ITK's "Unable to determine ImageIO reader"."""
    write_sitk(small, tmp_path / "ct.nii.gz")
    data = bytearray((tmp_path / "ct.nii.gz").read_bytes())
    data[where:where + 8] = b"\xff" * 8
    (tmp_path / "ct.nii.gz").write_bytes(bytes(data))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.nii.gz")
    assert_one_line(exc, "ct.nii.gz", "the compressed file is damaged (")


def test_a_nifti_scaling_slope_with_an_intercept_of_nan_is_told_in_its_fields(small, tmp_path):
    """Found by `tools/damage_inputs.py --kind nifti`: nibabel's "Valid slope but invalid intercept nan"."""
    write_sitk(small, tmp_path / "ct.nii")
    data = bytearray((tmp_path / "ct.nii").read_bytes())
    data[112:120] = np.array([2.0, np.nan], "<f4").tobytes()  # scl_slope, scl_inter (NIfTI-1 offsets)
    (tmp_path / "ct.nii").write_bytes(bytes(data))
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.nii")
    assert_one_line(exc, "ct.nii", "cannot read the NIfTI header (its scaling slope (scl_slope) is set but its "
                                   "intercept (scl_inter) is nan)")


def set_header_line(path, field: str, value: str) -> None:
    """The MetaImage at `path` with its header line `field` saying `value`."""
    data, count = re.subn(rf"^{field} = .*$".encode(), f"{field} = {value}".encode(), path.read_bytes(), 1, re.M)
    assert count == 1
    path.write_bytes(data)


def test_a_metaimage_orientation_of_axes_longer_than_one_is_refused(small, tmp_path):
    """Found by `tools/damage_inputs.py --kind mha`, seed 15013: a TransformMatrix of 2 0 0 0 2 0 0 0 2
    was read as given, the lesions' positions doubled without a word."""
    write_metaimage(small, tmp_path / "ct.mha", "TransformMatrix", "2 0 0 0 2 0 0 0 2")
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha: its orientation's axes have lengths 2, 2, 2, where they must be 1 (unit vectors)")


def test_a_metaimage_header_that_makes_the_reader_run_out_of_memory_is_told_so(small, tmp_path):
    """Found by `tools/damage_inputs.py --kind mha`, seed 10005: plain voxels under a header saying they
    are compressed, in a list of data files, were told in ITK's words: "Exception thrown in SimpleITK
    ImageFileReader_Execute: std::bad_alloc"."""
    write_metaimage(small, tmp_path / "ct.mha", "ElementDataFile", "LIST")
    set_header_line(tmp_path / "ct.mha", "CompressedData", "True")
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha: cannot read the image data (the reader ran out of memory reading it as its header "
                         "describes: its encoding, compression or data files are likely wrong)")


def write_metaimage(volume: Volume, path, field: str, value, compressed: bool = False) -> None:
    """`volume` as a MetaImage (.mha, or .mhd beside its data file) whose header line `field` says
    `value` instead (None: the line removed)."""
    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=compressed)
    data = path.read_bytes()
    end = re.search(rb"^ElementDataFile = .*\n", data, flags=re.M).end()  # the header's last line
    line = b"" if value is None else f"{field} = {value}\n".encode()
    header, count = re.subn(rf"^{field} = .*\n".encode(), line, data[:end], flags=re.M)
    assert count == 1
    path.write_bytes(header + data[end:])


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_a_metaimage_holding_more_voxels_than_its_header_announces_is_refused_or_warned_of(small, tmp_path, caplog,
                                                                                          compressed, suffix):
    """Found by `tools/damage_inputs.py --kind mha`: a header announcing 4 of the 8 slices was read as
    those 4 and segmented without a word (this was left as not covered: ITK tells neither where a
    MetaImage's header ends nor whether its data is compressed)."""
    write_metaimage(small, tmp_path / f"as stored{suffix}", "DimSize", "512 512 8", compressed)
    assert_same_volume(read_image(tmp_path / f"as stored{suffix}"), small)
    write_metaimage(small, tmp_path / f"half{suffix}", "DimSize", "512 512 4", compressed)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / f"half{suffix}")
    assert_one_line(exc, f"half{suffix}", "holds 2.0 times the", "bytes of voxels its header announces (512 x 512 x 4 "
                                                                  "of int16)")
    write_metaimage(small, tmp_path / f"six{suffix}", "DimSize", "512 512 6", compressed)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_image(tmp_path / f"six{suffix}")
    np.testing.assert_array_equal(volume.array, small.array[:6])
    assert f"six{suffix}: it holds 1048576 bytes of voxels more than its header announces (512 x 512 x 6 of int16), " \
           "as many as 2 slice(s): they are not read" in caplog.text


@pytest.mark.parametrize("field, value, told", [
    ("ElementSpacing", "-1 0.78 2.5", "its ElementSpacing '-1 0.78 2.5' holds a voxel side of 0 or less, or one that "
                                      "is not a number (ITK would read another)"),
    ("Offset", "nan 0 0", "its Offset 'nan 0 0' holds a value that is not a number (ITK would read it as 0)"),
    ("TransformMatrix", "1 0 0 0 inf 0 0 0 1", "its TransformMatrix '1 0 0 0 inf 0 0 0 1' holds a value that is not a "
                                               "number")])
def test_a_metaimage_of_a_number_itk_reads_as_another_is_refused(small, tmp_path, field, value, told):
    """Found by `tools/damage_inputs.py --kind mha`: an Offset of NaN was read as 0 and a spacing of -1
    as 1 mm, and segmented with the lesions' positions or volumes of another image, without a word."""
    write_metaimage(small, tmp_path / "ct.mha", field, value)
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha", told)


@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_a_metaimage_of_no_voxel_spacing_is_read_with_1_mm_voxels_and_warned_of(small, tmp_path, caplog, suffix):
    """Found by `tools/damage_inputs.py --kind mha`: without its ElementSpacing line, a CT of 0.78 mm
    pixels was measured in 1 mm voxels without a word."""
    write_metaimage(small, tmp_path / f"ct{suffix}", "ElementSpacing", None)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        volume = read_image(tmp_path / f"ct{suffix}")
    np.testing.assert_allclose(volume.spacing, 1)
    assert f"ct{suffix}: its header gives no voxel spacing (no ElementSpacing line): it is read as the MetaImage " \
           "format says, with voxels of 1 x 1 x 1 mm" in caplog.text
    caplog.clear()
    write_metaimage(small, tmp_path / f"as stored{suffix}", "ElementSpacing", " ".join(map(str, small.spacing[::-1])))
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        read_image(tmp_path / f"as stored{suffix}")
    assert "WARNING" not in caplog.text


@pytest.mark.parametrize("field,value,told", [
    ("DimSize", None, "cannot read the image header (the MetaImage reader finds no DimSize in its header)"),
    ("ElementType", None, "cannot read the image header (the MetaImage reader finds no ElementType in its header)"),
    ("ElementType", "MET_XXX", "cannot read the image header (its header names no voxel type the reader knows)"),
    ("ElementDataFile", "missing.raw", "its data file missing.raw is missing. Copy missing.raw beside ct.mha, or "
                                       "export the image again as one file"),  # was "(the data file its header …"
    ("CompressedData", "True", "(its compressed voxel data cannot be decompressed)"),
    ("TransformMatrix", "1 0 0 1 0 0 0 0 1", "cannot read the image header (its orientation (direction) gives a "
                                             "voxel axis no length, or lays the voxel axes in one plane). The file "
                                             "may be damaged or not an image"),
    ("ElementSpacing", "0 0.78 2.5", "its ElementSpacing '0 0.78 2.5' holds a voxel side of 0 or less")])
def test_a_metaimage_whose_header_is_damaged_is_told_in_one_line_and_nothing_else(small, tmp_path, capfd, field,
                                                                                   value, told):
    """Found by `tools/damage_inputs.py --kind mha`: ITK's MetaImage reader printed four lines of its own
    beside the error, and the error's reason was an operating system's code left over ("No such file
    or directory") or the last row of a matrix ("(0 0 1)")."""
    write_metaimage(small, tmp_path / "ct.mha", field, value)
    capfd.readouterr()
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha", told)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("compressed", [False, True])
def test_a_metaimage_cut_short_says_how_many_bytes_it_holds(small, tmp_path, capfd, compressed):
    path = tmp_path / "cut.mha"
    write_metaimage(small, path, "ElementSpacing", " ".join(map(str, small.spacing[::-1])), compressed)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - (len(data) // 3)])
    capfd.readouterr()
    with pytest.raises(InputError) as exc:
        read_image(path)
    announced = re.search(rb"CompressedDataSize = (\d+)", data)  # of a compressed file: its compressed bytes
    expected = int(announced[1]) if compressed else small.array.size * small.array.itemsize
    assert_one_line(exc, "cut.mha", "cannot read the image data (its voxel data holds ",
                    f" of the {expected} bytes its header announces)")
    assert capfd.readouterr().err == ""


def read_image_written(volume: Volume, tmp_path) -> Volume:
    write_sitk(volume, tmp_path / "image.nii.gz")
    return read_image(tmp_path / "image.nii.gz")


def test_image_stem():
    assert image_stem("a/liver_3.nii.gz") == "liver_3"
    assert image_stem("volume-7.nii") == "volume-7"
    assert image_stem("image.nrrd") == "image"
    assert image_stem("a/1.2.840.1234.mha") == "1.2.840.1234"


@pytest.mark.parametrize("name", ["LABELS.NII.GZ", "labels.mha", "Labels.NRRD", "labels.NII"])
def test_label_maps_written_under_any_name_a_reader_takes_read_back(small, tmp_path, name):
    """Upper-case suffixes (as some file managers write them) and MetaImage: the temporary file the
    writer makes has a lower-case suffix, which ITK's NIfTI writer needs, and the file reads back."""
    labels = np.zeros(small.shape, np.uint8)
    labels[2, 5:9, 5:9], labels[3, 6:8, 6:8] = 1, 2
    write_segmentation_output(tmp_path / name, small.with_array(labels))
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]
    assert_same_volume(read_image(tmp_path / name), small.with_array(labels))


@pytest.mark.parametrize("name", ["labels.Nii", "labels.Nii.Gz", "labels.nii.GZ"])
def test_nifti_names_in_mixed_case_are_read_but_not_written(small, tmp_path, name, caplog):
    """The NIfTI library refuses '.Nii': no output is written under such a name, which nothing could
    read back; such an input is read by its content, with a warning, and where its content is no
    NIfTI the name is told as the problem, not the file as damaged."""
    import logging

    with pytest.raises(OutputError, match="mixes lower and upper case"):
        write_segmentation_output(tmp_path / name, small)
    assert not list(tmp_path.iterdir())
    write_sitk(small, tmp_path / "image.nii.gz")
    (tmp_path / "image.nii.gz").rename(tmp_path / name)
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        assert_same_volume(read_image(tmp_path / name), small)
    assert "give it the suffix .nii.gz" in caplog.text
    (tmp_path / name).write_bytes(b"not an image" * 40)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / name)
    assert_one_line(exc, name, "mixes lower and upper case", "Rename it")


def test_an_array_saved_in_slice_row_column_order_without_geometry_is_refused(case_1_17, tmp_path):
    """A pipeline's numpy array (slice, row, column) saved with an identity affine: the tool would read
    sagittal planes as axial slices (a 167 mL liver on a shared case). The same array saved the right
    way round reads; it only lacks its spacing, which the result's caution tells."""
    from LiverLesionSegLib.io.cases import read_input_volume

    array = case_1_17.ct.array[:, ::2, ::2]  # 119 slices of 256 x 256
    nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / "reversed.nii.gz")
    with pytest.raises(InputError) as exc:
        read_input_volume(tmp_path / "reversed.nii.gz")
    assert_one_line(exc, "reversed.nii.gz", "axial slices are 119 x 256 voxels, while the square 256 x 256 planes",
                    "axes reversed")
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "bare.nii.gz"))
    bare = read_input_volume(tmp_path / "bare.nii.gz")
    assert bare.shape == array.shape and bare.carries_no_geometry
    placed = Volume(array.transpose(2, 1, 0).copy(), case_1_17.ct.spacing, case_1_17.ct.origin)
    write_sitk(placed, tmp_path / "placed.nii.gz")  # a real geometry: such a shape is the file's own business
    assert read_input_volume(tmp_path / "placed.nii.gz").shape == (256, 256, 119)


@pytest.mark.parametrize("spacing, refused", [
    ((0.78, 1e30, 2.5), True),  # a damaged sform: square pixels of 1e30 / 0.78 rows gave numpy's "maximum dimension"
    ((1e-30, 0.78, 2.5), True),
    ((0.0008, 0.0008, 0.0025), True),  # metres
    ((780.0, 780.0, 2500.0), True),  # micrometres
    ((0.05, 0.05, 50.0), False),  # the bounds themselves
    ((0.7, 0.7, 5.0), False),
])
def test_a_ct_of_voxels_no_ct_has_is_refused(spacing, refused):
    from LiverLesionSegLib.io.images import refuse_an_implausible_spacing

    volume = Volume(np.zeros((2, 4, 4), np.int16), spacing, (0, 0, 0), np.eye(3), "odd.nii.gz")
    if not refused:
        refuse_an_implausible_spacing(volume, "odd.nii.gz")
        return
    with pytest.raises(InputError) as exc:
        refuse_an_implausible_spacing(volume, "odd.nii.gz")
    assert_one_line(exc, "odd.nii.gz", "is not a CT's", "in other units than millimetres")


@pytest.mark.parametrize("how", ["bytes swapped", "times 1e30"])
def test_a_ct_of_values_far_beyond_hounsfield_units_is_refused(small, how):
    """Read with its bytes swapped, or scaled by a pipeline, a CT was segmented with only a caution."""
    from LiverLesionSegLib.io.images import refuse_a_non_ct

    refuse_a_non_ct(small, "small.nrrd")  # as it is: a CT
    array = small.array.byteswap() if how == "bytes swapped" else small.array.astype(np.float32) * 1e30
    with pytest.raises(InputError) as exc:
        refuse_a_non_ct(small.with_array(array), "small.nrrd")
    assert_one_line(exc, "small.nrrd", "of its voxels lie above 4000", "not Hounsfield units")


@pytest.mark.parametrize("case_name", ["case_0697", "case_1_17"])
def test_an_mr_image_is_refused_and_a_ct_cropped_round_its_liver_is_not(request, case_name):
    """An MR image given as a NIfTI holds next to no voxel below -50 (no fat or air in Hounsfield
    units) and was segmented into a 5-litre liver, with a caution; a CT holds its fat and air there
    even in a box tight round its liver (23 to 35 % of the voxels in the shared cases), and clipped
    to a window of -100 to 400 as pipelines store it."""
    from LiverLesionSegLib.io.images import refuse_a_non_ct

    case = request.getfixturevalue(case_name)
    (k0, j0, i0), (k1, j1, i1) = np.argwhere(case.liver.array).min(0), np.argwhere(case.liver.array).max(0) + 1
    box = case.ct.array[k0:k1, j0:j1, i0:i1].copy()
    refuse_a_non_ct(Volume(box, case.ct.spacing, case.ct.origin, case.ct.direction, "liver box"), "liver box")
    refuse_a_non_ct(case.ct.with_array(np.clip(case.ct.array, -100, 400)), "clipped")
    mr = np.interp(case.ct.array, [-1000, -100, 0, 60, 200, 1000], [5, 700, 200, 420, 350, 80]).astype(np.int16)
    with pytest.raises(InputError) as exc:
        refuse_a_non_ct(case.ct.with_array(mr), "t1.nii.gz")
    assert_one_line(exc, "t1.nii.gz", "of its voxels lie below -50", "not a CT in Hounsfield units")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_an_origin_farther_than_any_scan_is_refused(small, tmp_path, suffix):
    """Found by `damage_inputs.py --kind nifti`, seed 16013 (srow_x[3] of 1e30): read so, the voxels'
    positions lost their millimetres to rounding and the lesion table gave centres at 1e30 mm. An
    origin 1.9 m down the table, as a PET/CT's may be, is read."""
    image = small.to_sitk()
    image.SetOrigin((small.origin[0], small.origin[1], -1900.0))
    sitk.WriteImage(image, str(tmp_path / f"far{suffix}"))
    assert read_image(tmp_path / f"far{suffix}").origin[2] == pytest.approx(-1900.0)
    image.SetOrigin((1e30, small.origin[1], small.origin[2]))
    sitk.WriteImage(image, str(tmp_path / f"far{suffix}"))
    with pytest.raises(GeometryError) as exc:
        read_image(tmp_path / f"far{suffix}")
    assert_one_line(exc, f"far{suffix}", "its origin (1e+30", "farther than any scan lies")


@pytest.mark.parametrize("slope, inter", [(float("nan"), 1.0), (1.0, 99.0), (2.0, 0.0)])
def test_a_label_map_its_header_scales_out_of_its_labels_says_so(small, tmp_path, slope, inter):
    """Found by `tools/damage_inputs.py --kind labels`, seeds 37008 and 37045: a scaling intercept on a
    label map's header was told as labels 3.0 or 99.0 … to be named in a dataset.json."""
    labels = np.zeros(small.shape, np.uint8)
    labels[2:5, 100:200, 100:200], labels[3, 140:160, 140:160] = 1, 2

    def scaling(header):
        header["scl_slope"], header["scl_inter"] = slope, inter

    path = bad_inputs.nifti_with_header(tmp_path / "labels.nii.gz", labels, scaling, small.ijk_to_ras())
    with pytest.raises(InputError) as exc:
        read_label_map(path, small)
    assert_one_line(exc, f"besides 0 background, 1 liver, 2 lesion, as its header scales its stored values "
                         f"(scl_slope {slope:g}, scl_inter {inter:g}). Write it again without a scaling")


@pytest.mark.parametrize("suffix", [".nhdr", ".mhd"])
@pytest.mark.parametrize("damage, told", [
    ("removed", "{header}: its data file ct.raw is missing. Copy ct.raw beside {header}, or export the image again as "
                "one file (.nrrd, .mha or .nii.gz)."),
    ("emptied", "ct.raw: is an empty file (0 bytes)"),
    ("a folder", "{header}: its data file ct.raw is not a file"),
    ("unnamed", "{header}: its header names no data file")])
def test_a_detached_header_without_its_data_file_names_it(small, tmp_path, suffix, damage, told):
    """Found taking a detached header's data file away in turn: ITK's "couldn't open "/…/ct.raw" (data file
    1 of 1) for reading" as the header's fault, "the data file its header names (ElementDataFile) cannot be
    opened", or a folder's or an empty file's 0 bytes as voxels cut short."""
    header = tmp_path / f"ct{suffix}"
    write_sitk(small, header)
    assert (tmp_path / "ct.raw").is_file()
    if damage in ("removed", "a folder"):
        (tmp_path / "ct.raw").unlink()
        if damage == "a folder":
            (tmp_path / "ct.raw").mkdir()
    elif damage == "emptied":
        (tmp_path / "ct.raw").write_bytes(b"")
    else:
        text = header.read_text()
        header.write_text(re.sub(r"^(data file|ElementDataFile)( *[:=] *)ct\.raw$", r"\1\2", text, flags=re.M))
    with pytest.raises(InputError) as exc:
        read_image(header)
    assert_one_line(exc, told.format(header=header.name))


def test_a_file_named_gz_that_is_not_gzip_says_so(tmp_path):
    """A text (or another file) under a .nii.gz name was told in gzip's words, "the compressed file is damaged
    (Not a gzipped file (b'he'))"; an uncompressed NIfTI so named is read as what it holds (above)."""
    (tmp_path / "ct.nii.gz").write_text("hello, this is no image\n")
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.nii.gz")
    assert_one_line(exc, "ct.nii.gz: is named .gz but is not gzip-compressed (its first bytes are no gzip stream's): "
                         "damaged, or another file under its name. Give the image as it was exported.")


@pytest.mark.parametrize("field, value, count, needed", [("Offset", "0", 1, 3),
                                                          ("TransformMatrix", "1 0 0 0 1 0", 6, 9),
                                                          ("ElementSpacing", "0.78", 1, 3),
                                                          ("DimSize", "512 512", 2, 3)])
def test_a_metaimage_line_of_another_count_of_numbers_than_its_ndims_is_refused(small, tmp_path, field, value, count,
                                                                                 needed):
    """Found by `tools/damage_inputs.py --kind mha`, seed 39000: an Offset of "0" was read as the origin 0, 0, 0,
    without a word (the lesion table's positions another image's). An ElementSpacing of one number (seed
    42025) or a DimSize of two, which ITK's reader refuses, were told in its words: "finds no DimSize"."""
    write_metaimage(small, tmp_path / "ct.mha", field, value)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, f"ct.mha: its {field} '{value}' holds {count} number{'s' * (count != 1)} where its NDims asks "
                         f"for {needed}: one of the two lines is damaged")


def test_a_metaimage_of_numbers_written_in_text_reads_as_them(small, tmp_path):
    """BinaryData = False: voxels written as text numbers, which ITK reads. The voxel count check took
    the text's length for bytes of voxels: "it holds 2.2 times the … bytes of voxels its header announces"."""
    array = small.array[:4, :64, :64]
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = False\nCompressedData = False\n"
              "TransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = -100 -100 -50\nElementSpacing = 0.8 0.8 2.5\n"
              "DimSize = 64 64 4\nElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    (tmp_path / "text.mha").write_text(header + " ".join(map(str, array.ravel())) + "\n")
    volume = read_image(tmp_path / "text.mha")
    assert np.array_equal(volume.array, array) and volume.spacing == pytest.approx((0.8, 0.8, 2.5))


def test_a_metaimage_of_bytes_that_says_they_are_text_is_refused_in_words(small, tmp_path):
    """Its BinaryData line made False (a line the damage tool changes): told in ITK's words, "its voxel
    data cannot be read as its header describes it (its size, type, encoding or start)". Without the
    line, ITK reads the bytes, as before."""
    write_metaimage(small, tmp_path / "ct.mha", "BinaryData", None)
    assert np.array_equal(read_image(tmp_path / "ct.mha").array, small.array)
    write_metaimage(small, tmp_path / "ct.mha", "BinaryData", "False")
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha: says BinaryData = False, so its voxels would be read as numbers written in text, "
                         "but they are bytes: its header is damaged. Write it again from the tool that made it.")


@pytest.mark.parametrize("value", ["x", "4"])
def test_a_metaimage_ndims_that_fits_no_line_is_refused_in_words(small, tmp_path, value):
    """Found by `tools/damage_inputs.py --kind mha`, seeds 42012 and 42023: an NDims of 'x', or of 4 beside
    three sizes, was told in ITK's words, "the MetaImage reader finds no DimSize in its header"."""
    write_metaimage(small, tmp_path / "ct.mha", "NDims", value)
    with pytest.raises(InputError) as exc:
        read_image(tmp_path / "ct.mha")
    assert_one_line(exc, "ct.mha: its NDims 'x' is not a number of dimensions: the header is damaged" if value == "x"
                    else f"ct.mha: its DimSize '{small.shape[2]} {small.shape[1]} {small.shape[0]}' holds 3 numbers "
                         "where its NDims asks for 4: one of the two lines is damaged")


def test_a_label_map_of_other_labels_without_a_scaling_is_not_said_to_scale(small, tmp_path):
    """A NaN slope beside an intercept of 0 scales nothing: the labels are the map's own."""
    labels = np.zeros(small.shape, np.uint8)
    labels[2:5, 100:200, 100:200] = 13

    def no_scaling(header):
        header["scl_slope"], header["scl_inter"] = float("nan"), 0.0

    path = bad_inputs.nifti_with_header(tmp_path / "labels.nii.gz", labels, no_scaling, small.ijk_to_ras())
    with pytest.raises(InputError) as exc:
        read_label_map(path, small)
    assert_one_line(exc, "holds label(s) 13 besides 0 background, 1 liver, 2 lesion. Give a label map")
