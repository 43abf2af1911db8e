import pytest
import torch

from graphrec.datasets import synthetic
from graphrec.models import build_model
from graphrec.training import Trainer

RANKERS = ("din", "dien")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Checkpoints of every model on a small synthetic log (users, categories,
    histories), trained enough that their scores are far from ties."""
    out = tmp_path_factory.mktemp("export")
    kw = dict(num_sessions=800, num_items=150, num_users=30, num_categories=5)
    train, valid = synthetic(**kw), synthetic(**kw, split="valid")

    def make(name: str, **options) -> str:
        tag = name + ("-repeat" if options.get("repeat") else "")
        torch.manual_seed(0)
        model = build_model(name, dataset=train, hidden_channels=8, **options)
        rank = name in RANKERS
        Trainer(model, train, valid, epochs=1, run_dir=out / tag, progress=False, verbose=False,
                run_info={"dataset": "synthetic"}, max_steps_per_epoch=60,
                monitor="AUC (50 neg.)" if rank else "HR@20",
                negatives=50 if rank else None).fit()  # fmt: skip
        return str(out / tag / "best.pt")

    made = {name: make(name) for name in ("srgnn", "stamp", "attrec", "sdm", "din", "dien")}
    made["srgnn-repeat"] = make("srgnn", repeat=True)
    made["srgnn-niser-plus"] = make("srgnn-niser-plus")  # positions, unit vectors, dropout
    # side fields: an item field (brand) and a user field (segment)
    branded = synthetic(**kw, num_brands=4)
    for name in ("srgnn", "sdm"):
        torch.manual_seed(0)
        model = build_model(name, dataset=branded, hidden_channels=8)
        Trainer(model, branded, None, epochs=1, run_dir=out / f"{name}-fields", progress=False,
                verbose=False, max_steps_per_epoch=60).fit()  # fmt: skip
        made[f"{name}-fields"] = str(out / f"{name}-fields" / "best.pt")
    made["out"] = out
    return made
