"""The one model registry shared by the CLI, the trainer and checkpoints."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from graphrec.checks import warn_caller
from graphrec.data.dataset import field_sizes
from graphrec.models.attrec import AttRec
from graphrec.models.base import SessionRecommender
from graphrec.models.dien import DIEN
from graphrec.models.din import DIN
from graphrec.models.ranking import RankingRecommender
from graphrec.models.sdm import SDM
from graphrec.models.srgnn import SRGNN
from graphrec.models.stamp import STAMP

MODELS: dict[str, type[SessionRecommender]] = {
    "srgnn": SRGNN,
    "stamp": STAMP,
    "attrec": AttRec,
    "sdm": SDM,
    "din": DIN,
    "dien": DIEN,
}

#: Each model's training defaults (``graphrec train`` uses them unless a flag
#: overrides one): the hyper-parameters of its paper, or of its authors' code
#: where the paper gives none. ``lr_gamma = 1`` means no learning-rate decay.
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    # SR-GNN paper / reference code
    "srgnn": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-5, "batch_size": 100,
              "lr_step": 3, "lr_gamma": 0.1, "clip_grad_norm": None},
    # STAMP authors' code (config/nn_param.conf, stamp_cikm): Adam 0.003, batch 512,
    # 10 epochs, no decay, no L2
    "stamp": {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0, "batch_size": 512,
              "lr_step": 3, "lr_gamma": 1.0, "clip_grad_norm": None, "epochs": 10},
    # AttRec authors' code: Adagrad 0.05, batch 1000
    "attrec": {"optimizer": "adagrad", "lr": 0.05, "weight_decay": 0.0, "batch_size": 1000,
               "lr_step": 3, "lr_gamma": 1.0, "clip_grad_norm": None},
    # SDM: Adam 1e-3 (the paper names no schedule); graphrec decays like SR-GNN
    "sdm": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 100,
            "lr_step": 3, "lr_gamma": 0.1, "clip_grad_norm": None},
    # DIN/DIEN: the DIEN authors' code (Adam 1e-3, batch 128; the DIN paper's SGD with
    # lr 1 is not offered); selected on the sampled-candidate AUC of validation
    "din": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 128,
            "lr_step": 3, "lr_gamma": 1.0, "clip_grad_norm": None, "epochs": 10,
            "monitor": "AUC (100 neg.)"},
    "dien": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 128,
             "lr_step": 3, "lr_gamma": 1.0, "clip_grad_norm": None, "epochs": 10,
             "monitor": "AUC (100 neg.)"},
}  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """A named configuration: a registered model with some constructor arguments.

    Args:
        model (str): the registered model (:data:`MODELS`).
        arguments (dict): its constructor arguments; arguments given to
            :func:`build_model` (or ``--model-arg``) come on top.
        label (str): the name shown in tables.
        papers (str): where each element comes from.
    """

    model: str
    arguments: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    papers: str = ""


#: The named configurations: ``graphrec train --model srgnn-niser-repeat``,
#: ``graphrec benchmark --models srgnn,srgnn-niser-repeat`` and
#: ``build_model("srgnn-niser-repeat", data)`` take them like the models. A
#: checkpoint records the model and its whole configuration, not the recipe.
#: The models under their own names stay their papers' variants.
RECIPES: dict[str, Recipe] = {
    "srgnn-niser": Recipe(
        "srgnn", {"normalize": True}, "SRGNN + NISER",
        "SR-GNN (Wu et al., AAAI 2019) with NISER's unit item and session vectors and "
        "scaled cosine scores (Gupta et al., 2019)",
    ),
    "srgnn-niser-plus": Recipe(
        "srgnn", {"normalize": True, "position": True, "dropout": 0.1}, "SRGNN + NISER+",
        "NISER+ (Gupta et al., 2019): NISER with position embeddings in the readout and "
        "dropout 0.1 on the input item embeddings",
    ),
    "srgnn-repeat": Recipe(
        "srgnn", {"repeat": True}, "SRGNN + repeat",
        "SR-GNN with RepeatNet's repeat-explore mixture (Ren et al., AAAI 2019)",
    ),
    "srgnn-niser-repeat": Recipe(
        "srgnn", {"normalize": True, "repeat": True}, "SRGNN + NISER + repeat",
        "NISER's normalised SR-GNN (Gupta et al., 2019) as the explore part of RepeatNet's "
        "mixture (Ren et al., AAAI 2019); the best graphrec configuration on Diginetica",
    ),
    "srgnn-niser-plus-repeat": Recipe(
        "srgnn", {"normalize": True, "position": True, "dropout": 0.1, "repeat": True},
        "SRGNN + NISER+ + repeat",
        "NISER+ (Gupta et al., 2019) as the explore part of RepeatNet's mixture "
        "(Ren et al., AAAI 2019)",
    ),
}  # fmt: skip


def model_names() -> list[str]:
    """Every name :func:`build_model` takes: the models, then the recipes."""
    return [*MODELS, *RECIPES]


def resolve(name: str) -> tuple[str, dict[str, Any]]:
    """``(model, arguments)`` of a registry name: a model with none, or a recipe's.

    Raises:
        ValueError: a name that is neither a model nor a recipe.
    """
    if name in MODELS:
        return name, {}
    if name in RECIPES:
        return RECIPES[name].model, dict(RECIPES[name].arguments)
    raise ValueError(
        f"unknown model {name!r}; choose a model ({', '.join(MODELS)}) "
        f"or a recipe ({', '.join(RECIPES)})"
    )


def model_class(name: str) -> type[SessionRecommender]:
    """The class a model or recipe name builds."""
    return MODELS[resolve(name)[0]]


def display_name(name: str) -> str:
    """A model's class name (``SRGNN``), a recipe's label, or ``name`` itself."""
    if name in MODELS:
        return MODELS[name].__name__
    if name in RECIPES:
        return RECIPES[name].label or name
    return name


def training_defaults(name: str) -> dict[str, Any]:
    """The training defaults of a model, or of a recipe's model."""
    return dict(TRAINING_DEFAULTS[resolve(name)[0]])


