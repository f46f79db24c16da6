"""`liverlesionseg plot SOURCE --out DIR`: the notebook's pictures as PNG.

SOURCE is a training run folder, its history.json or a checkpoint (loss per step with cycle
boundaries, Dice per epoch), or a case (prediction panels: CT, truth, prediction, probability).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError, refuse_an_empty_file
from ..io.atomic import output_folder
from ..progress import JsonLinesProgress, Progress
from ..report import refuse_a_report


def add_parser(sub, common) -> None:
    p = sub.add_parser("plot", parents=[common], help="draw training curves or prediction panels",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("source", type=Path, help="run folder, history.json, checkpoint, or a case / CT")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNG files (created if missing)")
    p.add_argument("--model", type=Path, metavar="FILE", help="for a case: the checkpoint (default: bundled)")
    p.add_argument("--slices", type=int, nargs="+", metavar="K", help="for a case: the slices to show")
    p.add_argument("--log-scale", action="store_true", help="loss on a logarithmic axis")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    history = _history(args.source)
    with output_folder(args.out, "the pictures"):
        written = _plot_history(history, args) if history is not None else _plot_case(args, progress)
    progress.emit({"event": "done", "outputs": [str(path) for path in written],
                   "message": "wrote " + ", ".join(str(path) for path in written)})
    if not isinstance(progress, JsonLinesProgress):  # stdout carries only the JSON events
        for path in written:
            print(path)
    return 0


def _history(source: Path):
    """The training history in `source`, or None when `source` is not a training artefact."""
    if source.is_dir() and (source / "history.json").is_file():
        source = source / "history.json"
    refuse_a_report(source, "a training run or a case")
    if source.suffix == ".json":
        refuse_an_empty_file(source)
        try:
            history = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the training history ({exc})", source, "give history.json of a run") from None
        if not isinstance(history, dict) or "steps" not in history:
            raise InputError("is not a training history (no 'steps')", source, "give history.json of a run")
        return _with_losses(history, source)
    if source.suffix == ".safetensors":
        from ..checkpoint import read_metadata

        _, state = read_metadata(source)
        if not state.get("history", {}).get("steps"):
            raise InputError("holds no training history", source, "give a checkpoint written during training")
        return _with_losses(state["history"], source)
    return None


def _with_losses(history: dict, source: Path) -> dict:
    """`history`, where it holds a finite loss for at least one step (an InputError naming `source`
    where not: a history cut short, or edited)."""
    from ..plots import finite_loss_steps

    if not finite_loss_steps(history):
        raise InputError("the training history holds no step with a finite loss", source,
                         "plot a history from a training run")
    return history


def _plot_history(history: dict, args: argparse.Namespace) -> list[Path]:
    from ..plots import has_validation_dice, plot_dice, plot_loss

    written = [plot_loss(history, args.out / "loss.png", log_scale=args.log_scale)]
    if has_validation_dice(history):  # (an epoch's Dice of null or text was taken for one, and refused late)
        written.append(plot_dice(history, args.out / "dice.png"))
    return written


def _plot_case(args: argparse.Namespace, progress: Progress) -> list[Path]:
    from ..infer import segment_volume
    from ..io.cases import find_cases, load_case, read_input_volume
    from ..model import choose_device
    from ..plots import check_slices, plot_predictions
    from ..resources import load_model

    try:
        case = load_case(find_cases([args.source])[0])
        ct, truth_lesion, truth_liver, name = case.ct, case.lesion, case.liver, case.name
    except InputError:  # a CT without labels
        try:
            ct, truth_lesion, truth_liver, name = read_input_volume(args.source), None, None, args.source.name
        except InputError as exc:
            if not args.source.is_dir() or exc.path != str(args.source):
                raise  # not a folder, or a fault of one of its files: that file's own message
            # a folder that is no CT may be a run folder without its history yet: say both
            raise type(exc)(f"is neither a training run (it has no history.json) nor a CT: {exc.problem}",
                            exc.path, "give a run folder, its history.json or checkpoint, or a case or CT") from None
    if args.slices is not None:  # before the model runs, not after
        check_slices(args.slices, ct.shape[0])
    device = choose_device(args.device)
    checkpoint = load_model(args.model, device)
    result = segment_volume(ct, checkpoint, None, device, progress)
    path = args.out / f"{name.split('.nii')[0].split('.nrrd')[0]}_predictions.png"
    return [plot_predictions(ct, truth_lesion, truth_liver, result.lesion, result.liver,
                             result.lesion_probability, path, slices=args.slices)]
