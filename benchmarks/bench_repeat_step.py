"""Training step of the repeat-aware models against the plain ones, in one process.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_repeat_step.py --threads 1

For SR-GNN, STAMP and SDM on Diginetica's catalogue (43,097 items, batches of
100 training samples): the median time of a full step (forward, backward, Adam)
of the plain model and of ``repeat=True`` (and ``mask_explore=True``), timed in
alternating rounds so that a drifting machine slows all alike, and their ratio
(the target: at most 1.15).
"""

from __future__ import annotations

import argparse

import torch
from _common import data_root_or_exit, rounds, training_step

from graphrec.datasets import load_dataset
from graphrec.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--models", default="srgnn,stamp,sdm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root_or_exit()
    train = load_dataset("diginetica", "train", root=root, cache=False)
    gen = torch.Generator().manual_seed(0)
    batches = [train.batch(torch.randint(0, len(train), (100,), generator=gen)) for _ in range(8)]
    device = torch.device("cpu")
    print(f"Diginetica: {train.num_items} items, batches of 100, {args.threads} thread(s)")
    for name in args.models.split(","):
        steps = {}
        for label, extra in (("plain", {}), ("repeat", {"repeat": True}),
                             ("repeat+mask", {"repeat": True, "mask_explore": True})):  # fmt: skip
            torch.manual_seed(0)
            model = build_model(name, dataset=train, **extra).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
            steps[label] = training_step(model, optimizer, batches)
        times = rounds(steps, args.steps, args.rounds, device)
        plain = times["plain"]
        shown = ", ".join(
            f"{label} {1000 * t:.1f} ms ({t / plain:.2f}x)" for label, t in times.items()
        )
        print(f"{name}: {shown}", flush=True)


if __name__ == "__main__":
    main()
