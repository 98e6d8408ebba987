"""Off-policy evaluation: value estimates, confidence intervals and scorers."""

from skbandit.metrics._ope import snips_value

__all__ = ["snips_value"]
