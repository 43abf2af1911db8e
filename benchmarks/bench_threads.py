"""Threads: where a second thread pays, and what happens when two trainings share the CPU.

    python benchmarks/bench_threads.py                 # both parts
    python benchmarks/bench_threads.py --part crossover
    python benchmarks/bench_threads.py --part shared --steps 300

*crossover*: SR-GNN training steps (batch 100, hidden 100) on synthetic
catalogues of growing size, with 1 thread and with every available CPU; the
ratio says from which ``items x hidden`` more threads pay
(:data:`graphrec.threads.ONE_THREAD_BELOW`).

*shared*: the same short training (``graphrec train --dataset synthetic``)
alone, then two copies started together, with ``--threads auto`` and with
torch's default thread count; the ratio of wall times (two together / one
alone) should stay near 2 (one core each), not collapse.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

from graphrec import SRGNN
from graphrec.datasets import synthetic
from graphrec.threads import available_cpus


def step_rate(num_items: int, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    data = synthetic(num_sessions=4000, num_items=num_items, num_users=500, num_categories=20)
    torch.manual_seed(0)
    model = SRGNN(num_items, hidden_channels=100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [data.batch(torch.arange(i * 100, (i + 1) * 100)) for i in range(10)]
    for b in batches[:3]:  # warm-up
        opt.zero_grad()
        model.loss(b).backward()
        opt.step()
    start = time.perf_counter()
    for i in range(steps):
        opt.zero_grad()
        model.loss(batches[i % 10]).backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def crossover(steps: int) -> None:
    cpus = available_cpus()
    print(f"SR-GNN training steps/s (batch 100, hidden 100); {cpus} CPU(s) available")
    print(f"{'items':>8}{'items x hidden':>16}{'1 thread':>11}{f'{cpus} threads':>12}{'ratio':>8}")
    for items in (1000, 3000, 10000, 43000):
        one = step_rate(items, 1, steps)
        many = step_rate(items, cpus, steps)
        print(f"{items:>8}{items * 100:>16,}{one:>11.1f}{many:>12.1f}{many / one:>7.2f}x")


def run_pair(steps: int, threads: str | None, together: int, limit: float = 600.0) -> float:
    """Wall time until ``together`` identical trainings started at once all end
    (``inf`` if they are still running after ``limit`` seconds: then killed)."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # torch's default, unless --threads says otherwise
    cmd = [sys.executable, "-m", "graphrec.cli", "train", "--dataset", "synthetic",
           "--epochs", "1", "--max-steps", str(steps), "--no-progress",
           "--valid-fraction", "0"]  # fmt: skip
    if threads is not None:
        cmd += ["--threads", threads]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(
                [*cmd, "--run-dir", f"{tmp}/run{i}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(together)
        ]
        for p in procs:
            try:
                p.wait(timeout=max(1.0, limit - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                return float("inf")
    return time.perf_counter() - start


def shared(steps: int) -> None:
    print(f"graphrec train on the synthetic log, {steps} steps, alone and two at once")
    print(f"{'threads':<16}{'alone s':>9}{'two at once s':>15}{'ratio':>8}")
    for label, threads in (("--threads auto", "auto"), ("torch default", None)):
        # torch default: graphrec's choice off, i.e. every visible core
        threads_arg = threads if threads is not None else str(os.cpu_count() or 1)
        alone = run_pair(steps, threads_arg, 1)
        two = run_pair(steps, threads_arg, 2, limit=6 * alone)
        shown = f"{two:>15.1f}" if two != float("inf") else f"{'> ' + format(6 * alone, '.0f'):>15}"
        print(f"{label:<16}{alone:>9.1f}{shown}{two / alone:>7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["crossover", "shared", "both"], default="both")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if args.part in ("crossover", "both"):
        crossover(min(args.steps, 50))
    if args.part in ("shared", "both"):
        shared(args.steps)


if __name__ == "__main__":
    main()
