"""A ZIP archive as the input (a PACS web viewer's or an e-mail's), or a tar archive (a research
download): read as the folder or file it holds, its temporary copy removed afterwards, and its
problems told by the names inside it."""

from __future__ import annotations

import gzip
import random
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from bad_inputs import a_bit_flipped_where, ct_slices, fails_only_its_crc, zip_folder
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.cases import find_input_ct, read_input_volume
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.resources import sample_case_path


def _same_volume(a, b) -> None:
    assert np.array_equal(a.array, b.array) and a.same_grid(b)


@pytest.fixture
def private_temp(tmp_path, monkeypatch) -> Path:
    """A temporary folder of the test's own, where archives are unpacked: what the other tests running
    beside it unpack into the system's does not show in it."""
    folder = tmp_path / "temporary"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_zipped_series_reads_as_its_folder_and_its_copy_is_removed(tmp_path):
    archive = zip_folder(sample_case_path(), tmp_path / "study.zip")
    with find_input_ct(archive) as found:
        unpacked = Path(found.unpacked.temporary.name)
        assert unpacked.is_dir() and found.series.files[0].is_relative_to(unpacked)
        volume = found.read()
    assert not unpacked.exists()
    _same_volume(volume, read_input_volume(sample_case_path()))
    assert str(archive) in volume.source and str(unpacked) not in volume.source


