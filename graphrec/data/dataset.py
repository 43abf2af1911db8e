"""Session datasets stored once, flat, and batched without Python loops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from graphrec.data.collate import assemble_batch
from graphrec.data.graph import GraphArrays, _ptr, build_session_graphs
from graphrec.data.session_data import SessionBatch, SessionData

FORMAT_VERSION = 1


def _segments(ptr: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Positions of the segments ``index`` of a flat array split by ``ptr``."""
    starts = ptr[index]
    counts = ptr[index + 1] - starts
    out_ptr = _ptr(counts)
    pos = torch.arange(int(out_ptr[-1])) + torch.repeat_interleave(starts - out_ptr[:-1], counts)
    return pos, counts


def encode_item_ids(item_ids: Tensor, ids: Tensor | Sequence[int]) -> Tensor:
    """Compact ids of original item ids.

    Args:
        item_ids (LongTensor [num_items + 1]): the original id of every compact
            id, increasing from entry 1 on (entry 0 is padding).
        ids: original item ids.

    Raises:
        ValueError: an id is not in the catalogue; the message names it.
    """
    ids = torch.as_tensor(ids, dtype=torch.long, device=item_ids.device)
    table = item_ids[1:]
    pos = torch.searchsorted(table, ids).clamp(max=table.numel() - 1)
    unknown = table[pos] != ids
    if bool(unknown.any()):
        raise ValueError(f"unknown item id(s) {ids[unknown].unique()[:10].tolist()}")
    return pos + 1


