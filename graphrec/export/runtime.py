"""Run a graphrec export (``graphrec export``) with onnxruntime, numpy and faiss only.

This file is self-contained: ``graphrec export`` copies it into every export as
``graphrec_runtime.py``, so that a service without torch or graphrec can load
the folder::

    import sys; sys.path.insert(0, "export/")
    from graphrec_runtime import ExportedRecommender

    rec = ExportedRecommender("export/")
    items, scores = rec.recommend([[214, 3, 214]], k=20, exclude_seen=True)

Inside graphrec the same class is :class:`graphrec.export.ExportedRecommender`
(``graphrec serve EXPORT_DIR`` runs it). Loading checks the manifest's format
and the sha256 of every file; nothing is unpickled (``numpy.load`` with
``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
#: candidates per ranker call when a ranker alone scores the whole catalogue
RANK_CHUNK = 2048


class ExportLoadError(ValueError):
    """An export folder that cannot be run: the message names the file and why."""


def sha256(path: Path) -> str:
    """The hex sha256 of a file (what the manifest lists)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pad_rows(rows: list, width: int = 0) -> np.ndarray:
    """Right-pad lists of compact ids with 0 into an int64 matrix (at least 2 columns)."""
    width = max(width, 2, max((len(r) for r in rows), default=0))
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of every row, best first, and their scores."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


