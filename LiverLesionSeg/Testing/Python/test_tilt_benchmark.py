"""The tilt benchmark on six real slices: its tilted copy is what a tilted gantry stores, and its
figures come out (the run of the whole series is in docs/robustness.md)."""

import re
import sys
from pathlib import Path

import numpy as np
import pydicom

import bad_inputs

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import tilt  # noqa: E402


def test_tilted_copy_moves_each_slice_along_y_by_its_height(data_dir, tmp_path):
    files = bad_inputs.copy_slices(data_dir, tmp_path / "straight")
    tilt.tilt_copy(files, tmp_path / "tilted", 15)
    before = {pydicom.dcmread(f).SOPInstanceUID: np.array(pydicom.dcmread(f).ImagePositionPatient, float)
              for f in files}
    lowest = min(p[2] for p in before.values())
    for path in (tmp_path / "tilted").iterdir():
        ds = pydicom.dcmread(path)
        old, new = before[ds.SOPInstanceUID], np.array(ds.ImagePositionPatient, float)
        assert np.allclose(new - old, [0, (old[2] - lowest) * np.tan(np.radians(15)), 0], atol=1e-4)


def test_the_benchmark_prints_its_figures(data_dir, tmp_path, model_path, capsys, monkeypatch):
    bad_inputs.copy_slices(data_dir, tmp_path / "data" / "six")
    monkeypatch.setattr(sys, "argv", ["tilt.py", "--data", str(tmp_path / "data"), "--case", "six",
                                      "--degrees", "10", "--model", str(model_path)])
    assert tilt.main() == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("10 degrees"))
    liver = float(re.search(r"liver Dice ([0-9.]+)", line).group(1))
    assert "grid 6 x" in line and 0.8 < liver <= 1.0, line
