"""End-to-end accuracy on the real data (slow: a few minutes; run with -m slow)."""

import pytest
import torch

from graphrec import SRGNN
from graphrec.datasets import load_benchmark
from graphrec.evaluation import evaluate
from graphrec.training import Trainer


@pytest.mark.slow
def test_one_epoch_on_diginetica(shared_data, tmp_path):
    def load(split):
        return load_benchmark("diginetica", root=shared_data, split=split, cache=False)

    train, valid, test = load("train"), load("valid"), load("test")
    torch.manual_seed(0)
    model = SRGNN(train.num_items)
    result = Trainer(model, train, valid, epochs=1, run_dir=tmp_path, progress=False).fit()
    assert result.best_epoch == 1
    metrics = evaluate(model, test)
    # one epoch of the paper's schedule already gets most of the way to 50.7 / 17.6
    assert metrics["HR@20"] > 0.40
    assert metrics["MRR@20"] > 0.12
