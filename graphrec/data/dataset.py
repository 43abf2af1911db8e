"""Session datasets: sessions stored once, samples as cuts of them, graphs built per batch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from graphrec.data.collate import store_batch
from graphrec.data.graph import WEIGHTINGS, _cumsum0, _ptr, graph_pieces
from graphrec.data.session_data import Precollated, SessionBatch, SessionData
from graphrec.nn.field_embedding import is_field_name
from graphrec.serialization import safe_torch_load

FORMAT_VERSION = 4


def _positions(starts: Tensor, counts: Tensor) -> Tensor:
    """Positions ``starts[i] .. starts[i] + counts[i] - 1`` of every segment, concatenated."""
    out_ptr = _ptr(counts)
    return torch.arange(int(out_ptr[-1])) + torch.repeat_interleave(starts - out_ptr[:-1], counts)


def _segments(ptr: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Positions of the segments ``index`` of a flat array split by ``ptr``."""
    starts = ptr[index]
    counts = ptr[index + 1] - starts
    return _positions(starts, counts), counts


def user_streams(
    session_ptr: Tensor, session_user: Tensor | None, num_users: int | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Lay a click log out as one stream per user, sessions in time order.

    Args:
        session_ptr (LongTensor [S + 1]): session boundaries of the log (time order).
        session_user (LongTensor [S], optional): the user of every session;
            without it every session is a stream of its own.
        num_users (int, optional): the largest user id (default: the largest seen).

    Returns:
        ``(order, click_pos, floor, user_ptr)``: ``items[order]`` is the stream
        (``order`` indexes the log's clicks), ``click_pos`` [T] the stream
        position of every click of the log, ``floor`` [S] the stream position
        where each session's user begins, and ``user_ptr`` [num_users + 2]
        the boundaries of each user id's clicks in the stream (``None``
        without users).
    """
    num_sessions = session_ptr.numel() - 1
    lengths = session_ptr.diff()
    if session_user is None:
        session_order = torch.arange(num_sessions)
    else:
        session_order = torch.argsort(session_user, stable=True)
    order, counts = _segments(session_ptr, session_order)
    click_pos = torch.empty_like(order)
    click_pos[order] = torch.arange(order.numel())
    stream_start = torch.empty(num_sessions, dtype=torch.long)
    stream_start[session_order] = _ptr(counts)[:-1]
    if session_user is None:
        return order, click_pos, stream_start, None
    top = int(session_user.max()) if num_sessions else 0
    num_users = top if num_users is None else num_users
    if top > num_users:
        raise ValueError(f"user id {top} exceeds num_users={num_users}")
    user_counts = torch.zeros(num_users + 1, dtype=torch.long).index_add_(0, session_user, lengths)
    user_ptr = _ptr(user_counts)
    return order, click_pos, user_ptr[session_user], user_ptr


def integer_ids(ids: Tensor | Sequence[Any], what: str = "item id") -> Tensor:
    """``ids`` as a LongTensor, refusing anything that is not an integer.

    Integral floats (``17.0``, as JSON or pandas may give them) are accepted;
    ``3.7``, text, booleans and NaN are errors naming the first offender.
    """
    if isinstance(ids, Tensor):
        values = ids
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"{what}s must be integers, got a {values.dtype} tensor")
        if values.is_floating_point():
            bad = ~torch.isfinite(values) | (values != values.round())
            if bool(bad.any()):
                raise ValueError(f"{what} {values[bad][0].item()!r} is not an integer")
        return values.long()
    values = list(ids)
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, numbers.Real)):
            raise ValueError(f"{what} {v!r} is not an integer")
        if not isinstance(v, numbers.Integral) and not (math.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{what} {v!r} is not an integer")
    try:
        return torch.tensor([int(v) for v in values], dtype=torch.long)
    except (OverflowError, RuntimeError):
        raise ValueError(f"an {what} does not fit in 64 bits") from None


def encode_item_ids(item_ids: Tensor, ids: Tensor | Sequence[int]) -> Tensor:
    """Compact ids of original item ids.

    Args:
        item_ids (LongTensor [num_items + 1]): the original id of every compact
            id, increasing from entry 1 on (entry 0 is padding).
        ids: original item ids.

    Raises:
        ValueError: an id is not an integer (``3.7``, ``"17"``, ``True``: never
            truncated or guessed), or is not in the catalogue; the message names it.
    """
    ids = integer_ids(ids).to(item_ids.device)
    table = item_ids[1:]
    pos = torch.searchsorted(table, ids).clamp(max=table.numel() - 1)
    unknown = table[pos] != ids
    if bool(unknown.any()):
        raise ValueError(f"unknown item id(s) {ids[unknown].unique()[:10].tolist()}")
    return pos + 1


def prefix_samples(session_ptr: Tensor) -> tuple[Tensor, Tensor]:
    """``(prefix_length, session)`` of every sample of the prefix augmentation
    (see :func:`prefix_augment`), without gathering any click: memory linear
    in the number of samples, whatever the sessions' lengths."""
    lengths = session_ptr.diff()
    per_session = (lengths - 1).clamp(min=0)
    session = torch.repeat_interleave(torch.arange(lengths.numel()), per_session)
    first_sample = _ptr(per_session)[:-1]
    i = torch.arange(session.numel()) - first_sample[session] + 1
    return lengths[session] - i, session


def prefix_augment(items: Tensor, session_ptr: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The standard prefix augmentation of the SR-GNN protocol, vectorised.

    For every session ``s`` of length ``n`` and ``i = 1 .. n-1`` (in that order,
    longest prefix first) the sample ``(s[:-i], s[-i])``.

    Returns:
        ``(clicks, lengths, targets, session)``: the concatenated prefixes,
        the length of each prefix, the targets, and the index of the session
        each sample comes from.
    """
    prefix_len, session = prefix_samples(session_ptr)
    start = session_ptr[:-1][session]
    targets = items[start + prefix_len]
    pos = torch.arange(int(prefix_len.sum())) + torch.repeat_interleave(
        start - _ptr(prefix_len)[:-1], prefix_len
    )
    return items[pos], prefix_len, targets, session


def _index_tensor(index: slice | Sequence[int] | Tensor, n: int) -> Tensor:
    """``index`` (a slice, indices or a boolean mask over ``n`` samples) as
    non-negative LongTensor indices, checked."""
    if isinstance(index, slice):
        return torch.arange(n)[index]
    index = torch.as_tensor(index)
    if index.dtype == torch.bool:
        if index.shape != (n,):
            raise IndexError(f"a boolean mask needs {n} entries, got {tuple(index.shape)}")
        return index.nonzero().view(-1)
    if index.is_floating_point() and index.numel():
        raise TypeError("indices must be integers")
    index = index.long().view(-1)
    if index.numel() and (int(index.min()) < -n or int(index.max()) >= n):
        raise IndexError(f"an index is out of range for {n} samples")
    return index % max(n, 1)


class SessionDataset(Dataset):
    r"""The samples of a split, stored as cuts of sessions kept once.

    A sample is a pair (session, cut): its input is the session's clicks
    before the cut (the last ``max_length`` of them with a window), its
    next-item target ``y`` the click at the cut. Only the sessions' clicks and,
    per sample, its session, its cut and its target are stored, so memory grows
    linearly with the clicks, not with the sum of the prefixes' lengths. Item ids are *compact*
    (``1 .. num_items``, 0 = padding); :meth:`decode` maps them back to the
    ids of the source files.

    The session graphs (SR-GNN's normalised in/out adjacency) are built when
    a batch is drawn: :meth:`batch` (what :class:`graphrec.data.SessionLoader`
    and PyG's ``DataLoader`` call) gathers the inputs of many samples and builds
    their graphs at once with a few vectorised numpy operations
    (:func:`graphrec.data.graph.graph_pieces`). The result is the same
    :class:`SessionBatch` as :func:`graphrec.data.collate` on
    ``[dataset[i] for i in indices]``.

    Args:
        sessions (tuple): ``(items, ptr)``: session ``s`` is
            ``items[ptr[s] : ptr[s + 1]]`` (compact ids, click order).
        sample_session (LongTensor [S]): the session of each sample.
        target_position (LongTensor [S]): where each sample's cut lies in its
            session (0-based position of the target; the prefix length, >= 1).
        num_items (int): the number of real items (ids ``1 .. num_items``).
        y (LongTensor [S], optional): the targets. By default the clicks at
            the cuts; given explicitly, a cut may lie at the end of its session
            (an input without a next click, such as a served request).
        max_length (int, optional): the short-term window: an input keeps the
            last ``max_length`` clicks before its cut. ``None`` keeps the whole
            prefix.
        weighting (str): edge weighting of the graphs, ``"binary"`` or
            ``"count"`` (see :func:`graphrec.data.session_graph`).
            (default: ``"binary"``)
        item_ids (LongTensor [num_items + 1], optional): original id of each
            compact id (entry 0 is 0). Identity when omitted.
        user (LongTensor [S], optional): the user of each sample (ids
            ``1 .. num_users``; 0 = unknown user).
        item_category (LongTensor [num_items + 1], optional): category per item.
        history (tuple, optional): ``(source, start, length)``: the long-term
            history of sample ``i`` is ``source[start[i] : start[i] + length[i]]``
            (item ids, oldest first; empty when ``length[i] == 0``).
        user_items (tuple, optional): ``(items, ptr)``: every interaction of
            user ``u`` is ``items[ptr[u] : ptr[u + 1]]`` (all splits, for
            sampled-negative evaluation: negatives are items a user never
            interacted with).
        num_users (int, optional): the largest user id (default: the largest
            in ``user``).
        item_features (dict, optional): ``{field: LongTensor [num_items + 1]
            or [num_items + 1, W]}``: side fields per item (a brand; or a
            multi-valued field such as genres, padded with 0), value ids
            ``1 ..``, 0 = unknown; row 0 (padding) all 0. Static per item: a
            model keeps them (see :class:`graphrec.nn.FieldEmbedding`).
        user_features (dict, optional): ``{field: LongTensor [num_users + 1]
            or [num_users + 1, W]}``: profile fields per user (age bucket,
            gender), 0 = unknown; row 0 (the unknown user) all 0.
        context (dict, optional): ``{field: LongTensor [S]}``: context fields
            per sample (the hour, the weekday of its target click), 0 =
            unknown; a batch carries them as ``context_<field>`` [B].
        context_sizes (dict, optional): ``{field: number of values}`` of the
            context fields (24 hours: values 1 .. 24), so that a model built
            from a split accepts the values another split may hold. (default:
            the largest value of each field in this split)
        name (str): a label for messages and reports. (default: ``"sessions"``)
        check (bool): check that every cut lies inside its session. Off only
            for cuts checked already: :meth:`load` and a processed file (whose
            bytes are checked against their checksums) skip it, so that
            opening a large dataset reads none of its per-sample arrays.
            (default: ``True``)

    The full sessions also serve multi-target evaluation, the session-rec
    protocol (the rest of each sample's session from its target on,
    :func:`~graphrec.evaluation.evaluate_session_rec`) and popularity counts.
    """

    def __init__(
        self,
        sessions: tuple[Tensor, Tensor],
        sample_session: Tensor,
        target_position: Tensor,
        num_items: int,
        y: Tensor | None = None,
        max_length: int | None = None,
        weighting: str = "binary",
        item_ids: Tensor | None = None,
        user: Tensor | None = None,
        item_category: Tensor | None = None,
        history: tuple[Tensor, Tensor, Tensor] | None = None,
        user_items: tuple[Tensor, Tensor] | None = None,
        num_users: int | None = None,
        name: str = "sessions",
        item_features: dict[str, Tensor] | None = None,
        user_features: dict[str, Tensor] | None = None,
        context: dict[str, Tensor] | None = None,
        context_sizes: dict[str, int] | None = None,
        *,
        check: bool = True,
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        items, ptr = sessions
        if sample_session.shape != target_position.shape or sample_session.dim() != 1:
            raise ValueError("sample_session and target_position need one entry per sample")
        num_sessions = ptr.numel() - 1
        if check and sample_session.numel():
            if int(sample_session.min()) < 0 or int(sample_session.max()) >= num_sessions:
                raise ValueError(f"a sample's session lies outside the {num_sessions} sessions")
            # a cut lies before the session's last click, or at its end when y is given
            last_cut = ptr[sample_session + 1] - ptr[sample_session] - (1 if y is None else 0)
            if int(target_position.min()) < 1 or bool((target_position > last_cut).any()):
                raise ValueError(
                    "every sample needs at least one click before its cut"
                    + (" and a next click" if y is None else " and its cut inside its session")
                )
        if y is None:
            y = items[ptr[sample_session] + target_position]
        elif y.shape != sample_session.shape:
            raise ValueError(f"{y.numel()} targets for {sample_session.numel()} samples")
        self.sessions = (items, ptr)
        self.sample_session = sample_session
        self.target_position = target_position
        self.y = y
        self.max_length = None if max_length is None else int(max_length)
        self.weighting = weighting
        self.num_items = int(num_items)
        self.item_ids = torch.arange(num_items + 1) if item_ids is None else item_ids
        if self.item_ids.numel() != num_items + 1 or bool((self.item_ids[1:].diff() <= 0).any()):
            raise ValueError("item_ids must hold num_items + 1 increasing original ids")
        self.user = user
        self.item_category = item_category
        if history is not None and (
            history[1].numel() != y.numel() or history[2].numel() != y.numel()
        ):
            raise ValueError("history start and length need one entry per sample")
        self.history = history
        self.user_items = user_items
        if num_users is None and user is not None and user.numel():
            num_users = int(user.max())
        self.num_users = int(num_users or 0)
        self.name = name
        self.item_features = _feature_tables(item_features, num_items, "item_features")
        self.user_features = _feature_tables(user_features, self.num_users, "user_features")
        self.context = _context(context, y.numel())
        #: ``{field: number of values}`` of every context field (value ids ``1 .. n``)
        self.context_sizes = {**field_sizes(self.context), **(context_sizes or {})}
        extra = set(self.context_sizes) - set(self.context)
        if extra:
            raise ValueError(f"context_sizes for field(s) {sorted(extra)} without context")
        for key, size in self.context_sizes.items():
            top = int(self.context[key].max()) if self.context[key].numel() else 0
            if top > size:
                raise ValueError(f"context[{key!r}] holds {top}, above its size {size}")
        #: the log's own ids when they are not integers (``[None, label of 1, ...]``);
        #: set by :func:`graphrec.datasets.load_click_log`
        self.item_labels: list | None = None
        #: the log's own user ids (``[None, label of user 1, ...]``), if known
        self.user_labels: list | None = None
        #: the log's own values of context fields (``{field: [None, value of 1, ...]}``),
        #: set by :func:`graphrec.datasets.load_click_log`; ``recommend`` takes them
        self.context_labels: dict[str, list] = {}

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
        history_length: int = 0,
        **kwargs: Any,
    ) -> SessionDataset:
        """Prefix-augment full sessions (compact ids).

        Every session ``s`` of length ``n`` gives the samples
        ``(s[:-i], s[-i])`` for ``i = 1 .. n-1``, longest prefix first (the
        SR-GNN protocol). See :meth:`from_prefixes` for the arguments.
        """
        lengths, session = prefix_samples(session_ptr)
        return cls.from_prefixes(
            items,
            session_ptr,
            session,
            lengths,
            num_items,
            weighting=weighting,
            max_length=max_length,
            session_user=session_user,
            history_length=history_length,
            **kwargs,
        )

    @classmethod
    def from_prefixes(
        cls,
        items: Tensor,
        session_ptr: Tensor,
        sample_session: Tensor,
        prefix_length: Tensor,
        num_items: int,
        weighting: str = "binary",
        max_length: int | None = None,
        session_user: Tensor | None = None,
        history_length: int = 0,
        sessions: tuple[Tensor, Tensor] | None = None,
        session_index: Tensor | None = None,
        **kwargs: Any,
    ) -> SessionDataset:
        """Samples ``(log[s][:p], log[s][p])`` of a click log.

        Args:
            items (LongTensor [T]): the clicks of the whole log (compact ids),
                sessions in time order.
            session_ptr (LongTensor [S + 1]): session boundaries in ``items``.
            sample_session (LongTensor [N]): the log session of every sample.
            prefix_length (LongTensor [N]): how many clicks of it the sample's
                input has; its target is the next click.
            num_items (int): the number of real items.
            weighting (str): edge weighting, see :func:`session_graph`.
            max_length (int, optional): the short-term window: keep only the
                most recent ``max_length`` clicks of each input (the target is
                unchanged). ``None`` keeps whole prefixes.
            session_user (LongTensor [S], optional): the user of each log
                session (``1 .. num_users``); samples get ``user``, and the
                dataset keeps every user's interactions (``user_items``).
            history_length (int): the long-term window: attach to every
                sample up to this many clicks that precede its input, taken
                from the user's stream (earlier sessions of the same user in
                time order, then the part of the current session cut off by
                ``max_length``) or, without users, from the clipped part of the
                session. ``0`` attaches no history. (default: ``0``)
            sessions (tuple, optional): ``(items, ptr)``: the split's own
                sessions, kept instead of the whole log: each begins like its
                log session and holds its samples' inputs and targets (default:
                the whole log).
            session_index (LongTensor [S], optional): with ``sessions``, the
                row of each log session in it (-1 where absent).
            **kwargs: passed to the constructor (``item_ids``,
                ``item_category``, ``num_users``, ``name``).
        """
        lengths = session_ptr.diff()
        if prefix_length.numel() and (
            int(prefix_length.min()) < 1 or bool((prefix_length >= lengths[sample_session]).any())
        ):
            raise ValueError("every prefix needs at least one click and a next click")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {history_length}")
        if (sessions is None) != (session_index is None):
            raise ValueError("sessions and session_index go together")
        rows = sample_session
        if session_index is not None:
            rows = session_index[sample_session]
            if rows.numel() and int(rows.min()) < 0:
                raise ValueError("a sample's session is not among the split's sessions")
        user = None if session_user is None else session_user[sample_session]
        history = user_items = None
        if history_length > 0 or session_user is not None:
            order, click_pos, floor, user_ptr = user_streams(
                session_ptr, session_user, kwargs.get("num_users")
            )
            stream = items[order]
            if user_ptr is not None:
                user_items = (stream, user_ptr)
            if history_length > 0:
                keep = prefix_length if max_length is None else prefix_length.clamp(max=max_length)
                window_pos = click_pos[session_ptr[:-1][sample_session] + prefix_length - keep]
                hist_start = torch.maximum(floor[sample_session], window_pos - history_length)
                history = (stream, hist_start, window_pos - hist_start)
        return cls(
            (items, session_ptr) if sessions is None else sessions,
            rows,
            prefix_length,
            num_items,
            max_length=max_length,
            weighting=weighting,
            user=user,
            history=history,
            user_items=user_items,
            **kwargs,
        )

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.y.numel()

    def __getitem__(self, idx: int | slice | Sequence[int] | Tensor) -> Any:
        """One sample (an integer index) as a :class:`SessionData`, or a subset
        (a slice, a list, an integer or boolean tensor) as a :class:`SessionDataset`
        (:meth:`subset`), as PyG datasets index."""
        if isinstance(idx, (slice, Sequence, Tensor, np.ndarray)) and not isinstance(idx, str):
            if isinstance(idx, Tensor) and idx.dim() == 0:
                return self[int(idx)]
            return self.subset(idx)
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
            raise TypeError(
                f"a dataset is indexed by an integer, a slice, a list or a tensor of "
                f"indices, got {type(idx).__name__}"
            )
        idx = int(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} out of range for {n} samples")
        one = self.batch([idx % n])  # a batch of one: its indices are the sample's own
        data = SessionData(
            x=one.x,
            edge_index=one.edge_index,
            edge_weight_in=one.edge_weight_in,
            edge_weight_out=one.edge_weight_out,
            alias=one.alias,
            y=one.y,
        )
        for key in ("user", "category", "history", "history_length", "history_category"):
            if key in one:
                data[key] = one[key]
        for key in self.context:
            data[f"context_{key}"] = one[f"context_{key}"]
        return data

    def subset(self, index: slice | Sequence[int] | Tensor) -> SessionDataset:
        """The samples ``index`` (a slice, indices, or a boolean mask) as a dataset
        of their own, in that order, sharing this one's sessions, catalogue and
        users (nothing but the per-sample entries is copied).
        ``dataset[10:20]`` and ``dataset[[3, 1]]`` call it."""
        index = _index_tensor(index, len(self))
        history = None
        if self.history is not None:
            history = (self.history[0], self.history[1][index], self.history[2][index])
        out = type(self)(
            self.sessions,
            self.sample_session[index],
            self.target_position[index],
            self.num_items,
            y=self.y[index],
            max_length=self.max_length,
            weighting=self.weighting,
            item_ids=self.item_ids,
            user=None if self.user is None else self.user[index],
            item_category=self.item_category,
            history=history,
            user_items=self.user_items,
            num_users=self.num_users,
            name=f"{self.name}[{index.numel()} samples]",
            item_features=self.item_features,
            user_features=self.user_features,
            context={k: v[index] for k, v in self.context.items()},
            context_sizes=self.context_sizes,
            check=False,  # cuts of this dataset's, checked already
        )
        out.item_labels, out.user_labels = self.item_labels, self.user_labels
        out.context_labels = self.context_labels
        return out

    #: fetch batches already collated in ``torch.utils.data`` loaders (see :meth:`fetch_collated`)
    precollate: bool = True

    @property
    def __getitems__(self):
        return self.fetch_collated if self.precollate else None

    def fetch_collated(self, indices: Sequence[int]) -> list[SessionData]:
        """What ``torch.utils.data`` fetches for a batch of ``indices``.

        ``torch.utils.data.DataLoader`` (under ``torch_geometric.loader.DataLoader``)
        calls ``dataset.__getitems__(indices)`` when a dataset has it. For a
        :class:`SessionDataset` that is this method (while :attr:`precollate`
        is true, the default): it builds :meth:`batch` of the indices at once
        and returns one placeholder sample carrying it
        (:class:`graphrec.data.session_data.Precollated`), which PyG's
        ``Batch.from_data_list`` and :func:`graphrec.data.collate` turn into
        that batch. The result is identical to collating ``dataset[i]`` one by
        one (tensors, ``ptr``, ``num_graphs``, ``to_data_list()``), an order of
        magnitude faster.

        A loader with its own ``collate_fn``, or PyG's ``follow_batch`` /
        ``exclude_keys`` options, needs the individual samples: set
        ``dataset.precollate = False``.
        """
        return [Precollated(self.batch(indices)).placeholder()]

    def windows(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start, length)`` in ``sessions[0]`` of the inputs of the samples
        ``index`` (a numpy int64 array)."""
        cut = self.target_position.numpy()[index]
        length = cut if self.max_length is None else np.minimum(cut, self.max_length)
        return self.sessions[1].numpy()[self.sample_session.numpy()[index]] + cut - length, length

    def batch(self, indices: Sequence[int] | Tensor) -> SessionBatch:
        """The :class:`SessionBatch` of the samples ``indices``, graphs built now.

        The index arithmetic and the graph construction run in numpy on views
        of the stored tensors (a few microseconds per operation where torch's
        dispatch takes tens); the result is torch tensors.
        """
        index = torch.as_tensor(indices, dtype=torch.long)
        start, length = self.windows(index.numpy())
        clicks_at = np.arange(int(length.sum())) + np.repeat(start - _cumsum0(length)[:-1], length)
        return batch_of_clicks(
            self.sessions[0].numpy()[clicks_at],
            length,
            self.weighting,
            y=self.y[index],
            user=None if self.user is None else self.user[index],
            item_category=self.item_category,
            history=None if self.history is None else self._histories(index),
            context={k: v[index] for k, v in self.context.items()},
        )

    def _histories(self, index: Tensor) -> tuple[Tensor, Tensor]:
        source, start, length = self.history
        length = length[index]
        return source[_positions(start[index], length)], length

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

    @property
    def lengths(self) -> Tensor:
        """LongTensor [S]: the clicks of each sample's input (after the window)."""
        if self.max_length is None:
            return self.target_position
        return self.target_position.clamp(max=self.max_length)

    @property
    def history_length(self) -> int:
        """The longest long-term history of a sample (0 without histories)."""
        if self.history is None or self.history[2].numel() == 0:
            return 0
        return int(self.history[2].max())

    def item_counts(self) -> Tensor:
        """FloatTensor [num_items + 1]: click count of every item in the full sessions."""
        return torch.bincount(self.sessions[0], minlength=self.num_items + 1).float()

    @property
    def num_clicks(self) -> int:
        """The clicks of all the samples' inputs together."""
        return int(self.lengths.sum())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, samples={len(self)}, num_items={self.num_items})"
        )

    # -- persistence ----------------------------------------------------------
    #: the tensors of :meth:`state_dict`, by key
    _TENSORS = (
        "y", "sample_session", "target_position", "item_ids", "user", "item_category",
    )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Everything the dataset holds, as flat tensors and plain values (what
        :meth:`save` writes and a processed cache holds)."""
        state: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        state.update(num_items=self.num_items, num_users=self.num_users)
        state.update(max_length=self.max_length, weighting=self.weighting)
        for key in self._TENSORS:
            state[key] = getattr(self, key)
        state["sessions.items"], state["sessions.ptr"] = self.sessions
        if self.history is not None:
            keys = ("history.source", "history.start", "history.length")
            state.update(zip(keys, self.history, strict=True))
        if self.user_items is not None:
            state["user_items.items"], state["user_items.ptr"] = self.user_items
        for group in ("item_features", "user_features", "context", "context_sizes"):
            for key, value in getattr(self, group).items():
                state[f"{group}.{key}"] = value
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SessionDataset:
        if state.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"processed dataset has format {state.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}; delete it to rebuild"
            )
        history = user_items = None
        if state.get("history.source") is not None:
            history = (state["history.source"], state["history.start"], state["history.length"])
        if state.get("user_items.items") is not None:
            user_items = (state["user_items.items"], state["user_items.ptr"])
        return cls(
            (state["sessions.items"], state["sessions.ptr"]),
            state["sample_session"],
            state["target_position"],
            state["num_items"],
            y=state["y"],
            max_length=state["max_length"],
            weighting=state["weighting"],
            item_ids=state["item_ids"],
            user=state["user"],
            item_category=state["item_category"],
            history=history,
            user_items=user_items,
            num_users=state["num_users"],
            name=state["name"],
            **{
                group: _group(state, group)
                for group in ("item_features", "user_features", "context", "context_sizes")
            },
            check=False,  # checked when built, and written by state_dict
        )

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> SessionDataset:
        """A dataset :meth:`save` wrote. With ``mmap`` (the default) its tensors
        map the file instead of being read: it opens in a fraction of a second
        whatever its size, and processes opening one file share its pages."""
        return cls.from_state_dict(safe_torch_load(path, mmap=mmap))


def _feature_tables(
    tables: dict[str, Tensor] | None, num_rows: int, what: str
) -> dict[str, Tensor]:
    """Checked ``{field: LongTensor [num_rows + 1, W]}`` (a 1-D table gets ``W = 1``)."""
    out: dict[str, Tensor] = {}
    for name, table in check_field_names(tables, what).items():
        table = torch.as_tensor(table)
        if table.is_floating_point() or table.dtype == torch.bool:
            raise ValueError(f"{what}[{name!r}]: value ids must be integers, got {table.dtype}")
        table = table.long()
        table = table.unsqueeze(1) if table.dim() == 1 else table
        if table.dim() != 2 or table.size(0) != num_rows + 1 or table.size(1) < 1:
            raise ValueError(
                f"{what}[{name!r}]: needs {num_rows + 1} rows (row 0 = padding / unknown), "
                f"got shape {tuple(table.shape)}"
            )
        if table.numel() and int(table.min()) < 0:
            raise ValueError(f"{what}[{name!r}]: value ids must be >= 0 (0 = unknown)")
        if bool(table[0].any()):
            raise ValueError(f"{what}[{name!r}]: row 0 (padding / unknown) must hold only 0")
        out[name] = table
    return out


def _context(context: dict[str, Tensor] | None, num_samples: int) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for name, values in check_field_names(context, "context").items():
        values = torch.as_tensor(values)
        if values.is_floating_point() or values.dtype == torch.bool:
            raise ValueError(f"context[{name!r}]: value ids must be integers, got {values.dtype}")
        if values.shape != (num_samples,):
            raise ValueError(
                f"context[{name!r}]: needs one value per sample ({num_samples}), "
                f"got shape {tuple(values.shape)}"
            )
        if values.numel() and int(values.min()) < 0:
            raise ValueError(f"context[{name!r}]: value ids must be >= 0 (0 = unknown)")
        out[name] = values.long()
    return out


def check_field_names(fields: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``fields`` (or ``{}``), refusing a name that is not an identifier."""
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise TypeError(
            f"{what} must be a dict of field name -> tensor, got {type(fields).__name__}"
        )
    for name in fields:
        if not is_field_name(name):
            raise ValueError(f"{what}: field name {name!r} is not an identifier")
    return dict(fields)


