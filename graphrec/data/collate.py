"""The one collate function shared by all graphrec models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from graphrec.data.graph import _ptr
from graphrec.data.session_data import PRECOLLATED_KEY, SessionBatch, SessionData


def assemble_batch(
    x: Tensor,
    alias: Tensor,
    edge_index: Tensor,
    edge_weight_in: Tensor,
    edge_weight_out: Tensor,
    node_counts: Tensor,
    click_counts: Tensor,
    edge_counts: Tensor,
    y: Tensor | None = None,
    user: Tensor | None = None,
    category: Tensor | None = None,
    history: Tensor | None = None,
    history_length: Tensor | None = None,
    history_category: Tensor | None = None,
    context: dict[str, Tensor] | None = None,
) -> SessionBatch:
    """Build a :class:`SessionBatch` from already concatenated session pieces.

    ``alias`` and ``edge_index`` hold node indices *local* to each session;
    they are offset here. The result equals ``Batch.from_data_list`` on the
    same sessions, bookkeeping included (``get_example``, ``to_data_list``
    work), at a fraction of the cost. ``history`` (item ids, concatenated)
    comes with ``history_length`` per session, and ``history_category`` only
    with ``history``.
    """
    if (history is None) != (history_length is None):
        raise ValueError("history and history_length come together")
    if history_category is not None and history is None:
        raise ValueError("history_category needs history")
    node_ptr = _ptr(node_counts)
    node_inc = node_ptr[:-1]
    return store_batch(
        x=x,
        alias=alias + torch.repeat_interleave(node_inc, click_counts),
        edge_index=edge_index + torch.repeat_interleave(node_inc, edge_counts),
        edge_weight_in=edge_weight_in,
        edge_weight_out=edge_weight_out,
        node_ptr=node_ptr,
        click_ptr=_ptr(click_counts),
        edge_ptr=_ptr(edge_counts),
        node_batch=torch.repeat_interleave(torch.arange(node_counts.numel()), node_counts),
        y=y,
        user=user,
        category=category,
        history=history,
        history_length=history_length,
        history_category=history_category,
        context=context,
    )


def store_batch(
    x: Tensor,
    alias: Tensor,
    edge_index: Tensor,
    edge_weight_in: Tensor,
    edge_weight_out: Tensor,
    node_ptr: Tensor,
    click_ptr: Tensor,
    edge_ptr: Tensor,
    node_batch: Tensor,
    y: Tensor | None = None,
    user: Tensor | None = None,
    category: Tensor | None = None,
    history: Tensor | None = None,
    history_length: Tensor | None = None,
    history_category: Tensor | None = None,
    context: dict[str, Tensor] | None = None,
) -> SessionBatch:
    """The :class:`SessionBatch` of pieces already offset (what :func:`assemble_batch`
    computes): ``alias`` and ``edge_index`` index the batch's nodes, the
    ``*_ptr`` [B + 1] bound each session's pieces and ``node_batch`` [N] maps
    nodes to sessions. ``context`` (``{field: [B]}``) is stored as
    ``context_<field>``. Only stores them, with PyG's bookkeeping."""
    num_sessions = node_ptr.numel() - 1
    # what SessionBatch(_base_cls=SessionBatch) makes, without PyG's metaclass
    # reading SessionData's signature with ``inspect`` on every call
    batch = type.__call__(SessionBatch)
    zeros = torch.zeros(num_sessions, dtype=torch.long)
    session_ptr = torch.arange(num_sessions + 1)
    node_inc = node_ptr[:-1]
    slices = {
        "x": node_ptr,
        "edge_index": edge_ptr,
        "edge_weight_in": edge_ptr,
        "edge_weight_out": edge_ptr,
        "alias": click_ptr,
    }
    incs = {"x": zeros, "edge_index": node_inc, "edge_weight_in": zeros}
    incs.update({"edge_weight_out": zeros, "alias": node_inc})
    # the tensors go straight into the store (what ``batch.x = x`` does, for
    # tensors, behind two layers of PyG's attribute checks: ~3 us each)
    store = {"x": x, "edge_index": edge_index}
    store.update(edge_weight_in=edge_weight_in, edge_weight_out=edge_weight_out, alias=alias)
    for key, value, ptr in (("y", y, session_ptr), ("user", user, session_ptr)):
        if value is not None:
            store[key] = value
            slices[key], incs[key] = ptr, zeros
    for key, value in (context or {}).items():
        store[CONTEXT_PREFIX + key] = value
        slices[CONTEXT_PREFIX + key], incs[CONTEXT_PREFIX + key] = session_ptr, zeros
    if category is not None:
        store["category"] = category
        slices["category"], incs["category"] = node_ptr, zeros
    if history is not None:
        history_ptr = _ptr(history_length)
        store["history"], store["history_length"] = history, history_length
        slices["history"], incs["history"] = history_ptr, zeros
        slices["history_length"], incs["history_length"] = session_ptr, zeros
        if history_category is not None:
            store["history_category"] = history_category
            slices["history_category"], incs["history_category"] = history_ptr, zeros
    store["batch"], store["ptr"] = node_batch, node_ptr
    batch._store._mapping.update(store)
    batch._num_graphs = num_sessions
    batch._slice_dict = slices
    batch._inc_dict = incs
    return batch


