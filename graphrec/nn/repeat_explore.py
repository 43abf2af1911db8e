r"""RepeatNet's repeat-explore mixture, over any model's full-catalogue softmax."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.nn.functional import clicks_ago


class RepeatExplore(nn.Module):
    r"""The repeat-explore mixture of `"RepeatNet: A Repeat Aware Neural
    Recommendation Machine for Session-based Recommendation"
    <https://arxiv.org/abs/1812.02646>`_ (Ren et al., AAAI 2019).

    A next click either repeats an item of the session or explores the
    catalogue:

    .. math::
        p(i \mid s) = P_r(s)\, p_r(i \mid s) + \big(1 - P_r(s)\big)\, p_e(i \mid s)

    .. math::
        p_r(i \mid s) = \sum_{t:\, x_t = i} \alpha_t, \qquad
        \alpha = \mathrm{softmax}_t\big(\mathbf{v}^\top \tanh(\mathbf{W}_k \mathbf{k}_t
            + \mathbf{W}_q \mathbf{q})\big), \qquad
        \mathbf{k}_t = \mathbf{e}_{x_t} + \mathbf{r}_{L - t}

    .. math::
        P_r(s) = \sigma(\mathbf{w}_g^\top \mathbf{q} + b_g), \qquad
        p_e(i \mid s) = \mathrm{softmax}_i(\hat{y}_i)

    with :math:`\mathbf{q}` the model's session representation, :math:`\mathbf{e}`
    its item vectors, :math:`\mathbf{r}` a learned embedding of how many clicks
    ago a click was (clicks further back than ``max_recency`` share the last
    one) and :math:`\hat{y}` the model's own scores of the catalogue.
    ``mask_explore=True`` removes the session's items from :math:`p_e`, as
    RepeatNet's explore decoder does.

    RepeatNet decides between the two modes with a 2-way softmax; a sigmoid of
    one logit is the same family (a softmax of two logits depends on their
    difference only). The mixture's exact log-likelihood is the loss; its
    log-probabilities are the scores.

    Args:
        hidden_channels (int): the size of the session and item vectors.
        max_recency (int): recency embeddings. (default: ``50``)
        mask_explore (bool): leave the session's items out of :math:`p_e`.
            (default: ``False``)
    """

    def __init__(
        self, hidden_channels: int, max_recency: int = 50, mask_explore: bool = False
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.max_recency = max_recency
        self.mask_explore = mask_explore
        self.recency = nn.Embedding(max_recency, hidden_channels)
        self.lin_key = nn.Linear(hidden_channels, hidden_channels, bias=False)
        self.lin_query = nn.Linear(hidden_channels, hidden_channels)
        self.lin_attention = nn.Linear(hidden_channels, 1, bias=False)
        self.gate = nn.Linear(hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        nn.init.zeros_(self.gate.bias)

    def repeat_log_attention(
        self, query: Tensor, item_vectors: Tensor, click_session: Tensor, click_ptr: Tensor
    ) -> Tensor:
        """``[T]``: :math:`\\log \\alpha_t` of every click of the batch (a log-softmax
        within each session)."""
        ago = clicks_ago(click_session, click_ptr).clamp(max=self.max_recency - 1)
        keys = item_vectors + self.recency(ago)
        energy = self.lin_attention(
            torch.tanh(self.lin_key(keys) + self.lin_query(query)[click_session])
        ).squeeze(1)
        return energy - _segment_logsumexp(energy, click_session, query.size(0))[click_session]

    def gates(self, query: Tensor) -> tuple[Tensor, Tensor]:
        """``(log P_r, log P_e)``, each ``[B]``."""
        g = self.gate(query).squeeze(1)
        return F.logsigmoid(g), F.logsigmoid(-g)

    def scores(
        self,
        logits: Tensor,
        query: Tensor,
        item_vectors: Tensor,
        clicks: Tensor,
        click_session: Tensor,
        click_ptr: Tensor,
    ) -> Tensor:
        """``[B, N + 1]``: :math:`\\log p(i \\mid s)` of every item (column 0 and
        masked items ``-inf``), from the model's scores ``logits``."""
        log_repeat, log_explore = self.gates(query)
        attention = self.repeat_log_attention(query, item_vectors, click_session, click_ptr)
        rows, items, log_pr = _per_item(attention, clicks, click_session, logits.size(1))
        explore = logits.clone()
        explore[:, 0] = -math.inf
        if self.mask_explore:
            explore[rows, items] = -math.inf
        explore = explore - torch.logsumexp(explore, 1, keepdim=True) + log_explore.unsqueeze(1)
        mixed = torch.logaddexp(explore[rows, items], log_repeat[rows] + log_pr)
        explore[rows, items] = mixed
        return explore

    def nll(
        self,
        explore_nll: Tensor,
        target_logit: Tensor,
        query: Tensor,
        item_vectors: Tensor,
        clicks: Tensor,
        click_session: Tensor,
        click_ptr: Tensor,
        target: Tensor,
        item_logits: Tensor | None = None,
    ) -> Tensor:
        """``[B]``: :math:`-\\log p(y \\mid s)`, exact.

        Args:
            explore_nll (Tensor [B]): the model's own cross-entropy of each
                target over the catalogue, :math:`\\mathrm{LSE}(\\hat{y}) - \\hat{y}_y`
                (the fused full-softmax path gives it).
            target_logit (Tensor [B]): :math:`\\hat{y}_y`.
            item_logits (Tensor [T], optional): each click's item score
                :math:`\\hat{y}_{x_t}` (needed with ``mask_explore``).
        """
        log_repeat, log_explore = self.gates(query)
        attention = self.repeat_log_attention(query, item_vectors, click_session, click_ptr)
        hit = clicks == target[click_session]
        masked = attention.masked_fill(~hit, -math.inf)
        log_pr = _segment_logsumexp(masked, click_session, query.size(0))  # -inf: no repeat
        log_pe = -explore_nll
        if self.mask_explore:
            rows, items, _ = _per_item(attention, clicks, click_session, None)
            distinct = item_logits_per_item(item_logits, clicks, click_session, rows, items)
            lse = explore_nll + target_logit
            session_lse = _segment_logsumexp(distinct, rows, query.size(0))
            # log of 1 - exp(x), x = session mass - all, both ways stable
            x = (session_lse - lse).clamp(max=-1e-7)
            log_rest = torch.where(
                x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x))
            )
            log_pe = torch.where(hit_any(hit, click_session, query.size(0)), -math.inf,
                                 target_logit - lse - log_rest)  # fmt: skip
        return -torch.logaddexp(log_explore + log_pe, log_repeat + log_pr)

    def __repr__(self) -> str:
        mask = ", mask_explore=True" if self.mask_explore else ""
        return (
            f"{type(self).__name__}({self.hidden_channels}, max_recency={self.max_recency}{mask})"
        )


