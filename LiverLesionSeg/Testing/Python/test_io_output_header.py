"""What the DICOM outputs (SEG, SR, RT structure set) copy from the CT's header. Its character set: as
Japanese, Korean and Chinese scanners write it, each output is made and holds the patient's name as
the CT does (before, highdicom refused "\\ISO 2022 IR 87", "\\ISO 2022 IR 149", "\\ISO 2022 IR 58" and
"ISO_IR 6", and no SEG or SR could be written for such a CT). Its patient and study attributes, which
anonymisers remove and some systems misspell, and its orientation, written per slice with rounding
noise or per frame: the outputs are written all the same."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from bad_inputs import copy_slices, multiframe_file
from LiverLesionSegLib.io.cases import find_input_ct
from LiverLesionSegLib.io.output_header import (PATIENT_AND_STUDY_TYPE_2, UTF8, declared_character_set,
                                                make_patient_and_study_writable, output_character_set)
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg
from LiverLesionSegLib.io.dicomsr_write import save_lesion_report
from LiverLesionSegLib.io.rtstruct_write import save_rtstruct
from LiverLesionSegLib.lesions import lesion_table

# (the CT's Specific Character Set, a patient name in it, what the outputs declare)
CHARACTER_SETS = {
    "Japanese, Kanji": (["", "ISO 2022 IR 87"], "Yamada^Taro=山田^太郎=やまだ^たろう",
                        ["ISO 2022 IR 6", "ISO 2022 IR 87"]),
    "Japanese, Katakana and Kanji": (["ISO 2022 IR 13", "ISO 2022 IR 87"], "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
                                     ["ISO 2022 IR 13", "ISO 2022 IR 87"]),
    "Korean": (["", "ISO 2022 IR 149"], "Hong^Gildong=洪^吉洞=홍^길동", UTF8),
    "Chinese, GB 2312": (["", "ISO 2022 IR 58"], "Zhang^San=张^三", UTF8),
    "Chinese, GB 18030": ("GB18030", "Wang^Xiaodong=王^小东", "GB18030"),
    "default, spelled out": ("ISO_IR 6", "Doe^John", UTF8),
    "Latin-1": ("ISO_IR 100", "Müller^Jürgen", "ISO_IR 100"),
    "Cyrillic": ("ISO_IR 144", "Иванов^Иван", "ISO_IR 144"),
    "UTF-8, misspelled": ("UTF-8", "Müller^山田", UTF8),  # pydicom reads it; highdicom refuses it
}


def _header(character_set) -> pydicom.Dataset:
    header = pydicom.Dataset()
    if character_set is not None:
        header.SpecificCharacterSet = character_set
    return header


@pytest.mark.parametrize("kind", sorted(CHARACTER_SETS))
def test_each_character_set_is_kept_where_highdicom_writes_it_else_utf8(kind):
    character_set, _, declared = CHARACTER_SETS[kind]
    assert output_character_set([_header(character_set)]) == declared


def test_an_empty_first_value_is_the_default_repertoire_and_none_declared_stays_none():
    assert declared_character_set(_header(["", "ISO 2022 IR 87"])) == ["ISO 2022 IR 6", "ISO 2022 IR 87"]
    assert declared_character_set(_header("ISO_IR 100 ")) == ["ISO_IR 100"]
    # undeclared text is written back as it was read: Latin-1 or UTF-8, no guess
    assert output_character_set([_header(None)]) is None and output_character_set([]) is None


def _write_all(folder: Path) -> list[str]:
    """A SEG, an SR and an RT structure set over the series in `folder/ct`, written beside it."""
    found = find_input_ct(folder / "ct")
    ct = found.read()
    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    labelled = ct.with_array(labels)
    save_dicom_seg(folder / "seg.dcm", labelled, found.series, ["m"])
    save_lesion_report(folder / "sr.dcm", lesion_table(ct.with_array(labels == 2), ct), 100.0, found.series, ["m"])
    save_rtstruct(folder / "rt.dcm", labelled, found.series, ["m"])
    return ["seg.dcm", "sr.dcm", "rt.dcm"]


@pytest.mark.parametrize("kind", ["Japanese, Kanji", "Korean", "default, spelled out", "UTF-8, misspelled"])
def test_seg_report_and_structure_set_hold_the_patients_name(kind, data_dir, tmp_path):
    character_set, name, declared = CHARACTER_SETS[kind]
    for path in copy_slices(data_dir, tmp_path / "ct"):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet, ds.PatientName = character_set, name
        ds.save_as(path)
    for output in _write_all(tmp_path):
        written = pydicom.dcmread(tmp_path / output)
        assert written.SpecificCharacterSet == declared, output
        assert str(written.PatientName) == name, output


# --- the patient and study attributes ---------------------------------------------------------------

def test_patient_and_study_attributes_are_given_dicoms_form_or_left_empty(caplog):
    header = pydicom.Dataset()
    header.PatientName, header.PatientSex, header.PatientBirthDate = "Doe^John", "Male", "19700230"
    header.StudyDate, header.StudyTime, header.StudyID = "2019-03-04", "12:30:45.5", "A LONG STUDY ID 123"
    other = pydicom.Dataset()  # every attribute removed
    with caplog.at_level("WARNING", logger="LiverLesionSeg"):
        make_patient_and_study_writable([header, other])
    assert (header.StudyDate, header.StudyTime, header.PatientSex) == ("20190304", "123045.5", "M")
    assert header.PatientBirthDate == "" and "PatientBirthDate '19700230'" in caplog.text
    assert (str(header.PatientName), header.StudyID) == ("Doe^John", "A LONG STUDY ID 123")  # as they were
    assert all(other.get(keyword) == "" for keyword in PATIENT_AND_STUDY_TYPE_2)


def test_outputs_are_written_over_a_series_an_anonymiser_stripped(data_dir, tmp_path):
    """Before: "cannot make a DICOM SEG on this CT series ('FileDataset' object has no attribute
    'PatientID')" after the whole segmentation, and likewise for a date written 2019-03-04."""
    for path in copy_slices(data_dir, tmp_path / "ct"):
        ds = pydicom.dcmread(path)
        for keyword in ("PatientID", "PatientName", "PatientBirthDate", "StudyTime"):
            delattr(ds, keyword)
        ds.StudyDate, ds.PatientSex = "2019-03-04", "female"
        ds.save_as(path)
    for output in _write_all(tmp_path):
        written = pydicom.dcmread(tmp_path / output)
        assert (written.PatientID, str(written.PatientName), written.StudyTime) == ("", "", ""), output
        assert (written.StudyDate, written.PatientSex) == ("20190304", "F"), output


