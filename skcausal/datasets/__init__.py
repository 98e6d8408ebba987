"""Simulated observational studies with known treatment effects."""

from skcausal.datasets._simulations import make_kang_schafer, make_limited_overlap

__all__ = ["make_kang_schafer", "make_limited_overlap"]
