"""Studies: thin scripts over the library that run several trainings and write a summary.

Each study module defines ``STUDY``, a :class:`Study`: its name, its help, the arguments of its
own ``sslscope study NAME`` command and its run function. :data:`STUDY_MODULES` lists them, so
adding a study is one new module plus one line there; the command line is built from
:data:`STUDIES`. A study's runs are ordinary run directories, made by
:func:`sslscope.studies.runner.run_jobs` (``sslscope train`` in child processes), a grid of them
by :func:`sslscope.studies.sweep.run_sweep`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Study:
    """One study, as the command line sees it.

    Attributes:
        name: ``sslscope study NAME``.
        help: one line for ``sslscope study --help``.
        description: the paragraph of ``sslscope study NAME --help``: what it trains and
            writes.
        add_arguments: adds the study's options to its parser (see
            :mod:`sslscope.studies.options` for the shared ones).
        run: runs the study from the parsed options and returns the summary file it wrote,
            which the command prints. Bad options are a :class:`sslscope.errors.UserError`.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Path]


STUDY_MODULES = (
    "sslscope.studies.methods",
    "sslscope.studies.stepwise",
    "sslscope.studies.clustering",
    "sslscope.studies.mmcr",
    "sslscope.studies.tico",
    "sslscope.studies.icon",
)

STUDIES: dict[str, Study] = {
    study.name: study for study in (importlib.import_module(m).STUDY for m in STUDY_MODULES)
}

__all__ = ["STUDIES", "STUDY_MODULES", "Study"]
