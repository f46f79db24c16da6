"""Carry a labelled case's liver and lesion masks onto another CT series of the same patient and
study (another contrast phase), by registration, as a training case of its own.

    python tools/propagate_labels.py ~/.cache/liverlesionseg/data/tace/RadCTTACEomics_0697 \
        ~/.cache/liverlesionseg/data/tace/RadCTTACEomics_0697/11_AP_Ax5.00mm \
        ~/.cache/liverlesionseg/phases/RadCTTACEomics_0697-AP

The labelled CT is registered onto the other series (a translation, then a B-spline deformation,
both by Mattes mutual information in and around the liver), and the label map is resampled onto
the other series' grid with nearest neighbour. Writes OUT/image.nii.gz (the other series, as read)
and OUT/labels.nii.gz (0 background, 1 liver, 2 lesion): the image-pair layout every reader of the
project takes. Name OUT after the labelled case and a dash, so that `benchmarks/accuracy.py
--extra-train` leaves it out of that patient's fold.

The labels are the labelled phase's, moved: what the other phase shows differently (a lesion seen
in one phase only) is not redrawn, and the liver's edge is as good as the registration (the
command prints how far it moved the liver).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

from LiverLesionSegLib.errors import InputError, LiverLesionSegError  # noqa: E402
from LiverLesionSegLib.io.atomic import atomic_paths  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, load_case, read_input_volume  # noqa: E402
from LiverLesionSegLib.io.write import save_image, save_labels  # noqa: E402
from LiverLesionSegLib.volume import Case, Volume  # noqa: E402

LIVER_MARGIN_MM = 20.0  # the registration looks at the liver and this much around it
MIN_LIVER_OVERLAP = 0.5  # of the labelled liver, on the other series' grid before registration


def register(fixed: Volume, moving: Volume, moving_liver: np.ndarray, bspline_iterations: int = 100,
             seed: int = 0) -> sitk.Transform:
    """The transform from `fixed`'s physical space to `moving`'s (what resampling `moving` onto
    `fixed` takes): a translation, then a B-spline deformation on a coarse grid, by mutual
    information over `moving`'s liver (`moving_liver`, [k, j, i]) and `LIVER_MARGIN_MM` around it."""
    fixed_image = sitk.Cast(fixed.to_sitk(), sitk.sitkFloat32)
    moving_image = sitk.Cast(moving.to_sitk(), sitk.sitkFloat32)
    margin = [max(1, round(LIVER_MARGIN_MM / s)) for s in moving.spacing]
    region = sitk.BinaryDilate(moving.with_array(moving_liver.astype(np.uint8)).to_sitk(), margin)

    def method() -> sitk.ImageRegistrationMethod:
        registration = sitk.ImageRegistrationMethod()
        registration.SetMetricAsMattesMutualInformation(50)  # two phases: the same tissue, other HU
        registration.SetMetricSamplingStrategy(registration.RANDOM)
        registration.SetMetricSamplingPercentage(0.2, seed)
        registration.SetMetricMovingMask(region)
        registration.SetInterpolator(sitk.sitkLinear)
        return registration

    shift = method()
    shift.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-3, 200)
    shift.SetOptimizerScalesFromPhysicalShift()
    shift.SetInitialTransform(sitk.TranslationTransform(3), inPlace=False)
    translation = shift.Execute(fixed_image, moving_image)
    if bspline_iterations <= 0:
        return translation

    deformation = sitk.BSplineTransformInitializer(fixed_image, [6, 6, 4])
    deformable = method()
    deformable.SetOptimizerAsLBFGSB(1e-5, bspline_iterations)
    deformable.SetMovingInitialTransform(translation)
    deformable.SetInitialTransform(deformation, inPlace=True)
    deformable.Execute(fixed_image, moving_image)
    return sitk.CompositeTransform([translation, deformation])


def propagated(case: Case, target: Volume, bspline_iterations: int = 100) -> tuple[Volume, float]:
    """`case`'s label map on `target`'s grid, registered; and the mean distance in mm the
    registration moved the liver's voxels by."""
    labels = case.label_map().astype(np.uint8)
    liver = labels > 0
    unmoved = resampled(case.ct.with_array(labels), target, sitk.Transform())
    if (unmoved > 0).sum() * np.prod(target.spacing) < MIN_LIVER_OVERLAP * liver.sum() * np.prod(case.ct.spacing):
        raise InputError(f"holds less than {MIN_LIVER_OVERLAP:.0%} of the labelled liver of {case.name}",
                         target.source or None, "give another series of the same patient and study, "
                                                "covering the liver")
    transform = register(target, case.ct, liver, bspline_iterations)
    moved = resampled(case.ct.with_array(labels), target, transform)
    return target.with_array(moved), mean_displacement_mm(transform, target, moved > 0)


def resampled(labels: Volume, target: Volume, transform: sitk.Transform) -> np.ndarray:
    """`labels` (a label map) resampled onto `target`'s grid through `transform`, nearest neighbour."""
    image = sitk.Resample(labels.to_sitk(), target.to_sitk(), transform, sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(image).astype(np.uint8)


def mean_displacement_mm(transform: sitk.Transform, grid: Volume, mask: np.ndarray, samples: int = 2000) -> float:
    """The mean distance `transform` moves the points of `mask` (on `grid`) by."""
    ijk = np.argwhere(mask)[:, ::-1]
    if len(ijk) == 0:
        return 0.0
    ijk = ijk[np.random.default_rng(0).choice(len(ijk), min(samples, len(ijk)), replace=False)]
    points = grid.physical_points(ijk)
    return float(np.mean([np.linalg.norm(np.subtract(transform.TransformPoint(tuple(p)), p)) for p in points]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", type=Path, help="the labelled case (any layout the project reads)")
    parser.add_argument("series", type=Path, help="the other CT series: a DICOM folder or an image file")
    parser.add_argument("out", type=Path, help="the folder to write image.nii.gz and labels.nii.gz into")
    parser.add_argument("--series-id", default=None, help="with several CT series in SERIES: its UID, number "
                                                          "or description")
    parser.add_argument("--bspline-iterations", type=int, default=100, help="0: a translation only")
    args = parser.parse_args()
    try:
        refs = find_cases([args.case])
        if len(refs) != 1:
            raise InputError(f"holds {len(refs)} labelled cases", args.case, "give one case folder")
        case = load_case(refs[0])
        target = read_input_volume(args.series, args.series_id)
        labels, moved_mm = propagated(case, target, args.bspline_iterations)
        args.out.mkdir(parents=True, exist_ok=True)
        with atomic_paths(args.out / "image.nii.gz", args.out / "labels.nii.gz") as (image_path, labels_path):
            save_image(image_path, target)
            save_labels(labels_path, labels, "labelmap")
    except LiverLesionSegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    voxel_ml = np.prod(target.spacing) / 1000
    print(f"Wrote {args.out}: liver {(labels.array > 0).sum() * voxel_ml:.0f} mL (labelled: "
          f"{(case.label_map() > 0).sum() * np.prod(case.ct.spacing) / 1000:.0f} mL), lesion "
          f"{(labels.array == 2).sum() * voxel_ml:.1f} mL; the registration moved the liver by "
          f"{moved_mm:.1f} mm on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
