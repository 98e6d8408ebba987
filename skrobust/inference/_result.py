"""Result type of the generalized empirical-likelihood bounds."""


class CertifiedInterval(tuple):
    """Confidence bounds ``(low, high)`` with the certificates of their solves.

    It is the 2-tuple ``(low, high)`` (it unpacks, indexes, compares and
    pickles as one), with the certificates as extra attributes.

    Attributes
    ----------
    low, high : float
        The bounds (``-inf`` / ``inf`` for a side that was not computed).
    low_gap, high_gap : float
        Certificate of each side's solve, a bound on how far the reported
        bound can be from the exact value of its optimization problem (a
        duality gap); ``0.0`` for a side not computed or with a closed form,
        ``nan`` when the ambiguity set offers no certificate. The function
        that returns the interval documents how each is computed.
    tolerance : float
        The level above which a gap raised a ``ConvergenceWarning``.
    """

    def __new__(cls, low, high, low_gap=0.0, high_gap=0.0, tolerance=0.0):
        self = super().__new__(cls, (float(low), float(high)))
        self.low_gap = float(low_gap)
        self.high_gap = float(high_gap)
        self.tolerance = float(tolerance)
        return self

    def __getnewargs__(self):
        return (self[0], self[1], self.low_gap, self.high_gap, self.tolerance)

    @property
    def low(self):
        return self[0]

    @property
    def high(self):
        return self[1]

    def __repr__(self):
        return (
            f"CertifiedInterval(low={self[0]!r}, high={self[1]!r}, "
            f"low_gap={self.low_gap:.3g}, high_gap={self.high_gap:.3g})"
        )
