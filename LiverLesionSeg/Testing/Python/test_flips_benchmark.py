"""The flip benchmark flips a case's reference with its CT, and its figures come out (the run on the
shared cases is in benchmarks/results/flips)."""

import sys
from pathlib import Path

from LiverLesionSegLib import resources
from LiverLesionSegLib.flips import HALF_TURN
from LiverLesionSegLib.io.cases import find_cases, load_case

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import flips  # noqa: E402


def test_a_case_turned_half_a_turn_is_measured_against_its_reference_turned_too(data_dir):
    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    row = flips.measure(case, HALF_TURN, resources.load_model(None))
    assert row["flip chosen"] == HALF_TURN.swapped and row["head-feet caution"] is False
    # the reference turned with the CT: the result turned back lies on it
    assert row["liver Dice"] > 0.9 and row["lesion Dice"] > 0.5
    assert row["liver Dice (no check)"] < row["liver Dice"] - 0.3
    text = flips.markdown([row])
    assert text.splitlines()[0].startswith("| case | flip chosen | head-feet caution | liver Dice |")
