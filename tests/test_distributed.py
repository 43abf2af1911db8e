"""Two CPU processes (gloo) against one: same parameters, same metrics."""

import json
import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from graphrec import SRGNN
from graphrec.data import SessionLoader
from graphrec.datasets import synthetic
from graphrec.distributed import all_gather_cat, local_leader_first, shard
from graphrec.evaluation import evaluate
from graphrec.training import Trainer, load_checkpoint

KW = dict(num_sessions=300, num_items=80, num_users=20, num_categories=4)
TRAIN = dict(batch_size=33, lr=0.01, lr_step=1, progress=False)  # 33: uneven slices 17 + 16


def data():
    return synthetic(**KW), synthetic(**KW, split="valid"), synthetic(**KW, split="test")


def new_model():
    torch.manual_seed(0)
    return SRGNN(KW["num_items"], hidden_channels=8)


def worker(rank: int, world: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1")
    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world)
    try:
        with local_leader_first():  # rank 1 enters once rank 0 has left
            with open(f"{tmp}/order", "a") as f:
                f.write(f"in {rank}\n")
            time.sleep(0.2)
            with open(f"{tmp}/order", "a") as f:
                f.write(f"out {rank}\n")
        train, valid, test = data()
        out = {"shard": shard(len(test))}
        # 1. evaluation: shards, counters summed
        out["metrics"] = evaluate(new_model(), test, negatives=20, distributed=True)
        out["gathered"] = all_gather_cat(torch.arange(rank * 10, rank * 10 + rank + 1)).tolist()
        # 2. N steps of training with the global batch split between the processes
        model = new_model()
        Trainer(model, train, None, epochs=1, max_steps_per_epoch=5, **TRAIN).fit()
        torch.save(model.state_dict(), f"{tmp}/steps-{rank}.pt")
        # 3. two epochs with validation and a run directory, stopped after one and resumed
        Trainer(new_model(), train, valid, epochs=1, run_dir=f"{tmp}/run", **TRAIN).fit()
        model = new_model()
        result = Trainer(model, train, valid, epochs=2, run_dir=f"{tmp}/run", **TRAIN).fit(
            resume=True
        )
        torch.save(model.state_dict(), f"{tmp}/resumed-{rank}.pt")
        out["history"] = result.history
        out["random"] = torch.rand(2).tolist()  # each process has its own stream, restored
        with open(f"{tmp}/out-{rank}.json", "w") as f:
            json.dump(out, f)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(2, str(tmp)), nprocs=2, join=True)
    return tmp


def test_the_local_leader_runs_first(two_processes):
    order = (two_processes / "order").read_text().split("\n")
    assert order[:4] == ["in 0", "out 0", "in 1", "out 1"]


def test_loader_slices_the_global_batch():
    train = synthetic(**KW)
    one = SessionLoader(train, 33, shuffle=True)
    halves = [SessionLoader(train, 33, shuffle=True, num_replicas=2, rank=r) for r in (0, 1)]
    for whole, a, b in zip(one, *halves, strict=True):
        assert torch.equal(whole.y, torch.cat([a.y, b.y]))
        assert a.num_sessions - b.num_sessions in (0, 1)
    with pytest.raises(ValueError, match="smaller than the 4 processes"):
        SessionLoader(train, 3, num_replicas=4, rank=0)


def test_sharded_evaluation_equals_one_process(two_processes):
    _, _, test = data()
    single = evaluate(new_model(), test, negatives=20)
    outs = [json.loads((two_processes / f"out-{r}.json").read_text()) for r in (0, 1)]
    assert outs[0]["shard"][0] == 0 and outs[0]["shard"][1] == outs[1]["shard"][0]
    assert outs[1]["shard"][1] == len(test)
    for out in outs:
        assert set(out["metrics"]) == set(single)
        for key, value in single.items():
            assert out["metrics"][key] == pytest.approx(value, abs=1e-12), key
        assert out["gathered"] == [0, 10, 11]


def test_training_equals_one_process_with_the_combined_batch(two_processes):
    train, _, _ = data()
    model = new_model()
    Trainer(model, train, None, epochs=1, max_steps_per_epoch=5, **TRAIN).fit()
    for r in (0, 1):
        state = torch.load(two_processes / f"steps-{r}.pt", weights_only=True)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(state[key], value, atol=1e-5, rtol=0, msg=key)


def test_rank_0_checkpoints_and_the_run_resumes(two_processes, tmp_path):
    train, valid, _ = data()
    model = new_model()
    reference = Trainer(model, train, valid, epochs=2, run_dir=tmp_path, **TRAIN).fit()
    run = two_processes / "run"
    assert {"best.pt", "last.pt", "metrics.jsonl", "config.json"} <= {p.name for p in run.iterdir()}
    assert load_checkpoint(run / "last.pt")["hparams"]["processes"] == 2
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2]  # written once, by rank 0
    state = torch.load(two_processes / "resumed-1.pt", weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(state[key], value, atol=1e-5, rtol=0, msg=key)
    out = json.loads((two_processes / "out-1.json").read_text())
    assert out["random"] != json.loads((two_processes / "out-0.json").read_text())["random"]
    ranks = load_checkpoint(run / "last.pt")["rng_ranks"]
    assert ranks.shape[0] == 2 and not torch.equal(ranks[0], ranks[1])
    for got, expected in zip(out["history"], reference.history, strict=True):
        assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
        assert got["valid"]["HR@20"] == pytest.approx(expected["valid"]["HR@20"], abs=0.01)


def test_distributed_without_a_process_group_is_refused():
    train, _, _ = data()
    with pytest.raises(ValueError, match=r"needs a torch\.distributed process group"):
        Trainer(new_model(), train, distributed=True)
