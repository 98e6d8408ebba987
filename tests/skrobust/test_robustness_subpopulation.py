"""Robustness regressions of skrobust.subpopulation (issue 14)."""

import numpy as np
import pytest

from skrobust.subpopulation import GroupDROLinearRegression, GroupDROLogisticRegression


@pytest.mark.parametrize(
    "groups",
    [
        np.array([0.0, 1.0, np.nan, 1.0, 0.0, 1.0]),
        np.array([0.0, 1.0, np.inf, 1.0, 0.0, 1.0]),
        np.array(["a", "b", None, "b", "a", "b"], dtype=object),
        np.array(["a", "b", float("nan"), "b", "a", "b"], dtype=object),
    ],
)
@pytest.mark.parametrize("cls", [GroupDROLinearRegression, GroupDROLogisticRegression])
def test_group_dro_rejects_missing_group_labels(cls, groups):
    # issue 14, section 4: NaN labels used to be accepted, each NaN its own
    # group (np.unique keeps NaNs apart), a silently different objective
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="groups"):
        cls().fit(X, y, groups=groups)
