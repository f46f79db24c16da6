"""`tools/damage_inputs.py`: its damaged copies are what it says, and its judge of the command's
contract catches each way of breaking it."""

from __future__ import annotations

import copy
import os
import random
import sys
from pathlib import Path

import nibabel as nib
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))

import damage_inputs  # noqa: E402
from damage_inputs import Outcome  # noqa: E402

REFUSAL = "liverlesionseg: error: ct.nii.gz: the file is truncated. Export it again."


@pytest.mark.parametrize("outcome, expected", [
    (Outcome(0, "", 0, [], "", ["result.seg.nrrd"]), []),
    (Outcome(0, "", 3, [REFUSAL], REFUSAL, []), []),
    (Outcome(0, "", 1, ["liverlesionseg: error: internal error (KeyError: 'x')"], "internal error", []),
     ["exit status 1", "an internal error"]),
    (Outcome(0, "", "raised", [], "Traceback (most recent call last):", []),
     ["exit status raised", "an internal error", "0 error lines"]),
    (Outcome(0, "", 3, [REFUSAL, REFUSAL], REFUSAL, []), ["2 error lines"]),
    (Outcome(0, "", 4, [REFUSAL], REFUSAL, ["result.seg.nrrd"]), ["left result.seg.nrrd after a refusal"]),
    (Outcome(0, "", 3, [REFUSAL], f"{REFUSAL}\n{damage_inputs.NATIVE_MARK}DimSize required and not defined.", []),
     ["a C library's lines beside the error line"]),
])
def test_each_breach_of_the_contract_is_caught(outcome, expected):
    assert outcome.breaches() == expected


def test_each_dicom_damage_is_in_the_dataset_it_names():
    """Sixty seeds on a real slice: a count, code or UID set holds the value told, a deletion removes
    the element, and what is told is never empty but where nothing was there to delete."""
    slice_path = sorted(damage_inputs.sample_case_path().glob("*.dcm"))[0]
    original = pydicom.dcmread(slice_path)
    checked = 0
    for seed in range(60):
        ds = copy.deepcopy(original)
        told = damage_inputs.damage_dataset(ds, random.Random(seed))
        if told.startswith("no "):
            assert told[3:] not in ds
            checked += 1
        elif "=" in told and not told.startswith(("PixelData", *damage_inputs.NUMBER_TAGS)):
            tag, value = told.split("=", 1)
            assert str(ds.get(tag)) == value, told
            checked += 1
        elif told.startswith("PixelData"):
            assert ds.get("PixelData") != original.PixelData
            checked += 1
    assert checked >= 30


def test_pixel_data_already_deleted_is_told_as_no_damage():
    """Two damages of one file: the second may find the pixel data the first deleted."""
    ds = pydicom.dcmread(sorted(damage_inputs.sample_case_path().glob("*.dcm"))[0])
    del ds.PixelData
    told = {damage_inputs.damage_dataset(ds, random.Random(seed)) for seed in range(60)}
    assert "" in told and not any(t.startswith("PixelData") for t in told)


def test_a_damaged_dicom_copy_holds_the_eight_slices(tmp_path):
    told = damage_inputs.damaged_dicom(tmp_path / "slices", random.Random(0))
    assert told.startswith("dicom, ") and len(list((tmp_path / "slices").glob("*.dcm"))) == damage_inputs.SLICES


def test_a_nifti_damage_is_in_its_header(tmp_path):
    for seed in range(20):
        path = tmp_path / f"seed{seed}.nii.gz"
        told = damage_inputs.damaged_nifti(path, random.Random(seed))
        if told.startswith("nifti: datatype=") and ";" not in told and "cut" not in told:
            assert int(nib.load(str(path)).header["datatype"]) == int(told.split("=")[1])
            return
    pytest.fail("no seed of 20 changed the data type alone")


def test_the_undamaged_objects_measure_their_two_lesions():
    """The judge of a measured copy: the result of the undamaged object. The SEG, the RT structure set
    and the .seg.nrrd (each written by `measure`, read back by it) give one: the two discs drawn, in
    the ellipse of liver."""
    result = damage_inputs.undamaged_table("seg")
    assert result == damage_inputs.undamaged_table("rtstruct") == damage_inputs.undamaged_table("segnrrd")
    *table, liver = result.splitlines()
    assert [row.split(",")[1] for row in table[1:]] == ["1", "2"]
    assert liver.startswith("Liver: ") and "Lesions: 2," in liver


