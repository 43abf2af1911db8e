"""The session-based and sequential recommenders."""

from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.models.popularity import Popularity, SessionPopularity
from graphrec.models.srgnn import SRGNN

__all__ = ["SRGNN", "Popularity", "RetrievalRecommender", "SessionPopularity", "SessionRecommender"]
