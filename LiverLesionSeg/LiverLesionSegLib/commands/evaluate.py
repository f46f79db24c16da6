"""`liverlesionseg evaluate CASE... --out DIR`: per-case 3-D metrics, from a model or from saved
predictions, written as metrics.csv, metrics.json and lesions.csv."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError
from ..progress import JsonLinesProgress, Progress

log = logging.getLogger("LiverLesionSeg")

# "NAME SEG.dcm" and "NAME RS.dcm": as Slicer's export and `segment --rtstruct` name them
PREDICTION_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha", ".dcm", " SEG.dcm", " RS.dcm")


def add_parser(sub, common) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="measure a model or saved predictions against the truth",
                       description="Evaluate per case in 3-D: lesion and liver Dice, lesion detection, ASSD and "
                                   "HD95 in mm, lesion tables; and a global Dice over all cases.")
    p.add_argument("cases", nargs="+", metavar="CASE_OR_FOLDER", help="labelled cases (as for train)")
    p.add_argument("--out", required=True, type=Path, help="report folder (created if missing)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, metavar="FILE", action="append",
                        help="segment the cases with this checkpoint (default: the bundled model); given several "
                             "times, with the majority vote of those models")
    source.add_argument("--predictions", type=Path, metavar="DIR",
                        help="saved label maps named CASE.nii.gz / CASE.nrrd / CASE.mha / CASE.seg.nrrd (1 liver, "
                             "2 lesion), or DICOM SEGs or RTSTRUCTs made on the case's CT series named CASE.dcm "
                             "(or 'CASE SEG.dcm', 'CASE RS.dcm', as Slicer's export names them)")
    p.add_argument("--save-predictions", action="store_true", help="also write each case's label map (CASE.nii.gz)")
    p.add_argument("--panels", action="store_true", help="also write prediction panels (CASE.png)")
    p.add_argument("--batch-size", type=int, help="slices per batch")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..io.atomic import output_folder
    from ..io.cases import find_cases

    refs = find_cases(args.cases)
    predictor = _Predictor(args) if args.predictions is None else None
    if args.predictions is not None and not args.predictions.is_dir():
        raise InputError("is a file, not a folder" if args.predictions.exists() else
                         "the predictions folder does not exist", args.predictions,
                         "give the folder of label maps, each named after its case")
    with output_folder(args.out, "the report"):
        return _evaluate(args, progress, refs, predictor)


def _evaluate(args: argparse.Namespace, progress: Progress, refs, predictor) -> int:
    """Every case measured, the report written into `args.out`."""
    from ..io.cases import load_case
    from ..lesions import lesion_table
    from ..metrics import evaluate_case, summarise
    from ..report import write_report

    results, lesions, cautions = [], {}, {}
    for ref in refs:
        with progress.stage(f"read {ref.name}"):
            case = load_case(ref)
        if not case.labelled:
            raise InputError("has no liver and lesion masks to compare with", ref.name, "evaluate labelled cases")
        if predictor:
            liver, lesion, cautions[case.name] = predictor.predict(case, progress, args.out)
        else:
            liver, lesion = _read_prediction(args.predictions, case)
        true_liver = case.liver.array | case.lesion.array  # the organ includes its lesions
        metrics = evaluate_case(case.name, liver.array, lesion.array, true_liver, case.lesion.array, case.ct.spacing)
        if not case.lesions_segmented:  # its empty lesion mask would count every lesion found as false
            metrics = metrics.with_lesions_unmeasured()
        results.append(metrics)
        lesions[case.name] = lesion_table(lesion, case.ct)
        if metrics.lesions_segmented:
            log.info("%s: lesion Dice %.3f, liver Dice %.3f, lesions found %d of %d, %d false", case.name,
                     metrics.lesion_dice, metrics.liver_dice, metrics.detected_lesions, metrics.true_lesions,
                     metrics.pred_false_positive_lesions)
        else:
            log.info("%s: liver Dice %.3f; its lesions are not segmented, so they are not measured", case.name,
                     metrics.liver_dice)
    summary = summarise(results)
    config = predictor.config() if predictor else {"predictions": str(args.predictions)}
    write_report(args.out, results, summary, lesions, config, cautions if predictor else None)
    progress.emit({"event": "done", "summary": summary, "out": str(args.out)})
    if not isinstance(progress, JsonLinesProgress):
        _print_summary(results, summary, args.out)
    return 0


class _Predictor:
    """Segments cases with one checkpoint (or the majority vote of several), optionally saving label
    maps and panels."""

    def __init__(self, args: argparse.Namespace):
        from ..model import choose_device
        from ..resources import load_model

        self.device = choose_device(args.device)
        self.models = args.model or [None]
        self.checkpoints = [load_model(path, self.device) for path in self.models]
        if args.batch_size:
            for checkpoint in self.checkpoints:
                checkpoint.config.inference.batch_size = args.batch_size
        self.save_predictions, self.panels = args.save_predictions, args.panels

    def config(self) -> dict:
        """The (first) model's settings, and the models voted on when there are several."""
        config = self.checkpoints[0].config.to_dict()
        if len(self.models) > 1:
            config["majority_vote_of"] = [str(path) for path in self.models]
        return config

    def predict(self, case, progress: Progress, out: Path):
        from ..ensemble import check_models_fit, segment_with_models
        from ..io.write import write_segmentation_output

        check_models_fit(case.ct, self.checkpoints, case.name)
        result = segment_with_models(case.ct, self.checkpoints, self.device, progress)
        if self.save_predictions:
            write_segmentation_output(out / f"{case.name}.nii.gz", case.ct.with_array(result.label_map()))
        if self.panels:
            from ..plots import plot_predictions

            plot_predictions(case.ct, case.lesion, case.liver, result.lesion, result.liver,
                             result.lesion_probability, out / f"{case.name}.png")
        return result.liver, result.lesion, result.caveats


