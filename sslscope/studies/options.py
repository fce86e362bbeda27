"""Options that several studies share, so each spells them the same way."""

from __future__ import annotations

import argparse

from sslscope.errors import UserError


def add_common(parser: argparse.ArgumentParser, *, out: str, seeds: str = "0,1,2") -> None:
    """Add ``--out``, ``--seeds`` and ``--device`` with these defaults."""
    parser.add_argument("--out", default=out, help="output directory (default: %(default)s)")
    parser.add_argument("--seeds", default=seeds,
                        help="comma-separated seeds (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda or auto (default: %(default)s)")


def add_jobs(parser: argparse.ArgumentParser, *, default: int, what: str = "runs") -> None:
    """Add ``--jobs``: how many of the study's ``what`` train at once (cores / jobs threads)."""
    parser.add_argument("--jobs", type=int, default=default,
                        help=f"{what} trained at once, each with cores/jobs threads "
                        "(default: %(default)s)")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]; anything else is a one-sentence UserError."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise UserError(f"--seeds expects comma-separated integers, got '{text}'") from None
    return seeds


def positive(name: str, value: int) -> int:
    """``value`` if it is at least 1, else a UserError naming the option."""
    if value < 1:
        raise UserError(f"{name} must be at least 1, got {value}")
    return value
