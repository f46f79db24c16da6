"""tools/propagate_labels.py: a labelled case's masks carried onto another series of the patient by
registration, on the real RadCTTACEomics_0697 (its labelled portal phase and its arterial phase)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.cases import find_cases, load_case

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import propagate_labels  # noqa: E402

CASE = "tace/RadCTTACEomics_0697"


@pytest.fixture(scope="module")
def case(data_dir):
    return load_case(find_cases([data_dir / CASE])[0])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_labels_follow_a_ct_moved_in_space(case):
    # The same CT placed 6 mm to the left and 4 mm forward: its labels must move with it, back onto
    # the same voxels. Without the registration they land 5 to 7 voxels off.
    moved = case.ct.with_array(case.ct.array)
    moved.origin = (case.ct.origin[0] + 6.0, case.ct.origin[1] - 4.0, case.ct.origin[2])
    labels, moved_mm = propagate_labels.propagated(case, moved, bspline_iterations=0)
    liver = case.label_map() > 0
    unregistered = propagate_labels.resampled(case.ct.with_array(case.label_map().astype(np.uint8)), moved,
                                              propagate_labels.sitk.Transform()) > 0
    assert dice(labels.array > 0, liver) > 0.97 > 0.9 > dice(unregistered, liver)
    assert (labels.array == 2).sum() > 0.8 * (case.label_map() == 2).sum()
    assert 6.0 < moved_mm < 8.5  # sqrt(6^2 + 4^2) = 7.2
    assert labels.same_grid(moved)


def test_a_series_away_from_the_liver_is_refused(case):
    away = case.ct.with_array(case.ct.array)
    away.origin = (case.ct.origin[0], case.ct.origin[1], case.ct.origin[2] + 400.0)
    with pytest.raises(InputError, match="less than 50% of the labelled liver of RadCTTACEomics_0697"):
        propagate_labels.propagated(case, away, bspline_iterations=0)


def test_the_arterial_phase_gets_a_case_every_reader_takes(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "RadCTTACEomics_0697-AP"
    monkeypatch.setattr(sys, "argv", ["propagate_labels.py", str(data_dir / CASE),
                                      str(data_dir / CASE / "11_AP_Ax5.00mm"), str(out), "--bspline-iterations", "1"])
    assert propagate_labels.main() == 0
    assert "the registration moved the liver by" in capsys.readouterr().out
    written = load_case(find_cases([out])[0])
    assert written.name == "RadCTTACEomics_0697-AP"
    source = load_case(find_cases([data_dir / CASE])[0])
    # the arterial phase's own CT (a weakly enhanced liver), not the labelled phase's
    assert not np.array_equal(written.ct.array, source.ct.array)
    liver_hu = np.median(written.ct.array[written.liver.array > 0])
    assert liver_hu < np.median(source.ct.array[source.label_map() == 1]) - 20
    # the patient hardly moved between the phases: the liver keeps its volume and place
    assert abs(written.liver.array.sum() - (source.label_map() > 0).sum()) < 0.05 * (source.label_map() > 0).sum()
    assert dice(written.liver.array > 0, source.label_map() > 0) > 0.85
    assert written.lesion.array.sum() > 0


def test_a_folder_of_several_cases_is_refused_in_one_line(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["propagate_labels.py", str(data_dir / "tace"),
                                      str(data_dir / CASE / "11_AP_Ax5.00mm"), str(tmp_path / "out")])
    assert propagate_labels.main() == 1
    # the readers' log lines aside (left-out images), the error is one line naming the folder
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {data_dir / 'tace'}: holds 2 labelled cases. Give one case folder."]
    assert not (tmp_path / "out").exists()
