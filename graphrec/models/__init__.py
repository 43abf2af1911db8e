"""The session-based and sequential recommenders."""

from graphrec.models.attrec import AttRec
from graphrec.models.base import RetrievalRecommender, SessionRecommender, similarity
from graphrec.models.dien import DIEN
from graphrec.models.din import DIN
from graphrec.models.knn import STAN, VSKNN, VSTAN, SessionKNN
from graphrec.models.popularity import Popularity, SessionPopularity
from graphrec.models.ranking import RankingRecommender, behaviour_sequence
from graphrec.models.registry import (
    MODELS,
    RECIPES,
    TRAINING_DEFAULTS,
    Recipe,
    build_model,
    model_arguments,
    model_name,
    model_names,
    training_defaults,
)
from graphrec.models.sdm import SDM
from graphrec.models.srgnn import SRGNN
from graphrec.models.stamp import STAMP
from graphrec.models.two_stage import TwoStage

__all__ = [
    "DIEN",
    "DIN",
    "MODELS",
    "RECIPES",
    "SDM",
    "SRGNN",
    "STAMP",
    "STAN",
    "TRAINING_DEFAULTS",
    "VSKNN",
    "VSTAN",
    "AttRec",
    "Popularity",
    "RankingRecommender",
    "Recipe",
    "RetrievalRecommender",
    "SessionKNN",
    "SessionPopularity",
    "SessionRecommender",
    "TwoStage",
    "behaviour_sequence",
    "build_model",
    "model_arguments",
    "model_name",
    "model_names",
    "similarity",
    "training_defaults",
]
