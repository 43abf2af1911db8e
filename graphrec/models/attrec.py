"""AttRec: self-attentive metric learning of short- and long-term intent."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.data import SessionBatch
from graphrec.models.base import RetrievalRecommender, batch_users, similarity, user_vectors
from graphrec.nn.functional import clip_norm
from graphrec.nn.relu_self_attention import ReLUSelfAttention

log = logging.getLogger("graphrec.models")

METRICS = ("l2", "dot")


def sample_negatives(target: Tensor, num_items: int, num: int) -> Tensor:
    """``[B, num]`` items drawn uniformly from ``1 .. num_items`` without the target.

    Uses the global torch RNG (seeded and checkpointed by the trainer).
    """
    if num_items < 2:
        raise ValueError("sampling negatives needs at least 2 items")
    draw = torch.randint(1, num_items, (target.numel(), num), device=target.device)
    return draw + (draw >= target.view(-1, 1)).long()  # skip the target, stay uniform


class AttRec(RetrievalRecommender):
    r"""AttRec from `"Next Item Recommendation with Self-Attention"
    <https://arxiv.org/abs/1808.06414>`_ (Zhang et al., AAAI 2019).

    The short-term intent :math:`\mathbf{m}_t^u` is the
    :class:`graphrec.nn.ReLUSelfAttention` summary of the ``window`` most
    recent clicks (item table :math:`X`); the long-term preference is a user
    embedding :math:`U_u` matched against a second item table :math:`V`. The
    distance of item :math:`i` (smaller is better) is

    .. math::
        y_i = \omega \lVert U_u - V_i \rVert_2^2 +
            (1 - \omega) \lVert \mathbf{m}_t^u - X_i \rVert_2^2

    and training minimises the hinge loss
    :math:`\max(0, y_{i^+} - y_{i^-} + \gamma)` of the next item against
    ``num_negatives`` items drawn uniformly from the rest of the catalogue.
    :meth:`score` returns :math:`-y_i` exactly. As a retrieval model it
    exposes the query :math:`[\sqrt{\omega} U_u; \sqrt{1-\omega}\,\mathbf{m}_t^u]`
    and the item vectors :math:`[\sqrt{\omega} V_i; \sqrt{1-\omega} X_i]`,
    whose squared Euclidean distance is :math:`y_i` (``metric = "l2"``): the
    faiss path of the evaluator searches them with an L2 index.

    ``metric="dot"`` scores :math:`\omega U_u^\top V_i + (1-\omega)
    \mathbf{m}^\top X_i` instead (the "inner" mode of a popular port), with
    the same hinge loss on the scores. Embeddings are clipped to a norm of at
    most ``max_norm`` wherever they are used (the authors' constraint).

    Without users (``num_users = 0``: Diginetica, YooChoose) the model uses
    the short-term part only (:math:`\omega = 0`) and logs so. A batch
    without ``user`` (or user 0) gets the learned "unknown user" row 0.

    The authors' defaults, used by ``graphrec train --model attrec``: window
    :math:`L = 5`, :math:`d = 100`, :math:`\omega = 0.2`, :math:`\gamma = 0.5`,
    key dropout 0.3, Adagrad with learning rate 0.05, batches of 1000. The
    authors train on :math:`T = 3` next items per window; graphrec's
    prefix-augmented samples give every (window, next item) pair once, so
    every item is a positive as often, for one window at a time.

    Args:
        num_items (int): the number of real items.
        num_users (int): the largest user id (0: no users). The unknown user 0
            is the mean of the known users' vectors. (default: ``0``)
        hidden_channels (int): embedding size :math:`d`. (default: ``100``)
        window (int): the clicks read by the self-attention :math:`L`. (default: ``5``)
        omega (float): the weight :math:`\omega` of the long-term term. (default: ``0.2``)
        margin (float): the hinge margin :math:`\gamma`. (default: ``0.5``)
        num_negatives (int): negatives per positive. (default: ``1``)
        key_dropout (float): dropout on the attention keys. (default: ``0.3``)
        max_norm (float, optional): the embedding norm bound. (default: ``1.0``)
        metric (str): ``"l2"`` (the paper) or ``"dot"``. (default: ``"l2"``)
        repeat (bool): add a repeat term to the score, in the form of its
            metric-learning objective: the session's items get a bonus
            :math:`\mathrm{softplus}(\beta) P_r(s) p_r(i \mid s)` (the gate and the
            click attention of :class:`graphrec.nn.RepeatExplore`; no mixture of
            probabilities, since AttRec has no softmax), and the hinge loss also
            takes the session's own items as negatives, so that the bonus learns
            when a session repeats and when it does not. (default: ``False``)
        item_fields (dict, optional): ``{name: largest value id}`` of item side
            fields (brand, genres) whose vectors are summed into every item's
            vector, in the input and on the scored side alike
            (:meth:`~graphrec.models.base.RetrievalRecommender.item_table`);
            ``build_model(name, dataset)`` takes them from the data. (default: none)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` of :math:`B` sessions
        - **output:** :meth:`session_embedding` :math:`(B, 2d)` (:math:`(B, d)`
          when :math:`\omega = 0`); :meth:`score` :math:`(B, \text{num\_items} + 1)`
    """

    def __init__(
        self,
        num_items: int,
        num_users: int = 0,
        hidden_channels: int = 100,
        window: int = 5,
        omega: float = 0.2,
        margin: float = 0.5,
        num_negatives: int = 1,
        key_dropout: float = 0.3,
        max_norm: float | None = 1.0,
        metric: str = "l2",
        repeat: bool = False,
        item_fields: dict[str, int] | None = None,
    ) -> None:
        super().__init__(num_items)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if not 0 <= omega <= 1:
            raise ValueError(f"omega must lie in [0, 1], got {omega}")
        if window < 1 or num_negatives < 1 or hidden_channels < 1:
            raise ValueError("window, num_negatives and hidden_channels must be >= 1")
        if num_users < 0:
            raise ValueError(f"num_users must be >= 0, got {num_users}")
        self.num_users = num_users
        self.hidden_channels = hidden_channels
        self.window = window
        self.omega = omega
        self.margin = margin
        self.num_negatives = num_negatives
        self.key_dropout = key_dropout
        self.max_norm = max_norm
        self.metric = metric
        if num_users == 0 and omega > 0:
            log.warning("AttRec without users: short-term part only (omega = 0)")
        self.weight_long = omega if num_users > 0 else 0.0
        d = hidden_channels
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)  # X
        self.attention = ReLUSelfAttention(d, key_dropout=key_dropout)
        self.item_long = nn.Embedding(num_items + 1, d, padding_idx=0) if num_users else None
        self.user_embedding = nn.Embedding(num_users + 1, d) if num_users else None
        # the repeat term: RepeatExplore's gate and attention, as a bonus in distance units
        self.init_repeat(repeat, False, d * (2 if self.weight_long else 1))
        self.repeat_bonus = nn.Parameter(torch.zeros(())) if repeat else None
        self.init_fields(d, item_fields=item_fields)  # summed into X, the short-term item side
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings N(0, 1/d) (norm about 1), padding rows zero; xavier projections."""
        std = 1.0 / math.sqrt(self.hidden_channels)
        for emb in (self.item_embedding, self.item_long, self.user_embedding):
            if emb is not None:
                nn.init.normal_(emb.weight, std=std)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
            if self.item_long is not None:
                self.item_long.weight[0].zero_()
        self.reset_fields(std)
        self.attention.reset_parameters()
        if self.repeat_explore is not None:
            self.repeat_explore.reset_parameters()
            with torch.no_grad():
                self.repeat_bonus.zero_()

    # -- the two halves ----------------------------------------------------------
    def _scales(self, side: str) -> tuple[float, float]:
        """Weights of the (long, short) halves of the query or item vectors."""
        w = self.weight_long
        if self.metric == "l2":  # both sides by sqrt: ||a - b||^2 picks up w and 1 - w
            return math.sqrt(w), math.sqrt(1 - w)
        return (w, 1 - w) if side == "query" else (1.0, 1.0)

    def short_term(self, batch: SessionBatch) -> Tensor:
        """``[B, d]``: :math:`\\mathbf{m}_t^u` over the ``window`` most recent clicks."""
        ptr = batch.click_ptr()
        click_session = batch.click_session()
        from_end = ptr[click_session + 1] - 1 - torch.arange(ptr[-1], device=ptr.device)
        keep = from_end < self.window
        rows, cols = click_session[keep], self.window - 1 - from_end[keep]
        items = batch.x.new_zeros(batch.num_sessions, self.window)
        items[rows, cols] = batch.x[batch.alias][keep]
        mask = items > 0
        # right-aligned: the last click always sits at position window - 1
        positions = torch.arange(self.window, device=items.device).expand_as(items)
        x = clip_norm(self.embed_item_rows(items), self.max_norm)
        return self.attention(x, mask, positions)

    def session_embedding(self, batch: SessionBatch) -> Tensor:
        long_scale, short_scale = self._scales("query")
        m = self.short_term(batch) * short_scale
        if self.weight_long == 0:
            return m
        u = clip_norm(
            user_vectors(self.user_embedding, batch_users(batch, self.num_users), self.num_users),
            self.max_norm,
        )
        return torch.cat([u * long_scale, m], dim=-1)

    def item_rows(self, items: Tensor) -> Tensor:
        """``[..., 2d]`` (or ``[..., d]``): the item vectors of ``items``."""
        long_scale, short_scale = self._scales("item")
        x = clip_norm(self.embed_item_rows(items), self.max_norm) * short_scale
        if self.weight_long == 0:
            return x
        v = clip_norm(self.item_long(items), self.max_norm)
        return torch.cat([v * long_scale, x], dim=-1)

    def item_vectors(self) -> Tensor:
        return self.item_rows(torch.arange(self.num_items + 1, device=self.item_ids.device))

    def loss(self, batch: SessionBatch) -> Tensor:
        """Mean hinge loss of the next item against uniformly drawn negatives (with
        ``repeat``, the session's own items are negatives too, unless they are the
        target: the repeat bonus learns from both)."""
        query = self.session_embedding(batch)
        negatives = sample_negatives(batch.y, self.num_items, self.num_negatives)
        items = torch.cat([batch.y.view(-1, 1), negatives], dim=1)
        if self.repeat_explore is not None:
            seen, _ = batch.sequences()  # [B, L] the session's clicks, 0-padded
            seen = seen.masked_fill(seen == batch.y.view(-1, 1), 0)
            items = torch.cat([items, seen], dim=1)
        scores = similarity(query, self.item_rows(items), self.metric)
        if self.repeat_explore is not None:
            scores = scores + self._bonus(batch, query, items)
        hinge = torch.relu(scores[:, 1:] - scores[:, :1] + self.margin)
        if self.repeat_explore is not None:
            valid = items[:, 1:] > 0
            return (hinge * valid).sum() / valid.sum()
        return hinge.mean()

    def _bonus(
        self, batch: SessionBatch, query: Tensor, candidates: Tensor | None = None
    ) -> Tensor:
        r"""``[B, C]`` (``[B, num_items + 1]`` without candidates): the repeat term
        of AttRec's score, in distance units:
        :math:`\mathrm{softplus}(\beta)\, P_r(s)\, p_r(i \mid s)`, from
        :class:`~graphrec.nn.RepeatExplore`'s gate and click attention (0 for items
        outside the session)."""
        layer = self.repeat_explore
        clicks = batch.x[batch.alias]
        session, ptr = batch.click_session(), batch.click_ptr()
        attention = layer.repeat_log_attention(query, self.item_rows(clicks), session, ptr)
        log_repeat, _ = layer.gates(query)
        weight = torch.exp(attention + log_repeat[session]) * F.softplus(self.repeat_bonus)
        if candidates is None:  # the whole catalogue: each click adds to its own item
            bonus = weight.new_zeros(batch.num_sessions, self.num_items + 1)
            return bonus.index_put((session, clicks), weight, accumulate=True)
        hits = candidates[session] == clicks.view(-1, 1)  # [T, C]
        bonus = weight.new_zeros(candidates.shape)
        return bonus.index_add(0, session, hits * weight.view(-1, 1))

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        if self.repeat_explore is not None:
            query = self.session_embedding(batch)
            items = self.item_vectors() if candidates is None else self.item_rows(candidates)
            return similarity(query, items, self.metric) + self._bonus(batch, query, candidates)
        if candidates is None:
            return super().score(batch)
        return similarity(self.session_embedding(batch), self.item_rows(candidates), self.metric)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, num_users={self.num_users}, "
            f"hidden_channels={self.hidden_channels}, window={self.window}, "
            f"omega={self.weight_long:g}, metric={self.metric!r}"
            f"{', repeat=True' if self.repeat else ''}{self.fields_repr()})"
        )
