"""Side-field tables of a user's own click log (from_click_log's item_features, user_features)."""

import importlib.util
import json
import logging

import pandas as pd
import pytest
import torch

from graphrec.datasets import from_click_log, load_dataset
from graphrec.models import build_model

NO_DUCKDB = importlib.util.find_spec("duckdb") is None
ENGINES = ["pandas", pytest.param("duckdb", marks=pytest.mark.skipif(NO_DUCKDB, reason="duckdb"))]


def write_log(tmp_path):
    rows = [(f"s{s}", f"sku-{(3 * s + j) % 40}", f"u{s % 7}", 60 * (4 * s + j))
            for s in range(300) for j in range(4)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "user_id", "timestamp"])
    frame.to_csv(tmp_path / "log.csv", index=False)
    return tmp_path / "log.csv"


def catalogue(n=44):
    return pd.DataFrame({
        "item_id": [f"sku-{i}" for i in range(n)],
        "brand": ["" if i == 5 else f"b{i % 3}" for i in range(n)],
        "genres": ["Drama|Action" if i % 2 else "Comedy" for i in range(n)],
    })  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_a_product_table_becomes_item_fields(tmp_path, engine, caplog):
    log = write_log(tmp_path)
    catalogue().iloc[1:].to_csv(tmp_path / "items.csv", index=False)  # sku-0 has no row
    with caplog.at_level(logging.WARNING, logger="graphrec.datasets"):
        from_click_log(log, tmp_path / "out", test_fraction=0.2, engine=engine,
                       item_features=tmp_path / "items.csv", multi_valued=["genres"])  # fmt: skip
    assert "4 item id(s) of the feature table are not in the processed log" in caplog.text
    train = load_dataset(tmp_path / "out", "train")
    labels = train.item_labels
    brand, genres = train.item_features["brand"], train.item_features["genres"]
    assert genres.shape == (41, 2) and brand.shape == (41, 1)
    # values in sorted order: brands b0, b1, b2 -> 1, 2, 3; Action, Comedy, Drama -> 1, 2, 3
    for i, label in enumerate(labels[1:], start=1):
        k = int(label.split("-")[1])
        if k == 0:  # no row: unknown
            assert brand[i].tolist() == [0] and genres[i].tolist() == [0, 0]
            continue
        assert brand[i].tolist() == [0 if k == 5 else k % 3 + 1]  # an empty cell: unknown
        assert genres[i].tolist() == ([1, 3] if k % 2 else [2, 0])
    import json

    fields = json.loads((tmp_path / "out" / "fields.json").read_text())["item"]
    assert fields["fields"]["genres"] == {
        "multi_valued": True,
        "values": ["Action", "Comedy", "Drama"],
    }
    assert fields["stats"] == {"items_with_features": 39, "items_without_features": 1,
                               "rows_not_in_log": 4}  # fmt: skip
    model = build_model("din", dataset=train, hidden_channels=4)
    assert model.item_fields == {"brand": 3, "genres": 3}
    top = model.recommend([["sku-3", "sku-4"]], k=3)  # the log's own ids
    assert len(top[0]) == 3 and all(t.startswith("sku-") for t in top[0])


def test_engines_write_the_same_files(tmp_path):
    pytest.importorskip("duckdb")
    log = write_log(tmp_path)
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(7)], "age": [20, 30] * 3 + [40]})
    for engine in ("pandas", "duckdb"):
        from_click_log(log, tmp_path / engine, user="user_id", test_fraction=0.2, engine=engine,
                       item_features=catalogue(), multi_valued=["genres"],
                       user_features=users)  # fmt: skip
    for name in ("item_features.tsv", "user_features.tsv", "fields.json"):
        a, b = ((tmp_path / e / name).read_text() for e in ("pandas", "duckdb"))
        assert a == b.replace(str(tmp_path / "duckdb"), str(tmp_path / "pandas")), name
    train = load_dataset(tmp_path / "pandas", "train")
    ages = train.user_features["age"].view(-1)
    assert ages[0] == 0 and set(ages[1:].tolist()) == {1, 2, 3}


