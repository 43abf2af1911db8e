import itertools
import json

import pytest
import torch

from graphrec.benchmark import results_csv, results_markdown, run_benchmark, summarise


def record(seed, hr, seconds):
    return {"seed": seed, "metrics": {"HR@20": hr}, "best_epoch": 2, "epochs_run": 3,
            "train_seconds": seconds, "samples_per_s": 100.0 * seed + 50}  # fmt: skip


def test_summary_is_mean_and_sample_std():
    s = summarise([record(0, 0.2, 10.0), record(1, 0.4, 30.0), record(2, 0.3, 20.0)])
    assert s["runs"] == 3
    assert s["metrics"]["HR@20"]["mean"] == pytest.approx(0.3)
    assert s["metrics"]["HR@20"]["std"] == pytest.approx(0.1)  # sample std (n - 1)
    assert s["train_seconds"] == {"mean": pytest.approx(20.0), "std": pytest.approx(10.0)}
    one = summarise([record(0, 0.2, 10.0)])
    assert one["metrics"]["HR@20"]["std"] is None


def test_tables():
    result = {
        "columns": ["HR@20", "AUC (100 neg.)"],
        "summary": {
            "srgnn": summarise([record(0, 0.2, 10.0), record(1, 0.4, 30.0)]),
            "din": {"runs": 1, "metrics": {"AUC (100 neg.)": {"mean": 0.8, "std": None}},
                    "best_epoch": {"mean": 1.0, "std": None},
                    "epochs_run": {"mean": 1.0, "std": None},
                    "train_seconds": {"mean": 5.0, "std": None},
                    "samples_per_s": {"mean": 7.0, "std": None}},
            "POP": {"runs": 1, "metrics": {"HR@20": {"mean": 0.05, "std": None}}},
        },
    }  # fmt: skip
    md = results_markdown(result).splitlines()
    assert md[0].startswith("| model | seeds | HR@20 | AUC (100 neg.) |")
    assert md[2].startswith("| SRGNN | 2 | 30.00 ± 14.14 | – | 2.0 / 3.0 | 20 ± 14 |")
    assert md[3].startswith("| DIN | 1 | – | 80.00 | 1.0 / 1.0 | 5 | 7 |")
    assert md[4] == "| POP | – | 5.00 | – | – | – | – |"
    rows = results_csv(result).splitlines()
    assert rows[0].split(",")[:4] == ["model", "runs", "HR@20_mean", "HR@20_std"]
    assert rows[3].startswith("POP,1,0.05,,")


def test_report_only_reads_finished_runs(tmp_path, capsys):
    out = tmp_path / "bench"
    (out / "srgnn-s0").mkdir(parents=True)
    (out / "srgnn-s0" / "result.json").write_text(json.dumps(record(0, 0.25, 3.0)))
    result = run_benchmark(["srgnn", "stamp"], "synthetic", seeds=[0, 1], out_dir=out,
                           train=False, negatives=5, knn=False)  # fmt: skip
    assert [r["seed"] for r in result["runs"]["srgnn"]] == [0]
    assert "stamp" not in result["summary"]
    assert "stamp seed 1: not run yet" in capsys.readouterr().out
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        run_benchmark(["gru4rec"], "synthetic")


def test_an_interrupted_benchmark_continues_its_run_exactly(tmp_path, monkeypatch):
    """A run stopped mid-training is resumed from its last.pt (not refused as a finished
    run directory, not restarted) and ends with the uninterrupted run's metrics."""
    from graphrec.training import Trainer

    kwargs = dict(seeds=[0], epochs=2, max_steps=5, negatives=5, num_threads=1, knn=False)
    reference = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path / "ref", **kwargs)
    original = Trainer._end_epoch

    def stop_after_first(self, stats):
        stopped = original(self, stats)
        if self.epoch == 1:
            raise KeyboardInterrupt
        return stopped

    monkeypatch.setattr(Trainer, "_end_epoch", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path / "run", **kwargs)
    monkeypatch.setattr(Trainer, "_end_epoch", original)
    assert (tmp_path / "run" / "srgnn-s0" / "last.pt").is_file()
    epochs, train_epoch = [], Trainer._train_epoch

    def count(self):
        epochs.append(self.epoch)
        return train_epoch(self)

    monkeypatch.setattr(Trainer, "_train_epoch", count)
    resumed = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path / "run", **kwargs)
    assert epochs == [1]  # the second epoch only: the first is not trained again
    ours, theirs = resumed["runs"]["srgnn"][0], reference["runs"]["srgnn"][0]
    assert ours["metrics"] == pytest.approx(theirs["metrics"])
    assert ours["epochs_run"] == 2


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path):
    """A process killed (no chance to checkpoint) leaves metrics.jsonl and no last.pt:
    nothing to continue, so the benchmark trains that run again instead of refusing."""
    kwargs = dict(seeds=[0], epochs=1, max_steps=3, negatives=5, num_threads=1, knn=False)
    reference = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path / "ref", **kwargs)
    run = tmp_path / "run" / "srgnn-s0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "step": 2, "loss": 9.9}\n')
    (run / "notes.txt").write_text("mine")
    result = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path / "run", **kwargs)
    ours, theirs = result["runs"]["srgnn"][0], reference["runs"]["srgnn"][0]
    assert ours["metrics"] == pytest.approx(theirs["metrics"])
    assert (run / "notes.txt").read_text() == "mine"  # only graphrec's own files replaced
    assert "9.9" not in (run / "metrics.jsonl").read_text()


def test_default_output_is_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_benchmark(["srgnn"], "synthetic", seeds=[0], train=False, negatives=5, knn=False)
    assert (tmp_path / "runs" / "benchmark" / "synthetic" / "results.md").is_file()


