"""An engine over an export folder (``graphrec export``): onnxruntime, numpy and faiss."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.export.runtime import ExportedRecommender, pad_rows
from graphrec.serve.engine import Answer, Prepared, RequestChecks, RequestError, _digest


class ExportEngine(RequestChecks):
    """Answers requests with an exported model or pipeline, in batches: one encoder
    run (one ranker run), one matmul or index search, one top-k for the batch.

    Args:
        folder: the export folder; its files are checked against the manifest.
        max_session (int): the longest session accepted (at most the export's
            fixed width for SDM and DIEN). (default: ``200``)
        threads (int, optional): onnxruntime's threads.

    Raises:
        ExportLoadError: the folder cannot be run (named); a server keeps its
            old engine then.
    """

    def __init__(
        self, folder: str | os.PathLike, max_session: int = 200, threads: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.runtime = ExportedRecommender(folder, threads=threads)
        m = self.runtime.manifest
        self.paths = [self.folder]
        fixed = self.runtime.max_length()
        self.max_session = min(max_session, fixed) if fixed else max_session
        self.max_history = self.runtime.fixed_width("history")
        self.num_users = self.runtime.num_users
        self.reads_history = self.runtime.reads_history
        self.integer_ids = m.get("item_ids") == "integer"
        self._user_index = self.runtime._user_index
        parts = [m[p]["name"] for p in ("retriever", "ranker") if p in m]
        self.name = "TwoStage" if len(parts) == 2 else parts[0]
        self.version = _digest(self.folder / "manifest.json")
        self.loaded_at = time.time()

    def metadata(self) -> dict[str, Any]:
        m = self.runtime.manifest
        selected = (m.get("retriever") or m.get("ranker") or {}).get("selected_with")
        return {
            "model": " -> ".join(m[p]["repr"] for p in ("retriever", "ranker") if p in m),
            "name": self.name,
            "version": self.version,
            "files": [str(self.folder)],
            "export": {
                "format": m["format"],
                "created": m["created"],
                "graphs": m["graphs"],
                "versions": m["versions"],
                "pipeline": m.get("pipeline"),
            },
            "num_items": self.runtime.num_items,
            "item_ids": m.get("item_ids"),
            "users": self.num_users,
            "reads_history": self.reads_history,
            "selected_with": selected,
            "dataset": ((m.get("retriever") or m.get("ranker") or {}).get("run_info") or {}).get(
                "dataset"
            ),
            "max_session": self.max_session,
            "index": m.get("index"),
            "loaded_at": self.loaded_at,
        }

    def _ids(self, values: list, what: str) -> np.ndarray:
        index = self.runtime._item_index
        if self.integer_ids:
            bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
            if bad:
                raise RequestError(f"{what}: item ids are integers", not_integers=bad[:50])
        unknown = [v for v in values if isinstance(v, bool) or v not in index]
        if unknown:
            raise RequestError(f"unknown item ids in {what}",
                               unknown=list(dict.fromkeys(unknown))[:50])  # fmt: skip
        return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))

    def answer(self, batch: list[Prepared]) -> list[Answer]:
        """Score the sessions of ``batch`` at once; each gets its own top-k."""
        runtime = self.runtime
        clicks = pad_rows([p.compact for p in batch])
        users = None
        if self.num_users:
            users = np.array([p.user or 0 for p in batch], dtype=np.int64)
        histories = None
        if self.reads_history and any(p.history is not None for p in batch):
            histories = pad_rows([p.history if p.history is not None else [] for p in batch])
        exclude = np.array([p.request.exclude_seen for p in batch])
        k = max(p.request.k for p in batch)
        ids, scores = runtime.top_k(runtime.feeds(clicks, users, histories), k, exclude)
        labels = runtime.item_labels
        answers = []
        for row, p in enumerate(batch):
            keep = ids[row] > 0
            have = min(p.request.k, int(keep.sum()))
            top, values = ids[row][keep][:have], scores[row][keep][:have]
            warnings = list(p.warnings)
            if p.request.k > have:
                warnings.append(
                    f"k={p.request.k} capped at {have}: only {have} items can be recommended"
                )
            answers.append(Answer([labels[i - 1] for i in top.tolist()], values.tolist(), warnings))
        return answers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.runtime!r}, version={self.version!r})"