def test_stale_fields_are_removed(tmp_path):
    log = write_log(tmp_path)
    from_click_log(log, tmp_path / "out", test_fraction=0.2, item_features=catalogue())
    assert (tmp_path / "out" / "fields.json").is_file()
    from_click_log(log, tmp_path / "out", test_fraction=0.2)
    assert not (tmp_path / "out" / "fields.json").exists()
    assert not (tmp_path / "out" / "item_features.tsv").exists()
    assert load_dataset(tmp_path / "out", "train").item_features == {}


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda f: f.rename(columns={"item_id": "sku"}), {},
         r"items\.csv: no id column 'item_id' \(the log's item column\)"),
        (lambda f: pd.concat([f, f.iloc[[3]].assign(brand="b9")]), {},
         r"items\.csv, line 46: column 'brand': item 'sku-3' is listed again with 'b9', "
         r".*items\.csv, line 5 gave it 'b0'"),
        (lambda f: f.rename(columns={"brand": "brand name"}), {},
         "column 'brand name' cannot name a field"),
        (lambda f: f, {"item_feature_cols": ["shop"]},
         r"missing item feature column\(s\) \['shop'\]"),
        (lambda f: f, {"multi_valued": ["tags"]}, r"multi_valued column\(s\) \['tags'\] are in no"),
    ],
)  # fmt: skip
def test_bad_tables_are_refused_before_anything_is_written(tmp_path, change, kwargs, message):
    log = write_log(tmp_path)
    change(catalogue()).to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(ValueError, match=message):
        from_click_log(log, tmp_path / "out", test_fraction=0.2,
                       item_features=tmp_path / "items.csv", **kwargs)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_an_item_listed_twice_alike_is_kept_once_and_users_need_a_user_column(tmp_path):
    log = write_log(tmp_path)
    twice = pd.concat([catalogue(), catalogue().iloc[[2]]])
    from_click_log(log, tmp_path / "out", test_fraction=0.2, item_features=twice)
    assert load_dataset(tmp_path / "out", "train").item_features["brand"].shape == (41, 1)
    with pytest.raises(ValueError, match="user_features need the log's user column"):
        from_click_log(log, tmp_path / "out", test_fraction=0.2,
                       user_features=pd.DataFrame({"user_id": ["u1"], "age": [3]}))  # fmt: skip


def test_the_command_line_takes_the_tables(tmp_path):
    from graphrec.cli import main

    log = write_log(tmp_path)
    catalogue().to_csv(tmp_path / "items.csv", index=False)
    main(["preprocess", "clicks", str(log), "--out", str(tmp_path / "out"),
          "--test-fraction", "0.2", "--item-features", str(tmp_path / "items.csv"),
          "--item-feature-cols", "brand,genres", "--multi-valued", "genres",
          "--engine", "pandas"])  # fmt: skip
    train = load_dataset(tmp_path / "out", "train")
    assert list(train.item_features) == ["brand", "genres"]
    assert torch.equal(train.item_features["genres"][0], torch.zeros(2, dtype=torch.long))
    # train with one of the fields, by name; a name the data lacks is refused
    common = ["train", "--dataset", str(tmp_path / "out"), "--model", "din", "--epochs", "1",
              "--max-steps", "3", "--hidden", "4", "--no-progress", "--negatives", "20",
              "--monitor", "AUC (20 neg.)"]  # fmt: skip
    run = tmp_path / "din"
    assert main([*common, "--model-arg", "item_fields=brand", "--run-dir", str(run)]) == 0
    import json

    config = json.loads((run / "config.json").read_text())["model_config"]
    assert config["item_fields"] == {"brand": 3}
    code = main([*common, "--model-arg", "item_fields=shop", "--run-dir", str(tmp_path / "x")])
    assert code == 2


def test_recommend_takes_a_context_on_the_command_line(tmp_path, capsys):
    from graphrec.cli import main
    from graphrec.cli.recommend import contexts
    from graphrec.data import SessionDataset
    from graphrec.datasets import synthetic
    from graphrec.training import Trainer

    d = synthetic(num_sessions=100, num_items=40, num_users=10, num_categories=2)
    data = SessionDataset(
        d.sessions, d.sample_session, d.target_position, d.num_items,
        context={"hour": torch.arange(len(d)) % 24 + 1}, context_sizes={"hour": 24},
    )  # fmt: skip
    model = build_model("din", dataset=data, hidden_channels=4)
    Trainer(model, data, None, epochs=1, run_dir=tmp_path / "din", progress=False,
            verbose=False, max_steps_per_epoch=2).fit()  # fmt: skip
    assert contexts(["hour=9", "hour=3, weekday=2"]) == [{"hour": 9}, {"hour": 3, "weekday": 2}]
    base = ["recommend", "--checkpoint", str(tmp_path / "din" / "best.pt"), "--json", "-k", "3"]
    assert main([*base, "--session", "1 2", "--context", "hour=9"]) == 0
    out = json.loads(capsys.readouterr().out)
    want = model.eval().recommend([[1, 2]], k=3, contexts=[{"hour": 9}])
    assert out["items"] == want[0].tolist()
    assert main([*base, "--session", "1 2", "--context", "hour=99"]) == 2
    assert "expected a value id in 0..24 (0 = unknown), got 99" in capsys.readouterr().err
    assert main([*base, "--session", "1 2", "--context", "hour"]) == 2
    assert "expected NAME=VALUE pairs" in capsys.readouterr().err
    # a field without a log's own values takes value ids only
    assert main([*base, "--session", "1 2", "--context", "hour=nine"]) == 2
    assert "expected a value id in 0..24" in capsys.readouterr().err
