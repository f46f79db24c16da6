"""Make the bundled sample case from TCIA HCC-TACE-Seg patient HCC_006 (CC BY 4.0).

    python tools/make_sample_case.py --first 44 --last 108

Keeps the CT slices FIRST..LAST (inclusive, counted along the patient axis from the feet, as the
reader sorts them), the liver's slice range, as a DICOM series of its own: new series and instance
UIDs derived from the originals, ImageType DERIVED, and JPEG-LS lossless compression. To fit the
10 MB the sample may take, the air outside the body (below -500 HU, not connected to the body) is
set to -1024 HU; every voxel inside the body keeps its original value.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEGLSLossless, generate_uid
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

from LiverLesionSegLib.io.dicom_scan import scan_folder  # noqa: E402
from LiverLesionSegLib.io.series_choice import choose_ct_series  # noqa: E402
from LiverLesionSegLib.resources import SAMPLE_FOLDER, unpacked_cases_dir  # noqa: E402

CREDIT = """# Sample case: HCC_006 (cropped)

A part of patient HCC_006 of The Cancer Imaging Archive's HCC-TACE-Seg collection
(Moawad A. W. et al., doi:10.7937/TCIA.5FNA-0924), licence CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/).

Changes: series 103 "LIVER 3 PHASE (AP)" cut to slices {first}..{last} of {total} (the liver's
range, {count} slices), the air outside the body set to -1024 HU, new series and instance UIDs,
JPEG-LS lossless compression. Made by `python tools/make_sample_case.py --first {first} --last {last}`.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--last", type=int, required=True)
    parser.add_argument("--out", type=Path, default=REPO / "LiverLesionSeg" / "Resources" / "SampleData" / SAMPLE_FOLDER)
    args = parser.parse_args()

    series = choose_ct_series(scan_folder(args.data / "hcc-tace-seg" / "HCC_006"))
    files = series.files[args.first:args.last + 1]
    series_uid = generate_uid(entropy_srcs=[series.uid, "liverlesionseg sample", str(args.first), str(args.last)])
    tmp = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for number, path in enumerate(files, start=1):
        ds = pydicom.dcmread(path)
        ds.PixelData = clear_outside_air(ds).tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SOPInstanceUID, series_uid])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = "LIVER 3 PHASE (AP), liver slices, LiverLesionSeg sample"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.DerivationDescription = "Cropped to the liver's slices; air outside the body set to -1024 HU"
        ds.InstanceNumber = number
        ds.compress(JPEGLSLossless)
        ds.save_as(tmp / f"slice-{number:03d}.dcm")
    (tmp / "CREDIT.md").write_text(CREDIT.format(first=args.first, last=args.last, total=len(series.files),
                                                 count=len(files)))
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"{args.out}: {len(files)} slices, {size:.1f} MB")
    return 0


def clear_outside_air(ds: pydicom.Dataset) -> np.ndarray:
    """Stored pixel values with the air outside the body set to -1024 HU."""
    stored = ds.pixel_array.copy()
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    body = stored * slope + intercept > -500
    labels, count = ndimage.label(body)
    if count:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        body = ndimage.binary_fill_holes(sizes[labels] > 2000)  # the body and arms, not noise or the table edge
        body = ndimage.binary_dilation(body, iterations=3)
    stored[~body] = np.array(round((-1024 - intercept) / slope)).astype(stored.dtype)
    return stored


if __name__ == "__main__":
    sys.exit(main())
