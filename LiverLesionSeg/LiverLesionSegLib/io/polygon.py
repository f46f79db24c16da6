"""A closed contour filled on a slice's pixels: a pixel belongs to it when its centre lies inside
the contour or on it.

Contours come in two conventions, and this rule reads both exactly: along the pixels' edges (half
a pixel out from the outermost centres, as marching squares and most planning systems draw them;
the area inside is the pixels' area), and through the centres of the boundary pixels (as OpenCV's
contour tracing and the tools built on it draw them). Pillow's and OpenCV's polygon fills round the
vertices to whole pixels instead, which adds a row and a column to a contour drawn along the edges
(a tenth of a small lesion's volume).
"""

from __future__ import annotations

import numpy as np

ON_CONTOUR = 1e-3  # pixels: a centre this close to the contour is on it


def fill_polygon(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool (rows, columns) mask of the pixels whose centres lie inside or on the closed polygon
    `xy` ((n, 2) of column i, row j, in pixels; the last point joins the first)."""
    mask = np.zeros(shape, bool)
    x0, y0 = np.asarray(xy[:, 0], float), np.asarray(xy[:, 1], float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows, columns = shape
    first, last = max(0, int(np.ceil(y0.min()))), min(rows - 1, int(np.floor(y0.max())))
    for j in range(first, last + 1):
        # even-odd crossings of the row of centres; each edge half-open in y, so a vertex counts once
        crossing = (y0 <= j) != (y1 <= j)
        xs = np.sort(x0[crossing] + (j - y0[crossing]) * (x1[crossing] - x0[crossing]) /
                     (y1[crossing] - y0[crossing]))
        for start, stop in zip(xs[0::2], xs[1::2]):
            _fill_row(mask, j, start, stop)
    _mark_contour(mask, x0, y0, x1, y1)
    return mask


def _fill_row(mask: np.ndarray, j: int, start: float, stop: float) -> None:
    i0, i1 = max(0, int(np.ceil(start - ON_CONTOUR))), min(mask.shape[1] - 1, int(np.floor(stop + ON_CONTOUR)))
    if i0 <= i1:
        mask[j, i0:i1 + 1] = True


def _mark_contour(mask: np.ndarray, x0, y0, x1, y1) -> None:
    """The centres that lie on the contour itself, which the crossings leave out along its lower
    and horizontal edges."""
    for ax, ay, bx, by in zip(x0, y0, x1, y1):
        if abs(by - ay) <= ON_CONTOUR:  # horizontal: the centres along it, where it runs through a row
            j = round(ay)
            if abs(ay - j) <= ON_CONTOUR and 0 <= j < mask.shape[0]:
                _fill_row(mask, j, min(ax, bx), max(ax, bx))
            continue
        low, high = min(ay, by), max(ay, by)
        for j in range(max(0, int(np.ceil(low - ON_CONTOUR))), min(mask.shape[0] - 1, int(np.floor(high + ON_CONTOUR))) + 1):
            x = ax + (j - ay) * (bx - ax) / (by - ay)
            i = round(x)
            if abs(x - i) <= ON_CONTOUR and 0 <= i < mask.shape[1]:
                mask[j, i] = True