def test_a_zipped_seg_case_gives_the_series_its_seg_references(data_dir, tmp_path):
    """RadCTTACEomics_0697 holds two CT series and a DICOM SEG: the archive's CT is the one the SEG
    was made on, as the folder's is; here packed without compression, at the archive's root."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    with zipfile.ZipFile(tmp_path / "case.zip", "w", zipfile.ZIP_STORED) as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, path.relative_to(folder))
    with find_input_ct(tmp_path / "case.zip") as found:
        assert found.series.uid == find_input_ct(folder).series.uid
        _same_volume(found.read(), read_input_volume(folder))


def test_a_zipped_nifti_file(tmp_path):
    volume = read_input_volume(sample_case_path())
    sitk.WriteImage(volume.to_sitk(), str(tmp_path / "ct.nii.gz"))
    with zipfile.ZipFile(tmp_path / "ct.zip", "w") as zipped:
        zipped.write(tmp_path / "ct.nii.gz", "ct.nii.gz")
    with find_input_ct(tmp_path / "ct.zip") as found:
        assert found.image is not None and found.image.name == "ct.nii.gz"
        read = found.read()
    assert np.array_equal(read.array, volume.array) and np.allclose(read.spacing, volume.spacing)


def test_a_warning_on_a_file_in_an_archive_names_it_in_the_archive(tmp_path, caplog):
    """The file is read from a temporary folder, but the warning names it as the user knows it."""
    import nibabel as nib

    volume = read_input_volume(sample_case_path())
    image = nib.Nifti1Image(volume.array[:8].T.copy(), np.diag([*volume.spacing, 1]))
    image.set_sform(None, code=0)  # no position: read with a warning
    image.set_qform(None, code=0)
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    with zipfile.ZipFile(tmp_path / "ct.zip", "w") as zipped:
        zipped.write(tmp_path / "ct.nii.gz", "ct.nii.gz")
    with find_input_ct(tmp_path / "ct.zip") as found:
        found.read()
    warned = [r.getMessage() for r in caplog.records if "no position or orientation" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{tmp_path / 'ct.zip' / 'ct.nii.gz'}: "), warned


def _encrypted_flag(archive: Path) -> None:
    """Mark every member as encrypted (bit 0 of the flags), as `zip -P` writes them: no tool here
    writes encrypted archives."""
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + offset] |= 1
            start = data.find(signature, start + 4)
    archive.write_bytes(bytes(data))


def test_archives_that_hold_no_ct_are_refused_naming_them(data_dir, tmp_path, private_temp):
    series = tmp_path / "series"
    series.mkdir()
    for path in ct_slices(data_dir, 3):
        shutil.copy(path, series / path.name)
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    zip_folder(series, tmp_path / "locked.zip")
    _encrypted_flag(tmp_path / "locked.zip")
    with zipfile.ZipFile(tmp_path / "nested.zip", "w") as zipped:
        zipped.write(zip_folder(series, tmp_path / "inner.zip"), "inner.zip")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.txt").write_text("no images here")
    zip_folder(tmp_path / "notes", tmp_path / "notes.zip")
    cases = {"empty.zip": "empty zip archive", "locked.zip": "password-protected",
             "nested.zip": "holds another archive, inner.zip",
             "notes.zip": "notes.zip/notes: no dicom files found among its 1 files (e.g. report.txt)"}
    for name, message in cases.items():
        with pytest.raises(InputError) as raised:
            find_input_ct(tmp_path / name)
        assert message in str(raised.value).lower(), str(raised.value)
        assert str(tmp_path / name) in str(raised.value)
    assert not list(private_temp.iterdir())


@pytest.mark.parametrize("name,mode", [("study.tar.gz", "w:gz"), ("study.tar.xz", "w:xz"), ("study.tar", "w")])
def test_a_tar_archive_of_a_series_reads_as_its_folder(tmp_path, name, mode, private_temp):
    with tarfile.open(tmp_path / name, mode) as packed:
        packed.add(sample_case_path(), "HCC_006_sample")
    volume = read_input_volume(tmp_path / name)
    _same_volume(volume, read_input_volume(sample_case_path()))
    assert str(tmp_path / name) in volume.source
    assert not list(private_temp.iterdir())


def test_damaged_empty_and_escaping_tar_archives_are_refused_naming_them(tmp_path):
    """A download cut short, an archive of folders only, and one whose member would land outside the
    folder it is unpacked into (nothing is written there)."""
    with tarfile.open(tmp_path / "whole.tar.gz", "w:gz") as packed:
        packed.add(sample_case_path(), "series")
    data = (tmp_path / "whole.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with tarfile.open(tmp_path / "whole.tar", "w") as packed:
        packed.add(sample_case_path(), "series")
    data = (tmp_path / "whole.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])  # within a slice (found by `--kind archive`)
    with tarfile.open(tmp_path / "folders.tar", "w") as packed:
        folder = tarfile.TarInfo("series")
        folder.type = tarfile.DIRTYPE
        packed.addfile(folder)
    with tarfile.open(tmp_path / "escaping.tar", "w") as packed:
        packed.add(next(sample_case_path().iterdir()), "../outside.dcm")
    cut = "is a damaged tar archive: it is cut short"
    cases = {"cut.tar.gz": cut, "cut.tar": cut, "folders.tar": "is an empty tar archive",
             "escaping.tar": "is a damaged tar archive, or one packed in a way that cannot be read here"}
    for name, message in cases.items():
        with pytest.raises(InputError) as raised:
            find_input_ct(tmp_path / name)
        assert message in str(raised.value) and str(tmp_path / name) in str(raised.value), str(raised.value)
    assert not list(Path(tempfile.gettempdir()).glob("outside.dcm"))


def test_a_tar_gz_archive_with_a_byte_damaged_past_decompression_is_refused(tmp_path):
    """tarfile stops reading at the archive's end marker, before gzip's CRC: a byte damaged so that
    the stream still decompresses reached the slices unseen (found damaging archives by hand: a
    JPEG-LS decoder's complaint was all that told; plain slices were segmented as damaged)."""
    with tarfile.open(tmp_path / "study.tar.gz", "w:gz") as packed:
        packed.add(sample_case_path(), "series")
    read_input_volume(tmp_path / "study.tar.gz")  # whole, it reads
    a_bit_flipped_where(tmp_path / "study.tar.gz", fails_only_its_crc)
    with pytest.raises(InputError, match=r"study\.tar\.gz: is a damaged tar archive: its compressed data fails its "
                       r"own check \(CRC check failed"):
        read_input_volume(tmp_path / "study.tar.gz")


def test_a_tar_gz_archive_failing_its_check_while_it_unpacks_is_told_as_failing_it(tmp_path):
    """Bytes changed in the stream's last compressed block: gzip's CRC fails while tar unpacks the last
    slice, and is told as the stream's own check failing (found by `tools/damage_inputs.py --kind archive`,
    seed 20096; before: "is a damaged tar archive, or one packed in a way that cannot be read here")."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
    import damage_inputs

    told = damage_inputs.damaged_archive(tmp_path / "case", random.Random(20096))
    assert told.startswith("archive tar.gz: bytes changed"), told
    with pytest.raises(InputError, match=r"study\.tar\.gz: is a damaged tar archive: its compressed data fails its "
                       r"own check \(CRC check failed"):
        read_input_volume(tmp_path / "case" / "study.tar.gz")


def test_a_zip_archive_holding_a_file_unlike_its_checksum_is_told_as_damaged(tmp_path):
    """A byte of a slice in a ZIP stored without compression changed: the slice fails its CRC-32, which is
    damage, not a way of packing (before: "is a damaged ZIP archive, or one packed in a way that cannot be
    read here"; found by `tools/damage_inputs.py --kind archive`)."""
    with zipfile.ZipFile(tmp_path / "stored.zip", "w", zipfile.ZIP_STORED) as stored:
        for path in sorted(sample_case_path().glob("*.dcm")):
            stored.write(path, f"series/{path.name}")
        first = stored.infolist()[0]
    data = bytearray((tmp_path / "stored.zip").read_bytes())
    data[first.header_offset + 30 + len(first.filename) + 1000] ^= 0x01  # within the first slice's bytes
    (tmp_path / "stored.zip").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"stored\.zip: is a damaged ZIP archive \(Bad CRC-32 for file"):
        read_input_volume(tmp_path / "stored.zip")


def test_a_zip_archive_whose_directory_points_before_its_start_is_told_as_damaged(tmp_path, private_temp):
    """The end record's offset of the central directory made larger, so that each file's header lies
    before the archive's start (found by `tools/damage_inputs.py --kind archive`, seed 20062; before: "cannot
    be unpacked into the temporary folder ([Errno 22] Invalid argument)", blaming the disk)."""
    data = bytearray(zip_folder(sample_case_path(), tmp_path / "study.zip").read_bytes())
    end = data.rindex(b"PK\x05\x06")
    offset = int.from_bytes(data[end + 16:end + 20], "little")
    data[end + 16:end + 20] = (offset + 100_000).to_bytes(4, "little")
    (tmp_path / "study.zip").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"study\.zip: is a damaged ZIP archive \(an offset in it points before the "
                       r"file's start\)"):
        read_input_volume(tmp_path / "study.zip")
    assert not list(private_temp.iterdir())


