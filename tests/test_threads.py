"""CPU threads under load (sslscope.threads): the choice, its precedence, its record.

Targets asserted: the free cores are the usable ones minus those busy elsewhere, at least 1;
OMP_WAIT_POLICY becomes PASSIVE only on a loaded machine and never overrides the user's; an
explicit --threads beats OMP_NUM_THREADS, which beats the automatic choice, which is made once
per process; a run records its thread count in run.json. The loaded / idle ratios are in
benchmarks/load.md (a benchmark, not a test).
"""

import json

import pytest

from sslscope import threads
from sslscope.train import train
from tests.conftest import tiny_config


@pytest.mark.parametrize("cores, busy, free", [(2, 0.0, 2), (2, 0.6, 1), (2, 4.0, 1),
                                               (16, 3.0, 13), (4, -1.0, 4)])
def test_free_cores(cores, busy, free):
    assert threads.free_cores(cores, busy) == free


def test_busy_elsewhere_reads_a_number():
    assert threads.busy_elsewhere() >= 0


def test_passive_waiting_only_under_load_and_never_over_the_user():
    idle, loaded, user = {}, {}, {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.prepare_openmp(idle, free=2, cores=2)
    threads.prepare_openmp(loaded, free=1, cores=2)
    threads.prepare_openmp(user, free=1, cores=2)
    assert idle == {} and loaded == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert user == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_precedence(monkeypatch):
    assert threads.resolve_threads(3, {"OMP_NUM_THREADS": "5"}) == 3
    assert threads.resolve_threads(0, {"OMP_NUM_THREADS": "5"}) == 5
    monkeypatch.setattr(threads, "_AUTOMATIC", None)
    monkeypatch.setattr(threads, "free_cores", lambda: 7)
    assert threads.resolve_threads(0, {}) == 7
    monkeypatch.setattr(threads, "free_cores", lambda: 1)  # the load changed: same choice
    assert threads.resolve_threads(0, {}) == 7


def test_a_run_records_its_threads(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        train(tiny_config(steps=2, threads=1), tmp_path / "r", progress=False)
        assert json.loads((tmp_path / "r" / "run.json").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(before)
