"""Faults around whole processes: two runs into one folder, kills and interrupts during checkpoint
writes, a report failing half-way, and JSON progress of `plot`.

Training runs as a real process (`python -m LiverLesionSegLib train`) on a small real case; a test
waits for a file to appear in the run folder and then signals the process (no hook in the child).
A second run holding the folder is, where said, this test process holding the folder's lock.
"""

from __future__ import annotations

import csv
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import SimpleITK as sitk

import bad_inputs
from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.commands.train import LOCK_FILE, run_folder_lock
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.slice_store import STORE_FOLDER
from LiverLesionSegLib.train import LAST, cycle_checkpoint_name
from test_faults import SCHEDULE, digest, finish, partial_files, train_process, wait_for

CASE = "RadCTTACEomics_0697"


def hidden_files(folder: Path) -> list[str]:
    """Temporaries and leftovers: every hidden file in `folder` but the run's lock file."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != LOCK_FILE)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


@pytest.fixture(scope="module")
def case(data_dir, tmp_path_factory) -> Path:
    return bad_inputs.small_case(data_dir, tmp_path_factory.mktemp("case") / "ircadb17-crop")


@pytest.fixture(scope="module")
def killed(case, tmp_path_factory) -> dict:
    """A run killed with SIGKILL in the middle of writing the checkpoint of its second epoch."""
    for _ in range(3):
        out = tmp_path_factory.mktemp("killed") / "run"
        process = train_process(str(case), "--out", str(out), *SCHEDULE)
        if not wait_for(lambda: (out / LAST).is_file(), process, "the first checkpoint", poll_s=0.01):
            pytest.fail(f"training ended before its first checkpoint: {process.communicate()[1][-2000:]}")
        partial = wait_for(lambda: partial_files(out, LAST), process, "the second checkpoint write")
        if partial:
            time.sleep(0.05)  # into the write, past the temporary's creation
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=120)
        if partial and process.returncode == -signal.SIGKILL:
            return {"out": out, "left": hidden_files(out)}
    pytest.fail("three runs ended before the second checkpoint write could be caught")


@pytest.fixture(scope="module")
def resumed(killed, case) -> dict:
    """The killed run, resumed in its folder while this process holds the folder's lock (refused),
    then again once the lock is free."""
    out = killed["out"]
    before = {p.name: digest(p) for p in out.iterdir() if p.is_file()}
    args = [str(case), "--out", str(out), "--resume", str(out / LAST)]
    with run_folder_lock(out):
        refused = finish(train_process(*args))
    after_refusal = {p.name: digest(p) for p in out.iterdir() if p.is_file()}
    code, stdout, err = finish(train_process(*args))
    return {"out": out, "refused": refused, "unchanged": before == after_refusal, "code": code, "err": err}


def test_sigkill_during_a_checkpoint_write_leaves_only_our_temporary_and_the_resume_removes_it(killed, resumed):
    """safetensors' own `.tmpXXXXXX` (as large as the checkpoint) is never left: only the write's
    `.NAME.XXXX.partial.safetensors` and the run's training slices, which the next run in the folder removes."""
    assert killed["left"], "the kill came after the write: it did not test what it should"
    assert STORE_FOLDER in killed["left"]
    assert all(".partial." in name for name in killed["left"] if name != STORE_FOLDER), killed["left"]
    assert resumed["code"] == 0, resumed["err"]
    assert hidden_files(resumed["out"]) == []
    for cycle in (1, 2):
        assert load_checkpoint(resumed["out"] / cycle_checkpoint_name(cycle)).state["epoch"] == cycle


def test_resume_into_a_folder_another_run_holds_is_refused_and_changes_nothing(resumed):
    code, _, err = resumed["refused"]
    assert code == 6, err
    assert last_line(err) == (f"liverlesionseg: error: {resumed['out']}: another training run is writing into this "
                              "folder; nothing was written. Wait for it to end, or choose another --out.")
    assert resumed["unchanged"]


def test_second_train_into_a_folder_being_trained_is_refused_and_a_killed_run_does_not_block(case, tmp_path):
    """Two real processes: the second, started while the first trains into the folder, is refused
    (the folder's "already holds a run" check at the start cannot see a run that has not written
    yet, or one that is still writing); the first, killed, leaves the folder free."""
    out = tmp_path / "run"
    schedule = SCHEDULE + ["--cycles", "1", "--epochs", "40"]  # the later value counts
    first = train_process(str(case), "--out", str(out), *schedule)
    try:
        assert wait_for(lambda: (out / LAST).is_file(), first, "the first checkpoint", poll_s=0.01)
        code, stdout, err = finish(train_process(str(case), "--out", str(out), *schedule, "--seed", "4"))
        assert first.poll() is None, "the first run ended before the second was refused"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=120)
    assert code == 6, err
    assert "another training run is writing into this folder" in last_line(err) and str(out) in last_line(err)
    assert json.loads(stdout.strip().splitlines()[-1])["event"] == "error"
    assert load_checkpoint(out / LAST).config.train.seed == 3  # the first run's
    with run_folder_lock(out):  # the killed run's lock went with its process
        pass


