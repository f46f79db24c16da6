#!/usr/bin/env bash
# Set up LiverLesionSeg on a fresh machine: a virtual environment in .venv with the package, its
# pinned PyTorch and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyTorch first, pinned: an unpinned torch would pull a multi-GB build.
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e ".[test]"
# Test only: rt-utils writes the RT structure sets the tests read. It asks for opencv-python, whose
# GUI build needs a display library that servers lack, so OpenCV's headless build goes in instead.
.venv/bin/python -m pip install --quiet opencv-python-headless==5.1.0.95
.venv/bin/python -m pip install --quiet --no-deps rt-utils==1.2.7
echo "Ready: .venv/bin/liverlesionseg --help"
