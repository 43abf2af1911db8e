"""One session as a PyG graph, and the batch type every graphrec model reads."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data


class SessionData(Data):
    r"""A session (or a session prefix) as a directed item-transition graph.

    Built by :func:`graphrec.data.session_graph` or by a
    :class:`graphrec.data.SessionDataset`, never by hand in a model.

    Attributes:
        x (LongTensor [N]): the session's distinct item ids, in order of first
            appearance. Item id 0 is padding and never a node.
        edge_index (LongTensor [2, E]): distinct directed transitions ``u -> v``
            between consecutive clicks, as node indices into ``x`` (a repeated
            click ``u -> u`` is a self-loop).
        edge_weight_in (FloatTensor [E]): the edge weight normalised by the
            in-degree of its target node.
        edge_weight_out (FloatTensor [E]): the edge weight normalised by the
            out-degree of its source node.
        alias (LongTensor [L]): for each click, in click order, the index of its
            node in ``x``. Offset like ``edge_index`` when batched.
        y (LongTensor [1], optional): the next-item target.
        user (LongTensor [1], optional): the user id of the session.
        category (LongTensor [N], optional): the category of each node's item.
        history (LongTensor [H], optional): the long-term history: item ids of
            the behaviour *before* the clicks of ``x``/``alias`` (earlier
            sessions of the user, or the part of a long sequence before the
            short-term window), oldest first. May be empty (``H = 0``). Item
            ids, not node indices: never offset.
        history_length (LongTensor [1], optional): ``H``; in a batch, ``[B]``,
            so that the concatenated ``history`` splits per session.
        history_category (LongTensor [H], optional): the category of each
            history item.
        context_<field> (LongTensor [1], optional): a context field of the
            sample (``context_hour``: the hour of its target click), 0 =
            unknown. Item and user fields are not carried: they are static per
            item and per user, and a model keeps their tables.

    In a batch (:class:`SessionBatch`) the same methods give the chain-graph
    view of the click sequences that the sequential models read.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "alias":
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)

    # -- chain-graph view (works for a single session and for a batch) --------
    @property
    def num_sessions(self) -> int:
        """Number of sessions held (1 for a single :class:`SessionData`)."""
        num_graphs = getattr(self, "num_graphs", None)
        return 1 if num_graphs is None else int(num_graphs)

    def click_session(self) -> Tensor:
        """LongTensor [T]: the session index of every click of the batch."""
        node_batch = self.get("batch")
        if node_batch is None:
            return self.alias.new_zeros(self.alias.numel())
        return node_batch[self.alias]

    def click_ptr(self) -> Tensor:
        """LongTensor [B + 1]: where each session's clicks start in ``alias``.

        A batch has it already: its ``alias`` slices, recorded by the
        collation (on the CPU; elsewhere it is counted again). Do not modify
        the result in place.
        """
        slices = self.__dict__.get("_slice_dict")
        ptr = None if slices is None else slices.get("alias")
        if ptr is not None and ptr.device == self.alias.device:
            return ptr
        counts = torch.bincount(self.click_session(), minlength=self.num_sessions)
        ptr = counts.new_zeros(counts.numel() + 1)
        torch.cumsum(counts, 0, out=ptr[1:])
        return ptr

    def sequences(self, field: str = "x") -> tuple[Tensor, Tensor]:
        """The click sequences, left-aligned and padded with item 0.

        Args:
            field (str): the node attribute read per click: ``"x"`` (item
                ids) or another per-node field such as ``"category"``.
                (default: ``"x"``)

        Returns:
            ``(items, mask)``: LongTensor [B, L_max] of item ids (or the
            field's values) in click order and the BoolTensor [B, L_max]
            marking real clicks.
        """
        sess = self.click_session()
        ptr = self.click_ptr()
        lengths = ptr[1:] - ptr[:-1]
        max_len = int(lengths.max()) if lengths.numel() else 0
        pos = torch.arange(sess.numel(), device=sess.device) - ptr[sess]
        values = self[field]
        items = values.new_zeros(self.num_sessions, max_len)
        items[sess, pos] = values[self.alias]
        mask = torch.zeros(self.num_sessions, max_len, dtype=torch.bool, device=sess.device)
        mask[sess, pos] = True
        return items, mask

    def history_ptr(self) -> Tensor:
        """LongTensor [B + 1]: where each session's history starts in ``history``."""
        lengths = self.history_length
        ptr = lengths.new_zeros(lengths.numel() + 1)
        torch.cumsum(lengths, 0, out=ptr[1:])
        return ptr

    def histories(self, field: str = "history") -> tuple[Tensor, Tensor]:
        """The long-term histories, left-aligned and padded with 0.

        Args:
            field (str): ``"history"`` (item ids) or ``"history_category"``.

        Returns:
            ``(items, mask)``: LongTensor [B, H_max] (oldest first) and the
            BoolTensor [B, H_max] marking real entries. ``H_max`` is 0 when
            every history of the batch is empty.

        Raises:
            AttributeError: the batch carries no history (see
                :class:`graphrec.data.SessionDataset`'s ``history_length``).
        """
        if self.get("history_length") is None:
            raise AttributeError(
                "this batch has no long-term history; build the dataset with history_length > 0"
            )
        values = self[field]
        lengths = self.history_length
        ptr = self.history_ptr()
        max_len = int(lengths.max()) if lengths.numel() else 0
        sess = torch.repeat_interleave(torch.arange(lengths.numel(), device=values.device), lengths)
        pos = torch.arange(values.numel(), device=values.device) - ptr[sess]
        items = values.new_zeros(lengths.numel(), max_len)
        items[sess, pos] = values
        mask = torch.zeros(lengths.numel(), max_len, dtype=torch.bool, device=values.device)
        mask[sess, pos] = True
        return items, mask

    def last_click(self) -> Tensor:
        """LongTensor [B]: the node index (into ``x``) of each session's last click."""
        return self.alias[self.click_ptr()[1:] - 1]

    def chain_edge_index(self) -> Tensor:
        """LongTensor [2, sum(L_b - 1)]: edges between consecutive clicks.

        Indices point into the flattened click list (``alias``), so that
        ``x[alias]`` gives the node features of the chain graph.
        """
        sess = self.click_session()
        same = sess[1:] == sess[:-1]
        src = torch.nonzero(same).view(-1)
        return torch.stack([src, src + 1], dim=0)


