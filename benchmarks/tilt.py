"""Gantry tilt: what reading a tilted series costs, and how much the resampling changes the result.

    python benchmarks/tilt.py [--case tace/RadCTTACEomics_1211] [--degrees 5 15 25] [--model FILE]

A tilted copy of a real series is made for each angle: the same pixels, each slice's position
moved along y in proportion to its height, as a scanner with a tilted gantry stores its slices.
It is read (and so resampled onto a regular grid, `io/regularize.py`) and segmented with the
bundled model; the label map is sampled back onto the original slices and compared with the
segmentation of the untilted series. Prints, per angle: the grid, the time to read against the
untilted series', and the liver and lesion Dice between the two segmentations (1.0 would mean the
resampling changed nothing; bilinear interpolation and the network's own sensitivity make it less).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from LiverLesionSegLib.checkpoint import load_checkpoint  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.io.cases import find_input_ct  # noqa: E402
from LiverLesionSegLib.io.regularize import sample_slices  # noqa: E402
from LiverLesionSegLib.metrics import dice  # noqa: E402
from LiverLesionSegLib.resources import bundled_model_path, unpacked_cases_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    parser.add_argument("--case", default="tace/RadCTTACEomics_1211")
    parser.add_argument("--degrees", type=float, nargs="+", default=[5.0, 15.0, 25.0])
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.model or bundled_model_path())
    found = find_input_ct(args.data / args.case)
    start = time.perf_counter()
    straight = found.read()
    straight_read = time.perf_counter() - start
    reference = segment_volume(straight, checkpoint)
    print(f"{args.case}: {straight.shape[0]} slices of {straight.shape[1]} x {straight.shape[2]}, "
          f"{straight.spacing[2]:.2f} mm apart; read in {straight_read:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for degrees in args.degrees:
            folder = Path(tmp) / f"tilt{degrees:g}"
            tilt_copy(found.series.files, folder, degrees)
            start = time.perf_counter()
            tilted = find_input_ct(folder).read()
            read_s = time.perf_counter() - start
            result = segment_volume(tilted, checkpoint)
            # back onto the acquired slices, whose pixels are the untilted series' own
            labels = sample_slices(tilted.with_array(result.label_map()), tilted.acquired)
            print(f"{degrees:g} degrees: grid {tilted.shape[0]} x {tilted.shape[1]} x {tilted.shape[2]}, read and "
                  f"resampled in {read_s:.2f} s ({read_s / straight_read:.1f}x); against the untilted result: "
                  f"liver Dice {dice(labels > 0, reference.liver.array):.4f}, "
                  f"lesion Dice {dice(labels == 2, reference.lesion.array):.4f} "
                  f"({int(reference.lesion.array.sum())} untilted lesion voxels)")
            shutil.rmtree(folder)
    return 0


def tilt_copy(files: list[Path], folder: Path, degrees: float) -> None:
    """The series' files with each slice moved along y by its height above the lowest times tan(degrees)."""
    folder.mkdir(parents=True)
    heights = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files]
    lowest = min(heights)
    for n, (path, z) in enumerate(zip(files, heights)):
        ds = pydicom.dcmread(path)
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, round(y + (z - lowest) * np.tan(np.radians(degrees)), 4), z]
        ds.save_as(folder / f"{n:05d}.dcm")


if __name__ == "__main__":
    sys.exit(main())