class ExportedRecommender:
    """A graphrec export, loaded: session encoder, item table, index, ranker, id maps.

    Args:
        folder: the export folder (``graphrec export ... --out DIR``).
        threads (int, optional): onnxruntime's intra-op threads (default: its own,
            one per core). With more than one, some reductions are summed in an
            order that changes from run to run: the same request can get scores
            that differ in the last digits (DIN's logits by up to 1e-4 measured,
            the encoders' not at all); ``threads=1`` gives one result every time.
        check_files (bool): compare every file with the manifest's sha256.
            (default: ``True``)

    Raises:
        ExportLoadError: a missing or altered file, another format version, a
            missing dependency (named).
    """

    def __init__(
        self, folder: str | os.PathLike, threads: int | None = None, check_files: bool = True
    ) -> None:
        self.folder = Path(folder)
        path = self.folder / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExportLoadError(
                f"{self.folder} is not a graphrec export: no manifest.json"
            ) from None
        except (OSError, ValueError) as e:
            raise ExportLoadError(f"{path}: unreadable manifest ({e})") from None
        m = self.manifest
        if m.get("format") != FORMAT_VERSION:
            raise ExportLoadError(
                f"{path}: export format {m.get('format')!r}, this runtime reads {FORMAT_VERSION}"
            )
        if check_files:
            for name, digest in m.get("files", {}).items():
                file = self.folder / name
                if not file.is_file():
                    raise ExportLoadError(f"{file}: missing (listed in the manifest)")
                if sha256(file) != digest:
                    raise ExportLoadError(f"{file}: altered since the export (sha256 differs)")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportLoadError(
                "running an export needs onnxruntime (pip install onnxruntime)"
            ) from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3

        def session(name: str):
            graph = m["graphs"].get(name)
            if graph is None:
                return None
            try:
                return ort.InferenceSession(
                    str(self.folder / graph["file"]), options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # onnxruntime raises its own error types
                raise ExportLoadError(f"{self.folder / graph['file']}: {e}") from None

        self.encoder, self.scorer, self.ranker = (
            session("encoder"),
            session("scorer"),
            session("ranker"),
        )
        self.num_items: int = int(m["num_items"])
        self.num_users: int = int(m.get("num_users", 0))
        self.reads_history: bool = bool(m.get("reads_history"))
        retriever = m.get("retriever")
        self.metric = retriever["metric"] if retriever else None
        self.plain = bool(retriever["plain_similarity"]) if retriever else False
        self.items = None
        if retriever:
            self.items = np.load(self.folder / retriever["items"], allow_pickle=False)
            self._item_norms = np.square(self.items).sum(axis=1)
        self.pipeline_k = (m.get("pipeline") or {}).get("k")
        self.index, info = None, m.get("index")
        if info:
            try:
                import faiss
            except ImportError:
                raise ExportLoadError(
                    "this export has a faiss index: pip install faiss-cpu"
                ) from None
            self.index = faiss.read_index(str(self.folder / info["file"]))
            if info["kind"] == "hnsw":
                self.index.hnsw.efSearch = int(info["ef_search"])
            if info["kind"] == "ivf":
                self.index.nprobe = int(info["nprobe"])
        self.index_kind = info["kind"] if info else None
        self.item_labels = self._read_ids("items.tsv", m.get("item_ids") == "integer")
        if len(self.item_labels) != self.num_items:
            raise ExportLoadError(
                f"{self.folder / 'items.tsv'}: {len(self.item_labels)} ids for "
                f"{self.num_items} items"
            )
        self._item_index = {v: i + 1 for i, v in enumerate(self.item_labels)}
        users = self.folder / "users.tsv"
        self.user_labels = (
            self._read_ids("users.tsv", m.get("user_ids") == "integer") if users.is_file() else None
        )
        self._user_index = (
            None if self.user_labels is None else {v: i + 1 for i, v in enumerate(self.user_labels)}
        )

    def _read_ids(self, name: str, integer: bool) -> list:
        lines = (self.folder / name).read_text(encoding="utf-8").split("\n")[:-1]
        if not integer:
            return lines
        return [int(v) for v in lines]

    # -- compact ids ----------------------------------------------------------------------
    def compact(self, ids: list, what: str = "session") -> list[int]:
        """The compact ids of the log's own ids (raises ``KeyError`` listing unknown ones)."""
        out, unknown = [], []
        for v in ids:
            i = self._item_index.get(v)
            if i is None or isinstance(v, bool):
                unknown.append(v)
            else:
                out.append(i)
        if unknown:
            raise KeyError(f"unknown item ids in {what}: {unknown[:50]}")
        return out

    def compact_user(self, user: Any) -> int:
        if user is None:
            return 0
        if self._user_index is not None:
            if user not in self._user_index:
                raise KeyError(f"unknown user {user!r}")
            return self._user_index[user]
        if isinstance(user, bool) or not isinstance(user, int) or not 0 <= user <= self.num_users:
            raise KeyError(f"user: an integer in 0..{self.num_users} (0 = unknown), got {user!r}")
        return user

    def feeds(
        self,
        clicks: np.ndarray,
        users: np.ndarray | None = None,
        histories: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The graphs' inputs for 0-padded compact clicks ``[B, L]`` (and users
        ``[B]``, histories ``[B, H]``, both optional: unknown / empty)."""
        clicks = np.ascontiguousarray(clicks, dtype=np.int64)
        if clicks.ndim != 2 or clicks.shape[1] < 2 or not (clicks[:, 0] > 0).all():
            raise ValueError("clicks: [B, L >= 2] right-padded with 0, a click in every row")
        feeds = {"clicks": clicks}
        b = clicks.shape[0]
        feeds["user"] = np.zeros(b, np.int64) if users is None else np.asarray(users, np.int64)
        if histories is None:
            histories = np.zeros((b, 2), np.int64)
        feeds["history"] = np.ascontiguousarray(histories, dtype=np.int64)
        return feeds

    def _run(self, name: str, feeds: dict[str, np.ndarray], **more: np.ndarray) -> np.ndarray:
        session = {"encoder": self.encoder, "scorer": self.scorer, "ranker": self.ranker}[name]
        given = {**feeds, **more}
        for key, width in self.manifest["graphs"][name].get("fixed_width", {}).items():
            have = given[key]
            used = int((have > 0).sum(1).max()) if have.size else 0
            if used > width:
                what = "session" if key == "clicks" else key
                raise ValueError(
                    f"a {what} of {used} items: this export's {name} takes at most {width} "
                    f"(graphrec export --max-{'length' if key == 'clicks' else 'history'})"
                )
            if have.shape[1] != width:
                out = np.zeros((have.shape[0], width), dtype=np.int64)
                out[:, : min(width, have.shape[1])] = have[:, :width]
                given[key] = out
        names = [i.name for i in session.get_inputs()]
        return session.run(None, {n: given[n] for n in names})[0]

    def max_length(self) -> int | None:
        """The longest session this export takes (``None``: any)."""
        return self.fixed_width("clicks")

    def fixed_width(self, key: str) -> int | None:
        """The most entries of ``clicks`` or ``history`` every graph takes (``None``: any)."""
        widths = [g.get("fixed_width", {}).get(key) for g in self.manifest["graphs"].values()]
        widths = [w for w in widths if w]
        return min(widths) if widths else None

    # -- scores ----------------------------------------------------------------------------
    def encode(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """``[B, d]`` session vectors of the retrieval model."""
        if self.encoder is None:
            raise ValueError("this export has no retrieval model (a ranker alone)")
        return self._run("encoder", feeds)

    def retrieval_scores(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """``[B, N + 1]`` the retrieval model's scores (column 0 = ``-inf``)."""
        if self.scorer is not None:
            return self._run("scorer", feeds)
        return self.similarity(self.encode(feeds))

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        scores = queries @ self.items.T
        if self.metric == "l2":
            scores = 2 * scores - self._item_norms - np.square(queries).sum(1, keepdims=True)
        scores[:, 0] = -np.inf
        return scores

    def rank(self, feeds: dict[str, np.ndarray], candidates: np.ndarray) -> np.ndarray:
        """``[B, C]`` the ranker's logits of ``candidates`` (compact ids)."""
        if self.ranker is None:
            raise ValueError("this export has no ranker")
        return self._run("ranker", feeds, candidates=np.ascontiguousarray(candidates, np.int64))

    def candidates(self, feeds: dict[str, np.ndarray], k: int, exact: bool = False):
        """The first stage's top-``k`` (compact ids, scores), from the index when there is one."""
        if self.index is not None and self.plain and not exact:
            return self.search(self.encode(feeds), k)
        return top_k(self.retrieval_scores(feeds), k)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The index's ``k`` best items (compact ids; 0 with ``-inf`` where none)
        with their exact scores."""
        k = min(k, self.num_items)
        scores, labels = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        labels = labels.astype(np.int64) + 1
        if self.index_kind == "flat":
            scores = -scores if self.metric == "l2" else scores
        else:
            cand = self.items[labels]
            if self.metric == "dot":
                scores = np.einsum("qd,qcd->qc", queries, cand)
            else:
                scores = -np.square(queries[:, None, :] - cand).sum(-1)
            order = np.argsort(-np.where(labels == 0, -np.inf, scores), axis=1, kind="stable")
            labels = np.take_along_axis(labels, order, 1)
            scores = np.take_along_axis(scores, order, 1)
        return labels, np.where(labels == 0, -np.inf, scores).astype(np.float32)

    def scores(self, feeds: dict[str, np.ndarray], exact: bool = False) -> np.ndarray:
        """``[B, N + 1]``: the export's scores of every item: the retrieval model's,
        the pipeline's (its first stage's top-``k`` re-scored by the ranker, every
        other item ``-inf``), or a ranker's alone (the whole catalogue)."""
        b = feeds["clicks"].shape[0]
        if self.ranker is None:
            return self.retrieval_scores(feeds)
        out = np.full((b, self.num_items + 1), -np.inf, dtype=np.float32)
        if self.encoder is None:
            for start in range(1, self.num_items + 1, RANK_CHUNK):
                ids = np.arange(start, min(start + RANK_CHUNK, self.num_items + 1))
                block = np.ascontiguousarray(np.broadcast_to(ids, (b, ids.size)))
                out[:, ids] = self.rank(feeds, block)
            return out
        top, _ = self.candidates(feeds, self.pipeline_k, exact=exact)
        logits = self.rank(feeds, top)
        np.put_along_axis(out, top, logits, axis=1)
        out[:, 0] = -np.inf
        return out

    def top_k(
        self, feeds: dict[str, np.ndarray], k: int, exclude_seen: bool | np.ndarray = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``([B, k], [B, k])`` compact ids and scores, best first; where a session has
        fewer than ``k`` items to offer, its row ends with id 0 and ``-inf``.

        ``exclude_seen`` (one flag, or one per session) removes the session's clicks.
        """
        clicks = feeds["clicks"]
        b, width = clicks.shape
        exclude = np.broadcast_to(np.asarray(exclude_seen, bool), (b,))
        if self.index is not None and self.plain and self.ranker is None:
            found, scores = self.search(self.encode(feeds), k + width * bool(exclude.any()))
            drop = (found == 0) | (
                exclude[:, None] & (found[:, :, None] == clicks[:, None, :]).any(-1)
            )
            scores = np.where(drop, -np.inf, scores)
            top, values = top_k(scores, k)
            ids = np.take_along_axis(found, top, axis=1)
        else:
            scores = self.scores(feeds)
            rows = np.repeat(np.arange(b), width)
            seen = (clicks > 0) & exclude[:, None]
            scores[rows[seen.reshape(-1)], clicks[seen]] = -np.inf
            ids, values = top_k(scores, k)
        ids = np.where(np.isfinite(values), ids, 0)
        return ids, values

    # -- the log's own ids ---------------------------------------------------------------
    def recommend(
        self,
        sessions: list,
        k: int = 20,
        exclude_seen: bool = False,
        users: list | None = None,
        histories: list | None = None,
    ) -> tuple[list[list], list[list[float]]]:
        """Top-``k`` items (the log's own ids) and scores for sessions of the log's ids;
        a session with fewer items to offer gets a shorter list."""
        if not sessions or any(len(s) == 0 for s in sessions):
            raise ValueError("recommend() needs sessions of at least one click")
        clicks = pad_rows([self.compact(s, f"session {n}") for n, s in enumerate(sessions)])
        user = None if users is None else [self.compact_user(u) for u in users]
        history = None
        if histories is not None:
            history = pad_rows([self.compact(h, "history") for h in histories])
        ids, scores = self.top_k(self.feeds(clicks, user, history), k, exclude_seen)
        items, values = [], []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            keep = row_ids > 0
            items.append([self.item_labels[i - 1] for i in row_ids[keep]])
            values.append(row_scores[keep].tolist())
        return items, values

    def __repr__(self) -> str:
        parts = [self.manifest.get(p, {}).get("name") for p in ("retriever", "ranker")]
        name = " -> ".join(p for p in parts if p)
        return f"{type(self).__name__}({name}, items={self.num_items}, index={self.index_kind})"