@pytest.mark.parametrize("kind", damage_inputs.DICOM_OBJECTS)
def test_each_element_damage_changes_the_object(kind, tmp_path):
    """Forty seeds: what is told was done (the dataset differs from the undamaged one), in nested
    sequences too."""
    original = pydicom.dcmread(damage_inputs.write_object(kind, tmp_path))
    nested = 0
    for seed in range(40):
        ds = copy.deepcopy(original)
        told = damage_inputs.damage_element(ds, random.Random(seed))
        if told:
            assert ds != original, told
            nested += told.split("=")[0].split(":")[0].removeprefix("no ").strip() not in original
    assert nested >= 10  # most elements of a SEG or structure set lie in its sequences


def test_tables_are_the_same_to_a_millionth():
    table = damage_inputs.undamaged_table("seg").split("Liver:")[0]
    rows = table.splitlines()
    cells = rows[1].split(",")
    cells[3] = str(float(cells[3]) * (1 + 1e-9))  # a volume written by another writer's rounding
    assert damage_inputs.same_table("\n".join([rows[0], ",".join(cells), *rows[2:]]), table)
    cells[3] = str(float(cells[3]) * 1.01)
    assert not damage_inputs.same_table("\n".join([rows[0], ",".join(cells), *rows[2:]]), table)
    assert not damage_inputs.same_table("\n".join(rows[:2]), table)  # a lesion fewer


def test_a_damaged_object_is_told_as_measured_on_another_table(tmp_path, monkeypatch):
    """A SEG whose lesion frames name the liver's segment is measured (it is a valid SEG) into another
    table, which the run's outcome carries for the tool to flag."""
    monkeypatch.setattr(damage_inputs, "DAMAGE", {**damage_inputs.DAMAGE, "seg": (_lesions_as_liver, "case")})
    outcome = damage_inputs.run_seed("seg", 0)
    assert outcome.exit_code == 0 and outcome.table is not None
    assert not damage_inputs.same_table(outcome.table, damage_inputs.undamaged_table("seg"))


def _lesions_as_liver(folder, rng):
    path = damage_inputs.write_object("seg", folder)
    ds = pydicom.dcmread(path)
    for item in ds.PerFrameFunctionalGroupsSequence:
        item.SegmentIdentificationSequence[0].ReferencedSegmentNumber = 1
    ds.save_as(path)
    return "seg: every frame of segment 1"


@pytest.mark.parametrize("kind", sorted(damage_inputs.DAMAGE))
def test_a_few_damaged_copies_keep_the_contract(kind):
    """Three seeds of each kind through the real command (segment with the bundled model, or measure)."""
    for seed in range(3):
        outcome = damage_inputs.run_seed(kind, seed)
        assert outcome.damage and outcome.breaches() == [], (outcome.damage, outcome.stderr)


def test_a_seg_nrrd_damage_is_a_line_of_its_header(tmp_path):
    """Twenty seeds: each value told set is a line of the damaged header, each field told gone is no
    longer one."""
    checked = 0
    for seed in range(20):
        told = damage_inputs.damaged_seg_nrrd(tmp_path / str(seed), random.Random(seed))
        header = (tmp_path / str(seed) / "segmentation.seg.nrrd").read_bytes().split(b"\n\n")[0]
        lines = header.decode(errors="replace").split("\n")
        for damage in told.removeprefix("segnrrd: ").split("; "):
            if damage.startswith("no "):
                assert not any(line.startswith((damage[3:] + ":=", damage[3:] + ": ")) for line in lines), told
                checked += 1
            elif not any(words in damage or words in told for words in ("cut at byte", "bytes changed", "bit flipped")):
                assert damage in lines, told
                checked += 1
    assert checked >= 15


