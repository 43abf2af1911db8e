import sys

import pandas as pd
import pytest
import torch

from graphrec.cli import main
from graphrec.datasets import from_click_log, load_dataset
from graphrec.models import build_model
from graphrec.training import Trainer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plot")
    rows = [(f"s{s}", f"i{(s + j) % 30}", 60 * (4 * s + j)) for s in range(300) for j in range(4)]
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    from_click_log(frame, tmp / "log", test_fraction=0.2)
    train, valid = load_dataset(tmp / "log", "train"), load_dataset(tmp / "log", "valid")
    torch.manual_seed(0)
    model = build_model("srgnn", dataset=train, hidden_channels=8)
    Trainer(model, train, valid, epochs=3, lr=0.01, run_dir=tmp / "run", progress=False,
            run_info={"dataset": str(tmp / "log")}).fit()  # fmt: skip
    return tmp / "run"


def test_training_curves(run, capsys):
    assert main(["plot", str(run)]) == 0
    assert (run / "curves.png").read_bytes().startswith(PNG)
    assert main(["plot", str(run), "--out", str(run / "c.svg"), "--metrics", "MRR@20"]) == 0
    assert b"<svg" in (run / "c.svg").read_bytes()[:500]
    assert main(["plot", str(run), "--metrics", "AUC"]) == 2
    assert "not logged" in capsys.readouterr().err
    assert main(["plot", str(run.parent / "nowhere")]) == 2
    assert "metrics.jsonl not found" in capsys.readouterr().err


def test_tsne_map_of_item_embeddings(run, capsys):
    assert main(["plot", "--embeddings", str(run / "best.pt"), "--sample", "25"]) == 0
    assert (run / "embeddings.png").read_bytes().startswith(PNG)
    assert main(["plot", "--embeddings", str(run / "best.pt"), "--color", "category"]) == 2
    assert "has no item categories" in capsys.readouterr().err


def test_tsne_coloured_by_category(tmp_path, monkeypatch):
    from graphrec.datasets import synthetic
    from graphrec.plot import plot_embeddings

    kw = dict(num_sessions=300, num_items=80, num_users=20, num_categories=4)
    train = synthetic(**kw)
    torch.manual_seed(0)
    model = build_model("srgnn", dataset=train, hidden_channels=8)
    Trainer(model, train, None, epochs=1, run_dir=tmp_path, progress=False,
            run_info={"dataset": "synthetic"}).fit()  # fmt: skip
    # the checkpoint names the demo-sized log: read this small one instead
    import graphrec.datasets as datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda name, split, **_: synthetic(**kw))
    path = plot_embeddings(tmp_path / "best.pt", color="category", sample=40)
    assert path.read_bytes().startswith(PNG)


def test_missing_extra_is_named(run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert main(["plot", str(run), "--out", str(run / "x.png")]) == 2
    assert 'pip install "graphrec[plot]"' in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    from graphrec.plot import embedding_map

    with pytest.raises(ImportError, match=r"scikit-learn: pip install"):
        embedding_map(torch.randn(10, 4), sample=5)


def test_epoch_axis_shows_whole_epochs_only():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphrec.plot import _epoch_axis

    fig, ax = plt.subplots()
    ax.plot([1], [7.2], marker="o")
    _epoch_axis(ax, [1])  # one epoch: one tick "1", not 0.945 ... 1.050
    assert list(ax.get_xticks()) == [1] and ax.get_xlim() == (0.5, 1.5)
    ax.plot(range(1, 31), range(30))
    _epoch_axis(ax, list(range(1, 31)))
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_tsne_reports_its_stages(run, capsys):
    assert main(["plot", "--embeddings", str(run / "best.pt"), "--sample", "20"]) == 0
    out = capsys.readouterr().out
    assert "reading the training split" in out and "t-SNE of 20 items of dimension 8" in out
    assert "mapped in" in out
