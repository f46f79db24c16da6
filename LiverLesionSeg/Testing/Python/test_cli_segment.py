"""`liverlesionseg segment` on every shared case: the label map lines up voxel for voxel with the
CT, checked through physical coordinates against the DICOM headers read independently."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.io.dicomseg import read_seg_masks
from LiverLesionSegLib.io.rtstruct import read_rtstruct_masks
from shared_cases import every_shared_case

# The cases' cautions: the TACE cases' slices of 5 mm, and the arterial phase's weakly enhanced liver.
EXPECTED_CAUTIONS = {"RadCTTACEomics_0697": ["slices are 5.0 mm apart"],
                     "RadCTTACEomics_1211": ["liver's median CT value is 55 HU"]}


def _axial_ct_files(data_dir: Path, cases_json: dict, name: str) -> list[Path]:
    """The CT slices of the case's labelled series, straight from pydicom, sorted along the normal."""
    uid = cases_json[name]["series_uid"]
    files = []
    for path in (data_dir / cases_json[name]["path"]).rglob("*"):
        if path.is_file():
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:
                continue
            if ds.get("SeriesInstanceUID") == uid and [float(x) for x in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]:
                files.append((float(ds.ImagePositionPatient[2]), path))
    return [p for _, p in sorted(files)]


@pytest.mark.slow
@pytest.mark.parametrize("name, folder", every_shared_case())
def test_segment_label_map_lines_up_with_the_ct(name, folder, data_dir, cases_json, model_path, core_segmentation,
                                                tmp_path, capsys):
    out = tmp_path / f"{name}.nii.gz"
    code = main(["segment", str(data_dir / folder), "-o", str(out), "--model", str(model_path),
                 "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 0, err
    # Told on stderr where the scan is unlike what the model learned from, and only there.
    cautions = [line for line in err.splitlines() if line.startswith("Caution")]
    assert len(cautions) == len(EXPECTED_CAUTIONS.get(name, [])), cautions
    for line, expected in zip(cautions, EXPECTED_CAUTIONS.get(name, [])):
        assert expected in line, line
    labels = sitk.ReadImage(str(out))
    array = sitk.GetArrayFromImage(labels)
    files = _axial_ct_files(data_dir, cases_json, name)
    assert array.shape == (len(files), 512, 512) == (cases_json[name]["slices"], 512, 512)
    assert set(np.unique(array)) <= {0, 1, 2} and (array > 0).any()

    # Every DICOM pixel's physical position falls on the label voxel of the same row, column and slice.
    for k in range(0, len(files), max(1, len(files) // 8)):
        ds = pydicom.dcmread(files[k], stop_before_pixels=True)
        ipp = np.array([float(x) for x in ds.ImagePositionPatient])
        row_spacing, col_spacing = (float(x) for x in ds.PixelSpacing)
        for row, col in [(0, 0), (0, 511), (300, 17), (511, 255)]:
            point = ipp + col * col_spacing * np.array([1, 0, 0]) + row * row_spacing * np.array([0, 1, 0])
            assert labels.TransformPhysicalPointToIndex(tuple(point)) == (col, row, k)
    # ... and holds what the model said about that pixel (no transposed or flipped writing).
    assert np.array_equal(array, core_segmentation(folder)[1].label_map())


def test_segment_writes_slicer_segmentation_probabilities_lesion_table_and_overlay(data_dir, model_path, tmp_path,
                                                                                   capsys):
    out = tmp_path / "case.seg.nrrd"
    code = main(["segment", str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(out), "--model",
                 str(model_path), "--probabilities", str(tmp_path / "p.nrrd"), "--lesions", str(tmp_path / "l.csv"),
                 "--overlay", str(tmp_path / "o.png"), "--progress", "none"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Liver:" in printed and "total" in printed  # the summary and the stage timings
    import nrrd
    data, header = nrrd.read(str(out))
    assert header["Segment0_Name"] == "Liver" and header["Segment1_Name"] == "Liver lesion"
    assert "SCT^10200004^Liver" in header["Segment0_Tags"]
    assert data.shape == (512, 512, 44)
    probability_image = sitk.ReadImage(str(tmp_path / "p.nrrd"))
    probabilities = sitk.GetArrayFromImage(probability_image)
    assert probabilities.dtype == np.float32 and probabilities.shape == (44, 512, 512)
    assert 0 <= probabilities.min() and probabilities.max() <= 1
    # each lesion has a core where the probability passed the threshold, and grows at most down to
    # the model's grow threshold, in the probability smoothed across slices
    inference = load_checkpoint(model_path).config.inference
    lesion = data.transpose(2, 1, 0) == 2
    smoothed = ndimage.gaussian_filter1d(probabilities, inference.lesion_grow_smoothing_mm /
                                         probability_image.GetSpacing()[2], axis=0, mode="nearest")
    assert inference.lesion_grow_threshold and inference.lesion_grow_smoothing_mm
    assert np.all((probabilities[lesion] >= inference.lesion_threshold)
                  | (smoothed[lesion] >= inference.lesion_grow_threshold - 1e-6))
    assert not np.all(probabilities[lesion] >= inference.lesion_grow_threshold)  # the smoothing took some in
    labels, count = ndimage.label(lesion, np.ones((3, 3, 3)))
    assert count and all(probabilities[labels == i].max() >= inference.lesion_threshold for i in range(1, count + 1))
    assert (tmp_path / "l.csv").read_text().startswith("case,lesion,")
    assert (tmp_path / "o.png").stat().st_size > 10_000


def test_lesion_report_as_dicom_sr_holds_the_lesion_table(model_path, tmp_path, capsys):
    """`--lesions report.dcm` on the sample case: a DICOM SR over its series whose lesion groups
    hold the figures of the CSV that `--lesions table.csv` writes, and whose liver group holds the
    summary's liver volume. `--sr` and a bare `--rtstruct` write the report and the structure set
    beside the result ("NAME SR.dcm", "NAME RS.dcm"), in the same run as the CSV."""
    import csv

    import highdicom as hd

    from LiverLesionSegLib.resources import sample_case_path

    runs = {}
    for name, options in (("report", ["--lesions", str(tmp_path / "report.dcm")]),
                          ("beside", ["--lesions", str(tmp_path / "table.csv"), "--sr", "--rtstruct"])):
        code = main(["segment", str(sample_case_path()), "-o", str(tmp_path / f"{name}.nii.gz"), "--model",
                     str(model_path), *options, "--progress", "json"])
        assert code == 0
        runs[name] = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside RS.dcm", "beside SR.dcm", "beside.nii.gz",
                                                          "report.dcm", "report.nii.gz", "table.csv"]
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    for report_path in (tmp_path / "report.dcm", tmp_path / "beside SR.dcm"):
        report = hd.sr.srread(report_path)
        groups = report.content.get_planar_roi_measurement_groups()
        assert len(rows) == len(groups) == runs["report"]["lesions"] >= 1
        for row, group in zip(rows, groups):
            values = {m.name.meaning: m.value for m in group.get_measurements()}
            assert str(group.tracking_identifier) == f"Lesion {row['lesion']}"
            assert values["Volume"] == pytest.approx(float(row["volume_ml"]), rel=1e-6)
            assert values["Long axis"] == pytest.approx(float(row["longest_axial_diameter_mm"]), rel=1e-6)
        (liver,) = report.content.get_image_measurement_groups()
        assert liver.get_measurements()[0].value == pytest.approx(runs["report"]["liver_ml"], abs=0.01)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "beside.nii.gz")))
    contoured = read_rtstruct_masks(tmp_path / "beside RS.dcm", read_input_volume(sample_case_path()))
    assert np.array_equal(contoured["liver"], labels > 0) and np.array_equal(contoured["lesion"], labels == 2)


def test_an_input_without_a_ct_is_refused_before_the_model_is_loaded(tmp_path, capsys):
    """The input's headers are read first: a folder with no CT fails at once, with no model loaded."""
    (tmp_path / "empty").mkdir()
    code = main(["segment", str(tmp_path / "empty"), "-o", str(tmp_path / "x.nii.gz"), "--progress", "json"])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert not [e for e in events if e["event"] == "stage"] and events[-1]["event"] == "error"
    assert "empty: no DICOM files found" in captured.err and not (tmp_path / "x.nii.gz").exists()


def test_json_progress_reports_stages_and_timings(data_dir, model_path, tmp_path):
    """A real process, as the Slicer panel runs it: stdout holds only JSON events."""
    out = tmp_path / "x.nii.gz"
    run = subprocess.run([sys.executable, "-m", "LiverLesionSegLib", "segment",
                          str(data_dir / "tace" / "RadCTTACEomics_0697"), "-o", str(out), "--model", str(model_path),
                          "--progress", "json"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    stages = list(dict.fromkeys(e["stage"] for e in events if e["event"] == "stage" and e["state"] == "end"))
    assert stages == ["load model", "read", "preprocess", "model", "postprocess", "write"]
    done = events[-1]
    assert done["event"] == "done" and set(done["timings_s"]) == set(stages) and done["liver_ml"] > 0
    assert done["tumour_burden"] == pytest.approx(done["lesion_ml"] / done["liver_ml"], abs=1e-4)
    # The caution about its 5 mm slices: a warning event as it is found, and in the final event.
    cautions = [e["message"] for e in events if e["event"] == "log" and e.get("level") == "warning"
                and e["message"].startswith("Caution")]
    assert len(done["caveats"]) == 1 and "5.0 mm apart" in done["caveats"][0]
    assert len(cautions) == 1 and "RadCTTACEomics_0697" in cautions[0]
    assert cautions[0].endswith(f"): {done['caveats'][0]}.")


def test_segment_writes_a_dicom_seg_over_the_ct_series(data_dir, cases_json, model_path, tmp_path):
    """`-o RESULT.dcm`: a DICOM SEG on the series the SEG in the folder references (the folder holds two
    CT series), holding the same liver and lesions as the label map of the same run."""
    case = data_dir / "tace" / "RadCTTACEomics_0697"
    out, structures = tmp_path / "result.dcm", tmp_path / "rs.dcm"
    assert main(["segment", str(case), "-o", str(out), "--rtstruct", str(structures), "--model", str(model_path),
                 "--progress", "none"]) == 0
    ct = read_input_volume(case)
    masks = read_seg_masks(out, ct)
    labels = segmented(case, tmp_path, "--model", str(model_path))
    assert masks["liver"].any() and np.array_equal(masks["liver"], labels == 1)
    assert np.array_equal(masks["lesion"], labels == 2)
    contoured = read_rtstruct_masks(structures, ct)  # the RT structure set of the same run: the same voxels
    assert np.array_equal(contoured["liver"], labels > 0) and np.array_equal(contoured["lesion"], labels == 2)
    seg = pydicom.dcmread(out, stop_before_pixels=True)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == cases_json["RadCTTACEomics_0697"]["series_uid"]
    assert model_path.name in seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters


def segmented(case, tmp_path: Path, *options: str) -> np.ndarray:
    """The label map `liverlesionseg segment CASE OPTIONS` writes (0 background, 1 liver, 2 lesion)."""
    out = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}.nii.gz"
    assert main(["segment", str(case), "-o", str(out), "--progress", "none", *options]) == 0
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out)))


