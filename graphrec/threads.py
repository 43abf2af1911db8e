"""How many CPU threads a graphrec process should use.

torch's default is one thread per core it can see, whatever else runs on the
machine and whatever CPU quota a container has. OpenMP threads that wait for a
core they do not get spin instead of sleeping, so two trainings that each take
every core of a small machine can run a hundred times slower than with one
thread each. graphrec therefore chooses the count itself:

* the CPUs this process may run on (its affinity mask), capped by the cgroup
  CPU quota (containers, CI runners);
* minus the cores other processes keep busy (the 1-minute load average,
  less one for this process);
* one thread for small models (:data:`ONE_THREAD_BELOW`), where a second
  thread gains little and sharing the CPU costs most.

``graphrec --threads N`` (CLI) and ``Trainer(num_threads=N)`` override the
choice; the choice and its reasons are logged.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

log = logging.getLogger("graphrec")

#: Below this many ``items x hidden`` scores per sample, one thread. Measured
#: with ``benchmarks/bench_threads.py`` on an idle 2-core machine: a second
#: thread speeds SR-GNN steps up 1.16x (1,000 items), 1.41x (3,000), 1.72x
#: (10,000) and 1.57x (43,000), while two small trainings sharing the CPU with
#: torch's default threads take 6.0x as long as one alone (1.07x with one
#: thread each). Passive OpenMP waiting is no cure: it makes two threads
#: 0.35x-0.63x as fast as one on small models.
ONE_THREAD_BELOW = 1_000_000


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup, in CPUs (``None``: no quota).

    Reads cgroup v2 (``cpu.max``: ``"quota period"`` or ``"max period"``) or
    cgroup v1 (``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us``).
    """
    root = Path(root)
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_file, period_file = (
            root / "cpu" / "cpu.cfs_quota_us",
            root / "cpu" / "cpu.cfs_period_us",
        )
        if quota_file.is_file() and period_file.is_file():
            quota = int(quota_file.read_text())
            return None if quota <= 0 else quota / int(period_file.read_text())
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def busy_cpus() -> float:
    """Cores other processes keep busy: the 1-minute load average less this
    process's own single thread so far (0 where unknown)."""
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except (AttributeError, OSError):
        return 0.0


def choose_threads(work: float | None = None, requested: int | None = None) -> tuple[int, str]:
    """The thread count for this process, and why.

    Args:
        work (float, optional): scores per sample of the model's step
            (``num_items x hidden_channels``); below :data:`ONE_THREAD_BELOW`
            one thread is chosen.
        requested (int, optional): an explicit count (``--threads``), used
            as given up to the CPUs available (more is capped there, with a
            warning: threads beyond the cores only wait for each other).
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be >= 1, got {requested}")
        cpus = available_cpus()
        if requested > cpus:
            # threads beyond the cores spin against each other: a hundred times slower
            log.warning(
                "%d threads requested, but only %d CPU(s) are available to this process "
                "(affinity, cgroup quota): using %d",
                requested, cpus, cpus,
            )  # fmt: skip
            return cpus, f"requested {requested}, capped at the {cpus} CPU(s) available"
        return requested, "requested"
    # processes torchrun started on this machine share its CPUs
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    cpus = max(1, available_cpus() // local)
    if work is not None and work < ONE_THREAD_BELOW:
        return 1, f"a small model ({work:,.0f} scores per sample): one thread is fastest"
    others = busy_cpus()
    free = max(1, min(cpus, math.floor(cpus - others + 0.5)))
    why = f"{cpus} CPU(s) available (affinity, cgroup quota"
    why += f", shared by {local} processes)" if local > 1 else ")"
    if free < cpus:
        why += f", {others:.1f} kept busy by other processes"
    return free, why


def configure_threads(work: float | None = None, requested: int | None = None) -> int:
    """Choose the thread count (:func:`choose_threads`), apply it to torch and log it."""
    threads, why = choose_threads(work, requested)
    torch.set_num_threads(threads)
    log.info("using %d thread(s): %s", threads, why)
    return threads
