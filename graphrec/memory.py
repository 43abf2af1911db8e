"""Memory: freed CPU memory kept for reuse, and the budget a dataset may build in.

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

**Budget.** Building a split's session graphs stores every prefix of every
session: a session of ``n`` clicks costs about ``n^2 / 2`` stored clicks
without a window, ``n * max_length`` with one, each about
:data:`BUILD_BYTES_PER_CLICK` bytes at the peak of the build.
:class:`~graphrec.data.SessionDataset` estimates that cost before building
anything and refuses a split that would not fit :func:`memory_budget`, naming
its longest sessions, instead of growing until the system kills it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

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


#: peak bytes per stored click while a split's session graphs are built (the
#: stored graphs keep about 40 of them): measured on Diginetica's training split,
#: 2,973,403 stored clicks, 545 MB of peak growth
BUILD_BYTES_PER_CLICK = 200


def parse_size(text: str) -> int:
    """``"8G"``, ``"500M"``, ``"1.5GiB"`` or a number of bytes -> bytes."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    cleaned = text.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = cleaned, ""
    if cleaned and cleaned[-1] in "kmgt":
        number, unit = cleaned[:-1], cleaned[-1]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a size (e.g. 8G, 500M, 1000000)") from None
    if value <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return int(value * units[unit])


def available_memory() -> int | None:
    """Bytes of memory the system can still give (``MemAvailable``), ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> tuple[int | None, str]:
    """The most memory that building a dataset may take, and where the figure comes from.

    ``$GRAPHREC_MEMORY_LIMIT`` (``8G``, ``500M``, bytes) if set, else 80% of
    the memory the system has available (``None`` where unknown).
    """
    env = os.environ.get("GRAPHREC_MEMORY_LIMIT")
    if env:
        return parse_size(env), f"$GRAPHREC_MEMORY_LIMIT={env}"
    free = available_memory()
    if free is None:
        return None, "unknown"
    return int(free * 0.8), "80% of the memory available"


def format_bytes(n: float) -> str:
    """Bytes in the binary units that :func:`parse_size` reads (``8G`` = 8 GiB)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