def assert_refused(case, tmp_path: Path, capsys, options: list[str], message: str) -> None:
    """A setting that cannot work is refused in one line naming it, and nothing is written."""
    capsys.readouterr()
    bad = tmp_path / "bad.nii.gz"
    assert main(["segment", str(case), "-o", str(bad), "--progress", "none", *options]) != 0
    error = capsys.readouterr().err
    assert message in error and f"bundled model with {' '.join(options)}:" in error  # the option named as given
    assert not bad.exists()


def test_the_rule_on_the_liver_around_a_lesion_can_be_set_or_turned_off(data_dir, tmp_path, capsys):
    """The bundled model drops lesions with little liver around them (under 40 %);
    `--min-liver-around-lesion 0.6` drops a lesion of RadCTTACEomics_0697 that 40 % keeps, and 0
    keeps every lesion that touches the liver (for one that bulges out of it); a share outside [0, 1]
    is refused in one line. Fluid lesions are kept in every run: the lesion this rule drops is fluid too."""
    case = str(data_dir / "tace" / "RadCTTACEomics_0697")
    lesions = {share: segmented(case, tmp_path, "--keep-fluid-lesions",
                                *([] if share is None else ["--min-liver-around-lesion", share])) == 2
               for share in ("0.6", None, "0")}
    assert lesions["0.6"].any() and lesions["0.6"].sum() < lesions[None].sum() <= lesions["0"].sum()
    assert not (lesions["0.6"] & ~lesions[None]).any() and not (lesions[None] & ~lesions["0"]).any()  # only drops
    assert_refused(case, tmp_path, capsys, ["--min-liver-around-lesion", "1.5"],
                   "min_liver_around_lesion must be between 0 and 1")


