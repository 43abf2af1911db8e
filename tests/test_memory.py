import pytest

import graphrec.memory as memory


@pytest.fixture
def fresh(monkeypatch):
    """A process in which the thresholds were never set."""
    monkeypatch.setattr(memory, "_applied", False)
    return memory


def test_reuse_sets_both_thresholds_once(fresh, monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(fresh, "_glibc", lambda: FakeLibc())
    assert not fresh.reusing_freed_memory()
    assert fresh.reuse_freed_memory(1 << 20)
    # the mmap threshold first (setting it stops glibc adapting it), then the trim one
    assert calls == [(fresh.M_MMAP_THRESHOLD, 1 << 20), (fresh.M_TRIM_THRESHOLD, 1 << 20)]
    assert fresh.reusing_freed_memory()
    assert fresh.reuse_freed_memory()  # once per process
    assert len(calls) == 2


def test_reuse_is_refused_without_glibc_or_by_it(fresh, monkeypatch):
    monkeypatch.setattr(fresh, "_glibc", lambda: None)
    assert not fresh.reuse_freed_memory()

    class Refusing:
        def mallopt(self, param, value):
            return 0

    monkeypatch.setattr(fresh, "_glibc", lambda: Refusing())
    assert not fresh.reuse_freed_memory()
    assert not fresh.reusing_freed_memory()
    with pytest.raises(ValueError, match="threshold"):
        fresh.reuse_freed_memory(0)


def test_reuse_on_this_machine(fresh):
    libc = fresh._glibc()
    if libc is None:
        pytest.skip("not glibc")
    assert fresh.reuse_freed_memory()
    assert fresh.reusing_freed_memory()
