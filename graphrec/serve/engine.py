"""What a server does with requests: check them, score many sessions at once, answer each."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from graphrec.data import SessionDataset
from graphrec.data.graph import _ptr
from graphrec.evaluation import FaissRetriever
from graphrec.models import TwoStage
from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.nn.field_embedding import encode_context, label_index
from graphrec.training import load_checkpoint, load_model


class RequestError(ValueError):
    """A request that cannot be answered as asked (a 4xx): the message names the
    problem, ``detail`` carries what a client needs to fix it (the unknown ids)."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class Request:
    """One session to recommend for, as a client sends it (the log's own ids)."""

    session: list
    k: int = 20
    exclude_seen: bool = True
    user: Any = None
    history: list | None = None
    context: dict | None = None


@dataclass
class Answer:
    items: list
    scores: list[float]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """A checked request: its compact ids, ready to batch."""

    request: Request
    compact: torch.Tensor
    user: int | None
    history: torch.Tensor | None
    warnings: list[str]
    context: dict[str, int] | None = None


def load_engine(
    path: str | os.PathLike,
    ranker: str | os.PathLike | None = None,
    k: int = 100,
    max_session: int = 200,
    threads: int | None = None,
    index: str | None = None,
) -> Any:
    """The engine of a checkpoint (:class:`Engine`) or of an export folder
    (:class:`~graphrec.serve.export_engine.ExportEngine`, which carries its own
    ranker, ``k`` and index: giving them again is an error)."""
    if Path(path).is_dir():
        from graphrec.serve.export_engine import ExportEngine

        given = [n for n, v in (("--ranker", ranker), ("--index", index)) if v is not None]
        if given:
            raise ValueError(
                f"{path} is an export: it carries its ranker and index; {', '.join(given)} "
                "belong to graphrec export"
            )
        return ExportEngine(path, max_session=max_session, threads=threads)
    return Engine(path, ranker=ranker, k=k, max_session=max_session, threads=threads, index=index)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


class RequestChecks:
    """What every engine checks of a request before batching it; an engine sets
    ``max_session``, ``num_users``, ``reads_history``, ``_user_index`` and
    provides ``_ids(values, what)`` (compact ids, unknown ones listed)."""

    max_session: int
    num_users: int
    reads_history: bool
    _user_index: dict | None
    #: the longest history accepted (default: ten times ``max_session``)
    max_history: int | None = None
    #: ``{name: number of values}`` of the context fields the model reads (an
    #: engine sets its own; an export reads none)
    context_fields: Mapping[str, int] = MappingProxyType({})

    def _ids(self, values: list, what: str) -> Any:
        raise NotImplementedError  # abstract

    def prepare(self, request: Request) -> Prepared:
        """Check one request (raises :class:`RequestError`, naming the problem)."""
        warnings: list[str] = []
        if not isinstance(request.session, list) or not request.session:
            raise RequestError("session: a non-empty list of item ids is needed")
        if len(request.session) > self.max_session:
            raise RequestError(
                f"session: {len(request.session)} clicks, at most {self.max_session} accepted"
            )
        if isinstance(request.k, bool) or not isinstance(request.k, int) or request.k < 1:
            raise RequestError(f"k: a positive integer is needed, got {request.k!r}")
        if not isinstance(request.exclude_seen, bool):
            raise RequestError(f"exclude_seen: true or false, got {request.exclude_seen!r}")
        compact = self._ids(request.session, "session")
        user = None
        if request.user is not None:
            if not self.num_users:
                warnings.append("the model has no users: user ignored")
            else:
                user = self._user(request.user)
        history = None
        if request.history is not None:
            if not isinstance(request.history, list):
                raise RequestError("history: a list of item ids is needed")
            limit = self.max_history or 10 * self.max_session
            if len(request.history) > limit:
                raise RequestError(f"history: at most {limit} items accepted")
            if not self.reads_history:
                warnings.append("the model reads no history: history ignored")
            elif request.history:
                history = self._ids(request.history, "history")
        context = None
        if request.context is not None:
            context = self._context(request.context, warnings)
        return Prepared(request, compact, user, history, warnings, context)

    def _context(self, context: Any, warnings: list[str]) -> dict[str, int] | None:
        if not isinstance(context, dict):
            raise RequestError("context: an object of field name -> value is needed")
        if not self.context_fields:
            warnings.append("the model reads no context: context ignored")
            return None
        unknown = sorted(set(context) - set(self.context_fields))
        if unknown:
            raise RequestError(
                f"context: unknown field(s) {unknown}; the model reads "
                f"{sorted(self.context_fields)}",
                unknown=unknown,
            )
        try:
            ids, notes = encode_context(context, self.context_fields, self._context_index)
        except ValueError as e:
            raise RequestError(str(e)) from None
        warnings.extend(notes)
        return ids

    def _user(self, user: Any) -> int:
        """The compact id of a request's user (the log's own id, or an integer)."""
        if self._user_index is not None:
            if user not in self._user_index:
                raise RequestError("unknown user", unknown=[user])
            return self._user_index[user]
        if isinstance(user, bool) or not isinstance(user, int) or not 0 <= user <= self.num_users:
            raise RequestError(f"user: an integer in 0..{self.num_users} (0 = unknown)")
        return user


