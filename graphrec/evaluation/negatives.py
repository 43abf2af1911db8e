"""Sampled negatives for the sampled-metric protocol, drawn once per split."""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.data import SessionDataset
from graphrec.data.dataset import _positions


def interacted_items(dataset: SessionDataset, index: Tensor) -> tuple[Tensor, Tensor]:
    """The items each sample's user interacted with, as ``(rows, items)`` pairs.

    With users (``dataset.user`` and ``dataset.user_items``): every
    interaction of the sample's user, in any split. Without: every click of
    the sample's full session. The target is always included.
    """
    if dataset.user is not None and dataset.user_items is not None:
        items, ptr = dataset.user_items
        owner = dataset.user[index]
    elif dataset.sessions is not None and dataset.sample_session is not None:
        items, ptr = dataset.sessions
        owner = dataset.sample_session[index]
    else:
        raise ValueError(
            f"{dataset.name}: keeps neither users' interactions nor full sessions; "
            "cannot tell which items a sample's user never interacted with"
        )
    starts, counts = ptr[owner], ptr[owner + 1] - ptr[owner]
    rows = torch.repeat_interleave(torch.arange(index.numel()), counts)
    rows = torch.cat([rows, torch.arange(index.numel())])
    return rows, torch.cat([items[_positions(starts, counts)], dataset.y[index]])


def sample_negatives(
    dataset: SessionDataset, num: int = 100, seed: int = 0, chunk_size: int = 512
) -> Tensor:
    """``[len(dataset), num]`` items per sample, drawn uniformly without
    replacement from the items its user never interacted with.

    The draw depends only on the dataset, ``num`` and ``seed``, so every model
    evaluated on a split meets the same negatives. It is cached on the dataset.
    Memory stays at ``chunk_size x (num_items + 1)`` floats.

    Raises:
        ValueError: a user interacted with so many items that fewer than
            ``num`` remain.
    """
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if num >= dataset.num_items:
        raise ValueError(
            f"{dataset.name}: {num} sampled negatives need a catalogue of more than {num} "
            f"items; it has {dataset.num_items} (pass fewer negatives)"
        )
    cache = dataset.__dict__.setdefault("_negatives", {})
    if (num, seed) in cache:
        return cache[(num, seed)]
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(dataset), num, dtype=torch.long)
    for start in range(0, len(dataset), chunk_size):
        index = torch.arange(start, min(start + chunk_size, len(dataset)))
        keys = torch.rand(index.numel(), dataset.num_items + 1, generator=gen)
        rows, items = interacted_items(dataset, index)
        keys[rows, items] = -1.0
        keys[:, 0] = -1.0  # padding
        top_keys, top = keys.topk(num, dim=1)
        if bool((top_keys < 0).any()):
            raise ValueError(
                f"{dataset.name}: a user interacted with more than {dataset.num_items - num} "
                f"items, fewer than {num} negatives remain"
            )
        out[index] = top
    cache[(num, seed)] = out
    return out
