import json

import pytest
import torch

from graphrec import SRGNN
from graphrec.datasets import synthetic
from graphrec.evaluation import evaluate
from graphrec.training import CheckpointError, Trainer, load_checkpoint, load_model

KW = dict(num_sessions=300, num_items=80, num_users=20, num_categories=4)


@pytest.fixture(scope="module")
def data():
    return synthetic(**KW), synthetic(**KW, split="valid"), synthetic(**KW, split="test")


def make_trainer(data, run_dir=None, **kwargs):
    torch.manual_seed(0)
    model = SRGNN(data[0].num_items, hidden_channels=8)
    kwargs.setdefault("epochs", 3)
    return Trainer(
        model, data[0], data[1], batch_size=32, lr=0.01, lr_step=2, run_dir=run_dir,
        progress=False, **kwargs,
    )  # fmt: skip


def test_fit_logs_and_checkpoints(data, tmp_path):
    trainer = make_trainer(data, tmp_path)
    result = trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[0]["lr"] == 0.01 and lines[2]["lr"] == pytest.approx(0.001)
    assert all("HR@20" in r["valid"] and r["samples_per_s"] > 0 for r in lines)
    assert result.best_epoch == max(lines, key=lambda r: r["valid"]["HR@20"])["epoch"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "srgnn" and config["hparams"]["batch_size"] == 32
    # the model ends with the selected weights, which best.pt holds too
    best = load_model(tmp_path / "best.pt")
    assert torch.equal(best.item_embedding.weight, trainer.model.item_embedding.weight)
    assert evaluate(best, data[1]) == pytest.approx(result.best_metrics)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 3 and last["step_in_epoch"] == 0


class Interrupt(Exception):
    pass


def test_interrupt_mid_epoch_and_resume_equals_uninterrupted(data, tmp_path):
    reference = make_trainer(data, tmp_path / "ref").fit()
    ref_weights = load_model(tmp_path / "ref" / "last.pt").state_dict()

    trainer = make_trainer(data, tmp_path / "run")
    steps_per_epoch = len(trainer.loader)
    calls = {"n": 0}
    original = trainer._train_step

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return original(batch)

    trainer._train_step = flaky
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved["epoch"] == 1 and saved["step_in_epoch"] == 2

    resumed = make_trainer(data, tmp_path / "run").fit(resume=True)
    # metrics.jsonl logs the whole epoch's mean loss, steps before the interrupt included
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = [
        json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in logged] == [1, 2, 3]
    assert [r["loss"] for r in logged] == pytest.approx([r["loss"] for r in expected], rel=1e-12)
    assert resumed.best_epoch == reference.best_epoch
    assert resumed.best_metrics == reference.best_metrics
    assert [r["valid"] for r in resumed.history] == [r["valid"] for r in reference.history]
    final = load_model(tmp_path / "run" / "last.pt").state_dict()
    for key, value in ref_weights.items():
        assert torch.equal(final[key], value), key


def test_crash_between_checkpoints_resumes_from_last_epoch(data, tmp_path):
    reference = make_trainer(data, tmp_path / "ref").fit()
    trainer = make_trainer(data, tmp_path / "run")
    original, calls = trainer._train_step, {"n": 0}

    def crash(batch):
        calls["n"] += 1
        if calls["n"] == 2 * len(trainer.loader) + 1:  # first step of epoch 3
            raise Interrupt("power cut")
        return original(batch)

    trainer._train_step = crash
    with pytest.raises(Interrupt):
        trainer.fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    resumed = make_trainer(data, tmp_path / "run").fit(resume=tmp_path / "run" / "last.pt")
    assert resumed.best_metrics == reference.best_metrics


def test_early_stopping(data):
    trainer = make_trainer(data, epochs=50, patience=1)
    trainer.optimizer.param_groups[0]["lr"] = 0.0  # nothing improves after epoch 1
    trainer.scheduler.base_lrs = [0.0]
    result = trainer.fit()
    assert result.stopped_early and result.best_epoch == 1 and len(result.history) == 2


class Hostile:
    """Stands for any object that would run code when unpickled."""


def test_bad_checkpoints(tmp_path, data):
    good = tmp_path / "good.pt"
    make_trainer(data, tmp_path, epochs=1).fit()
    good.write_bytes((tmp_path / "last.pt").read_bytes())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a graphrec checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(text)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "graphrec-checkpoint", "payload": Hostile()}, hostile)
    with pytest.raises(CheckpointError, match="refused") as err:
        load_checkpoint(hostile)
    assert "weights_only" not in str(err.value) and "Hostile" in str(err.value)
    state = load_checkpoint(good)
    state["model_config"] = {**state["model_config"], "hidden_channels": 5}
    mismatched = tmp_path / "mismatched.pt"
    torch.save(state, mismatched)
    with pytest.raises(CheckpointError, match="does not match its weights"):
        load_model(mismatched)
    other = Trainer(SRGNN(data[0].num_items, hidden_channels=4), data[0], progress=False)
    with pytest.raises(ValueError, match=r"good\.pt holds srgnn"):
        other.fit(resume=good)


def test_argument_errors(data):
    with pytest.raises(ValueError, match="monitor must be one of"):
        make_trainer(data, monitor="P@20")
    with pytest.raises(ValueError, match="items"):
        Trainer(SRGNN(5), data[0])


