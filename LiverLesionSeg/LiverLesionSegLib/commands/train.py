"""`liverlesionseg train CASE_OR_FOLDER... --out DIR`: multi-cycle training with checkpoints."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..config import Config
from ..errors import Cancelled, InputError, OutputError
from ..io.atomic import check_output_folder
from ..progress import JsonLinesProgress, Progress
from ..memory import size_text
from ..recipes import RECIPES, recipe

if TYPE_CHECKING:
    from ..slice_store import SliceStore

log = logging.getLogger("LiverLesionSeg")

# command-line option -> (configuration section, setting)
OPTIONS = {
    "cycles": ("train", "cycles"), "epochs": ("train", "epochs_per_cycle"), "lr": ("train", "learning_rate"),
    "min_lr": ("train", "min_learning_rate"), "weight_decay": ("train", "weight_decay"),
    "batch_size": ("train", "batch_size"), "seed": ("train", "seed"),
    "background_fraction": ("train", "background_fraction"), "lesion_oversample": ("train", "lesion_oversample"),
    "max_slices_per_epoch": ("train", "max_slices_per_epoch"), "validate_every": ("train", "validate_every"),
    "bce_weight": ("loss", "bce_weight"), "pos_weight": ("loss", "bce_pos_weight"),
    "dice_weight": ("loss", "dice_weight"), "tversky_weight": ("loss", "tversky_weight"),
    "tversky_alpha": ("loss", "tversky_alpha"), "tversky_beta": ("loss", "tversky_beta"),
    "flip_prob": ("augment", "flip_lr"), "rotate": ("augment", "rotate_degrees"), "scale": ("augment", "scale"),
    "crop_prob": ("augment", "crop_probability"), "synthetic_lesions": ("augment", "synthetic_lesions"),
    "synthetic_halo": ("augment", "synthetic_halo_share"), "masses_beside_liver": ("augment", "masses_beside_liver"),
    "mirrored_lesions": ("augment", "mirrored_lesions"), "pasted_lesions": ("augment", "pasted_lesions"),
    "thick_slices_mm": ("augment", "thick_slices_mm"),
    "liver_reference_hu": ("preprocess", "liver_reference_hu"),
    "hu_window": ("preprocess", None), "context_slices": ("preprocess", "context_slices"),
    "context_mm": ("preprocess", "context_mm"),
    "zoom_tiles": ("preprocess", "zoom_tiles"), "zoom_tile_share": ("preprocess", "zoom_tile_share"),
    "size": ("preprocess", "size"), "arch": ("model", "arch"), "encoder": ("model", "encoder"),
    "pretrained": ("model", "encoder_weights"),
}
# Settings that shape the network or its input: fixed by a checkpoint being resumed or fine-tuned.
FIXED_BY_MODEL = {"preprocess", "model"}
LOCK_FILE = ".liverlesionseg-train.lock"  # in the run folder, locked while a run writes into it
_RUN_SUFFIXES = (".safetensors", ".json")  # the temporaries of a run's writes that a new run may remove


def add_parser(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="train or fine-tune the U-Net",
                       description="Train the liver and lesion U-Net in cycles of epochs, the learning rate "
                                   "restarting each cycle; a checkpoint is written after every epoch and cycle.")
    p.add_argument("cases", nargs="+", metavar="CASE_OR_FOLDER",
                   help="case folders (3D-IRCADb, CT + DICOM SEG, image + label pairs, LiTS, CT-ORG, SLIVER07, BTCV, "
                        "CHAOS, AbdomenCT-1K, FLARE22, MSD, nnU-Net, TotalSegmentator) or folders of cases")
    p.add_argument("--out", required=True, type=Path, help="folder for checkpoints, history and plots")
    p.add_argument("--validate", nargs="+", default=[], metavar="CASE", help="case names held out for validation")
    p.add_argument("--validate-every", type=int, metavar="N",
                   help="validate every N epochs and at the end of each cycle (default: every epoch): each "
                        "validation case is segmented whole, which for many cases takes minutes")
    p.add_argument("--leave-out-unreadable", action="store_true",
                   help="leave out a training case that cannot be read (said in the log) instead of stopping: for "
                        "large datasets, where one damaged file among a thousand should not end the run")
    p.add_argument("--resume", type=Path, metavar="CKPT", help="continue the run of this checkpoint")
    p.add_argument("--init", metavar="CKPT", help="fine-tune this model ('bundled' for the bundled model)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--config", type=Path, metavar="JSON", help="settings file (as written to config.json)")
    start.add_argument("--recipe", choices=sorted(RECIPES), help="a named recipe: notebook or bundled (the "
                                                                "bundled model's); the options below override it")
    t = p.add_argument_group("schedule")
    t.add_argument("--cycles", type=int)
    t.add_argument("--epochs", type=int, help="epochs per cycle")
    t.add_argument("--lr", type=float, help="learning rate at the start of each cycle")
    t.add_argument("--min-lr", type=float, help="learning rate at the end of each cycle")
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--background-fraction", type=float, help="slices without liver drawn, per liver slice")
    t.add_argument("--lesion-oversample", type=float, help="how many times as often lesion slices are drawn")
    t.add_argument("--max-slices-per-epoch", type=int)
    loss = p.add_argument_group("loss")
    loss.add_argument("--bce-weight", type=float)
    loss.add_argument("--pos-weight", type=float, nargs=2, metavar=("LIVER", "LESION"))
    loss.add_argument("--dice-weight", type=float)
    loss.add_argument("--tversky-weight", type=float)
    loss.add_argument("--tversky-alpha", type=float, help="weight of false positives")
    loss.add_argument("--tversky-beta", type=float, help="weight of false negatives")
    aug = p.add_argument_group("augmentation")
    aug.add_argument("--no-augment", action="store_true")
    aug.add_argument("--flip-prob", type=float)
    aug.add_argument("--rotate", type=float, help="largest rotation in degrees")
    aug.add_argument("--scale", type=float, nargs=2, metavar=("MIN", "MAX"))
    aug.add_argument("--crop-prob", type=float)
    aug.add_argument("--synthetic-lesions", type=float, metavar="CHANCE",
                     help="share of liver slices that get a synthetic lesion painted in")
    aug.add_argument("--synthetic-halo", type=float, metavar="SHARE",
                     help="share of the synthetic lesions drawn with a rim of other contrast around their core")
    aug.add_argument("--mirrored-lesions", type=float, metavar="CHANCE",
                     help="share of lesion slices whose real lesions are shown at the opposite contrast "
                          "(mirrored about the liver's median: dark metastases teach bright HCC too)")
    aug.add_argument("--pasted-lesions", type=float, metavar="CHANCE",
                     help="share of liver slices that get a real lesion of another slice in the batch copied into "
                          "their liver, with its contrast to its own liver")
    aug.add_argument("--masses-beside-liver", type=float, metavar="CHANCE",
                     help="share of liver slices that get an unmarked mass painted beside the liver")
    aug.add_argument("--thick-slices-mm", type=float, metavar="MM",
                     help="also train on each case as a reconstruction about this thick (its slices averaged in "
                          "groups); 0: off")
    model = p.add_argument_group("model and input")
    model.add_argument("--arch", help="segmentation_models_pytorch architecture (default Unet)")
    model.add_argument("--encoder", help="encoder (default resnet18)")
    model.add_argument("--pretrained", nargs="?", const="imagenet", help="start the encoder from ImageNet weights")
    model.add_argument("--hu-window", type=float, nargs=2, metavar=("MIN", "MAX"))
    model.add_argument("--context-slices", type=int, help="neighbouring slices on each side as channels (2.5-D)")
    model.add_argument("--context-mm", type=float, metavar="MM",
                       help="those neighbours this far apart, interpolated, whatever the CT's slice spacing")
    model.add_argument("--size", type=int, help="in-plane size of the network input (default 128)")
    model.add_argument("--liver-reference-hu", type=float, metavar="HU",
                       help="shift the liver's box so that the liver's median lands on this HU (needs zoom)")
    model.add_argument("--zoom-tiles", type=int, metavar="N",
                       help="also look at the liver's box as N x N overlapping tiles at finer pixels (needs zoom; "
                            "measured in the README, not bundled)")
    model.add_argument("--zoom-tile-share", type=float, metavar="SHARE",
                       help="each tile's side as a share of the box's (default 0.6; above 1/N)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..checkpoint import load_checkpoint
    from ..model import choose_device
    from ..resources import load_model
    from ..slice_store import slices_on_disk
    from ..train import train

    device = choose_device(args.device)
    resume = load_checkpoint(args.resume, device, with_optimizer=True) if args.resume else None
    init = load_model(None if args.init == "bundled" else args.init, device) if args.init and not resume else None
    config = build_config(args, resume.config if resume else None, init.config if init else None)
    if (args.out / LOCK_FILE).is_file():  # a run may be writing into it: say that, rather than that a run is there
        with run_folder_lock(args.out):
            pass
    check_out_dir(args.out, resuming=resume is not None)
    created = not args.out.exists()
    out = create_out_dir(args.out)  # removed again below where the run ends before writing into it
    with run_folder_lock(out):
        try:
            check_out_dir(out, resuming=resume is not None)  # again: another run may have ended in it meanwhile
            remove_partial_files(out)
            with slices_on_disk(out) as store:
                train_cases, val_cases = load_cases(args.cases, args.validate, config, progress, store,
                                                    args.leave_out_unreadable)
                log.info("Training on %d case(s): %s; validating on %s. Their slices (%s) are kept on disk in %s "
                         "until the run ends.", len(train_cases), ", ".join(c.name for c in train_cases),
                         ", ".join(c.name for c in val_cases) or "none", size_text(store.bytes), store.folder)
                liver_only = [c.name for c in train_cases + val_cases if not c.lesions_segmented]
                if liver_only:
                    log.info("Of these, %d have their lesions not segmented and train (or validate) the liver "
                             "alone: %s.", len(liver_only), ", ".join(liver_only))
                try:
                    result = train(train_cases, val_cases, config, out, device, progress, resume=resume, init=init)
                except KeyboardInterrupt:
                    again = ("--leave-out-unreadable",) if args.leave_out_unreadable else ()
                    raise interrupted(args.cases, out, again) from None
            _plots(result.history, out)
        except BaseException:
            if created:
                _remove_if_empty(out)  # only when the run stopped before writing anything into it
            raise
    if not isinstance(progress, JsonLinesProgress):
        print(f"model: {result.model_path}")
    return 0


def build_config(args: argparse.Namespace, resumed: Config | None, init: Config | None) -> Config:
    if resumed:
        base = resumed
    elif args.config:
        base = Config.from_json_file(args.config)
    else:
        base = recipe(args.recipe) if args.recipe else Config()
    data, given = base.to_dict(), []
    if init is not None:  # the network's shape and input come with the model being fine-tuned
        for section in FIXED_BY_MODEL:
            data[section] = init.to_dict()[section]
    for option, (section, key) in OPTIONS.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        if resumed is not None and option != "cycles":
            raise InputError(f"--{option.replace('_', '-')} cannot change when resuming", args.resume,
                             "resume with the checkpoint's settings (only --cycles may grow), or start a new run")
        if (init is not None or resumed is not None) and section in FIXED_BY_MODEL:
            raise InputError(f"--{option.replace('_', '-')} cannot change the input or network of the model being "
                             "fine-tuned", args.init, "leave it out, or train from scratch")
        given.append(f"--{option.replace('_', '-')}")
        if option == "hu_window":
            data["preprocess"]["hu_min"], data["preprocess"]["hu_max"] = value
        elif option == "thick_slices_mm" and value == 0:
            data[section][key] = None
        else:
            data[section][key] = list(value) if isinstance(value, (list, tuple)) else value
    if args.no_augment:
        data["augment"]["enabled"] = False
    data["train"]["validate"] = list(args.validate)
    # a setting that cannot work is named with where it came from: the file, the options, or both
    source = " with ".join(filter(None, [str(args.config) if args.config and not resumed else "",
                                         " ".join(given)])) or "configuration"
    return Config.from_dict(data, "command line").validated(source)


def check_out_dir(out: Path, resuming: bool) -> None:
    from ..train import FINAL, LAST

    check_output_folder(out, "the training outputs")
    if not resuming and any((out / name).exists() for name in (LAST, FINAL)):
        raise OutputError("already holds a training run; nothing was overwritten", out,
                          f"continue it with --resume {out / LAST}, or choose another --out")


def create_out_dir(out: Path) -> Path:
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder ({exc.strerror})", out) from None
    return out


@contextlib.contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder `out` (a lock file in it) while a run writes there.

    A second run into the folder is refused at once. The operating system releases the lock when the
    process ends, however it ends, so a killed run never blocks the next. The lock file stays: removing
    it would let two runs each lock a file of that name. No lock where there is no `fcntl` (Windows).
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {LOCK_FILE} ({exc.strerror or exc})", out,
                          "choose a folder you can write to") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # a file system without locks (some network shares): train, unguarded
                log.warning("The run folder %s cannot be locked (%s): make sure no other run writes into it.", out,
                            exc.strerror or exc)
            else:
                raise OutputError("another training run is writing into this folder; nothing was written", out,
                                  "wait for it to end, or choose another --out") from None
        yield
    finally:
        os.close(fd)


def interrupted(cases: list[str], out: Path, options: tuple[str, ...] = ()) -> BaseException:
    """What an interrupted run ends with: where a checkpoint is kept, the command that continues it (with
    `options` that a resumed run must be given again)."""
    from ..train import LAST

    last = out / LAST
    if not last.is_file():
        return KeyboardInterrupt()
    command = " ".join(shlex.quote(str(part)) for part in
                       ("liverlesionseg", "train", *cases, *options, "--out", out, "--resume", last))
    return Cancelled("interrupted; the last checkpoint is kept, outputs not finished were not written", last,
                     f"run {command} to continue the run")


def _remove_if_empty(out: Path) -> None:
    """The run folder and its lock file, where nothing else was written into it."""
    with contextlib.suppress(OSError):
        if {p.name for p in out.iterdir()} <= {LOCK_FILE}:
            (out / LOCK_FILE).unlink(missing_ok=True)
            out.rmdir()


def remove_partial_files(out: Path) -> None:
    """Temporary files of checkpoint writes that a killed run (SIGKILL, power loss) left behind: ours
    (`.NAME.XXXX.partial.safetensors`), and the `.tmpXXXXXX` of safetensors' own writer, which
    earlier versions wrote through. Called under the folder's lock: no other run is writing them."""
    from ..checkpoint import is_stray_temporary
    from ..io.atomic import is_partial

    for path in out.iterdir():
        ours = is_partial(path) and path.is_file() and path.name.endswith(_RUN_SUFFIXES)
        if ours or is_stray_temporary(path):
            log.info("Removing %s, left by an interrupted checkpoint write.", path)
            with contextlib.suppress(OSError):
                path.unlink()


