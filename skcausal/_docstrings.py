"""Docstring fragments shared by the skcausal estimators.

A line ``<<name other>>`` in a class docstring (at the indentation of the
entries) stands for those entries of the Parameters or Attributes section;
:func:`fill_doc` writes them in when the class is made, so each entry is
written once. ``help()``, Sphinx and the doctests see the full text.
"""

import re

#: numpydoc entries (name line, then the description indented by 4)
FRAGMENTS = {
    "outcome_model": """\
outcome_model : regressor or classifier, default=None
    Model of :math:`E[Y | X, A]`, cloned for every fold (and arm); a
    classifier is used through ``predict_proba[:, 1]``. ``None`` means
    :class:`~sklearn.linear_model.LinearRegression`.
""",
    "learner": """\
learner : {"T", "S"}, default="T"
    ``"T"`` fits one outcome model per arm; ``"S"`` one model with the
    treatment appended as the last feature.
""",
    "cv": """\
cv : int, cross-validation generator or iterable, default=5
    Cross-fitting folds. An int gives a shuffled
    :class:`~sklearn.model_selection.StratifiedKFold` on the treatment,
    seeded by ``random_state``.
""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds the folds and every unset ``random_state`` of the nuisance
    models.
""",
    "n_jobs": """\
n_jobs : int, default=None
    Folds fit in parallel with joblib (``-1``: all cores).
""",
    "verbose": """\
verbose : int, default=0
    Progress messages of the joblib loop over folds.
""",
    "estimate_": """\
estimate_ : float
    Estimated average treatment effect.
""",
    "stderr_": """\
stderr_ : float
    Standard error, :math:`\\sqrt{\\frac{1}{n^2}\\sum_i \\hat\\varphi_i^2}`.
""",
    "influence_function_": """\
influence_function_ : ndarray of shape (n_samples,)
    Estimated influence function of ``estimate_``.
""",
    "potential_outcome_means_": """\
potential_outcome_means_ : ndarray of shape (2,)
    Estimates of :math:`E[Y(0)]` and :math:`E[Y(1)]`.
""",
    "potential_outcome_stderr_": """\
potential_outcome_stderr_ : ndarray of shape (2,)
    Their standard errors.
""",
    "potential_outcome_influence_": """\
potential_outcome_influence_ : ndarray of shape (n_samples, 2)
    Their influence functions.
""",
    "outcome_predictions_": """\
outcome_predictions_ : ndarray of shape (n_samples, 2)
    Out-of-fold predictions of both potential outcomes.
""",
    "fold_indices_": """\
fold_indices_ : list of ndarray
    Held-out indices of each fold.
""",
    "n_features_in_": """\
n_features_in_ : int
    Number of features seen during fit.
""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during fit (only when ``X`` has string names).
""",
    "propensity_model": """\
propensity_model : classifier, default=None
    Model of :math:`P(A = 1 | X)` with ``predict_proba``, cloned for every
    fold. ``None`` means :class:`~sklearn.linear_model.LogisticRegression`.
""",
    "clip": """\
clip : float in [0, 0.5), default=1e-3
    Estimated propensities are clipped into ``[clip, 1 - clip]``, with a
    warning when any unit is clipped. With ``clip=0`` a propensity of
    exactly 0 or 1 raises a ``ValueError``.
""",
    "propensity_": """\
propensity_ : ndarray of shape (n_samples,)
    Out-of-fold (clipped) propensities.
""",
    "propensity_models_": """\
propensity_models_ : list of estimators
    The propensity model fitted on each fold's training part.
""",
}

_PLACEHOLDER = re.compile(r"^( *)<<([\w ]+)>>$", re.MULTILINE)


def _expand(match):
    indent, names = match.group(1), match.group(2).split()
    text = "".join(FRAGMENTS[name] for name in names)
    return "\n".join(indent + line if line else line for line in text.splitlines())


def fill_doc(cls):
    """Class decorator: expand the ``<<name ...>>`` lines of the docstring."""
    if cls.__doc__:
        cls.__doc__ = _PLACEHOLDER.sub(_expand, cls.__doc__)
    return cls