@pytest.mark.parametrize("name", ["din", "dien"])
def test_rankers_train_and_select_on_sampled_auc(data, tmp_path, name):
    from graphrec.models import build_model

    torch.manual_seed(0)
    model = build_model(name, dataset=data[0], hidden_channels=8, mlp_hidden=(16,))
    calls = []
    full_score = model.score

    def spy(batch, candidates=None):
        calls.append(candidates is None)
        return full_score(batch, candidates)

    model.score = spy
    trainer = Trainer(
        model, data[0], data[1], epochs=2, batch_size=32, lr=0.01, weight_decay=0.0,
        monitor="AUC (20 neg.)", negatives=20, run_dir=tmp_path, progress=False,
    )  # fmt: skip
    result = trainer.fit()
    assert not any(calls)  # validation never ranked the full catalogue
    valid = result.history[-1]["valid"]
    assert "AUC (20 neg.)" in valid and "GAUC (20 neg.)" in valid and "HR@20" not in valid
    assert result.history[-1]["loss"] < result.history[0]["loss"] + 0.5
    reloaded = load_model(tmp_path / "best.pt")
    assert type(reloaded) is type(model)
    del model.score
    got = evaluate(reloaded, data[2], negatives=20, full_ranking=False)
    assert got == pytest.approx(evaluate(model, data[2], negatives=20, full_ranking=False))


def test_valid_model_selects_a_ranker_on_the_pipeline(data):
    from graphrec.models import TwoStage, build_model

    torch.manual_seed(0)
    retriever = SRGNN(data[0].num_items, hidden_channels=8).eval()
    ranker = build_model("din", dataset=data[0], hidden_channels=8, mlp_hidden=(16,))
    pipeline = TwoStage(retriever, ranker, k=10)
    trainer = Trainer(
        ranker, data[0], data[1], epochs=1, batch_size=32, monitor="MRR@20",
        valid_model=pipeline, progress=False,
    )  # fmt: skip
    result = trainer.fit()
    assert result.best_metrics == pytest.approx(evaluate(pipeline, data[1]))


@pytest.mark.parametrize("reuse", [True, False])
def test_reuse_memory_switch(data, monkeypatch, reuse):
    import graphrec.training.trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "reuse_freed_memory", lambda: calls.append(1))
    make_trainer(data, reuse_memory=reuse)
    assert calls == ([1] if reuse else [])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be > 0"),  # would train by ascent
        ({"clip_grad_norm": 0}, "clip_grad_norm must be > 0"),  # would learn nothing
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr_gamma": 1.5}, "lr_gamma must be <= 1"),
        ({"max_steps_per_epoch": 0}, "max_steps_per_epoch must be >= 1"),
        ({"negatives": -5}, "negatives must be >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"device": "bogus"}, "not a torch device"),
    ],
)
def test_bad_settings_fail_before_any_work(data, kwargs, match):
    model = SRGNN(data[0].num_items, hidden_channels=4)
    with pytest.raises((ValueError, TypeError), match=match):
        Trainer(model, data[0], data[1], **kwargs)


def test_the_model_must_match_the_training_data(data):
    model = SRGNN(data[0].num_items + 1, hidden_channels=4)
    with pytest.raises(ValueError, match="the model has 81 items, synthetic/train has 80"):
        Trainer(model, data[0], data[1])


class NaNAfter(SRGNN):
    """An SR-GNN whose loss turns NaN at a given step."""

    def __init__(self, num_items: int, hidden_channels: int = 8) -> None:
        super().__init__(num_items, hidden_channels=hidden_channels)
        self.calls, self.bad_step = 0, 3

    def loss(self, batch):
        self.calls += 1
        loss = super().loss(batch)
        return loss * float("nan") if self.calls == self.bad_step else loss


def test_a_non_finite_loss_stops_training_before_it_reaches_the_weights(data, tmp_path):
    from graphrec.models import registry
    from graphrec.training.trainer import NonFiniteLossError

    torch.manual_seed(0)
    model = NaNAfter(data[0].num_items)
    registry.MODELS["nan-after"] = NaNAfter  # checkpoints need a registered model
    try:
        trainer = Trainer(model, data[0], data[1], batch_size=32, run_dir=tmp_path,
                          progress=False, verbose=False)  # fmt: skip
        with pytest.raises(NonFiniteLossError, match="the loss is nan in epoch 1, step 3") as err:
            trainer.fit()
    finally:
        del registry.MODELS["nan-after"]
    assert "training samples" in str(err.value) and "--lr" in str(err.value)
    indices = trainer.loader.last_index[:8].tolist()
    assert ", ".join(map(str, indices)) in str(err.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_weights_are_refused_on_load(data, tmp_path):
    make_trainer(data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "best.pt")
    state["model_state"]["item_embedding.weight"][3, 0] = float("nan")
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"non-finite value.*refusing to use it"):
        load_model(tmp_path / "broken.pt")
    model = load_model(tmp_path / "best.pt")
    with torch.no_grad():
        model.item_embedding.weight[3, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):  # and evaluate() refuses it too
        evaluate(model, data[2])


def test_epoch_lines_without_a_progress_bar(data, capsys):
    make_trainer(data, epochs=2).fit()  # progress=False: no bar, the lines stay
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 2 and "valid HR@20" in lines[0]


def test_threads_are_chosen_by_default(data, monkeypatch):
    import graphrec.training.trainer as trainer_module

    chosen = []
    monkeypatch.setattr(trainer_module, "configure_threads", lambda **kw: chosen.append(kw))
    make_trainer(data)
    assert chosen and chosen[0]["requested"] is None  # "auto", as the command line does
