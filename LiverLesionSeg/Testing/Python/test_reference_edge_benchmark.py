"""The reference-edge benchmark tells a reference drawn on the CT's liver edge from one drawn inside it."""

import sys
from pathlib import Path

import numpy as np

from LiverLesionSegLib.volume import Case, Volume

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import reference_edge  # noqa: E402


def _case(reference_inset_mm: float) -> Case:
    """A 60 HU liver disc of radius 40 mm in -100 HU fat, its reference drawn `reference_inset_mm` inside it."""
    k, j, i = np.mgrid[:6, :120, :120]
    radius = np.hypot(j - 60, i - 60) * 1.0  # 1 mm pixels
    noise = np.random.default_rng(0).normal(0, 15, radius.shape)
    ct = Volume((np.where(radius < 40, 60, -100) + noise).astype(np.int16), (1.0, 1.0, 2.5), (0, 0, 0))
    liver = (radius < 40 - reference_inset_mm).astype(np.uint8)
    return Case("disc", ct, ct.with_array(liver), ct.with_array(np.zeros_like(liver)))


def test_a_reference_inside_the_edge_has_liver_density_just_outside_it():
    on_edge = reference_edge.liver_density_shares(_case(0.0))
    inset = reference_edge.liver_density_shares(_case(3.0))
    assert all(on_edge[band] < 0.05 for band in on_edge if band.startswith("outside"))
    assert inset["outside 0-1.5 mm"] > 0.7 > on_edge["outside 0-1.5 mm"]
    assert inset["inside 0-1.5 mm"] > 0.8 > on_edge["inside 0-1.5 mm"]  # the edge's own blur
