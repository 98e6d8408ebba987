"""Distributionally robust linear models."""

from skrobust.linear_model._dro_linear import DROLinearRegression, DROLogisticRegression

__all__ = ["DROLinearRegression", "DROLogisticRegression"]
