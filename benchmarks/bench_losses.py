"""The redundancy losses at wide projectors: the D×D form against the N×N Gram form.

Command (writes the table to benchmarks/losses.md as well as printing it):

    python benchmarks/bench_losses.py [--batch 256] [--dims 512,2048,8192] [--repeats 5]

For each width D, forward plus backward of VICReg's loss and of Barlow Twins' loss on a batch
of N embeddings, float32 on the CPU: the official code's D×D covariance / cross-correlation
(written out here, as the authors' code computes it) against sslscope's loss, which switches to
the N×N Gram matrices when D > N (``covariance_offdiag``, ``barlow_twins_terms``). The two are
timed alternately; the figure is the median over repeats of the per-repeat ratio.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from sslscope.losses import barlow_twins_loss, vicreg_loss
from sslscope.losses._terms import covariance, cross_correlation, off_diagonal, standardize


def vicreg_dxd(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """VICReg in the official code's form (facebookresearch/vicreg, main_vicreg.py)."""
    d = z_a.shape[1]
    inv = F.mse_loss(z_a, z_b)
    std = [torch.sqrt(z.var(dim=0) + 1e-4) for z in (z_a, z_b)]
    var = sum(F.relu(1 - s).mean() / 2 for s in std)
    cov = sum(off_diagonal(covariance(z)).pow(2).sum() / d for z in (z_a, z_b))
    return 25 * inv + 25 * var + cov


def barlow_dxd(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Barlow Twins in the official code's form (facebookresearch/barlowtwins, main.py)."""
    c = cross_correlation(standardize(z_a), standardize(z_b))
    return (1 - torch.diagonal(c)).pow(2).sum() + 0.0051 * off_diagonal(c).pow(2).sum()


def seconds(loss: Callable, z_a: torch.Tensor, z_b: torch.Tensor) -> float:
    """Wall seconds of one forward and backward pass."""
    start = time.perf_counter()
    loss(z_a, z_b).backward()
    return time.perf_counter() - start


def main() -> None:
    """Time every pair of forms and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dims", default="512,2048,8192")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).with_name("losses.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for d in (int(x) for x in args.dims.split(",")):
        g = torch.Generator().manual_seed(d)
        z_a = torch.randn(args.batch, d, generator=g).requires_grad_()
        z_b = (z_a.detach() + torch.randn(args.batch, d, generator=g)).requires_grad_()
        for name, reference, ours in (("VICReg", vicreg_dxd, vicreg_loss),
                                      ("Barlow Twins", barlow_dxd, barlow_twins_loss)):
            difference = float((reference(z_a, z_b) - ours(z_a, z_b)).abs()
                               / reference(z_a, z_b).abs())
            seconds(reference, z_a, z_b), seconds(ours, z_a, z_b)  # warm-up
            times, ratios = [], []
            for _ in range(args.repeats):
                t_ref, t_ours = seconds(reference, z_a, z_b), seconds(ours, z_a, z_b)
                times.append((t_ref, t_ours))
                ratios.append(t_ref / t_ours)
            rows.append((name, d, statistics.median(t for t, _ in times),
                         statistics.median(t for _, t in times), statistics.median(ratios),
                         min(ratios), max(ratios), difference))
            print(rows[-1], flush=True)
    lines = [
        "# Redundancy losses at wide projectors: D×D against the N×N Gram form", "",
        f"`python benchmarks/bench_losses.py --batch {args.batch} --dims {args.dims} --repeats "
        f"{args.repeats} --threads {args.threads}` on {datetime.date.today()}, "
        f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads, float32. "
        "Forward + backward of the whole loss; the official D×D form against sslscope's "
        "(the Gram form when D > N), alternated, median of the per-repeat ratios; the last "
        "column is the relative difference of the two losses' values in float32 (they are "
        "equal to float64 rounding in tests/test_losses*.py).", "",
        "| loss | N | D | D×D (s) | sslscope (s) | speed-up | relative difference |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d, t_ref, t_ours, ratio, lo, hi, diff in rows:
        lines.append(f"| {name} | {args.batch} | {d} | {t_ref:.3f} | {t_ours:.3f} | {ratio:.1f}× "
                     f"(min {lo:.1f}, max {hi:.1f}) | {diff:.1e} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
