"""Vectorised construction of session graphs (SR-GNN, Wu et al., AAAI 2019)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphrec.data.session_data import SessionData

WEIGHTINGS = ("binary", "count")


def _ptr(counts: Tensor) -> Tensor:
    ptr = counts.new_zeros(counts.numel() + 1)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


@dataclass
class GraphArrays:
    """Many session graphs stored flat (``InMemoryDataset``-style collation).

    Per-session pieces are contiguous; ``*_ptr`` give their boundaries. Node
    indices in ``alias`` and ``edge_index`` are local to their session.
    """

    x: Tensor  # [sum N] item ids
    node_ptr: Tensor  # [S + 1]
    alias: Tensor  # [sum L] local node index of each click
    click_ptr: Tensor  # [S + 1]
    edge_index: Tensor  # [2, sum E] local node indices
    edge_ptr: Tensor  # [S + 1]
    edge_weight_in: Tensor  # [sum E]
    edge_weight_out: Tensor  # [sum E]

    def __len__(self) -> int:
        return self.node_ptr.numel() - 1


def build_session_graphs(items: Tensor, lengths: Tensor, weighting: str = "binary") -> GraphArrays:
    """Build the graphs of many sessions at once, without a Python loop.

    Args:
        items (LongTensor [T]): the clicks of all sessions, concatenated.
        lengths (LongTensor [S]): the number of clicks of each session (>= 1).
        weighting (str): ``"binary"`` counts each distinct transition once (the
            reference code); ``"count"`` weights a transition by its number of
            occurrences before normalisation (the wording of the paper).
            (default: ``"binary"``)
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    items = torch.as_tensor(items, dtype=torch.long)
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if int(lengths.sum()) != items.numel():
        raise ValueError(
            f"lengths sum to {int(lengths.sum())} but {items.numel()} items were given"
        )
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError("every session needs at least one click")
    num_sessions, num_clicks = lengths.numel(), items.numel()
    click_ptr = _ptr(lengths)
    sample = torch.repeat_interleave(torch.arange(num_sessions), lengths)

    # Nodes: distinct (session, item) pairs, ordered by first appearance. Click
    # positions are session-contiguous, so ordering by the global position of
    # the first click orders by session, then by first appearance inside it.
    stride = int(items.max()) + 1 if num_clicks else 1
    uniq, inverse = torch.unique(sample * stride + items, return_inverse=True)
    first = torch.full((uniq.numel(),), num_clicks, dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(num_clicks), reduce="amin")
    order = torch.argsort(first)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    node_of_click = rank[inverse]  # global node index of every click
    first_sorted = first[order]
    x = items[first_sorted]
    node_ptr = _ptr(torch.bincount(sample[first_sorted], minlength=num_sessions))
    alias = node_of_click - node_ptr[sample]

    # Edges: distinct consecutive transitions inside a session.
    same = sample[1:] == sample[:-1]
    src, dst = node_of_click[:-1][same], node_of_click[1:][same]
    num_nodes = x.numel()
    edge_key, counts = torch.unique(src * num_nodes + dst, return_counts=True)
    src, dst = edge_key // num_nodes, edge_key % num_nodes
    weight = counts.float() if weighting == "count" else torch.ones(edge_key.numel())
    out_deg = torch.zeros(num_nodes).index_add_(0, src, weight)
    in_deg = torch.zeros(num_nodes).index_add_(0, dst, weight)
    node_session = torch.repeat_interleave(torch.arange(num_sessions), node_ptr.diff())
    edge_session = node_session[src]
    offset = node_ptr[edge_session]
    return GraphArrays(
        x=x,
        node_ptr=node_ptr,
        alias=alias,
        click_ptr=click_ptr,
        edge_index=torch.stack([src - offset, dst - offset]),
        edge_ptr=_ptr(torch.bincount(edge_session, minlength=num_sessions)),
        edge_weight_in=weight / in_deg[dst],
        edge_weight_out=weight / out_deg[src],
    )


