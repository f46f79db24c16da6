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
    x0, y0 = np.asarray(xy[:, 0], float), np.asarray(xy[:, 1], float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows, columns = shape
    # even-odd crossings of the rows of centres; each edge half-open in y (lo <= j < hi), so a vertex counts once
    edge, j = _rows_of_edges(np.minimum(y0, y1), np.maximum(y0, y1), rows, half_open=True)
    xs = _x_at(x0, y0, x1, y1, edge, j)
    order = np.lexsort((xs, j))  # by row, then along it: each row's crossings pair up, start and stop
    j, xs = j[order], xs[order]
    mask = _filled_spans([(j[0::2], xs[0::2], xs[1::2]), _horizontal_edges_on_rows(x0, y0, x1, y1, rows)], shape)
    _mark_sloped_edges(mask, x0, y0, x1, y1)
    return mask


def _rows_of_edges(low: np.ndarray, high: np.ndarray, rows: int, half_open: bool) -> tuple[np.ndarray, np.ndarray]:
    """(edge, row) for every row of centres each edge spans within the image: low <= j < high
    (`half_open`), else within ON_CONTOUR of [low, high]."""
    slack = 0.0 if half_open else ON_CONTOUR
    first = np.maximum(0, np.ceil(low - slack)).astype(np.int64)
    stop = np.ceil(high) if half_open else np.floor(high + slack) + 1
    stop = np.minimum(rows, stop).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(low)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return edge, first[edge] + offset


def _x_at(x0, y0, x1, y1, edge: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Where each edge crosses its row j."""
    return x0[edge] + (j - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])


def _horizontal_edges_on_rows(x0, y0, x1, y1, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal edges that run through a row of centres, as spans (row, start, stop): the
    crossings leave the centres on them out."""
    flat = np.abs(y1 - y0) <= ON_CONTOUR
    j = np.round(y0[flat])
    on_row = (np.abs(y0[flat] - j) <= ON_CONTOUR) & (j >= 0) & (j < rows)
    a, b = x0[flat][on_row], x1[flat][on_row]
    return j[on_row].astype(np.int64), np.minimum(a, b), np.maximum(a, b)


def _filled_spans(spans: list[tuple[np.ndarray, np.ndarray, np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie within ON_CONTOUR of a span (row, start, stop) of its row."""
    rows, columns = shape
    j, start, stop = (np.concatenate(parts) for parts in zip(*spans))
    i0 = np.maximum(0, np.ceil(start - ON_CONTOUR)).astype(np.int64)
    i1 = np.minimum(columns - 1, np.floor(stop + ON_CONTOUR)).astype(np.int64)
    keep = i0 <= i1
    steps = np.zeros((rows, columns + 1), np.int32)  # +1 where a span starts, -1 after it stops
    np.add.at(steps, (j[keep], i0[keep]), 1)
    np.add.at(steps, (j[keep], i1[keep] + 1), -1)
    return np.cumsum(steps[:, :columns], axis=1) > 0


def _mark_sloped_edges(mask: np.ndarray, x0, y0, x1, y1) -> None:
    """The centres that lie on the contour's sloped edges, which the crossings leave out along its
    lower edges."""
    sloped = np.flatnonzero(np.abs(y1 - y0) > ON_CONTOUR)
    edge, j = _rows_of_edges(np.minimum(y0, y1)[sloped], np.maximum(y0, y1)[sloped], mask.shape[0], half_open=False)
    edge = sloped[edge]
    x = _x_at(x0, y0, x1, y1, edge, j)
    i = np.round(x)
    on = (np.abs(x - i) <= ON_CONTOUR) & (i >= 0) & (i < mask.shape[1])
    mask[j[on], i[on].astype(np.int64)] = True
