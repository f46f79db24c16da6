#!/usr/bin/env python
"""Render docs/slicer-result.png: what the Slicer module gives for a real CT, drawn from the
module logic's actual output.

The CT goes into a volume node of a real MRML scene (the `slicer-core` wheel), through the same
logic the Apply button runs (`mrml.segment_volume_node`), and the picture is drawn from the
resulting segmentation node (its segments read back onto the CT's grid) and lesion table node,
in the segments' own Slicer colours.

    .venv/bin/python docs/render_slicer_picture.py                  # bundled model, shared HCC_006
    .venv/bin/python docs/render_slicer_picture.py --model run/model.safetensors --case DIR

The default case is HCC_006 from the shared data (TCIA HCC-TACE-Seg, CC BY 4.0), the only case
whose licence lets a picture of it go into the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402

DEFAULT_CASE = unpacked_cases_dir() / "hcc-tace-seg" / "HCC_006"
CREDIT = "HCC_006: The Cancer Imaging Archive, HCC-TACE-Seg (doi:10.7937/TCIA.5FNA-0924), CC BY 4.0"
CT_WINDOW_HU = (-160.0, 240.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE, help="CT folder or file (default: HCC_006)")
    parser.add_argument("--model", default="bundled", help="checkpoint file (default: the bundled model)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "slicer-result.png")
    args = parser.parse_args(argv)

    import slicer

    from LiverLesionSegLib import mrml, mrml_tables
    from LiverLesionSegLib.errors import LiverLesionSegError
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.segments import LESION, LIVER

    try:
        ct = read_input_volume(args.case)
        scene = slicer.vtkMRMLScene()
        input_node = mrml.add_volume_node(scene, ct, args.case.name)
        outputs = mrml.segment_volume_node(scene, input_node, args.model, args.device)
    except LiverLesionSegError as exc:
        print(f"render_slicer_picture: error: {exc}", file=sys.stderr)
        return 2
    grid = mrml.volume_from_node(input_node)
    liver = mrml.segment_mask(outputs.segmentation_node, LIVER.segment_id, grid)
    lesion = mrml.segment_mask(outputs.segmentation_node, LESION.segment_id, grid)
    rows = mrml_tables.table_rows(outputs.lesion_table_node)
    model_name = ("the bundled model" if str(args.model) == "bundled"
                  else f"{Path(args.model).name} (not the bundled model)")
    render(grid, liver, lesion, rows, outputs.summary, model_name, args.out)
    print(f"Wrote {args.out}: {outputs.summary} ({model_name})")
    return 0


def render(ct, liver: np.ndarray, lesion: np.ndarray, lesion_rows: list[dict], summary: str, model_name: str,
           out: Path) -> None:
    """One axial slice (the largest lesion area, else the largest liver area) with the segments
    filled and outlined in their Slicer colours, and the lesion table beside it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from LiverLesionSegLib.segments import LESION, LIVER

    k = int(np.argmax(lesion.sum(axis=(1, 2)))) if lesion.any() else int(np.argmax(liver.sum(axis=(1, 2))))
    figure = Figure(figsize=(9.6, 6.0), dpi=100)
    FigureCanvasAgg(figure)
    image_axes = figure.add_axes([0.01, 0.08, 0.60, 0.86])
    aspect = ct.spacing[1] / ct.spacing[0]
    image_axes.imshow(ct.array[k], cmap="gray", vmin=CT_WINDOW_HU[0], vmax=CT_WINDOW_HU[1], aspect=aspect,
                      interpolation="bilinear")
    for mask, spec in ((liver[k] > 0, LIVER), (lesion[k] > 0, LESION)):
        if mask.any():
            overlay = np.zeros(mask.shape + (4,))
            overlay[mask] = (*spec.color, 0.35)
            image_axes.imshow(overlay, aspect=aspect, interpolation="nearest")
            image_axes.contour(mask, levels=[0.5], colors=[spec.color], linewidths=1.2)
    image_axes.set_axis_off()
    image_axes.set_title(f"Axial slice {k + 1} of {ct.shape[0]} (patient's left on the right)", fontsize=10)
    image_axes.legend(handles=[Patch(color=LIVER.color, label=LIVER.name), Patch(color=LESION.color, label=LESION.name)],
                      loc="lower right", fontsize=9, framealpha=0.8)

    text_axes = figure.add_axes([0.63, 0.08, 0.36, 0.86])
    text_axes.set_axis_off()
    lines = ["LiverLesionSeg in 3D Slicer", "", *wrap(summary, 40), "", "Lesion table (largest first):"]
    lines += [f"  {int(r['Lesion'])}: {r['Volume']:.1f} mL, {r['Longest axial diameter']:.0f} mm" for r in lesion_rows[:8]]
    if len(lesion_rows) > 8:
        lines.append(f"  ... and {len(lesion_rows) - 8} more")
    if not lesion_rows:
        lines.append("  none")
    lines += ["", *wrap(f"Segmented with {model_name}.", 40)]
    text_axes.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=9.5, family="monospace")
    figure.text(0.01, 0.02, CREDIT, fontsize=8, color="0.3")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)


def wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


if __name__ == "__main__":
    sys.exit(main())
