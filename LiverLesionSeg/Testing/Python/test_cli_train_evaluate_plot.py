"""The train, evaluate and plot commands end to end on real cases."""

import csv
import json

import matplotlib.image
import pytest
import SimpleITK as sitk

import bad_inputs
from LiverLesionSegLib.checkpoint import read_metadata
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.io.cases import find_cases, find_input_ct, load_case
from LiverLesionSegLib.io.dicomseg_write import save_dicom_seg


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """A short training run through the command line, validated on RadCTTACEomics_0697."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", str(data_dir / "ircadb" / "3Dircadb1.17"), str(data_dir / "tace" / "RadCTTACEomics_0697"),
                 "--validate", "RadCTTACEomics_0697", "--out", str(out), "--cycles", "1", "--epochs", "2",
                 "--max-slices-per-epoch", "32", "--pos-weight", "1", "5", "--tversky-alpha", "0.4",
                 "--synthetic-lesions", "0.5", "--synthetic-halo", "0.4", "--masses-beside-liver", "0.25",
                 "--mirrored-lesions", "0.3", "--pasted-lesions", "0.2", "--context-slices", "1", "--context-mm", "2.5",
                 "--thick-slices-mm", "5", "--progress", "none"])
    assert code == 0
    return out


def test_train_writes_checkpoints_history_plots_and_the_settings_given(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"model.safetensors", "last.safetensors", "cycle-01.safetensors", "history.json", "config.json",
            "loss.png", "dice.png"} <= names
    config, state = read_metadata(run_dir / "model.safetensors")
    assert config.loss.bce_pos_weight == (1.0, 5.0) and config.loss.tversky_alpha == 0.4
    assert config.augment.synthetic_lesions == 0.5 and config.augment.masses_beside_liver == 0.25
    assert config.augment.synthetic_halo_share == 0.4 and config.augment.mirrored_lesions == 0.3
    assert config.augment.pasted_lesions == 0.2
    assert config.preprocess.context_slices == 1 and config.preprocess.context_mm == 2.5
    assert config.augment.thick_slices_mm == 5.0
    assert config.train.validate == ["RadCTTACEomics_0697"] and state["train_cases"] == ["3Dircadb1.17"]
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert all(e["val_liver_dice"] is not None for e in history["epochs"])


def test_train_refuses_to_overwrite_a_run_and_resumes_it(run_dir, data_dir, capsys):
    before = (run_dir / "model.safetensors").read_bytes()
    code = main(["train", str(data_dir / "ircadb" / "3Dircadb1.17"), "--out", str(run_dir), "--progress", "none"])
    assert code == 6 and "already holds a training run" in capsys.readouterr().err
    assert (run_dir / "model.safetensors").read_bytes() == before
    code = main(["train", str(data_dir / "ircadb" / "3Dircadb1.17"), "--out", str(run_dir), "--resume",
                 str(run_dir / "last.safetensors"), "--lr", "0.1", "--progress", "none"])
    assert code == 3 and "cannot change when resuming" in capsys.readouterr().err


@pytest.mark.parametrize("history", [{}, None], ids=["empty", "missing"])
def test_resuming_a_finished_run_from_a_checkpoint_without_its_history(run_dir, data_dir, tmp_path, history, capsys):
    """Found changing each field of a checkpoint's training state in turn: nothing was left to train, and
    the run ended in "the training history holds no step losses", exit 3, after its models were written."""
    def without_history(metadata, meta):
        meta["state"].pop("history")
        if history is not None:
            meta["state"]["history"] = history

    checkpoint = bad_inputs.rewrite_checkpoint_metadata(run_dir / "last.safetensors", tmp_path / "last.safetensors",
                                                        without_history)
    code = main(["train", str(data_dir / "ircadb" / "3Dircadb1.17"), str(data_dir / "tace" / "RadCTTACEomics_0697"),
                 "--validate", "RadCTTACEomics_0697", "--out", str(tmp_path / "resumed"), "--resume",
                 str(checkpoint), "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "resumed" / "model.safetensors").is_file() and not (tmp_path / "resumed" / "loss.png").exists()


def test_evaluate_a_model_then_its_saved_predictions(run_dir, data_dir, tmp_path, capsys):
    case = str(data_dir / "tace" / "RadCTTACEomics_0697")
    code = main(["evaluate", case, "--model", str(run_dir / "model.safetensors"), "--out", str(tmp_path / "a"),
                 "--save-predictions", "--panels", "--progress", "none"])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    assert [r["name"] for r in rows] == ["RadCTTACEomics_0697"] and rows[0]["lesion_true_voxels"] == "728"
    report = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert report["summary"]["n_cases"] == 1 and "dice" in report["rules"]
    assert report["config"]["model"]["encoder"] == "resnet18"
    panel = matplotlib.image.imread(tmp_path / "a" / "RadCTTACEomics_0697.png")
    assert panel.shape[0] > 300 and panel.std() > 0.05
    # the saved label map measured again gives the same numbers
    code = main(["evaluate", case, "--predictions", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                 "--progress", "none"])
    assert code == 0
    again = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    for key in ("lesion_dice", "liver_dice", "lesion_pred_voxels", "liver_pred_voxels", "lesion_hd95_mm"):
        assert again[0][key] == rows[0][key], key
    capsys.readouterr()
    # the report given back where cases or a run belong: "holds no labelled case. Understood layouts: …" (a
    # paragraph), "is not a training history (no 'steps')", "is neither a training run … nor a CT"
    for command, given in (("evaluate", "a"), ("train", "a"), ("evaluate", "a/metrics.json"), ("plot", "a"),
                           ("plot", "a/metrics.json"), ("plot", "a/lesions.csv")):
        code = main([command, str(tmp_path / given), "--out", str(tmp_path / "c"), "--progress", "none"])
        wanted = "a training run or a case" if command == "plot" else "a labelled case"
        assert code == 3 and capsys.readouterr().err == (
            f"liverlesionseg: error: {tmp_path / given}: is a report that evaluate wrote (metrics.json), not {wanted}. "
            f"Give {wanted}; a report's saved label maps are read by evaluate CASES --predictions FOLDER.\n"), given
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("suffix", [".dcm", " SEG.dcm"])
def test_evaluate_reads_dicom_seg_predictions(data_dir, tmp_path, suffix):
    """A DICOM SEG named CASE.dcm (or "CASE SEG.dcm", as Slicer's export names it), made on the
    case's series: here the reference with its lesion drawn as liver, so the liver is perfect and
    the one lesion is missed."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    case = load_case(find_cases([folder])[0])
    labels = case.label_map()
    labels[labels == 2] = 1
    (tmp_path / "preds").mkdir()
    save_dicom_seg(tmp_path / "preds" / f"{case.name}{suffix}", case.ct.with_array(labels),
                   find_input_ct(folder).series, ["reader"])
    code = main(["evaluate", str(folder), "--predictions", str(tmp_path / "preds"), "--out", str(tmp_path / "r"),
                 "--progress", "none"])
    assert code == 0
    row = next(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert float(row["liver_dice"]) == 1.0 and float(row["lesion_dice"]) == 0.0
    assert row["lesion_true_voxels"] == "728" and row["lesion_pred_voxels"] == "0"


def test_evaluate_reads_metaimage_predictions(data_dir, tmp_path):
    """A label map named CASE.mha, as Grand Challenge's algorithms write them: the reference itself
    scores a Dice of 1."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    case = load_case(find_cases([folder])[0])
    (tmp_path / "preds").mkdir()
    sitk.WriteImage(case.ct.with_array(case.label_map()).to_sitk(), str(tmp_path / "preds" / f"{case.name}.mha"))
    assert main(["evaluate", str(folder), "--predictions", str(tmp_path / "preds"), "--out", str(tmp_path / "r"),
                 "--progress", "none"]) == 0
    row = next(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert float(row["liver_dice"]) == 1.0 and float(row["lesion_dice"]) == 1.0


def test_evaluate_without_a_prediction_for_a_case_says_so(data_dir, tmp_path, capsys):
    (tmp_path / "preds").mkdir()
    code = main(["evaluate", str(data_dir / "tace" / "RadCTTACEomics_0697"), "--predictions", str(tmp_path / "preds"),
                 "--out", str(tmp_path / "r"), "--progress", "none"])
    assert code == 3 and "no prediction for case RadCTTACEomics_0697" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # the report folder it made, still empty, is gone


def test_evaluate_with_two_predictions_for_a_case_does_not_choose_between_them(data_dir, tmp_path, capsys):
    """CASE.nii.gz and CASE.nrrd side by side (a result exported twice, or an old one left): scoring
    either could score the wrong one."""
    folder = data_dir / "tace" / "RadCTTACEomics_0697"
    case = load_case(find_cases([folder])[0])
    (tmp_path / "preds").mkdir()
    sitk.WriteImage(case.ct.with_array(case.label_map()).to_sitk(), str(tmp_path / "preds" / f"{case.name}.nii.gz"))
    sitk.WriteImage(case.ct.with_array(0 * case.label_map()).to_sitk(), str(tmp_path / "preds" / f"{case.name}.nrrd"))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "earlier.txt").write_text("the user's")
    code = main(["evaluate", str(folder), "--predictions", str(tmp_path / "preds"), "--out", str(tmp_path / "r"),
                 "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 3 and "holds 2 predictions for case RadCTTACEomics_0697" in error
    assert f"{case.name}.nii.gz" in error and f"{case.name}.nrrd" in error
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["earlier.txt"]  # a folder it did not make stays


def test_plot_into_a_path_that_is_a_file_says_so(run_dir, tmp_path, capsys):
    (tmp_path / "p").write_text("a file")
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "p"), "--progress", "none"]) == 6
    assert "p: is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "p").read_text() == "a file"


def test_plot_history_from_run_and_from_checkpoint(run_dir, tmp_path):
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "p"), "--progress", "none"]) == 0
    assert main(["plot", str(run_dir / "cycle-01.safetensors"), "--out", str(tmp_path / "q"), "--log-scale",
                 "--progress", "none"]) == 0
    for folder in ("p", "q"):
        image = matplotlib.image.imread(tmp_path / folder / "loss.png")
        assert image.std() > 0.01
        assert (tmp_path / folder / "dice.png").exists()


def test_plot_of_a_folder_that_is_no_run_and_no_ct_says_both(data_dir, tmp_path, capsys):
    """A run folder before its history is written, or a wrong folder: neither a run nor a CT, in
    one line; a fault inside a folder's file keeps that file's own message."""
    (tmp_path / "run").mkdir()
    assert main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "p"), "--progress", "none"]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"liverlesionseg: error: {tmp_path / 'run'}: is neither a training run (it has no "
                            "history.json) nor a CT: no DICOM files found")
    files = bad_inputs.copy_slices(data_dir, tmp_path / "ct")
    files[2].write_bytes(files[2].read_bytes()[:-5000])  # its pixel data cut short
    assert main(["plot", str(tmp_path / "ct"), "--out", str(tmp_path / "p"), "--progress", "none"]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "neither a training run" not in error and f"{files[2]}: cannot decode" in error


def test_plot_prediction_panels_for_a_case(run_dir, data_dir, tmp_path):
    code = main(["plot", str(data_dir / "tace" / "RadCTTACEomics_0697"), "--model", str(run_dir / "model.safetensors"),
                 "--out", str(tmp_path), "--slices", "20", "22", "--progress", "none"])
    assert code == 0
    panel = matplotlib.image.imread(tmp_path / "RadCTTACEomics_0697_predictions.png")
    assert panel.shape[0] > 400 and panel.std() > 0.05


def test_plot_of_a_slice_outside_the_case_is_refused_before_the_model_runs(data_dir, tmp_path, capsys):
    """`--slices 999` on a CT of six slices: refused at once (a model that does not exist is never
    reached), nothing written."""
    bad_inputs.copy_slices(data_dir, tmp_path / "ct")
    code = main(["plot", str(tmp_path / "ct"), "--model", str(tmp_path / "none.safetensors"),
                 "--out", str(tmp_path / "p"), "--slices", "3", "999", "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 3 and error.startswith("liverlesionseg: error: slice 999 is outside the volume (0 to 5)")
    assert not (tmp_path / "p").exists()


def test_train_with_zoom_tiles_then_segment_through_them(data_dir, tmp_path, capsys):
    """`train --zoom-tiles 2` trains on the liver's box and its four tiles, and the model it writes
    carries the setting, so `segment` looks through the tiles too; without zoom it is refused."""
    case = data_dir / "tace" / "RadCTTACEomics_0697"
    out = tmp_path / "run"
    assert main(["train", str(case), "--recipe", "bundled", "--zoom-tiles", "2", "--zoom-tile-share", "0.75",
                 "--out", str(out), "--cycles", "1", "--epochs", "1", "--max-slices-per-epoch", "16",
                 "--progress", "none"]) == 0
    config, _ = read_metadata(out / "model.safetensors")
    assert config.preprocess.zoom_tiles == 2 and config.preprocess.zoom
    assert config.preprocess.zoom_tile_share == 0.75
    labels = tmp_path / "labels.nii.gz"
    assert main(["segment", str(case), "-o", str(labels), "--model", str(out / "model.safetensors"),
                 "--progress", "none"]) == 0
    assert labels.stat().st_size > 0
    capsys.readouterr()
    assert main(["train", str(case), "--zoom-tiles", "2", "--out", str(tmp_path / "refused"), "--progress",
                 "none"]) != 0
    assert "zoom_tiles" in capsys.readouterr().err and not (tmp_path / "refused").exists()


@pytest.mark.parametrize("steps", [[], [{"step": 0, "loss": float("nan")}], [{"step": 0, "loss": "low"}], ["step 0"]],
                         ids=["none", "nan", "text", "not objects"])
def test_plot_of_a_history_without_a_finite_loss_names_the_file(steps, tmp_path, capsys):
    (tmp_path / "history.json").write_text(json.dumps({"steps": steps}))
    assert main(["plot", str(tmp_path / "history.json"), "--out", str(tmp_path / "p"), "--progress", "none"]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{tmp_path / 'history.json'}: the training history holds no step with a finite loss" in error


@pytest.mark.parametrize("epochs", [None, [{"epoch": 1, "val_lesion_dice": "x"}], [None, "epoch 2"], 5],
                         ids=["null", "a Dice of text", "not objects", "a number"])
def test_plot_of_a_history_whose_epochs_are_edited_plots_the_loss_alone(epochs, tmp_path, capsys):
    """Found changing each field of a run's history.json in turn: epochs of null ended in an internal error
    ("'NoneType' object is not iterable"); a Dice of text was taken for validation, refused as "holds no
    validation Dice" after loss.png was written."""
    steps = [{"step": 1, "cycle": 1, "epoch": 1, "loss": 2.5}, {"step": 2, "cycle": 1, "epoch": 1, "loss": 2.1}]
    (tmp_path / "history.json").write_text(json.dumps({"steps": steps, "epochs": epochs}))
    assert main(["plot", str(tmp_path / "history.json"), "--out", str(tmp_path / "p"), "--progress", "none"]) == 0
    assert sorted(path.name for path in (tmp_path / "p").iterdir()) == ["loss.png"]


def test_plot_of_an_empty_history_file_says_it_is_empty(tmp_path, capsys):
    (tmp_path / "history.json").write_bytes(b"")
    assert main(["plot", str(tmp_path / "history.json"), "--out", str(tmp_path / "p"), "--progress", "none"]) == 3
    assert f"{tmp_path / 'history.json'}: is an empty file (0 bytes)" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
