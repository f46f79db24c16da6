"""Report files read back with the csv and json modules, with the right values and nulls."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from LiverLesionSegLib.errors import OutputError
from LiverLesionSegLib.lesions import Lesion
from LiverLesionSegLib.metrics import RULES, CaseMetrics, evaluate_case, summarise
from LiverLesionSegLib.report import LESION_COLUMNS, write_lesion_table, write_report


def two_cases() -> list[CaseMetrics]:
    shape = (3, 5, 5)
    liver = np.zeros(shape, np.uint8)
    liver[0:3, 0:4, 0:4] = 1
    true_lesion = np.zeros(shape, np.uint8)
    true_lesion[1, 1:3, 1:3] = 1  # 4 voxels
    pred_lesion = np.zeros(shape, np.uint8)
    pred_lesion[1, 1:3, 1:2] = 1  # 2 voxels, both inside
    empty = np.zeros(shape, np.uint8)
    return [
        evaluate_case("found", liver, pred_lesion, liver, true_lesion, (0.5, 0.5, 2.0)),
        evaluate_case("missed", liver, empty, liver, true_lesion, (0.5, 0.5, 2.0)),  # precision, ASSD undefined
    ]


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_metrics_files_read_back(tmp_path):
    cases = two_cases()
    summary = summarise(cases)
    summary["not_a_number"] = float("nan")
    config = {"model": {"encoder": "resnet18"}, "threshold": 0.5}
    out = tmp_path / "report"
    write_report(out, cases, summary, {}, config)

    rows = read_csv(out / "metrics.csv")
    assert [r["name"] for r in rows] == ["found", "missed"]
    assert list(rows[0]) == CaseMetrics.field_names()
    assert float(rows[0]["lesion_dice"]) == pytest.approx(2 * 2 / 6)
    assert int(rows[0]["lesion_true_voxels"]) == 4
    assert float(rows[0]["true_lesion_volume_ml"]) == pytest.approx(4 * 0.5 / 1000)
    assert rows[1]["lesion_precision"] == "" and rows[1]["lesion_assd_mm"] == ""  # None -> empty cell
    assert float(rows[1]["lesion_recall"]) == 0.0

    document = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(document) == {"cases", "summary", "config", "rules"}
    assert document["config"] == config
    assert document["rules"] == RULES
    assert document["cases"][0]["lesion_dice"] == pytest.approx(2 / 3)
    assert document["cases"][1]["lesion_precision"] is None
    assert document["cases"][1]["lesion_hd95_mm"] is None
    assert document["summary"]["not_a_number"] is None  # NaN -> null, never the non-JSON NaN
    assert document["summary"]["lesion_dice_global"] == pytest.approx(2 * 2 / (2 + 8))
    assert document["summary"]["n_cases"] == 2


def test_metrics_without_config_and_numpy_values(tmp_path):
    summary = {"n_cases": np.int64(0), "value": np.float32(0.25), "missing": np.float64(np.inf)}
    write_report(tmp_path, [], summary, {}, None)
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["config"] is None and document["cases"] == []
    assert document["summary"] == {"n_cases": 0, "value": 0.25, "missing": None}
    assert read_csv(tmp_path / "metrics.csv") == []
    assert (tmp_path / "metrics.csv").read_text().startswith("name,lesion_dice,")


def test_metrics_folder_whose_parent_is_missing(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_report(tmp_path / "no" / "such", two_cases(), {}, {}, None)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_old_report(tmp_path):
    write_report(tmp_path, two_cases(), {"n_cases": 2}, {}, None)
    before_csv, before_json = (tmp_path / "metrics.csv").read_text(), (tmp_path / "metrics.json").read_text()
    with pytest.raises(RuntimeError):
        write_report(tmp_path, two_cases()[:1], {"n_cases": 1}, {}, {"bad": Unprintable()})
    # No file changed (all are rendered before any is written), no temporary file left.
    assert (tmp_path / "metrics.csv").read_text() == before_csv
    assert (tmp_path / "metrics.json").read_text() == before_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesions.csv", "metrics.csv", "metrics.json"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot be written")


def test_lesion_table_file(tmp_path):
    lesion = Lesion(number=1, voxels=64, volume_ml=0.032, longest_axial_diameter_mm=math.hypot(2, 2),
                    perpendicular_diameter_mm=1.5, diameter_slice=3, centroid_lps=(3.25, 2.25, -7.0),
                    centroid_ras=(-3.25, -2.25, -7.0), first_slice=2, last_slice=5, median_hu=41.5)
    small = Lesion(number=2, voxels=1, volume_ml=0.0005, longest_axial_diameter_mm=0.7071,
                   perpendicular_diameter_mm=0.7071, diameter_slice=0, centroid_lps=(0.0, 0.0, 0.0),
                   centroid_ras=(0.0, 0.0, 0.0), first_slice=0, last_slice=0)
    path = write_lesion_table(tmp_path / "lesions.csv", {"case 1": [lesion, small], "clean": [], "case 3": [lesion]})
    rows = read_csv(path)
    assert list(rows[0]) == LESION_COLUMNS
    assert [(r["case"], r["lesion"]) for r in rows] == [("case 1", "1"), ("case 1", "2"), ("case 3", "1")]
    first = rows[0]
    assert float(first["volume_ml"]) == 0.032
    assert float(first["longest_axial_diameter_mm"]) == math.hypot(2, 2)  # written so it reads back exactly
    assert (float(first["centroid_l_mm"]), float(first["centroid_p_mm"]), float(first["centroid_s_mm"])) == \
        (3.25, 2.25, -7.0)
    assert (float(first["centroid_r_mm"]), float(first["centroid_a_mm"])) == (-3.25, -2.25)
    assert (first["first_slice"], first["last_slice"], first["diameter_slice"]) == ("2", "5", "3")
    assert float(first["perpendicular_diameter_mm"]) == 1.5 and float(first["median_hu"]) == 41.5
    assert rows[1]["median_hu"] == ""  # measured without the CT


def test_lesion_table_into_a_missing_folder(tmp_path):
    with pytest.raises(OutputError):
        write_lesion_table(tmp_path / "missing" / "lesions.csv", {})
    assert list(tmp_path.iterdir()) == []
