"""Every broken input of the catalogue ends with one clear line, the exit status of its error
class, nothing written and any existing output untouched."""

import pytest

from LiverLesionSegLib.cli import main

from bad_inputs import CATALOGUE

EXISTING = b"an earlier result the user wants to keep"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_bad_input_fails_cleanly(name, data_dir, model_path, tmp_path, capsys):
    bad = CATALOGUE[name](data_dir, tmp_path, model_path)
    previous = tmp_path / "out.nii.gz"
    previous.write_bytes(EXISTING)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    code = main(bad.argv + ["--progress", "none"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == bad.exit_code, err
    assert len(err) == 1 and err[0].startswith("liverlesionseg: error: "), err
    assert "Traceback" not in err[0]
    assert bad.names in err[0] and bad.fragment in err[0].lower(), err[0]
    assert previous.read_bytes() == EXISTING
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    created = sorted(str(p.relative_to(tmp_path)) for p in set(after) - set(before))
    assert created == [], created