def dicom_cd_image(series: Path, image: Path) -> Path:
    """`series` written as a DICOM CD is (a DICOMDIR, PT000000/ST000000/SE000000/IM000000 …, through
    pydicom's FileSet) into an ISO 9660 image (through pycdlib, level 1 names, as the DICOM standard asks
    of CDs)."""
    import pycdlib
    from pydicom.fileset import FileSet

    with tempfile.TemporaryDirectory() as tmp:
        file_set = FileSet()
        for path in sorted(series.glob("*.dcm")):
            ds = pydicom.dcmread(path)
            for keyword, value in (("StudyDate", "20000101"), ("StudyTime", "120000"), ("StudyID", "1")):
                setattr(ds, keyword, ds.get(keyword) or value)  # what a DICOMDIR's study record must hold
            file_set.add(ds)
        file_set.write(tmp)
        disc = pycdlib.PyCdlib()
        disc.new(interchange_level=1)
        for path in sorted(Path(tmp).rglob("*")):
            name = "/" + path.relative_to(tmp).as_posix().upper()
            if path.is_dir():
                disc.add_directory(name)
            else:
                disc.add_file(str(path), name + ".;1")
        disc.write(str(image))
        disc.close()
    return image


def test_a_dicom_cd_image_reads_as_its_series_and_its_copy_is_removed(tmp_path, private_temp):
    image = dicom_cd_image(sample_case_path(), tmp_path / "patient cd.iso")
    (tmp_path / "named otherwise").write_bytes(image.read_bytes())  # known by its volume descriptor too
    for given in (image, tmp_path / "named otherwise"):
        volume = read_input_volume(given)
        _same_volume(volume, read_input_volume(sample_case_path()))
        assert volume.source.startswith(str(given) + "/PT000000/ST000000/SE000000 (series 103"), volume.source
    assert not list(private_temp.glob("liverlesionseg-unpacked-*"))  # (pydicom's FileSet keeps a folder there)


