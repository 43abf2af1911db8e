"""``graphrec export``: a trained model (or pipeline) as ONNX graphs, item table, faiss index.

The folder holds everything a service needs and nothing of graphrec's training
code: the ONNX graphs (built with the dynamo exporter, ``torch.onnx.export(...,
dynamo=True)``), the item table, the index, the id maps, the manifest with the
sha256 of every file, and ``graphrec_runtime.py``, the loader that runs them
with onnxruntime, numpy and faiss only (see :class:`ExportedRecommender`).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.data import collate, session_graph
from graphrec.export.padded import PaddedBatch
from graphrec.export.runtime import pad_rows
from graphrec.export.runtime import sha256 as _sha256
from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.nn import AUGRU
from graphrec.training import load_checkpoint, load_model

log = logging.getLogger(__name__)

#: the layout version of an export folder (the runtime refuses other ones)
FORMAT_VERSION = 1
RUNTIME = Path(__file__).with_name("runtime.py")
#: the ONNX opset of the graphs
OPSET = 18


class ExportError(ValueError):
    """An export that cannot be made; the message names the model part that fails."""


class Encoder(nn.Module):
    """``(clicks[, user][, history]) -> [B, d]`` session vectors, or ``[B, N + 1]``
    full scores with ``full=True`` (the repeat-aware mixture)."""

    def __init__(self, model: RetrievalRecommender, weighting: str, full: bool = False) -> None:
        super().__init__()
        self.model, self.weighting, self.full = model, weighting, full

    def forward(
        self, clicks: Tensor, user: Tensor | None = None, history: Tensor | None = None
    ) -> Tensor:
        batch = _padded(self.model, clicks, user, history, self.weighting)
        return self.model.score(batch) if self.full else self.model.session_embedding(batch)


class Ranker(nn.Module):
    """``(clicks, candidates[, user][, history]) -> [B, C]`` logits of a ranker."""

    def __init__(self, model: SessionRecommender, weighting: str) -> None:
        super().__init__()
        self.model, self.weighting = model, weighting

    def forward(
        self,
        clicks: Tensor,
        candidates: Tensor,
        user: Tensor | None = None,
        history: Tensor | None = None,
    ) -> Tensor:
        batch = _padded(self.model, clicks, user, history, self.weighting)
        return self.model.score(batch, candidates)


def model_inputs(model: SessionRecommender) -> list[str]:
    """The inputs a model's graph takes besides the clicks (and candidates)."""
    return (["user"] if getattr(model, "num_users", 0) else []) + (
        ["history"] if model.reads_history else []
    )


def _padded(model, clicks, user, history, weighting) -> PaddedBatch:
    return PaddedBatch(
        clicks,
        user=user,
        history=history,
        item_category=getattr(model, "item_category", None),
        weighting=weighting,
    )


