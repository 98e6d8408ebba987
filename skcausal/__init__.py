"""skcausal: cross-fitted treatment-effect estimators as scikit-learn estimators."""

__all__ = []
