"""Time and peak memory of one call, measured separately (shared by ``bench_*.py``).

Timings and memory never come from the same call: tracing allocations slows
Python code, so :func:`time_call` runs the function untraced and
:func:`memory_call` runs it again for each memory measure.

Two memory measures, because neither sees everything:

- **traced** (:func:`traced_peak`): the peak of the bytes allocated through
  Python's allocators while the call runs, from :mod:`tracemalloc`, above what
  was allocated before it. It sees Python objects and numpy arrays (numpy
  reports its data buffers to tracemalloc), not what C/C++ libraries allocate
  themselves (LightGBM's histograms and trees, torch's tensors, BLAS and
  solver workspaces).
- **RSS** (:func:`rss_peak`): the peak growth of the resident set size during
  the call, run once more in a forked copy of this process (Linux: the peak
  ``VmHWM`` of ``/proc/self/status`` is reset through ``/proc/self/clear_refs``
  just before the call; elsewhere the growth of ``ru_maxrss``, which only sees
  a peak above the fork's starting size). The child first returns glibc's free
  heap to the system (``malloc_trim``) and fixes the mmap threshold at
  128 KiB, so that arrays freed during the call leave the resident set and
  every large allocation is counted when it is touched. It sees every
  library's allocations, in pages (a granularity of 4 KiB, and small
  allocations reuse freed heap), and misses memory allocated in other
  processes (joblib workers): measure with ``n_jobs=1``.

Both are reported as MiB and as a multiple of the call's input size (``X``'s
bytes, or the loss vector's for an ambiguity set's risk), e.g.
``"12.5 MiB (3.1x)"``, by :func:`mem_cell`.
"""

import ctypes
import gc
import math
import os
import resource
import select
import struct
import sys
import time
import tracemalloc

import numpy as np

MIB = 2.0**20

TRACED_NOTE = (
    "peak traced: peak of the bytes allocated through Python's allocators "
    "during one call (`tracemalloc`: Python objects and numpy arrays, not the "
    "C/C++ allocations of LightGBM, torch, BLAS or the solvers)"
)
RSS_NOTE = (
    "peak RSS: peak growth of the resident set during one call, run in a "
    "forked copy of the process (every library's allocations, 4 KiB pages; "
    "a floor of a few MiB from the fork itself, so read it at large inputs)"
)
MEMORY_NOTE = (
    "Memory columns: MiB and, in parentheses, the multiple of the input size "
    "named in the column; each measured on its own call, after the timed ones. "
    f"{TRACED_NOTE[0].upper()}{TRACED_NOTE[1:]}; {RSS_NOTE}."
)


def time_call(fn, repeats=3):
    """Median wall time of ``repeats`` untraced calls of ``fn()``.

    Returns ``(seconds, result of the last call)``.
    """
    if tracemalloc.is_tracing():
        raise RuntimeError("time_call must run without tracemalloc")
    times, out = [], None
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def traced_peak(fn):
    """Peak bytes allocated (tracemalloc) during one call of ``fn()``.

    The peak is taken above what was allocated when the call started. Returns
    ``(bytes, result)``.
    """
    was_tracing = tracemalloc.is_tracing()
    gc.collect()
    if not was_tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - start, 0), out


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _prepare_heap():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD (also ends its adaptation)
    libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    libc.malloc_trim(0)


def _child_measure(fn):
    """In the forked child: the peak RSS growth of ``fn()`` in bytes.

    The call runs with every native thread pool limited to one thread: an
    OpenMP pool inherited through the fork (scikit-learn's histogram boosting,
    LightGBM) has no threads in the child, and entering it deadlocks.
    Memory, not time, is measured here, so one thread changes nothing that is
    reported.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return _child_peak(fn)
    with threadpool_limits(limits=1):
        return _child_peak(fn)


def _child_peak(fn):
    gc.collect()
    _prepare_heap()
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
        base = _status_kib("VmRSS")
        fn()
        return 1024.0 * (_status_kib("VmHWM") - base)
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return 1024.0 * (peak - base)


def rss_peak(fn, timeout=900.0):
    """Peak resident-set growth (bytes) of one call of ``fn()`` in a fork.

    Returns ``nan`` where it cannot be measured (no ``fork``, the call
    raised, or it ran past ``timeout`` seconds: libraries whose thread pools
    are not fork-safe can hang in the child).
    """
    if not hasattr(os, "fork"):
        return math.nan
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, exit without cleanup
        status = 1
        try:
            os.close(read_fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            value = _child_measure(fn)
            os.write(write_fd, struct.pack("d", value))
            status = 0
        except BaseException:
            pass
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout)
        data = os.read(read_fd, 8) if ready else b""
    finally:
        os.close(read_fd)
    if not data:  # timed out or failed: make sure the child is gone
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    os.waitpid(pid, 0)
    return struct.unpack("d", data)[0] if len(data) == 8 else math.nan


class Memory:
    """Peak memory of one call: ``traced`` and ``rss`` bytes (``nan`` if not
    measured)."""

    def __init__(self, traced=math.nan, rss=math.nan):
        self.traced = traced
        self.rss = rss

    def cells(self, input_nbytes):
        """``(traced cell, RSS cell)`` formatted by :func:`mem_cell`."""
        return mem_cell(self.traced, input_nbytes), mem_cell(self.rss, input_nbytes)

    def __repr__(self):
        return (
            f"Memory(traced={self.traced / MIB:.1f} MiB, rss={self.rss / MIB:.1f} MiB)"
        )


def memory_call(fn, traced=True, rss=True, timeout=900.0):
    """Both peak-memory measures of ``fn()``, each from its own call."""
    out = Memory()
    if traced:
        out.traced = float(traced_peak(fn)[0])
    if rss:
        out.rss = float(rss_peak(fn, timeout=timeout))
    return out


def mem_cell(nbytes, input_nbytes=None):
    """``"12.5 MiB (3.1x)"``; ``"-"`` for a value that was not measured."""
    if nbytes is None or not np.isfinite(nbytes):
        return "-"
    text = f"{nbytes / MIB:.3g} MiB" if nbytes >= 0.01 * MIB else "< 0.01 MiB"
    if input_nbytes:
        ratio = nbytes / input_nbytes
        if ratio < 0.01:
            text += " (< 0.01x)"
        else:
            text += f" ({ratio:.2f}x)" if ratio < 10 else f" ({ratio:.3g}x)"
    return text


def nbytes(*arrays):
    """Total bytes of the arrays given (``None`` entries skipped)."""
    return int(sum(np.asarray(a).nbytes for a in arrays if a is not None))
