import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from graphrec import SRGNN
from graphrec.datasets import synthetic
from graphrec.training import Trainer, TrainingInterrupted, load_checkpoint, load_model
from graphrec.training.signals import StopNow, StopOnSignal

KW = dict(num_sessions=300, num_items=80, num_users=20, num_categories=4)


@pytest.fixture(scope="module")
def data():
    return synthetic(**KW), synthetic(**KW, split="valid")


def make_trainer(data, run_dir, **kwargs):
    torch.manual_seed(0)
    model = SRGNN(data[0].num_items, hidden_channels=8)
    kwargs.setdefault("epochs", 3)
    return Trainer(
        model, data[0], data[1], batch_size=32, lr=0.01, lr_step=2, run_dir=run_dir,
        progress=False, **kwargs,
    )  # fmt: skip


def weights(path):
    return load_model(path).state_dict()


def test_guard_records_the_first_signal_and_stops_at_once_on_the_second():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        assert set(stop.installed) == {"SIGINT", "SIGTERM"}
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.received == signal.SIGTERM
        with pytest.raises(StopNow, match="SIGINT received twice"):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_guard_leaves_ignored_and_foreign_handlers_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    own = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with StopOnSignal() as stop:
            assert stop.installed == []
            os.kill(os.getpid(), signal.SIGTERM)
            assert not stop.requested() and seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, own)


def test_guard_off_the_main_thread_and_disabled_installs_nothing():
    found = []
    thread = threading.Thread(target=lambda: found.append(StopOnSignal().__enter__().installed))
    thread.start()
    thread.join()
    assert found == [[]]
    with StopOnSignal(enabled=False) as stop:
        assert stop.installed == []


def test_sigterm_inside_the_optimizer_step_finishes_the_step_and_resumes_exactly(data, tmp_path):
    """The signal lands in the middle of ``optimizer.step()``: Python's own Ctrl-C
    handling would raise there, with some parameters updated and others not."""
    make_trainer(data, tmp_path / "ref").fit()
    trainer = make_trainer(data, tmp_path / "run")
    steps_per_epoch = len(trainer.loader)
    original, calls = trainer.optimizer.step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:  # the third step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    trainer.optimizer.step = step
    with pytest.raises(TrainingInterrupted) as caught:
        trainer.fit()
    assert caught.value.signum == signal.SIGTERM and caught.value.exit_code == 143
    assert "epoch 2/3, after step 3" in str(caught.value)
    assert calls["n"] == steps_per_epoch + 3  # no step after the signal
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved["epoch"] == 1 and saved["step_in_epoch"] == 3  # the whole step is in it
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    make_trainer(data, tmp_path / "run").fit(resume=True)
    reference = weights(tmp_path / "ref" / "last.pt")
    final = weights(tmp_path / "run" / "last.pt")
    for key, value in reference.items():
        assert torch.equal(final[key], value), key


def test_signal_during_the_last_validation_keeps_the_finished_run(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=2)
    original, calls = trainer._end_epoch, {"n": 0}

    def end_epoch(stats):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(stats)

    trainer._end_epoch = end_epoch
    with pytest.raises(TrainingInterrupted, match="SIGINT received"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    result = make_trainer(data, tmp_path, epochs=2).fit(resume=True)  # nothing left to train
    assert [r["epoch"] for r in result.history] == [1, 2] and result.best_epoch is not None


def test_second_signal_stops_at_once_and_keeps_the_last_checkpoint(data, tmp_path):
    trainer = make_trainer(data, tmp_path)
    steps_per_epoch = len(trainer.loader)
    original, calls = trainer._train_step, {"n": 0}

    def step(batch):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # raises here, inside the step
        return original(batch)

    trainer._train_step = step
    with pytest.raises(StopNow):
        trainer.fit()
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["epoch"] == 1 and saved["step_in_epoch"] == 0  # epoch 1's checkpoint


def test_graphrec_train_stopped_by_sigterm_resumes(tmp_path):
    """A real process and a real ``kill``: exit status 143, the message, the resume."""
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-c", "import sys; from graphrec.cli import main; sys.exit(main())",
            "train", "--dataset", "synthetic", "--epochs", "3", "--max-steps", "40",
            "--hidden", "8", "--run-dir", str(run_dir), "--no-progress",
            "--threads", "1"]  # fmt: skip
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    log = run_dir / "metrics.jsonl"
    while not (log.is_file() and log.read_text().strip()) and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before the signal could be sent"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "graphrec train: SIGTERM received: stopped in epoch 2/3, after step" in err
    assert "progress saved; continue with:" in err and "--resume" in err
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1  # in epoch 2, at a step boundary
    done = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    epochs = [json.loads(x)["epoch"] for x in log.read_text().splitlines()]
    assert epochs == [1, 2, 3]
