"""Memory checks before the big allocations.

A volume too large for this machine at the chosen settings ends as one clear `ResourceError`
before any work, instead of a crash halfway, a machine frozen by swapping or the kernel's
out-of-memory killer (which ends the process with no message at all). The estimates are rough
on purpose and lean high: they count the arrays a stage holds at its peak, not Python's overhead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .config import InferenceConfig, PreprocessConfig
from .errors import ResourceError

# Bytes per CT voxel that segmentation holds besides the CT itself, at its peak: the CT put in
# axial order (a copy), liver and lesion masks (1 + 1), the probability map (4), their copies on
# the way back to the input's order (6), connected-component labels (4), the label map (1) and
# the writer's copy of the probability map (4).
SEGMENT_BYTES_PER_VOXEL = 21
# The network, its activations for a batch and the libraries' own buffers.
SEGMENT_FIXED_BYTES = 600 * 2**20

HINT = ("close other programs, or crop the volume to the abdomen (in Slicer: Crop Volume) or use a machine "
        "with more memory")


def available_bytes() -> Optional[int]:
    """The memory this process may still use: Linux's MemAvailable, capped by the memory limit of
    the container (cgroup) it runs in; None where the system does not say."""
    candidates = [_meminfo_available(), _cgroup_room()]
    known = [c for c in candidates if c is not None]
    if not known:
        try:
            known = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (AttributeError, ValueError, OSError):
            return None
    return min(known)


def check_memory(needed: int, what: str, path: str | os.PathLike | None, hint: str = HINT) -> None:
    """Raise ResourceError when `needed` bytes are more than the memory available."""
    available = available_bytes()
    if available is not None and needed > available:
        raise ResourceError(f"{what} needs about {size_text(needed)} of memory, but only {size_text(available)} is "
                            "available", path, hint)


def check_image_fits(shape: tuple[int, ...], itemsize: int, path: str | os.PathLike, copies: int = 2,
                     onto: Optional[str] = None) -> None:
    """Before reading an image of `shape` (voxels) and `itemsize` bytes a voxel (or resampling the CT
    onto one, named `onto`): readers hold the file's pixels and the array made from them (`copies`)."""
    voxels = _voxels(shape)
    what = (f"reading this {_shape_text(shape)} volume" if onto is None
            else f"resampling the CT onto {onto} of {_shape_text(shape)}s")
    check_memory(voxels * itemsize * copies, what, path)


def segmentation_bytes(shape: tuple[int, int, int], itemsize: int, preprocess: PreprocessConfig,
                       inference: InferenceConfig) -> int:
    """What segmenting a CT of `shape` ([k, j, i]) takes besides the CT itself."""
    k = shape[0]
    voxels = _voxels(shape)
    network_grid = k * preprocess.size ** 2 * (1 + 4 * 2) * (2 if preprocess.zoom else 1)  # uint8 stack, probabilities
    return voxels * (itemsize + SEGMENT_BYTES_PER_VOXEL) + network_grid + SEGMENT_FIXED_BYTES


def check_segmentation_fits(shape: tuple[int, int, int], itemsize: int, preprocess: PreprocessConfig,
                            inference: InferenceConfig, path: str | os.PathLike | None) -> None:
    check_memory(segmentation_bytes(shape, itemsize, preprocess, inference),
                 f"segmenting this {_shape_text(shape)} volume", path)


# --- where the numbers come from ----------------------------------------------------------------

def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> Optional[int]:
    """The container's memory limit minus what it uses (cgroup v2, then v1); None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:  # v1 says "no limit" with a huge number
            return None
        return max(int(limit) - usage, 0)
    return None


def _voxels(shape) -> int:
    total = 1
    for n in shape:
        total *= int(n)
    return total


def _shape_text(shape) -> str:
    return " x ".join(str(int(n)) for n in reversed(tuple(shape))) + " voxel"


def size_text(n: int) -> str:
    """A number of bytes as a message gives it: 1.5 GiB, 44 MiB, 300 KiB."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    return f"{n / 2**10:.0f} KiB"
