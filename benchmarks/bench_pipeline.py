"""A click log's way to training, at scale: preprocessing, the processed files,
reopening them, batches and training, from 10^6 clicks up.

    python benchmarks/bench_pipeline.py [--clicks 1e6 1e7] [--items 2e5]
        [--work runs/pipeline] [--train-steps 50] [--plot docs/assets/pipeline.png]

For every size, a CSV log ``session,item,ts`` is generated on disk in chunks of
10^6 clicks (sessions of ``2 + Poisson(3)`` clicks, string item ids over a
Zipf-like catalogue of ``--items`` items with favoured successors, as in
``bench_scale.py``; unix-second times, sessions over 60 days), then each stage
runs in a process of its own, so that its peak resident memory is its own:

* **preprocess**: ``graphrec preprocess clicks`` (:func:`from_click_log`), the
  SR-GNN protocol, the last 7 days as test: wall time and peak RSS, on DuckDB
  (the default engine, its default memory limit) and on pandas up to
  ``--pandas-max`` clicks (beyond, pandas does not fit the machine); where both
  ran, their folders are compared file by file (``identical``);
* **build**: ``load_dataset`` of the train, valid and test splits, writing their
  processed files: wall time and peak RSS;
* **reopen**: ``load_dataset`` of the training split from its processed file in
  a new process: wall time and RSS after opening (before any batch), beside the
  RSS of the imports alone (torch, numpy, pandas, graphrec);
* **batches**: ``SessionDataset.batch`` of 100 random samples, samples/s;
* **train**: SR-GNN (hidden 100, exact full softmax, fused Adam) samples/s over
  ``--train-steps`` steps, in the reopened process;
* **evaluate**: that briefly trained model on the first ``--eval-samples`` test
  samples, full ranking, exact and through a faiss HNSW index of its item
  vectors (build time, evaluation time, its recall@20 of the exact top-20).

Sizes already measured are read back from ``<work>/points.jsonl`` (delete it to
measure again); generated logs are kept under ``<work>``. The table is printed
with the growth exponent of every curve (least-squares slope in log-log space),
and ``--plot`` saves the log-log figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from bench_scale import exponent, scale_log

CHUNK = 1_000_000


def write_log(path: Path, num_clicks: int, num_items: int, seed: int = 0) -> None:
    """A CSV click log of about ``num_clicks`` clicks, written chunk by chunk."""
    tmp = path.with_suffix(".tmp")
    chunks = max(1, round(num_clicks / CHUNK))
    day = 86_400
    with open(tmp, "w") as f:
        f.write("session,item,ts\n")
        first_session = 0
        for c in range(chunks):
            items, ptr = scale_log(num_clicks // chunks, num_items, seed=seed * 1000 + c)
            lengths = np.diff(ptr)
            session = np.repeat(np.arange(lengths.size) + first_session, lengths)
            # sessions start in order over 60 days, one click every 30 s
            start = (c + np.arange(lengths.size) / lengths.size) / chunks * 60 * day
            within = np.arange(items.size) - np.repeat(ptr[:-1], lengths)
            ts = 1_600_000_000 + start.astype(np.int64)[session - first_session] + 30 * within
            rows = np.char.add(np.char.add(session.astype(str), ",item-"), items.astype(str))
            rows = np.char.add(np.char.add(rows, ","), ts.astype(str))
            f.write("\n".join(rows.tolist()) + "\n")
            first_session += lengths.size
    tmp.replace(path)


def same_files(a: Path, b: Path) -> bool:
    """Whether two click-log folders hold the same outputs, byte for byte."""
    import filecmp

    names = [p.name for p in a.iterdir() if p.is_file()]
    if sorted(names) != sorted(p.name for p in b.iterdir() if p.is_file()):
        return False
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, which
    survives ``exec`` and so starts at the parent's size, it is this program's own)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, log: Path, folder: Path, args: argparse.Namespace) -> dict:
    """One stage, in this process (called through ``--stage``)."""
    import torch

    from graphrec.data import SessionLoader
    from graphrec.datasets import from_click_log, load_dataset
    from graphrec.evaluation import FaissRetriever, evaluate
    from graphrec.models import build_model

    torch.set_num_threads(args.threads)
    imported = psutil.Process().memory_info().rss / 2**20  # torch, numpy, pandas, graphrec
    start = time.perf_counter()
    if name.startswith("preprocess-"):
        engine = name.split("-", 1)[1]
        stats = from_click_log(
            log, folder, session="session", item="item", time="ts", engine=engine, name="log"
        )
        key = "preprocess" if engine == "duckdb" else "pandas"
        return {
            f"{key}_s": time.perf_counter() - start,
            f"{key}_mib": peak_rss_mib(),
            "rows": stats["rows"],
            "items_kept": stats["items"],
        }
    if name == "build":
        samples = {s: len(load_dataset(folder, s)) for s in ("train", "valid", "test")}
        return {
            "build_s": time.perf_counter() - start,
            "build_mib": peak_rss_mib(),
            "processed_mib": sum(f.stat().st_size for f in (folder / "processed").glob("*.pt"))
            / 2**20,
            **{f"{s}_samples": n for s, n in samples.items()},
        }
    train = load_dataset(folder, "train")
    out = {
        "reopen_s": time.perf_counter() - start,
        "reopen_mib": psutil.Process().memory_info().rss / 2**20,
        "imported_mib": imported,
    }
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(train), (100,), generator=gen) for _ in range(1000)]
    start = time.perf_counter()
    for index in batches:
        train.batch(index)
    out["batches_samples_s"] = 100 * len(batches) / (time.perf_counter() - start)
    torch.manual_seed(0)
    model = build_model("srgnn", train)  # with the log's item labels
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    feed = iter(SessionLoader(train, batch_size=100, shuffle=True, seed=0))
    for step in range(args.train_steps + 5):
        if step == 5:
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model.loss(next(feed)).backward()
        opt.step()
    out["train_samples_s"] = 100 * args.train_steps / (time.perf_counter() - start)
    out["after_training_mib"] = psutil.Process().memory_info().rss / 2**20
    # evaluation of the (briefly trained) model on test samples: exact, and by HNSW
    test = load_dataset(folder, "test")
    test = test.subset(torch.arange(min(args.eval_samples, len(test))))
    model.eval()
    start = time.perf_counter()
    exact = evaluate(model, test, ks=(20,))
    out["eval_exact_s"] = time.perf_counter() - start
    with torch.no_grad():
        vectors = model.item_vectors().detach()
    start = time.perf_counter()
    index = FaissRetriever(vectors, kind="hnsw")
    out["hnsw_build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    approx = evaluate(model, test, ks=(20,), retriever=index)
    out["eval_hnsw_s"] = time.perf_counter() - start
    out["eval_samples"] = len(test)
    out["hr20_exact"], out["hr20_hnsw"] = exact["HR@20"], approx["HR@20"]
    out["hnsw_recall"] = approx["ANN recall@20"]
    return out


COLUMNS = [
    ("rows", "clicks", "{:,.0f}"),
    ("train_samples", "train samples", "{:,.0f}"),
    ("preprocess_s", "DuckDB preprocess s", "{:.1f}"),
    ("preprocess_mib", "DuckDB peak MiB", "{:,.0f}"),
    ("pandas_s", "pandas preprocess s", "{:.1f}"),
    ("pandas_mib", "pandas peak MiB", "{:,.0f}"),
    ("identical", "same files", "{}"),
    ("build_s", "build s", "{:.1f}"),
    ("build_mib", "build peak MiB", "{:,.0f}"),
    ("processed_mib", "processed files MiB", "{:,.0f}"),
    ("reopen_s", "reopen s", "{:.2f}"),
    ("reopen_mib", "reopen RSS MiB", "{:,.0f}"),
    ("imported_mib", "of which imports MiB", "{:,.0f}"),
    ("batches_samples_s", "batch() samples/s", "{:,.0f}"),
    ("train_samples_s", "SR-GNN samples/s", "{:,.0f}"),
    ("eval_exact_s", "exact eval s", "{:.2f}"),
    ("hnsw_build_s", "HNSW build s", "{:.1f}"),
    ("eval_hnsw_s", "HNSW eval s", "{:.2f}"),
    ("hnsw_recall", "HNSW recall@20", "{:.3f}"),
]


#: (key, label) of the curves whose growth exponents against the clicks are fitted
CURVES = [
    ("preprocess_s", "DuckDB preprocess time (s)"),
    ("preprocess_mib", "DuckDB preprocess peak RSS (MiB)"),
    ("pandas_s", "pandas preprocess time (s)"),
    ("pandas_mib", "pandas preprocess peak RSS (MiB)"),
    ("build_s", "build time (s)"),
    ("build_mib", "build peak RSS (MiB)"),
    ("processed_mib", "processed files (MiB)"),
    ("reopen_s", "reopen time (s)"),
    ("reopen_mib", "reopen RSS (MiB)"),
    ("batches_samples_s", "batch() samples/s"),
]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for key, label in CURVES:
        have = [r for r in rows if key in r]
        x, ys = [r["rows"] for r in have], [r[key] for r in have]
        style = "o--" if key.startswith("pandas") else "o-"
        ax.plot(x, ys, style, label=f"{label}: exponent {exponent(x, ys):.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clicks in the log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("a click log's way to training")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--items", type=float, default=2e5)
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"))
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-samples", type=int, default=20000)
    parser.add_argument("--plot", type=Path, default=None, help="save the log-log figure here")
    parser.add_argument("--pandas-max", type=float, default=3e7, help="pandas up to this size")
    parser.add_argument("--stage", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        name, log, folder = args.stage
        print(json.dumps(stage(name, Path(log), Path(folder), args)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.work / "points.jsonl"
    done = {}
    if results.is_file():
        done = {r["requested"]: r for r in map(json.loads, results.read_text().splitlines())}
    for clicks in (int(c) for c in args.clicks):
        log = args.work / f"clicks-{clicks:.0e}.csv"
        folder = args.work / f"log-{clicks:.0e}"
        if not log.is_file():
            start = time.perf_counter()
            write_log(log, clicks, int(args.items))
            print(f"generated {log} ({log.stat().st_size / 2**20:,.0f} MiB) in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        row = done.get(clicks, {"requested": clicks, "items": int(args.items)})
        if "engine" not in row and "preprocess_s" in row:  # measured before DuckDB: pandas
            row["pandas_s"], row["pandas_mib"] = row.pop("preprocess_s"), row.pop("preprocess_mib")
        row["engine"] = "duckdb"
        pandas_folder = folder.with_name(folder.name + "-pandas")
        if "preprocess_s" not in row and (folder / "meta.json").is_file():
            shutil.rmtree(pandas_folder, ignore_errors=True)
            folder.rename(pandas_folder)  # a folder pandas wrote earlier: compared below
        steps = []
        if clicks <= args.pandas_max and "pandas_s" not in row:
            steps.append(("preprocess-pandas", pandas_folder))
        if "preprocess_s" not in row:
            steps.append(("preprocess-duckdb", folder))
        steps += [(name, folder) for name in ("build", "reopen") if f"{name}_s" not in row]
        for name, into in steps:
            command = [sys.executable, __file__, "--stage", name, str(log), str(into)]
            command += ["--train-steps", str(args.train_steps), "--threads", str(args.threads)]
            command += ["--eval-samples", str(args.eval_samples)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"{name} of {clicks:,} clicks failed:\n{proc.stderr[-3000:]}")
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {clicks:,} clicks: {name} done", flush=True)
            if name == "preprocess-duckdb" and (pandas_folder / "meta.json").is_file():
                row["identical"] = same_files(folder, pandas_folder)
                shutil.rmtree(pandas_folder)
        done[clicks] = row
        with results.open("w") as f:  # the whole file: a row may have been completed
            f.write("".join(json.dumps(r) + "\n" for r in done.values()))
        continue
    rows = [done[int(c)] for c in args.clicks]
    print("| " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|" + "---:|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(f.format(r[k]) if k in r else "" for k, _, f in COLUMNS) + " |")
    if len(rows) > 1:
        print("\ngrowth exponents against the clicks (log-log slope)")
        for key, label in CURVES:
            have = [r for r in rows if key in r]
            slope = exponent([r["rows"] for r in have], [r[key] for r in have])
            print(f"  {label:<28} {slope:6.2f}")
    if args.plot:
        plot(rows, args.plot)
        print(f"\nfigure: {args.plot}")


if __name__ == "__main__":
    main()