def test_what_a_c_library_prints_is_caught_and_marked(monkeypatch):
    """ITK's MetaImage reader printed its complaints straight to file descriptor 2, past Python's
    stderr: the run's stderr holds them, each marked."""
    def main(argv):
        os.write(2, b"DimSize required and not defined.\n")
        print("liverlesionseg: error: ct.mha: cannot read the image header.", file=sys.stderr)
        return 3

    monkeypatch.setattr(damage_inputs.cli, "main", main)
    code, stderr, _ = damage_inputs.run_command(["segment", "ct.mha"])
    assert code == 3
    assert stderr.splitlines() == ["liverlesionseg: error: ct.mha: cannot read the image header.",
                                   f"{damage_inputs.NATIVE_MARK}DimSize required and not defined."]


def test_a_metaimage_damage_is_a_line_of_its_header(tmp_path):
    """Twenty seeds: each value told set is a line of the damaged header, each field told gone is no
    longer one, and the data's line stays the last."""
    checked = 0
    for seed in range(20):
        path = tmp_path / f"{seed}.mha"
        told = damage_inputs.damaged_mha(path, random.Random(seed))
        if "cut at byte" in told or "bytes changed" in told or "bit flipped" in told:
            continue
        data = path.read_bytes()
        lines = data[:data.index(b"ElementDataFile = ")].decode().splitlines()
        last = {damage.removeprefix("no ").split(" = ")[0]: damage  # a later damage of a field is what holds
                for damage in told.removeprefix("mha: ").split("; ")}
        for field, damage in last.items():
            if damage.startswith("no "):
                assert not any(line.startswith(f"{field} =") for line in lines), told
            elif field != "ElementDataFile":
                assert damage in lines, told
            checked += 1
    assert checked >= 15


def test_the_undamaged_ircadb_case_is_evaluated_against_its_drawn_masks():
    """The judge of `--kind ircadb`: `evaluate` on the case made of the eight slices reads the ellipse
    and the two discs drawn as its liver and lesion masks, on every slice."""
    metrics = damage_inputs.undamaged_table("ircadb").splitlines()
    row = dict(zip(metrics[0].split(","), metrics[1].split(",")))
    drawn = damage_inputs.shape_labels(damage_inputs._sample_volume()).array
    assert int(row["liver_true_voxels"]) == int((drawn >= 1).sum())
    assert int(row["lesion_true_voxels"]) == int((drawn == 2).sum()) and row["true_lesions"] == "2"


def test_a_lost_mask_file_is_another_evaluation_told_on_stderr(monkeypatch):
    """A mask slice's file removed: evaluated against a liver with a hole, and the warning is the line
    the tool shows beside "ANOTHER TABLE" (the undamaged run printed no such line)."""
    def remove_one(folder, rng):
        damage_inputs.write_ircadb_case(folder)
        (folder / "MASKS_DICOM" / "liver" / "image_3").unlink()
        return "ircadb: liver/image_3 removed"

    monkeypatch.setattr(damage_inputs, "DAMAGE", {**damage_inputs.DAMAGE, "ircadb": (remove_one, "case")})
    outcome = damage_inputs.run_seed("ircadb", 0)
    undamaged = damage_inputs.undamaged_run("ircadb")
    assert outcome.exit_code == 0 and not damage_inputs.same_table(outcome.table, undamaged.table)
    new_lines = [line for line in outcome.said if line not in undamaged.said]
    assert new_lines[0].startswith("TMP/case/MASKS_DICOM/liver holds mask slices for 7 of the CT's 8 slices")


def test_the_undamaged_chaos_case_is_evaluated_against_its_drawn_liver():
    """The judge of `--kind chaos`: `evaluate` on the CHAOS case made of the eight slices reads the ellipse
    drawn as its liver, discs and all (CHAOS labels no lesion), on every slice, and finds it free of lesions."""
    metrics = damage_inputs.undamaged_table("chaos").splitlines()
    row = dict(zip(metrics[0].split(","), metrics[1].split(",")))
    drawn = damage_inputs.shape_labels(damage_inputs._sample_volume()).array
    assert row["name"] == "chaos-case" and int(row["liver_true_voxels"]) == int((drawn >= 1).sum())
    assert int(row["lesion_true_voxels"]) == 0 and row["true_lesions"] == "0" and row["lesions_segmented"] == "True"


