"""Figures: training curves of a run, and t-SNE maps of item embeddings.

Needs the optional extra ``pip install "graphrec[plot]"`` (matplotlib and
scikit-learn); without it every function raises an :class:`ImportError` that
says so. ``graphrec plot`` is the command-line front end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

_EXTRA = 'pip install "graphrec[plot]"'


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"graphrec plot needs matplotlib: {_EXTRA}") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _tsne():
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ImportError(f"the t-SNE map needs scikit-learn: {_EXTRA}") from None
    return TSNE


def _figure_path(out: str | os.PathLike | None, default: Path) -> Path:
    path = Path(out) if out is not None else default
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"{path}: the figure must end in .png, .svg or .pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of ``<run_dir>/metrics.jsonl``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not JSON, or there is no epoch; the message
            names the file and the line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a graphrec run directory?")
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {lineno}: not JSON ({e.msg})") from None
    if not records:
        raise ValueError(f"{path}: no epoch logged yet")
    return records


def plot_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    metrics: list[str] | None = None,
) -> Path:
    """Training loss and validation metrics per epoch, side by side.

    Args:
        run_dir: a run directory (``graphrec train --run-dir``).
        out: the figure (``.png``, ``.svg`` or ``.pdf``; default:
            ``<run_dir>/curves.png``).
        metrics: validation metrics to draw (default: the run's monitored
            metric and its HR/MRR/NDCG at the same cut-off, as logged).

    Returns:
        The path written. The selected epoch is marked.
    """
    records = read_metrics(run_dir)
    epochs = [r["epoch"] for r in records]
    valid = [r.get("valid") or {} for r in records]
    logged = [m for m in valid[-1]]
    if metrics is None:
        config_path = Path(run_dir) / "config.json"
        monitor = None
        if config_path.is_file():
            monitor = json.loads(config_path.read_text()).get("hparams", {}).get("monitor")
        cut = (monitor or "HR@20").split("@")[-1]
        metrics = [m for m in logged if m.split("@")[0] in ("HR", "MRR", "NDCG") and m.endswith(
            f"@{cut}")]  # fmt: skip
        if monitor in logged and monitor not in metrics:
            metrics.insert(0, monitor)
    unknown = [m for m in metrics if m not in logged]
    if unknown:
        raise ValueError(f"metric(s) {unknown} not logged in {run_dir}; logged: {logged}")
    plt = _pyplot()
    panels = 2 if metrics else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.8), squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, [r["loss"] for r in records], marker="o", color="tab:blue")
    ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax.grid(alpha=0.3)
    _epoch_axis(ax, epochs)
    best = records[-1].get("best_epoch")
    if metrics:
        ax = axes[0][1]
        for m in metrics:
            ax.plot(epochs, [100 * v.get(m, np.nan) for v in valid], marker="o", label=m)
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"selected ({best})")
        ax.set(xlabel="epoch", ylabel="validation (%)", title="validation")
        _epoch_axis(ax, epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(Path(run_dir).resolve().name, fontsize=10)
    fig.tight_layout()
    path = _figure_path(out, Path(run_dir) / "curves.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _epoch_axis(ax, epochs: list[int]) -> None:
    """Whole epochs only on the x axis, one tick each for short runs, and room
    around a run of a single epoch (no 0.945 ... 1.050)."""
    from matplotlib.ticker import MaxNLocator

    if len(epochs) <= 12:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)


def embedding_map(
    vectors: torch.Tensor, sample: int = 2000, seed: int = 0, perplexity: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional t-SNE coordinates of a random sample of item vectors.

    Args:
        vectors (Tensor [num_items + 1, d]): row 0 (padding) is never drawn.
        sample (int): how many items to map (all if fewer). (default: ``2000``)
        seed (int): the sample and the t-SNE initialisation. (default: ``0``)

    Returns:
        ``(items, coordinates)``: the compact ids mapped and their ``[n, 2]``
        coordinates.
    """
    if sample < 2:
        raise ValueError(f"sample must be >= 2, got {sample}")
    num_items = vectors.size(0) - 1
    gen = np.random.default_rng(seed)
    items = np.sort(gen.choice(np.arange(1, num_items + 1), min(sample, num_items), replace=False))
    x = vectors[torch.from_numpy(items)].detach().float().cpu().numpy()
    tsne = _tsne()(
        n_components=2,
        perplexity=min(perplexity, (len(items) - 1) / 3),
        init="pca",
        random_state=seed,
    )
    return items, tsne.fit_transform(x)


