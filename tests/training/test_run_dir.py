"""Run directories: a finished run is never overwritten by accident, two trainings
never share one, and a resumed run's log holds every epoch once."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from graphrec import SRGNN
from graphrec.cli import main
from graphrec.datasets import synthetic
from graphrec.training import Trainer, load_model
from graphrec.training.run_dir import RunDirectoryError, RunLock, describe_run, prepare_run_dir

KW = dict(num_sessions=200, num_items=60, num_categories=4)


@pytest.fixture(scope="module")
def data():
    return synthetic(**KW), synthetic(**KW, split="valid")


def trainer(data, run_dir, **kwargs):
    torch.manual_seed(0)
    model = SRGNN(data[0].num_items, hidden_channels=8)
    model.set_item_ids(data[0].item_ids)
    kwargs.setdefault("epochs", 2)
    return Trainer(model, data[0], data[1], batch_size=32, run_dir=run_dir, progress=False,
                   verbose=False, **kwargs)  # fmt: skip


def test_a_finished_run_is_refused_then_replaced_only_on_request(data, tmp_path):
    trainer(data, tmp_path).fit()
    best = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(RunDirectoryError, match="already holds a run") as err:
        trainer(data, tmp_path).fit()
    assert "best.pt" in str(err.value) and "--overwrite" in str(err.value)
    assert (tmp_path / "best.pt").read_bytes() == best  # untouched
    (tmp_path / "notes.txt").write_text("mine")
    trainer(data, tmp_path, epochs=1, overwrite=True).fit()
    records = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 1  # the new run's log alone, not appended to the old one
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only graphrec's files go


def test_resume_needs_a_checkpoint_and_excludes_overwrite(tmp_path):
    with pytest.raises(RunDirectoryError, match="nothing to resume"):
        prepare_run_dir(tmp_path, resume=True)
    with pytest.raises(RunDirectoryError, match="exclude each other"):
        prepare_run_dir(tmp_path, resume=True, overwrite=True)
    assert describe_run(tmp_path) is None
    (tmp_path / "config.json").write_text("{}")  # a run stopped before any checkpoint
    assert describe_run(tmp_path) is None and prepare_run_dir(tmp_path) == tmp_path


def test_unusable_paths_are_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirectoryError, match="a file of that name exists"):
        prepare_run_dir(blocker)
    with pytest.raises(RunDirectoryError, match="a part of the path is a file"):
        prepare_run_dir(blocker / "run")


def test_resumed_log_holds_each_epoch_once(data, tmp_path):
    """An epoch logged after the last checkpoint (a crash between the two) is
    not logged twice when the run resumes."""
    reference = trainer(data, tmp_path / "ref").fit()
    run = trainer(data, tmp_path / "run", epochs=1)
    run.fit()
    log = tmp_path / "run" / "metrics.jsonl"
    # the crash: epoch 2 logged, its checkpoint never written
    first = json.loads(log.read_text())
    log.write_text(log.read_text() + json.dumps({**first, "epoch": 2}) + "\n")
    result = trainer(data, tmp_path / "run").fit(resume=True)
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [1, 2]
    assert result.best_metrics == pytest.approx(reference.best_metrics)


def test_a_run_stopped_early_stays_stopped_when_resumed(data, tmp_path):
    done = trainer(data, tmp_path, epochs=6, patience=1, lr=1e-6).fit()
    assert done.stopped_early
    epochs = len((tmp_path / "metrics.jsonl").read_text().splitlines())
    again = trainer(data, tmp_path, epochs=6, patience=1, lr=1e-6).fit(resume=True)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == epochs
    assert again.best_epoch == done.best_epoch


def test_lock_refuses_a_second_process(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from graphrec.training.run_dir import RunLock
        with RunLock({str(tmp_path)!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryError, match=r"in use by another training \(pid"):
            with RunLock(tmp_path):
                pass
    finally:
        holder.communicate("\n", timeout=30)
    with RunLock(tmp_path), RunLock(tmp_path):  # released; re-entrant within a process
        pass


def test_cli_refuses_before_reading_data_and_overwrites_on_request(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic", "--epochs", "1", "--max-steps", "3",
            "--hidden", "8", "--no-progress", "--run-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "already holds a run" in captured.err and "synthetic:" not in captured.out
    assert main([*argv, "--overwrite"]) == 0
    assert main([*argv, "--resume", "--overwrite"]) == 2
    assert "pass one" in capsys.readouterr().err


def test_demo_replaces_its_own_default_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--epochs", "1", "--max-steps", "2", "--hidden", "8", "--no-progress"]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "replacing the previous demo run in runs/srgnn-synthetic/" in capsys.readouterr().out
    assert load_model(tmp_path / "runs" / "srgnn-synthetic" / "best.pt").num_items == 3000
    # a --run-dir of one's own is protected as for train
    assert main([*argv, "--run-dir", "runs/srgnn-synthetic"]) == 2


def test_a_run_of_an_older_graphrec_resumes_only_with_its_own_configuration(data, tmp_path):
    """A checkpoint written before some constructor arguments existed lacks them;
    their defaults compute what the older model did, so it resumes. A real
    difference of configuration is still refused."""
    from graphrec.training.checkpoint import load_checkpoint, save_checkpoint

    trainer(data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    for key in ("position", "max_position", "dropout", "item_fields"):  # added since
        del state["model_config"][key]
    save_checkpoint(tmp_path / "last.pt", state)
    resumed = trainer(data, tmp_path, epochs=2).fit(resume=True)
    assert len(resumed.history) == 2
    state = load_checkpoint(tmp_path / "last.pt")
    state["model_config"]["hidden_channels"] = 9
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(ValueError, match="this trainer has srgnn"):
        trainer(data, tmp_path, epochs=3).fit(resume=True)
    state["model_config"] = {**state["model_config"], "hidden_channels": 8, "spin": 1}
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(ValueError, match="this trainer has srgnn"):
        trainer(data, tmp_path, epochs=3).fit(resume=True)