def test_lesion_growth_and_its_smoothing_can_be_turned_off(data_dir, tmp_path):
    """The bundled model grows the lesions it keeps over their unsure rim, in the probability smoothed
    across slices; `--lesion-grow-smoothing 0` grows them in the probability as it is, and
    `--lesion-grow-threshold 1` not at all: the lesions are then their sure cores only, each inside
    a grown lesion either way. Only the lesions change; the liver holds them all."""
    case = str(data_dir / "tace" / "RadCTTACEomics_0697")
    labels = {name: segmented(case, tmp_path, "--liver-edge", "0", *option)  # the liver as the network drew it
              for name, option in (("smoothed", []), ("as is", ["--lesion-grow-smoothing", "0"]),
                                   ("cores", ["--lesion-grow-threshold", "1"]))}
    lesions = {name: label == 2 for name, label in labels.items()}
    cores = lesions["cores"]
    assert cores.any() and lesions["smoothed"].sum() > cores.sum() and lesions["as is"].sum() > cores.sum()
    assert not (cores & ~lesions["smoothed"]).any() and not (cores & ~lesions["as is"]).any()
    assert not np.array_equal(lesions["smoothed"], lesions["as is"])
    assert np.array_equal(labels["smoothed"] > 0, labels["as is"] > 0) and np.array_equal(labels["as is"] > 0,
                                                                                            labels["cores"] > 0)


