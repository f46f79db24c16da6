"""The tried-as-a-new-user pass: every bad input of the catalogue through the installed
`liverlesionseg` command, in a terminal (a pseudo-terminal, so the command sees a TTY as a user's
shell gives it), checking what a user would see: the exit status, one error line and no
traceback, an earlier output left as it was, and nothing new on disk.

    .venv/bin/python LiverLesionSeg/Testing/Python/new_user_pass.py [--model CKPT] [ENTRY...]

prints a Markdown table (entry, exit status, the last line on the terminal) for
docs/robustness.md and exits non-zero when any entry fails a check. `test_cli_errors.py` runs a
few entries this way in CI. Entries whose fault is a monkeypatch in the test process cannot reach
a separate process and are listed as such.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # LiverLesionSegLib

import bad_inputs  # noqa: E402

EXISTING = b"an earlier result the user wants to keep"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Outcome:
    name: str
    exit_code: int
    expected: int
    last_line: str
    problems: list[str]


def command() -> str:
    """The console script installed beside this interpreter."""
    script = Path(sys.executable).with_name("liverlesionseg")
    return str(script) if script.exists() else "liverlesionseg"


def run_in_terminal(argv: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr; (status, screen text)."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", COLUMNS="200")
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = process.wait(timeout)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return code, text


def screen_lines(text: str) -> list[str]:
    """What stays on the screen: a progress bar redrawn with carriage returns leaves its last state."""
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        visible = raw.split("\r")[-1].strip()
        if visible:
            lines.append(visible)
    return lines


def try_entry(name: str, data_dir: Path, model: Path, folder: Path) -> Outcome | None:
    """Run one entry through the command in a terminal; None when its fault cannot reach a
    separate process (a monkeypatch)."""
    bad = bad_inputs.CATALOGUE[name](data_dir, folder, model)
    if bad.in_process_only:
        return None
    try:
        existing = bad.existing or folder / "out.nii.gz"
        if not existing.exists():
            existing.write_bytes(EXISTING)
        kept = existing.read_bytes()
        before = {p for p in folder.rglob("*")}
        with bad.fault() if bad.fault else _Nothing():
            code, text = run_in_terminal([command(), *bad.argv])
        lines = screen_lines(text)
        problems = []
        if code != bad.exit_code:
            problems.append(f"exit status {code}, expected {bad.exit_code}")
        if "Traceback" in text:
            problems.append("a traceback")
        errors = [line for line in lines if line.startswith("liverlesionseg: error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            problems.append(f"{len(errors)} error lines, or not last")
        if existing.read_bytes() != kept:
            problems.append("the earlier output was changed")
        created = sorted(str(p.relative_to(folder)) for p in set(folder.rglob("*")) - before
                         if p.name != "filler")
        if created:
            problems.append(f"new files: {created}")
        return Outcome(name, code, bad.exit_code, lines[-1] if lines else "", problems)
    finally:
        if bad.cleanup:
            bad.cleanup()


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def make_model(folder: Path, data_dir: Path) -> Path:
    """A small model trained on real slices, as the test suite's fixture makes it."""
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.dataset import prepare_case
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.train import train

    config = Config()
    config.train.cycles, config.train.epochs_per_cycle, config.train.max_slices_per_epoch = 1, 2, 64
    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    return train([prepare_case(case, config.preprocess)], [], config, folder).model_path


def shared_data() -> Path:
    unpack = HERE.parents[2].parent / "shared" / "data" / "unpack"
    out = subprocess.run([sys.executable, str(unpack)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _short_folder(match: re.Match) -> str:
    """A temporary folder as `…/`, keeping a ZIP archive named in it (`…/study.zip/gap/`)."""
    parts = match.group(0).split("/")
    archives = [i for i, part in enumerate(parts) if part.lower().endswith(".zip")]
    return "…/" + "".join(part + "/" for part in parts[archives[-1]:-1]) if archives else "…/"


def markdown(outcomes: list[Outcome], skipped: dict[str, str]) -> str:
    rows = ["| entry | exit status | what the terminal shows last |", "|---|---|---|"]
    for o in outcomes:
        line = re.sub(r"(?<=\s)/\S*/", _short_folder, o.last_line).replace("|", "\\|")
        flag = "" if not o.problems else f" **({'; '.join(o.problems)})**"
        rows.append(f"| `{o.name}` | {o.exit_code} | {line}{flag} |")
    for name, why in skipped.items():
        rows.append(f"| `{name}` | - | not run here: {why} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="*", help="catalogue entries (default: all)")
    parser.add_argument("--model", type=Path, help="the checkpoint the entries use (default: train a small one)")
    args = parser.parse_args(argv)
    import pytest

    data_dir = shared_data()
    outcomes, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="new-user-pass-") as scratch:
        model = args.model or make_model(Path(scratch), data_dir)
        for name in args.entries or sorted(bad_inputs.CATALOGUE):
            folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
            try:
                outcome = try_entry(name, data_dir, model, folder)
            except pytest.skip.Exception as exc:
                skipped[name] = str(exc)
                continue
            if outcome is None:
                skipped[name] = "its fault is a monkeypatch inside the test process (see test_cli_errors.py)"
                continue
            outcomes.append(outcome)
            print(f"{name}: exit {outcome.exit_code}{' PROBLEMS ' + str(outcome.problems) if outcome.problems else ''}",
                  file=sys.stderr)
    print(markdown(outcomes, skipped))
    return 1 if any(o.problems for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
