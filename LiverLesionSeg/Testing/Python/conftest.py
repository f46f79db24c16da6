"""Shared fixtures: the real CT cases from ../shared/data, unpacked once into a writable cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests run in several processes (pytest -n 2, one per core): each computes on one thread, it and the
# commands it starts. With torch's default of a thread per core, four threads shared two cores, and
# their OpenMP threads waiting on each other made the network's tests several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The unpacked cases: `ircadb/`, `tace/`, `hcc-tace-seg/`."""
    unpack = SHARED_DATA / "unpack"
    if not unpack.exists():
        pytest.skip(f"no shared data at {SHARED_DATA}")
    out = subprocess.run([sys.executable, str(unpack), str(unpacked_cases_dir())], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cases_json() -> dict:
    """The reference numbers every reader must reproduce."""
    return json.loads((SHARED_DATA / "cases.json").read_text())


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, data_dir) -> Path:
    """A checkpoint to segment with: the bundled model when there is one, else a small model
    trained here on real slices (enough for geometry and plumbing tests, not for accuracy)."""
    from LiverLesionSegLib.resources import bundled_model_path
    from LiverLesionSegLib.errors import ModelError

    try:
        return bundled_model_path()
    except ModelError:
        pass
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.dataset import prepare_case
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.train import train

    config = Config()
    config.train.cycles, config.train.epochs_per_cycle, config.train.max_slices_per_epoch = 1, 2, 64
    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    out = tmp_path_factory.mktemp("model")
    return train([prepare_case(case, config.preprocess)], [], config, out).model_path


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    """The bundled network with other inference settings, for majority votes: lesions only where
    it is sure, no growth, the liver's edge where the network drew it (so both the liver and the
    lesions differ from the bundled model's)."""
    from LiverLesionSegLib.checkpoint import load_checkpoint, save_checkpoint
    from LiverLesionSegLib.resources import bundled_model_path

    checkpoint = load_checkpoint(bundled_model_path())
    config = checkpoint.config
    config.inference.lesion_threshold, config.inference.lesion_grow_threshold = 0.9, None
    config.inference.liver_edge_mm = 0.0
    path = tmp_path_factory.mktemp("other") / "other.safetensors"
    save_checkpoint(path, checkpoint.network, config, {}, half=True)
    return path


@pytest.fixture(scope="session")
def sample_segmentation():
    """The bundled sample CT and the bundled model's segmentation of it (default settings), made once
    for the tests that compare another form of the same CT against it."""
    from LiverLesionSegLib.infer import segment_volume
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.resources import load_model, sample_case_path

    ct = read_input_volume(sample_case_path())
    return _read_only(ct, segment_volume(ct, load_model(None)))


@pytest.fixture(scope="session")
def core_segmentation(data_dir, model_path):
    """`core_segmentation(folder)`: a shared case's CT and the core's segmentation of it with the test
    model's own settings (`segment_job.run_segmentation`, its cautions included), made once per test
    process and shared by the command line's, the Slicer logic's and the fast path's tests. Their
    arrays are read-only, so that no test can change what another compares against."""
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.segment_job import run_segmentation

    made = {}

    def segmentation(folder: str):
        if folder not in made:
            ct = read_input_volume(data_dir / folder)
            made[folder] = _read_only(ct, run_segmentation(ct, model_path, "cpu")[0])
        return made[folder]

    return segmentation


def _read_only(ct, result) -> tuple:
    """(`ct`, `result`), their arrays made read-only: no test can change what another compares against."""
    for array in (ct.array, result.liver.array, result.lesion.array, result.lesion_probability.array):
        array.flags.writeable = False
    return ct, result