def validate_session(
    items: Sequence[int] | Tensor | np.ndarray,
    max_length: int | None = None,
    truncate: bool = False,
    name: str = "session",
) -> Tensor:
    """Check a session's item ids and return them as a LongTensor.

    Raises:
        ValueError: on an empty session, a non-integer id, an id <= 0 (0 is
            padding), or a session longer than ``max_length`` when
            ``truncate=False``. With ``truncate=True`` the most recent
            ``max_length`` clicks are kept.
    """
    if isinstance(items, Tensor):
        if items.dtype.is_floating_point or items.dtype == torch.bool or items.dim() != 1:
            raise ValueError(
                f"{name}: item ids must be a 1-D integer tensor, got dtype={items.dtype} "
                f"with shape {tuple(items.shape)}"
            )
        out = items.long()
    else:
        values = list(items)
        for pos, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{name}: item id at position {pos} is {v!r}, not an integer")
        out = torch.tensor([int(v) for v in values], dtype=torch.long)
    if out.numel() == 0:
        raise ValueError(f"{name}: empty session (a session needs at least one click)")
    bad = torch.nonzero(out <= 0).view(-1)
    if bad.numel():
        pos = int(bad[0])
        raise ValueError(
            f"{name}: item id at position {pos} is {int(out[pos])}; ids must be >= 1 "
            "(0 is reserved for padding)"
        )
    if max_length is not None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if out.numel() > max_length:
            if not truncate:
                raise ValueError(
                    f"{name}: {out.numel()} clicks exceed max_length={max_length} "
                    "(pass truncate=True to keep the most recent clicks)"
                )
            out = out[-max_length:]
    return out


def session_graph(
    items: Sequence[int] | Tensor | np.ndarray,
    target: int | None = None,
    weighting: str = "binary",
    max_length: int | None = None,
    truncate: bool = False,
    user: int | None = None,
    category: Tensor | None = None,
    history: Sequence[int] | Tensor | None = None,
) -> SessionData:
    r"""Turn one session into its SR-GNN graph.

    Every distinct item is a node (in order of first appearance), every
    distinct transition between consecutive clicks a directed edge, weighted
    by the normalised in/out adjacency of the SR-GNN paper.

    Args:
        items: the clicked item ids in click order (integers >= 1).
        target (int, optional): the next item, stored as ``y``.
        weighting (str): ``"binary"`` or ``"count"``. (default: ``"binary"``)
        max_length (int, optional): the longest session accepted.
        truncate (bool): keep the most recent ``max_length`` clicks instead of
            raising. (default: ``False``)
        user (int, optional): the session's user id, stored as ``user``.
        category (LongTensor, optional): a category table indexed by item id;
            the categories of the nodes are stored as ``category`` (and of
            the history as ``history_category``).
        history (list of int, optional): the long-term history before these
            clicks, oldest first (may be empty); stored as ``history`` with
            ``history_length``.

    Example:
        >>> g = session_graph([1, 2, 3, 2, 4])
        >>> g.x.tolist(), g.alias.tolist()
        ([1, 2, 3, 4], [0, 1, 2, 1, 3])
    """
    clicks = validate_session(items, max_length=max_length, truncate=truncate)
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, numbers.Integral) or target <= 0
    ):
        raise ValueError(f"target must be an item id >= 1, got {target!r}")
    g = build_session_graphs(clicks, torch.tensor([clicks.numel()]), weighting)
    data = SessionData(
        x=g.x,
        edge_index=g.edge_index,
        edge_weight_in=g.edge_weight_in,
        edge_weight_out=g.edge_weight_out,
        alias=g.alias,
    )
    if target is not None:
        data.y = torch.tensor([int(target)])
    if user is not None:
        data.user = torch.tensor([int(user)])
    if category is not None:
        data.category = category[g.x]
    if history is not None:
        hist = (
            torch.zeros(0, dtype=torch.long)
            if len(history) == 0
            else validate_session(history, name="history")
        )
        data.history = hist
        data.history_length = torch.tensor([hist.numel()])
        if category is not None:
            data.history_category = category[hist]
    return data


def dense_adjacency(data: SessionData) -> tuple[Tensor, Tensor]:
    """The dense normalised adjacency matrices of one session graph.

    Returns:
        ``(A_in, A_out)``, each [N, N]: ``A_out[i, j]`` is the weight of edge
        ``i -> j`` normalised by the out-degree of ``i``; ``A_in[i, j]`` is the
        weight of edge ``j -> i`` normalised by the in-degree of ``i``.
    """
    n = data.num_nodes
    src, dst = data.edge_index
    a_in = torch.zeros(n, n)
    a_out = torch.zeros(n, n)
    a_in[dst, src] = data.edge_weight_in.float()
    a_out[src, dst] = data.edge_weight_out.float()
    return a_in, a_out