def test_a_folder_holding_an_archive_and_no_dicom_names_it(tmp_path):
    """The folder a download was saved into given instead of the download itself (before: "no DICOM
    files found among its 2 files (e.g. notes.txt)")."""
    folder = tmp_path / "Downloads"
    folder.mkdir()
    zip_folder(sample_case_path(), folder / "study.zip")
    (folder / "notes.txt").write_text("CT of 12 March")
    with pytest.raises(InputError) as raised:
        find_input_ct(folder)
    assert str(raised.value) == (f"{folder}: no DICOM files found among its 2 files, but an archive or disc image, "
                                 f"study.zip. Give the archive itself ({folder / 'study.zip'}).")


def test_an_archive_given_to_train_or_evaluate_is_told_to_be_unpacked(data_dir, tmp_path):
    """A labelled case (or a dataset, as Task03_Liver.tar is downloaded) given packed: cases are read from
    folders (before: "a single file is a case only as a LiTS, CT-ORG, … image/label map", with the
    list of layouts)."""
    from LiverLesionSegLib.io.cases import find_cases

    archive = zip_folder(data_dir / "ircadb" / "3Dircadb1.7", tmp_path / "case.zip")
    with pytest.raises(InputError) as raised:
        find_cases([archive])
    assert str(raised.value) == (f"{archive}: is an archive or disc image: cases for training and evaluation are "
                                 f"read from folders. Unpack it and give the folder of its cases.")


def test_a_disc_image_with_rock_ridge_names_and_a_link_reads_by_its_long_names(tmp_path):
    """A disc written with Rock Ridge (long names, as Linux tools write discs) holding the series and a
    symbolic link to one of its slices: read by the long names, the link left out (it names a file on
    the disc)."""
    import pycdlib

    disc = pycdlib.PyCdlib()
    disc.new(interchange_level=3, rock_ridge="1.09")
    disc.add_directory("/SERIES", rr_name="HCC_006 series")
    slices = sorted(sample_case_path().glob("*.dcm"))
    for n, path in enumerate(slices):
        disc.add_file(str(path), f"/SERIES/S{n:05d}.DCM;1", rr_name=path.name)
    disc.add_symlink("/SERIES/FIRST.;1", rr_symlink_name="first.dcm", rr_path=slices[0].name)
    disc.write(str(tmp_path / "linux.iso"))
    disc.close()
    volume = read_input_volume(tmp_path / "linux.iso")
    _same_volume(volume, read_input_volume(sample_case_path()))
    assert volume.source.startswith(str(tmp_path / "linux.iso" / "HCC_006 series")), volume.source


def test_a_disc_image_cut_short_is_refused_and_one_without_its_padding_read(tmp_path):
    """A copy that ends within its last file (pycdlib gives that file out short without a word) is
    refused; one that lacks only the padding after its last file, as some disc-copying tools write
    them, is read."""
    import pycdlib

    image = dicom_cd_image(sample_case_path(), tmp_path / "disc.iso")
    disc = pycdlib.PyCdlib()
    disc.open(str(image))
    files_end = max(record.extent_location() * 2048 + record.get_data_length()
                    for folder, _, names in disc.walk(iso_path="/")
                    for record in (disc.get_record(iso_path=f"{folder.rstrip('/')}/{n}") for n in names))
    disc.close()
    data = image.read_bytes()
    assert files_end < len(data)
    (tmp_path / "unpadded.iso").write_bytes(data[:files_end])
    _same_volume(read_input_volume(tmp_path / "unpadded.iso"), read_input_volume(sample_case_path()))
    (tmp_path / "cut.iso").write_bytes(data[:files_end - 100])
    with pytest.raises(InputError, match=r"cut\.iso: is a damaged CD or DVD image \(it is cut short: 1 of the 63 "
                       r"files on it ends beyond it\)"):
        read_input_volume(tmp_path / "cut.iso")


