"""Run by torchrun from tests/test_torchrun.py: train several configs in one launch.

    torchrun --nproc_per_node 2 tests/workers/torchrun_train.py OUT CONFIG.json ...

Each config trains into OUT/<config file stem> through :func:`sslscope.train.train`, the code
path of ``sslscope train`` without the report. The final evaluation is skipped (the test
compares training, and the probes would repeat the same seconds for every config); with
``--crash-at STEP`` rank 1 raises at that step instead, to check that the job ends.
"""

import argparse
import faulthandler
import signal
import sys
from pathlib import Path

import torch.distributed

import sslscope.train
from sslscope import config as config_lib
from sslscope.cli import main as cli_main
from sslscope.distributed import launched


def crash_at(step: int):
    """A check_finite that makes rank 1 fail at ``step``: a crash inside the loop."""
    original = sslscope.train.check_finite

    def check(loss, done, files, cfg):
        if launched().rank == 1 and done == step:
            raise RuntimeError(f"injected crash on rank 1 at step {step}")
        original(loss, done, files, cfg)

    return check


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where a rank waits
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--crash-at", type=int)
    parser.add_argument("--cli", nargs=argparse.REMAINDER, help="run `sslscope ARGS` instead")
    args = parser.parse_args()
    if args.crash_at is not None:
        sslscope.train.check_finite = crash_at(args.crash_at)
    if args.cli:
        sys.exit(cli_main(args.cli))
    sslscope.train.write_final_evaluation = lambda *a, **k: None
    # One process group for all the configs, which train() then uses as it is: a second
    # init_process_group in the same process can meet the other rank's previous group on
    # torchrun's store (seen: one rank in init, the other in its first broadcast).
    torch.distributed.init_process_group("gloo")
    for path in args.configs:
        cfg = config_lib.load(path)
        sslscope.train.train(cfg, Path(args.out) / Path(path).stem, progress=False)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
