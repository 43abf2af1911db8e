"""Exports run by onnxruntime equal the torch models (vectors, scores, top-20 lists)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from graphrec.data import collate, session_graph
from graphrec.export import ExportedRecommender, ExportError, ExportLoadError, export_model
from graphrec.export.onnx import pad, probe_sessions
from graphrec.models import TwoStage
from graphrec.training import load_model

LENGTHS = range(1, 71)


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    made = {}
    for name in ("srgnn", "stamp", "attrec", "sdm", "srgnn-repeat", "srgnn-niser-plus"):
        try:
            export_model(trained[name], out / name)
        except ExportError as e:
            raise ExportError(f"{name}: {e}") from e
        made[name] = out / name
    export_model(trained["srgnn"], out / "srgnn-din", ranker=trained["din"], k=30)
    made["srgnn-din"] = out / "srgnn-din"
    return made


def _sessions(model, count=70):
    """Sessions of every length 1..70 with repeats (the probe's generator, another seed)."""
    return probe_sessions(model.num_items, count=count, longest=70, seed=11)


@pytest.mark.parametrize(
    "name", ["srgnn", "stamp", "attrec", "sdm", "srgnn-repeat", "srgnn-niser-plus"]
)
def test_vectors_and_top20_equal_torch(trained, exports, name):
    model = load_model(trained[name]).eval()
    sessions = _sessions(model)
    assert sorted({len(s) for s in sessions}) == list(LENGTHS)
    assert any(len(set(s)) < len(s) for s in sessions)  # repeats
    category = getattr(model, "item_category", None)
    batch = collate([session_graph(s, category=category) for s in sessions])
    rec = ExportedRecommender(exports[name], threads=1)
    feeds = rec.feeds(pad(sessions).numpy())
    with torch.no_grad():
        want = model.session_embedding(batch).numpy()
        want_scores = model.score(batch)
    np.testing.assert_allclose(rec.encode(feeds), want, atol=1e-5, rtol=0)
    got_top, _ = rec.top_k(feeds, 20)
    assert np.array_equal(got_top, want_scores.topk(20, dim=1).indices.numpy())


@pytest.mark.parametrize("name", ["srgnn", "attrec", "sdm"])
def test_recommend_in_the_logs_ids_equals_torch(trained, exports, name):
    """recommend() on original ids, seen items excluded: the same lists as the model's."""
    model = load_model(trained[name]).eval()
    ids = model.item_ids
    sessions = [[int(ids[i]) for i in s] for s in _sessions(model, 30)]
    want = model.recommend(sessions, k=20, exclude_seen=True)
    got, scores = ExportedRecommender(exports[name], threads=1).recommend(
        sessions, k=20, exclude_seen=True
    )
    assert got == want.tolist()
    assert all(len(s) == 20 for s in scores)


def test_pipeline_equals_two_stage(trained, exports):
    retriever, ranker = load_model(trained["srgnn"]).eval(), load_model(trained["din"]).eval()
    pipeline = TwoStage(retriever, ranker, k=30)
    ids = retriever.item_ids
    sessions = [[int(ids[i]) for i in s] for s in _sessions(retriever)]
    users = [n % 31 for n in range(len(sessions))]
    want = pipeline.recommend(sessions, k=20, users=users)
    got, _ = ExportedRecommender(exports["srgnn-din"], threads=1).recommend(
        sessions, k=20, users=users
    )
    assert got == want.tolist()
    manifest = json.loads((exports["srgnn-din"] / "manifest.json").read_text())
    assert manifest["pipeline"] == {"k": 30}
    assert manifest["graphs"]["ranker"]["inputs"] == ["clicks", "candidates", "user", "history"]


def test_dien_at_a_fixed_width(trained, tmp_path):
    """DIEN steps through its behaviours: exported at fixed widths (kept small here:
    the exporter unrolls every step), longer inputs refused by the runtime."""
    export_model(trained["dien"], tmp_path / "dien", max_length=12, max_history=6)
    rec = ExportedRecommender(tmp_path / "dien", threads=1)
    assert rec.manifest["graphs"]["ranker"]["fixed_width"] == {"clicks": 12, "history": 6}
    model = load_model(trained["dien"]).eval()
    sessions = probe_sessions(model.num_items, count=24, longest=12, seed=5)
    histories = [list(range(1, 1 + n % 7)) for n in range(24)]
    candidates = torch.randint(1, model.num_items + 1, (24, 15))
    users = [n % 31 for n in range(24)]
    graphs = [session_graph(s, user=users[i], category=model.item_category, history=histories[i])
              for i, s in enumerate(sessions)]  # fmt: skip
    batch = collate(graphs)
    with torch.no_grad():
        want = model.score(batch, candidates).numpy()
    feeds = rec.feeds(pad(sessions).numpy(), np.array(users), pad(histories).numpy())
    np.testing.assert_allclose(rec.rank(feeds, candidates.numpy()), want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="at most 12"):
        rec.rank(rec.feeds(pad([[1] * 13]).numpy()), candidates[:1].numpy())


@pytest.mark.slow
def test_dien_at_the_default_width(trained, tmp_path):
    export_model(trained["dien"], tmp_path / "dien")  # checks lengths 1..70 itself
    assert ExportedRecommender(tmp_path / "dien").max_length() == 70


def test_the_runtime_needs_no_torch(exports):
    """The folder runs with its own graphrec_runtime.py: no torch, no graphrec."""
    folder = exports["srgnn"]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import graphrec_runtime as r; "
        "rec = r.ExportedRecommender(sys.argv[1]); "
        "items, _ = rec.recommend([[rec.item_labels[0], rec.item_labels[3]]], k=5); "
        "assert 'torch' not in sys.modules and 'graphrec' not in sys.modules; print(items)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                          text=True, cwd=folder)  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = ExportedRecommender(folder)
    want, _ = model.recommend([[model.item_labels[0], model.item_labels[3]]], k=5)
    assert done.stdout.strip() == str(want)


def test_manifest_lists_every_file_with_its_digest(exports):
    folder = exports["srgnn-din"]
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"encoder.onnx", "ranker.onnx", "items.npy", "index.faiss", "items.tsv",
            "graphrec_runtime.py"} <= on_disk  # fmt: skip
    assert set(manifest["versions"]) >= {"torch", "onnx", "onnxruntime", "faiss", "graphrec"}
    assert manifest["retriever"]["name"] == "SRGNN" and manifest["ranker"]["name"] == "DIN"
    assert "HR@20" in manifest["retriever"]["selected_with"]


