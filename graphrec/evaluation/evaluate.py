"""Running models through the one evaluator."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from graphrec.checks import check_int
from graphrec.data import SessionDataset
from graphrec.data.dataset import _positions
from graphrec.data.graph import _ptr
from graphrec.distributed import shard
from graphrec.evaluation.metrics import (
    AUCEvaluator,
    Evaluator,
    MultiTargetEvaluator,
    SessionRecEvaluator,
)
from graphrec.evaluation.negatives import sample_negatives
from graphrec.evaluation.retrieval import FaissRetriever
from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.nn.functional import mm_nt


@torch.no_grad()
def evaluate(
    model: SessionRecommender,
    dataset: SessionDataset,
    ks: Iterable[int] = (5, 10, 20),
    batch_size: int = 100,
    retriever: FaissRetriever | None = None,
    candidates: Tensor | None = None,
    device: torch.device | str | None = None,
    negatives: int | None = None,
    negative_seed: int = 0,
    full_ranking: bool = True,
    distributed: bool = False,
) -> dict[str, float]:
    """Next-item metrics of ``model`` on every sample of ``dataset``.

    By default every item of the catalogue is ranked (full ranking), one
    ``batch_size x (num_items + 1)`` score block at a time, so memory stays
    bounded whatever the size of the test set.

    Args:
        model: any graphrec model.
        dataset: the samples (e.g. ``load_benchmark(..., split="test")``).
        ks: cut-offs. (default: ``(5, 10, 20)``)
        batch_size (int): sessions scored at once; 100 keeps each score block
            small enough to be reused by the allocator. (default: ``100``)
        retriever (FaissRetriever, optional): rank with a faiss index over the
            item vectors instead of the exact torch scores (retrieval models).
            An approximate index (HNSW, IVF) also reports ``"ANN recall@K"``:
            the share of the exact top-K it returns, on up to 2,000 samples.
        candidates (LongTensor [len(dataset), C], optional): rank only these
            items per sample (ranking / re-ranking); a target missing from its
            candidates counts as a miss.
        device: where to run the model (default: where its parameters are).
        negatives (int, optional): also rank each target against this many
            items drawn uniformly from those its user never interacted with
            (:func:`sample_negatives`, drawn once per split with
            ``negative_seed``, the same for every model); those metrics are
            named ``"HR@10 (100 neg.)"`` etc. and come beside the full-ranking
            ones, never instead of them. The same scored pairs give
            ``"AUC (100 neg.)"`` and ``"GAUC (100 neg.)"``
            (:class:`AUCEvaluator`; groups are users, else sessions).
        negative_seed (int): seed of the negatives. (default: ``0``)
        full_ranking (bool): rank the full catalogue (or ``candidates`` /
            ``retriever``); ``False`` computes only the sampled-negative
            metrics, which is what a ranker (DIN, DIEN) costs little for.
            (default: ``True``)
        distributed (bool): call it in every process of ``torch.distributed``
            (e.g. under ``torchrun``): each evaluates a contiguous shard of the
            samples, and the counters are summed over processes (AUC gathers
            every impression), so the metrics equal one process's. Without a
            process group it changes nothing. (default: ``False``)

    Returns:
        ``{"HR@K": ..., "MRR@K": ..., "NDCG@K": ..., "Coverage@K": ...}``
        (and the sampled-negative metrics).
    """
    ks = _check_inputs(model, dataset, ks, batch_size)
    if negatives is not None:
        check_int("negatives", negatives, minimum=1)
    if retriever is not None and not isinstance(model, RetrievalRecommender):
        raise TypeError(f"a faiss retriever needs a retrieval model, got {type(model).__name__}")

    if candidates is not None and candidates.size(0) != len(dataset):
        raise ValueError(f"candidates has {candidates.size(0)} rows for {len(dataset)} samples")
    device = torch.device(device) if device is not None else model.item_ids.device
    if not full_ranking and negatives is None:
        raise ValueError("full_ranking=False needs negatives (nothing would be measured)")
    evaluator = Evaluator(ks, num_items=model.num_items)
    sampled = sampled_evaluator = auc_evaluator = groups = None
    if negatives is not None:
        sampled = sample_negatives(dataset, negatives, negative_seed)
        sampled_evaluator = Evaluator(ks, suffix=f" ({negatives} neg.)")
        auc_evaluator = AUCEvaluator(suffix=f" ({negatives} neg.)")
        groups = auc_groups(dataset)
    was_training = model.training
    model.eval()
    # a retrieval model's item vectors are computed once, not once per block,
    # and its sessions are embedded EMBED_BLOCK at a time (scored batch_size at a time)
    # (a repeat-aware model's scores are its mixture's, not the plain similarity)
    retrieval = full_ranking and isinstance(model, RetrievalRecommender) and model.plain_similarity
    items = model.item_vectors() if retrieval else None
    blocked = retrieval and retriever is None and candidates is None
    item_bias = None
    if blocked and model.metric == "l2":
        item_bias = _l2_bias(items)
    block = batch_size * max(1, EMBED_BLOCK // batch_size) if blocked else batch_size
    # the score block and the blocked product's buffer, allocated once (no page faults per block)
    buffers = _score_buffers(batch_size, items) if blocked else None
    first, stop = shard(len(dataset)) if distributed else (0, len(dataset))
    order = by_length(dataset, torch.arange(first, stop))
    for block_start in range(0, order.numel(), block):
        block_index = order[block_start : block_start + block]
        block_batch = dataset.batch(block_index).to(device)
        block_queries = model.session_embedding(block_batch) if blocked else None
        for offset in range(0, block_index.numel(), batch_size):
            index = block_index[offset : offset + batch_size]
            batch = block_batch  # the chunk itself when not blocked
            y = dataset.y[index].to(device)
            scores = None
            if not full_ranking:
                pass  # sampled candidates only, below
            elif retriever is not None and not model.plain_similarity:
                # the repeat-explore mixture: the index's explore candidates and the
                # session's items, scored exactly
                top, top_scores = _mixture_search(model, batch, retriever, y, max(ks))
                evaluator.update_topk(top, y.cpu(), top_scores)
            elif retriever is not None:
                top, top_scores = _search(retriever, model.session_embedding(batch), y, max(ks))
                evaluator.update_topk(top, y.cpu(), top_scores)
            elif candidates is not None:
                cand = candidates[index].to(device)
                evaluator.update_candidates(model.score(batch, cand), cand, y)
            elif block_queries is None:
                scores = model.score(batch)
                evaluator.update(scores, y)
            else:
                queries = block_queries[offset : offset + batch_size]
                scores = _ranking_scores(queries, items, item_bias, buffers)
                evaluator.update(scores, y)
            if sampled is not None:
                cand = torch.cat([y.view(-1, 1), sampled[index].to(device)], dim=1)
                if scores is None or not isinstance(model, RetrievalRecommender):
                    # models that score candidates their own way (a pipeline re-ranks
                    # them: its full-catalogue scores are -inf outside its top-k)
                    cand_scores = model.score(batch, cand)
                else:
                    cand_scores = scores.gather(1, cand)
                    if item_bias is not None:  # the true -||q - v||^2 (AUC compares rows)
                        cand_scores -= queries.square().sum(1, keepdim=True)
                sampled_evaluator.update_candidates(cand_scores, cand, y)
                auc_evaluator.update(cand_scores, cand == y.view(-1, 1), groups[index])
    model.train(was_training)
    if distributed:
        for ev in (evaluator, sampled_evaluator, auc_evaluator):
            if ev is not None:
                ev.sync()
    results = evaluator.compute() if full_ranking else {}
    if full_ranking and retriever is not None and retriever.kind != "flat":
        # an approximate index: how much of the exact top-K it returns, beside its metrics
        sample = torch.arange(min(2000, len(dataset)))
        queries = model.session_embedding(dataset.batch(sample).to(device))
        k = max(ks)
        # (of the explore candidates, for a repeat-aware model: what the index serves)
        vectors = items if items is not None else model.item_vectors()
        results[f"ANN recall@{k}"] = retriever.recall_vs_exact(queries, vectors, k)
    if sampled_evaluator is not None:
        results.update(sampled_evaluator.compute())
        results.update(auc_evaluator.compute())
    return results


def _check_inputs(model, dataset, ks, batch_size) -> tuple[int, ...]:
    """The checks every evaluation starts with; the cut-offs as a tuple."""
    if not isinstance(model, SessionRecommender):
        raise TypeError(f"expected a graphrec model, got {type(model).__name__}")
    model.check_data(dataset)
    if len(dataset) == 0:
        raise ValueError(f"{dataset.name} has no samples to evaluate")
    check_int("batch_size", batch_size, minimum=1)
    ks = tuple(check_int("k", k, minimum=1) for k in ks)
    if not ks:
        raise ValueError("ks needs at least one cut-off")
    model.check_finite()
    return ks


#: sessions a retrieval model embeds at once in :func:`evaluate` (their
#: ``[EMBED_BLOCK, d]`` vectors are small; the score blocks stay ``batch_size`` rows)
EMBED_BLOCK = 1000


def by_length(dataset: SessionDataset, index: Tensor) -> Tensor:
    """``index`` reordered by the samples' length: clicks, then history.

    :func:`evaluate` visits the samples in this order, so that the sessions
    batched together have nearly the same length and sequence models (SDM's
    LSTM and self-attention, the rankers' histories) pad little: on the
    Diginetica test set, 1,000 samples in file order pad to 5.7 times their
    clicks, in this order to 1.1 times. The metrics do not depend on the order
    (sums over samples; AUC sorts its impressions).
    """
    key = dataset.lengths[index]
    if dataset.history is not None:
        history_length = dataset.history[2][index]
        longest = int(history_length.max()) if history_length.numel() else 0
        key = key * (longest + 1) + history_length
    return index[torch.argsort(key, stable=True)]


def _l2_bias(items: Tensor) -> Tensor:
    """``-||v||^2`` of every item, ``-inf`` for the padding row 0."""
    bias = items.square().sum(1).neg_()
    bias[0] = -math.inf
    return bias


def _score_buffers(batch_size: int, items: Tensor) -> tuple[Tensor, Tensor | None]:
    """The ``[batch_size, num_items + 1]`` score block and :func:`mm_nt`'s
    workspace (on a CPU: elsewhere the product is one plain matmul)."""
    scores = items.new_empty(batch_size, items.size(0))
    return scores, torch.empty_like(scores).view(-1) if items.device.type == "cpu" else None


def _ranking_scores(
    queries: Tensor,
    items: Tensor,
    item_bias: Tensor | None,
    buffers: tuple[Tensor, Tensor | None],
) -> Tensor:
    """Scores that rank items as :func:`~graphrec.models.similarity` does.

    ``"dot"``: the inner products themselves. ``"l2"`` (``item_bias`` given):
    :math:`2\\,\\mathbf{q}^\top\\mathbf{v} - \\lVert\\mathbf{v}\rVert^2`, which
    is :math:`-\\lVert\\mathbf{q} - \\mathbf{v}\rVert^2` plus the constant
    :math:`\\lVert\\mathbf{q}\rVert^2` of each row: the same order, in one
    fused product instead of four passes over the block. ``buffers``
    (:func:`_score_buffers`) receive the block and the blocked product.
    """
    out, workspace = buffers[0][: queries.size(0)], buffers[1]
    if item_bias is None:
        scores = mm_nt(queries, items, out=out, workspace=workspace)
        scores[:, 0] = -math.inf
        return scores
    return mm_nt(queries, items, bias=item_bias, alpha=2, out=out, workspace=workspace)


def _search(
    retriever: FaissRetriever, queries: Tensor, target: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    """A faiss top-``k`` with scores, lengthened while a target ties the last
    score of its list, so that ties past the list's end are seen (the
    pessimistic tie rule of :func:`~graphrec.evaluation.rank_of_target`)."""
    target = target.cpu()
    while True:
        top, scores = retriever.search(queries, k)
        match = top == target.view(-1, 1)
        target_score = torch.where(match, scores, torch.full_like(scores, -math.inf)).amax(dim=1)
        open_ended = match.any(dim=1) & (target_score == scores[:, -1])
        if k >= retriever.num_items or not bool(open_ended.any()):
            return top, scores
        k = min(2 * k, retriever.num_items)


def _mixture_search(model, batch, retriever, target: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """:meth:`~graphrec.models.RetrievalRecommender.mixture_topk`, lengthened while a
    target ties the last score of its list (the pessimistic tie rule), as
    :func:`_search` does for plain models."""
    target = target.cpu()
    while True:
        top, scores = model.mixture_topk(batch, retriever, k)
        top, scores = top.cpu(), scores.cpu()
        match = top == target.view(-1, 1)
        target_score = torch.where(match, scores, torch.full_like(scores, -math.inf)).amax(dim=1)
        open_ended = match.any(dim=1) & (target_score == scores[:, -1])
        if k >= retriever.num_items or not bool(open_ended.any()):
            return top, scores
        k = min(2 * k, retriever.num_items)


def auc_groups(dataset: SessionDataset) -> Tensor:
    """LongTensor [len(dataset)]: the GAUC group of each sample.

    Its user where the dataset has users (samples of the unknown user 0 each
    form their own group), else its full session, else the sample itself.
    """
    n = len(dataset)
    if dataset.user is not None:
        user = dataset.user.clone()
        unknown = user == 0
        # unknown users: one group per sample, after every real user id
        user[unknown] = int(user.max()) + 1 + torch.arange(int(unknown.sum()))
        return user
    if dataset.sample_session is not None:
        return dataset.sample_session.clone()
    return torch.arange(n)


def split_for_multi_target(
    dataset: SessionDataset, fraction: float = 0.8
) -> tuple[SessionDataset, Tensor]:
    """Inputs and held-out items of the multi-target protocol.

    Every full session of ``dataset`` (length ``n >= 2``) is cut after its
    first ``max(1, int(n * fraction))`` clicks; the input is that prefix and
    the targets are the distinct items of the rest, in order of appearance.

    Returns:
        A dataset of the inputs (``y`` = first held-out item) and a LongTensor
        ``[S, M]`` of held-out items padded with 0.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if dataset.sessions is None:
        raise ValueError(f"{dataset.name} does not keep its full sessions")
    items, ptr = dataset.sessions
    lengths = ptr.diff()
    if bool((lengths < 2).any()):
        raise ValueError("the multi-target protocol needs sessions of at least 2 clicks")
    cut = (lengths.double() * fraction).long().clamp(min=1)
    cut = torch.minimum(cut, lengths - 1)
    session_of_click = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    within = torch.arange(items.numel()) - ptr[:-1][session_of_click]
    is_input = within < cut[session_of_click]
    # held-out: distinct items after the cut, first appearance first
    rest_items, rest_session = items[~is_input], session_of_click[~is_input]
    stride = dataset.num_items + 1
    key = rest_session * stride + rest_items
    uniq, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((uniq.numel(),), key.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(key.numel()), reduce="amin")
    first = first.sort().values
    sess, item = rest_session[first], rest_items[first]
    counts = torch.bincount(sess, minlength=lengths.numel())
    col = torch.arange(sess.numel()) - _ptr(counts)[:-1][sess]
    targets = torch.zeros(lengths.numel(), int(counts.max()), dtype=torch.long)
    targets[sess, col] = item
    inputs = SessionDataset(
        dataset.sessions,
        torch.arange(lengths.numel()),
        cut,
        dataset.num_items,
        max_length=dataset.max_length,
        weighting=dataset.weighting,
        item_ids=dataset.item_ids,
        item_category=dataset.item_category,
        name=f"{dataset.name}/multi-target",
    )
    return inputs, targets


