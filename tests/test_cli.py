import itertools
import json
import shlex
import sys

import pytest
import torch

from graphrec.cli import main
from graphrec.datasets.benchmark import SPLITS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(
        ["train", "--dataset", "synthetic", "--epochs", "2", "--max-steps", "30", "--hidden", "16",
         "--run-dir", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return out


def test_train_writes_run(run_dir, capsys):
    assert {"best.pt", "last.pt", "metrics.jsonl", "config.json", "test_metrics.json"} <= {
        p.name for p in run_dir.iterdir()
    }
    table = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(table) == {next(iter(table)), "S-POP", "POP"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["hparams"]["threads"] == 1  # --threads auto: a small model, one thread
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_evaluate(run_dir, capsys, monkeypatch):
    import graphrec.models.knn as knn

    # one point per argument: the kNN baselines are tuned, quickly (tune() is tested apart)
    monkeypatch.setattr(knn, "KNN_GRID", {"k": (100,), "sample_size": (500,)})
    code = main(
        ["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--ks", "10", "--faiss", "hnsw",
         "--baselines", "--multi-target", "--session-rec"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "session-rec protocol" in out and "MAP@10" in out
    assert "HR@10" in out and "via faiss hnsw" in out and "S-POP" in out and "Recall@10" in out
    assert "ANN recall@10" in out  # beside every approximate evaluation
    for name in ("SKNN", "V-SKNN", "STAN", "VSTAN"):  # chosen on validation, then tested
        assert (
            f"\n{name} " in out and f"{name}: k=100, sample_size=500 (chosen on validation" in out
        )


def test_refit(tmp_path, capsys):
    code = main(
        ["train", "--dataset", "synthetic", "--epochs", "2", "--max-steps", "10", "--hidden", "8",
         "--run-dir", str(tmp_path), "--no-progress", "--refit"]
    )  # fmt: skip
    assert code == 0
    table = json.loads((tmp_path / "test_metrics.json").read_text())
    best = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["best_epoch"]
    assert f"SRGNN refit, 100% train, {best} ep." in table
    refit_log = (tmp_path / "refit" / "metrics.jsonl").read_text().splitlines()
    assert len(refit_log) == best
    assert json.loads((tmp_path / "refit" / "config.json").read_text())["run_info"]["refit_of"]


def test_recommend(run_dir, capsys):
    code = main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--session", "3 17 3",
                 "--session", "5", "-k", "4", "--json", "--exclude-seen"])  # fmt: skip
    assert code == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows[0]["session"] == [3, 17, 3] and len(rows[0]["items"]) == 4
    assert not {3, 17} & set(rows[0]["items"]) and 5 not in rows[1]["items"]


def test_recommend_unknown_item(run_dir, capsys):
    code = main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--session", "99999"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("graphrec recommend: error: session 0: unknown item id")
    code = main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--session", "3 x"])
    assert code == 2 and "--session '3 x': item ids must be integers" in capsys.readouterr().err


def test_export(run_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "export"
    assert main(["export", str(run_dir / "best.pt"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exported SRGNN to" in text and "encoder.onnx: (clicks) -> [B, d]" in text
    assert (out / "manifest.json").is_file()
    assert main(["export", str(run_dir / "best.pt"), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_errors_are_reported(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_text("x")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt")]) == 2
    assert "cannot be read as a checkpoint" in capsys.readouterr().err
    assert main(["train", "--dataset", "diginetica", "--root", str(tmp_path)]) == 2
    assert "benchmark folder not found" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a run dir below a file cannot be created, even as root
    code = main(["train", "--dataset", "synthetic", "--epochs", "1", "--max-steps", "1",
                 "--hidden", "4", "--no-progress", "--run-dir", str(blocker / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("graphrec train: error:") and "Traceback" not in err


def test_preprocess(tmp_path, capsys):
    raw = tmp_path / "v.csv"
    rows = [
        f"{s};NA;{i};{t};2016-05-0{1 + s % 3}" for s in range(1, 8) for t, i in enumerate([1, 2, 3])
    ]
    rows += [f"9;NA;{i};{t};2016-05-20" for t, i in enumerate([1, 2, 3])]
    raw.write_text("session_id;user_id;item_id;timeframe;eventdate\n" + "\n".join(rows) + "\n")
    assert main(["preprocess", "diginetica", str(raw), "--out", str(tmp_path)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["train_sessions"] == 7 and stats["test_sessions"] == 1
    assert (tmp_path / "diginetica" / "train_sessions.txt").read_text().startswith("1 2 3\n")


def test_preprocess_writes_the_processed_files(tmp_path, capsys, monkeypatch):
    import graphrec.datasets.clicklog as clicklog
    from graphrec.datasets import load_dataset

    lines = ["session,item,ts"] + [
        f"s{s},{(s + j) % 9},{60 * (4 * s + j)}" for s in range(200) for j in range(4)
    ]
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    code = main(["preprocess", "clicks", str(tmp_path / "c.csv"), "--session-col", "session",
                 "--item-col", "item", "--time-col", "ts", "--test-fraction", "0.2",
                 "--out", str(tmp_path / "log"), "--processed", "--max-length", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "train processed" in out and "test processed" in out
    assert len(list((tmp_path / "log" / "processed").glob("*.pt"))) == 3
    built = {split: load_dataset(tmp_path / "log", split, max_length=3) for split in SPLITS}

    def never(*args, **kwargs):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(clicklog, "_build_sessions", never)  # training only opens them
    for split in SPLITS:
        again = load_dataset(tmp_path / "log", split, max_length=3)
        assert torch.equal(again.y, built[split].y) and again.max_length == 3


def test_preprocess_engines_and_their_options(tmp_path, capsys):
    """--engine pandas and duckdb write the same folder; --memory-limit is checked;
    --sql writes the protocol that DuckDB runs, for the options given."""
    pytest.importorskip("duckdb")
    from graphrec.datasets.sql import statements

    lines = ["session,item,ts"] + [
        f"s{s},{(s * 7 + j) % 13},{60 * (4 * s + j)}" for s in range(300) for j in range(4)
    ]
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    common = ["preprocess", "clicks", str(tmp_path / "c.csv"), "--session-col", "session",
              "--item-col", "item", "--time-col", "ts", "--test-fraction", "0.2"]  # fmt: skip
    for engine in ("pandas", "duckdb"):
        args = ["--engine", engine, "--out", str(tmp_path / engine / "log"), "--no-progress"]
        assert main([*common, *args, "--memory-limit", "0.1", "--threads", "1"]) == 0
    capsys.readouterr()
    for name in ("train_sessions.txt", "test_sessions.txt", "items.tsv", "meta.json"):
        a = (tmp_path / "pandas" / "log" / name).read_bytes()
        assert a == (tmp_path / "duckdb" / "log" / name).read_bytes(), name
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "x"), "--memory-limit", "lots"])
    assert "give a size (8GB, 500MB) or a share" in capsys.readouterr().err
    sql = tmp_path / "protocol.sql"
    assert main([*common, "--min-item-support", "3", "--sql", str(sql)]) == 0
    text = sql.read_text()
    assert "support >= 3" in text and "CAST('0.2' AS DOUBLE)" in text
    assert len(statements(text)) > 10 and not (tmp_path / "log").exists()


def test_threads_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error, exit status 2
        main(["train", "--dataset", "synthetic", "--threads", "0", "--run-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "argument --threads: must be >= 1, got 0" in capsys.readouterr().err


def test_no_reuse_memory_flag_reaches_the_trainer(tmp_path, monkeypatch):
    from graphrec.training import Trainer

    seen = []
    init = Trainer.__init__

    def record(self, *args, **kwargs):
        seen.append(kwargs["reuse_memory"])
        init(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", record)
    for flag in ([], ["--no-reuse-memory"]):
        argv = ["train", "--dataset", "synthetic", "--epochs", "1", "--max-steps", "2"]
        argv += ["--hidden", "8", "--run-dir", str(tmp_path / str(len(seen))), "--no-progress"]
        argv += flag
        assert main(argv) == 0
    assert seen == [True, False]


def test_verbose_before_or_after_subcommand():
    from graphrec.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["-v", "train"]).verbose
    assert parser.parse_args(["train", "-v"]).verbose
    assert not parser.parse_args(["train"]).verbose


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("stamp", ["--model-arg", "variant=code", "--clip-grad-norm", "110"]),
        ("attrec", ["--model-arg", "window=3"]),
        ("sdm", ["--history-length", "10", "--layers", "1"]),
    ],
)
def test_train_every_model_through_the_registry(model, extra, tmp_path, capsys):
    code = main(
        ["train", "--model", model, "--dataset", "synthetic", "--epochs", "1", "--max-steps",
         "5", "--hidden", "8", "--run-dir", str(tmp_path), "--no-progress", "--negatives", "50",
         *extra]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "ranked against 50 sampled negatives" in out and "S-POP" in out
    table = json.loads((tmp_path / "test_metrics.json").read_text())
    assert "HR@10 (50 neg.)" in next(iter(table.values()))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == model and config["model_config"]["hidden_channels"] == 8
    defaults = {"stamp": (512, "adam"), "attrec": (1000, "adagrad"), "sdm": (100, "adam")}
    assert (config["hparams"]["batch_size"], config["hparams"]["optimizer"]) == defaults[model]
    code = main(["evaluate", "--checkpoint", str(tmp_path / "best.pt"), "--ks", "10",
                 "--faiss", "flat"])  # fmt: skip
    assert code == 0 and "via faiss flat" in capsys.readouterr().out


def test_train_a_recipe(tmp_path, capsys):
    """A recipe trains its model with its arguments, --model-arg on top; the run
    records the model and its whole configuration, and its checkpoint loads."""
    code = main(["train", "--model", "srgnn-niser-plus", "--dataset", "synthetic", "--epochs",
                 "1", "--max-steps", "3", "--hidden", "8", "--model-arg", "scale=16",
                 "--run-dir", str(tmp_path), "--no-progress"])  # fmt: skip
    assert code == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "srgnn"
    want = {"normalize": True, "position": True, "dropout": 0.1, "scale": 16.0}
    assert {k: config["model_config"][k] for k in want} == want
    assert config["hparams"]["lr"] == 1e-3 and config["hparams"]["lr_step"] == 3  # SR-GNN's
    assert "position=True" in capsys.readouterr().out
    code = main(["train", "--model", "srgnn-niser-plus", "--dataset", "synthetic",
                 "--model-arg", "dropout=1.5", "--run-dir", str(tmp_path / "bad")])  # fmt: skip
    assert code == 2 and "dropout must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_bad_model_arguments(tmp_path, capsys):
    code = main(["train", "--model", "stamp", "--dataset", "synthetic", "--model-arg", "wndow=3",
                 "--run-dir", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--model-arg 'wndow=3': expected NAME=VALUE" in capsys.readouterr().err
    code = main(["train", "--model", "stamp", "--dataset", "synthetic", "--layers", "2",
                 "--run-dir", str(tmp_path)])  # fmt: skip
    assert code == 2 and "stamp takes no num_layers" in capsys.readouterr().err


def test_recommend_for_users_with_histories(tmp_path, capsys):
    code = main(
        ["train", "--model", "sdm", "--dataset", "synthetic", "--epochs", "1", "--max-steps", "3",
         "--hidden", "8", "--history-length", "5", "--run-dir", str(tmp_path), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    capsys.readouterr()
    code = main(["recommend", "--checkpoint", str(tmp_path / "best.pt"), "--session", "3 17",
                 "--user", "4", "--history", "5 6 7", "--session", "9", "--user", "0",
                 "--history", "", "-k", "3", "--json"])  # fmt: skip
    assert code == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [len(r["items"]) for r in rows] == [3, 3]
    code = main(["recommend", "--checkpoint", str(tmp_path / "best.pt"), "--session", "3 17",
                 "--user", "4", "--user", "5"])  # fmt: skip
    assert code == 2 and "2 users for 1 sessions" in capsys.readouterr().err


def test_rankers_and_the_two_stage_pipeline(run_dir, tmp_path, capsys):
    retriever = str(run_dir / "best.pt")
    code = main(
        ["train", "--model", "din", "--dataset", "synthetic", "--epochs", "1", "--max-steps",
         "5", "--hidden", "8", "--run-dir", str(tmp_path / "din"), "--no-progress",
         "--retriever", retriever, "--model-arg", "negative_sampling=hard",
         "--model-arg", "mlp_hidden=16,8", "-k", "50"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    table = json.loads((tmp_path / "din" / "test_metrics.json").read_text())
    din, first, both = list(table)[:3]
    assert "HR@20" not in table[din]  # a ranker is not asked for the full catalogue
    assert {"AUC (100 neg.)", "GAUC (100 neg.)"} <= set(table[din])
    assert "Recall@50" in table[first] and "HR@50" not in table[first]
    assert table[both]["HR@20"] <= table[first]["Recall@50"]
    config = json.loads((tmp_path / "din" / "config.json").read_text())
    assert config["hparams"]["monitor"] == "AUC (100 neg.)"
    assert config["model_config"]["mlp_hidden"] == [16, 8]
    assert "two-stage evaluation" in out
    code = main(
        ["train", "--model", "dien", "--dataset", "synthetic", "--epochs", "1", "--max-steps",
         "3", "--hidden", "4", "--run-dir", str(tmp_path / "dien"), "--no-progress",
         "--retriever", retriever, "--monitor", "MRR@20", "-k", "20"]
    )  # fmt: skip
    assert code == 0
    capsys.readouterr()
    record = json.loads((tmp_path / "dien" / "metrics.jsonl").read_text().splitlines()[0])
    assert "MRR@20" in record["valid"]  # selected on the pipeline's validation MRR@20
    ranker = str(tmp_path / "dien" / "best.pt")
    code = main(["evaluate", "--retriever", retriever, "--ranker", ranker, "-k", "30",
                 "--ks", "10", "--baselines", "--no-knn"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "SRGNN -> DIEN (k=30)" in out and "Recall@30" in out and "AUC" in out
    code = main(["evaluate", "--checkpoint", ranker, "--ks", "10"])
    out = capsys.readouterr().out
    assert code == 0 and "ranking against 100 sampled negatives" in out and "GAUC" in out
    code = main(["evaluate", "--ranker", ranker])
    assert code == 2 and "--retriever and --ranker" in capsys.readouterr().err
    code = main(["train", "--model", "srgnn", "--dataset", "synthetic", "--retriever", retriever,
                 "--run-dir", str(tmp_path / "x")])  # fmt: skip
    assert code == 2 and "not a ranker" in capsys.readouterr().err


@pytest.fixture(scope="module")
def click_log(tmp_path_factory):
    """A small log of one's own, with text item ids, preprocessed by the CLI."""
    tmp = tmp_path_factory.mktemp("clicks")
    lines, t = ["session,product,when"], 0
    for s in range(400):
        for j in range(4):
            lines.append(f"visit-{s},sku-{(s + j) % 12},{t}")
            t += 60
    (tmp / "clicks.csv").write_text("\n".join(lines) + "\n")
    code = main(["preprocess", "clicks", str(tmp / "clicks.csv"), "--session-col", "session",
                 "--item-col", "product", "--time-col", "when", "--test-fraction", "0.2",
                 "--out", str(tmp / "shop")])  # fmt: skip
    assert code == 0
    return tmp / "shop"


def test_own_click_log_train_and_recommend(click_log, tmp_path, capsys):
    capsys.readouterr()
    code = main(["train", "--dataset", str(click_log), "--epochs", "1", "--hidden", "8",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("shop: ") and "S-POP" in out
    code = main(["recommend", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                 "--session", "sku-3 sku-4", "-k", "2", "--json", "--exclude-seen"])  # fmt: skip
    row = json.loads(capsys.readouterr().out)
    assert code == 0 and row["session"] == ["sku-3", "sku-4"]
    assert len(row["items"]) == 2 and all(i.startswith("sku-") for i in row["items"])
    assert not {"sku-3", "sku-4"} & set(row["items"])
    code = main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt")])
    assert code == 0 and "shop / test" in capsys.readouterr().out
    code = main(["recommend", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                 "--session", "sku-99", "-k", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "graphrec recommend: error: session 0: item id 'sku-99'" in err


def test_unknown_dataset_path_is_named(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "neither one of" in capsys.readouterr().err


def test_benchmark_table_over_seeds(click_log, tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["benchmark", "--models", "srgnn,din", "--dataset", str(click_log), "--seeds", "0,1",
            "--epochs", "1", "--max-steps", "3", "--out", str(out), "--no-progress",
            "--negatives", "5", "--no-knn"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["runs"]) == {"srgnn", "din", "S-POP", "POP"}
    hr = [r["metrics"]["HR@20"] for r in result["runs"]["srgnn"]]
    stat = result["summary"]["srgnn"]["metrics"]["HR@20"]
    assert stat["mean"] == pytest.approx(sum(hr) / 2)
    assert stat["std"] == pytest.approx(abs(hr[0] - hr[1]) / 2**0.5)
    assert "HR@20" not in result["summary"]["din"]["metrics"]  # a ranker: sampled metrics only
    md = (out / "results.md").read_text()
    assert "| SRGNN | 2 |" in md and f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}" in md
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["model", "runs"] and "HR@20_mean" in header
    # a second call reads the runs back instead of training again
    (out / "srgnn-s0" / "result.json").write_text(
        json.dumps({**result["runs"]["srgnn"][0], "metrics": {"HR@20": 0.5}})
    )
    assert main([*args, "--report"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["runs"]["srgnn"][0]["metrics"] == {"HR@20": 0.5}


def test_benchmark_refit_rows(click_log, tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["benchmark", "--models", "srgnn", "--dataset", str(click_log), "--seeds", "0,1",
            "--epochs", "2", "--max-steps", "3", "--out", str(out), "--no-progress",
            "--negatives", "5", "--no-knn", "--refit"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "results.json").read_text())
    chosen, refits = result["runs"]["srgnn"], result["runs"]["srgnn refit"]
    assert [r["hparams"]["epochs"] for r in refits] == [r["best_epoch"] for r in chosen]
    for seed in (0, 1):
        config = json.loads((out / f"srgnn-s{seed}" / "refit" / "config.json").read_text())
        assert config["run_info"]["valid_fraction"] == 0 and config["hparams"]["seed"] == seed
    assert "| SRGNN, refit | 2 |" in (out / "results.md").read_text()
    assert "srgnn refit seed 1: epoch" in capsys.readouterr().out


def test_interrupt_exits_cleanly_with_the_resume_command(click_log, tmp_path, capsys, monkeypatch):
    from graphrec.training import Trainer

    def interrupted(self, resume=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    code = main(["train", "--dataset", str(click_log), "--epochs", "1", "--hidden", "4",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert "graphrec train: interrupted" in err and "--resume" in err


def test_resume_command_quotes_what_the_shell_would_split(tmp_path, monkeypatch):
    from graphrec.cli.common import resume_command

    run_dir = tmp_path / "my runs" / "a"
    argv = ["graphrec", "train", "--dataset", "my log.csv", "--run-dir", str(run_dir), "--resume"]
    monkeypatch.setattr(sys, "argv", argv)
    command = resume_command(run_dir)
    assert shlex.split(command) == argv  # copied into a shell, it runs the same command
    assert command.count("--resume") == 1
    monkeypatch.setattr(sys, "argv", ["graphrec"])
    assert shlex.split(resume_command(run_dir))[3:5] == ["--run-dir", str(run_dir)]


def test_distributed_without_torchrun_says_how_to_launch(click_log, tmp_path, capsys):
    code = main(["train", "--dataset", str(click_log), "--distributed", "--epochs", "1",
                 "--run-dir", str(tmp_path / "run")])  # fmt: skip
    assert code == 2 and "launch with torchrun" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--clip-grad-norm", "-1"], "argument --clip-grad-norm: must be > 0, got -1"),
        (["--clip-grad-norm", "0"], "argument --clip-grad-norm: must be > 0, got 0"),
        (["--negatives", "-5"], "argument --negatives: must be >= 0, got -5"),
        (["--max-steps", "0"], "argument --max-steps: must be >= 1, got 0"),
        (["--lr", "nan"], "argument --lr: must be finite"),
        (["--valid-fraction", "1"], "argument --valid-fraction: must lie in [0, 1)"),
        (["--device", "bogus"], "'bogus' is not a torch device"),
        (["--batch-size", "x"], "argument --batch-size: expected an integer, got 'x'"),
    ],
)
def test_numeric_flags_are_checked_before_any_work(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error, exit status 2
        main(["train", "--dataset", "synthetic", "--run-dir", str(tmp_path / "r"), *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model-arg", "hidden_channels=abc"], "hidden_channels must be an integer, got 'abc'"),
        (["--model-arg", "hidden_channels=0"], "hidden_channels must be >= 1, got 0"),
        (["--monitor", "HR@30"], "validation computes the cut-offs (5, 10, 20)"),
        (["--monitor", "HR20"], "expected a metric such as HR@20"),
        (["--retriever", "x.pt"], "--retriever: srgnn is not a ranker"),
    ],
)
def test_model_arguments_fail_in_one_line_before_reading_data(tmp_path, capsys, flags, message):
    code = main(["train", "--dataset", "synthetic", "--run-dir", str(tmp_path), *flags])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and "Traceback" not in captured.err
    assert "train /" not in captured.out  # no dataset was loaded


def test_evaluate_refuses_another_catalogue_with_the_prefix(run_dir, tmp_path, capsys):
    from graphrec.datasets.io import write_sessions

    sessions = [[i + 5000, i + 5001] for i in range(1, 3001, 2)]  # 3,000 other ids
    for name in ("train", "test"):
        write_sessions(tmp_path / f"{name}_sessions.txt", sessions)
    code = main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--dataset", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("graphrec evaluate: error:")
    assert "map item ids differently" in err


def test_evaluate_flags_and_swapped_roles(run_dir, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--batch-size", "0"])
    assert "argument --batch-size: must be >= 1, got 0" in capsys.readouterr().err
    ranker = tmp_path / "din"
    argv = ["train", "--dataset", "synthetic", "--model", "din", "--epochs", "1", "--max-steps",
            "2", "--hidden", "8", "--no-progress", "--run-dir", str(ranker)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    code = main(["evaluate", "--retriever", str(ranker / "best.pt"),
                 "--ranker", str(run_dir / "best.pt")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "the roles look swapped: retrieve with SRGNN, re-rank with DIN" in err


def test_warnings_are_one_line_with_the_command(run_dir, capsys):
    code = main(["recommend", "--checkpoint", str(run_dir / "best.pt"), "--session", "3 17",
                 "-k", "3000", "--exclude-seen"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and err.startswith("graphrec recommend: warning: k=3000 capped at 2998")
    assert ".py" not in err  # no source path


def test_demo_help_states_its_own_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "default: 5" in out and "(30)" not in out


def test_interrupt_message_is_on_its_own_line_and_one_based(tmp_path, monkeypatch, capsys, caplog):
    from graphrec.training import Trainer

    original, calls = Trainer._train_step, []

    def interrupt(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", interrupt)
    argv = ["train", "--dataset", "synthetic", "--epochs", "2", "--max-steps", "5", "--hidden",
            "8", "--run-dir", str(tmp_path)]  # fmt: skip
    with caplog.at_level("WARNING", logger="graphrec.training"):
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "\ngraphrec train: interrupted" in err and "--resume" in err
    assert "interrupted in epoch 1/2, after step 2: saved" in caplog.text
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert main([*argv, "--resume", "--no-progress"]) == 0


def test_evaluate_refuses_the_same_log_with_reassigned_ids(run_dir, tmp_path, capsys):
    """The same catalogue ids, meaning other items: caught by the popularity check."""
    import torch

    from graphrec.datasets import load_dataset
    from graphrec.datasets.io import write_sessions

    perm = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(3000) + 1])
    for split in ("train", "test"):
        data = load_dataset("synthetic", split, valid_fraction=0)
        items, ptr = data.sessions
        shuffled = perm[data.item_ids[items]].tolist()
        sessions = [shuffled[a:b] for a, b in itertools.pairwise(ptr.tolist())]
        if split == "train":  # every id once more, so that the catalogue is the same
            sessions += [[i, i % 3000 + 1] for i in range(1, 3001, 2)]
        write_sessions(tmp_path / f"{split}_sessions.txt", sessions)
    argv = ["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--dataset", str(tmp_path),
            "--no-cache", "--ks", "20"]  # fmt: skip
    assert main(argv) == 2
    assert "do not favour the items popular" in capsys.readouterr().err
    assert main([*argv, "--trust-item-ids"]) == 0
    # a checkpoint of an older graphrec keeps no training popularity: its own
    # dataset's is read instead
    from graphrec.training import load_checkpoint

    state = load_checkpoint(run_dir / "best.pt")
    del state["popularity_reference"]
    torch.save(state, tmp_path / "old.pt")
    argv[2] = str(tmp_path / "old.pt")
    assert main(argv) == 2
    assert "do not favour the items popular" in capsys.readouterr().err