# --- the orientation --------------------------------------------------------------------------------

def _per_frame_orientation(path: Path) -> None:
    """The multi-frame file's orientation moved from its shared functional groups into each frame's,
    as some scanners write it."""
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    for frame in ds.PerFrameFunctionalGroupsSequence:
        frame.PlaneOrientationSequence = copy.deepcopy(shared.PlaneOrientationSequence)
    del shared.PlaneOrientationSequence
    ds.save_as(path)


@pytest.mark.parametrize("stored", ["slices with rounding noise", "frames each with their own"])
def test_an_orientation_written_per_slice_or_per_frame_gets_its_outputs(stored, data_dir, tmp_path):
    """Before: "cannot make a DICOM SEG on this CT series (Source images must have a shared
    orientation.)": highdicom takes the orientation as shared only where it is equal to the last digit
    in every slice, or lies in a multi-frame file's shared functional groups."""
    slices = copy_slices(data_dir, tmp_path / "slices")
    if stored == "slices with rounding noise":
        for n, path in enumerate(slices):
            ds = pydicom.dcmread(path)
            ds.ImageOrientationPatient = [1.0, 1e-6 * n, 0.0, 0.0, 1.0, -1e-6 * n]
            ds.save_as(path)
        shutil.copytree(tmp_path / "slices", tmp_path / "ct")
    else:
        _per_frame_orientation(multiframe_file(slices, tmp_path / "ct" / "enhanced.dcm"))
    assert _write_all(tmp_path)
    ct = find_input_ct(tmp_path / "ct").read()
    masks = read_seg_masks(tmp_path / "seg.dcm", ct)
    lesion = np.zeros(ct.shape, bool)
    lesion[2:4, 200:240, 100:140] = True
    assert np.array_equal(masks["lesion"], lesion)  # each frame on its slice
    assert masks["liver"][1:5, 150:330, 60:260].sum() == masks["liver"].sum() == 4 * 180 * 200 - lesion.sum()


def test_slices_without_a_slice_thickness_get_the_step_between_them(data_dir, tmp_path):
    """Before: "cannot make a DICOM SEG on this CT series ('FileDataset' object has no attribute
    'SliceThickness')" (type 2 in a CT: it may be left out)."""
    for path in copy_slices(data_dir, tmp_path / "ct"):
        ds = pydicom.dcmread(path)
        del ds.SliceThickness
        ds.save_as(path)
    _write_all(tmp_path)
    measures = pydicom.dcmread(tmp_path / "seg.dcm").SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == pytest.approx(find_input_ct(tmp_path / "ct").read().spacing[2])


def test_the_outputs_of_one_result_read_the_headers_once_and_warn_once(data_dir, tmp_path, caplog):
    """A SEG, an SR and an RT structure set written together: one warning about an unreadable birth
    date, not one per output (the headers are read once for all three)."""
    from LiverLesionSegLib.io.dicom_export import write_together

    for path in copy_slices(data_dir, tmp_path / "ct"):
        ds = pydicom.dcmread(path)
        ds.PatientBirthDate = "19700230"
        ds.save_as(path)
    found = find_input_ct(tmp_path / "ct")
    ct = found.read()
    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    with caplog.at_level("WARNING", logger="LiverLesionSeg"):
        write_together(ct.with_array(labels), found.series, ["m"], output=tmp_path / "seg.dcm",
                       tables=[tmp_path / "sr.dcm"], measured=("ct", lesion_table(ct.with_array(labels == 2), ct)),
                       structures=tmp_path / "rt.dcm", liver_ml=100.0)
    assert caplog.text.count("PatientBirthDate '19700230'") == 1
    assert all(pydicom.dcmread(tmp_path / name).PatientBirthDate == "" for name in ("seg.dcm", "sr.dcm", "rt.dcm"))
