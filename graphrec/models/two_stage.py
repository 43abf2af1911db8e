"""Two-stage recommendation: a retriever proposes, a ranker re-ranks."""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from graphrec.data import SessionBatch
from graphrec.models.base import RetrievalRecommender, SessionRecommender

FUSION = ("none", "product")


class _Index(Protocol):
    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]: ...


class TwoStage(SessionRecommender):
    r"""A retrieval model's top-``k`` items, re-scored by a ranking model.

    .. math::
        \hat{y}_i = \begin{cases} f_{\text{ranker}}(s, i) & i \in
            \mathrm{top}_k(f_{\text{retriever}}(s, \cdot)) \\
            -\infty & \text{otherwise} \end{cases}

    (``fusion="none"``), or, with ``fusion="product"``, a product of the two
    experts on the candidates:

    .. math::
        \hat{y}_i = \log \mathrm{softmax}_{j \in \mathrm{top}_k}
            f_{\text{retriever}}(s, \cdot)_i + \log \sigma(f_{\text{ranker}}(s, i))

    (the retriever's probability of the item among the candidates times the
    ranker's click probability), which keeps what the retriever knows and lets
    the ranker correct it. Either way a target that the first stage misses is
    a miss of the pipeline, and
    the full-catalogue metrics of the one evaluator are the pipeline's
    end-to-end metrics; the first stage's HR@k (recall@k) is their ceiling.
    :meth:`recommend` and :func:`graphrec.evaluation.evaluate` work on it
    as on any model. The retriever and the ranker are its submodules (moved
    together by ``.to()``), not trained by it.

    Args:
        retriever (SessionRecommender): the first stage (SR-GNN, STAMP,
            AttRec, SDM or any model with a full-catalogue :meth:`score`).
        ranker (SessionRecommender): the second stage (DIN, DIEN), scoring
            candidates.
        k (int): candidates passed on. (default: ``100``)
        index (optional): an approximate index over the retriever's item
            vectors (:class:`graphrec.evaluation.FaissRetriever`) for the first
            stage instead of its exact scores.
        fusion (str): ``"none"`` (the ranker's scores alone) or ``"product"``.
            (default: ``"none"``)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch`
        - **output:** :math:`(B, \text{num\_items} + 1)`, or :math:`(B, C)`
          for candidates
    """

    cheap_full_ranking = True

    def __init__(
        self,
        retriever: SessionRecommender,
        ranker: SessionRecommender,
        k: int = 100,
        index: _Index | None = None,
        fusion: str = "none",
    ) -> None:
        if fusion not in FUSION:
            raise ValueError(f"fusion must be one of {FUSION}, got {fusion!r}")
        if not retriever.cheap_full_ranking:
            swapped = ranker.cheap_full_ranking
            raise ValueError(
                f"the retriever {type(retriever).__name__} is a ranker: it scores the whole "
                "catalogue with one forward pass per item, which a first stage cannot afford"
                + (
                    f"; the roles look swapped: retrieve with {type(ranker).__name__}, "
                    f"re-rank with {type(retriever).__name__}"
                    if swapped
                    else "; retrieve with SR-GNN, STAMP, AttRec or SDM"
                )
            )
        if retriever.num_items != ranker.num_items:
            raise ValueError(
                f"the retriever has {retriever.num_items} items, the ranker {ranker.num_items}"
            )
        if not 1 <= k <= ranker.num_items:
            raise ValueError(f"k must lie in 1..{ranker.num_items}, got {k}")
        if index is not None and not isinstance(retriever, RetrievalRecommender):
            raise TypeError("an index needs a retrieval model as the first stage")
        if index is not None and not retriever.plain_similarity:
            raise ValueError(
                "a repeat-aware retriever ranks by its mixture: use it without an index"
            )
        super().__init__(ranker.num_items)
        self.graph_weighting = retriever.graph_weighting  # the graphs it retrieves from
        if not torch.equal(retriever.item_ids.cpu(), ranker.item_ids.cpu()):
            raise ValueError("the retriever and the ranker were trained on different item ids")
        self.retriever = retriever
        self.ranker = ranker
        self.k = k
        self.index = index
        self.fusion = fusion
        self.item_ids.copy_(ranker.item_ids)
        if retriever.item_labels != ranker.item_labels:
            raise ValueError("the retriever and the ranker were trained on different item ids")
        # what the two stages read of a request's context (recommend's ``contexts``)
        self.context_fields = {**retriever.context_fields, **ranker.context_fields}
        self.set_labels(
            ranker.item_labels,
            ranker.user_labels,
            {**retriever.context_labels, **ranker.context_labels},
        )
        category = getattr(ranker, "item_category", None)
        if category is None:
            category = getattr(retriever, "item_category", None)
        self.item_category = category  # what recommend() attaches to new sessions

    def config(self) -> dict:
        return {"k": self.k, "fusion": self.fusion}

    @property
    def num_users(self) -> int:
        """The users either stage knows (``recommend`` passes them on)."""
        return max(getattr(self.retriever, "num_users", 0), getattr(self.ranker, "num_users", 0))

    @property
    def reads_history(self) -> bool:  # type: ignore[override]
        return self.retriever.reads_history or self.ranker.reads_history

    def check_data(self, dataset, what: str | None = None) -> None:
        """Both stages must have been trained on the catalogue of ``dataset``."""
        self.retriever.check_data(dataset, f"the retriever {type(self.retriever).__name__}")
        self.ranker.check_data(dataset, f"the ranker {type(self.ranker).__name__}")

    def check_finite(self, what: str | None = None) -> None:
        self.retriever.check_finite(f"the retriever {type(self.retriever).__name__}")
        self.ranker.check_finite(f"the ranker {type(self.ranker).__name__}")

    @torch.no_grad()
    def candidates(self, batch: SessionBatch) -> tuple[Tensor, Tensor]:
        """``([B, k], [B, k])``: the first stage's top-``k`` items, best first,
        and their retriever scores."""
        if self.index is not None:
            top, scores = self.index.search(self.retriever.session_embedding(batch), self.k)
            return top.to(batch.x.device), scores.to(batch.x.device)
        scores, top = self.retriever.score(batch).topk(self.k, dim=1)
        return top, scores

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        """The pipeline's scores: of the whole catalogue (the first stage's top-``k``
        re-scored, every other item ``-inf``), or of given ``candidates``.

        Given candidates (sampled negatives, a candidate list) take the first
        stage's place: the ranker scores them (``fusion="product"``: fused
        with the retriever's softmax over them). Scoring them by the
        full-catalogue pipeline instead would give every candidate outside the
        top-``k`` ``-inf``: the sampled metrics would be the first stage's
        recall@k at every cut-off, and AUC alike for both fusions.
        """
        if candidates is not None:
            second = self.ranker.score(batch, candidates).float()
            if self.fusion == "product":
                first = self.retriever.score(batch, candidates).float()
                second = torch.log_softmax(first, dim=1) + F.logsigmoid(second)
            return second
        top, first = self.candidates(batch)
        second = self.ranker.score(batch, top).float()
        if self.fusion == "product":
            # the softmax over the candidates only shifts each row: same order
            second = torch.log_softmax(first.float(), dim=1) + F.logsigmoid(second)
        out = torch.full((batch.num_sessions, self.num_items + 1), -math.inf, device=top.device)
        out.scatter_(1, top, second)
        out[:, 0] = -math.inf
        return out

    def loss(self, batch: SessionBatch) -> Tensor:
        raise TypeError("TwoStage composes trained models; train the retriever and the ranker")

    def __repr__(self) -> str:
        fusion = "" if self.fusion == "none" else f", fusion={self.fusion!r}"
        return (
            f"{self.__class__.__name__}({self.retriever!r} -> {self.ranker!r}, k={self.k}{fusion})"
        )