def test_lesions_the_model_was_never_sure_of_can_be_dropped(data_dir, tmp_path, capsys):
    """`--min-lesion-peak P` drops the lesions whose highest probability is under P and keeps the
    others as they were; P is taken between the peaks of the first run's lesions (the rule on the
    liver's density off in both runs: it drops one of the two here)."""
    case = str(data_dir / "tace" / "RadCTTACEomics_0697")
    out, probabilities = tmp_path / "all.nii.gz", tmp_path / "p.nrrd"
    assert main(["segment", case, "-o", str(out), "--probabilities", str(probabilities), "--progress", "none",
                 "--min-lesion-contrast", "0"]) == 0
    every = sitk.GetArrayFromImage(sitk.ReadImage(str(out))) == 2
    probability = sitk.GetArrayFromImage(sitk.ReadImage(str(probabilities)))
    labels, count = ndimage.label(every, np.ones((3, 3, 3)))
    peaks = np.array(ndimage.maximum(probability, labels, np.arange(1, count + 1)))
    assert count >= 2 and peaks.min() < peaks.max()
    cut = float(peaks.min() + peaks.max()) / 2
    kept = segmented(case, tmp_path, "--min-lesion-peak", f"{cut}", "--min-lesion-contrast", "0") == 2
    assert np.array_equal(kept, np.isin(labels, 1 + np.flatnonzero(peaks >= cut)))
    assert_refused(case, tmp_path, capsys, ["--min-lesion-peak", "2"],
                   "min_lesion_peak_probability must be None (off) or lie in [0, 1]")


def test_what_joins_the_liver_through_a_thin_neck_can_be_cut_off(data_dir, tmp_path):
    """`--liver-neck MM` cuts off what the liver output took in through a neck thinner than 2 MM; 0
    turns it off. The cut only takes liver away, and here no lesion with it."""
    case = str(data_dir / "tace" / "RadCTTACEomics_0697")
    labels = {mm: segmented(case, tmp_path, "--liver-neck", mm) for mm in ("0", "2")}
    whole, cut = labels["0"] > 0, labels["2"] > 0
    assert cut.any() and not (cut & ~whole).any() and 0 < (whole & ~cut).sum() < 0.05 * whole.sum()
    assert np.array_equal(labels["0"] == 2, labels["2"] == 2)


