"""What C libraries print straight to file descriptor 2, held back around a read or write."""

from __future__ import annotations

import os

import pytest

from LiverLesionSegLib.io.native_output import held_back


def test_what_is_printed_is_passed_on_after_the_work_succeeded(capfd):
    with held_back() as printed:
        os.write(2, b"a warning of the library\n")
        assert printed.lines() == ["a warning of the library"]
    assert capfd.readouterr().err == "a warning of the library\n"


def test_what_is_printed_is_left_out_after_a_failure_which_goes_on(capfd):
    with pytest.raises(ValueError):
        with held_back():
            os.write(2, b"DimSize required and not defined.\n")
            raise ValueError("told in one line")
    assert capfd.readouterr().err == ""


def test_a_look_at_the_lines_passes_nothing_on_and_lets_a_failure_through(capfd):
    with pytest.raises(AssertionError):
        with held_back(pass_on=False) as printed:
            os.write(2, b"x\n")
            assert printed.lines() == []
    assert capfd.readouterr().err == ""
