"""Outputs and the process around them, from an adversarial sweep of the command line: the overlay
inside "all or none", an output over a file of the input folder, names that are not UTF-8, a pipe
or device as an output, a reader that stops reading `--progress json`, a terminal that cannot show
a name, SIGHUP. Each was lost data, a crash or an internal error before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bad_inputs
from LiverLesionSegLib import cli
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import OutputError
from LiverLesionSegLib.io.cases import find_input_ct
from LiverLesionSegLib.io.write import write_segmentation_output
from slicer_logic_cases import file_digest


@pytest.fixture
def ct_and_labels(data_dir, tmp_path) -> tuple[Path, Path]:
    """Six real CT slices in `tmp/ct` and a label map of them (`labels.nii.gz`: a block of liver
    holding a block of lesion), to `measure` without a model."""
    bad_inputs.copy_slices(data_dir, tmp_path / "ct")
    ct = find_input_ct(tmp_path / "ct").read()
    labels = np.zeros(ct.shape, np.uint8)
    labels[1:5, 150:350, 150:350] = 1
    labels[2:4, 200:240, 200:240] = 2
    write_segmentation_output(tmp_path / "labels.nii.gz", ct.with_array(labels))
    return tmp_path / "ct", tmp_path / "labels.nii.gz"


def cli_run(*argv, env: dict | None = None, **popen) -> subprocess.CompletedProcess:
    """The command line in its own process (a fault that aborts it cannot take the tests along)."""
    return subprocess.run([sys.executable, "-m", "LiverLesionSegLib", *map(os.fsdecode, argv)], capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=300, **popen)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_an_overlay_that_fails_leaves_every_earlier_output_as_it_was(ct_and_labels, tmp_path, capsys):
    """The overlay was drawn after the other outputs were renamed over the user's files: a failure
    (or Ctrl-C) while drawing it left them replaced and the run reported as failed."""
    ct, labels = ct_and_labels
    out = tmp_path / "out"
    out.mkdir()
    earlier = {name: out / name for name in ("seg.nrrd", "t.csv", "o.png")}
    for path in earlier.values():
        path.write_bytes(b"an earlier output")
    with bad_inputs._disk_full_at_flush("o.png"):
        code = main(["measure", str(ct), str(labels), "-o", str(earlier["seg.nrrd"]), "--lesions",
                     str(earlier["t.csv"]), "--overlay", str(earlier["o.png"]), "--progress", "none"])
    assert code == 6 and "disk is full" in capsys.readouterr().err
    assert all(path.read_bytes() == b"an earlier output" for path in earlier.values())
    assert leftovers(out) == []


@pytest.mark.parametrize("short_by", [64, 8192], ids=["at its end", "within"])
@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".nii", ".nii.gz"])
def test_an_image_written_past_a_file_size_limit_fails_leaving_nothing_and_printing_nothing(tmp_path, capfd, suffix,
                                                                                          short_by):
    """A limit that the file's last bytes pass: the NRRD writer wrote it cut short and said nothing, and
    it would have replaced the user's output. The MetaImage writer printed a line of its own beside
    the error."""
    from LiverLesionSegLib.io.write import write_image
    from LiverLesionSegLib.volume import Volume

    labels = np.random.default_rng(0).integers(0, 3, (8, 64, 64)).astype(np.uint8)
    volume = Volume(labels, (1, 1, 1), (0, 0, 0), np.eye(3))
    size = write_image(tmp_path / f"unlimited{suffix}", volume).stat().st_size
    (tmp_path / f"unlimited{suffix}").unlink()
    capfd.readouterr()
    with bad_inputs._file_size_limit(size - short_by), pytest.raises(OutputError) as exc:
        write_image(tmp_path / f"p{suffix}", volume)
    assert f"p{suffix}: the file would be larger than allowed here" in str(exc.value)
    assert list(tmp_path.iterdir()) == []
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("inside", ["slice", "labels"])
def test_an_output_over_a_file_of_the_input_folder_is_refused(ct_and_labels, data_dir, tmp_path, capsys, inside):
    """`-o series/one_slice.dcm` replaced a CT slice (the series then broken for good); `-o
    case/labels.nii.gz` a case's reference labels."""
    ct, labels = ct_and_labels
    if inside == "slice":
        folder, victim = ct, sorted(ct.iterdir())[2]
    else:
        folder = bad_inputs.small_case(data_dir, tmp_path / "case")
        victim = folder / "labels.nii.gz"
    digest = file_digest(victim)
    code = main(["segment", str(folder), "-o", str(victim), "--model", str(tmp_path / "no model"),
                 "--progress", "none"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 6 and error.startswith(f"liverlesionseg: error: {victim}: the output would overwrite a file of "
                                          "the input folder")
    assert file_digest(victim) == digest


def test_names_that_are_not_utf8_are_refused_in_one_line(ct_and_labels, tmp_path):
    """A Latin-1 name (an old system, a FAT stick): ITK aborted the whole process (SIGABRT), no error
    line, temporaries left."""
    ct, labels = ct_and_labels
    odd = os.fsdecode(b"r\xe9sultat.nii.gz")
    done = cli_run("measure", ct, labels, "-o", tmp_path / odd, "--progress", "none")
    assert done.returncode == 6, done.stderr
    assert b"the name holds bytes that are not UTF-8" in done.stderr and b"Traceback" not in done.stderr
    os.rename(labels, tmp_path / os.fsdecode(b"labels\xff.nii.gz"))
    done = cli_run("measure", ct, tmp_path / os.fsdecode(b"labels\xff.nii.gz"), "-o", tmp_path / "out.nii.gz",
                   "--progress", "none")
    assert done.returncode == 3 and b"the name holds bytes that are not UTF-8" in done.stderr
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.nii.gz").exists()


def test_a_pipe_as_an_output_is_refused_not_replaced(ct_and_labels, tmp_path, capsys):
    """Renaming over a pipe or a device replaced it with a file (as root, `--lesions /dev/null`
    would have replaced the system's)."""
    ct, labels = ct_and_labels
    os.mkfifo(tmp_path / "table.csv")
    code = main(["measure", str(ct), str(labels), "--lesions", str(tmp_path / "table.csv"), "--progress", "none"])
    assert code == 6 and "the output is a device or a pipe, not a file" in capsys.readouterr().err
    assert (tmp_path / "table.csv").is_fifo()


def test_a_reader_that_stops_reading_json_progress_gets_one_line(ct_and_labels, tmp_path):
    """`--progress json | head -1`: an internal error and two chained tracebacks before."""
    ct, labels = ct_and_labels
    command = [sys.executable, "-m", "LiverLesionSegLib", "measure", str(ct), str(labels), "--lesions",
               str(tmp_path / "t.csv"), "--progress", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader goes away before the first line
    _, err = process.communicate(timeout=300)
    assert process.returncode == 6, err
    assert err.decode().strip().splitlines()[-1].startswith("liverlesionseg: error: the program reading the output "
                                                            "stopped reading")
    assert b"Traceback" not in err and leftovers(tmp_path) == []


def test_a_terminal_that_cannot_show_the_name_still_gets_the_summary(ct_and_labels, tmp_path):
    """An ASCII terminal and an output named "Patiënt 李": the outputs were written, then the summary
    failed with an internal error (exit 1)."""
    ct, labels = ct_and_labels
    done = cli_run("measure", ct, labels, "-o", tmp_path / "Patiënt 李.nii.gz", "--progress", "none",
                   env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert b"Pati\\xebnt \\u674e.nii.gz" in done.stdout and (tmp_path / "Patiënt 李.nii.gz").exists()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this system")
def test_a_closed_terminal_ends_a_run_as_ctrl_c_does():
    """SIGHUP (a terminal closed, an SSH session dropped) killed the process in the middle of its
    writes, leaving their temporaries; now it is taken as Ctrl-C, which abandons them cleanly."""
    before = signal.getsignal(signal.SIGHUP)
    with cli._signals_end_cleanly():
        assert signal.getsignal(signal.SIGHUP) is signal.default_int_handler
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_mistyped_option_with_json_progress_ends_with_a_json_error_event(capsys):
    """Exit 2 from argparse sent nothing on the JSON stream a program was reading."""
    with pytest.raises(SystemExit) as raised:
        main(["segment", "x.nii.gz", "--no-such-option", "--progress", "json"])
    out, err = capsys.readouterr()
    event = json.loads(out.strip().splitlines()[-1])
    assert raised.value.code == 2 and event["event"] == "error" and event["exit_code"] == 2
    assert "--no-such-option" in err
