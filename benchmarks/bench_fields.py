"""Training throughput of DIN, DIEN and SDM with one item field and with three, in one run.

    python benchmarks/bench_fields.py [--steps 20] [--rounds 5] [--threads 1]
        [--models din dien sdm]

The data is the synthetic log with a planted brand (8,000 sessions, 3,000 items,
users with a profile field, a 20-click history for SDM) whose items get two more
fields: a multi-valued one (1 to 3 "genres" of 30) and a single-valued one (one of
50 "series"). Every model trains at batch 128 (hidden 32) with Adam in three
settings, timed in interleaved rounds: no item field, one (``brand``, what a
category gave before), and three (``brand``, ``genre``, ``series``); DIN and DIEN
also with three fields of 11 channels each (``field_channels=11``: a behaviour
as wide as one field's, the authors' code's layout). The target: three fields
>= 0.8x the samples/s of one.
"""

from __future__ import annotations

import argparse

import torch
from _common import rounds, training_step

from graphrec.data import SessionDataset
from graphrec.datasets import synthetic
from graphrec.models import build_model


def with_three_fields(data: SessionDataset, seed: int = 0) -> SessionDataset:
    g = torch.Generator().manual_seed(seed)
    n = data.num_items + 1
    genre = torch.randint(1, 31, (n, 3), generator=g)
    genre[torch.rand(n, 3, generator=g) < 0.4] = 0  # 1 to 3 genres (the first always set)
    genre[:, 0] = torch.randint(1, 31, (n,), generator=g)
    series = torch.randint(1, 51, (n,), generator=g)
    genre[0], series[0] = 0, 0
    features = {**data.item_features, "genre": genre, "series": series}
    return SessionDataset(
        data.sessions, data.sample_session, data.target_position, data.num_items,
        max_length=data.max_length, user=data.user, history=data.history,
        user_items=data.user_items, num_users=data.num_users, item_features=features,
        user_features=data.user_features, name=data.name,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["din", "dien", "sdm"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = synthetic(num_sessions=8000, num_items=3000, num_users=500, num_categories=20,
                     num_brands=20, history_length=20, max_length=10)  # fmt: skip
    data = with_three_fields(base)
    settings = {"none": None, "one": "brand", "three": ("brand", "genre", "series")}
    fields = f"item fields {list(data.item_features)}, user fields {list(data.user_features)}"
    print(f"{data}: {fields}; batch 128, hidden 32, {args.threads} thread(s)")
    for name in args.models:
        steps = {}
        narrow = {"three, narrow": None} if name in ("din", "dien") else {}
        for label, fields in {**settings, **narrow}.items():
            torch.manual_seed(0)
            options = {}
            if label == "three, narrow":
                fields, options = settings["three"], {"field_channels": 11}
            model = build_model(name, dataset=data, hidden_channels=32, item_fields=fields,
                                num_categories=0, **options)  # fmt: skip
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(1)
            batches = [data.batch(torch.randint(0, len(data), (128,), generator=gen))
                       for _ in range(args.steps)]  # fmt: skip
            steps[label] = training_step(model, optimizer, batches)
        seconds = rounds(steps, args.steps, args.rounds, torch.device("cpu"), warmup=3)
        rate = {k: 128 / v for k, v in seconds.items()}
        print(f"{name:5s} samples/s: no field {rate['none']:7.0f}, one {rate['one']:7.0f}, "
              f"three {rate['three']:7.0f}; three / one = {rate['three'] / rate['one']:.2f}, "
              f"one / none = {rate['one'] / rate['none']:.2f}", flush=True)  # fmt: skip
        if narrow:
            print(f"      three fields of 11 channels (a behaviour of 65, one field's 64): "
                  f"{rate['three, narrow']:7.0f}; / one = "
                  f"{rate['three, narrow'] / rate['one']:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
