"""Untrusted model files: model files travel by e-mail, and a pickle can run any code when it is
loaded. LiverLesionSeg loads safetensors only, so a crafted `.pt`/`.pth`/`.ckpt` is refused with a
ModelError at every door a model comes in by, and its code never runs (its marker folder never
appears). A static check keeps it so: no unpickling call anywhere in the code that ships."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from LiverLesionSegLib.cli import main
from LiverLesionSegLib.errors import ModelError

import bad_inputs

REPO = Path(__file__).resolve().parents[3]
SHIPPED = [REPO / "LiverLesionSeg" / "LiverLesionSegLib", REPO / "LiverLesionSeg" / "LiverLesionSeg.py",
           REPO / "benchmarks", REPO / "docs"]
FORMATS = ["model.pt", "model.pth", "model.ckpt"]  # torch.save zip, torch.save zip, bare pickle


@pytest.fixture(params=FORMATS)
def crafted(request, tmp_path) -> tuple[Path, Path]:
    """A model file that makes a marker folder when unpickled, and the marker's path."""
    marker = tmp_path / "code-ran"
    return bad_inputs.crafted_pickle(tmp_path / request.param, marker), marker


def test_the_crafted_files_really_run_code_when_unpickled(tmp_path):
    """The control: plain `torch.load` (weights_only=False) and `pickle.load` do run the payload,
    so the tests below, which see no marker, test something real. In a separate process."""
    for name in FORMATS:
        marker = tmp_path / f"ran-{name}"
        path = bad_inputs.crafted_pickle(tmp_path / name, marker)
        loader = ("import torch, sys; torch.load(sys.argv[1], weights_only=False)" if name != "model.ckpt"
                  else "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))")
        subprocess.run([sys.executable, "-c", loader, str(path)], check=True, capture_output=True,
                       cwd=Path(__file__).parent)
        assert marker.is_dir(), f"the crafted {name} did not run its code: the test would prove nothing"


def doors(model: Path, case: Path, out: Path) -> dict[str, list[str]]:
    """Every command-line option that loads a model file."""
    return {
        "segment --model": ["segment", str(case), "-o", str(out / "out.nii.gz"), "--model", str(model)],
        "train --resume": ["train", str(case), "--out", str(out / "resumed"), "--resume", str(model)],
        "train --init": ["train", str(case), "--out", str(out / "fine-tuned"), "--init", str(model)],
        "evaluate --model": ["evaluate", str(case), "--out", str(out / "report"), "--model", str(model)],
    }


def test_every_command_refuses_a_crafted_pickle_and_runs_no_code(crafted, data_dir, tmp_path, capsys):
    model, marker = crafted
    case = bad_inputs.small_case(data_dir, tmp_path / "case")
    for door, argv in doors(model, case, tmp_path).items():
        code = main(argv + ["--progress", "none"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == ModelError.exit_code, (door, err)
        assert err[-1].startswith("liverlesionseg: error: ") and model.name in err[-1], (door, err)
        assert "never unpickles" in err[-1], (door, err[-1])
        assert not marker.exists(), f"{door} ran the code in {model.name}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["case", model.name]), "something was written"


def test_the_slicer_logic_refuses_a_crafted_pickle_and_runs_no_code(crafted, data_dir):
    """The Segment panel's model loading (the same logic its background job runs)."""
    from LiverLesionSegLib.segment_job import SegmentationJob, run_segmentation

    model, marker = crafted
    ct, _ = bad_inputs.labelled_slices(data_dir)
    with pytest.raises(ModelError, match="never unpickles"):
        run_segmentation(ct, str(model), "cpu")
    job = SegmentationJob(ct, str(model), "cpu").start()
    assert job.wait(60)
    assert isinstance(job.error, ModelError) and job.result is None
    assert not marker.exists()


# --- the static check -------------------------------------------------------------------------------

UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"),
              ("dill", "load"), ("dill", "loads"), ("joblib", "load"), ("pandas", "read_pickle"),
              ("pd", "read_pickle"), ("torch.jit", "load"), ("jit", "load")}


def unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """Calls that can unpickle in `source`: torch.load without weights_only=True, np.load with
    allow_pickle=True, and the unpicklers above, each as "file:line: call"."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        owner, _, attribute = name.rpartition(".")
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        unsafe = ((attribute == "load" and owner == "torch" and keywords.get("weights_only") != "True")
                  or (attribute == "load" and owner in ("np", "numpy") and keywords.get("allow_pickle") == "True")
                  or (owner.split(".")[-1], attribute) in UNPICKLERS or (owner, attribute) in UNPICKLERS)
        if unsafe:
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_static_check_finds_unsafe_loads():
    sample = ("import torch, pickle, numpy as np\n"
              "torch.load('a.pt')\n"
              "torch.load('b.pt', weights_only=False)\n"
              "torch.load('ok.pt', weights_only=True)\n"
              "pickle.loads(b'')\n"
              "np.load('x.npy', allow_pickle=True)\n"
              "np.load('ok.npy')\n")
    assert [line.split(":")[1] for line in unsafe_loads(sample)] == ["2", "3", "5", "6"]


def test_no_shipped_code_can_unpickle():
    files = [p for root in SHIPPED if root.exists() for p in ([root] if root.is_file() else root.rglob("*.py"))]
    assert len(files) > 20
    found = [hit for path in files for hit in unsafe_loads(path.read_text(encoding="utf-8"), str(path))]
    assert found == [], found
