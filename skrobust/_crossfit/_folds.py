"""Folds of the cross-fitting engine: stratified on a treatment, weighted, repeated."""

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state

SEED_MAX = np.iinfo(np.int32).max

_ARM_NAMES = ("control", "treated")


def treatment_folds(t, cv, rng, sample_weight=None):
    """Return a list of ``(train, test)`` index pairs, checked for both arms.

    A unit of weight zero counts as absent: every arm must hold a unit of
    positive ``sample_weight`` overall and in both parts of every fold. The
    default folds stratify on the treatment and, when some weights are zero,
    on whether the weight is positive, so that zero-weight units do not
    crowd the positive ones out of a fold.
    """
    n = t.shape[0]
    present = np.unique(t)
    if present.size < 2:
        raise ValueError(
            f"treatment has one class only (all {n} units in arm "
            f"{int(present[0])}); both arms are needed to estimate an effect."
        )
    # int8 labels (the values 0..3): StratifiedKFold's sorts then run on n bytes
    arm = t.astype(np.int8)
    positive = np.ones(n, dtype=bool) if sample_weight is None else sample_weight > 0
    for a in (0, 1):
        if not np.any(positive[arm == a]):
            raise ValueError(
                f"sample_weight has no positive weight in treatment arm {a} "
                f"({_ARM_NAMES[a]}): all {int(np.sum(arm == a))} {_ARM_NAMES[a]} "
                "units have weight 0, so that arm's mean cannot be estimated. "
                "Both arms need units of positive weight."
            )
    if cv is None:
        cv = 5
    if isinstance(cv, int | np.integer):
        counts = np.bincount(arm[positive], minlength=2)
        for a, count in enumerate(counts):
            if count < cv:
                weighted = (
                    " of positive sample_weight"
                    if sample_weight is not None and not positive.all()
                    else ""
                )
                raise ValueError(
                    f"treatment arm {a} has {count} unit(s){weighted}, fewer "
                    f"than the cv={cv} folds: every fold needs units of both "
                    "arms. Use fewer folds or more data."
                )
        labels = arm.copy()
        if not positive.all():
            # zero-weight units form their own strata (merged back into
            # their arm's stratum when too few to spread over the folds)
            for a in (0, 1):
                zero = (~positive) & (arm == a)
                if zero.sum() >= cv:
                    labels[zero] = 2 + a
        splitter = StratifiedKFold(
            n_splits=int(cv), shuffle=True, random_state=rng.randint(SEED_MAX)
        )
        # each training part is the complement of its held-out part: only the
        # held-out parts are kept (train is None), the training parts are made
        # one fold at a time by train_part
        # a 0-column X: the splitter reads only its length; the held-out
        # indices are kept as int32 below 2**31 units (half of int64's bytes)
        dtype = index_dtype(n)
        folds = [
            (None, test.astype(dtype, copy=False))
            for _, test in splitter.split(np.empty((n, 0)), labels)
        ]
    elif hasattr(cv, "split"):
        folds = list(cv.split(np.zeros((n, 1)), t))
    else:
        folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    if len(folds) < 2:
        raise ValueError(f"cv must give at least 2 folds; got {len(folds)}.")
    covered = np.zeros(n, dtype=int)
    for k, (train, test) in enumerate(folds):
        covered[test] += 1
        for part, idx in (("training", train), ("held-out", test)):
            if idx is None:
                idx = train_part(test, n)
            arms = np.bincount(arm[idx], minlength=2)
            if np.any(arms == 0):
                missing = int(np.flatnonzero(arms == 0)[0])
                raise ValueError(
                    f"cv: fold {k} has no units of treatment arm {missing} in "
                    f"its {part} part; cross-fitting needs both arms in every "
                    "fold. Use fewer folds or more data."
                )
            arms = np.bincount(arm[idx][positive[idx]], minlength=2)
            if np.any(arms == 0):
                missing = int(np.flatnonzero(arms == 0)[0])
                raise ValueError(
                    f"sample_weight is 0 for every unit of treatment arm "
                    f"{missing} ({_ARM_NAMES[missing]}) in the {part} part of "
                    f"cv fold {k}; cross-fitting needs units of positive weight "
                    "in both arms of every fold. Choose folds (cv) that spread "
                    "the positive-weight units, or fewer folds."
                )
    if np.any(covered != 1):
        raise ValueError(
            "cv must partition the samples: each sample must be held out in "
            "exactly one fold."
        )
    return folds


def train_part(test, n):
    """Boolean mask of the ``n`` units outside ``test`` (a fold's training part).

    A mask (``n`` bytes) selects the same rows in the same order as their
    indices (``8 n`` bytes).
    """
    keep = np.ones(n, dtype=bool)
    keep[test] = False
    return keep


def arm_rows(t, train, arm):
    """Indices of the training units (``train``: mask or indices) in ``arm``.

    The rows come in the order of ``X[train][t[train] == arm]``, so that one
    fancy index gives the arm's training rows without the intermediate copy.
    """
    if train.dtype == bool:
        return np.flatnonzero(train & (t == arm))
    train = np.asarray(train)
    return train[t[train] == arm]


def fit_size(n_samples, cv, halves):
    """Samples seen by the smallest fit of a ``cv``-fold cross-fit."""
    n_train = n_samples - -(-n_samples // cv)
    return n_train // 2 if halves else n_train


def index_dtype(n_samples):
    """Smallest of int32 / int64 that indexes ``n_samples`` rows (the index
    arrays of a cross-fit are then half the size of float vectors)."""
    return np.int32 if n_samples < np.iinfo(np.int32).max else np.int64


def fold_labels(n_samples, cv, n_repeats, random_state):
    """Fold labels of ``n_repeats`` independent shuffled K-fold splits.

    Parameters
    ----------
    n_samples : int
    cv : int
        Number of folds.
    n_repeats : int
        Number of independent splits.
    random_state : int, RandomState instance or None
        Seeds the splits.

    Returns
    -------
    folds : ndarray of shape (n_repeats, n_samples)
        ``folds[r, i]`` is the fold of sample ``i`` in split ``r``.
    """
    if cv > n_samples:
        raise ValueError(
            f"cv={cv} cross-fitting folds need at least {cv} samples; "
            f"got n_samples={n_samples}."
        )
    n_train = n_samples - -(-n_samples // cv)  # smallest training fold of KFold
    if n_train < 2:
        raise ValueError(
            f"cv={cv} cross-fitting of n_samples={n_samples} leaves {n_train} "
            "training sample(s) in a fold; at least 2 are needed. Use more samples."
        )
    rng = check_random_state(random_state)
    folds = np.empty((n_repeats, n_samples), dtype=np.min_scalar_type(cv))
    for r in range(n_repeats):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        splitter = KFold(cv, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(splitter.split(np.zeros((n_samples, 1)))):
            folds[r, test] = k
    return folds
