"""Cost versus size: building a dataset, training and evaluation from 10^5 to 10^7
clicks and from 10^4 to 10^6 items.

    python benchmarks/bench_scale.py [--clicks 1e5 1e6 1e7] [--items 1e4 1e5 1e6]
        [--fixed-items 1e4] [--fixed-clicks 1e6] [--out runs/scale]
        [--plot docs/assets/scale.png] [--device cpu|cuda] [--no-faiss]

Two sweeps of synthetic click logs: the number of clicks at a fixed catalogue
(``--fixed-items``), and the catalogue at a fixed number of clicks
(``--fixed-clicks``). Each point runs in its own process and measures:

* **build**: the training dataset (``SessionDataset.from_sessions``: the
  sessions kept once, every prefix-augmentation sample as a cut of its session;
  graphs are built per batch, inside the training figure), wall time and peak
  resident memory added;
* **train**: SR-GNN (hidden 100, batch 100, exact full softmax, fused Adam)
  training samples/s over ``--train-steps`` steps;
* **eval**: full-ranking evaluation of ``--eval-samples`` held-out samples,
  exact (torch, chunks of 100 sessions); then, like for like on the same
  session vectors, the top-20 exact (matmul + ``top_k``) and through faiss
  HNSW and IVF (their build time, search time and recall@20 of the exact
  top-20: where the approximate search starts to pay off); the peak memory
  added by the exact evaluation, against the ``100 x (num_items + 1)`` score
  chunk it is bounded by.

The table and a log-log figure are printed/saved with the growth exponent of
every curve (the slope of a least-squares line in log-log space). The logs are
generated vectorised (no per-click Python): Zipf-like item popularity
(``1 / rank^1.1``), four favoured successors per item, session lengths
``2 + Poisson(3)``; each next click follows a successor (60%) or popularity.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from _common import sync


# -- one point (run in a subprocess) --------------------------------------------
def scale_log(num_clicks: int, num_items: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(items, ptr)``: a click log of about ``num_clicks`` clicks over ``num_items`` items."""
    rng = np.random.default_rng(seed)
    weight = 1.0 / np.arange(1, num_items + 1) ** 1.1
    cdf = np.cumsum(weight[rng.permutation(num_items)])
    cdf /= cdf[-1]

    def popular(n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(n)), num_items - 1) + 1

    successors = popular(4 * (num_items + 1)).reshape(num_items + 1, 4)
    num_sessions = max(1, num_clicks // 5)
    lengths = np.minimum(2 + rng.poisson(3, size=num_sessions), 30)
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    items = np.empty(ptr[-1], dtype=np.int64)
    items[ptr[:-1]] = popular(num_sessions)
    for t in range(1, int(lengths.max())):
        active = np.flatnonzero(lengths > t)
        pos = ptr[active] + t
        follow = successors[items[pos - 1], rng.integers(0, 4, active.size)]
        items[pos] = np.where(rng.random(active.size) < 0.6, follow, popular(active.size))
    return items, ptr


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms."""

    def __enter__(self) -> PeakRSS:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def added_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def run_point(num_clicks: int, num_items: int, args: argparse.Namespace) -> dict:
    from graphrec import SRGNN
    from graphrec.data import SessionDataset, SessionLoader
    from graphrec.evaluation import FaissRetriever, evaluate, top_k
    from graphrec.models import similarity

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, ptr = scale_log(num_clicks, num_items)
    # the last sessions give the held-out samples (at least --eval-samples of them)
    lengths = np.diff(ptr)
    held = int(np.searchsorted(np.cumsum((lengths - 1)[::-1]), args.eval_samples)) + 1
    cut = len(lengths) - held
    items_t, ptr_t = torch.from_numpy(items), torch.from_numpy(ptr)
    train_items, train_ptr = items_t[: ptr[cut]], ptr_t[: cut + 1]
    test_items, test_ptr = items_t[ptr[cut] :], ptr_t[cut:] - ptr[cut]
    out = {"clicks": int(ptr[cut]), "items": num_items}
    with PeakRSS() as mem:
        start = time.perf_counter()
        train = SessionDataset.from_sessions(train_items, train_ptr, num_items=num_items)
        out["build_s"] = time.perf_counter() - start
    out["build_mib"] = mem.added_mib
    out["samples"] = len(train)
    test = SessionDataset.from_sessions(test_items, test_ptr, num_items=num_items)

    torch.manual_seed(0)
    model = SRGNN(num_items).to(device).eval()
    # exact evaluation first, before training has allocated anything of its size
    evaluate(model, test, ks=(20,))  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    with PeakRSS() as mem:
        start = time.perf_counter()
        evaluate(model, test, ks=(20,))
        sync(device)
        out["eval_exact_s"] = time.perf_counter() - start
    out["eval_mib"] = mem.added_mib
    if device.type == "cuda":  # the GPU memory the evaluation added
        out["eval_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    out["score_chunk_mib"] = 100 * (num_items + 1) * 4 / 2**20
    out["eval_samples"] = len(test)

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    batches = iter(SessionLoader(train, batch_size=100, shuffle=True, seed=0))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(next(batches).to(device)).backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.train_steps):
        step()
    sync(device)
    out["train_samples_s"] = 100 * args.train_steps / (time.perf_counter() - start)

    model.eval()  # the approximate indexes are built on the (briefly) trained table
    if not args.no_faiss:
        # like for like: the top-20 of the same session vectors, exact (torch) or by an index
        with torch.no_grad():
            queries = torch.cat(
                [
                    model.session_embedding(test.batch(torch.arange(s, min(s + 1000, len(test)))))
                    for s in range(0, len(test), 1000)
                ]
            )
            vectors = model.item_vectors().detach()
            start = time.perf_counter()
            for s in range(0, len(test), 100):
                top_k(similarity(queries[s : s + 100], vectors), 20)
            sync(device)
            out["exact_top20_s"] = time.perf_counter() - start
        queries, vectors = queries.cpu(), vectors.cpu()
        for kind in ("hnsw", "ivf"):
            start = time.perf_counter()
            retriever = FaissRetriever(vectors, kind=kind)
            out[f"{kind}_build_s"] = time.perf_counter() - start
            start = time.perf_counter()
            retriever.search(queries, 20)
            out[f"{kind}_top20_s"] = time.perf_counter() - start
            out[f"{kind}_recall"] = retriever.recall_vs_exact(queries, vectors, 20)
    return out


# -- the sweeps ----------------------------------------------------------------
COLUMNS = [
    ("clicks", "clicks", "{:,.0f}"),
    ("items", "items", "{:,.0f}"),
    ("samples", "samples", "{:,.0f}"),
    ("build_s", "build s", "{:.2f}"),
    ("build_mib", "build MiB", "{:.0f}"),
    ("train_samples_s", "train samples/s", "{:,.0f}"),
    ("eval_exact_s", "exact eval s", "{:.2f}"),
    ("eval_mib", "eval MiB", "{:.0f}"),
    ("score_chunk_mib", "chunk MiB", "{:.0f}"),
    ("exact_top20_s", "exact top-20 s", "{:.3f}"),
    ("hnsw_build_s", "HNSW build s", "{:.1f}"),
    ("hnsw_top20_s", "HNSW top-20 s", "{:.3f}"),
    ("hnsw_recall", "HNSW recall", "{:.3f}"),
    ("ivf_build_s", "IVF build s", "{:.1f}"),
    ("ivf_top20_s", "IVF top-20 s", "{:.3f}"),
    ("ivf_recall", "IVF recall", "{:.3f}"),
]

#: (sweep, x, y, label) of the curves whose growth exponents are fitted
CURVES = [
    ("clicks", "clicks", "build_s", "build time (s)"),
    ("clicks", "clicks", "build_mib", "build memory (MiB)"),
    ("clicks", "clicks", "train_samples_s", "training samples/s"),
    ("items", "items", "train_samples_s", "training samples/s"),
    ("items", "items", "eval_exact_s", "exact eval (s)"),
    ("items", "items", "eval_mib", "exact eval memory (MiB)"),
    ("items", "items", "score_chunk_mib", "its bound: one score chunk (MiB)"),
    ("items", "items", "exact_top20_s", "exact top-20 (s)"),
    ("items", "items", "hnsw_top20_s", "HNSW top-20 (s)"),
    ("items", "items", "ivf_top20_s", "IVF top-20 (s)"),
    ("items", "items", "hnsw_build_s", "HNSW build (s)"),
]


def exponent(xs: list[float], ys: list[float], floor: float = 0.0) -> float:
    """Slope of the least-squares line through ``(log x, log y)``, over the
    points with ``y > floor`` (a memory figure below 1 MiB is noise)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > floor]
    if len(pairs) < 2:
        return math.nan
    lx, ly = np.array(pairs).T
    return float(np.polyfit(lx, ly, 1)[0])


