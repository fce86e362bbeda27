"""Named configs, each a function returning a :class:`~sslscope.config.Config`.

A preset's docstring says what it is for, the command, and what it measured (seeds, hardware).

Presets only override: every default lives in the Config dataclass or a loss signature.
"""

from __future__ import annotations

from collections.abc import Callable

from sslscope.config import Config, replace
from sslscope.recipes import RECIPE_PRESETS


def demo() -> Config:
    """VICReg on the bundled digits with the small CNN: the README's `make demo`.

    ``make demo`` runs ``sslscope train --preset demo --threads 2 --run-dir runs/demo``: two CPU
    threads whatever the machine, since the thread count changes the order of floating-point
    sums, so that the README's table is what ``make demo`` prints on the same processor
    (tests/test_readme.py checks it). The measured numbers are in the README.
    """
    return Config()


def smoke() -> Config:
    """A few steps of everything, for tests and for checking an installation in seconds."""
    return replace(
        Config(), steps=6, batch_size=64, projector_dims=(64, 64), warmup_steps=2,
        eval_points=2, log_every=2, checkpoint_every=4, instrument_points=4,
    )


PRESETS: dict[str, Callable[[], Config]] = {
    "demo": demo,
    "smoke": smoke,
    **RECIPE_PRESETS,  # solo-learn's CIFAR recipes (sslscope.recipes)
}