def test_the_undamaged_scene_measures_the_objects_lesions():
    """The judge of `--kind scene`: the bundle's segmentation, made with the real MRML classes from
    the same drawing, measures as the DICOM SEG does (the case named after the bundle)."""
    pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    scene, seg = (damage_inputs.undamaged_table(kind) for kind in ("scene", "seg"))
    assert "\nstudy,1," in scene and damage_inputs.same_table(scene.replace("\nstudy,", "\nslices,"), seg)


def test_a_scene_damage_is_in_the_bundle(tmp_path):
    """Thirty seeds: a data file told removed is not in the bundle, a value told set is in its scene
    file, a node told removed is not."""
    pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    import zipfile

    checked = 0
    for seed in range(30):
        path = tmp_path / f"{seed}.mrb"
        told = damage_inputs.damaged_scene(path, random.Random(seed))
        with zipfile.ZipFile(path) as bundle:
            names = bundle.namelist()
            scene = bundle.read(next(n for n in names if n.endswith(".mrml"))).decode()
        for damage in told.removeprefix("scene: ").split("; "):
            if damage.endswith(".nrrd removed"):
                assert not any(n.endswith("/" + damage.removesuffix(" removed")) for n in names), told
            elif "=" in damage and damage.endswith("'") and len(damage.split("=", 1)[1]) < 60:
                key, value = damage.split("> ", 1)[1].split("=", 1)
                assert f'{key}="{value[1:-1]}"' in scene, told
            else:
                continue
            checked += 1
    assert checked >= 10


def test_a_checkpoint_damage_is_in_its_metadata(tmp_path):
    """Twenty seeds: a setting told set holds that value in the copy's metadata, a setting told gone
    is not there, and the tensors are the bundled model's."""
    import json

    from safetensors import safe_open

    bundled, _ = damage_inputs._bundled_model()
    checked = 0
    for seed in range(20):
        told = damage_inputs.damaged_checkpoint(tmp_path / str(seed), random.Random(seed))
        if "cut at byte" in told or "bytes changed" in told or "bit flipped" in told:
            continue
        with safe_open(str(tmp_path / str(seed) / "model.safetensors"), framework="pt") as f:
            config = json.loads(f.metadata()["meta"])["config"]
            assert set(f.keys()) == set(bundled)
        for damage in told.removeprefix("checkpoint: ").split("; "):
            if damage.startswith("no "):
                section, setting = damage[3:].split(".")
                assert setting not in config[section], told
                checked += 1
            elif not damage.startswith("format"):
                name, value = damage.split("=", 1)
                section, setting = name.split(".")
                assert repr(config[section][setting]) == value or value == "nan", told
                checked += 1
    assert checked >= 10


def test_the_summary_counts_other_results_and_those_nothing_was_said_of(monkeypatch, capsys):
    """Two seeds of a lesion frame marked as of the liver's segment (a valid SEG, so measured with
    nothing said): both counted with another table, and as unsaid."""
    monkeypatch.setattr(damage_inputs, "DAMAGE", {**damage_inputs.DAMAGE, "seg": (_lesions_as_liver, "case")})
    assert damage_inputs.main(["--kind", "seg", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all("ANOTHER TABLE, nothing new on stderr" in line for line in lines[:2])
    assert lines[-1] == ("2 exited 0 (2 with another lesion table, 2 of them with nothing new on stderr), 0 refused, "
                         "0 broke the contract")


@pytest.mark.parametrize("form", [*sorted(damage_inputs.ARCHIVE_FORMATS), "iso"])
def test_each_archive_form_holds_the_slices_in_the_same_bytes_each_time(tmp_path, form):
    """A seed damages the same bytes on every run (no file time in the archive; a CD image's dates are
    pycdlib's, its length the same), and the undamaged archive reads as the eight slices."""
    from LiverLesionSegLib.io.cases import read_input_volume

    archive, again = (damage_inputs.write_archive(tmp_path / name, form).read_bytes() for name in "ab")
    assert len(archive) == len(again) if form == "iso" else archive == again
    archive = tmp_path / "a" / f"study.{form.split(',')[0]}"
    assert read_input_volume(archive).shape[0] == damage_inputs.SLICES
