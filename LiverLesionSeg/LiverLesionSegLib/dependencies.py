"""Python packages the module needs inside 3D Slicer: check them, and install what is missing.

The list is `Resources/requirements.txt`. PyTorch goes through the PyTorch extension
(`PyTorchUtils`) when it is installed, since it picks the build for the computer's GPU; the rest
through `slicer.packaging.pip_ensure` (recent Slicer: it asks, installs with progress and offers
a restart), or on older Slicer through `slicer.util.pip_install` after the caller's own question.
Whatever stays missing ends as one `MissingDependencies` message saying what and how, never a
traceback.

The Slicer calls sit in the small `_slicer_*` / `_pytorch_utils` functions at the end, imported
only when called; everything above them is plain Python that runs and is tested anywhere.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import LiverLesionSegError

TORCH_PACKAGES = ("torch", "torchvision")
# The requirements file pins PyTorch as pyproject.toml does, for installing it where it is missing.
# A PyTorch already in Slicer (often a CUDA build from the PyTorch extension, of another version)
# is kept when it is at least this recent: replacing it would download gigabytes and could break
# other extensions.
TORCH_MINIMUM = {"torch": "2.5", "torchvision": "0.20"}
REQUESTER = "Liver Lesion Segmentation"


class MissingDependencies(LiverLesionSegError):
    """Packages the module needs are not installed (and were not, or could not be, installed)."""


def requirements_path() -> Path:
    from .resources import resources_dir

    return resources_dir() / "requirements.txt"


def read_requirements(path: Optional[str | os.PathLike] = None) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines left out)."""
    path = Path(path) if path else requirements_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MissingDependencies(f"cannot read the list of required packages ({exc.strerror})", path,
                                  "reinstall the LiverLesionSeg extension") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def package_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def unmet_requirements(requirements: Sequence[str]) -> list[str]:
    """The requirements not satisfied by what is installed (missing, or another version; for
    PyTorch, older than `TORCH_MINIMUM`)."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    unmet = []
    for line in requirements:
        requirement = Requirement(line)
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        wanted = requirement.specifier
        if requirement.name in TORCH_MINIMUM:
            wanted = SpecifierSet(f">={TORCH_MINIMUM[requirement.name]}")
        if not wanted.contains(installed.split("+")[0], prereleases=True):
            unmet.append(line)
    return unmet


@dataclass(frozen=True)
class InstallStep:
    method: str  # "pytorchutils", "pip_ensure" or "pip_install"
    requirements: tuple[str, ...]


def plan_installation(unmet: Sequence[str], have_pytorch_utils: bool, have_pip_ensure: bool) -> list[InstallStep]:
    """How to install `unmet`: PyTorch first (through PyTorchUtils where there is one), then the rest."""
    pip_method = "pip_ensure" if have_pip_ensure else "pip_install"
    torch = tuple(r for r in unmet if package_name(r) in TORCH_PACKAGES)
    others = tuple(r for r in unmet if package_name(r) not in TORCH_PACKAGES)
    steps = []
    if torch:
        steps.append(InstallStep("pytorchutils" if have_pytorch_utils else pip_method, torch))
    if others:
        steps.append(InstallStep(pip_method, others))
    return steps


def install_question(unmet: Sequence[str]) -> str:
    return (f"Liver Lesion Segmentation needs these Python packages, which are not installed: {', '.join(unmet)}. "
            "Install them now? This downloads them from the internet and can take several minutes.")


def missing_message(unmet: Sequence[str], after_install: bool = False) -> MissingDependencies:
    first = "restart Slicer if it asked to and try again, or" if after_install else \
        "press Apply again and accept the installation, or"
    return MissingDependencies(
        f"the Python packages {', '.join(unmet)} are not installed", None,
        f"{first} install them in the Python console with slicer.util.pip_install({' '.join(unmet)!r}); "
        "for PyTorch, the PyTorch extension is the easiest way")


def ensure_dependencies(confirm: Callable[[str], bool], requirements: Optional[Sequence[str]] = None) -> None:
    """Install whatever `requirements` (default: the requirements file) lacks; `confirm(question)`
    asks the user where Slicer has no dialog of its own. Raises `MissingDependencies` when
    something is still missing afterwards."""
    requirements = list(requirements) if requirements is not None else read_requirements()
    unmet = unmet_requirements(requirements)
    if not unmet:
        return
    steps = plan_installation(unmet, _pytorch_utils() is not None, _slicer_pip_ensure() is not None)
    if any(step.method == "pip_install" for step in steps) and not confirm(install_question(unmet)):
        raise missing_message(unmet)
    for step in steps:
        try:
            _run(step)
        except LiverLesionSegError:
            raise
        except Exception as exc:  # installers report failures in many types (network, pip, permissions)
            raise MissingDependencies(f"installing {', '.join(step.requirements)} failed ({_first_line(exc)})",
                                      None, "check the internet connection and the Python console, then try again") from None
    still = unmet_requirements(requirements)
    if still:
        raise missing_message(still, after_install=True)


def _run(step: InstallStep) -> None:
    if step.method == "pytorchutils":
        _install_torch_with_pytorch_utils(step.requirements)
    elif step.method == "pip_ensure":
        _slicer_pip_ensure()(list(step.requirements), requester=REQUESTER)
    else:
        _slicer_pip_install()(list(step.requirements))


def _install_torch_with_pytorch_utils(requirements: Sequence[str]) -> None:
    versions = {package_name(r): r[len(package_name(r)):].strip() for r in requirements}
    logic = _pytorch_utils().PyTorchUtilsLogic()
    options = {"askConfirmation": True, "torchVersionRequirement": versions.get("torch") or None}
    if versions.get("torchvision"):
        options["torchvisionVersionRequirement"] = versions["torchvision"]
    try:
        installed = logic.installTorch(**options)
    except TypeError:  # older PyTorchUtils: no torchvision option
        options.pop("torchvisionVersionRequirement", None)
        installed = logic.installTorch(**options)
    if installed is None:
        raise missing_message(list(requirements))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# --- the Slicer-specific calls -------------------------------------------------------------------

def _pytorch_utils():
    """The PyTorch extension's module, when that extension is installed."""
    try:
        import PyTorchUtils  # the PyTorch extension's scripted module

        return PyTorchUtils
    except ImportError:
        return None


def _slicer_pip_ensure():
    """`slicer.packaging.pip_ensure` on Slicer versions that have it."""
    try:
        from slicer.packaging import pip_ensure

        return pip_ensure
    except ImportError:
        return None


def _slicer_pip_install():
    import slicer.util

    return slicer.util.pip_install
