"""What the candidate rankers (DIN, DIEN) share: embeddings, negatives, BCE, chunked scoring."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.data import SessionBatch
from graphrec.models.base import SessionRecommender, batch_users, user_vectors
from graphrec.nn.in_session import InSessionFeatures

NEGATIVE_SAMPLING = ("uniform", "popularity", "hard")


def behaviour_sequence(batch: SessionBatch) -> tuple[Tensor, Tensor]:
    """Each session's behaviours in time order: its long-term history (when
    the batch has one), then its clicks.

    Returns:
        ``(items, mask)``: LongTensor [B, L] left-aligned and padded with 0,
        and the BoolTensor [B, L] marking real behaviours.
    """
    items, mask = batch.sequences()
    exporting = torch.compiler.is_exporting()  # no data-dependent sizes in a graph
    if batch.get("history_length") is None:
        return items, mask
    if not exporting and int(batch.history_length.max(0)[0]) == 0:
        return items, mask
    history, history_mask = batch.histories()
    items = torch.cat([history, items], dim=1)
    mask = torch.cat([history_mask, mask], dim=1)
    # left-align: the real entries of each row keep their order
    column = mask.long().cumsum(1) - 1
    row = torch.arange(items.size(0), device=items.device).unsqueeze(1).expand_as(items)
    # an exported graph keeps the whole width: the padding after each row is masked
    length = items.size(1) if exporting else int(mask.sum(1).max())
    out = items.new_zeros(items.size(0), length)
    out[row[mask], column[mask]] = items[mask]
    out_mask = torch.arange(length, device=items.device) < mask.sum(1, keepdim=True)
    return out, out_mask


class RankingRecommender(SessionRecommender):
    r"""Base class of the candidate rankers (DIN, DIEN): a model that scores
    (session, candidate item) pairs by a logit, trained with binary
    cross-entropy against sampled negatives.

    Items are embedded as their item vector, concatenated with their category
    vector when the model has categories (``num_categories > 0``; the
    category of an item is the ``item_category`` buffer, set from the
    dataset) and with one vector per item field (``item_fields``: brand,
    genres, ...; the tables the model keeps, see
    :class:`graphrec.nn.FieldEmbedding`), as DIN's goods, shop and category ids
    are. The user, when the model has users, its profile fields
    (``user_fields``) and the sample's context fields (``context_fields``,
    the batch's ``context_<name>``) are more inputs of the prediction head.
    The behaviours are the session's clicks, preceded by its long-term history
    when the batch has one (:func:`behaviour_sequence`).

    **Training** (:meth:`loss`): each target :math:`i^+` is scored against
    ``num_negatives`` negatives :math:`i^-`:

    .. math::
        \mathcal{L} = -\frac{1}{B(1 + n)} \sum_b \Big(\log \sigma(f(b, i^+_b)) +
            \sum_{i^-} \log\big(1 - \sigma(f(b, i^-))\big)\Big)
            + \alpha \, \mathcal{L}_{aux}

    drawn per positive with ``negative_sampling``: ``"uniform"`` over the
    items the session has not clicked (nor its target), ``"popularity"`` the
    same weighted by training click counts (:meth:`set_item_counts`), or
    ``"hard"`` uniformly from a retriever's top-``hard_k`` items for the
    session, clicked items and the target removed (:meth:`set_retriever`):
    the candidates the ranker will re-rank in a two-stage pipeline.
    :math:`\mathcal{L}_{aux}` is a subclass's auxiliary loss (DIEN's). With
    ``session_features`` the head also sees whether each candidate is in the
    session, how often and how recently (:class:`graphrec.nn.InSessionFeatures`),
    and one more negative per target is one of the session's other clicks.

    **Scoring** (:meth:`score`): candidates per session, or, without
    candidates, every item of the catalogue in chunks of candidates (memory
    bounded by ``score_budget`` floats per chunk whatever the catalogue size).

    Subclasses implement :meth:`encode` (per-session state) and
    :meth:`logits` (pairs), and may override :meth:`auxiliary_loss`.
    """

    #: full-catalogue scoring costs a forward pass per candidate: validation
    #: in the trainer ranks sampled candidates only when it may
    cheap_full_ranking = False
    reads_history = True
    #: floats (candidates x real behaviours x channels) one chunk of
    #: full-catalogue scoring may hold
    score_budget: int = 1 << 25

    def __init__(
        self,
        num_items: int,
        num_users: int = 0,
        num_categories: int = 0,
        hidden_channels: int = 32,
        num_negatives: int = 1,
        negative_sampling: str = "uniform",
        hard_k: int = 100,
        item_fields: dict[str, int] | None = None,
        user_fields: dict[str, int] | None = None,
        context_fields: dict[str, int] | None = None,
        field_channels: int | None = None,
        session_features: bool = False,
    ) -> None:
        super().__init__(num_items)
        if negative_sampling not in NEGATIVE_SAMPLING:
            raise ValueError(
                f"negative_sampling must be one of {NEGATIVE_SAMPLING}, got {negative_sampling!r}"
            )
        if num_users < 0 or num_categories < 0:
            raise ValueError("num_users and num_categories must be >= 0")
        if num_negatives < 1 or hard_k < 1 or hidden_channels < 1:
            raise ValueError("num_negatives, hard_k and hidden_channels must be >= 1")
        if num_items < 2:
            raise ValueError("a ranker needs at least 2 items (a target and a negative)")
        self.num_users = num_users
        self.num_categories = num_categories
        self.hidden_channels = hidden_channels
        self.num_negatives = num_negatives
        self.negative_sampling = negative_sampling
        self.hard_k = hard_k
        d = hidden_channels
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.category_embedding = (
            nn.Embedding(num_categories + 1, d, padding_idx=0) if num_categories else None
        )
        self.user_embedding = nn.Embedding(num_users + 1, d) if num_users else None
        if num_categories:
            self.register_buffer("item_category", torch.zeros(num_items + 1, dtype=torch.long))
        else:
            self.item_category = None
        self.register_buffer("item_counts", torch.ones(num_items + 1))
        if field_channels is not None and field_channels < 1:
            raise ValueError(f"field_channels must be >= 1, got {field_channels}")
        self.field_channels = field_channels
        self.init_fields(self.side_channels, item_fields, user_fields, context_fields)
        self.session_features = session_features
        self.in_session = InSessionFeatures(self.side_channels) if session_features else None
        self._retriever: list[SessionRecommender] = []  # not a submodule: never saved

    @property
    def side_channels(self) -> int:
        """Size of each side field's vector (``field_channels``, else ``hidden_channels``)."""
        return self.field_channels or self.hidden_channels

    @property
    def item_channels(self) -> int:
        """Size of an embedded item: item, category (when present), item fields."""
        d = self.hidden_channels
        return d * (1 + bool(self.num_categories)) + self.side_channels * len(self.item_fields)

    @property
    def user_channels(self) -> int:
        """Size of the head's per-session input: user, profile fields, context fields."""
        sides = len(self.user_fields) + len(self.context_fields)
        return self.hidden_channels * bool(self.num_users) + self.side_channels * sides

    @property
    def session_channels(self) -> int:
        """Size of the in-session features per candidate (``session_features``), else 0."""
        return 2 * self.side_channels if self.session_features else 0

    def session_repr(self) -> str:
        """``", session_features=True"`` for :meth:`__repr__` when they are on."""
        return ", session_features=True" if self.session_features else ""

    def reset_embeddings(self) -> None:
        """Embeddings :math:`\\mathcal{N}(0, 0.01^2)`, padding rows zero."""
        for emb in (self.item_embedding, self.category_embedding, self.user_embedding):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.01)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
            if self.category_embedding is not None:
                self.category_embedding.weight[0].zero_()
        self.reset_fields(0.01)
        if self.in_session is not None:
            self.in_session.reset_parameters()

    # -- side information ---------------------------------------------------------
    def set_item_counts(self, counts: Tensor) -> None:
        """Training click counts per item, the weights of popularity negatives."""
        counts = torch.as_tensor(counts, dtype=torch.float)
        if counts.shape != (self.num_items + 1,):
            raise ValueError(f"item counts need {self.num_items + 1} entries")
        self.item_counts.copy_(counts)

    def set_retriever(self, retriever: SessionRecommender | None) -> None:
        """The first-stage model whose top-``hard_k`` items give hard negatives.

        It is not part of the ranker (not trained, not saved).
        """
        if retriever is not None and retriever.num_items != self.num_items:
            raise ValueError(
                f"the retriever has {retriever.num_items} items, the ranker {self.num_items}"
            )
        self._retriever[:] = [] if retriever is None else [retriever]

    # -- embeddings ---------------------------------------------------------------
    def embed_items(self, items: Tensor) -> Tensor:
        """``[..., item_channels]``: item vectors, with their category's and their
        fields' (each multi-valued field mean-pooled), concatenated."""
        e = self.item_embedding(items)
        if self.category_embedding is None and self.item_field_embedding is None:
            return e
        parts = [e]
        if self.category_embedding is not None:
            parts.append(self.category_embedding(self.item_category[items]))
        if self.item_field_embedding is not None:
            parts += self.item_field_embedding(items)
        return torch.cat(parts, dim=-1)

    def embed_user(self, batch: SessionBatch) -> Tensor | None:
        """``[B, user_channels]``: the user's vector, its profile fields' and the
        sample's context fields', concatenated (``None`` when the model has none)."""
        if not self.user_channels:
            return None
        users = batch_users(batch, self.num_users)
        parts = []
        if self.user_embedding is not None:
            parts.append(user_vectors(self.user_embedding, users, self.num_users))
        parts += self.user_field_vectors(users)
        parts += self.context_vectors(batch)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def encode(self, batch: SessionBatch) -> dict[str, Any]:
        """Per-session state computed once and shared by all candidates.

        Holds ``"items"`` and ``"mask"`` (:func:`behaviour_sequence`),
        ``"behaviours"`` (their embeddings), ``"pooled"`` (the sum over the
        real behaviours, ``[B, 1, item_channels]``) and ``"user"`` (or
        ``None``); subclasses add their own entries.
        """
        items, mask = behaviour_sequence(batch)
        e = self.embed_items(items)
        pooled = (e * mask.unsqueeze(-1)).sum(1, keepdim=True)
        state = {"items": items, "mask": mask, "behaviours": e, "pooled": pooled,
                 "user": self.embed_user(batch)}  # fmt: skip
        if self.in_session is not None:  # the session's own clicks, without the history
            state["clicks"], state["click_mask"] = batch.sequences()
        return state

    def head(
        self, state: dict[str, Any], features: list[Tensor], candidates: Tensor | None = None
    ) -> Tensor:
        """``[B, C]`` logits: the prediction head ``self.mlp`` over the
        concatenated ``[B, C, *]`` features, the in-session features of the
        ``candidates`` (``session_features``) and the user vector when present."""
        if self.in_session is not None:
            if candidates is None:
                raise ValueError("session_features: the head needs the candidates' ids")
            found = self.in_session(state["clicks"], state["click_mask"], candidates)
            features = [*features, found]
        if state["user"] is not None:
            num_candidates = features[0].size(1)
            features = [*features, state["user"].unsqueeze(1).expand(-1, num_candidates, -1)]
        return self.mlp(torch.cat(features, dim=-1)).squeeze(-1)

    # -- to implement ---------------------------------------------------------------
    def logits(self, state: dict[str, Any], candidates: Tensor) -> Tensor:
        """``[B, C]`` logits of candidates ``[B, C]`` (item ids)."""
        raise NotImplementedError  # abstract

    def auxiliary_loss(self, state: dict[str, Any], batch: SessionBatch) -> Tensor | None:
        """An extra training loss (added to the BCE), or ``None``."""
        return None

    # -- shared ---------------------------------------------------------------------
    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        state = self.encode(batch)
        if candidates is not None:
            return self.logits(state, candidates)
        mask = state["mask"]
        per_candidate = max(int(mask.sum()), mask.size(0)) * self.item_channels
        chunk = max(1, self.score_budget // per_candidate)
        # the logits' own dtype: the same as candidate scores (float64 for a double model)
        dtype = self.item_embedding.weight.dtype
        out = mask.new_full((mask.size(0), self.num_items + 1), -math.inf, dtype=dtype)
        for start in range(1, self.num_items + 1, chunk):
            end = min(start + chunk, self.num_items + 1)
            cand = torch.arange(start, end, device=mask.device).expand(mask.size(0), -1)
            out[:, start:end] = self.logits(state, cand)
        return out

    def loss(self, batch: SessionBatch) -> Tensor:
        state = self.encode(batch)
        negatives = self.sample_negatives(batch, (state["items"], state["mask"]))
        candidates = torch.cat([batch.y.view(-1, 1), negatives], dim=1)
        logits = self.logits(state, candidates)
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        aux = self.auxiliary_loss(state, batch)
        return loss if aux is None else loss + aux

    @torch.no_grad()
    def sample_negatives(
        self, batch: SessionBatch, behaviours: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """``[B, num_negatives]`` negatives per target, after ``negative_sampling``.

        Never the target nor an item the session clicked. With
        ``session_features``, ``[B, num_negatives + 1]``: the last one is a click
        of the session other than the target (:meth:`_with_session_negative`).
        ``behaviours`` is :func:`behaviour_sequence` of the batch when the caller
        has it already.
        """
        clicked, clicked_mask = behaviour_sequence(batch) if behaviours is None else behaviours
        clicked = torch.cat([clicked.masked_fill(~clicked_mask, 0), batch.y.view(-1, 1)], 1)
        num = self.num_negatives
        if self.negative_sampling == "hard":
            return self._with_session_negative(batch, self._hard_negatives(batch, clicked))
        size = (batch.num_sessions, num)
        device = batch.y.device
        out = torch.zeros(size, dtype=torch.long, device=device)
        todo = torch.ones(size, dtype=torch.bool, device=device)
        for _ in range(1000):  # rejection: exact uniform over the allowed items
            if self.negative_sampling == "uniform":
                draw = torch.randint(1, self.num_items + 1, size, device=device)
            else:
                weights = self.item_counts[1:].clamp(min=0)
                flat = torch.multinomial(weights, size[0] * size[1], replacement=True)
                draw = (flat + 1).view(size)
            out = torch.where(todo, draw, out)
            todo = (out.unsqueeze(2) == clicked.unsqueeze(1)).any(2)
            if not bool(todo.any()):
                return self._with_session_negative(batch, out)
        raise ValueError(
            "could not draw negatives outside the sessions' clicks: the catalogue is "
            "(almost) entirely clicked in some session"
        )

    def _with_session_negative(self, batch: SessionBatch, negatives: Tensor) -> Tensor:
        """With ``session_features``, one more negative per target: a click of its
        session other than the target, drawn uniformly (where the session has none,
        a second copy of its first negative). Without it no negative would ever be
        in the session, and the ranker would learn that every clicked item is the
        next click; in place of a regular negative, that no other item ever is."""
        if self.in_session is None:
            return negatives
        clicks, mask = batch.sequences()
        allowed = mask & (clicks != batch.y.view(-1, 1))
        keys = torch.rand(allowed.shape, device=clicks.device).masked_fill(~allowed, -1.0)
        if clicks.size(1):
            pick = clicks.gather(1, keys.argmax(1, keepdim=True)).squeeze(1)
        else:
            pick = negatives[:, 0]
        extra = torch.where(allowed.any(1), pick, negatives[:, 0])
        return torch.cat([negatives, extra.unsqueeze(1)], dim=1)

    def _hard_negatives(self, batch: SessionBatch, clicked: Tensor) -> Tensor:
        if not self._retriever:
            raise ValueError("negative_sampling='hard' needs a retriever: call set_retriever()")
        retriever = self._retriever[0]
        was_training = retriever.training
        retriever.eval()
        scores = retriever.score(batch)
        retriever.train(was_training)
        rows = torch.arange(clicked.size(0), device=clicked.device).unsqueeze(1)
        scores[rows.expand_as(clicked), clicked] = -math.inf
        k = min(self.hard_k, self.num_items)
        top_scores, top = scores.topk(k, dim=1)
        # a random order of the top-k, excluded items (-inf) last
        keys = torch.rand(top.shape, device=top.device).masked_fill(top_scores == -math.inf, 2.0)
        pick = keys.argsort(dim=1)[:, : self.num_negatives]
        if bool(keys.gather(1, pick).ge(2.0).any()):
            raise ValueError(f"fewer than {self.num_negatives} hard negatives in the top-{k}")
        return top.gather(1, pick)