def test_an_altered_file_is_refused(exports, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exports["srgnn"], copy)
    items = np.load(copy / "items.npy")
    items[3] += 1.0
    np.save(copy / "items.npy", items)
    with pytest.raises(ExportLoadError, match=r"items\.npy: altered"):
        ExportedRecommender(copy)
    (copy / "encoder.onnx").unlink()
    with pytest.raises(ExportLoadError, match=r"encoder\.onnx: missing"):
        ExportedRecommender(copy)


def test_approximate_index_records_its_recall(trained, tmp_path):
    manifest = export_model(trained["srgnn"], tmp_path / "hnsw", index="hnsw")
    assert manifest["index"]["kind"] == "hnsw" and 0.0 <= manifest["index"]["recall@20"] <= 1.0
    assert "training popularity" in manifest["index"]["recall_measured_on"]
    rec = ExportedRecommender(tmp_path / "hnsw")
    ids, scores = rec.top_k(rec.feeds(pad([[1, 2, 1]]).numpy()), 10, exclude_seen=True)
    assert ids.shape == (1, 10) and not set(ids[0].tolist()) & {0, 1, 2}
    assert np.all(np.diff(scores[0]) <= 0)


def test_a_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
    import graphrec.export.onnx as onnx_export

    def broken(*args, **kwargs):
        raise ExportError("the session encoder's vectors differ from torch's by 1")

    monkeypatch.setattr(onnx_export, "_verify", broken)
    with pytest.raises(ExportError, match="differ"):
        export_model(trained["stamp"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no folder, no partial sibling


def test_existing_folders_are_kept(trained, exports, tmp_path):
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_model(trained["srgnn"], exports["srgnn"])
    mine = tmp_path / "notes"
    mine.mkdir()
    with pytest.raises(FileExistsError, match="not a graphrec export"):
        export_model(trained["srgnn"], mine, overwrite=True)


def test_roles_and_indexes_are_checked(trained, tmp_path):
    with pytest.raises(ExportError, match="DIN is a ranker"):
        export_model(trained["din"], tmp_path / "x", ranker=trained["srgnn"])
    with pytest.raises(ExportError, match="repeat-explore mixture"):
        export_model(trained["srgnn-repeat"], tmp_path / "x", index="hnsw")
    assert not (tmp_path / "x").exists()


def test_a_part_that_cannot_be_exported_is_named(trained, tmp_path, monkeypatch):
    from graphrec.export.onnx import Ranker

    original = torch.onnx.export

    def refuse_rankers(module, *args, **kwargs):
        if isinstance(module, Ranker):
            raise RuntimeError("unsupported operator aten::frobnicate")
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", refuse_rankers)
    with pytest.raises(ExportError, match=r"the ranker DIN could not be exported to ONNX: .*frob"):
        export_model(trained["stamp"], tmp_path / "x", ranker=trained["din"], index=None)
    assert list(tmp_path.iterdir()) == []


def test_a_ranker_alone_scores_the_whole_catalogue(trained, tmp_path):
    model = load_model(trained["din"]).eval()
    export_model(trained["din"], tmp_path / "din")
    rec = ExportedRecommender(tmp_path / "din", threads=1)
    assert rec.encoder is None and rec.index is None
    sessions = _sessions(model, 12)
    users = [n % 31 for n in range(12)]
    graphs = [session_graph(s, user=users[i], category=model.item_category, history=[])
              for i, s in enumerate(sessions)]  # fmt: skip
    with torch.no_grad():
        want = model.score(collate(graphs))
    feeds = rec.feeds(pad(sessions).numpy(), np.array(users))
    got = rec.scores(feeds)
    np.testing.assert_allclose(got[:, 1:], want[:, 1:].numpy(), atol=1e-5, rtol=1e-5)
    top, _ = rec.top_k(feeds, 20)
    assert np.array_equal(top, want.topk(20, dim=1).indices.numpy())


def test_a_logs_own_item_and_user_ids(tmp_path):
    """A click log with text items and users: the export answers in them, as the model."""
    import pandas as pd

    from graphrec.datasets import from_click_log, load_dataset
    from graphrec.models import build_model
    from graphrec.training import Trainer

    rows = [(f"s{s}", f"u{s % 7}", f"sku-{(s + j) % 40}", 60 * (4 * s + j))
            for s in range(300) for j in range(4)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["session_id", "user_id", "item_id", "timestamp"])
    from_click_log(frame, tmp_path / "log", test_fraction=0.2, user="user_id")
    train = load_dataset(tmp_path / "log", "train")
    torch.manual_seed(0)
    model = build_model("attrec", dataset=train, hidden_channels=8)
    Trainer(model, train, None, epochs=1, run_dir=tmp_path / "run", progress=False,
            verbose=False, run_info={"dataset": str(tmp_path / "log")}).fit()  # fmt: skip
    manifest = export_model(tmp_path / "run" / "best.pt", tmp_path / "export")
    assert manifest["item_ids"] == "text" and manifest["user_ids"] == "text"
    rec = ExportedRecommender(tmp_path / "export", threads=1)
    sessions, users = [["sku-1", "sku-2"], ["sku-7"]], ["u3", "u5"]
    got, _ = rec.recommend(sessions, k=5, users=users, exclude_seen=True)
    want = load_model(tmp_path / "run" / "best.pt").recommend(
        sessions, k=5, users=users, exclude_seen=True
    )
    assert got == want
    with pytest.raises(KeyError, match="unknown user"):
        rec.recommend(sessions, users=["u3", "nobody"])


@pytest.mark.parametrize("name", ["srgnn-fields", "sdm-fields"])
def test_item_and_user_fields_export(trained, tmp_path, name):
    """The field tables travel inside the graphs and the item table: the same
    vectors and top-20 lists as torch."""
    model = load_model(trained[name]).eval()
    assert model.item_fields == {"brand": 4}
    export_model(trained[name], tmp_path / name)
    sessions = _sessions(model, 40)
    num_users = getattr(model, "num_users", 0)
    users = [n % (num_users + 1) for n in range(len(sessions))] if num_users else None
    batch = collate(
        [session_graph(s, user=None if users is None else users[n]) for n, s in enumerate(sessions)]
    )
    rec = ExportedRecommender(tmp_path / name, threads=1)
    feeds = rec.feeds(pad(sessions).numpy(), users=None if users is None else np.array(users))
    with torch.no_grad():
        want = model.session_embedding(batch).numpy()
        want_top = model.score(batch).topk(20, dim=1).indices.numpy()
    np.testing.assert_allclose(rec.encode(feeds), want, atol=1e-5, rtol=0)
    assert np.array_equal(rec.top_k(feeds, 20)[0], want_top)


def test_context_fields_are_refused(tmp_path):
    from graphrec.data import SessionDataset
    from graphrec.datasets import synthetic
    from graphrec.models import build_model
    from graphrec.training import Trainer

    d = synthetic(num_sessions=100, num_items=40, num_users=10, num_categories=2)
    data = SessionDataset(
        d.sessions, d.sample_session, d.target_position, d.num_items,
        context={"hour": torch.arange(len(d)) % 24 + 1},
    )  # fmt: skip
    model = build_model("din", dataset=data, hidden_channels=4)
    Trainer(model, data, None, epochs=1, run_dir=tmp_path / "din", progress=False,
            verbose=False, max_steps_per_epoch=2).fit()  # fmt: skip
    with pytest.raises(ExportError, match=r"context fields \['hour'\].*unknown context"):
        export_model(tmp_path / "din" / "best.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_ranker_with_in_session_features_exports(tmp_path):
    from graphrec.datasets import synthetic
    from graphrec.models import build_model
    from graphrec.training import Trainer

    torch.manual_seed(0)
    data = synthetic(num_sessions=100, num_items=60, num_categories=4, repeat_rate=0.5)
    model = build_model("din", dataset=data, hidden_channels=8, session_features=True)
    Trainer(model, data, None, epochs=1, run_dir=tmp_path / "run", progress=False,
            verbose=False, max_steps_per_epoch=2).fit()  # fmt: skip
    export_model(tmp_path / "run" / "best.pt", tmp_path / "din")
    rec = ExportedRecommender(tmp_path / "din", threads=1)
    sessions = probe_sessions(60, count=24, longest=12, seed=5)
    candidates = torch.randint(1, 61, (24, 15))
    candidates[:, 0] = torch.tensor([s[-1] for s in sessions])  # in the session: recency 1
    users = [n % 20 for n in range(24)]
    batch = collate([session_graph(s, user=users[i], category=model.item_category)
                     for i, s in enumerate(sessions)])  # fmt: skip
    with torch.no_grad():
        want = model.eval().score(batch, candidates).numpy()
    got = rec.rank(rec.feeds(pad(sessions).numpy(), np.array(users)), candidates.numpy())
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