@torch.no_grad()
def evaluate_multi_target(
    model: SessionRecommender,
    dataset: SessionDataset,
    ks: Iterable[int] = (5, 10, 20),
    fraction: float = 0.8,
    batch_size: int = 100,
) -> dict[str, float]:
    """Recall@K, HR@K and NDCG@K of predicting the rest of each session.

    See :func:`split_for_multi_target` for the protocol.
    """
    ks = _check_inputs(model, dataset, ks, batch_size)
    inputs, targets = split_for_multi_target(dataset, fraction)
    evaluator = MultiTargetEvaluator(ks)
    for index, scores in _full_scores(model, inputs, batch_size):
        evaluator.update_scores(scores, targets[index].to(scores.device))
    return evaluator.compute()


def _full_scores(model: SessionRecommender, dataset: SessionDataset, batch_size: int):
    """Yield ``(index, scores)``: the full-catalogue scores of ``dataset``,
    ``batch_size`` samples at a time, with the model in eval mode meanwhile."""
    device = model.item_ids.device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(dataset), batch_size):
            index = torch.arange(start, min(start + batch_size, len(dataset)))
            yield index, model.score(dataset.batch(index).to(device))
    finally:
        model.train(was_training)


def rest_of_sessions(dataset: SessionDataset, index: Tensor) -> Tensor:
    """LongTensor ``[len(index), R]``: each sample's target and every later
    click of its session, in order, padded with 0 (the session-rec ``rest``)."""
    if dataset.sessions is None or dataset.sample_session is None:
        raise ValueError(f"{dataset.name} does not keep the sessions its samples come from")
    if dataset.target_position is None:
        raise ValueError(
            f"{dataset.name} does not know where its targets sit in their sessions "
            "(a processed cache of an older graphrec: rebuild it)"
        )
    items, ptr = dataset.sessions
    session = dataset.sample_session[index]
    start = ptr[session] + dataset.target_position[index]
    length = ptr[session + 1] - start
    out = torch.zeros(index.numel(), int(length.max()), dtype=torch.long)
    row = torch.repeat_interleave(torch.arange(index.numel()), length)
    col = torch.arange(int(length.sum())) - _ptr(length)[:-1][row]
    out[row, col] = items[_positions(start, length)]
    return out


@torch.no_grad()
def evaluate_session_rec(
    model: SessionRecommender,
    dataset: SessionDataset,
    ks: Iterable[int] = (5, 10, 20),
    batch_size: int = 100,
) -> dict[str, float]:
    """The session-rec protocol on every sample of a prefix-augmented split.

    Every sample is one position of a test session (its prefix so far); the
    metrics are those of :class:`SessionRecEvaluator`: next-item ``HR@K`` and
    ``MRR@K``, and ``P@K``, ``R@K``, ``MAP@K``, ``NDCG@K`` of the rest of the
    session, as the session-rec framework defines them, so that figures sit
    beside published session-rec tables. The catalogue is the model's (items
    of the training and test files; session-rec ranks the training items).
    """
    evaluator = SessionRecEvaluator(_check_inputs(model, dataset, ks, batch_size))
    for index, scores in _full_scores(model, dataset, batch_size):
        evaluator.update(scores, rest_of_sessions(dataset, index).to(scores.device))
    return evaluator.compute()
