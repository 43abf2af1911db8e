"""Memory: freed CPU memory kept for reuse.

**Reuse.** A full-softmax training step over a large catalogue allocates
``batch x num_items`` buffers (the logits, the item table's gradient), 17 MB
each for Diginetica. glibc's ``malloc`` serves blocks
that large with ``mmap`` and gives them back on ``free``, or trims them off the
top of its heap. Each new buffer then costs one page fault per 4 KiB page:
measured on a 2-core VM, 4,000-8,000 faults and 5-10 ms per SR-GNN step of
about 50 ms (``benchmarks/bench_srgnn.py`` prints the count). torch's CPU
allocator has no cache of its own.

:func:`reuse_freed_memory` raises glibc's two thresholds (``M_MMAP_THRESHOLD``,
``M_TRIM_THRESHOLD``) so that such blocks come from the heap and stay there
for the next step, which is what an allocator like jemalloc does. The price:
the process keeps its peak memory until it exits (the buffers are reused, not
multiplied). The :class:`~graphrec.training.Trainer` calls it on a CPU
(``reuse_memory=False`` leaves ``malloc`` alone); ``graphrec train``,
``graphrec demo`` and ``graphrec evaluate`` too (``--no-reuse-memory``).
Without glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("graphrec")

#: glibc's ``mallopt`` parameters (``<malloc.h>``)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: blocks below this size come from the heap; free space above it at the heap's
#: top is given back (1 GiB: a batch of 100 over 2.5 million items)
THRESHOLD = 1 << 30

_applied = False


def reuse_freed_memory(threshold: int = THRESHOLD) -> bool:
    """Make glibc keep freed blocks below ``threshold`` bytes for reuse.

    Applies to the whole process, once; later calls do nothing.

    Returns:
        ``True`` if the thresholds are set (now or before), ``False`` where
        the C library is not glibc or refused them.
    """
    global _applied
    if _applied:
        return True
    if threshold < 1:
        raise ValueError(f"threshold must be a positive number of bytes, got {threshold}")
    libc = _glibc()
    if libc is None:
        log.info("not glibc: malloc's thresholds left alone")
        return False
    # the mmap threshold first: setting either one stops glibc from adapting it
    if not (
        libc.mallopt(M_MMAP_THRESHOLD, threshold) and libc.mallopt(M_TRIM_THRESHOLD, threshold)
    ):
        log.info("glibc refused malloc thresholds of %d bytes", threshold)
        return False
    _applied = True
    log.info(
        "malloc keeps freed blocks below %d MiB for reuse (fewer page faults)", threshold >> 20
    )
    return True


def reusing_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` is in effect in this process."""
    return _applied


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (it has ``gnu_get_libc_version``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