@pytest.mark.parametrize("kept, told", [
    (21225, "it holds 21225 bytes, where its first volume descriptor alone ends at byte 34816"),
    (41550, "its 41550 bytes are no whole number of 2048-byte sectors")])
def test_a_disc_image_cut_before_its_files_is_told_cut_short(tmp_path, kept, told):
    """Found by `tools/damage_inputs.py --kind disc`, seeds 37026 and 37038: pycdlib's and Python's words,
    "Failed to read entire volume descriptor", "index out of range"."""
    data = dicom_cd_image(sample_case_path(), tmp_path / "disc.iso").read_bytes()
    (tmp_path / "cut.iso").write_bytes(data[:kept])
    with pytest.raises(InputError, match=rf"cut\.iso: is a damaged CD or DVD image \(it is cut short: {told}\)"):
        read_input_volume(tmp_path / "cut.iso")


def test_archives_and_compressed_files_of_other_kinds_are_named(tmp_path):
    """A 7-Zip or RAR archive, or a slice compressed on its own, is told as what it is, with what to do
    (before: "is neither a DICOM, NIfTI or NRRD image nor a folder"); a file that only starts with zero
    bytes is no longer taken for an empty tar archive."""
    slice_bytes = next(sample_case_path().glob("*.dcm")).read_bytes()
    (tmp_path / "study.7z").write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(64))  # signature and version
    (tmp_path / "study.rar").write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(64))
    (tmp_path / "slice.dcm.gz").write_bytes(gzip.compress(slice_bytes))
    (tmp_path / "zeros").write_bytes(bytes(2048) + slice_bytes)
    cases = {"study.7z": "is a 7-Zip archive, which this tool does not unpack. Unpack it",
             "study.rar": "is a RAR archive, which this tool does not unpack. Unpack it",
             "slice.dcm.gz": "is a gzip-compressed file, which this tool does not unpack. Decompress it",
             "zeros": "is neither a DICOM, NIfTI or NRRD image nor a folder"}
    for name, message in cases.items():
        with pytest.raises(InputError) as raised:
            find_input_ct(tmp_path / name)
        assert f"{tmp_path / name}: {message}" in str(raised.value), str(raised.value)


def test_a_dicom_seg_over_a_zipped_series(data_dir, model_path, tmp_path):
    """`segment study.zip -o result.dcm`: the SEG lies on the archive's series (its UIDs), and reads
    back over the same series unpacked."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    series = find_input_ct(folder).series.folder
    archive = zip_folder(series, tmp_path / "study.zip")
    assert main(["segment", str(archive), "-o", str(tmp_path / "result.dcm"), "--model", str(model_path),
                 "--progress", "none"]) == 0
    seg = pydicom.dcmread(tmp_path / "result.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == find_input_ct(folder).series.uid
    masks = read_seg_masks(tmp_path / "result.dcm", read_input_volume(series))
    assert masks["liver"].sum() > 10_000


def test_an_archive_larger_than_the_free_disk_is_refused_before_unpacking(tmp_path, monkeypatch):
    """The temporary folder on a real 16 MiB disk (a tmpfs; skipped without the right to mount one):
    the sample series unpacks to more, so nothing is unpacked and the message says how much."""
    from bad_inputs import _run, _unmount
    from LiverLesionSegLib.errors import ResourceError

    disk = tmp_path / "disk"
    disk.mkdir()
    if not _run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)):
        pytest.skip("no right to mount a tmpfs here")
    try:
        archive = zip_folder(sample_case_path(), tmp_path / "study.zip")
        monkeypatch.setattr(tempfile, "tempdir", str(disk))  # where TMPDIR would point
        with pytest.raises(ResourceError) as raised:
            find_input_ct(archive)
        assert "study.zip: the zip archive unpacks to" in str(raised.value).lower()
        assert f"free in the temporary folder {disk}" in str(raised.value) and not list(disk.iterdir())
        assert " MB free" in str(raised.value) and "0.0 G" not in str(raised.value)  # was "0.0 GiB, more than 0.0"
    finally:
        _unmount(disk)()