class Engine(RequestChecks):
    """A loaded model (or retriever -> ranker pipeline) that answers requests in batches.

    Args:
        checkpoint: a graphrec checkpoint (``best.pt``), loaded weights-only.
        ranker (optional): a ranker checkpoint; the engine then serves
            ``TwoStage(model, ranker, k=k)``.
        k (int): the pipeline's candidates. (default: ``100``)
        max_session (int): the longest session accepted; longer ones are a
            request error. (default: ``200``)
        threads (int, optional): torch's CPU threads (default: left alone).
        index (str, optional): ``"flat"``, ``"hnsw"`` or ``"ivf"``: the top-k (or a
            pipeline's first stage) from a faiss index over the item vectors
            instead of the exact scores. (default: exact)

    Raises:
        CheckpointError, FileNotFoundError, ValueError: the files cannot be
            served (named); a server keeps its old engine then.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        ranker: str | os.PathLike | None = None,
        k: int = 100,
        max_session: int = 200,
        threads: int | None = None,
        index: str | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        if index is not None and index not in ("flat", "hnsw", "ivf"):
            raise ValueError(f"index must be flat, hnsw or ivf, got {index!r}")
        self.paths = [Path(checkpoint)] + ([Path(ranker)] if ranker else [])
        model = load_model(checkpoint)
        state = load_checkpoint(checkpoint)
        self.metrics = state.get("metrics") or state.get("best_metrics")
        self.run_info = state.get("run_info", {})
        #: the edge weighting of the graphs the retriever was trained on
        retriever = model.retriever if isinstance(model, TwoStage) else model
        self.weighting = retriever.graph_weighting or "binary"
        if ranker is not None:
            model = TwoStage(model, load_model(ranker), k=min(k, model.num_items))
        self.model: SessionRecommender = model.eval()
        self.name = type(model).__name__
        self.max_session = max_session
        self.version = "-".join(_digest(p) for p in self.paths)
        self.loaded_at = time.time()
        inner = model.ranker if isinstance(model, TwoStage) else model
        self.labels = model.item_labels
        self._index = (
            None if self.labels is None else {v: i for i, v in enumerate(self.labels) if i}
        )
        self._user_index = None
        if model.user_labels is not None:
            self._user_index = {v: i for i, v in enumerate(model.user_labels) if i}
        self.num_users = getattr(model, "num_users", 0)
        self.reads_history = model.reads_history
        self.context_fields = dict(inner.context_fields)
        self.context_labels = dict(getattr(model, "context_labels", None) or {})
        self._context_index = label_index(self.context_labels)
        self.category = getattr(inner, "item_category", None)
        if self.category is None and isinstance(model, TwoStage):
            self.category = getattr(model.retriever, "item_category", None)
        self.index_kind, self.index = index, None
        if index is not None:
            retriever = model.retriever if isinstance(model, TwoStage) else model
            if not isinstance(retriever, RetrievalRecommender):
                raise ValueError(
                    f"an index needs a retrieval model, not {type(retriever).__name__}"
                )
            self.index = FaissRetriever(
                retriever.item_vectors().detach(), kind=index, metric=retriever.metric
            )
            if isinstance(model, TwoStage):  # the first stage searches the index
                self.model = TwoStage(model.retriever, model.ranker, k=model.k, index=self.index)

    # -- what the server shows ---------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        model = self.model
        return {
            "model": repr(model),
            "name": self.name,
            "version": self.version,
            "files": [str(p) for p in self.paths],
            "num_items": model.num_items,
            "item_ids": "text" if self.labels is not None else "integer",
            "users": self.num_users,
            "reads_history": self.reads_history,
            "context_fields": sorted(self.context_fields),
            # what each field takes: the log's own values, or the number of value ids
            "context_values": {
                k: self.context_labels[k][1:] if k in self.context_labels else n
                for k, n in sorted(self.context_fields.items())
            },
            "selected_with": self.metrics,
            "dataset": self.run_info.get("dataset"),
            "max_session": self.max_session,
            "index": self.index_kind,
            "loaded_at": self.loaded_at,
        }

    def _ids(self, values: list, what: str) -> torch.Tensor:
        """Compact ids of the log's own ids; every unknown one is listed."""
        if self.labels is not None:
            unknown = [v for v in values if not isinstance(v, str) or v not in self._index]
            if unknown:
                raise RequestError(f"unknown item ids in {what}", unknown=unknown[:50])
            return torch.tensor([self._index[v] for v in values], dtype=torch.long)
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
        if bad:
            raise RequestError(f"{what}: item ids are integers", not_integers=bad[:50])
        ids = torch.tensor(values, dtype=torch.long)
        table = self.model.item_ids[1:]
        pos = torch.searchsorted(table, ids).clamp(max=table.numel() - 1)
        unknown = table[pos] != ids
        if bool(unknown.any()):
            listed = list(dict.fromkeys(ids[unknown].tolist()))
            raise RequestError(f"unknown item ids in {what}", unknown=listed[:50])
        return pos + 1

    # -- answering ---------------------------------------------------------------------------
    def _batch(self, batch: list[Prepared]):
        """The one batch of the requests' sessions, built at once (no graph per
        request): their graphs, users, histories and the item categories."""
        lengths = torch.tensor([p.compact.numel() for p in batch])
        n = len(batch)
        user = None
        if self.num_users and any(p.user is not None for p in batch):
            user = torch.tensor([p.user or 0 for p in batch])
        history = None
        if self.reads_history and any(p.history is not None for p in batch):
            parts = [p.history if p.history is not None else lengths.new_zeros(0) for p in batch]
            length = torch.tensor([h.numel() for h in parts])
            start = torch.cat([length.new_zeros(1), length.cumsum(0)[:-1]])
            history = (torch.cat(parts), start, length)
        category = None if self.category is None else self.category.cpu()
        context = None
        if self.context_fields and any(p.context for p in batch):
            context = {
                key: torch.tensor([(p.context or {}).get(key, 0) for p in batch])
                for key in self.context_fields
            }
        # each request is a session whose cut lies at its end: no next click
        data = SessionDataset(
            (torch.cat([p.compact for p in batch]), _ptr(lengths)), torch.arange(n), lengths,
            self.model.num_items, y=torch.zeros(n, dtype=torch.long),
            weighting=self.weighting, item_ids=self.model.item_ids.cpu(), user=user,
            item_category=category, history=history, num_users=self.num_users or None,
            context=context, context_sizes=None if context is None else self.context_fields,
        )  # fmt: skip
        return data.batch(torch.arange(n)), lengths

    @torch.no_grad()
    def answer(self, batch: list[Prepared]) -> list[Answer]:
        """Score the sessions of ``batch`` at once; each gets its own top-k (and its
        own exclusion of its seen items), all from one ``topk``."""
        data, lengths = self._batch(batch)
        if self.index is not None and not isinstance(self.model, TwoStage):
            return self._answer_from_index(batch, data.to(self.model.item_ids.device), lengths)
        scores = self.model.score(data.to(self.model.item_ids.device)).float().cpu()
        exclude = torch.tensor([p.request.exclude_seen for p in batch])
        if bool(exclude.any()):
            rows = torch.repeat_interleave(torch.arange(len(batch)), lengths * exclude)
            seen = torch.cat([p.compact for p, e in zip(batch, exclude.tolist(), strict=True) if e])
            scores[rows, seen] = -math.inf
        available = torch.isfinite(scores).sum(1).tolist()
        wanted = [min(p.request.k, a) for p, a in zip(batch, available, strict=True)]
        top_scores, top = scores.topk(max(wanted), dim=1)
        if self.labels is not None:
            labels = self.labels
            ids = [[labels[i] for i in row] for row in top.tolist()]
        else:
            ids = self.model.item_ids.cpu()[top].tolist()
        values = top_scores.tolist()
        answers = []
        for row, p in enumerate(batch):
            warnings = list(p.warnings)
            k, have = p.request.k, wanted[row]
            if k > have:
                warnings.append(f"k={k} capped at {have}: only {have} items can be recommended")
            answers.append(Answer(ids[row][:have], values[row][:have], warnings))
        return answers

    def _answer_from_index(self, batch: list[Prepared], data, lengths) -> list[Answer]:
        """Top-k from the faiss index: its best ``k`` plus each session's length (the
        seen items excluded afterwards), or the repeat-aware mixture's top-k."""
        longest = int(lengths.max())
        k = max(p.request.k for p in batch) + longest
        k = min(k, self.model.num_items)
        if self.model.plain_similarity:
            top, scores = self.index.search(self.model.session_embedding(data), k)
        else:
            top, scores = self.model.mixture_topk(data, self.index, k)
        top, scores = top.cpu(), scores.float().cpu()
        answers = []
        for row, p in enumerate(batch):
            keep = torch.isfinite(scores[row]) & (top[row] > 0)
            if p.request.exclude_seen:
                keep &= ~torch.isin(top[row], p.compact)
            ids, values = top[row][keep][: p.request.k], scores[row][keep][: p.request.k]
            warnings = list(p.warnings)
            if ids.numel() < p.request.k:
                warnings.append(
                    f"k={p.request.k} capped at {ids.numel()}: only {ids.numel()} items "
                    "can be recommended"
                )
            items = (
                [self.labels[i] for i in ids.tolist()]
                if self.labels is not None
                else self.model.item_ids.cpu()[ids].tolist()
            )
            answers.append(Answer(items, values.tolist(), warnings))
        return answers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, version={self.version!r})"
