"""Throughput of batched view generation versus a per-sample Python loop.

Command (writes the table to benchmarks/views.md as well as printing it):

    python benchmarks/bench_views.py [--batch 512] [--repeats 5] [--device cpu|cuda]

Both paths run the same code, ``sslscope.views.augment``: the batched path calls
``make_views`` once on the whole batch; the baseline calls ``augment`` on N = 1 slices in a Python
loop, which is what a per-sample torchvision-style Dataset transform amounts to (without the
DataLoader workers that would hide it on a CPU). The images are random: the cost of every op
does not depend on the pixel values. Throughput counts input images; each makes V = 2 views.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from sslscope.bench.timing import busy_cpu_seconds
from sslscope.views import RECIPES, augment, make_views

# (recipe, C, H, W): CIFAR-sized colour images and 8×8 grayscale digits.
CASES = (("simclr", 3, 32, 32), ("digits", 1, 8, 8))
N_VIEWS = 2


def per_sample_views(x: torch.Tensor, recipe: str, n_views: int, g: torch.Generator) -> list:
    """Baseline: the same augmentations, one image at a time."""
    augs = RECIPES[recipe]
    return [
        torch.cat([augment(x[i : i + 1], augs[v % len(augs)], g) for i in range(x.shape[0])])
        for v in range(n_views)
    ]


def seconds_per_call(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after warm-up calls.

    Three warm-up calls, not one: the first calls of a new shape pay for lazy initialisation
    and for the allocator growing its pools, which is not steady-state cost.
    """
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()  # kernels are asynchronous: time their completion
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time both paths for every case, print a markdown table and write benchmarks/views.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512, help="images per batch (N)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per path; median")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("views.md"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Other processes on a small machine distort CPU timings a lot (OpenMP threads spin while
    # waiting for a busy core), so the report says how many cores others kept busy meanwhile.
    busy0, own0, wall0 = busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter()

    rows = []
    for recipe, c, h, w in CASES:
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.rand(args.batch, c, h, w, generator=g, device=device)

        def batched_call(x=x, recipe=recipe, g=g):
            return make_views(x, recipe, N_VIEWS, g)

        def looped_call(x=x, recipe=recipe, g=g):
            return per_sample_views(x, recipe, N_VIEWS, g)

        batched = seconds_per_call(batched_call, args.repeats, device)
        looped = seconds_per_call(looped_call, args.repeats, device)
        rows.append(
            f"| `{recipe}` | {c}×{h}×{w} | {args.batch / batched:,.0f} | "
            f"{args.batch / looped:,.0f} | {looped / batched:.1f}× |"
        )

    busy1, own1, wall = busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter() - wall0
    others = "unknown" if busy0 is None else f"{max(0.0, busy1 - busy0 - (own1 - own0)) / wall:.2f}"
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")  # platform.processor() is often just "x86_64" on Linux
        lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
        models = [ln for ln in lines if ln.startswith("model name")]
        if models:
            machine += ", " + models[0].split(":", 1)[1].strip()
    table = "\n".join(
        [
            "| recipe | image | batched (images/s) | per-sample loop (images/s) | speed-up |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
        ]
    )
    header = (
        f"# View generation throughput\n\n"
        f"Measured {datetime.date.today().isoformat()} on `{machine}` ({device.type}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} logical CPUs; other processes kept {others} cores busy on average "
        f"during the run.\n"
        f"Batch N = {args.batch}, V = {N_VIEWS} views, median of {args.repeats} timed calls "
        f"after three warm-up calls. Images/s counts input images (each gives {N_VIEWS} views).\n\n"
        f"Command: `python benchmarks/bench_views.py --batch {args.batch} "
        f"--repeats {args.repeats} --device {args.device} --threads {torch.get_num_threads()}`\n\n"
    )
    print(table)
    args.out.write_text(header + table + "\n")


if __name__ == "__main__":
    main()
