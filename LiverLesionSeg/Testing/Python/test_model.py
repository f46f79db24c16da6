"""Building the network: the configured encoder, ImageNet weights asked for while offline, devices."""

import logging

import pytest
import torch

from LiverLesionSegLib.config import Config
from LiverLesionSegLib.errors import ModelError
from LiverLesionSegLib.model import build_network, choose_device


def test_network_has_two_outputs_and_the_configured_input_channels():
    config = Config()
    config.preprocess.context_slices = 1
    network = build_network(config).eval()
    with torch.no_grad():
        assert network(torch.zeros(2, 3, 128, 128)).shape == (2, 2, 128, 128)
    assert type(network.encoder).__name__ == "ResNetEncoder"


def test_first_convolution_computes_in_float32_under_autocast():
    """bfloat16 would round the CT's grey levels before the first convolution; it computes in
    float32 and hands on the reduced precision. Its weights keep their names."""
    network = build_network(Config()).eval()
    stem = network.encoder.conv1
    x = torch.rand(2, 1, 128, 128)
    exact = torch.nn.functional.conv2d(x, stem.weight, stride=stem.stride, padding=stem.padding)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = stem(x)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, exact.to(torch.bfloat16))
    with torch.no_grad():
        assert torch.equal(stem(x), exact)  # without autocast: plain float32
    assert "encoder.conv1.weight" in network.state_dict()


def test_other_encoder_is_built():
    config = Config()
    config.model.encoder = "resnet34"
    assert sum(p.numel() for p in build_network(config).parameters()) > 20e6


def test_unknown_encoder_and_architecture_are_refused():
    config = Config()
    config.model.encoder = "resnet9000"
    with pytest.raises(ModelError, match="unknown encoder 'resnet9000'"):
        build_network(config)
    config = Config()
    config.model.arch = "Transformer"
    with pytest.raises(ModelError, match="unknown architecture"):
        build_network(config)


def test_imagenet_weights_offline_fall_back_to_scratch_with_a_clear_message(monkeypatch, caplog):
    """The download is really attempted (through segmentation_models_pytorch and the Hugging Face
    hub); offline it fails, and training goes on from scratch, saying so."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = Config()
    config.model.encoder_weights = "imagenet"
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        network = build_network(config, download_weights=True)
    assert network is not None
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "Could not download the imagenet weights of encoder resnet18" in message
    assert "training from scratch" in message


def test_scratch_start_is_said(caplog):
    with caplog.at_level(logging.INFO, logger="LiverLesionSeg"):
        build_network(Config(), download_weights=True)
    assert "starts from scratch" in caplog.text


def test_missing_gpu_falls_back_to_cpu(caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with caplog.at_level(logging.WARNING, logger="LiverLesionSeg"):
        assert choose_device("cuda").type == "cpu"
    assert "running on the CPU" in caplog.text
    with pytest.raises(ModelError, match="unknown device"):
        choose_device("tpu")
