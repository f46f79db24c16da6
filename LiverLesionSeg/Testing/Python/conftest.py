"""Shared fixtures: the real CT cases from ../shared/data, unpacked once into a writable cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "LiverLesionSeg"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The unpacked cases: `ircadb/`, `tace/`, `hcc-tace-seg/`."""
    unpack = SHARED_DATA / "unpack"
    if not unpack.exists():
        pytest.skip(f"no shared data at {SHARED_DATA}")
    dest = os.environ.get("LIVERLESIONSEG_DATA") or str(Path.home() / ".cache" / "liverlesionseg" / "data")
    out = subprocess.run([sys.executable, str(unpack), dest], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cases_json() -> dict:
    """The reference numbers every reader must reproduce."""
    return json.loads((SHARED_DATA / "cases.json").read_text())
