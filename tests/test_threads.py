import pytest
import torch

from graphrec import threads
from graphrec.threads import cgroup_cpu_limit, choose_threads, configure_threads


def test_cgroup_quota_v2_and_v1(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_cpu_limit(v1) == 3.0


@pytest.fixture
def machine(monkeypatch):
    """A machine of 4 CPUs and a load the test sets."""
    state = {"load": 0.0}
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "busy_cpus", lambda: state["load"])
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    return state


def test_choice(machine, monkeypatch):
    assert choose_threads(work=50e6)[0] == 4
    machine["load"] = 2.2  # another training keeps two cores busy
    count, why = choose_threads(work=50e6)
    assert count == 2 and "kept busy by other processes" in why
    machine["load"] = 9.0
    assert choose_threads(work=50e6)[0] == 1  # never fewer than one
    machine["load"] = 0.0
    assert choose_threads(work=3000 * 100) == (1, choose_threads(work=3000 * 100)[1])
    assert choose_threads(work=3000 * 100)[0] == 1  # the demo's model: one thread
    assert choose_threads(work=50e6, requested=3) == (3, "requested")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two processes of torchrun share the CPUs
    assert choose_threads(work=50e6)[0] == 2
    with pytest.raises(ValueError, match="must be >= 1"):
        choose_threads(requested=0)


def test_requested_threads_capped_at_the_cpus(machine, caplog):
    # 1000 threads on 4 CPUs would spin against each other: capped, with a warning
    with caplog.at_level("WARNING", logger="graphrec"):
        count, why = choose_threads(work=50e6, requested=1000)
    assert count == 4 and "capped" in why
    assert "1000 threads requested, but only 4 CPU(s)" in caplog.text
    assert choose_threads(requested=4) == (4, "requested")


def test_configure_sets_and_logs(machine, caplog):
    before = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="graphrec"):
            assert configure_threads(work=50e6) == 4
        assert torch.get_num_threads() == 4
        assert "using 4 thread(s): 4 CPU(s) available" in caplog.text
    finally:
        torch.set_num_threads(before)
