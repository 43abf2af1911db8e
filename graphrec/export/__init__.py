"""Exported models: ONNX graphs, item table, faiss index, manifest (``graphrec export``)."""

from graphrec.export.onnx import ExportError, export_model, probe_sessions
from graphrec.export.padded import PaddedBatch
from graphrec.export.runtime import ExportedRecommender, ExportLoadError

__all__ = [
    "ExportError",
    "ExportLoadError",
    "ExportedRecommender",
    "PaddedBatch",
    "export_model",
    "probe_sessions",
]