def _group(state: dict[str, Any], group: str) -> dict[str, Tensor]:
    prefix = f"{group}."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def field_sizes(tables: dict[str, Tensor]) -> dict[str, int]:
    """``{field: largest value id}`` (at least 1) of feature tables or contexts."""
    return {k: max(1, int(v.max()) if v.numel() else 0) for k, v in tables.items()}


def batch_of_clicks(
    clicks: np.ndarray,
    lengths: np.ndarray,
    weighting: str = "binary",
    y: Tensor | None = None,
    user: Tensor | None = None,
    item_category: Tensor | None = None,
    history: tuple[Tensor, Tensor] | None = None,
    context: dict[str, Tensor] | None = None,
) -> SessionBatch:
    """The :class:`SessionBatch` of click sequences given flat, graphs built now.

    Args:
        clicks (int64 array [T]): the sequences' clicks, concatenated.
        lengths (int64 array [B]): the clicks of each (>= 1).
        weighting (str): edge weighting of the graphs.
        y (LongTensor [B], optional): the targets.
        user (LongTensor [B], optional): the users.
        item_category (LongTensor [num_items + 1], optional): the category
            table; the batch gets its nodes' and histories' categories.
        history (tuple, optional): ``(items, length)``: the histories'
            items concatenated and the length of each ([B]).
        context (dict, optional): ``{field: LongTensor [B]}``, carried as
            ``context_<field>``.
    """
    g = graph_pieces(clicks, lengths, weighting)
    t = torch.from_numpy
    x = t(g["x"])
    extra: dict[str, Tensor] = {}
    if history is not None:
        extra["history"], extra["history_length"] = history
        if item_category is not None:
            extra["history_category"] = item_category[history[0]]
    return store_batch(
        x=x,
        alias=t(g["alias"]),
        edge_index=t(g["edge_index"]),
        edge_weight_in=t(g["edge_weight_in"]),
        edge_weight_out=t(g["edge_weight_out"]),
        node_ptr=t(g["node_ptr"]),
        click_ptr=t(g["click_ptr"]),
        edge_ptr=t(g["edge_ptr"]),
        node_batch=t(g["node_batch"]),
        y=y,
        user=user,
        category=None if item_category is None else item_category[x],
        context=context,
        **extra,
    )


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
        num_replicas (int): data-parallel processes sharing each batch.
            (default: ``1``)
        rank (int): this process's rank among them. (default: ``0``)

    The permutation of epoch ``e`` depends only on ``seed`` and ``e``
    (:meth:`set_epoch`), and :meth:`iter_from` starts mid-epoch, so training
    resumed from a checkpoint sees exactly the batches it would have seen.

    With ``num_replicas > 1``, ``batch_size`` stays the *global* batch: every
    process draws the same permutation and takes its contiguous slice of each
    batch (sizes differ by at most one), so the processes together consume
    exactly the batches of one process (:attr:`last_global_size` tells how
    many samples the current global batch holds). A last batch smaller than
    ``num_replicas`` is dropped: it would leave a process without samples.
    """

    def __init__(
        self,
        dataset: SessionDataset,
        batch_size: int = 100,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must lie in 0..{num_replicas - 1}, got {rank}")
        if batch_size < num_replicas:
            raise ValueError(
                f"batch_size {batch_size} is smaller than the {num_replicas} processes sharing it"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.last_global_size = 0
        #: the dataset indices of the batch last yielded (this process's share)
        self.last_index: Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> Tensor:
        n = len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=gen)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        # a last batch too small to give every process a sample is dropped
        return full + int(rest > 0 and not self.drop_last and rest >= self.num_replicas)

    def iter_from(self, start_batch: int = 0):
        order = self.order()
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            self.last_global_size = index.numel()
            if self.num_replicas > 1:
                index = index.tensor_split(self.num_replicas)[self.rank]
            self.last_index = index
            yield self.dataset.batch(index)

    def __iter__(self):
        return self.iter_from(0)


def sessions_from_lists(sessions: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Flatten a list of sessions into ``(items, ptr)`` tensors."""
    lengths = torch.tensor([len(s) for s in sessions], dtype=torch.long)
    flat = np.fromiter((int(i) for s in sessions for i in s), dtype=np.int64)
    return torch.from_numpy(flat), _ptr(lengths)
