"""`python -m LiverLesionSegLib ...`: the command line, as Slicer's training panel runs it."""

import sys

from .cli import main

sys.exit(main())