def test_the_liver_edge_follows_the_ct_within_two_millimetres(data_dir, tmp_path, capsys):
    """The bundled model moves the liver's edge, within 2 mm of the network's, to where the CT is of
    the liver's density; `--liver-edge 0` turns that off. What it adds lies within 2 mm of the liver
    it had and is of the liver's density, what it takes away within 2 mm inside it; the lesions do
    not change. A negative distance is refused."""
    case_dir = data_dir / "ircadb" / "3Dircadb1.1"
    volume = read_input_volume(case_dir)
    labels = {mm: segmented(case_dir, tmp_path, "--liver-edge", mm) for mm in ("0", "2")}
    before, after = labels["0"] > 0, labels["2"] > 0
    assert np.array_equal(labels["0"] == 2, labels["2"] == 2)
    added, removed = after & ~before, before & ~after
    assert added.any() and removed.any()
    distance = ndimage.distance_transform_edt(~before, sampling=volume.spacing[::-1])
    assert distance[added].max() <= 2.0
    parenchyma = volume.array[before & (labels["0"] != 2)]
    low, high = np.percentile(parenchyma, (5, 95))
    assert low - 30 < np.median(volume.array[added]) < high + 30
    # what it takes away lies within 2 mm inside the liver it had, but for pieces the band cut off
    depth = ndimage.distance_transform_edt(before, sampling=volume.spacing[::-1])
    assert np.mean(depth[removed] <= 2.0) > 0.95
    assert_refused(case_dir, tmp_path, capsys, ["--liver-edge", "-1"], "liver_edge_mm must be between 0 and 20")


def test_lesions_can_grow_beyond_the_liver_over_their_own_tissue(data_dir, tmp_path, capsys):
    """`--lesion-grow-beyond-liver MM`: the lesions kept also take in the part of them that the liver
    output left out, within MM of the liver, where it is the same tissue as their core; that part
    becomes liver. 0 keeps them inside the liver; a negative distance is refused in one line."""
    case_dir = data_dir / "ircadb" / "3Dircadb1.1"
    ct = read_input_volume(case_dir).array
    labels = {mm: segmented(case_dir, tmp_path, "--lesion-grow-beyond-liver", mm, "--liver-edge", "0")
              for mm in ("0", "5")}  # the liver's edge as the network drew it: the growth alone moves it
    inside, beyond = labels["0"], labels["5"]
    added = (beyond == 2) & (inside != 2)
    assert added.sum() > 1000 and not ((inside == 2) & (beyond != 2)).any()
    assert not (inside[added] > 0).any()  # outside the liver before, lesion (and so liver) now
    assert not ((inside > 0) & (beyond == 0)).any()
    # the same tissue: the added voxels' median CT value within 15 HU of the lesions' they joined
    pieces, _ = ndimage.label(beyond == 2, np.ones((3, 3, 3)))
    for piece in np.unique(pieces[added]):
        core = (pieces == piece) & (inside == 2)
        assert abs(np.median(ct[(pieces == piece) & added]) - np.median(ct[core])) <= 15
    assert_refused(case_dir, tmp_path, capsys, ["--lesion-grow-beyond-liver", "-1"],
                   "lesion_grow_beyond_liver_mm must be 0")


def test_lesion_growth_stops_at_its_limit_from_the_core(data_dir, tmp_path, capsys):
    """`--lesion-grow-max MM`: a lesion grows over its unsure rim no farther than MM from its sure
    core (`--lesion-grow-threshold 1`: the cores alone); 0 lifts the limit; a negative distance is
    refused in one line, nothing written."""
    case_dir = data_dir / "ircadb" / "3Dircadb1.1"
    spacing = read_input_volume(case_dir).spacing
    fixed = ["--lesion-grow-beyond-liver", "0", "--liver-edge", "0"]  # growth inside the liver only
    cores, limited, unlimited = (segmented(case_dir, tmp_path, *options, *fixed) == 2 for options in (
        ["--lesion-grow-threshold", "1"], ["--lesion-grow-max", "1.5"], ["--lesion-grow-max", "0"]))
    assert cores.any() and not (cores & ~limited).any() and not (limited & ~unlimited).any()
    distance = ndimage.distance_transform_edt(~cores, sampling=spacing[::-1])
    assert 0 < distance[limited & ~cores].max() <= 1.5
    assert distance[unlimited].max() > 1.5
    assert_refused(case_dir, tmp_path, capsys, ["--lesion-grow-max", "-1"], "lesion_grow_max_mm must be 0")


