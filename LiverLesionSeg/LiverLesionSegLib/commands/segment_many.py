"""`liverlesionseg segment A B C -o FOLDER`: several CTs one after the other, the model loaded once.

Each result goes to FOLDER/NAME.FORMAT (NAME from its input, FORMAT from `--format`), with `--sr`
and `--rtstruct` its DICOM SR report and RT structure set beside it ("NAME SR.dcm", "NAME RS.dcm"),
all together or none. An input that cannot be segmented is told in a line naming it and skipped;
the others are still written, and the command ends with one error line listing what was skipped
and the exit status of the first failure.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..errors import InputError, LiverLesionSegError, OutputError
from ..progress import JsonLinesProgress, Progress
from .segment import (BESIDE, MANY_FORMATS, DicomBeside, case_name, check_distinct, dicom_outputs, find_input,
                      load_checkpoints, report, segment_input, write_result)

log = logging.getLogger("LiverLesionSeg")
DEFAULT_FORMAT = MANY_FORMATS[0]


def run_many(args: argparse.Namespace, progress: Progress) -> int:
    from ..io.atomic import check_writable, output_folder
    from ..io.cases import input_exists
    from ..io.dicom_export import is_dicom_report
    from ..io.write import output_kind

    folder = _output_folder(args)
    if is_dicom_report(args.lesions):
        raise OutputError("a DICOM SR lesion report lies on one CT series, and several inputs were given",
                          args.lesions, "write the lesion table of several inputs as .csv, and --sr for a "
                                        "report beside each result")
    if args.rtstruct not in (None, BESIDE):
        raise OutputError("an RT structure set lies on one CT series, and several inputs were given", args.rtstruct,
                          "give --rtstruct without a file name: each input's is written beside its result")
    missing = [path for path in args.input if not input_exists(Path(path))]
    if missing:
        raise InputError(f"does not exist ({len(missing)} of the {len(args.input)} inputs)", missing[0],
                         "check the paths; nothing was segmented")
    names = [case_name(path) for path in args.input]
    outputs = [folder / f"{name}.{args.format or DEFAULT_FORMAT}" for name in names]
    besides = [DicomBeside.of(output, args) for output in outputs]
    _check_names(args.input, names, folder)
    beside_paths = [path for beside in besides for path in beside.paths]
    to_write = outputs + beside_paths + ([args.lesions] if args.lesions else [])
    check_distinct(to_write, args.input)
    kind = output_kind(outputs[0])
    with output_folder(folder, "the results"):  # a run that wrote nothing leaves no folder it made
        for path in to_write:
            check_writable(path)

        timings: dict[str, float] = {}
        started = time.perf_counter()
        device, checkpoints = load_checkpoints(args, progress, timings)
        tables, failed = {}, []
        for number, (input_path, output, name, beside) in enumerate(zip(args.input, outputs, names, besides), 1):
            log.info("Input %d of %d: %s", number, len(outputs), input_path)
            case_timings: dict[str, float] = {}
            reports = beside.tables()
            try:
                with find_input(input_path, args.series, dicom_outputs(output, kind, reports, beside.structures),
                                case_timings) as found:
                    volume, result, lesions = segment_input(found, args, checkpoints, device, progress, case_timings)
                    with progress.stage("write", case_timings):
                        write_result(output, found.series, volume, result, checkpoints, tables=reports,
                                     measured=(name, lesions), structures=beside.structures)
            except LiverLesionSegError as exc:
                log.warning("Skipped input %d of %d: %s", number, len(outputs), exc)
                earlier = [path for path in (output, *beside.paths) if path.exists()]
                if earlier:  # a rerun: what is there is not this run's result
                    log.warning("Left as it was, from an earlier run: %s", ", ".join(str(path) for path in earlier))
                failed.append((input_path, exc))
                continue
            tables[name] = lesions
            report(output, result, lesions, case_timings, progress, beside.paths, event="case")
        if args.lesions and tables:
            from ..report import write_lesion_table

            write_lesion_table(args.lesions, tables)
        return _finish(folder, outputs, failed, progress, timings["load model"], time.perf_counter() - started)


def _output_folder(args: argparse.Namespace) -> Path:
    if args.output is None:
        raise OutputError("no output folder given for several inputs", None,
                          f"add -o FOLDER: each result goes there as NAME.{args.format or DEFAULT_FORMAT}")
    if args.probabilities or args.overlay:
        raise OutputError("--probabilities and --overlay take one input", args.output,
                          "segment that case on its own for them")
    folder = args.output
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file; several inputs need an output folder", folder, "give a folder with -o")
    if not folder.parent.is_dir():
        raise OutputError("the output folder's parent does not exist", folder.parent, "create it first")
    return folder


def _check_names(inputs: list[Path], names: list[str], folder: Path) -> None:
    """Two inputs of one name (two folders called 'ct', say) would write one result."""
    seen: dict[str, Path] = {}
    for path, name in zip(inputs, names):
        if name in seen and Path(seen[name]).resolve() == Path(path).resolve():
            raise InputError("is given twice among the inputs", path, "give each input once")
        if name in seen:
            raise OutputError(f"{seen[name]} and {path} would both be written as {name}", folder,
                              "segment them into different folders")
        seen[name] = path


def _finish(folder: Path, outputs: list[Path], failed: list, progress: Progress, load_seconds: float,
            seconds: float) -> int:
    """The last event and line, with the time of the whole run and of loading the model (once; each
    case's own times are on its line)."""
    written = len(outputs) - len(failed)
    message = (f"{written} of {len(outputs)} inputs segmented into {folder} in {seconds:.1f} s, the model loaded "
               f"once in {load_seconds:.2f} s")
    progress.emit({"event": "done", "output": str(folder), "written": written,
                   "skipped": [str(path) for path, _ in failed], "seconds": round(seconds, 3),
                   "load_model_seconds": round(load_seconds, 3), "message": message})
    if not isinstance(progress, JsonLinesProgress):
        print(message)
    if failed:
        first = failed[0][1]
        others = "the others were written" if written else "none was written"
        error = type(first)(f"{len(failed)} of {len(outputs)} inputs could not be segmented: "
                            + ", ".join(str(path) for path, _ in failed), None,
                            f"each one's problem is on the lines above; {others}")
        raise error
    return 0
