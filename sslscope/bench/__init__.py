"""``sslscope bench``: sslscope's costs against baselines, measured in one process, one table.

Each section is one module with a ``run(settings) -> Section`` function that says in its
docstring what it compares and why:

    augmentation  batched views vs kornia vs a per-sample PIL pipeline in a DataLoader
    training      sslscope.train vs a hand-written loop vs a per-sample DataLoader loop
    overhead      probes, instruments and the final evaluation as a share of training
    evaluation    the probes vs scikit-learn on 50,000 × 512 features
    scaling       how the costs grow with batch size, embedding width and sample count
    gpu           views/s and MFU of CIFAR ResNet-18 on a CUDA device (bf16, channels-last,
                  compile, batch 256-1024); says "not measured" without one

:func:`sslscope.bench.runner.run_bench` runs them and writes ``bench.md`` and ``bench.json``
(:mod:`sslscope.bench.table`). Nothing in the core library imports this package: it imports
the baselines (scikit-learn estimators, kornia when installed, PIL pipelines) only here.
"""

from __future__ import annotations

# In table order; `--sections` picks from these names. Kept free of imports so that the
# command line's help can list them without loading any section.
SECTIONS: tuple[str, ...] = ("augmentation", "training", "overhead", "evaluation", "scaling",
                             "gpu")
