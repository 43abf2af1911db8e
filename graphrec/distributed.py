"""Data-parallel training on ``torch.distributed`` (gloo on CPU, nccl on GPU).

graphrec does not run its own engine: processes are launched by ``torchrun``,
gradients are averaged by :class:`torch.nn.parallel.DistributedDataParallel`.
What graphrec adds is that the result does not depend on the number of
processes: every step consumes the same global batch as one process would
(each rank takes a contiguous slice of it, :class:`~graphrec.data.SessionLoader`),
each rank's loss is weighted by its share of the batch so that the averaged
gradient is the gradient of the global mean loss, and evaluation counters are
summed over ranks (never averaged per rank), so metrics are exact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger("graphrec.training")


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files and prints."""
    return rank() == 0


@contextmanager
def local_leader_first() -> Iterator[None]:
    """Run the block on each machine's first process (``LOCAL_RANK`` 0) first,
    then on the others at once.

    Loading the datasets under it, the first process of a machine builds and
    caches the processed files while the others wait; they then memory-map the
    files it wrote (sharing their pages) instead of building copies of their own
    and racing to write one file. Without a process group it just runs the block.
    """
    if not is_distributed():
        yield
        return
    leader = int(os.environ.get("LOCAL_RANK", rank())) == 0
    if not leader:
        dist.barrier()
    try:
        yield
    finally:
        if leader:
            dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether the environment of ``torchrun`` (``WORLD_SIZE > 1``) is present."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str | torch.device | None = None, timeout_s: int = 1800) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    The backend is nccl for a CUDA device, gloo otherwise. With CUDA, each
    process takes the GPU of its ``LOCAL_RANK``.

    Returns:
        Whether training is distributed (``False`` for a single process).

    Raises:
        ValueError: the environment of ``torchrun`` is missing or incomplete.
    """
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(
            f"distributed training needs torchrun's environment; {missing} not set "
            "(launch with: torchrun --nproc-per-node N -m graphrec.cli train ...)"
        )
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    log.info("rank %d of %d (%s)", rank(), world_size(), dist.get_backend())
    return is_distributed()


def shard(num: int) -> tuple[int, int]:
    """The contiguous ``[start, stop)`` range of ``num`` items this rank handles."""
    per = -(-num // world_size())
    start = min(rank() * per, num)
    return start, min(start + per, num)


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum of ``tensor`` over ranks (itself without a process group)."""
    if is_distributed():
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_cat(tensor: Tensor) -> Tensor:
    """``tensor`` of every rank concatenated along dimension 0, in rank order."""
    if not is_distributed():
        return tensor
    size = torch.tensor([tensor.size(0)], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.size(0)] = tensor
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``: what DistributedDataParallel wraps,
    since it synchronises gradients of ``forward`` calls only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch) -> Tensor:
        return self.model.loss(batch)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model's loss wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`."""
    ids = None
    if device.type == "cuda":
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
    return nn.parallel.DistributedDataParallel(
        LossModule(model),
        device_ids=ids,
        find_unused_parameters=True,  # e.g. user embeddings on data without users
    )
