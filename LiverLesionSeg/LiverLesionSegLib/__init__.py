"""LiverLesionSeg core: read CT cases, train and run the liver / liver-lesion U-Net, evaluate.

Pure Python, no Qt; `slicer` is imported only in `mrml`.
"""

__version__ = "0.1.0"
