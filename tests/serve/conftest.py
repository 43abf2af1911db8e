import pandas as pd
import pytest
import torch

from graphrec.data import SessionDataset
from graphrec.datasets import from_click_log, load_dataset, synthetic
from graphrec.models import build_model
from graphrec.training import Trainer


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Small trained checkpoints: SR-GNN on integer ids, DIN beside it, and SR-GNN
    on a log with text ids."""
    out = tmp_path_factory.mktemp("serve")
    kw = dict(num_sessions=600, num_items=150, num_users=30, num_categories=5)
    train, valid = synthetic(**kw), synthetic(**kw, split="valid")
    info = {"dataset": "synthetic"}
    made = {}
    for name in ("srgnn", "din"):
        torch.manual_seed(0)
        model = build_model(name, dataset=train, hidden_channels=8)
        Trainer(model, train, valid, epochs=1, run_dir=out / name, progress=False,
                verbose=False, run_info=info, max_steps_per_epoch=20,
                monitor="AUC (100 neg.)" if name == "din" else "HR@20",
                negatives=100 if name == "din" else None).fit()  # fmt: skip
        made[name] = out / name / "best.pt"
    rows = [
        (f"s{s}", f"sku-{(s + j) % 40}", 60 * (4 * s + j)) for s in range(300) for j in range(4)
    ]
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    from_click_log(frame, out / "log", test_fraction=0.2)
    text_train = load_dataset(out / "log", "train")
    torch.manual_seed(0)
    model = build_model("srgnn", dataset=text_train, hidden_channels=8)
    Trainer(model, text_train, None, epochs=1, run_dir=out / "text", progress=False,
            verbose=False, run_info={"dataset": str(out / "log")}).fit()  # fmt: skip
    made["text"] = out / "text" / "best.pt"
    made["train"] = train
    # DIN with an item field, a user field and a context field
    branded = synthetic(**kw, num_brands=4)
    hour = torch.arange(len(branded)) % 24 + 1
    fields = SessionDataset(
        branded.sessions, branded.sample_session, branded.target_position, branded.num_items,
        user=branded.user, num_users=branded.num_users, item_features=branded.item_features,
        user_features=branded.user_features, context={"hour": hour}, context_sizes={"hour": 24},
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model("din", dataset=fields, hidden_channels=8)
    Trainer(model, fields, None, epochs=1, run_dir=out / "din-fields", progress=False,
            verbose=False, run_info=info, max_steps_per_epoch=20).fit()  # fmt: skip
    made["din-fields"] = out / "din-fields" / "best.pt"
    return made