# -- sessions that exercise an export ---------------------------------------------------------
def probe_sessions(
    num_items: int, count: int = 70, longest: int = 70, seed: int = 0
) -> list[list[int]]:
    """Compact-id sessions of every length 1 .. ``longest`` (cycled to ``count``),
    with repeats (a session draws from few items) and repeated transitions."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in range(count):
        length = n % longest + 1
        pool = torch.randint(1, num_items + 1, (max(1, length // 3),), generator=g)
        picks = torch.randint(0, pool.numel(), (length,), generator=g)
        out.append(pool[picks].tolist())
    return out


def pad(rows: list[list[int]], width: int | None = None) -> Tensor:
    """Right-pad id lists with 0 to one matrix (at least 2 columns): the runtime's
    :func:`~graphrec.export.runtime.pad_rows`, as a tensor."""
    return torch.from_numpy(pad_rows(rows, width or 0))


def _reference_batch(models, sessions, histories, users):
    """The torch batch of the probe sessions with what any of ``models`` reads
    (users, histories, categories)."""
    models = [m for m in models if m is not None]
    category = next((c for m in models if (c := getattr(m, "item_category", None)) is not None),
                    None)  # fmt: skip
    with_users = any(getattr(m, "num_users", 0) for m in models)
    with_history = any(m.reads_history for m in models)
    graphs = []
    for i, s in enumerate(sessions):
        graphs.append(
            session_graph(
                s,
                user=users[i] if with_users else None,
                category=None if category is None else category.cpu(),
                history=histories[i] if with_history else None,
                weighting=_weighting(models[0]),
            )
        )
    return collate(graphs)


def _weighting(model) -> str:
    """The edge weighting of the graphs the model learnt from (its checkpoint's)."""
    return model.graph_weighting or "binary"


def _probe(model: SessionRecommender, count: int = 70, seed: int = 0):
    """Probe sessions, their histories (some empty) and users (some unknown)."""
    sessions = probe_sessions(model.num_items, count=count, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    histories = []
    for n in range(count):
        length = 0 if n % 4 == 0 else int(torch.randint(1, 30, (1,), generator=g))
        histories.append(torch.randint(1, model.num_items + 1, (length,), generator=g).tolist())
    num_users = getattr(model, "num_users", 0)
    users = [int(u) for u in torch.randint(0, num_users + 1, (count,), generator=g)]
    return sessions, histories, users


def _export_graph(
    module: nn.Module, args: tuple, names: list[str], path: Path, part: str, fixed: dict
):
    """Export ``module(*args)`` (``None`` for an input the model does not take);
    ``names`` are the tensor inputs, ``fixed`` the inputs whose width is not dynamic."""
    arg_names = ["clicks", "candidates", "user", "history"][: len(args)]
    if len(args) == 3:
        arg_names = ["clicks", "user", "history"]
    dims = {
        "clicks": {0: "batch", 1: "length"},
        "candidates": {0: "batch", 1: "candidates"},
        "user": {0: "batch"},
        "history": {0: "batch", 1: "history_length"},
    }
    batch = torch.export.Dim("batch")
    named = {
        "batch": batch,
        "length": torch.export.Dim("length"),
        "candidates": torch.export.Dim("candidates"),
        "history_length": torch.export.Dim("history_length"),
    }
    shapes = {
        n: {axis: named[d] for axis, d in dims[n].items() if not (axis == 1 and n in fixed)}
        for n in names
    }
    try:
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=names,
                output_names=["output"],
                dynamic_shapes={n: shapes.get(n) for n in arg_names},
                # the unrolled steps of a fixed-width graph make the graph optimiser
                # slow (minutes for DIEN); onnxruntime optimises the graph on load
                optimize=not fixed,
                verbose=False,
            )
    except Exception as e:  # the exporter's own errors are many; name the part
        raise ExportError(f"the {part} could not be exported to ONNX: {_reason(e)}") from e


def _reason(error: Exception) -> str:
    """The exporter's error in a few lines: its summary and the model line it failed at."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines()]
    summary = next((line for line in lines if line.startswith("<class ")), None)
    where = [i for i, line in enumerate(lines) if line.startswith("File ")]
    parts = [summary or (lines[0] if lines else type(error).__name__)]
    if where:
        i = where[-1]
        parts.append(" ".join(lines[i : i + 2]))
    return "; ".join(parts)


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter reports its steps on stdout and its loggers; keep them quiet."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# -- the export ------------------------------------------------------------------------------
def export_model(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    ranker: str | os.PathLike | None = None,
    k: int = 100,
    index: str | None = "flat",
    overwrite: bool = False,
    hnsw_m: int = 32,
    ef_search: int = 128,
    nprobe: int = 32,
    max_length: int = 70,
    max_history: int = 50,
) -> dict[str, Any]:
    """Export a checkpoint (and optionally a ranker after it) to a self-contained folder.

    The folder (written to a temporary sibling, checked, then renamed into
    place: a failed export leaves nothing behind) holds:

    * ``encoder.onnx``: ``(clicks[, user][, history]) -> session vectors`` of a
      retrieval model, the session graph (or chain) built in the graph from the
      0-padded clicks; for a repeat-aware model also ``scorer.onnx``, its full
      mixture scores ``[B, N + 1]``;
    * ``ranker.onnx``: ``(clicks, candidates[, user][, history]) -> logits`` of
      a ranker (DIN, DIEN), given as ``ranker`` or as the checkpoint itself;
    * ``items.npy`` (the item table, row 0 = padding), ``index.faiss`` (over its
      rows 1..N, with the recall@20 of the exact top-20 measured when
      approximate), ``items.tsv`` / ``users.tsv`` (compact id -> the log's id);
    * ``manifest.json``: model, configuration, versions, the metrics the
      checkpoint was selected with, the sha256 of every file;
    * ``graphrec_runtime.py``: :class:`ExportedRecommender`, which loads and
      runs the folder with onnxruntime, numpy and faiss only.

    Before the rename the export is checked: onnxruntime's session vectors
    (and scores, logits) equal torch's to 1e-5 and its top-20 lists are
    torch's, on sessions of every length 1..70 with repeats.

    Args:
        checkpoint: a graphrec checkpoint (``best.pt``).
        out: the folder to create.
        ranker (optional): a ranker checkpoint; the export is then the pipeline
            ``TwoStage(model, ranker, k=k)``.
        k (int): the pipeline's candidates. (default: ``100``)
        index (str, optional): ``"flat"`` (exact), ``"hnsw"``, ``"ivf"`` or
            ``None`` (no index: exact scores with the item table).
            (default: ``"flat"``)
        overwrite (bool): replace an existing export at ``out``. (default: ``False``)
        hnsw_m (int): HNSW neighbours per node. (default: ``32``)
        ef_search (int): HNSW search breadth. (default: ``128``)
        nprobe (int): IVF lists visited per query. (default: ``32``)
        max_length (int): the width of the clicks of a model that steps through
            them (SDM's LSTM, DIEN's GRU and AUGRU), whose graph the exporter
            unrolls: the runtime pads to it and refuses longer sessions. Graphs
            of the other models take any width. (default: ``70``)
        max_history (int): the same for the histories. (default: ``50``)

    Returns:
        the manifest.

    Raises:
        ExportError: a part of the model cannot be exported (named), or the
            exported graphs do not reproduce torch's results.
        FileExistsError: ``out`` exists and ``overwrite`` is not set.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if out.exists() and not (out / "manifest.json").is_file():
        raise FileExistsError(f"{out} exists and is not a graphrec export; not replacing it")
    if index is not None and index not in ("flat", "hnsw", "ivf"):
        raise ValueError(f"index must be flat, hnsw, ivf or None, got {index!r}")
    first = _load(checkpoint)
    second = None if ranker is None else _load(ranker)
    for model in (first, second):
        if model is not None and model.context_fields:
            raise ExportError(
                f"{type(model).__name__} reads context fields {sorted(model.context_fields)}, "
                "which an export does not take as inputs: every request would be scored "
                "with an unknown context. Serve it from its checkpoint (graphrec serve), "
                "or train it with --model-arg context_fields=none to export it"
            )
    retriever: RetrievalRecommender | None = None
    ranking: SessionRecommender | None = second
    if first.cheap_full_ranking:
        retriever = first  # type: ignore[assignment]
    elif second is None:
        ranking = first  # a ranker alone: it scores the whole catalogue
    else:
        raise ExportError(
            f"{type(first).__name__} is a ranker: give the retrieval model first, "
            f"the ranker as --ranker"
        )
    if retriever is not None and ranking is not None:
        _same_catalogue(retriever, ranking)
        if not 1 <= k <= ranking.num_items:
            raise ValueError(f"k must lie in 1..{ranking.num_items}, got {k}")
    if retriever is None:
        index = None
    elif not retriever.plain_similarity and index not in (None, "flat"):
        raise ExportError(
            f"{type(retriever).__name__}(repeat=True) ranks by its repeat-explore mixture, "
            "not by a nearest-item search: export it with --index flat or none"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        manifest = _write(tmp, checkpoint, ranker, retriever, ranking, k, index,
                          dict(hnsw_m=hnsw_m, ef_search=ef_search, nprobe=nprobe,
                               max_length=max_length, max_history=max_history))  # fmt: skip
        _verify(tmp, retriever, ranking, k, max_length, max_history)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private; an export is not
        if out.exists():
            old = out.with_name(f".{out.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _load(path) -> SessionRecommender:
    """The model of a checkpoint, with what its manifest entry needs of the file."""
    model = load_model(path).eval()
    state = load_checkpoint(path)
    model._export_state = {
        "selected_with": state.get("metrics") or state.get("best_metrics"),
        "run_info": state.get("run_info"),
    }
    return model


def _same_catalogue(retriever, ranker) -> None:
    if retriever.num_items != ranker.num_items or not torch.equal(
        retriever.item_ids.cpu(), ranker.item_ids.cpu()
    ):
        raise ExportError("the retriever and the ranker were trained on different item ids")
    if retriever.item_labels != ranker.item_labels:
        raise ExportError("the retriever and the ranker were trained on different item ids")


def has_recurrence(model: nn.Module) -> bool:
    """Whether a model steps through its sequences (LSTM, GRU, AUGRU): its graph is
    exported for a fixed width (the exporter unrolls the steps)."""
    return any(isinstance(m, (nn.RNNBase, AUGRU)) for m in model.modules())


def _graph(tmp, name, part, module, model, limits, with_candidates: bool) -> dict:
    """Export one graph of ``model`` (example: a few padded sessions with repeats)."""
    sessions, histories, users = _probe(model, count=6)
    sessions = [s + s[:2] for s in sessions[2:6]]  # lengths 5..8, with repeats
    histories, users = histories[2:6], users[2:6]
    static = has_recurrence(model)
    if static:
        sessions = [s[: limits["max_length"]] for s in sessions]
        histories = [h[: limits["max_history"]] for h in histories]
    # a fixed width for stepping models; else one no size of the model equals
    clicks = pad(sessions, width=limits["max_length"] if static else 11)
    inputs = model_inputs(model)
    user = torch.tensor(users) if "user" in inputs else None
    history = None
    if "history" in inputs:
        history = pad(histories, width=limits["max_history"] if static else 13)
    args: tuple = (clicks, user, history)
    names = ["clicks", *inputs]
    if with_candidates:
        args = (clicks, torch.randint(1, model.num_items + 1, (clicks.size(0), 7)), user, history)
        names = ["clicks", "candidates", *inputs]
    fixed = {"clicks": clicks.size(1)} if static else {}
    if static and history is not None:
        fixed["history"] = history.size(1)
    _export_graph(module, args, names, tmp / f"{name}.onnx", part, fixed)
    entry: dict[str, Any] = {"file": f"{name}.onnx", "inputs": names}
    if fixed:
        entry["fixed_width"] = fixed
    return entry


def _write(tmp, checkpoint, ranker_path, retriever, ranker, k, index, settings) -> dict:
    files: dict[str, str] = {}
    graphs: dict[str, dict] = {}
    main = retriever if retriever is not None else ranker
    if retriever is not None:
        weighting = _weighting(retriever)
        graphs["encoder"] = _graph(
            tmp,
            "encoder",
            "session encoder",
            Encoder(retriever, weighting),
            retriever,
            settings,
            False,
        )
        graphs["encoder"]["output"] = "[B, d] session vectors"
        if not retriever.plain_similarity:
            graphs["scorer"] = _graph(
                tmp,
                "scorer",
                "repeat-explore scorer",
                Encoder(retriever, weighting, full=True),
                retriever,
                settings,
                False,
            )
            graphs["scorer"]["output"] = "[B, N + 1] scores"
        vectors = retriever.item_vectors().detach().float().cpu().numpy()
        vectors[0] = 0.0
        np.save(tmp / "items.npy", np.ascontiguousarray(vectors))
    index_info = None
    if index is not None:
        index_info = _write_index(tmp, retriever, index, settings)
    if ranker is not None:
        graphs["ranker"] = _graph(
            tmp,
            "ranker",
            f"ranker {type(ranker).__name__}",
            Ranker(ranker, _weighting(ranker)),
            ranker,
            settings,
            True,
        )
        graphs["ranker"]["output"] = "[B, C] logits"
    _write_ids(tmp / "items.tsv", main.item_labels, main.item_ids.cpu().tolist())
    user_labels = main.user_labels
    if retriever is not None and ranker is not None:
        user_labels = user_labels or ranker.user_labels
    if user_labels is not None:
        _write_ids(tmp / "users.tsv", user_labels, None)
    shutil.copyfile(RUNTIME, tmp / "graphrec_runtime.py")
    manifest = _manifest(checkpoint, ranker_path, retriever, ranker, k, index_info, graphs)
    if user_labels is not None:  # read back as the type they have
        integer = all(isinstance(u, int) and not isinstance(u, bool) for u in user_labels[1:])
        manifest["user_ids"] = "integer" if integer else "text"
    for path in sorted(tmp.iterdir()):
        files[path.name] = _sha256(path)
    manifest["files"] = files
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_ids(path: Path, labels, ids) -> None:
    """One line per compact id 1..N: the log's own id (line 1 = compact id 1)."""
    values = labels[1:] if labels is not None else ids[1:]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for v in values:
            text = str(v)
            if "\n" in text or "\t" in text or "\r" in text:
                raise ExportError(f"the id {text!r} holds a tab or a line break")
            f.write(text + "\n")


def _write_index(tmp: Path, retriever, kind: str, settings: dict) -> dict:
    import faiss

    from graphrec.evaluation import FaissRetriever

    vectors = retriever.item_vectors().detach().float().cpu()
    built = FaissRetriever(vectors, kind=kind, metric=retriever.metric,
                           hnsw_m=settings["hnsw_m"], ef_search=settings["ef_search"],
                           nprobe=settings["nprobe"])  # fmt: skip
    faiss.write_index(built.index, str(tmp / "index.faiss"))
    info: dict[str, Any] = {"file": "index.faiss", "kind": kind, "metric": retriever.metric}
    if kind == "hnsw":
        info.update(hnsw_m=settings["hnsw_m"], ef_search=settings["ef_search"])
    if kind == "ivf":
        info.update(nlist=int(built.index.nlist), nprobe=settings["nprobe"])
    if kind != "flat":
        queries, where = _recall_queries(retriever)
        info["recall@20"] = round(built.recall_vs_exact(queries, vectors, k=20), 4)
        info["recall_measured_on"] = where
    return info


@torch.no_grad()
def _recall_queries(model) -> tuple[Tensor, str]:
    """Session vectors of 1,000 sessions drawn from the training popularity (the
    checkpoint's own counts) when known, else uniformly."""
    reference = getattr(model, "popularity_reference", None)
    counts = None if reference is None else reference.reshape(-1, reference.shape[-1]).sum(0)
    g = torch.Generator().manual_seed(0)
    n = model.num_items
    if counts is not None and counts.numel() == n + 1 and float(counts[1:].sum()) > 0:
        weights, where = counts[1:].double(), "1000 sessions drawn from the training popularity"
    else:
        weights, where = torch.ones(n, dtype=torch.float64), "1000 sessions of uniform items"
    sessions = []
    for _ in range(1000):
        length = int(torch.randint(1, 11, (1,), generator=g))
        sessions.append((torch.multinomial(weights, length, True, generator=g) + 1).tolist())
    batch = _reference_batch([model], sessions, [[] for _ in sessions], [0] * len(sessions))
    return model.session_embedding(batch).float(), where


def _manifest(checkpoint, ranker_path, retriever, ranker, k, index_info, graphs) -> dict:
    import faiss
    import onnx
    import onnxruntime

    import graphrec

    def describe(model, path):
        return {
            "name": type(model).__name__,
            "repr": repr(model),
            "config": model.config(),
            "checkpoint": str(Path(path).resolve()),
            "checkpoint_sha256": _sha256(Path(path)),
            **model._export_state,
            "weighting": _weighting(model),
        }

    main = retriever if retriever is not None else ranker
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "num_items": main.num_items,
        "num_users": max(getattr(m, "num_users", 0) for m in (retriever, ranker) if m),
        "item_ids": "text" if main.item_labels is not None else "integer",
        "reads_history": any(m.reads_history for m in (retriever, ranker) if m),
        "graphs": graphs,
        "index": index_info,
        "versions": {
            "graphrec": graphrec.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "faiss": faiss.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "opset": OPSET,
        },
    }
    if retriever is not None:
        manifest["retriever"] = describe(retriever, checkpoint)
        manifest["retriever"].update(
            metric=retriever.metric,
            plain_similarity=retriever.plain_similarity,
            items="items.npy",
        )
    if ranker is not None:
        manifest["ranker"] = describe(ranker, ranker_path if retriever is not None else checkpoint)
        if retriever is not None:
            manifest["pipeline"] = {"k": k}
    return manifest


# -- the check before the rename ---------------------------------------------------------------
@torch.no_grad()
def _verify(folder: Path, retriever, ranker, k: int, max_length: int, max_history: int) -> None:
    """onnxruntime against torch on sessions of every length 1..70 with repeats
    (up to ``max_length``, ``max_history`` for the models exported at a fixed width)."""
    from graphrec.export.runtime import ExportedRecommender

    # one onnxruntime thread: its multi-threaded reductions change the summation
    # order from run to run (DIN's logits moved by up to 1e-4, measured); one
    # thread gives one result, the one compared with torch
    exported = ExportedRecommender(folder, threads=1)
    main = retriever if retriever is not None else ranker
    sessions, histories, users = _probe(main)
    if exported.max_length() is not None:
        sessions = [s[:max_length] for s in sessions]
        histories = [h[:max_history] for h in histories]
    batch = _reference_batch([retriever, ranker], sessions, histories, users)
    feeds = exported.feeds(pad(sessions).numpy(), np.asarray(users), pad(histories).numpy())
    if retriever is None:  # a ranker alone: its logits of candidates
        candidates = torch.randint(1, main.num_items + 1, (len(sessions), 50))
        want = main.score(batch, candidates).float().numpy()
        got = exported.rank(feeds, candidates.numpy())
        _close(got, want, f"the ranker {type(main).__name__}'s logits")
        return
    _close(exported.encode(feeds), retriever.session_embedding(batch).float().numpy(),
           "the session encoder's vectors")  # fmt: skip
    if ranker is not None:
        from graphrec.models import TwoStage

        want_scores = TwoStage(retriever, ranker, k=k).score(batch).float().numpy()
    else:
        want_scores = retriever.score(batch).float().numpy()
    got_scores = exported.scores(feeds, exact=True)
    finite = np.isfinite(want_scores)
    if not np.array_equal(finite, np.isfinite(got_scores)):
        raise ExportError("the exported scores keep other items than torch's")
    _close(got_scores[finite], want_scores[finite], "the exported scores")
    _same_top(got_scores, want_scores, 20, sessions, 1e-5)


def _close(got: np.ndarray, want: np.ndarray, what: str, tol: float = 1e-5) -> None:
    """``|got - want| <= tol * (1 + |want|)`` everywhere, or an :class:`ExportError`."""
    if got.shape != want.shape:
        raise ExportError(f"{what}: shape {got.shape}, torch's {want.shape}")
    if not want.size:
        return
    excess = np.abs(got - want) - tol * (1 + np.abs(want))
    worst = int(np.argmax(excess))
    if not excess.flat[worst] <= 0:
        where = np.unravel_index(worst, want.shape)
        raise ExportError(
            f"{what} differ from torch's by {abs(got.flat[worst] - want.flat[worst]):.3g} "
            f"at a value of {want.flat[worst]:.4g}, index {tuple(int(i) for i in where)} "
            f"(tolerance {tol:g} * (1 + |value|))"
        )


def _same_top(got_scores: np.ndarray, want_scores: np.ndarray, k: int, sessions, tol: float):
    """The exported top-``k`` lists are torch's, but where two items' torch scores
    lie within ``tol`` of each other (a tie for the float arithmetic: either order)."""
    from graphrec.export.runtime import top_k

    want_top = torch.from_numpy(want_scores).topk(k, dim=1)
    got_top, _ = top_k(got_scores, k)
    same = (want_top.indices.numpy() == got_top).all(axis=1)
    for row in np.nonzero(~same)[0]:
        mine = want_scores[row, got_top[row]]  # torch's scores of the exported list
        theirs = want_top.values[row].numpy()
        if not np.all(np.abs(mine - theirs) <= tol * (1 + np.abs(theirs))):
            raise ExportError(
                f"the exported top-{k} differs from torch's for the probe session of "
                f"length {len(sessions[row])} (not by a tie)"
            )
