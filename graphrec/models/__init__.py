"""The session-based and sequential recommenders."""

from graphrec.models.base import RetrievalRecommender, SessionRecommender
from graphrec.models.popularity import Popularity, SessionPopularity
from graphrec.models.srgnn import SRGNN

MODELS = {"srgnn": SRGNN}


def build_model(name: str, **kwargs) -> SessionRecommender:
    """Build a model by its registry name (``"srgnn"``) from constructor arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def model_name(model: SessionRecommender) -> str:
    """The registry name of a model instance."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model")


__all__ = [
    "MODELS",
    "SRGNN",
    "Popularity",
    "RetrievalRecommender",
    "SessionPopularity",
    "SessionRecommender",
    "build_model",
    "model_name",
]
