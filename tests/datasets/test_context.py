"""Per-click context fields of a user's own log: ``from_click_log(context_cols=,
time_context=)`` on every engine, the samples' contexts, and the models that read them."""

from __future__ import annotations

import copy
import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec.datasets import from_click_log, load_click_log

from .test_duck import _same_folders

MONDAY = 1_609_718_400  # 2021-01-04 00:00 UTC, a Monday
T0 = MONDAY + 1800


def _tiny() -> pd.DataFrame:
    """Two training sessions and a test one (test_days=5), with a device per click."""
    rows = [
        ("a", 1, T0, "mobile"), ("a", 2, T0 + 3600, "mobile"), ("a", 3, T0 + 7200, ""),
        ("b", 2, T0 + 86_400, "desktop"), ("b", 3, T0 + 86_460, " desktop "),
        ("c", 3, T0 + 10 * 86_400, "tablet"), ("c", 1, T0 + 10 * 86_400 + 3600, "null"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp", "device"])


def test_context_files_by_hand(tmp_path: Path) -> None:
    stats = from_click_log(
        _tiny(), tmp_path / "out", context_cols=["device"], time_context=["hour", "weekday"],
        test_days=5, min_item_support=1,
    )  # fmt: skip
    out = tmp_path / "out"
    # devices sorted: desktop 1, mobile 2, tablet 3; hour + 1; Monday = 1
    assert (out / "train_context.tsv").read_text() == (
        "# device\thour\tweekday\n2 2 0\t1 2 3\t1 1 1\n1 1\t1 1\t2 2\n"
    )
    assert (out / "test_context.tsv").read_text() == "# device\thour\tweekday\n3 0\t1 2\t4 4\n"
    entry = json.loads((out / "fields.json").read_text())["context"]
    assert entry["fields"]["device"] == {
        "source": "column",
        "values": ["desktop", "mobile", "tablet"],
    }
    assert entry["fields"]["hour"]["values"] == [str(h) for h in range(24)]
    assert entry["stats"] == {
        "clicks": 7,
        "clicks_with_unknown_value": {"device": 2, "hour": 0, "weekday": 0},
    }
    assert stats["context_fields"]["values"] == {"device": 3, "hour": 24, "weekday": 7}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["context"] == {"columns": ["device"], "time": ["hour", "weekday"]}

    # every sample carries the context of its target click
    train = load_click_log(out, "train", valid_fraction=0, cache=False)
    assert train.y.tolist() == [3, 2, 3]  # (1, 2) -> 3, (1) -> 2; (2) -> 3
    assert train.context["device"].tolist() == [0, 2, 1]
    assert train.context["hour"].tolist() == [3, 2, 1]
    assert train.context["weekday"].tolist() == [1, 1, 2]
    assert train.context_sizes == {"device": 3, "hour": 24, "weekday": 7}
    assert train.context_labels["device"] == [None, "desktop", "mobile", "tablet"]
    test = load_click_log(out, "test", valid_fraction=0, cache=False)
    assert test.y.tolist() == [1]
    assert {k: v.tolist() for k, v in test.context.items()} == {
        "device": [0],
        "hour": [2],
        "weekday": [4],
    }
    assert test.batch([0]).context_device.tolist() == [0]


def _random_log(seed: int, sequential: bool) -> pd.DataFrame:
    """A log whose (group, item) pairs are unique, with rare items (dropped), a device
    per click and times over three weeks, so that a click is found again by its pair."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(120):
        items = rng.choice(np.r_[np.arange(30), 100 + rng.integers(0, 400, 3)], 6, replace=False)
        n = int(rng.integers(2 if not sequential else 3, 7))
        start = 1_600_000_000 + int(rng.integers(0, 21 * 86_400))
        for k in range(n):
            device = rng.choice(["tv", "mobile", "desktop", "", "NaN"])
            rows.append((g, int(items[k]), start + 97 * k, device, g % 9))
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp", "device", "user"])
    return frame.sample(frac=1, random_state=seed)  # rows out of order: sorted by time


def _expected(frame: pd.DataFrame, group: str, data, kind: str):
    """The context of each sample's target, found in the raw log by (group, item)."""
    row = {(g, i): r for r, (g, i) in enumerate(zip(frame[group], frame["item_id"], strict=True))}
    labels = data.user_labels
    devices = data.context_labels["device"]
    out = {"device": [], "hour": [], "weekday": []}
    for user, target in zip(data.user.tolist(), data.y.tolist(), strict=True):
        r = frame.iloc[row[(labels[user], int(data.item_ids[target]))]]
        text = str(r["device"]).strip()
        out["device"].append(devices.index(text) if text and text != "NaN" else 0)
        when = datetime.fromtimestamp(int(r["timestamp"]), tz=timezone.utc)
        out["hour"].append(when.hour + 1)
        out["weekday"].append(when.isoweekday())
    return out


@pytest.mark.parametrize("sequential", [False, True])
def test_sample_contexts_match_the_log(tmp_path: Path, sequential: bool) -> None:
    frame = _random_log(1, sequential)
    out = tmp_path / "out"
    # every group is its own user, so that a sample names its session (its user's sequence)
    frame["user"] = frame["session_id"]
    kwargs = {"session": None} if sequential else {"test_days": 4}
    from_click_log(
        frame, out, user="user", context_cols=["device"], time_context=["hour", "weekday"],
        min_item_support=3, **kwargs,
    )  # fmt: skip
    group = "user"
    for split in ("train", "valid", "test"):
        data = load_click_log(out, split, valid_fraction=0.2, cache=False)
        assert len(data) > 5
        want = _expected(frame, group, data, split)
        for name, values in want.items():
            assert data.context[name].tolist() == values, (split, name)


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("parquet", [False, True])
def test_duckdb_writes_what_pandas_writes(tmp_path: Path, sequential: bool, parquet: bool) -> None:
    pytest.importorskip("duckdb")
    if parquet:
        pytest.importorskip("pyarrow")
    frame = _random_log(2, sequential)
    frame["shop"] = frame["item_id"] % 4  # an integer column
    path = tmp_path / ("log.parquet" if parquet else "log.csv")
    frame.to_parquet(path) if parquet else frame.to_csv(path, index=False)
    kwargs = {"session": None, "user": "user"} if sequential else {"test_days": 4}
    for engine in ("pandas", "duckdb"):
        stats = from_click_log(
            path, tmp_path / engine / "out", engine=engine, context_cols=["device", "shop"],
            time_context=["weekday"], duplicates="drop", min_item_support=3, **kwargs,
        )  # fmt: skip
        assert stats["context_fields"]["values"]["shop"] == 4
    _same_folders(tmp_path / "pandas" / "out", tmp_path / "duckdb" / "out")


def test_context_options_are_checked(tmp_path: Path) -> None:
    log = _tiny()
    with pytest.raises(ValueError, match=r"missing context column\(s\) \['os'\]"):
        from_click_log(log, tmp_path / "o", context_cols=["os"], min_item_support=1)
    with pytest.raises(ValueError, match="cannot name a field"):
        from_click_log(log.rename(columns={"device": "de-vice"}), tmp_path / "o",
                       context_cols=["de-vice"])  # fmt: skip
    with pytest.raises(ValueError, match="unknown field 'month'"):
        from_click_log(log, tmp_path / "o", time_context=["month"])
    with pytest.raises(ValueError, match="named twice"):
        from_click_log(log.rename(columns={"device": "hour"}), tmp_path / "o",
                       context_cols=["hour"], time_context=["hour"])  # fmt: skip
    with pytest.raises(ValueError, match="is the log's session, item, time or user column"):
        from_click_log(log, tmp_path / "o", context_cols=["item_id"])
    seq = log.assign(user=log["session_id"])
    with pytest.raises(ValueError, match="time_context needs the log's time column"):
        from_click_log(seq, tmp_path / "o", session=None, user="user", time=None,
                       time_context=["hour"])  # fmt: skip
    assert not (tmp_path / "o").exists()  # nothing written by a refused call


def test_a_damaged_context_file_is_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    from_click_log(_tiny(), out, context_cols=["device"], test_days=5, min_item_support=1)
    path = out / "train_context.tsv"
    good = path.read_text()
    path.write_text(good.replace("2 2 0", "2 2"))
    with pytest.raises(ValueError, match=r"train_context.tsv, line 2: column 'device': 2 values"):
        load_click_log(out, "train", cache=False)
    path.write_text(good.replace("2 2 0", "2 2 9"))
    with pytest.raises(ValueError, match=r"line 2: column 'device': a value outside 0..3"):
        load_click_log(out, "train", cache=False)
    path.write_text(good.replace("2 2 0", "2 x 0"))
    with pytest.raises(ValueError, match=r"line 2: column 'device': '2 x 0' is not value ids"):
        load_click_log(out, "train", cache=False)
    path.write_text(good.replace("2 2 0", "2 2 1-0"))  # numbers run together
    with pytest.raises(ValueError, match=r"line 2: column 'device': '2 2 1-0' is not value ids"):
        load_click_log(out, "train", cache=False)
    path.write_text(good + "1 1\n")
    with pytest.raises(ValueError, match="3 lines where 2 are needed"):
        load_click_log(out, "train", cache=False)
    # the cache follows the files: the good file again gives the good contexts
    path.write_text(good)
    first = load_click_log(out, "train", valid_fraction=0)
    path.write_text(good.replace("2 2 0", "1 1 1"))
    again = load_click_log(out, "train", valid_fraction=0)
    assert first.context["device"].tolist() == [0, 2, 1]
    assert again.context["device"].tolist() == [1, 1, 1]


def test_models_take_the_logs_own_context_values(tmp_path: Path, capsys) -> None:
    from graphrec.cli import main
    from graphrec.models import build_model
    from graphrec.training import Trainer, load_model

    frame = _random_log(3, False)
    out = tmp_path / "out"
    from_click_log(frame, out, context_cols=["device"], time_context=["hour"], test_days=4,
                   min_item_support=3)  # fmt: skip
    data = load_click_log(out, "train", valid_fraction=0, cache=False)
    model = build_model("din", dataset=data, hidden_channels=8)
    assert model.context_fields == {"device": 3, "hour": 24}
    Trainer(model, data, None, epochs=1, run_dir=tmp_path / "din", progress=False,
            verbose=False, max_steps_per_epoch=3).fit()  # fmt: skip
    loaded = load_model(tmp_path / "din" / "best.pt").eval()
    assert loaded.context_labels == data.context_labels
    session = [[int(data.item_ids[1]), int(data.item_ids[2])]]
    mobile = data.context_labels["device"].index("mobile")
    # the log's values: hour 9 is value id 10, "mobile" its sorted place
    assert {k: v.tolist() for k, v in loaded._context({"device": "mobile", "hour": 9}).items()} == {
        "device": [mobile],
        "hour": [10],
    }
    by_value, value_scores = loaded.recommend(
        session, k=5, contexts=[{"device": "mobile", "hour": 9}], return_scores=True
    )
    plain = copy.deepcopy(loaded)
    plain.set_labels(loaded.item_labels, loaded.user_labels, None)  # value ids only
    by_id, id_scores = plain.recommend(
        session, k=5, contexts=[{"device": mobile, "hour": 10}], return_scores=True
    )
    assert torch.equal(by_value, by_id) and torch.equal(value_scores, id_scores)
    _, unknown_scores = plain.recommend(session, k=5, contexts=[{"hour": 10}], return_scores=True)
    assert not torch.equal(unknown_scores, id_scores)  # the device is read
    with pytest.warns(UserWarning, match="value 'phone' is not among the training log's"):
        unseen = loaded.recommend(session, k=5, contexts=[{"device": "phone", "hour": 9}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(unseen, loaded.recommend(session, k=5, contexts=[{"hour": 9}]))
    base = ["recommend", "--checkpoint", str(tmp_path / "din" / "best.pt"), "--json", "-k", "5"]
    text = " ".join(map(str, session[0]))
    assert main([*base, "--session", text, "--context", "device=mobile,hour=9"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == by_value[0].tolist()

    # served over HTTP: the log's own values, listed by /metadata
    from fastapi.testclient import TestClient

    from graphrec.serve import create_app

    with TestClient(create_app(tmp_path / "din" / "best.pt")) as client:
        meta = client.get("/metadata").json()
        assert meta["context_values"]["device"] == ["desktop", "mobile", "tv"]
        assert meta["context_values"]["hour"] == [str(h) for h in range(24)]
        body = {"session": session[0], "k": 5, "exclude_seen": False,
                "context": {"device": "mobile", "hour": 9}}  # fmt: skip
        r = client.post("/recommend", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == by_value[0].tolist()
        body["context"] = {"device": "phone", "hour": 9}
        r = client.post("/recommend", json=body)
        assert r.status_code == 200 and "'phone' is not among the training log's" in r.text
        assert r.json()["items"] == unseen[0].tolist()
        body["context"] = {"device": [1]}
        assert client.post("/recommend", json=body).status_code in (400, 422)


def test_the_command_line_takes_context_columns(tmp_path: Path) -> None:
    from graphrec.cli import main

    _tiny().to_csv(tmp_path / "log.csv", index=False)
    code = main(["preprocess", "clicks", str(tmp_path / "log.csv"), "--out", str(tmp_path / "cli"),
                 "--test-days", "5", "--min-item-support", "1", "--context-cols", "device",
                 "--time-context", "hour,weekday", "--engine", "pandas"])  # fmt: skip
    assert code == 0
    from_click_log(tmp_path / "log.csv", tmp_path / "api" , context_cols=["device"],
                   time_context=["hour", "weekday"], test_days=5, min_item_support=1,
                   engine="pandas")  # fmt: skip
    for name in ("train_context.tsv", "test_context.tsv", "fields.json"):
        assert (tmp_path / "cli" / name).read_text() == (tmp_path / "api" / name).read_text()
    code = main(["preprocess", "clicks", str(tmp_path / "log.csv"), "--out", str(tmp_path / "x"),
                 "--context-cols", "os", "--engine", "pandas"])  # fmt: skip
    assert code == 2 and not (tmp_path / "x").exists()


def test_a_context_column_without_values_is_left_out(tmp_path: Path, caplog) -> None:
    from graphrec.models import build_model

    log = _tiny().assign(device="")
    with caplog.at_level("WARNING"):
        from_click_log(log, tmp_path / "out", context_cols=["device"], time_context=["hour"],
                       test_days=5, min_item_support=1)  # fmt: skip
    assert "context field(s) ['device']: no written click has a value" in caplog.text
    data = load_click_log(tmp_path / "out", "train", cache=False)
    assert data.context_sizes == {"device": 0, "hour": 24}
    with pytest.warns(UserWarning, match=r"context fields \['device'\] have no value: left out"):
        model = build_model("din", dataset=data, hidden_channels=4)
    assert model.context_fields == {"hour": 24}


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_context_beside_a_product_table(tmp_path: Path, engine: str) -> None:
    if engine == "duckdb":
        pytest.importorskip("duckdb")
    path = tmp_path / "log.csv"
    _tiny().to_csv(path, index=False)
    products = pd.DataFrame({"item_id": [1, 2, 3], "brand": ["x", "y", "x"]})
    stats = from_click_log(path, tmp_path / "out", engine=engine, item_features=products,
                           context_cols=["device"], test_days=5, min_item_support=1)  # fmt: skip
    entries = json.loads((tmp_path / "out" / "fields.json").read_text())
    assert sorted(entries) == ["context", "item"]
    assert stats["item_fields"]["values"] == {"brand": 2}
    assert stats["context_fields"]["values"] == {"device": 3}
    data = load_click_log(tmp_path / "out", "train", valid_fraction=0, cache=False)
    assert data.item_features["brand"][1:, 0].tolist() == [1, 2, 1]
    assert data.context["device"].tolist() == [0, 2, 1]
