"""Shared pytest configuration: GPU tests skip cleanly without CUDA.

Property tests (hypothesis) draw the same examples on every run of ``make
test`` (the "ci" profile, derandomized), so that CI on a clean clone tests
what was tested before the submission; ``make test-fuzz`` draws new ones (the
"fuzz" profile), and every case it finds is pinned with ``@example``.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc):
    # the generic hardening checks (tests/_hardening.py), per package
    parametrize = getattr(metafunc.function, "per_package", None)
    if parametrize is not None:
        parametrize(metafunc)
