"""Checkpoints: safetensors + JSON metadata, checked against the architecture, never unpickled."""

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from bad_inputs import rewrite_checkpoint_metadata
from LiverLesionSegLib.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.errors import ModelError
from LiverLesionSegLib.model import build_network


@pytest.fixture(scope="module")
def small_config():
    config = Config()
    config.preprocess.size = 64
    return config


@pytest.fixture(scope="module")
def network(small_config):
    torch.manual_seed(0)
    return build_network(small_config)


def test_round_trip_keeps_weights_config_and_state(tmp_path, network, small_config):
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    network(torch.randn(2, 1, 64, 64)).mean().backward()
    optimizer.step()
    state = {"epoch": 3, "step": 12, "history": {"steps": [{"step": 1, "loss": 0.5}], "epochs": []}}
    path = save_checkpoint(tmp_path / "c.safetensors", network, small_config, state, optimizer)
    loaded = load_checkpoint(path, with_optimizer=True)
    assert loaded.config == small_config
    assert loaded.state["epoch"] == 3 and loaded.state["history"]["steps"][0]["loss"] == 0.5
    for name, tensor in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor)
    fresh = torch.optim.AdamW(loaded.network.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.optimizer_state)
    first = next(iter(optimizer.state.values()))
    again = next(iter(fresh.state.values()))
    assert torch.equal(first["exp_avg"], again["exp_avg"])
    assert read_metadata(path)[1]["step"] == 12


def test_half_precision_file_is_smaller_and_close(tmp_path, network, small_config):
    full = save_checkpoint(tmp_path / "full.safetensors", network, small_config, {})
    half = save_checkpoint(tmp_path / "half.safetensors", network, small_config, {}, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    loaded = load_checkpoint(half)
    x = torch.randn(1, 1, 64, 64)
    network.eval()
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(network(x)), torch.sigmoid(loaded.network(x)), atol=1e-2)


def test_other_encoder_weights_are_refused(tmp_path, small_config):
    other = Config.from_dict(small_config.to_dict())
    other.model.encoder = "resnet34"
    path = save_checkpoint(tmp_path / "r34.safetensors", build_network(other), other, {})
    def claim_resnet18(metadata, meta):  # the tensors no longer fit what the metadata names
        meta["config"]["model"]["encoder"] = "resnet18"

    rewrite_checkpoint_metadata(path, path, claim_resnet18)
    with pytest.raises(ModelError, match="weights do not match the architecture .*Unet/resnet18"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path, network, small_config):
    path = save_checkpoint(tmp_path / "c.safetensors", network, small_config, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"c\.safetensors: is not a readable checkpoint \(its tensors do not fill the "
                                         r"file as its header lays them out: it is cut short, has bytes added, or its "
                                         r"header is damaged\)"):
        load_checkpoint(path)


def test_a_checkpoint_whose_header_holds_bytes_that_are_no_text_is_refused_in_words(tmp_path, network, small_config):
    """Found by `tools/damage_inputs.py --kind checkpoint` (seeds 42002 and others, header bytes changed):
    told in safetensors' words, "Error while deserializing header: invalid UTF-8 in header: invalid utf-8
    sequence of 1 bytes from index 451"."""
    path = save_checkpoint(tmp_path / "c.safetensors", network, small_config, {})
    data = bytearray(path.read_bytes())
    data[20] = 0xff  # inside the JSON header, which follows the 8 bytes of its length
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"c\.safetensors: is not a readable checkpoint \(its header holds bytes that "
                                         r"are no text: it is damaged\)"):
        load_checkpoint(path)


def test_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello, these are notes")
    with pytest.raises(ModelError, match=r"not a readable checkpoint \(its first 8 bytes give no header length a "
                                         r"safetensors file has: it is no checkpoint, or its start is damaged\)"):
        load_checkpoint(path)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelError, match="not a LiverLesionSeg checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(ModelError, match="no such model file"):
        load_checkpoint(tmp_path / "missing.safetensors")


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {_RunsCode.marker}",))


def test_crafted_pickle_is_never_unpickled(tmp_path):
    """A .pt file that would run a command when unpickled is refused, and the command never runs."""
    _RunsCode.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _RunsCode()}, f)
    torch.save({"x": _RunsCode()}, tmp_path / "evil2.pth")
    for candidate in (path, tmp_path / "evil2.pth"):
        with pytest.raises(ModelError):
            load_checkpoint(candidate)
    assert not _RunsCode.marker.exists()


def test_non_finite_weights_are_refused(tmp_path, network, small_config):
    broken = build_network(small_config)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.safetensors", broken, small_config, {})
    with pytest.raises(ModelError, match="not finite"):
        load_checkpoint(path)


def test_a_bit_flipped_in_a_weight_is_refused_and_a_checkpoint_without_its_checksum_still_loads(
        tmp_path, network, small_config):
    """safetensors checks no data: a bit flipped in a weight (a disk's or a copy's damage) loaded as
    another model without a word. The checksum written with the weights tells."""
    from LiverLesionSegLib.checkpoint import DIGEST_KEY

    path = save_checkpoint(tmp_path / "whole.safetensors", network, small_config, {"epoch": 1})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # in the weights: the header is the first few kilobytes
    (tmp_path / "flipped.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"flipped\.safetensors: its weights do not match the checksum written with "
                                         r"them"):
        load_checkpoint(tmp_path / "flipped.safetensors")
    assert read_metadata(tmp_path / "flipped.safetensors")[1]["epoch"] == 1  # the metadata alone is still read

    rewrite_checkpoint_metadata(path, tmp_path / "older.safetensors",
                                lambda metadata, meta: metadata.pop(DIGEST_KEY))  # as written before the checksum
    loaded = load_checkpoint(tmp_path / "older.safetensors")
    for name, tensor in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor)
