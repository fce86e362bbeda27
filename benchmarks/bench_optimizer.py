"""The AdamW step: PyTorch's per-tensor loop, its foreach path and its fused kernel.

Command (writes the table to benchmarks/optimizer.md as well as printing it):

    python benchmarks/bench_optimizer.py [--repeats 5] [--steps 50] [--threads 2]

On the trained parameters of two real configs (the demo: small CNN and a 512³ projector; the
CIFAR one: ResNet-18 with a 2048³ projector), with fixed random gradients, ``--steps`` optimizer
steps are timed for each implementation, the three alternated ``--repeats`` times; the figure
is the median over repeats of the per-repeat ratio to the per-tensor loop. sslscope's AdamW is
the fused one (``sslscope.optim.build_optimizer``).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from pathlib import Path

import torch

from sslscope import config as config_lib
from sslscope.data import ImageData
from sslscope.parts import build_parts
from sslscope.presets import demo

KINDS = {"per-tensor loop": {"foreach": False}, "foreach": {"foreach": True},
         "fused (sslscope)": {"fused": True}}


def parameters(cfg: config_lib.Config, shape: tuple[int, int, int]) -> list[torch.Tensor]:
    """The trainable parameters of a config's parts, with fixed random gradients."""
    data = ImageData("bench", torch.zeros(4, *shape, dtype=torch.uint8),
                     torch.zeros(4, dtype=torch.int64), torch.zeros(2, *shape, dtype=torch.uint8),
                     torch.zeros(2, dtype=torch.int64), ["a"])
    params = [p for p in build_parts(cfg, data, torch.device("cpu")).trained.parameters()]
    g = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)
    return params


def seconds(optimizer: torch.optim.Optimizer, steps: int) -> float:
    """Wall seconds of ``steps`` optimizer steps."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    """Time every implementation on both parameter sets and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).with_name("optimizer.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {
        "demo (small CNN, 512³ projector)": (demo(), (1, 8, 8)),
        "ResNet-18, 2048³ projector": (config_lib.replace(
            demo(), backbone="resnet18", projector_dims=(2048, 2048, 2048)), (3, 32, 32)),
    }
    rows = []
    for case, (cfg, shape) in cases.items():
        params = parameters(cfg, shape)
        optimizers = {k: torch.optim.AdamW(params, lr=1e-3, **kw) for k, kw in KINDS.items()}
        for opt in optimizers.values():
            seconds(opt, 3)  # warm-up
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(args.repeats):
            for kind, opt in optimizers.items():
                times[kind].append(seconds(opt, args.steps) / args.steps)
        base = times["per-tensor loop"]
        for kind in KINDS:
            ratios = [b / t for b, t in zip(base, times[kind], strict=True)]
            rows.append((case, len(params), sum(p.numel() for p in params), kind,
                         statistics.median(times[kind]), statistics.median(ratios)))
            print(rows[-1], flush=True)
    lines = [
        "# The AdamW step: per-tensor loop, foreach, fused", "",
        f"`python benchmarks/bench_optimizer.py --repeats {args.repeats} --steps {args.steps} "
        f"--threads {args.threads}` on {datetime.date.today()}, {platform.machine()}, torch "
        f"{torch.__version__}, {args.threads} threads, CPU. One optimizer step on the "
        "parameters of each config with fixed gradients, the implementations alternated, "
        "median of the per-repeat speed-ups over the per-tensor loop.", "",
        "| parameters | tensors | values | implementation | ms / step | speed-up |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for case, tensors, values, kind, t, ratio in rows:
        lines.append(f"| {case} | {tensors} | {values:,} | {kind} | {1000 * t:.2f} | "
                     f"{ratio:.2f}× |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
