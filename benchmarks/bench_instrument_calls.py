"""What one instrument call costs, split by part: the views' forward passes and each instrument.

Command (writes the table to benchmarks/instrument_calls.md as well as printing it):

    python benchmarks/bench_instrument_calls.py [--repeats 9] [--threads 2]

For the demo config (VICReg, small CNN, digits, 1,024 fixed instrument images) and for MMCR
with K = 2, 4 and 8 views and multimodal MMCR on the same backbone, at initialisation: the
time to embed the two views every instrument reads, to embed all the views ``capacity``
reads (K views; for a cross-modal method the two modalities of the first view, one more pass),
and each instrument's function on those embeddings. The figure to quote is what ``capacity``
adds to a call of the default instruments: its function plus the extra forward passes. Each
time is the fastest of ``--repeats`` interleaved rounds after one untimed call (the machine
may be shared; the fastest is the least disturbed). Why: the default instruments already cost
about 11 % of the steps' time (benchmarks/bench.md, section 3) against a 10 % target, so an
instrument joins the defaults only if it adds no noticeable cost.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sslscope import config as config_lib
from sslscope.data import load_digits
from sslscope.instruments.measures import INSTRUMENTS
from sslscope.instruments.recorder import (
    DEFAULT_BATCH,
    embed_pair,
    instrument_indices,
    instrument_views,
)
from sslscope.parts import build_parts
from sslscope.presets import demo

CASES = (("vicreg", 2), ("mmcr", 2), ("mmcr", 4), ("mmcr", 8), ("mmcr_multimodal", 2))


def fastest(parts: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds of the fastest call of each part, in ``repeats`` interleaved rounds.

    One untimed call of each first; then each round calls every part once, so a slow spell of
    a shared machine falls on all parts alike rather than on one.
    """
    for fn in parts.values():
        fn()
    best = dict.fromkeys(parts, float("inf"))
    for _ in range(repeats):
        for name, fn in parts.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def measure(method: str, k: int, repeats: int) -> dict[str, float]:
    """Milliseconds of each part of one instrument call for ``method`` with ``k`` views."""
    data, device = load_digits(), torch.device("cpu")
    cfg = config_lib.replace(demo(), method=method, n_views=k, device="cpu")
    parts = build_parts(cfg, data, device)
    index = instrument_indices(data, min(DEFAULT_BATCH, data.ssl_images().shape[0]), cfg.seed)
    views = instrument_views(cfg, data, index, device, 2 if parts.method.cross_modal else k)
    two = embed_pair(parts.encoder, views[:2], device)
    every = embed_pair(parts.encoder, views, device, all_views=True)
    seconds = fastest({
        "embed 2": lambda: embed_pair(parts.encoder, views[:2], device),
        "embed all": lambda: embed_pair(parts.encoder, views, device, all_views=True),
        "spectrum": lambda: INSTRUMENTS["spectrum"](two),
        "geometry": lambda: INSTRUMENTS["geometry"](two),
        "capacity": lambda: INSTRUMENTS["capacity"](every),
    }, repeats)
    return {name: 1000 * s for name, s in seconds.items()}


def main() -> None:
    """Time each case, print a markdown table and write benchmarks/instrument_calls.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (cores / jobs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("instrument_calls.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for method, k in CASES:
        ms = measure(method, k, args.repeats)
        default = ms["embed 2"] + ms["spectrum"] + ms["geometry"]
        extra = ms["capacity"] + max(ms["embed all"] - ms["embed 2"], 0.0)
        rows.append(f"| {method} | {k} | {ms['embed 2']:.0f} | {ms['spectrum']:.0f} | "
                    f"{ms['geometry']:.0f} | {default:.0f} | {ms['capacity']:.0f} | "
                    f"{ms['embed all'] - ms['embed 2']:.0f} | {extra:.0f} | "
                    f"{100 * extra / default:+.0f} % |")
        print(rows[-1], flush=True)
    table = (
        "| method | K | embed 2 views | spectrum | geometry | default call | capacity | "
        "extra views | capacity adds | share |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        + "\n".join(rows) + "\n"
    )
    header = (
        "# Cost of one instrument call, by part\n\n"
        f"`python benchmarks/bench_instrument_calls.py --repeats {args.repeats} --threads "
        f"{args.threads}` on {datetime.date.today()}, {platform.machine()}, torch "
        f"{torch.__version__}, {args.threads} thread(s). Milliseconds, fastest of "
        f"{args.repeats} interleaved rounds, at initialisation, 1,024 fixed digits images, the "
        "demo's small CNN (h: 128) and 512-512-512 projector (z: 512; for multimodal MMCR the "
        "other instruments see both modalities' z concatenated, 1,024). \"default call\": the two "
        "views' forward passes plus spectrum and geometry; \"extra views\": the K − 2 further "
        "views' passes that capacity needs (for multimodal MMCR, the first view's two "
        "modalities once more); \"capacity adds\": its function plus those passes, and their "
        "share of the default call.\n\n"
    )
    print(table)
    args.out.write_text(header + table)


if __name__ == "__main__":
    main()