def _segment_logsumexp(values: Tensor, segment: Tensor, count: int) -> Tensor:
    """``[count]``: the log-sum-exp of ``values`` within each segment (``-inf`` if empty)."""
    top = torch.full((count,), -math.inf, dtype=values.dtype, device=values.device)
    top.scatter_reduce_(0, segment, values, reduce="amax")
    finite_top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.zeros(count, dtype=values.dtype, device=values.device)
    total.index_add_(0, segment, torch.exp(values - finite_top[segment]))
    return torch.log(total) + finite_top


def _per_item(
    attention: Tensor, clicks: Tensor, click_session: Tensor, width: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The session's distinct items: ``(row, item, log p_r(item))``, summing the
    attention of every click on an item."""
    size = int(clicks.max()) + 1 if width is None else width
    key, inverse = torch.unique(click_session * size + clicks, return_inverse=True)
    return key // size, key % size, _segment_logsumexp(attention, inverse, key.numel())


def item_logits_per_item(
    item_logits: Tensor, clicks: Tensor, click_session: Tensor, rows: Tensor, items: Tensor
) -> Tensor:
    """The score of each distinct (row, item) pair, from the per-click scores."""
    size = int(clicks.max()) + 1
    _, inverse = torch.unique(click_session * size + clicks, return_inverse=True)
    # one click per pair (the first): a repeated item's score counts once, gradient too
    first = torch.full((rows.numel(),), clicks.numel(), dtype=torch.long, device=clicks.device)
    first.scatter_reduce_(0, inverse, torch.arange(clicks.numel(), device=clicks.device),
                          reduce="amin")  # fmt: skip
    return item_logits[first]


def hit_any(hit: Tensor, click_session: Tensor, count: int) -> Tensor:
    """``[count]``: whether any click of each session is flagged."""
    out = torch.zeros(count, dtype=torch.bool, device=hit.device)
    out[click_session[hit]] = True
    return out
