"""Ranking metrics: one stateful accumulator for every model and protocol."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from graphrec.distributed import all_gather_cat, all_reduce_sum, is_distributed

METRICS = ("hr", "mrr", "ndcg")


def _sync_sums(evaluator) -> None:
    """Sum an evaluator's ``count`` and ``_sums`` over the processes of
    ``torch.distributed`` (exact: counters are summed, never averaged)."""
    if not is_distributed():
        return
    keys = sorted(evaluator._sums)
    values = [float(evaluator.count), *(evaluator._sums[k] for k in keys)]
    total = all_reduce_sum(torch.tensor(values, dtype=torch.float64))
    evaluator.count = int(total[0])
    evaluator._sums = {k: float(v) for k, v in zip(keys, total[1:].tolist(), strict=True)}


_NAMES = {"hr": "HR", "mrr": "MRR", "ndcg": "NDCG", "recall": "Recall", "coverage": "Coverage"}


def rank_of_target(scores: Tensor, target: Tensor) -> Tensor:
    """The rank of each target under graphrec's one tie rule (pessimistic).

    The rank is the number of items scored at least as high as the target,
    the target included: an item with the same score is ranked *before* it.
    This is the rule of every graphrec evaluation path (full ranking,
    candidates, top-K lists, faiss), so that popularity-like scores with many
    ties are never flattered; with real-valued model scores ties practically
    never occur and every rule agrees. ``-inf`` (padding, excluded items)
    never outranks anything finite, and a target scored ``-inf`` (excluded, or
    outside a two-stage pipeline's candidates) is never ranked: its rank is
    ``inf``, a miss at every K.
    """
    target_score = scores.gather(1, target.view(-1, 1))
    ranks = (scores >= target_score).sum(dim=1).double()
    ranks[target_score.squeeze(1) == -math.inf] = math.inf
    return ranks


def relevant_positions(
    scores: Tensor,
    relevant: Tensor,
    valid: Tensor | None = None,
    k: int | None = None,
    top_values: Tensor | None = None,
) -> Tensor:
    r"""Positions (1 = best) of relevant items in the ranking of ``scores``.

    The ranking breaks ties pessimistically (:func:`rank_of_target`): among
    items with equal scores the non-relevant ones come first, then the
    relevant ones (in column order; with binary relevance their order does
    not change any metric). Only positions up to ``k`` are computed exactly,
    from the top-``k`` values (one ``topk`` pass) plus, for the rare rows
    whose relevant item ties the ``k``-th value, one comparison over that row;
    a position beyond ``k`` is ``inf``.

    Args:
        scores (Tensor [B, N]): scores of every column (``-inf`` = never ranked).
        relevant (LongTensor [B, M]): columns of the relevant items, distinct
            within a row.
        valid (BoolTensor [B, M], optional): which entries of ``relevant``
            are real (default: all).
        k (int, optional): the deepest position needed (default: ``N``).
        top_values (Tensor [B, k], optional): ``scores.topk(k).values`` if the
            caller has them already (one ``topk`` pass saved).

    Returns:
        DoubleTensor ``[B, M]``: positions, ``inf`` beyond ``k``, for padding
        entries and for items scored ``-inf``.
    """
    num = scores.size(1)
    k = num if k is None else min(k, num)
    if valid is None:
        valid = torch.ones_like(relevant, dtype=torch.bool)
    s = scores.gather(1, relevant)
    valid = valid & (s > -math.inf)
    top = scores.topk(k, dim=1).values if top_values is None else top_values
    kth = top[:, -1:]
    if relevant.size(1) == 1:  # one relevant item: its position is its rank_of_target
        positions = (top >= s).sum(dim=1, keepdim=True).double()
        boundary = (valid & (s == kth)).view(-1)
        if k < num and bool(boundary.any()):  # the tie group may run past the top-k
            rows = torch.nonzero(boundary).view(-1)
            positions[rows, 0] = (scores[rows] >= s[rows]).sum(dim=1).double()
        positions[~valid | (s < kth) | (positions > k)] = math.inf
        return positions
    higher = (top.unsqueeze(1) > s.unsqueeze(2)).sum(dim=2)
    tied = (top.unsqueeze(1) == s.unsqueeze(2)).sum(dim=2)
    # a relevant item tying the k-th value: its tie group may run past the top-k
    boundary = valid & (s == kth)
    if k < num and bool(boundary.any()):
        for m in torch.nonzero(boundary.any(dim=0)).view(-1).tolist():
            rows = torch.nonzero(boundary[:, m]).view(-1)
            tied[rows, m] = (scores[rows] == s[rows, m : m + 1]).sum(dim=1)
    same = (s.unsqueeze(2) == s.unsqueeze(1)) & valid.unsqueeze(1) & valid.unsqueeze(2)
    relevant_tied = same.sum(dim=2)
    before = torch.tril(same, diagonal=-1).sum(dim=2)  # tied relevant items in earlier columns
    positions = (higher + tied - relevant_tied + before + 1).double()
    positions[~valid | (s < kth) | (positions > k)] = math.inf
    return positions


def top_k(scores: Tensor, k: int, block: int = 64) -> tuple[Tensor, Tensor]:
    """``scores.topk(k, dim=1)`` for wide score rows, through block maxima.

    Each row is cut into blocks of ``block`` columns. The ``k`` largest
    values of a row all lie in the ``k`` blocks with the largest maxima (a
    value outside them has at least ``k`` values at least as large, one per
    such block), so one vectorised ``amax`` pass over the row, a ``topk``
    over its block maxima and one over ``k * block`` gathered values replace
    a selection over the whole row. The values are exactly ``topk``'s, best
    first; among tied values the columns returned may differ. On a CPU this
    costs about a memory pass, several times less than ``topk`` over a
    43,000-item catalogue; elsewhere (GPU) and for narrow rows it is ``topk``.

    Returns:
        ``(values, columns)``, each ``[rows, k]``.
    """
    rows, num = scores.shape
    blocks = num // block
    if scores.device.type != "cpu" or blocks < 4 * k or scores.stride(1) != 1:
        return scores.topk(k, dim=1)
    body = scores[:, : blocks * block].view(rows, blocks, block)
    chosen = body.amax(dim=2).topk(k, dim=1).indices  # [rows, k]
    values = body[torch.arange(rows).view(-1, 1), chosen].view(rows, k * block)
    if blocks * block < num:  # the last, partial block is always a candidate
        values = torch.cat([values, scores[:, blocks * block :]], dim=1)
    top_values, at = values.topk(k, dim=1)
    # the column of each winner: in chosen block at // block, or in the partial block
    in_block = chosen.gather(1, (at // block).clamp_(max=k - 1)) * block + at % block
    columns = torch.where(at < k * block, in_block, at + (blocks - k) * block)
    return top_values, columns


class Evaluator:
    r"""Accumulates HR@K, MRR@K, NDCG@K and catalogue coverage@K.

    With one target per sample of rank :math:`r` (1 = best):

    .. math::
        \mathrm{HR@K} = [r \le K], \quad
        \mathrm{MRR@K} = \frac{[r \le K]}{r}, \quad
        \mathrm{NDCG@K} = \frac{[r \le K]}{\log_2(r + 1)}

    averaged over samples. HR@K is what the SR-GNN paper calls "P@20"; with a
    single target it equals Recall@K (precision@K would divide by K).
    Coverage@K is the share of the catalogue that appears in at least one
    top-K list. All values are fractions in [0, 1]; :func:`format_table`
    prints percentages.

    Feed it ranks (:meth:`update_ranks`), full score matrices
    (:meth:`update`), candidate scores (:meth:`update_candidates`) or top-K
    lists (:meth:`update_topk`); all paths meet in the same counters.

    Args:
        ks (tuple of int): cut-offs. (default: ``(5, 10, 20)``)
        metrics (tuple of str): any of ``"hr"``, ``"mrr"``, ``"ndcg"``.
            (default: all three)
        num_items (int, optional): catalogue size, needed for coverage.
        suffix (str): appended to every output name, e.g. ``" (100 neg.)"``
            for metrics over sampled candidates. (default: ``""``)
    """

    def __init__(
        self,
        ks: Iterable[int] = (5, 10, 20),
        metrics: Iterable[str] = METRICS,
        num_items: int | None = None,
        suffix: str = "",
    ) -> None:
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"ks must be positive integers, got {ks}")
        self.metrics = tuple(metrics)
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {METRICS}")
        self.num_items = num_items
        self.suffix = suffix
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._sums = {(m, k): 0.0 for m in self.metrics for k in self.ks}
        self._seen = (
            None
            if self.num_items is None
            else {k: torch.zeros(self.num_items + 1, dtype=torch.bool) for k in self.ks}
        )

    # -- updates ----------------------------------------------------------------
    def update_ranks(self, ranks: Tensor) -> None:
        """Add samples by the rank of their target (``inf`` for a miss)."""
        ranks = ranks.double().cpu().view(-1, 1)
        self.count += ranks.numel()
        hit = ranks <= torch.tensor(self.ks, dtype=torch.double)  # [B, K]
        gains = {
            "hr": hit.double(),
            "mrr": torch.where(hit, ranks.reciprocal(), 0.0),
            "ndcg": torch.where(hit, torch.log2(ranks + 1).reciprocal(), 0.0),
        }
        sums = torch.stack([gains[m].sum(0) for m in self.metrics]).tolist()  # one sync
        for m, row in zip(self.metrics, sums, strict=True):
            for k, value in zip(self.ks, row, strict=True):
                self._sums[(m, k)] += value

    def update(self, scores: Tensor, target: Tensor) -> None:
        """Add samples from full score matrices ``[B, num_items + 1]``.

        Ranks follow the pessimistic tie rule of :func:`rank_of_target`. Only
        ranks up to ``max(ks)`` matter, so they are read off the
        top-``max(ks)`` values (:func:`relevant_positions`), selected by
        :func:`top_k` (about one memory pass) instead of a comparison over
        the whole catalogue.
        """
        k = min(self.ks[-1], scores.size(1))
        top_values, top = top_k(scores, k)
        ranks = relevant_positions(scores, target.view(-1, 1), k=k, top_values=top_values)
        self.update_ranks(ranks.view(-1))
        if self._seen is not None:
            self._mark_seen(top)

    def update_topk(self, top: Tensor, target: Tensor, top_scores: Tensor | None = None) -> None:
        """Add samples from top-K item lists ``[B, K]`` (K >= max of ``ks``).

        A target missing from its list is a miss. With ``top_scores`` (the
        list's scores, best first) the target's rank follows the pessimistic
        tie rule within the list: list items tied with it count before it.
        Without scores, its position in the list is its rank (a list without
        ties). Ties running past the end of a list cannot be seen: the caller
        lengthens such lists (:func:`graphrec.evaluation.evaluate` does, for a
        faiss index).
        """
        if top.size(1) < self.ks[-1]:
            raise ValueError(f"top-K lists of {top.size(1)} items; need {self.ks[-1]}")
        match = top == target.view(-1, 1)
        present = match.any(dim=1)
        column = match.float().argmax(dim=1, keepdim=True)
        if top_scores is None:
            ranks = column.view(-1).double() + 1
        else:
            ranks = relevant_positions(top_scores, column).view(-1)
        ranks = torch.where(present, ranks, torch.tensor(math.inf, dtype=ranks.dtype))
        self.update_ranks(ranks)
        if self._seen is not None:
            self._mark_seen(top)

    def update_candidates(self, scores: Tensor, candidates: Tensor, target: Tensor) -> None:
        r"""Add samples ranked among per-session candidates.

        Args:
            scores (Tensor [B, C]): the scores of the candidates.
            candidates (LongTensor [B, C]): the candidate item ids.
            target (LongTensor [B]): the true next items. A target that is not
                among its candidates, or is scored :math:`-\infty`, counts as a
                miss at every K. Ties follow :func:`rank_of_target`.
        """
        is_target = candidates == target.view(-1, 1)
        present = is_target.any(dim=1)
        column = is_target.float().argmax(dim=1, keepdim=True)
        k = min(self.ks[-1], scores.size(1))
        top_values, top = scores.topk(k, dim=1)
        ranks = relevant_positions(scores, column, present.view(-1, 1), k, top_values)
        self.update_ranks(ranks.view(-1))
        if self._seen is not None:
            self._mark_seen(candidates.gather(1, top))

    def _mark_seen(self, top: Tensor) -> None:
        top = top.cpu()
        for k in self.ks:
            self._seen[k][top[:, :k].reshape(-1)] = True

    # -- results ----------------------------------------------------------------
    def sync(self) -> None:
        """Combine the samples added in every process of ``torch.distributed``
        (each process evaluated its shard); nothing happens in one process."""
        _sync_sums(self)
        if self._seen is not None and is_distributed():
            for k, seen in self._seen.items():
                self._seen[k] = all_reduce_sum(seen.long()) > 0

    def compute(self) -> dict[str, float]:
        """``{"HR@20": ..., "MRR@20": ..., "NDCG@20": ..., "Coverage@20": ...}``."""
        if self.count == 0:
            raise ValueError("no samples were added to the evaluator")
        out = {}
        for k in self.ks:
            for m in self.metrics:
                out[f"{_NAMES[m]}@{k}{self.suffix}"] = self._sums[(m, k)] / self.count
            if self._seen is not None:
                out[f"Coverage@{k}{self.suffix}"] = float(self._seen[k][1:].float().mean())
        return out


def grouped_auc(scores: Tensor, labels: Tensor, groups: Tensor) -> tuple[Tensor, Tensor]:
    """AUC of every group of impressions, by the rank-sum (Mann-Whitney) formula.

    Ties count one half: each score takes the average of the ranks it ties for.

    Args:
        scores (Tensor [N]): impression scores (``-inf`` allowed).
        labels (BoolTensor [N]): positives.
        groups (LongTensor [N]): the group of each impression.

    Returns:
        ``(auc, impressions)`` per group, in increasing group id: AUC is NaN
        for a group without positives or without negatives.
    """
    scores, labels, groups = scores.double().cpu(), labels.bool().cpu(), groups.long().cpu()
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    s, lab, g = scores[order], labels[order], groups[order]
    n = s.numel()
    _, group_index, group_size = torch.unique_consecutive(
        g, return_inverse=True, return_counts=True
    )
    group_start = torch.zeros_like(group_size)
    group_start[1:] = group_size.cumsum(0)[:-1]
    rank = torch.arange(1, n + 1, dtype=torch.double) - group_start[group_index].double()
    new_run = torch.ones(n, dtype=torch.bool)
    new_run[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    run = new_run.long().cumsum(0) - 1
    run_sum = torch.zeros(int(run[-1]) + 1 if n else 0, dtype=torch.double)
    run_sum.index_add_(0, run, rank)
    run_count = torch.bincount(run).double()
    average_rank = (run_sum / run_count)[run]
    num_groups = group_size.numel()
    pos = torch.zeros(num_groups, dtype=torch.double).index_add_(0, group_index, lab.double())
    rank_sum = torch.zeros(num_groups, dtype=torch.double)
    rank_sum.index_add_(0, group_index[lab], average_rank[lab])
    neg = group_size.double() - pos
    auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    auc[(pos == 0) | (neg == 0)] = math.nan
    return auc, group_size


class AUCEvaluator:
    r"""AUC and GAUC of positives scored against negatives.

    **AUC** pools every impression: the probability that a positive scores
    above a negative (any pair, across sessions), ties counting one half.
    **GAUC** (DIN paper, eq. 9) is the AUC within each group (a user, or a
    session where there are no users), averaged with the group's number of
    impressions as weight:

    .. math::
        \mathrm{GAUC} = \frac{\sum_g w_g \, \mathrm{AUC}_g}{\sum_g w_g}

    Groups with only positives or only negatives have no AUC and are left out
    of the average (never counted as 0 or 1).

    Args:
        suffix (str): appended to the names, e.g. ``" (100 neg.)"``. (default: ``""``)
    """

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.reset()

    def reset(self) -> None:
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._groups: list[Tensor] = []

    def update(self, scores: Tensor, labels: Tensor, groups: Tensor) -> None:
        """Add impressions.

        Args:
            scores (Tensor [B, C]): scores of each sample's candidates.
            labels (BoolTensor [B, C]): which candidates are positives.
            groups (LongTensor [B]): the group (user or session) of each sample.
        """
        if scores.shape != labels.shape or groups.shape != scores.shape[:1]:
            raise ValueError(
                f"scores {tuple(scores.shape)}, labels {tuple(labels.shape)} and groups "
                f"{tuple(groups.shape)} disagree"
            )
        self._scores.append(scores.detach().double().cpu().reshape(-1))
        self._labels.append(labels.bool().cpu().reshape(-1))
        self._groups.append(groups.long().cpu().view(-1, 1).expand_as(scores).reshape(-1))

    def sync(self) -> None:
        """Gather the impressions of every process of ``torch.distributed``
        (AUC is computed over all of them, exactly as in one process)."""
        if not is_distributed():
            return
        empty = (torch.zeros(0, dtype=torch.double), torch.zeros(0, dtype=torch.bool))
        scores = torch.cat(self._scores) if self._scores else empty[0]
        labels = torch.cat(self._labels) if self._labels else empty[1]
        groups = torch.cat(self._groups) if self._groups else torch.zeros(0, dtype=torch.long)
        self._scores = [all_gather_cat(scores)]
        self._labels = [all_gather_cat(labels.long()).bool()]
        self._groups = [all_gather_cat(groups)]

    def compute(self) -> dict[str, float]:
        if not self._scores or not sum(s.numel() for s in self._scores):
            raise ValueError("no samples were added to the evaluator")
        scores, labels = torch.cat(self._scores), torch.cat(self._labels)
        groups = torch.cat(self._groups)
        (auc,), _ = grouped_auc(scores, labels, torch.zeros_like(groups))
        per_group, weight = grouped_auc(scores, labels, groups)
        defined = ~per_group.isnan()
        weight = weight[defined].double()
        gauc = (
            float((per_group[defined] * weight).sum() / weight.sum()) if defined.any() else math.nan
        )
        return {f"AUC{self.suffix}": float(auc), f"GAUC{self.suffix}": gauc}


class MultiTargetEvaluator:
    r"""Metrics for several held-out items per sample.

    With :math:`T` the held-out items and :math:`L_K` the top-K list:
    Recall@K :math:`= |L_K \cap T| / |T|`, HR@K :math:`= [L_K \cap T \neq \emptyset]`,
    and NDCG@K with binary relevance, normalised by the best possible DCG.

    Args:
        ks (tuple of int): cut-offs. (default: ``(5, 10, 20)``)
    """

    def __init__(self, ks: Iterable[int] = (5, 10, 20)) -> None:
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._sums = {(m, k): 0.0 for m in ("recall", "hr", "ndcg") for k in self.ks}

    def update(self, top: Tensor, targets: Tensor) -> None:
        """Add samples.

        Args:
            top (LongTensor [B, K]): ranked item lists, K >= max of ``ks``.
            targets (LongTensor [B, M]): held-out items, padded with 0.
        """
        top, targets = top.cpu(), targets.cpu()
        valid = targets > 0
        num_targets = valid.sum(dim=1).double()
        if bool((num_targets == 0).any()):
            raise ValueError("every sample needs at least one held-out item")
        relevant = (top.unsqueeze(2) == targets.unsqueeze(1)).logical_and(valid.unsqueeze(1))
        relevant = relevant.any(dim=2).double()  # [B, K]
        discount = 1.0 / torch.log2(torch.arange(2, top.size(1) + 2, dtype=torch.double))
        self.count += top.size(0)
        for k in self.ks:
            hits = relevant[:, :k].sum(dim=1)
            self._sums[("recall", k)] += float((hits / num_targets).sum())
            self._sums[("hr", k)] += float((hits > 0).sum())
            dcg = (relevant[:, :k] * discount[:k]).sum(dim=1)
            ideal = torch.cumsum(discount[:k], 0)[num_targets.clamp(max=k).long() - 1]
            self._sums[("ndcg", k)] += float((dcg / ideal).sum())

    def update_scores(self, scores: Tensor, targets: Tensor) -> None:
        """Add samples from full score matrices, ties broken pessimistically
        (:func:`relevant_positions`): the same rule as every other path.

        Args:
            scores (Tensor [B, num_items + 1]): the scores.
            targets (LongTensor [B, M]): held-out items, distinct, padded with 0.
        """
        valid = targets > 0
        positions = relevant_positions(scores, targets, valid, k=self.ks[-1]).cpu()
        self._add_positions(positions, valid.sum(dim=1).cpu().double())

    def _add_positions(self, positions: Tensor, num_targets: Tensor) -> None:
        if bool((num_targets == 0).any()):
            raise ValueError("every sample needs at least one held-out item")
        self.count += positions.size(0)
        kmax = self.ks[-1]
        discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.double))
        for k in self.ks:
            hit = positions <= k
            hits = hit.sum(dim=1).double()
            self._sums[("recall", k)] += float((hits / num_targets).sum())
            self._sums[("hr", k)] += float((hits > 0).sum())
            gain = torch.where(hit, 1.0 / torch.log2(positions + 1), torch.zeros_like(positions))
            ideal = torch.cumsum(discount[:k], 0)[num_targets.clamp(max=k).long() - 1]
            self._sums[("ndcg", k)] += float((gain.sum(dim=1) / ideal).sum())

    def sync(self) -> None:
        """Combine the samples of every process of ``torch.distributed``."""
        _sync_sums(self)

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no samples were added to the evaluator")
        return {f"{_NAMES[m]}@{k}": v / self.count for (m, k), v in self._sums.items()}


class SessionRecEvaluator:
    r"""The metrics of the session-rec framework (Ludewig et al.), to the letter.

    session-rec evaluates every position of a test session: the model sees
    the clicks so far and ranks the catalogue. Two families of metrics:

    * the **next item**: ``HR@K`` and ``MRR@K`` of the click that follows
      (session-rec's ``HitRate`` and ``MRR``), as :class:`Evaluator` computes
      them;
    * the **rest of the session** (``rest`` = the next click and every later
      one, repeats included, :math:`n = |	ext{rest}|`), from the top-K list
      :math:`L` with :math:`h_K = |	ext{set(rest)} \cap L_{1..K}|`:

      - ``P@K`` :math:`= h_K / K`;
      - ``R@K`` :math:`= h_K / n` (repeats count in :math:`n`, not in :math:`h_K`);
      - ``MAP@K`` :math:`= \sum_{p=1}^{K-1} [L_p \in 	ext{rest}]\, h_p / (K\,n)`
        (session-rec sums precision over list prefixes of length 0 to K-1 and
        divides by K, not by p);
      - ``NDCG@K`` :math:`= \sum_{p \le K} [L_p \in 	ext{rest}]\, w_p / \sum_{p
        \le \min(K, n)} w_p` with :math:`w_1 = 1` and :math:`w_p = 1/\log_2 p`
        for :math:`p \ge 2` (so positions 1 and 2 weigh the same; the ideal
        list counts repeats).

    Ties in the scores follow graphrec's one rule (pessimistic,
    :func:`rank_of_target`); session-rec sorts with pandas and breaks ties
    arbitrarily, so figures agree up to ties.

    Args:
        ks (tuple of int): cut-offs. (default: ``(5, 10, 20)``)
    """

    NAMES = ("HR", "MRR", "P", "R", "MAP", "NDCG")

    def __init__(self, ks: Iterable[int] = (5, 10, 20)) -> None:
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"ks must be positive integers, got {ks}")
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._sums = {(m, k): 0.0 for k in self.ks for m in self.NAMES}

    def update(self, scores: Tensor, rest: Tensor) -> None:
        """Add samples.

        Args:
            scores (Tensor [B, num_items + 1]): the scores (padding at ``-inf``).
            rest (LongTensor [B, R]): the rest of each session from the next
                click on, in order, repeats kept, padded with 0.
        """
        real = rest > 0
        n = real.sum(dim=1).double().cpu()
        if bool((n == 0).any()):
            raise ValueError("every sample needs a next click")
        kmax = self.ks[-1]
        # the next click, and the distinct items of the rest (sorted, repeats masked)
        next_rank = relevant_positions(scores, rest[:, :1], k=kmax).view(-1).cpu()
        distinct, _ = torch.sort(torch.where(real, rest, torch.zeros_like(rest)), dim=1)
        keep = distinct > 0
        keep[:, 1:] &= distinct[:, 1:] != distinct[:, :-1]
        positions = relevant_positions(scores, distinct, keep, k=kmax).cpu()
        positions, _ = torch.sort(positions, dim=1)  # finite positions first, increasing
        hits_so_far = torch.cumsum(positions.isfinite().double(), dim=1)
        p = torch.arange(1, kmax + 1, dtype=torch.double)
        w = torch.where(p == 1, torch.ones_like(p), 1.0 / torch.log2(p))
        w_cum = torch.cumsum(w, 0)
        weight = torch.zeros_like(positions)
        finite = positions.isfinite()
        weight[finite] = w[positions[finite].long() - 1]
        self.count += scores.size(0)
        for k in self.ks:
            within = positions <= k
            h = within.sum(dim=1).double()
            hit_next = next_rank <= k
            self._sums[("HR", k)] += float(hit_next.sum())
            self._sums[("MRR", k)] += float((1.0 / next_rank[hit_next]).sum())
            self._sums[("P", k)] += float((h / k).sum())
            self._sums[("R", k)] += float((h / n).sum())
            before_k = positions <= k - 1
            ap = (hits_so_far * before_k).sum(dim=1) / (k * n)
            self._sums[("MAP", k)] += float(ap.sum())
            dcg = (weight * within).sum(dim=1)
            ideal = w_cum[n.clamp(max=k).long() - 1]
            self._sums[("NDCG", k)] += float((dcg / ideal).sum())

    def sync(self) -> None:
        """Combine the samples of every process of ``torch.distributed``."""
        _sync_sums(self)

    def compute(self) -> dict[str, float]:
        """``{"HR@20": ..., "MRR@20": ..., "P@20": ..., "R@20": ..., "MAP@20": ...,
        "NDCG@20": ...}``, averaged over every evaluated position."""
        if self.count == 0:
            raise ValueError("no samples were added to the evaluator")
        return {f"{m}@{k}": v / self.count for (m, k), v in self._sums.items()}


def format_table(results: dict[str, dict[str, float]], percent: bool = True) -> str:
    """A plain-text table, one row per model, one column per metric.

    Metrics over sampled negatives (``"HR@10 (100 neg.)"``) go in a second
    table below the full-ranking one, so the two are never read as one.
    """
    columns: list[str] = []
    for row in results.values():
        columns += [c for c in row if c not in columns]
    full = [c for c in columns if not c.endswith(" neg.)")]
    sampled = [c for c in columns if c.endswith(" neg.)")]
    if not sampled:
        return _table(results, full, percent)
    # a model evaluated on sampled candidates only (a ranker) has no full-ranking row
    with_full = {name: row for name, row in results.items() if any(c in row for c in full)}
    suffix = sampled[0][sampled[0].index(" (") :]
    short = [c.removesuffix(suffix) for c in sampled]
    renamed = {
        name: {c.removesuffix(suffix): v for c, v in row.items() if c in sampled}
        for name, row in results.items()
    }
    head = f"{_table(with_full, full, percent)}\n\n" if with_full else ""
    return (
        f"{head}ranked against {suffix.strip(' ()').split()[0]} "
        f"sampled negatives:\n{_table(renamed, short, percent)}"
    )


def _table(results: dict[str, dict[str, float]], columns: list[str], percent: bool) -> str:
    width = max(len(name) for name in results) + 2
    cell = max([12, *(len(c) + 2 for c in columns)])
    head = "model".ljust(width) + "".join(f"{c:>{cell}}" for c in columns)
    lines = [head, "-" * len(head)]
    for name, row in results.items():
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append(
                f"{'-':>{cell}}" if v is None else f"{v * (100 if percent else 1):>{cell}.2f}"
            )
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)
