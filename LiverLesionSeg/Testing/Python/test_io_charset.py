"""The character set of the DICOM outputs (SEG, SR, RT structure set) over a CT series whose text is
not ASCII: as Japanese, Korean and Chinese scanners write it, each output is made and holds the
patient's name as the CT does (before, highdicom refused "\\ISO 2022 IR 87", "\\ISO 2022 IR 149",
"\\ISO 2022 IR 58" and "ISO_IR 6", and no SEG or SR could be written for such a CT)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from bad_inputs import copy_slices
from LiverLesionSegLib.io.cases import find_input_ct
from LiverLesionSegLib.io.charset import UTF8, declared_character_set, output_character_set
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


@pytest.mark.parametrize("kind", ["Japanese, Kanji", "Korean", "default, spelled out"])
def test_seg_report_and_structure_set_hold_the_patients_name(kind, data_dir, tmp_path):
    character_set, name, declared = CHARACTER_SETS[kind]
    for path in copy_slices(data_dir, tmp_path / "ct"):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet, ds.PatientName = character_set, name
        ds.save_as(path)
    found = find_input_ct(tmp_path / "ct")
    ct = found.read()
    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:330, 60:260] = 1
    labels[2:4, 200:240, 100:140] = 2
    labelled = ct.with_array(labels)
    save_dicom_seg(tmp_path / "seg.dcm", labelled, found.series, ["m"])
    save_lesion_report(tmp_path / "sr.dcm", lesion_table(ct.with_array(labels == 2), ct), 100.0, found.series, ["m"])
    save_rtstruct(tmp_path / "rt.dcm", labelled, found.series, ["m"])
    for output in ("seg.dcm", "sr.dcm", "rt.dcm"):
        written = pydicom.dcmread(tmp_path / output)
        assert written.SpecificCharacterSet == declared, output
        assert str(written.PatientName) == name, output
