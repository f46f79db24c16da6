"""How closely each case's reference liver follows the CT's liver edge.

For each labelled shared case: the share of voxels of the liver's own density (the CT smoothed by
1 mm in the slice, between the 5th and 95th percentiles of the CT over its reference liver,
lesions left out: what the bundled model's edge rule calls liver, `postprocess.liver_density`) in
bands just outside and just inside the reference liver. A reference drawn on the CT's edge has little of the liver's density just outside it; one
drawn inside the edge has much. Tissue beside the liver of the same density (muscle, heart wall,
bowel) counts too, so read the bands against each other and against the other cases.

    python benchmarks/reference_edge.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

from LiverLesionSegLib.masks import array_sampling  # noqa: E402
from LiverLesionSegLib.postprocess import liver_density  # noqa: E402
from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.volume import Case  # noqa: E402

OUTSIDE_BANDS_MM = ((0.0, 1.5), (1.5, 3.0), (3.0, 5.0))
INSIDE_BAND_MM = (0.0, 1.5)


def liver_density_shares(case: Case) -> dict[str, float]:
    """Band name -> share of its voxels of the liver's own density (see the module's docstring)."""
    liver = (case.liver.array > 0) | (case.lesion.array > 0)
    sampling = array_sampling(case.ct.spacing)
    of_liver_density = liver_density(case.ct.array, liver & (case.lesion.array == 0), case.ct.spacing)
    outside = ndimage.distance_transform_edt(~liver, sampling=sampling)
    inside = ndimage.distance_transform_edt(liver, sampling=sampling)
    shares = {f"outside {a:g}-{b:g} mm": float(of_liver_density[(outside > a) & (outside <= b)].mean())
              for a, b in OUTSIDE_BANDS_MM}
    a, b = INSIDE_BAND_MM
    shares[f"inside {a:g}-{b:g} mm"] = float(of_liver_density[(inside > a) & (inside <= b)].mean())
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    args = parser.parse_args()
    from LiverLesionSegLib.io.cases import find_cases, load_case

    rows = [(r.name, liver_density_shares(load_case(r))) for r in find_cases([args.data]) if r.name != "HCC_006"]
    bands = list(rows[0][1])
    print("| case | " + " | ".join(f"liver density, {band}" for band in bands) + " |")
    print("|---|" + "---|" * len(bands))
    for name, shares in rows:
        print(f"| {name} | " + " | ".join(f"{shares[band]:.2f}" for band in bands) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
