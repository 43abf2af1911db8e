"""The session-based and sequential recommenders."""

from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.models.srgnn import SRGNN

__all__ = ["SRGNN", "RetrievalRecommender", "SessionRecommender"]