def test_interrupt_while_a_cycle_checkpoint_is_written_says_how_to_resume_and_the_resume_writes_it(case, tmp_path):
    """Ctrl-C (SIGINT) after `last.safetensors` of a cycle's last epoch was written, while the
    cycle's own checkpoint is: the message names the checkpoint kept and the command that continues;
    the resumed run writes the missing `cycle-01.safetensors`."""
    cycle = cycle_checkpoint_name(1)
    for attempt in range(3):
        out = tmp_path / f"run{attempt}"
        process = train_process(str(case), "--out", str(out), *SCHEDULE)
        if wait_for(lambda: partial_files(out, cycle), process, "the cycle checkpoint write"):
            process.send_signal(signal.SIGINT)
        code, _, err = finish(process)
        if code == 130 and not (out / cycle).exists():
            break
    else:
        pytest.fail("three runs wrote their cycle checkpoint before the interrupt came")
    assert last_line(err) == (f"liverlesionseg: error: {out / LAST}: interrupted; the last checkpoint is kept, outputs "
                              f"not finished were not written. Run liverlesionseg train {case} --out {out} --resume "
                              f"{out / LAST} to continue the run.")
    assert hidden_files(out) == []
    code, stdout, err = finish(train_process(str(case), "--out", str(out), "--resume", str(out / LAST)))
    assert code == 0, err
    assert load_checkpoint(out / cycle).state["epoch"] == 1
    assert load_checkpoint(out / cycle_checkpoint_name(2)).state["epoch"] == 2
    events = [json.loads(line) for line in stdout.splitlines()]
    assert [e["cycle"] for e in events if e["event"] == "checkpoint"] == [1, 2]


def test_plot_with_json_progress_prints_only_json_and_a_done_event(resumed, tmp_path, capsys):
    capsys.readouterr()
    assert main(["plot", str(resumed["out"]), "--out", str(tmp_path / "p"), "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["outputs"] == [str(tmp_path / "p" / "loss.png")]
    assert (tmp_path / "p" / "loss.png").is_file()


def test_plot_without_json_progress_prints_the_paths(resumed, tmp_path, capsys):
    capsys.readouterr()
    assert main(["plot", str(resumed["out"]), "--out", str(tmp_path / "p"), "--progress", "none"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'p' / 'loss.png'}\n"


def test_evaluate_that_cannot_write_lesions_csv_leaves_the_earlier_report_whole(data_dir, tmp_path, capsys):
    """An earlier report in --out; lesions.csv cannot be written this time (a folder in its place,
    as a failure or Ctrl-C between the files would be): metrics.csv and metrics.json stay the
    earlier run's, so the report never mixes two runs."""
    folder = data_dir / "tace" / CASE
    labelled = load_case(find_cases([folder])[0])
    for name, labels in (("truth", labelled.label_map()), ("liver", (labelled.label_map() > 0).astype("uint8"))):
        (tmp_path / name).mkdir()
        sitk.WriteImage(labelled.ct.with_array(labels).to_sitk(), str(tmp_path / name / f"{CASE}.nii.gz"))
    report = tmp_path / "report"
    assert main(["evaluate", str(folder), "--predictions", str(tmp_path / "truth"), "--out", str(report),
                 "--progress", "none"]) == 0
    earlier = {name: digest(report / name) for name in ("metrics.csv", "metrics.json")}
    (report / "lesions.csv").unlink()
    (report / "lesions.csv").mkdir()
    capsys.readouterr()
    code = main(["evaluate", str(folder), "--predictions", str(tmp_path / "liver"), "--out", str(report),
                 "--progress", "none"])
    assert code == 6 and "lesions.csv: the output is a folder" in capsys.readouterr().err
    assert {name: digest(report / name) for name in earlier} == earlier
    assert float(next(csv.DictReader(open(report / "metrics.csv")))["lesion_dice"]) == 1.0
    assert sorted(p.name for p in report.iterdir()) == ["lesions.csv", "metrics.csv", "metrics.json"]


def console_run(setup: str) -> subprocess.CompletedProcess:
    """The console script's `run` in a fresh interpreter, after `setup` (Python) has put a stand-in
    `cli.main` in place: interrupts that come outside `main` cannot be timed from outside."""
    code = f"import LiverLesionSegLib.cli as cli\n{setup}\nfrom LiverLesionSegLib.console import run\nrun()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_ctrl_c_before_the_command_runs_ends_in_one_line():
    """Ctrl-C while the command line module is imported or the options read: one line, status 130."""
    done = console_run("def main():\n    raise KeyboardInterrupt\ncli.main = main")
    assert done.returncode == 130
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "liverlesionseg: error: interrupted; nothing was written"


def test_ctrl_c_during_the_exit_after_a_finished_run_prints_no_traceback():
    """Ctrl-C during the interpreter's teardown (here: an exit handler interrupted) after the outputs
    were written: the run's own status, and no traceback over it."""
    done = console_run("import atexit, os, signal, time\n"
                       "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))\n"
                       "cli.main = lambda: 0")
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_a_current_folder_deleted_under_the_shell_is_named_in_one_line(tmp_path):
    """A shell left in a folder another program deleted: one line and status 6 (was an internal error
    for a relative output, and PyTorch's libraries aborting the process for an absolute one)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    out = tmp_path / "out.seg.nrrd"
    command = f"cd {shlex.quote(str(gone))} && rmdir {shlex.quote(str(gone))} && exec " + shlex.join(
        [sys.executable, "-m", "LiverLesionSegLib", "segment", "-o", str(out)])
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 6, done.stderr
    assert last_line(done.stderr).startswith("liverlesionseg: error: the current folder no longer exists")
    assert not out.exists()
