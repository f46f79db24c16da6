"""Checking and installing the module's Python packages (the parts that run outside Slicer)."""

from __future__ import annotations

import pytest

from LiverLesionSegLib.dependencies import (InstallStep, MissingDependencies, ensure_dependencies, install_question,
                                            plan_installation, read_requirements, unmet_requirements)

NOT_A_PACKAGE = "liverlesionseg-no-such-package>=1.0"


def test_requirements_file_is_met_by_the_tested_environment():
    requirements = read_requirements()
    assert any(r.startswith("torch==") for r in requirements)
    assert unmet_requirements(requirements) == [], "the requirements file asks for what the tests do not run with"


def test_unmet_requirements_are_missing_or_other_versions():
    assert unmet_requirements(["numpy>=1.0", "numpy<1.0", NOT_A_PACKAGE]) == ["numpy<1.0", NOT_A_PACKAGE]


def test_a_recent_pytorch_of_another_version_is_kept():
    """The pin says which PyTorch to install where there is none; a recent one already installed
    (say a CUDA build from Slicer's PyTorch extension) is not replaced."""
    assert unmet_requirements(["torch==0.0.1", "torchvision==0.0.1"]) == []
    assert unmet_requirements(["numpy==0.0.1"]) == ["numpy==0.0.1"]  # the leniency is PyTorch's only


def test_plan_puts_pytorch_first_through_pytorch_utils_where_there_is_one():
    unmet = ["torch==2.14.1", "pynrrd>=1.0", "torchvision==0.29.1"]
    assert plan_installation(unmet, have_pytorch_utils=True, have_pip_ensure=True) == [
        InstallStep("pytorchutils", ("torch==2.14.1", "torchvision==0.29.1")),
        InstallStep("pip_ensure", ("pynrrd>=1.0",))]
    assert plan_installation(unmet, have_pytorch_utils=False, have_pip_ensure=False) == [
        InstallStep("pip_install", ("torch==2.14.1", "torchvision==0.29.1")),
        InstallStep("pip_install", ("pynrrd>=1.0",))]
    assert plan_installation(["pynrrd>=1.0"], True, False) == [InstallStep("pip_install", ("pynrrd>=1.0",))]
    assert plan_installation([], True, True) == []


def test_nothing_is_asked_when_everything_is_there():
    asked = []
    ensure_dependencies(confirm=asked.append, requirements=["numpy>=1.0"])
    assert asked == []


def test_declined_installation_ends_in_one_clear_line():
    """On slicer-core there is neither PyTorchUtils nor slicer.packaging, as on an older Slicer:
    the user is asked, and a "no" ends in a message naming the package and the way out."""
    pytest.importorskip("slicer", reason="needs the slicer-core wheel")
    questions = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(MissingDependencies) as error:
        ensure_dependencies(confirm=decline, requirements=["numpy>=1.0", NOT_A_PACKAGE])
    assert questions == [install_question([NOT_A_PACKAGE])]
    message = str(error.value)
    assert NOT_A_PACKAGE in message and "pip_install" in message and "\n" not in message
    assert "numpy" not in message
