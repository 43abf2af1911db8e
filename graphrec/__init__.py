"""graphrec: graph-native session-based and sequential recommendation on PyG."""

from graphrec import data, datasets, models, nn
from graphrec.models import SRGNN, RetrievalRecommender, SessionRecommender

__version__ = "0.1.0"

__all__ = [
    "SRGNN",
    "RetrievalRecommender",
    "SessionRecommender",
    "__version__",
    "data",
    "datasets",
    "models",
    "nn",
]
