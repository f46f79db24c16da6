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


def test_a_second_thread_does_not_take_descriptor_2_from_the_first(capfd):
    """Descriptor 2 is the process's: a hold in another thread while one is held captures nothing and
    leaves the first hold and the terminal as they were."""
    import threading

    seen = []

    def other():
        with held_back() as printed:
            os.write(2, b"from the other thread\n")
            seen.append(printed.lines())

    with held_back(pass_on=False) as printed:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert printed.lines() == ["from the other thread"] and seen == [[]]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_a_decoders_complaint_on_data_it_decodes_is_a_warning_naming_the_file(tmp_path, capfd, caplog):
    """libjpeg prints "Corrupt JPEG data: 8 extraneous bytes before marker 0xd9" straight to the
    terminal and decodes the slice all the same (found damaging JPEG lossless slices)."""
    import logging

    from LiverLesionSegLib.io.dicom_files import decoding

    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"), decoding(tmp_path / "slice-041.dcm"):
        os.write(2, b"Corrupt JPEG data: 8 extraneous bytes before marker 0xd9\n")
    assert capfd.readouterr().err == ""
    assert f"{tmp_path / 'slice-041.dcm'}: its pixel data's decoder reports damage (Corrupt JPEG data: 8 extraneous " \
           "bytes before marker 0xd9) but decodes it" in caplog.text


def test_a_python_warning_of_another_library_while_decoding_goes_on_to_its_listeners(tmp_path, caplog):
    import warnings

    from LiverLesionSegLib.io.dicom_files import decoding

    with pytest.warns(UserWarning, match="a warning of no decoder"), decoding(tmp_path / "slice-041.dcm"):
        warnings.warn("a warning of no decoder")
    assert "decoder reports damage" not in caplog.text
