"""The evaluation report: `metrics.csv`, `metrics.json` and `lesions.csv`, written atomically and together.

- `metrics.csv`: one row per case, the columns of `CaseMetrics`;
- `metrics.json`: {"cases": [...], "summary": {...}, "config": {...} or null, "rules": {...}};
- `lesions.csv`: one row per lesion and case (`LESION_COLUMNS`).

Undefined values (None, NaN, infinities) are written as empty CSV cells and JSON null.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import InputError, OutputError
from .io.atomic import atomic_paths, atomic_write_text
from .lesions import Lesion
from .metrics import RULES, CaseMetrics

METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
LESIONS_CSV = "lesions.csv"

LESION_COLUMNS = ["case", "lesion", "voxels", "volume_ml", "longest_axial_diameter_mm", "perpendicular_diameter_mm",
                  "diameter_slice", "centroid_l_mm", "centroid_p_mm", "centroid_s_mm", "centroid_r_mm",
                  "centroid_a_mm", "first_slice", "last_slice", "median_hu"]


def write_report(out_dir: str | os.PathLike, cases: Sequence[CaseMetrics], summary: Mapping[str, Any],
                 lesions_by_case: Mapping[str, Sequence[Lesion]], config: Optional[Mapping[str, Any]] = None,
                 cautions: Optional[Mapping[str, Sequence[str]]] = None) -> tuple[Path, Path, Path]:
    """The whole report: `metrics.csv`, `metrics.json` and `lesions.csv` in `out_dir` (created if its
    parent exists), all replaced or (on any failure) none, so that the folder never mixes two runs'
    files. `cautions`: each case's cautions about its segmentation (`caveats.result_caveats`), in the
    JSON."""
    out_dir = _report_folder(out_dir)
    paths = [out_dir / METRICS_CSV, out_dir / METRICS_JSON, out_dir / LESIONS_CSV]
    _write_together(paths, [*_metrics_texts(cases, summary, config, cautions), _lesion_text(lesions_by_case)])
    return paths[0], paths[1], paths[2]


def write_lesion_table(path: str | os.PathLike, rows_by_case: Mapping[str, Sequence[Lesion]]) -> Path:
    """Write the lesions of every case to one CSV file (a case without lesions adds no row)."""
    return atomic_write_text(path, _lesion_text(rows_by_case))


def is_report(path: Path) -> bool:
    """Whether `path` is a report `evaluate` wrote: its folder, or one of its three files (given back as
    an input, it was told as a folder without a case, or a file of no image's kind)."""
    folder = path if path.is_dir() else path.parent
    if not path.is_dir() and path.name not in (METRICS_CSV, METRICS_JSON, LESIONS_CSV):
        return False
    try:
        document = json.loads((folder / METRICS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"cases", "summary", "rules"} <= document.keys()


def refuse_a_report(path: Path, wanted: str) -> None:
    """Refuse `path` where it is a report of `evaluate`, given where `wanted` belongs."""
    if is_report(path):
        raise InputError(f"is a report that evaluate wrote ({METRICS_JSON}), not {wanted}", path,
                         f"give {wanted}; a report's saved label maps are read by evaluate CASES --predictions FOLDER")


def _metrics_texts(cases: Sequence[CaseMetrics], summary: Mapping[str, Any], config: Optional[Mapping[str, Any]],
                   cautions: Optional[Mapping[str, Sequence[str]]]) -> list[str]:
    """The text of `metrics.csv` and of `metrics.json`."""
    rows = [case.to_dict() for case in cases]
    csv_text = _csv_text(CaseMetrics.field_names(), rows)
    document = {"cases": rows, "summary": dict(summary), "config": config, "rules": RULES}
    if cautions is not None:
        document["cautions"] = {name: list(found) for name, found in cautions.items()}
    # default=str: paths and other odd values in a config are written as text.
    json_text = json.dumps(_json_safe(document), indent=2, allow_nan=False, ensure_ascii=False,
                           default=str) + "\n"
    return [csv_text, json_text]


def _lesion_text(rows_by_case: Mapping[str, Sequence[Lesion]]) -> str:
    rows = [_lesion_row(case, lesion) for case, lesions in rows_by_case.items() for lesion in lesions]
    return _csv_text(LESION_COLUMNS, rows)


def _write_together(paths: Sequence[Path], texts: Sequence[str]) -> None:
    with atomic_paths(*paths) as temporaries:  # every file replaced, or none
        for tmp, text in zip(temporaries, texts):
            tmp.write_bytes(text.encode("utf-8"))  # bytes: the same "\n" line ends on every system


def _lesion_row(case: str, lesion: Lesion) -> dict:
    l, p, s = lesion.centroid_lps
    r, a, _ = lesion.centroid_ras
    return {"case": case, "lesion": lesion.number, "voxels": lesion.voxels, "volume_ml": lesion.volume_ml,
            "longest_axial_diameter_mm": lesion.longest_axial_diameter_mm,
            "perpendicular_diameter_mm": lesion.perpendicular_diameter_mm,
            "diameter_slice": "" if lesion.diameter_slice is None else lesion.diameter_slice,
            "centroid_l_mm": l, "centroid_p_mm": p, "centroid_s_mm": s, "centroid_r_mm": r, "centroid_a_mm": a,
            "first_slice": lesion.first_slice, "last_slice": lesion.last_slice,
            "median_hu": "" if lesion.median_hu is None else lesion.median_hu}


def _report_folder(out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(exist_ok=True)  # not its parents: a mistyped path should fail, not grow a tree
    except FileNotFoundError:
        raise OutputError("the parent folder of the report folder does not exist", out_dir,
                          "create it first or choose another output") from None
    except OSError as exc:
        raise OutputError(f"cannot create the report folder ({exc.strerror or exc})", out_dir) from None
    if not out_dir.is_dir():
        raise OutputError("the report folder is a file", out_dir, "choose a folder")
    return out_dir


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _csv_cell(row.get(column)) for column in columns})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return value


def _json_safe(value: Any) -> Any:
    """Plain JSON types, with None for NaN and infinities."""
    value = _plain(value)
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values; non-finite floats as None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
