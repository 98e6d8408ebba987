"""The one loop of the cross-fitting engine: fits under joblib."""

from joblib import Parallel, delayed


def map_folds(function, tasks, *, n_jobs=None, verbose=0):
    """``function(*args)`` for every ``args`` of ``tasks``, under joblib.

    The results come back in the order of ``tasks`` as a generator, so a
    caller that stacks them as they arrive never holds all of them at once.

    Parameters
    ----------
    function : callable
        One fit (and prediction) of a fold.
    tasks : iterable of tuple
        The positional arguments of each call.
    n_jobs : int, default=None
        Parallel jobs (joblib's meaning: ``None`` one, ``-1`` all cores).
    verbose : int, default=0
        Verbosity of joblib's progress messages.

    Returns
    -------
    results : generator
        ``function``'s return values, in the order of ``tasks``.
    """
    return Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator")(
        delayed(function)(*args) for args in tasks
    )