def test_lesions_of_the_liver_density_are_dropped_unless_kept(data_dir, tmp_path, capsys):
    """The bundled model drops lesions within 15 HU of the liver's density, around them and as a
    whole (on RadCTTACEomics_0697, a find the model made in the liver's own tissue);
    `--min-lesion-contrast 0` keeps them, and every lesion it adds has a median within 15 HU of the
    liver's; a negative contrast is refused in one line, nothing written."""
    case_dir = data_dir / "tace" / "RadCTTACEomics_0697"
    ct = read_input_volume(case_dir).array
    labels = {contrast: segmented(case_dir, tmp_path, "--min-lesion-contrast", contrast) for contrast in ("15", "0")}
    kept, every = labels["15"] == 2, labels["0"] == 2
    dropped = every & ~kept
    assert kept.any() and dropped.any() and not (kept & ~every).any()
    assert (labels["15"][dropped] == 1).all()  # what is dropped stays liver
    liver_median = np.median(ct[(labels["0"] == 1)])
    pieces, count = ndimage.label(dropped, np.ones((3, 3, 3)))
    assert all(abs(np.median(ct[pieces == i]) - liver_median) < 15 for i in range(1, count + 1))
    assert_refused(case_dir, tmp_path, capsys, ["--min-lesion-contrast", "-1"],
                   "min_lesion_contrast_hu must be None (off) or between 0 and 1000 HU")


def test_fluid_density_lesions_are_dropped_unless_kept(data_dir, tmp_path, capsys):
    """The bundled model drops lesions of fluid density (median under 20 HU: a cyst, the gallbladder,
    the bowel's fluid); `--keep-fluid-lesions` keeps them, and every lesion it adds has a median
    under 20 HU; a CT value no CT holds is refused in one line, nothing written."""
    case_dir = data_dir / "tace" / "RadCTTACEomics_0697"
    ct = read_input_volume(case_dir).array
    lesions = {len(option): segmented(case_dir, tmp_path, *option) == 2 for option in ([], ["--keep-fluid-lesions"])}
    dropped, kept = lesions[1] & ~lesions[0], lesions[0]
    assert kept.any() and dropped.any() and not (kept & ~lesions[1]).any()
    labels, count = ndimage.label(dropped, np.ones((3, 3, 3)))
    assert all(np.median(ct[labels == i]) < 20 for i in range(1, count + 1))
    assert_refused(case_dir, tmp_path, capsys, ["--min-lesion-hu", "5000"],
                   "min_lesion_median_hu must be None (off) or a CT value")


def test_lesions_holding_gas_are_dropped_and_a_negative_bound_refused(data_dir, tmp_path, capsys):
    """`--max-lesion-gas MM3`: on 3Dircadb1.17 the bundled model's find at the dome, a true lesion that
    meets the lung, holds about 15 mm3 of the lung's partial volume beneath its surface: the bundled
    bound (50 mm3) keeps it, as no bound does; 10 mm3 drops it, and most of it leaves the liver mask
    (its core: the rim it had grown over was liver output and stays liver). A negative bound is
    refused in one line, nothing written."""
    case_dir = data_dir / "ircadb" / "3Dircadb1.17"
    ct = read_input_volume(case_dir).array
    bundled, unbounded, strict = (segmented(case_dir, tmp_path, *options) for options in (
        [], ["--max-lesion-gas", "1e9"], ["--max-lesion-gas", "10"]))
    assert np.array_equal(bundled, unbounded)
    dropped = (unbounded == 2) & (strict != 2)
    assert dropped.any() and (strict[dropped] == 0).mean() > 0.5
    assert (ct[dropped] < -400).any() and not ((strict == 2) & ~(unbounded == 2)).any()
    assert_refused(case_dir, tmp_path, capsys, ["--max-lesion-gas", "-1"], "max_lesion_gas_mm3 must be None (off) or 0")


def test_a_ct_windowed_into_bytes_is_refused(data_dir, model_path, tmp_path, capsys):
    """CT values clipped to 0 to 255 and stored as bytes hold no fat or air (all 0): no Hounsfield
    units, refused in one line, nothing written (it was segmented, with a caution). Stored as HU + 1024
    in a uint16 NIfTI, a CT is refused too (the catalogue's `ct_values_without_their_rescale`)."""
    ct = read_input_volume(data_dir / "ircadb" / "3Dircadb1.17")
    image = sitk.GetImageFromArray(np.clip(ct.array.astype(np.int32), 0, 255).astype(np.uint8))
    image.SetSpacing(ct.spacing)
    image.SetOrigin(ct.origin)
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out.nii.gz"
    code = main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(out), "--model", str(model_path)])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "\n" not in err and "not a CT in Hounsfield units" in err
    assert not out.exists()
