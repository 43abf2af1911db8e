"""The session-based and sequential recommenders."""

from graphrec.models.attrec import AttRec
from graphrec.models.base import RetrievalRecommender, SessionRecommender, similarity
from graphrec.models.popularity import Popularity, SessionPopularity
from graphrec.models.registry import (
    MODELS,
    TRAINING_DEFAULTS,
    build_model,
    model_arguments,
    model_name,
)
from graphrec.models.sdm import SDM
from graphrec.models.srgnn import SRGNN
from graphrec.models.stamp import STAMP

__all__ = [
    "MODELS",
    "SDM",
    "SRGNN",
    "STAMP",
    "TRAINING_DEFAULTS",
    "AttRec",
    "Popularity",
    "RetrievalRecommender",
    "SessionPopularity",
    "SessionRecommender",
    "build_model",
    "model_arguments",
    "model_name",
    "similarity",
]
