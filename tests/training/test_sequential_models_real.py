"""End-to-end accuracy of the models on the real data (slow; run with -m slow)."""

import pytest
import torch

from graphrec.datasets import load_dataset
from graphrec.evaluation import evaluate
from graphrec.models import TRAINING_DEFAULTS, Popularity, build_model
from graphrec.training import Trainer


def fit(name, train, valid, epochs, **overrides):
    torch.manual_seed(0)
    model = build_model(name, dataset=train)
    hp = {**TRAINING_DEFAULTS[name], "epochs": epochs, **overrides}
    Trainer(model, train, valid, progress=False, monitor="NDCG@10", **hp).fit()
    return model


@pytest.mark.slow
def test_stamp_one_epoch_on_diginetica(shared_data):
    def load(split):
        return load_dataset("diginetica", split, root=shared_data, cache=False)

    model = fit("stamp", load("train"), None, 1)
    metrics = evaluate(model, load("test"), ks=(20,))
    # measured: validation HR@20 32.2 after one epoch; the paper reaches 45.6 / 14.3 on test
    assert metrics["HR@20"] > 0.30 and metrics["MRR@20"] > 0.09


@pytest.mark.slow
@pytest.mark.parametrize(("name", "window"), [("sdm", {"max_length": 10, "history_length": 50})])
def test_beats_popularity_on_amazon_games(shared_data, name, window):
    if not (shared_data / "amazon-games" / "Video.txt").is_file():
        pytest.skip("amazon-games not present")
    train, valid, test = (
        load_dataset("amazon-games", s, root=shared_data, **window)
        for s in ("train", "valid", "test")
    )
    model = fit(name, train, valid, 2)
    ours = evaluate(model, test, ks=(10,), negatives=100)
    pop = evaluate(Popularity(train.item_counts()), test, ks=(10,), negatives=100)
    assert ours["NDCG@10"] > 2 * pop["NDCG@10"]
    assert ours["HR@10 (100 neg.)"] > pop["HR@10 (100 neg.)"]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "epochs"), [("din", 1), ("dien", 3)])
def test_rankers_beat_popularity_auc_on_amazon_games(shared_data, name, epochs):
    if not (shared_data / "amazon-games" / "Video.txt").is_file():
        pytest.skip("amazon-games not present")
    train, test = (load_dataset("amazon-games", s, root=shared_data) for s in ("train", "test"))
    torch.manual_seed(0)
    model = build_model(name, dataset=train, num_users=0)
    hp = {k: v for k, v in TRAINING_DEFAULTS[name].items() if k != "monitor"}
    Trainer(model, train, None, progress=False, **{**hp, "epochs": epochs}).fit()
    ours = evaluate(model, test, ks=(10,), negatives=100, full_ranking=False)
    pop = evaluate(Popularity(train.item_counts()), test, ks=(10,), negatives=100)
    # measured on test: POP AUC 76.5; DIN beats it by 2 points after one epoch; DIEN
    # needs more (76.3 after one epoch, which this test once asked for and never met;
    # AUC 85.6 / GAUC 84.5 after three)
    assert ours["AUC (100 neg.)"] > pop["AUC (100 neg.)"] + 0.02
    assert ours["GAUC (100 neg.)"] > pop["GAUC (100 neg.)"]