def test_knn_baselines_are_tuned_tested_and_read_back(tmp_path, monkeypatch, capsys):
    import graphrec.models.knn as knn
    from graphrec.datasets import synthetic
    from graphrec.datasets.io import write_sessions

    for split in ("train", "test"):  # a small session folder
        data = synthetic(num_sessions=600, num_items=80, num_categories=4, split=split,
                         valid_fraction=0)  # fmt: skip
        items, ptr = data.sessions[0].tolist(), data.sessions[1].tolist()
        sessions = [items[a:b] for a, b in itertools.pairwise(ptr)]
        write_sessions(tmp_path / "log" / f"{split}_sessions.txt", sessions)
    monkeypatch.setattr(knn, "KNN_GRID", {"k": (20, 100), "sample_size": (500,)})
    out = tmp_path / "bench"
    result = run_benchmark(["srgnn"], str(tmp_path / "log"), seeds=[0], out_dir=out,
                           train=False, negatives=5, cache=False)  # fmt: skip
    for name in ("SKNN", "V-SKNN", "STAN", "VSTAN"):
        (record,) = result["runs"][name]
        assert record["hparams"]["k"] in (20, 100) and "HR@20" in record["metrics"]
        assert (out / f"knn-{name}.json").is_file()
        assert f"| {name} | – |" in (out / "results.md").read_text()
    assert "chosen on validation HR@20" in capsys.readouterr().out
    monkeypatch.setattr(knn, "tune", None)  # read back: not tuned again
    again = run_benchmark(["srgnn"], str(tmp_path / "log"), seeds=[0], out_dir=out,
                          train=False, negatives=5, cache=False)  # fmt: skip
    assert again["runs"]["STAN"] == result["runs"]["STAN"]


def test_a_recipe_is_benchmarked_under_its_name(tmp_path):
    kwargs = dict(seeds=[0], epochs=1, max_steps=3, negatives=5, num_threads=1, knn=False)
    result = run_benchmark(["srgnn", "srgnn-niser-repeat"], "synthetic", out_dir=tmp_path,
                           **kwargs)  # fmt: skip
    config = json.loads((tmp_path / "srgnn-niser-repeat-s0" / "config.json").read_text())
    assert config["model"] == "srgnn"
    assert config["model_config"]["normalize"] and config["model_config"]["repeat"]
    assert not json.loads((tmp_path / "srgnn-s0" / "config.json").read_text())["model_config"][
        "repeat"
    ]
    assert result["runs"]["srgnn-niser-repeat"][0]["hparams"]["lr"] == 1e-3  # SR-GNN's
    rows = (tmp_path / "results.md").read_text().splitlines()
    assert any(r.startswith("| SRGNN + NISER + repeat | 1 | ") for r in rows)
    assert any(r.startswith("| SRGNN | 1 | ") for r in rows)


def test_refit_retrains_on_train_and_valid_for_the_chosen_epochs(tmp_path, capsys):
    """The refit row is a fresh run on the whole training file, for the epochs that
    validation chose, tested once: it equals that run made by hand with the Trainer."""
    from graphrec.datasets import load_dataset
    from graphrec.evaluation import evaluate
    from graphrec.models import build_model, training_defaults
    from graphrec.training import Trainer

    kwargs = dict(seeds=[0], epochs=3, max_steps=4, negatives=5, num_threads=1, knn=False)
    result = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path, refit=True, **kwargs)
    (chosen,) = result["runs"]["srgnn"]
    (refit,) = result["runs"]["srgnn refit"]
    epochs = chosen["best_epoch"]
    assert refit["hparams"]["epochs"] == refit["epochs_run"] == epochs
    assert refit["refit_of"] == "srgnn-s0"
    config = json.loads((tmp_path / "srgnn-s0" / "refit" / "config.json").read_text())
    whole = load_dataset("synthetic", "train", valid_fraction=0)
    assert config["run_info"]["valid_fraction"] == 0
    assert config["hparams"]["train_samples"] == len(whole) > len(load_dataset("synthetic"))

    torch.manual_seed(0)
    model = build_model("srgnn", dataset=whole)
    hp = {**training_defaults("srgnn"), "epochs": epochs}
    hp.pop("monitor", None)
    Trainer(model, whole, None, seed=0, max_steps_per_epoch=4, num_threads=1,
            progress=False, **hp).fit()  # fmt: skip
    test = load_dataset("synthetic", "test")
    expected = evaluate(model, test, ks=(5, 10, 20), negatives=5)
    assert refit["metrics"] == pytest.approx(expected)
    assert refit["metrics"]["HR@20"] != pytest.approx(chosen["metrics"]["HR@20"])

    rows = (tmp_path / "results.md").read_text().splitlines()
    assert any(r.startswith("| SRGNN | 1 | ") for r in rows)
    assert any(r.startswith("| SRGNN, refit | 1 | ") and f"| {epochs}.0 / {epochs}.0 |" in r
               for r in rows)  # fmt: skip
    capsys.readouterr()
    again = run_benchmark(
        ["srgnn", "stamp"], "synthetic", out_dir=tmp_path, refit=True, train=False, **kwargs
    )  # fmt: skip  (read back, nothing trained)
    assert again["runs"]["srgnn refit"] == result["runs"]["srgnn refit"]
    (tmp_path / "srgnn-s0" / "refit" / "result.json").unlink()
    again = run_benchmark(["srgnn"], "synthetic", out_dir=tmp_path, refit=True, train=False,
                          **kwargs)  # fmt: skip
    assert "srgnn refit" not in again["runs"]
    assert "srgnn seed 0: not refit yet" in capsys.readouterr().out
