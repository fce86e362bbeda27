"""CPU threads under load (sslscope.threads): the choice, its precedence, its record.

Targets asserted: the free cores are the usable ones minus those busy elsewhere, at least 1;
the command line sets OMP_NUM_THREADS to them, and OMP_WAIT_POLICY=PASSIVE only on a loaded
machine, never over the user's settings, and torch starts with that count; --threads sets a
run's count; a run records its thread count in run.json. The loaded / idle ratios are in
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


def test_the_command_line_sets_threads_and_waiting_unless_the_user_did():
    idle, loaded = {}, {}
    user = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    threads.prepare_openmp(idle, free=2, cores=2)
    threads.prepare_openmp(loaded, free=1, cores=2)
    threads.prepare_openmp(user, free=1, cores=2)
    assert idle == {"OMP_NUM_THREADS": "2"}
    assert loaded == {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    assert user == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}


def test_a_child_process_gets_the_free_cores():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    code = ("from sslscope.entry import main; import sys; sys.argv = ['sslscope', '--help']; "
            "import os, contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main()\n    except SystemExit: pass\n"
            "import torch; print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == out[1] and 1 <= int(out[0]) <= threads.usable_cores()


def test_a_run_records_its_threads(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        train(tiny_config(steps=2, threads=1), tmp_path / "r", progress=False)
        assert json.loads((tmp_path / "r" / "run.json").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(before)