def model_arguments(name: str) -> dict[str, inspect.Parameter]:
    """The constructor arguments of a registered model (or a recipe's), by name."""
    params = inspect.signature(model_class(name).__init__).parameters
    return {k: p for k, p in params.items() if k != "self"}


def build_model(name: str, dataset: Any = None, **kwargs: Any) -> SessionRecommender:
    """Build a model by its registry name.

    Args:
        name (str): ``"srgnn"``, ``"stamp"``, ``"attrec"``, ``"sdm"``, ``"din"``
            or ``"dien"``, or a recipe of :data:`RECIPES` (``"srgnn-niser"``:
            its arguments, with ``kwargs`` on top).
        dataset (SessionDataset, optional): fills what the model takes from
            the data and ``kwargs`` does not give: ``num_items``,
            ``num_users``, ``num_categories``, the side fields
            (``item_fields``, ``user_fields``, ``context_fields``: every field
            of the data the model takes; see :func:`select_fields` to choose),
            and the item ids, item categories, field tables and, for rankers,
            training item counts the model keeps.
        **kwargs: constructor arguments.

    Raises:
        ValueError: an unknown model, or an argument the model does not take.
    """
    accepted = model_arguments(name)
    base, preset = resolve(name)
    kwargs = {**preset, **kwargs}
    unknown = set(kwargs) - set(accepted)
    if unknown:
        raise ValueError(
            f"{name} takes no argument(s) {sorted(unknown)}; it takes {sorted(accepted)}"
        )
    if dataset is not None:
        kwargs.setdefault("num_items", dataset.num_items)
        if "num_users" in accepted:
            kwargs.setdefault("num_users", dataset.num_users if dataset.user is not None else 0)
        if "num_categories" in accepted:
            category = dataset.item_category
            kwargs.setdefault("num_categories", 0 if category is None else int(category.max()))
        for key, group in FIELD_GROUPS.items():
            if key not in accepted:
                continue
            if key == "user_fields" and key not in kwargs and not kwargs.get("num_users"):
                continue  # profiles are looked up by user: a model without users has none
            available = getattr(dataset, group, None) or {}
            if group != "context_sizes":  # tables: their largest value
                empty = sorted(k for k, t in available.items() if not bool(t.any()))
                if empty and key not in kwargs:
                    warn_caller(f"{name}: {group} {empty} hold no value for any row: left out")
                available = field_sizes({k: t for k, t in available.items() if k not in empty})
            else:  # a context column of a log whose every value is empty has no value
                empty = sorted(k for k, n in available.items() if n < 1)
                if empty and key not in kwargs:
                    warn_caller(f"{name}: context fields {empty} have no value: left out")
                available = {k: n for k, n in available.items() if k not in empty}
            kwargs[key] = select_fields(kwargs.get(key, ...), available, key, name)
    model = MODELS[base](**kwargs)
    if dataset is not None:
        model.set_item_ids(dataset.item_ids)
        model.set_graph_weighting(dataset.weighting)
        model.set_labels(
            getattr(dataset, "item_labels", None),
            getattr(dataset, "user_labels", None),
            getattr(dataset, "context_labels", None),
        )
        if getattr(model, "item_category", None) is not None:
            model.set_item_category(dataset.item_category)
        if model.item_fields:
            model.set_item_features(dataset.item_features)
        if model.user_fields:
            model.set_user_features(dataset.user_features)
        if isinstance(model, RankingRecommender):
            model.set_item_counts(dataset.item_counts())
    return model


#: constructor argument -> the dataset attribute its fields come from
FIELD_GROUPS = {"item_fields": "item_features", "user_fields": "user_features",
                "context_fields": "context_sizes"}  # fmt: skip


def select_fields(value: Any, available: dict[str, int], key: str, model: str) -> dict[str, int]:
    """The fields a model is built with: every field of the data (``value``
    not given, ``...``), none (``None``, ``""``, ``"none"``), the named ones
    (a name or several: ``"genre"``, ``("genre", "year")``, what
    ``--model-arg item_fields=genre,year`` gives), or an explicit
    ``{name: largest value id}``.

    Raises:
        ValueError: a named field the data does not have.
    """
    if value is ...:
        return dict(available)
    if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
        return {}
    if isinstance(value, dict):
        return value
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"{model}: {key} takes field names (e.g. {key}=genre,year), none, or a dict; "
            f"got {value!r}"
        )
    unknown = [n for n in names if n not in available]
    if unknown:
        have = sorted(available) or "none"
        raise ValueError(f"{model}: {key} {unknown} not in the data (it has {have})")
    return {n: available[n] for n in names}


def model_name(model: SessionRecommender) -> str:
    """The registry name of a model instance."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model")
