"""Atomic writes under interrupts: Ctrl-C or SIGTERM (taken as Ctrl-C) may come at any moment.

The interrupt is simulated by raising KeyboardInterrupt at one line of the writer's own code,
the way Python delivers a signal (between two lines), once at every line in turn.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from LiverLesionSegLib.io import atomic


def interrupt_at_line(number: int):
    """A trace function that raises KeyboardInterrupt at the `number`-th line run in atomic.py."""
    seen = {"lines": 0}

    def local(frame, event, arg):
        if event == "line":
            seen["lines"] += 1
            if seen["lines"] == number:
                raise KeyboardInterrupt  # a trace function's exception goes to the traced frame
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename == atomic.__file__ else None

    return calls, seen


@pytest.mark.parametrize("targets", [1, 2])
def test_an_interrupt_at_any_line_leaves_no_temporary_and_no_damaged_file(tmp_path: Path, targets: int):
    paths = [tmp_path / f"out{i}.safetensors" for i in range(targets)]
    interrupted_at = []
    for number in range(1, 500):
        for path in paths:
            path.write_bytes(b"old")
        trace, seen = interrupt_at_line(number)
        sys.settrace(trace)
        try:
            with atomic.atomic_paths(*paths) as temporaries:
                for tmp in temporaries:
                    tmp.write_bytes(b"new")
        except KeyboardInterrupt:
            interrupted_at.append(number)
        finally:
            sys.settrace(None)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(p.name for p in paths), f"interrupted at line {number}: {left}"
        assert all(p.read_bytes() in (b"old", b"new") for p in paths)
        if seen["lines"] < number:  # the write ran to its end before the chosen line: every line was tried
            break
    assert len(interrupted_at) > 10 and [p.read_bytes() for p in paths] == [b"new"] * targets


def test_an_output_that_is_a_link_is_written_through_it(tmp_path: Path):
    """A link to where results are kept (`latest.csv -> runs/7/table.csv`) was replaced by a file,
    its target left with the old content; now the target gets the new content and the link stays."""
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "table.csv"
    target.write_text("old")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    atomic.atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.csv", "runs"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["table.csv"]
