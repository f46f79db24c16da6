"""`python -m LiverLesionSegLib ...`: the command line, as Slicer's training panel runs it."""

from .console import run

run()