def prefix_augment(items: Tensor, session_ptr: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The standard prefix augmentation of the SR-GNN protocol, vectorised.

    For every session ``s`` of length ``n`` and ``i = 1 .. n-1`` (in that order,
    longest prefix first) the sample ``(s[:-i], s[-i])``.

    Returns:
        ``(clicks, lengths, targets, session)``: the concatenated prefixes,
        the length of each prefix, the targets, and the index of the session
        each sample comes from.
    """
    lengths = session_ptr.diff()
    per_session = (lengths - 1).clamp(min=0)
    session = torch.repeat_interleave(torch.arange(lengths.numel()), per_session)
    first_sample = _ptr(per_session)[:-1]
    i = torch.arange(session.numel()) - first_sample[session] + 1
    prefix_len = lengths[session] - i
    start = session_ptr[:-1][session]
    targets = items[start + prefix_len]
    pos = torch.arange(int(prefix_len.sum())) + torch.repeat_interleave(
        start - _ptr(prefix_len)[:-1], prefix_len
    )
    return items[pos], prefix_len, targets, session


class SessionDataset(Dataset):
    r"""Session graphs of a whole split, built once and stored flat.

    Each sample is a :class:`SessionData`: an input session (for benchmarks, a
    prefix of a full session) with its next-item target ``y``. Item ids are
    *compact* (``1 .. num_items``, 0 = padding); :meth:`decode` maps them back
    to the ids of the source files.

    Use :meth:`batch` (or :class:`graphrec.data.SessionLoader`) for fast
    batches: it gathers the pieces of many sessions with a few vectorised
    index operations and returns the same :class:`SessionBatch` as
    :func:`graphrec.data.collate` on ``[dataset[i] for i in indices]``.

    Args:
        graphs (GraphArrays): the flat graph storage.
        y (LongTensor [S]): the targets.
        num_items (int): the number of real items (ids ``1 .. num_items``).
        item_ids (LongTensor [num_items + 1], optional): original id of each
            compact id (entry 0 is 0). Identity when omitted.
        sessions (tuple, optional): ``(items, ptr)``, the full sessions the
            samples come from (compact ids), for multi-target evaluation and
            popularity statistics.
        sample_session (LongTensor [S], optional): the session of each sample.
        user (LongTensor [S], optional): the user of each sample.
        item_category (LongTensor [num_items + 1], optional): category per item.
        name (str): a label for messages and reports. (default: ``"sessions"``)
    """

    def __init__(
        self,
        graphs: GraphArrays,
        y: Tensor,
        num_items: int,
        item_ids: Tensor | None = None,
        sessions: tuple[Tensor, Tensor] | None = None,
        sample_session: Tensor | None = None,
        user: Tensor | None = None,
        item_category: Tensor | None = None,
        name: str = "sessions",
    ) -> None:
        if y.numel() != len(graphs):
            raise ValueError(f"{y.numel()} targets for {len(graphs)} session graphs")
        self.graphs = graphs
        self.y = y
        self.num_items = int(num_items)
        self.item_ids = torch.arange(num_items + 1) if item_ids is None else item_ids
        if self.item_ids.numel() != num_items + 1 or bool((self.item_ids[1:].diff() <= 0).any()):
            raise ValueError("item_ids must hold num_items + 1 increasing original ids")
        self.sessions = sessions
        self.sample_session = sample_session
        self.user = user
        self.item_category = item_category
        self.name = name

    # -- construction --------------------------------------------------------
    @classmethod
    def from_sessions(
        cls,
        items: Tensor,
        session_ptr: Tensor,
        num_items: int,
        weighting: str = "binary",
        max_length: int | None = None,
        session_user: Tensor | None = None,
        **kwargs: Any,
    ) -> SessionDataset:
        """Prefix-augment full sessions (compact ids) and build their graphs.

        Args:
            items (LongTensor [T]): the clicks of all sessions, concatenated.
            session_ptr (LongTensor [S + 1]): session boundaries in ``items``.
            num_items (int): the number of real items.
            weighting (str): edge weighting, see :func:`session_graph`.
            max_length (int, optional): keep only the most recent
                ``max_length`` clicks of each input prefix (the target is
                unchanged). ``None`` keeps whole prefixes.
            session_user (LongTensor [S], optional): the user of each session.
            **kwargs: passed to the constructor (``item_ids``,
                ``item_category``, ``name``).
        """
        clicks, lengths, targets, session = prefix_augment(items, session_ptr)
        if max_length is not None:
            if max_length < 1:
                raise ValueError(f"max_length must be >= 1, got {max_length}")
            keep_len = lengths.clamp(max=max_length)
            sample_of_click = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
            within = torch.arange(clicks.numel()) - _ptr(lengths)[:-1][sample_of_click]
            clicks = clicks[within >= (lengths - keep_len)[sample_of_click]]
            lengths = keep_len
        graphs = build_session_graphs(clicks, lengths, weighting)
        user = None if session_user is None else session_user[session]
        return cls(
            graphs,
            targets,
            num_items,
            sessions=(items, session_ptr),
            sample_session=session,
            user=user,
            **kwargs,
        )

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.y.numel()

    def __getitem__(self, idx: int) -> SessionData:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} out of range for {n} samples")
        idx %= n
        g = self.graphs
        ns, ne = int(g.node_ptr[idx]), int(g.node_ptr[idx + 1])
        cs, ce = int(g.click_ptr[idx]), int(g.click_ptr[idx + 1])
        es, ee = int(g.edge_ptr[idx]), int(g.edge_ptr[idx + 1])
        data = SessionData(
            x=g.x[ns:ne],
            edge_index=g.edge_index[:, es:ee],
            edge_weight_in=g.edge_weight_in[es:ee],
            edge_weight_out=g.edge_weight_out[es:ee],
            alias=g.alias[cs:ce],
            y=self.y[idx : idx + 1],
        )
        if self.user is not None:
            data.user = self.user[idx : idx + 1]
        if self.item_category is not None:
            data.category = self.item_category[data.x]
        return data

    def batch(self, indices: Sequence[int] | Tensor) -> SessionBatch:
        """The :class:`SessionBatch` of the samples ``indices`` (vectorised)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        g = self.graphs
        node_pos, node_counts = _segments(g.node_ptr, index)
        click_pos, click_counts = _segments(g.click_ptr, index)
        edge_pos, edge_counts = _segments(g.edge_ptr, index)
        x = g.x[node_pos]
        return assemble_batch(
            x=x,
            alias=g.alias[click_pos],
            edge_index=g.edge_index[:, edge_pos],
            edge_weight_in=g.edge_weight_in[edge_pos],
            edge_weight_out=g.edge_weight_out[edge_pos],
            node_counts=node_counts,
            click_counts=click_counts,
            edge_counts=edge_counts,
            y=self.y[index],
            user=None if self.user is None else self.user[index],
            category=None if self.item_category is None else self.item_category[x],
        )

    # -- items ----------------------------------------------------------------
    def decode(self, ids: Tensor | Sequence[int]) -> Tensor:
        """Map compact item ids (``1 .. num_items``) back to the original ids."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.numel() and (int(ids.min()) < 1 or int(ids.max()) > self.num_items):
            raise ValueError(f"compact item ids must lie in 1..{self.num_items}")
        return self.item_ids[ids]

    def encode(self, ids: Tensor | Sequence[int]) -> Tensor:
        """Map original item ids to compact ids (see :func:`encode_item_ids`)."""
        return encode_item_ids(self.item_ids, ids)

    def item_counts(self) -> Tensor:
        """FloatTensor [num_items + 1]: click count of every item in the full sessions."""
        items = self.sessions[0] if self.sessions is not None else self.graphs.x
        return torch.bincount(items, minlength=self.num_items + 1).float()

    @property
    def num_clicks(self) -> int:
        return self.graphs.alias.numel()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, samples={len(self)}, num_items={self.num_items})"
        )

    # -- persistence ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        state["num_items"] = self.num_items
        for f in fields(GraphArrays):
            state[f"graphs.{f.name}"] = getattr(self.graphs, f.name)
        for key in ("y", "item_ids", "sample_session", "user", "item_category"):
            state[key] = getattr(self, key)
        if self.sessions is not None:
            state["sessions.items"], state["sessions.ptr"] = self.sessions
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SessionDataset:
        if state.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"processed dataset has format {state.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}; delete it to rebuild"
            )
        graphs = GraphArrays(**{f.name: state[f"graphs.{f.name}"] for f in fields(GraphArrays)})
        sessions = None
        if state.get("sessions.items") is not None:
            sessions = (state["sessions.items"], state["sessions.ptr"])
        return cls(
            graphs,
            state["y"],
            state["num_items"],
            item_ids=state["item_ids"],
            sessions=sessions,
            sample_session=state["sample_session"],
            user=state["user"],
            item_category=state["item_category"],
            name=state["name"],
        )

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> SessionDataset:
        return cls.from_state_dict(torch.load(path, weights_only=True))


class SessionLoader:
    """Iterates a :class:`SessionDataset` in batches of :class:`SessionBatch`.

    Batches are gathered in the main process with vectorised indexing (tens of
    thousands of samples per second), so no worker processes are needed.

    Args:
        dataset (SessionDataset): the samples.
        batch_size (int): samples per batch. (default: ``100``)
        shuffle (bool): draw a new permutation every epoch. (default: ``False``)
        seed (int): seed of the permutation generator. (default: ``0``)
        drop_last (bool): drop a last incomplete batch. (default: ``False``)

    The permutation of epoch ``e`` depends only on ``seed`` and ``e``
    (:meth:`set_epoch`), and :meth:`iter_from` starts mid-epoch, so training
    resumed from a checkpoint sees exactly the batches it would have seen.
    """

    def __init__(
        self,
        dataset: SessionDataset,
        batch_size: int = 100,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> Tensor:
        n = len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=gen)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def iter_from(self, start_batch: int = 0):
        order = self.order()
        for b in range(start_batch, len(self)):
            yield self.dataset.batch(order[b * self.batch_size : (b + 1) * self.batch_size])

    def __iter__(self):
        return self.iter_from(0)


def sessions_from_lists(sessions: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Flatten a list of sessions into ``(items, ptr)`` tensors."""
    lengths = torch.tensor([len(s) for s in sessions], dtype=torch.long)
    flat = np.fromiter((int(i) for s in sessions for i in s), dtype=np.int64)
    return torch.from_numpy(flat), _ptr(lengths)