def table(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "---:|" * len(cols)]
    for r in rows:
        cells = [c[2].format(r[c[0]]) if c[0] in r else "" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(sweeps: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep in zip(axes, ("clicks", "items"), strict=True):
        rows = sweeps.get(sweep, [])
        for name, x, y, label in CURVES:
            if name != sweep or not all(y in r for r in rows) or len(rows) < 2:
                continue
            floor = 1.0 if y.endswith("mib") else 0.0  # memory below 1 MiB: not measurable
            xs, ys = zip(*[(r[x], r[y]) for r in rows if r[y] > floor], strict=True)
            slope = exponent(list(xs), list(ys))
            text = f"exponent {slope:.2f}" if len(xs) > 1 else "one measurable point"
            ax.plot(xs, ys, "o-", label=f"{label}: {text}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training clicks" if sweep == "clicks" else "items in the catalogue")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("clicks sweep")
    axes[1].set_title("catalogue sweep")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--items", nargs="+", type=float, default=[1e4, 1e5, 1e6])
    parser.add_argument("--fixed-items", type=float, default=1e4)
    parser.add_argument("--fixed-clicks", type=float, default=1e6)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/scale"))
    parser.add_argument("--plot", type=Path, default=None, help="save the log-log figure here")
    parser.add_argument("--one", nargs=2, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_point(int(args.one[0]), int(args.one[1]), args)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    points = {
        "clicks": [(int(c), int(args.fixed_items)) for c in args.clicks],
        "items": [(int(args.fixed_clicks), int(i)) for i in args.items],
    }
    done: dict[tuple[int, int], dict] = {}
    results = args.out / "points.jsonl"
    if results.is_file():  # resume
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done[(r["requested_clicks"], r["items"])] = r
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}")
    for clicks, items in dict.fromkeys(p for sweep in points.values() for p in sweep):
        if (clicks, items) in done:
            continue
        command = [sys.executable, __file__, "--one", str(clicks), str(items)]
        command += ["--train-steps", str(args.train_steps), "--device", args.device]
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["--eval-samples", str(args.eval_samples)] + (["--no-faiss"] * args.no_faiss)
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"point {clicks:,} clicks / {items:,} items failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["requested_clicks"] = clicks
        done[(clicks, items)] = r
        with results.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(f"  {clicks:,} clicks, {items:,} items: {time.perf_counter() - start:.0f} s")
    sweeps = {name: [done[p] for p in pts] for name, pts in points.items()}
    for name, rows in sweeps.items():
        print(f"\n{name} sweep\n{table(rows)}")
    print("\ngrowth exponents (log-log slope)")
    for sweep, x, y, label in CURVES:
        rows = sweeps[sweep]
        if all(y in r for r in rows):
            xs, ys = [r[x] for r in rows], [r[y] for r in rows]
            slope = exponent(xs, ys, 1.0 if y.endswith("mib") else 0.0)
            print(f"  {label:<26} vs {sweep:<7} {slope:6.2f}")
    if args.plot:
        plot(sweeps, args.plot)
        print(f"\nfigure: {args.plot}")


if __name__ == "__main__":
    main()
