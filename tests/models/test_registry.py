"""What every registered model shares: the registry, batch invariance, recommend."""

import warnings

import pytest
import torch

from graphrec.datasets import synthetic
from graphrec.evaluation import evaluate
from graphrec.models import (
    MODELS,
    RECIPES,
    SDM,
    SRGNN,
    TRAINING_DEFAULTS,
    build_model,
    model_name,
    model_names,
    training_defaults,
)
from graphrec.training import Trainer, load_model


@pytest.fixture(scope="module")
def data():
    return synthetic(num_sessions=300, num_items=120, num_users=20, num_categories=5,
                     history_length=6)  # fmt: skip


def small(name, data):
    torch.manual_seed(0)
    kwargs = {"hidden_channels": 8}
    if name == "sdm":
        kwargs["num_heads"] = 2
    return build_model(name, dataset=data, **kwargs).eval()


def test_build_model_fills_what_the_data_gives(data):
    sdm = build_model("sdm", dataset=data, hidden_channels=8)
    assert isinstance(sdm, SDM) and sdm.num_users == 20 and sdm.num_categories == 5
    assert torch.equal(sdm.item_category, data.item_category)
    assert torch.equal(sdm.item_ids, data.item_ids)
    assert build_model("attrec", dataset=data).num_users == 20
    assert model_name(sdm) == "sdm"
    with pytest.raises(ValueError, match="stamp takes no argument"):
        build_model("stamp", num_items=5, num_users=3)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("gru4rec", num_items=5)


def test_recipes_are_a_model_with_named_arguments(data):
    assert model_names() == [*MODELS, *RECIPES]
    plus = build_model("srgnn-niser-plus", dataset=data, hidden_channels=8)
    assert isinstance(plus, SRGNN) and plus.normalize and plus.position and plus.dropout == 0.1
    assert model_name(plus) == "srgnn"  # a checkpoint records the model and its whole config
    # arguments given come on top of the recipe's
    assert build_model("srgnn-niser", dataset=data, scale=16.0).scale == 16.0
    assert not build_model("srgnn-niser-repeat", dataset=data, normalize=False).normalize
    for name, recipe in RECIPES.items():
        model = build_model(name, dataset=data, hidden_channels=8)
        config = model.config()
        assert {k: config[k] for k in recipe.arguments} == recipe.arguments, name
        assert recipe.label and recipe.papers, name
        assert training_defaults(name) == TRAINING_DEFAULTS[recipe.model]
    with pytest.raises(ValueError, match="srgnn-niser-repeat"):  # the error lists the recipes
        build_model("srgnn-nisr", num_items=5)
    with pytest.raises(ValueError, match="srgnn-niser takes no argument"):
        build_model("srgnn-niser", num_items=5, num_users=3)


@pytest.mark.parametrize("name", [*sorted(MODELS), *RECIPES])
def test_batch_invariance(name, data):
    """A session's scores alone equal its scores inside a batch of other sessions."""
    model = small(name, data)
    index = torch.tensor([7, 150, 3, 42, 99, 260, 11])
    together = model.score(data.batch(index))
    for row, i in enumerate(index.tolist()):
        alone = model.score(data.batch([i]))
        assert (alone[0, 1:] - together[row, 1:]).abs().max() <= 1e-5, (name, i)


@pytest.mark.parametrize("name", [*sorted(MODELS), *RECIPES])
def test_trains_and_round_trips_a_checkpoint(name, data, tmp_path):
    model = small(name, data)
    before = evaluate(model, data, ks=(10,))
    trainer = Trainer(model, data, None, epochs=2, batch_size=64, progress=False,
                      run_dir=tmp_path, ks=(10,), monitor="HR@10")  # fmt: skip
    trainer.fit()
    after = evaluate(model, data, ks=(10,))
    assert after["HR@10"] > before["HR@10"]
    back = load_model(tmp_path / "best.pt")
    assert type(back) is type(model)
    assert evaluate(back, data, ks=(10,)) == after


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_with_users_and_histories(name, data):
    model = small(name, data)
    ids = data.item_ids
    sessions = [[int(ids[3]), int(ids[5])], [int(ids[9])]]
    ignored = []  # what the model does not read is ignored, with a warning naming it
    if not getattr(model, "num_users", 0):
        ignored.append("was trained without users: users are ignored")
    if not model.reads_history:
        ignored.append("reads no long-term history: histories are ignored")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        top, scores = model.recommend(
            sessions, k=5, users=[2, 0], histories=[[int(ids[1])], []], return_scores=True
        )
    assert sorted(str(w.message).split(" ", 1)[1] for w in caught) == sorted(ignored)
    assert all(w.filename == __file__ for w in caught)  # the caller's line, not torch's
    assert top.shape == (2, 5) and (scores[:, :-1] >= scores[:, 1:]).all()
    batch = data.batch([0]).__class__  # the one batch type
    assert batch.__name__ == "SessionDataBatch"
    with pytest.raises(ValueError, match="1 users for 2 sessions"):
        model.recommend(sessions, k=5, users=[1])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_evaluate_equals_the_score_path(name, data):
    """evaluate() computes item vectors once; the result equals score() block by block."""
    from graphrec.evaluation import Evaluator

    model = small(name, data)
    evaluator = Evaluator((5, 10), num_items=model.num_items)
    for start in range(0, len(data), 100):
        batch = data.batch(torch.arange(start, min(start + 100, len(data))))
        evaluator.update(model.score(batch), batch.y)
    assert evaluate(model, data, ks=(5, 10)) == pytest.approx(evaluator.compute(), abs=1e-9)
