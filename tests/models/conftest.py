import pytest
import torch

from graphrec.data import collate, session_graph


def random_sessions(gen, num_items, count, max_len=8):
    return [
        torch.randint(
            1, num_items + 1, (int(torch.randint(1, max_len + 1, (1,), generator=gen)),),
            generator=gen,
        ).tolist()
        for _ in range(count)
    ]  # fmt: skip


@pytest.fixture
def sessions():
    return random_sessions(torch.Generator().manual_seed(0), 30, 12)


@pytest.fixture
def batch(sessions):
    return collate([session_graph(s, target=1) for s in sessions])
