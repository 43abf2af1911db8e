"""Session graphs, the one collate function and flat session datasets."""

from graphrec.data.collate import assemble_batch, collate
from graphrec.data.dataset import (
    SessionDataset,
    SessionLoader,
    encode_item_ids,
    prefix_augment,
    prefix_samples,
    sessions_from_lists,
)
from graphrec.data.graph import (
    GraphArrays,
    build_session_graphs,
    dense_adjacency,
    session_graph,
    validate_session,
)
from graphrec.data.session_data import SessionBatch, SessionData

__all__ = [
    "GraphArrays",
    "SessionBatch",
    "SessionData",
    "SessionDataset",
    "SessionLoader",
    "assemble_batch",
    "build_session_graphs",
    "collate",
    "dense_adjacency",
    "encode_item_ids",
    "prefix_augment",
    "prefix_samples",
    "session_graph",
    "sessions_from_lists",
    "validate_session",
]
