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


def _cumsum0(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def graph_pieces(items: np.ndarray, lengths: np.ndarray, weighting: str = "binary") -> dict:
    """The session graphs of many click sequences, in numpy, batch-indexed.

    The one implementation behind :func:`build_session_graphs` and
    :meth:`graphrec.data.SessionDataset.batch` (which builds the graphs of each
    batch when it is drawn). Numpy, not torch: on the few hundred clicks of a
    batch each operation costs microseconds where torch's dispatch costs tens.

    Args:
        items (int64 array [T]): the clicks of all sessions, concatenated.
        lengths (int64 array [S]): the clicks of each session (>= 1).
        weighting (str): ``"binary"`` or ``"count"``.

    Returns:
        A dict of numpy arrays: ``x`` [N] the item of every node (nodes by
        session, then by first appearance), ``node_ptr``, ``click_ptr``,
        ``edge_ptr`` [S + 1], ``alias`` [T] the node of every click,
        ``edge_index`` [2, E] (both indexing the nodes of the whole batch; edges
        by session, then by source and target node), ``edge_weight_in`` and
        ``edge_weight_out`` [E] (float32), ``node_batch`` [N].
    """
    num_sessions, num_clicks = lengths.size, items.size
    sample = np.repeat(np.arange(num_sessions), lengths)
    # Nodes: distinct (session, item) pairs. A stable sort of the pair keys puts
    # each pair's first click first in its group; numbering the first clicks
    # in click order numbers the nodes by session, then by first appearance.
    stride = int(items.max()) + 1 if num_clicks else 1
    key = sample * stride + items
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts_group = np.ones(num_clicks, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=starts_group[1:])
    first_click = order[starts_group]
    is_first = np.zeros(num_clicks, dtype=bool)
    is_first[first_click] = True
    node_number = np.cumsum(is_first) - 1  # at a first click: its node
    alias = np.empty(num_clicks, dtype=np.int64)
    alias[order] = node_number[first_click][np.cumsum(starts_group) - 1]
    x = items[is_first]
    node_batch = sample[is_first]
    node_counts = np.bincount(node_batch, minlength=num_sessions)

    # Edges: distinct consecutive transitions inside a session.
    same = sample[1:] == sample[:-1]
    src, dst = alias[:-1][same], alias[1:][same]
    num_nodes = x.size
    edge_key = np.sort(src * num_nodes + dst)  # the distinct keys, as np.unique, unrolled
    distinct = np.ones(edge_key.size, dtype=bool)
    np.not_equal(edge_key[1:], edge_key[:-1], out=distinct[1:])
    first = np.flatnonzero(distinct)
    if weighting == "count":  # how often each transition occurs
        weight = np.diff(np.append(first, edge_key.size)).astype(np.float32)
    else:
        weight = np.ones(first.size, dtype=np.float32)
    edge_key = edge_key[first]
    src, dst = edge_key // num_nodes, edge_key % num_nodes
    # degrees are sums of small integers: exact in float64 and in float32
    out_deg = np.bincount(src, weights=weight, minlength=num_nodes).astype(np.float32)
    in_deg = np.bincount(dst, weights=weight, minlength=num_nodes).astype(np.float32)
    edge_counts = np.bincount(node_batch[src], minlength=num_sessions)
    return {
        "x": x,
        "node_ptr": _cumsum0(node_counts),
        "alias": alias,
        "click_ptr": _cumsum0(lengths),
        "edge_index": np.stack([src, dst]),
        "edge_ptr": _cumsum0(edge_counts),
        "edge_weight_in": weight / in_deg[dst],
        "edge_weight_out": weight / out_deg[src],
        "node_batch": node_batch,
    }


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
    items, lengths = items.cpu(), lengths.cpu()
    g = graph_pieces(items.numpy(), lengths.numpy(), weighting)
    t = torch.from_numpy
    node_ptr, click_ptr, edge_ptr = g["node_ptr"], g["click_ptr"], g["edge_ptr"]
    click_session = np.repeat(np.arange(lengths.numel()), lengths.numpy())
    edge_session = g["node_batch"][g["edge_index"][0]]
    return GraphArrays(
        x=t(g["x"]),
        node_ptr=t(node_ptr),
        alias=t(g["alias"] - node_ptr[click_session]),
        click_ptr=t(click_ptr),
        edge_index=t(g["edge_index"] - node_ptr[edge_session]),
        edge_ptr=t(edge_ptr),
        edge_weight_in=t(g["edge_weight_in"]),
        edge_weight_out=t(g["edge_weight_out"]),
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