def _read_prediction(folder: Path, case):
    from ..io.cases import read_segmentation

    found = [folder / f"{case.name}{suffix}" for suffix in PREDICTION_SUFFIXES
             if (folder / f"{case.name}{suffix}").exists()]
    if len(found) > 1:  # which one was meant cannot be known: scoring either could be the wrong one
        raise InputError(f"holds {len(found)} predictions for case {case.name} ({', '.join(p.name for p in found)})",
                         folder, "keep one of them in the folder")
    if found:
        return read_segmentation(found[0], case.ct)
    raise InputError(f"no prediction for case {case.name}", folder,
                     f"name it {case.name}.nii.gz, {case.name}.nrrd, {case.name}.mha, {case.name}.seg.nrrd or "
                     f"{case.name}.dcm (DICOM SEG or RTSTRUCT; or '{case.name} SEG.dcm', '{case.name} RS.dcm')")


def _print_summary(results, summary: dict, out: Path) -> None:
    print(f"{'case':<24} {'lesion Dice':>11} {'liver Dice':>10} {'found':>7} {'false':>5} {'HD95 mm':>8}")
    for m in results:
        hd95 = "-" if m.lesion_hd95_mm is None else f"{m.lesion_hd95_mm:.1f}"
        if not m.lesions_segmented:  # its liver alone is measured
            print(f"{m.name:<24} {'-':>11} {m.liver_dice:>10.3f} {'-':>7} {'-':>5} {hd95:>8}")
            continue
        print(f"{m.name:<24} {m.lesion_dice:>11.3f} {m.liver_dice:>10.3f} "
              f"{m.detected_lesions:>3}/{m.true_lesions:<3} {m.pred_false_positive_lesions:>5} {hd95:>8}")
    keys = [k for k in ("lesion_dice_mean", "lesion_dice_global", "liver_dice_mean") if k in summary]
    print("; ".join(f"{k} {summary[k]:.3f}" for k in keys if summary[k] is not None))
    print(f"Report: {out / 'metrics.csv'}, {out / 'metrics.json'}, {out / 'lesions.csv'}")
