"""Peak-memory measurement shared by the memory-bound tests (issue 14, point 6).

The bounds are on memory, not on time, so they are deterministic: the peak of
the bytes allocated through Python's allocators (numpy arrays included) while
one call runs, above what was allocated when it started (tracemalloc).
"""

import gc
import tracemalloc


def traced_peak(fn, *args, **kwargs):
    """``(peak bytes, result)`` of one call ``fn(*args, **kwargs)``."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(peak - start, 0), out


def peak_bytes(fn, *args, **kwargs):
    """Peak bytes of one call ``fn(*args, **kwargs)`` (see :func:`traced_peak`)."""
    return traced_peak(fn, *args, **kwargs)[0]
