"""Digests of the batches of real and generated datasets, to pin them across changes.

``python tests/data/batch_digests.py`` prints the digest of every case in
:data:`CASES` (``GRAPHREC_DATA`` must point at the shared data); the test
``test_batch_regression.py`` compares them with the ones recorded when the
datasets still stored every sample's graph (graphrec 0.x, format 3).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from graphrec.datasets import from_click_log, load_dataset

#: (case name, dataset, split, options)
CASES = [
    ("diginetica-train", "diginetica", "train", {}),
    ("diginetica-valid", "diginetica", "valid", {}),
    ("diginetica-test", "diginetica", "test", {}),
    ("diginetica-train-w10-count-h5", "diginetica", "train",
     {"max_length": 10, "weighting": "count", "history_length": 5}),
    ("yoochoose-test", "yoochoose1_64", "test", {}),
    ("yoochoose-train-w20", "yoochoose1_64", "train", {"max_length": 20}),
    ("amazon-train-h20", "amazon-games", "train", {"history_length": 20}),
    ("amazon-valid", "amazon-games", "valid", {}),
    ("amazon-test-h50", "amazon-games", "test", {"history_length": 50}),
    ("clicklog-train-h5", "clicklog", "train", {"history_length": 5}),
    ("clicklog-valid", "clicklog", "valid", {}),
    ("clicklog-test-w3", "clicklog", "test", {"max_length": 3}),
    ("synthetic-train-h5", "synthetic", "train",
     {"history_length": 5, "num_sessions": 3000, "repeat_rate": 0.3}),
    ("synthetic-test-w4", "synthetic", "test",
     {"max_length": 4, "num_sessions": 3000, "repeat_rate": 0.3}),
]  # fmt: skip


def _update(h, key: str, value) -> None:
    if isinstance(value, torch.Tensor):
        h.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        h.update(value.contiguous().numpy().tobytes())
    elif isinstance(value, dict):
        for k in sorted(value):
            _update(h, f"{key}.{k}", value[k])
    else:
        h.update(f"{key}={value!r}".encode())


def batch_digest(h, batch) -> None:
    """Every tensor of a batch, with PyG's bookkeeping (what ``to_data_list`` reads)."""
    for key in sorted(batch.keys()):
        _update(h, key, batch[key])
    _update(h, "num_graphs", batch.num_graphs)
    _update(h, "slices", batch._slice_dict)
    _update(h, "incs", batch._inc_dict)


def dataset_digest(ds) -> str:
    """Every sample in batches of 500, 20 shuffled batches of 100, 50 single samples."""
    h = hashlib.sha256()
    n = len(ds)
    _update(h, "len", n)
    _update(h, "y", ds.y)
    _update(h, "user", ds.user)
    for start in range(0, n, 500):
        batch_digest(h, ds.batch(torch.arange(start, min(start + 500, n))))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    for b in range(20):
        batch_digest(h, ds.batch(perm[b * 100 : (b + 1) * 100]))
    for i in perm[:50].tolist():
        one = ds[i]
        for key in sorted(one.keys()):
            _update(h, key, one[key])
    return h.hexdigest()[:16]


def clicklog_folder(out: Path) -> Path:
    """A generated log of 3,000 sessions by 300 users over 30 days through
    ``from_click_log`` (the last 7 days are the test split)."""
    if not (out / "meta.json").is_file():
        gen = torch.Generator().manual_seed(0)
        lengths = torch.randint(1, 12, (3000,), generator=gen)
        session = torch.repeat_interleave(torch.arange(3000), lengths)
        item = (torch.rand(session.numel(), generator=gen) ** 3 * 400).long() + 1
        user = torch.randint(1, 301, (3000,), generator=gen)[session]
        start = torch.sort(torch.randint(0, 30 * 86400, (3000,), generator=gen)).values
        within = (
            torch.arange(session.numel()) - torch.cumsum(lengths, 0)[session] + lengths[session]
        )
        frame = pd.DataFrame({
            "session_id": session.numpy(), "item_id": item.numpy(), "user_id": user.numpy(),
            "timestamp": (start[session] + 30 * within).numpy(),
        })  # fmt: skip
        from_click_log(frame, out, user="user_id", min_item_support=1)
    return out


def case_digest(name: str, dataset: str, split: str, options: dict, root: Path, work: Path) -> str:
    if dataset == "clicklog":
        dataset = str(clicklog_folder(work / "clicklog"))
    if dataset != "synthetic":
        options = {**options, "cache": False}
    ds = load_dataset(dataset, split, root=root, **options)
    return dataset_digest(ds)


if __name__ == "__main__":
    root = Path(os.environ.get("GRAPHREC_DATA", "datasets"))
    with tempfile.TemporaryDirectory() as work:
        for name, dataset, split, options in CASES:
            if len(sys.argv) > 1 and name not in sys.argv[1:]:
                continue
            print(
                f'    "{name}": "{case_digest(name, dataset, split, options, root, Path(work))}",'
            )