def load_cases(paths: list[str], validate: list[str], config: Config, progress: Progress, store: SliceStore,
               leave_out_unreadable: bool = False):
    """The training and validation cases, their slices (and the validation cases' whole CTs) kept on disk
    by `store`: the memory a case is read in is all that training from many cases needs. With
    `leave_out_unreadable`, a training case that cannot be read is left out with a warning (a validation
    case still stops the run: what it would measure was asked for by name)."""
    from ..dataset import prepare_case, prepare_training_case
    from ..io.cases import find_cases, load_case

    refs = find_cases(paths)
    names = [r.name for r in refs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"two cases are named {duplicates[0]}", paths[0], "give each case once")
    unknown = [v for v in validate if v not in names]
    if unknown:
        raise InputError(f"validation case '{unknown[0]}' is not among the cases given", None,
                         f"choose among: {', '.join(names)}")
    train_cases, val_cases, left_out = [], [], []
    for ref in refs:
        held_out = ref.name in validate
        try:
            with progress.stage(f"read {ref.name}"):
                case = load_case(ref)
            prepared = prepare_case(case, config.preprocess, keep_volume=True) if held_out else \
                prepare_training_case(case, config)
        except InputError as exc:  # not a ResourceError: memory or disk running out is no damaged case
            if held_out or not leave_out_unreadable:
                raise
            log.warning("Left out case %s: %s", ref.name, exc)
            left_out.append(ref.name)
            continue
        (val_cases if held_out else train_cases).append(store.keep(prepared))
    if left_out:
        log.warning("Left out %d of the %d cases (they cannot be read): %s.", len(left_out), len(refs),
                    ", ".join(left_out))
        if not train_cases:
            raise InputError(f"none of its {len(left_out)} training cases could be read", paths[0],
                             "see the lines above for what is wrong with each")
    return train_cases, val_cases


def _plots(history: dict, out: Path) -> None:
    from ..plots import finite_loss_steps, has_validation_dice, plot_dice, plot_loss

    if finite_loss_steps(history):  # (none where a finished run was resumed from a checkpoint without its history)
        plot_loss(history, out / "loss.png")
    if has_validation_dice(history):  # (lesions' where segmented)
        plot_dice(history, out / "dice.png")
