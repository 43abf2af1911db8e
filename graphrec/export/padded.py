"""A session batch built from padded click ids in tensor ops (what an exported model runs).

An exported encoder takes what a request has, the clicks as a 0-padded id
matrix, and builds everything else inside the ONNX graph: for SR-GNN the
session graphs (nodes by first appearance, distinct transitions, normalised
in/out weights), for the sequential models the chain view. :class:`PaddedBatch`
offers the attributes and methods of :class:`graphrec.data.SessionBatch` that
the models read, computed without Python loops, ``.item()`` or ``int()`` of a
tensor, so that one export serves any batch size and session length. Its graph
equals :func:`graphrec.data.build_session_graphs` of the same sessions (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphrec.data.graph import WEIGHTINGS


def _ptr(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class PaddedBatch:
    """The session batch of right-padded clicks, duck-typed as a ``SessionBatch``.

    Args:
        clicks (LongTensor [B, L]): compact item ids in click order, each row
            right-padded with 0; every row has at least one click. ``L`` may
            exceed the longest session.
        user (LongTensor [B], optional): compact user ids (0 = unknown).
        history (LongTensor [B, H], optional): long-term histories, oldest first,
            right-padded with 0 (a row of zeros: no history).
        item_category (LongTensor [num_items + 1], optional): the category table.
        weighting (str): ``"binary"`` or ``"count"`` transition weights, as
            :func:`graphrec.data.build_session_graphs`. (default: ``"binary"``)
    """

    def __init__(
        self,
        clicks: Tensor,
        user: Tensor | None = None,
        history: Tensor | None = None,
        item_category: Tensor | None = None,
        weighting: str = "binary",
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.clicks = clicks
        self.mask = clicks > 0
        self.user = user
        self._history = history
        self._category_table = item_category
        self._weighting = weighting
        self._build_graph()

    def _build_graph(self) -> None:
        clicks, mask = self.clicks, self.mask
        length = clicks.shape[1]
        pos = torch.arange(length, device=clicks.device)
        # the first position of each click's item in its session (L for padding)
        same = (clicks.unsqueeze(2) == clicks.unsqueeze(1)) & mask.unsqueeze(1)
        first = torch.where(same, pos, length).amin(dim=2)
        is_first = mask & (first == pos)
        rank = is_first.long().cumsum(1) - 1  # the node of a first click, per session
        local = rank.gather(1, first.clamp(max=length - 1))  # the node of every click
        num_nodes = is_first.long().sum(1)
        node_ptr = _ptr(num_nodes)
        self.node_ptr = node_ptr
        flat_first = torch.nonzero(is_first.reshape(-1)).reshape(-1)
        self.x = clicks.reshape(-1)[flat_first]
        self.batch = torch.div(flat_first, length, rounding_mode="floor")
        flat_click = torch.nonzero(mask.reshape(-1)).reshape(-1)
        click_row = torch.div(flat_click, length, rounding_mode="floor")
        self._click_session = click_row
        self._click_ptr = _ptr(mask.long().sum(1))
        self.alias = node_ptr[click_row] + local.reshape(-1)[flat_click]

        # edges: distinct transitions between consecutive clicks
        step = mask[:, 1:]  # click i + 1 exists (and so does click i: right-padded)
        key = local[:, :-1] * length + local[:, 1:]
        equal = (key.unsqueeze(2) == key.unsqueeze(1)) & step.unsqueeze(1) & step.unsqueeze(2)
        earlier = torch.ones(length - 1, length - 1, dtype=torch.bool, device=clicks.device)
        earlier = torch.tril(earlier, diagonal=-1)  # [i, j]: j < i
        repeated = (equal & earlier).any(dim=2)
        keep = torch.nonzero((step & ~repeated).reshape(-1)).reshape(-1)
        row = torch.div(keep, length - 1, rounding_mode="floor")
        src = node_ptr[row] + local[:, :-1].reshape(-1)[keep]
        dst = node_ptr[row] + local[:, 1:].reshape(-1)[keep]
        if self._weighting == "count":
            weight = equal.long().sum(2).reshape(-1)[keep].to(torch.float32)
        else:
            weight = torch.ones_like(src, dtype=torch.float32)
        total = self.x.shape[0]
        out_deg = weight.new_zeros(total).index_add(0, src, weight)
        in_deg = weight.new_zeros(total).index_add(0, dst, weight)
        self.edge_index = torch.stack([src, dst])
        self.edge_weight_in = weight / in_deg[dst]
        self.edge_weight_out = weight / out_deg[src]

    # -- what the models read of a SessionBatch ----------------------------------------
    @property
    def num_sessions(self) -> Any:
        return self.clicks.shape[0]

    @property
    def num_graphs(self) -> Any:
        return self.clicks.shape[0]

    def click_session(self) -> Tensor:
        return self._click_session

    def click_ptr(self) -> Tensor:
        return self._click_ptr

    def last_click(self) -> Tensor:
        return self.alias[self._click_ptr[1:] - 1]

    @property
    def category(self) -> Tensor:
        return self._table()[self.x]

    @property
    def history(self) -> Tensor:
        return self._need_history()[self._need_history() > 0]

    @property
    def history_length(self) -> Tensor | None:
        return None if self._history is None else (self._history > 0).long().sum(1)

    def sequences(self, field: str = "x") -> tuple[Tensor, Tensor]:
        if field == "x":
            return self.clicks, self.mask
        if field == "category":
            zero = torch.zeros_like(self.clicks)
            return torch.where(self.mask, self._table()[self.clicks], zero), self.mask
        raise KeyError(f"an exported batch has no per-click field {field!r}")

    def histories(self, field: str = "history") -> tuple[Tensor, Tensor]:
        history = self._need_history()
        mask = history > 0
        if field == "history":
            return history, mask
        if field == "history_category":
            table = self._table()
            return torch.where(mask, table[history], torch.zeros_like(history)), mask
        raise KeyError(f"an exported batch has no history field {field!r}")

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self else default

    def __contains__(self, key: str) -> bool:
        if key in ("history", "history_length", "history_category"):
            return self._history is not None
        if key == "category":
            return self._category_table is not None
        if key == "user":
            return self.user is not None
        return key in ("x", "alias", "edge_index", "edge_weight_in", "edge_weight_out", "batch")

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def to(self, device: Any) -> PaddedBatch:
        return self

    def _table(self) -> Tensor:
        if self._category_table is None:
            raise AttributeError("this exported batch has no item categories")
        return self._category_table

    def _need_history(self) -> Tensor:
        if self._history is None:
            raise AttributeError("this batch has no long-term history")
        return self._history
