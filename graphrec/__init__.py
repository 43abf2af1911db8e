"""graphrec: graph-native session-based and sequential recommendation on PyG."""

from graphrec import data, datasets, evaluation, models, nn
from graphrec.models import (
    SDM,
    SRGNN,
    STAMP,
    AttRec,
    Popularity,
    RetrievalRecommender,
    SessionPopularity,
    SessionRecommender,
)

__version__ = "0.1.0"

__all__ = [
    "SDM",
    "SRGNN",
    "STAMP",
    "AttRec",
    "Popularity",
    "RetrievalRecommender",
    "SessionPopularity",
    "SessionRecommender",
    "__version__",
    "data",
    "datasets",
    "evaluation",
    "models",
    "nn",
]