# PyG creates the batch class of a ``Data`` subclass on the fly
# (``SessionDataBatch``) and reuses it for every ``Batch.from_data_list`` call.
# Creating it here makes ``graphrec.data.collate`` and
# ``torch_geometric.loader.DataLoader`` return instances of one and the same
# class, which inherits the chain-graph methods above.
SessionBatch = type(Batch(_base_cls=SessionData))
SessionBatch.__doc__ = """A batch of :class:`SessionData` (a PyG ``Batch``).

Built by :func:`graphrec.data.collate`, by :meth:`SessionDataset.batch` or by
``torch_geometric.loader.DataLoader``. Node-indexing attributes (``edge_index``,
``alias``) are offset per session; ``batch`` maps nodes to sessions. Besides
the graph, it offers the chain-graph view read by the sequential models:
:meth:`sequences`, :meth:`last_click`, :meth:`chain_edge_index`, and ``y`` [B].
Optional per-session fields: ``user`` [B], per-node ``category``, and the
long-term history (``history``, ``history_length`` [B], ``history_category``;
:meth:`histories` pads it), and context fields ``context_<field>`` [B].
"""


# -- pre-collated batches through PyG's own collate ---------------------------
#: the store key of a placeholder that carries an already collated batch
PRECOLLATED_KEY = "precollated"
#: what ``Batch.from_data_list`` records besides the tensors
BOOKKEEPING = ("_num_graphs", "_slice_dict", "_inc_dict")


class Precollated:
    """An already built :class:`SessionBatch`, in transit through PyG's collate.

    :meth:`SessionDataset.__getitems__` hands ``torch.utils.data`` one
    placeholder :class:`SessionData` holding this object instead of one
    sample per index. ``Batch.from_data_list`` (what the collate function of
    ``torch_geometric.loader.DataLoader`` calls) copies the placeholder's only
    attribute into a new :class:`SessionBatch` and then records the
    bookkeeping (``_num_graphs``, ``_slice_dict``, ``_inc_dict``); the
    :class:`SessionBatch` setters of these three take them, and every tensor,
    from the carried batch instead. The result is that batch's state: the
    same tensors, ``ptr``, ``num_graphs``, slices and increments as a
    collation of the individual samples (tested against it).
    """

    __slots__ = ("batch",)

    def __init__(self, batch: SessionBatch) -> None:
        self.batch = batch

    def placeholder(self) -> SessionData:
        data = SessionData()
        data[PRECOLLATED_KEY] = self
        return data

    def adopt(self, target: Any, name: str) -> Any:
        """Move the carried batch's tensors into ``target`` (at the first of
        the three bookkeeping assignments) and return its value of ``name``;
        the placeholder key goes once all three have been recorded."""
        store = target._store._mapping
        pending = target.__dict__.setdefault("_adopting", set(BOOKKEEPING))
        if len(pending) == len(BOOKKEEPING):
            store.update(self.batch._store._mapping)
        pending.discard(name)
        if not pending:
            store.pop(PRECOLLATED_KEY, None)
            del target.__dict__["_adopting"]
        return self.batch.__dict__[name]


def _bookkeeping(name: str) -> property:
    def fget(self: Any) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    def fset(self: Any, value: Any) -> None:
        carried = self._store._mapping.get(PRECOLLATED_KEY)
        if isinstance(carried, list) and len(carried) == 1 and isinstance(carried[0], Precollated):
            value = carried[0].adopt(self, name)
        self.__dict__[name] = value

    return property(fget, fset)


for _name in BOOKKEEPING:
    setattr(SessionBatch, _name, _bookkeeping(_name))
