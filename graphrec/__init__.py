"""graphrec: graph-native session-based and sequential recommendation on PyG."""

from graphrec import data, datasets, evaluation, models, nn
from graphrec.models import (
    DIEN,
    DIN,
    SDM,
    SRGNN,
    STAMP,
    AttRec,
    Popularity,
    RetrievalRecommender,
    SessionPopularity,
    SessionRecommender,
    TwoStage,
)

__version__ = "0.1.0"

__all__ = [
    "DIEN",
    "DIN",
    "SDM",
    "SRGNN",
    "STAMP",
    "AttRec",
    "Popularity",
    "RetrievalRecommender",
    "SessionPopularity",
    "SessionRecommender",
    "TwoStage",
    "__version__",
    "data",
    "datasets",
    "evaluation",
    "models",
    "nn",
]