OPTIONAL_KEYS = ("y", "user", "category", "history", "history_length", "history_category")
#: a sample's context field ``f`` (the hour of its request, ...) is its ``context_f`` [1]
CONTEXT_PREFIX = "context_"


def collate(data_list: Sequence[SessionData]) -> SessionBatch:
    """Batch session graphs: the one collate function of graphrec.

    Equivalent to ``torch_geometric.data.Batch.from_data_list`` (and so to
    what ``torch_geometric.loader.DataLoader`` yields), and usable as a
    ``collate_fn`` of a plain ``torch.utils.data.DataLoader`` (which hands
    it the batch a :class:`SessionDataset` fetches already collated, see
    :meth:`SessionDataset.fetch_collated`).

    Raises:
        ValueError: on an empty list, or when the sessions do not all carry
            the same optional attributes (``y``, ``user``, ``category``,
            ``history``, ``history_length``, ``history_category``, the
            ``context_*`` fields).
    """
    if len(data_list) == 0:
        raise ValueError("collate() needs at least one session")
    if len(data_list) == 1 and PRECOLLATED_KEY in data_list[0]:
        return data_list[0][PRECOLLATED_KEY].batch  # SessionDataset.fetch_collated
    # the attribute dicts themselves: Data.__getattr__ costs microseconds per call
    fields = [d._store._mapping for d in data_list]
    optional = {}
    for key in OPTIONAL_KEYS:
        present = [key in f for f in fields]
        if any(present) and not all(present):
            missing = present.index(False)
            raise ValueError(f"collate(): session {missing} has no '{key}' while others have one")
        if present[0]:
            optional[key] = torch.cat([f[key] for f in fields])
    context_keys = [k for k in fields[0] if k.startswith(CONTEXT_PREFIX)]
    for n, f in enumerate(fields):
        keys = [k for k in f if k.startswith(CONTEXT_PREFIX)]
        if sorted(keys) != sorted(context_keys):
            raise ValueError(
                f"collate(): session {n} has context fields {sorted(keys)}, session 0 "
                f"{sorted(context_keys)}"
            )
    if context_keys:
        optional["context"] = {
            k[len(CONTEXT_PREFIX) :]: torch.cat([f[k].view(-1) for f in fields])
            for k in context_keys
        }
    return assemble_batch(
        x=torch.cat([f["x"] for f in fields]),
        alias=torch.cat([f["alias"] for f in fields]),
        edge_index=torch.cat([f["edge_index"] for f in fields], dim=1),
        edge_weight_in=torch.cat([f["edge_weight_in"] for f in fields]),
        edge_weight_out=torch.cat([f["edge_weight_out"] for f in fields]),
        node_counts=torch.tensor([f["x"].numel() for f in fields]),
        click_counts=torch.tensor([f["alias"].numel() for f in fields]),
        edge_counts=torch.tensor([f["edge_index"].size(1) for f in fields]),
        **optional,
    )