def plot_embeddings(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    color: str = "popularity",
    sample: int = 2000,
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> Path:
    """A t-SNE map of a checkpoint's item embeddings.

    Items are coloured by their training popularity (log scale) or by their
    category (datasets with categories); both are read from the training
    split of the checkpoint's dataset (or ``dataset``).

    Args:
        checkpoint: a ``best.pt``/``last.pt`` of a retrieval model (SR-GNN,
            STAMP, AttRec, SDM) or a ranker's item embedding table.
        out: the figure (default: ``<checkpoint's folder>/embeddings.png``).
        color (str): ``"popularity"`` or ``"category"``.
        sample (int): items on the map. (default: ``2000``)
        dataset (str, optional): where the colours come from (default: the
            checkpoint's dataset).
        root (str, optional): its data root (default: ``$GRAPHREC_DATA``,
            else ``./datasets``).
        seed (int): the sample and t-SNE seed. (default: ``0``)
        verbose (bool): print each stage and its time (the t-SNE of 2,000
            items takes about a minute on 2 cores). (default: ``True``)

    Returns:
        The path written.
    """
    from graphrec.datasets import load_dataset
    from graphrec.models.base import RetrievalRecommender
    from graphrec.training import load_checkpoint, load_model

    if color not in ("popularity", "category"):
        raise ValueError(f"color must be 'popularity' or 'category', got {color!r}")
    say = print if verbose else (lambda *a, **k: None)
    start = time.perf_counter()
    state = load_checkpoint(checkpoint)
    model = load_model(checkpoint)
    if isinstance(model, RetrievalRecommender):
        vectors = model.item_vectors()
    elif hasattr(model, "item_embedding"):
        vectors = model.item_embedding.weight
    else:
        raise ValueError(f"{checkpoint}: {type(model).__name__} has no item embedding table")
    info = state.get("run_info", {})
    name = dataset or info.get("dataset")
    if name is None:
        raise ValueError(f"{checkpoint} names no dataset: pass dataset= (--dataset)")
    kwargs: dict[str, Any] = {"root": root, "valid_fraction": info.get("valid_fraction", 0.1)}
    if name != "synthetic":
        kwargs["cache"] = info.get("cache", True)
    say(f"reading the training split of {name} (colours)...", flush=True)
    train = load_dataset(name, "train", **kwargs)
    model.check_data(train, str(checkpoint))
    shown = min(sample, model.num_items)
    say(f"t-SNE of {shown:,} items of dimension {vectors.size(1)} (scikit-learn; about "
        f"{max(1, round(shown / 40))} s on 2 cores)...", flush=True)  # fmt: skip
    items, xy = embedding_map(vectors.detach(), sample=sample, seed=seed)
    say(f"mapped in {time.perf_counter() - start:.0f} s", flush=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if color == "popularity":
        counts = train.item_counts().double().numpy()[items]
        points = ax.scatter(xy[:, 0], xy[:, 1], c=np.log10(counts + 1), s=6, cmap="viridis")
        fig.colorbar(points, ax=ax, label="log10(1 + training clicks)")
    else:
        if train.item_category is None:
            raise ValueError(f"{name} has no item categories: use color='popularity'")
        category = train.item_category.numpy()[items]
        ax.scatter(xy[:, 0], xy[:, 1], c=category, s=6, cmap="tab20")
    ax.set(xticks=[], yticks=[])
    title = f"{type(model).__name__} item embeddings, t-SNE of {len(items)} items ({name})"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = _figure_path(out, Path(checkpoint).parent / "embeddings.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
