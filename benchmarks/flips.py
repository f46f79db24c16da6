"""How the bundled model fares on CTs stored flipped, with the flip checks and without.

A patient with situs inversus, or a file whose orientation is wrong (left and right swapped; LPS voxels
labelled RAS: turned half a turn; head and feet swapped), shows the network what it never learned. Each
labelled shared case is flipped each way (its reference with it) and segmented with the checks on
(`InferenceConfig.flip_check`: `LiverLesionSegLib/flips.py` before segmenting, `head_feet.py` after a
first pass) and off; the table gives the in-plane flip the check chose, whether the head-feet caution
was told, and the liver and lesion Dice against the flipped reference.

    python benchmarks/flips.py [--model FILE] [--models-per-case DIR] [--out benchmarks/results/flips]

`--models-per-case DIR`: instead of one model, each case's own from `DIR/test-<case>/model.safetensors`
(the cross-validation fold models `benchmarks/accuracy.py` leaves, which did not train on that case).
The models here were trained on these cases unless so given: read the change the check makes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

# acquisition: benchmarks/, this script's folder
from acquisition import add_model_options, markdown, model_for_each_case, write_results  # noqa: E402
from LiverLesionSegLib.caveats import result_caveats  # noqa: E402
from LiverLesionSegLib.flips import FRONT_BACK, HALF_TURN, HEAD_FEET, LEFT_RIGHT  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, load_case  # noqa: E402
from LiverLesionSegLib.metrics import dice  # noqa: E402
from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.volume import to_axial_lps  # noqa: E402

FLIPS = {"as stored": None, "left-right": LEFT_RIGHT, "front-back": FRONT_BACK, "half turn": HALF_TURN,
         "head-feet": HEAD_FEET}


def measure(case, flip, checkpoint) -> dict:
    """One case flipped one way, segmented with the check and without."""
    ct, liver, lesion = (to_axial_lps(v)[0] for v in (case.ct, case.liver, case.lesion))
    if flip is not None:
        ct, liver, lesion = (v.with_array(flip.apply(v.array)) for v in (ct, liver, lesion))
    row = {"case": case.name}
    for check in (True, False):
        config = replace(checkpoint.config.inference, flip_check=check)
        result = segment_volume(ct, checkpoint, config)
        suffix = "" if check else " (no check)"
        if check:
            row["flip chosen"] = result.flipped or "none"
            row["head-feet caution"] = any("head and feet swapped" in c for c in result_caveats(ct, result))
        row["liver Dice" + suffix] = round(dice(result.liver.array > 0, liver.array > 0), 3)
        row["lesion Dice" + suffix] = (round(dice(result.lesion.array > 0, lesion.array > 0), 3)
                                       if lesion.array.any() else None)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    add_model_options(parser)
    parser.add_argument("--out", type=Path, default=None, help="also write flips.md and flips.json here")
    args = parser.parse_args()
    model_for = model_for_each_case(args.model, args.models_per_case)
    rows = []
    for ref in find_cases([args.data]):
        checkpoint = model_for(ref.name)
        if checkpoint is None:
            continue
        case = load_case(ref)
        for name, flip in FLIPS.items():
            row = {"stored": name, **measure(case, flip, checkpoint)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_results(markdown(rows), rows, args.out, "flips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
