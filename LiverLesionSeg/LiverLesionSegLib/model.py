"""The network (a segmentation_models_pytorch U-Net, ResNet18 encoder by default) and the device."""

from __future__ import annotations

import logging
import warnings

from typing import Optional

import torch

from .config import Config
from .errors import ModelError

log = logging.getLogger("LiverLesionSeg")

ARCHITECTURES = ("Unet", "UnetPlusPlus", "FPN", "DeepLabV3Plus", "Linknet", "MAnet", "PAN", "PSPNet")


def build_network(config: Config, download_weights: bool = False) -> torch.nn.Module:
    """The network described by `config`, with random weights.

    With `download_weights` and `config.model.encoder_weights` set (e.g. "imagenet"), the encoder's
    pretrained weights are downloaded; where that fails (offline, unknown weights) the network
    starts from scratch and the log says so.
    """
    import segmentation_models_pytorch as smp

    model = config.model
    if model.arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture '{model.arch}'", hint=f"choose one of {', '.join(ARCHITECTURES)}")
    factory = getattr(smp, model.arch)
    kwargs = dict(encoder_name=model.encoder, in_channels=config.preprocess.in_channels, classes=len(model.classes))
    weights = model.encoder_weights if download_weights else None
    if weights:
        try:
            network = factory(encoder_weights=weights, **kwargs)
            log.info("Encoder %s starts from its %s weights.", model.encoder, weights)
            return _ready(network)
        except (KeyError, ValueError) as exc:
            log.warning("No %s weights for encoder %s (%s): training from scratch.", weights, model.encoder, exc)
        except Exception as exc:  # network errors come in many types (hub, http, OS)
            log.warning("Could not download the %s weights of encoder %s (%s: %s): training from scratch. "
                        "Run once while online to cache them.", weights, model.encoder, type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "")
    elif download_weights:
        log.info("Encoder %s starts from scratch (no pretrained weights asked for).", model.encoder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network = factory(encoder_weights=None, **kwargs)
    except KeyError:  # smp's unknown name; its message lists every encoder
        raise ModelError(f"unknown encoder '{model.encoder}'",
                         hint="see segmentation_models_pytorch's list of encoders, e.g. resnet18, resnet34") from None
    except (ValueError, RuntimeError, TypeError, AttributeError) as exc:  # timm's unknown names, odd settings
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ModelError(f"encoder '{model.encoder}' cannot be built with these settings ({reason})",
                         hint="see segmentation_models_pytorch's list of encoders, e.g. resnet18, resnet34") from None
    return _ready(network)


def _ready(network: torch.nn.Module) -> torch.nn.Module:
    """channels_last for faster convolutions on CPUs and GPUs; under autocast, the first convolution
    computed in float32 (its output then in the reduced precision): bfloat16's 8-bit mantissa would
    round the CT's grey levels before the network sees them, and that moved lesion borders by more
    than the stated tolerance."""
    stem = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    reduced_precision_forward = stem.forward

    def float32_forward(x: torch.Tensor) -> torch.Tensor:
        device_type = x.device.type
        if not torch.is_autocast_enabled(device_type):
            return reduced_precision_forward(x)
        dtype = torch.get_autocast_dtype(device_type)
        with torch.autocast(device_type, enabled=False):
            return reduced_precision_forward(x.float()).to(dtype)

    stem.forward = float32_forward  # an attribute of this module only: the weights' names stay as they are
    return network.to(memory_format=torch.channels_last)


def choose_device(name: str = "auto") -> torch.device:
    """auto: CUDA, else MPS, else CPU. A requested GPU that is missing falls back to the CPU, logged."""
    name = (name or "auto").lower()
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        log.warning("CUDA was asked for but no CUDA GPU is available: running on the CPU.")
        return torch.device("cpu")
    if name == "mps" and not mps:
        log.warning("MPS was asked for but is not available: running on the CPU.")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ModelError(f"unknown device '{name}'", hint="choose auto, cpu, cuda or mps")
    return torch.device(name)


def compute_dtype(device: torch.device, precision: str) -> Optional[torch.dtype]:
    """The reduced precision to run the network in, or None for float32."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        # Only where the processor has bfloat16 instructions; emulated it would be slower than float32.
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
