"""Train on a click log of your own: CSV -> processed folder -> SR-GNN -> recommendations.

The log here is written by this script (a synthetic shop: text item ids like
``sku-00042``, ISO timestamps, a user per session), so that the example runs
anywhere; with a real log, start at step 2 with its path and column names.

    python examples/own_click_log.py --out runs/own-log
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.datasets import from_click_log, generate_sessions, load_dataset
from graphrec.evaluation import evaluate, format_table
from graphrec.models import SessionPopularity, build_model
from graphrec.training import Trainer, load_model


def write_shop_log(path: Path, num_sessions: int = 20000, seed: int = 0) -> None:
    """A CSV like a shop's export: session, user, item (text ids), time (ISO 8601)."""
    log = generate_sessions(num_sessions=num_sessions, num_items=2000, num_users=1500, seed=seed)
    items, ptr, users = log["items"], log["ptr"], log["user"]
    lengths = np.diff(ptr)
    session = np.repeat(np.arange(len(lengths)), lengths)
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(session * 240, unit="s")  # 4 min apart
    within = np.arange(len(items)) - ptr[:-1][session]
    frame = pd.DataFrame(
        {
            "session": [f"web-{s:06d}" for s in session],
            "user": [f"customer-{u:05d}" for u in users[session]],
            "product": [f"sku-{i:05d}" for i in items],
            "clicked_at": (start + pd.to_timedelta(within * 30, unit="s")).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    write_products(path.with_name("products.csv"), log["item_category"], seed)


def write_products(path: Path, category: np.ndarray, seed: int = 0) -> None:
    """The shop's product table: one row per product, its category and its brand
    (the generator's categories; brands drawn at random, 60 of them)."""
    rng = np.random.default_rng(seed + 1)
    ids = np.arange(1, len(category))
    table = pd.DataFrame(
        {
            "product": [f"sku-{i:05d}" for i in ids],
            "category": [f"cat-{c:02d}" for c in category[1:]],
            "brand": [f"brand-{b:02d}" for b in rng.integers(1, 61, size=len(ids))],
        }
    )
    table.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/own-log")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--csv-only", action="store_true", help="only write clicks.csv and products.csv"
    )
    args = parser.parse_args()
    out = Path(args.out)

    # 1. the log
    write_shop_log(out / "clicks.csv")
    print(f"wrote {out / 'clicks.csv'} and {out / 'products.csv'}")
    if args.csv_only:
        return
    # 2. preprocess: the reference protocol, every step an option
    stats = from_click_log(
        out / "clicks.csv",
        out / "shop",
        session="session",
        item="product",
        time="clicked_at",
        user="user",
        test_days=7,
    )
    print({k: stats[k] for k in ("rows", "train_sessions", "test_sessions", "items", "users")})
    # 3. train and select on validation, exactly as on a benchmark
    train, valid, test = (load_dataset(out / "shop", s) for s in ("train", "valid", "test"))
    torch.manual_seed(0)
    model = build_model("srgnn", dataset=train)  # keeps the shop's own ids
    trainer = Trainer(model, train, valid, epochs=args.epochs, run_dir=out / "run")
    trainer.fit()
    table = {
        "SR-GNN": evaluate(model, test, ks=(10, 20)),
        "S-POP": evaluate(SessionPopularity.from_dataset(train), test, ks=(10, 20)),
    }
    print(format_table(table))
    # 4. recommend in the shop's own ids, from the saved checkpoint
    model = load_model(out / "run" / "best.pt")
    print(model.recommend([["sku-00072", "sku-01033"]], k=5, exclude_seen=True))


if __name__ == "__main__":
    main()
