"""The typed training config: one frozen dataclass, JSON round-trip, overrides and validation.

Why plain dataclasses and argparse rather than Hydra, tyro or pydantic: the config is flat (about
25 fields), each field carries its help text next to its default, and the whole mechanism —
type coercion, one-sentence errors, JSON save/load — fits in this file with no dependency. The
command line is generated from the fields (:mod:`sslscope.cli`), so ``--help`` cannot drift from
the code.

Defaults live in exactly one place each: training defaults here, loss hyper-parameters in the
loss function's signature (``loss_kwargs`` only overrides them), augmentation parameters in
:data:`sslscope.views.RECIPES`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sslscope.data.download import DEFAULT_DATA_DIR
from sslscope.errors import UserError, shown
from sslscope.evaluate.neighbours import knn_classify


def _opt(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run. Saved as ``config.json``; re-runnable as is."""

    # What to train.
    method: str = _opt("vicreg", "objective to train (methods are listed at the end)")
    loss_kwargs: dict = _opt({}, "overrides of the loss's keyword arguments (--loss KEY=VALUE)")
    backbone: str = _opt("small_cnn", "backbone network: a name, or name:ARGS such as res_lh:10,64")
    projector_dims: tuple = _opt(
        (512, 512, 512), "projector widths, hidden then output, comma-separated; empty: z = h"
    )
    predictor_hidden: int = _opt(
        512, "hidden width of the predictor (BYOL, SimSiam); 0: a linear predictor (DirectPred)"
    )
    init_scale: float = _opt(
        1.0, "multiply the last Linear layer of z at initialisation (projector, or the backbone "
        "if z = h); e.g. 0.01 for the stepwise regime"
    )
    ema_decay: float = _opt(
        0.99, "EMA decay of the target network; BYOL's cosine schedule raises it to 1"
    )
    precondition: float = _opt(
        0.0, "ε of the stepwise paper's speed-up: the embeddings' gradient times (C + εI)⁻¹, C "
        "the views' cross-correlation (two-view methods without predictor); 0: off"
    )
    # Data.
    dataset: str = _opt("digits", "data set")
    data_dir: str = _opt(DEFAULT_DATA_DIR, "where data sets are stored (not needed for digits)")
    augment: str = _opt("digits", "augmentation recipe for the views (sslscope.views.RECIPES)")
    n_views: int = _opt(2, "augmented views per image (nt_xent and MMCR take more than 2)")
    fixed_views: bool = _opt(
        False, "each image keeps the same views at every step (the stepwise theory's fixed "
        "pairs; holds V float copies of the training set)"
    )
    # Optimisation.
    optimizer: str = _opt("adamw", "adamw, sgd (momentum, Nesterov off) or lars (sslscope.optim)")
    lr: float = _opt(2e-3, "peak learning rate, reached after the warm-up")
    weight_decay: float = _opt(1e-4, "decoupled weight decay (AdamW) or L2 (SGD, LARS)")
    momentum: float = _opt(0.9, "SGD and LARS momentum (ignored by AdamW)")
    lars_eta: float = _opt(1e-3, "LARS trust coefficient η (authors' code 0.001; solo-learn 0.02)")
    batch_size: int = _opt(256, "images per step (each contributes n_views views)")
    steps: int = _opt(800, "optimizer steps in total")
    warmup_steps: int = _opt(100, "linear warm-up steps from 0 to lr")
    final_lr_fraction: float = _opt(0.01, "cosine decay ends at lr × this")
    # Run.
    seed: int = _opt(0, "seed for initialisation, batch order and augmentation")
    device: str = _opt("auto", "cpu, cuda, cuda:N, or auto (cuda when available)")
    deterministic: bool = _opt(False, "use deterministic algorithms only (slower on GPU)")
    threads: int = _opt(
        0, "CPU threads; 0: OMP_NUM_THREADS if set, else the cores not busy with other work "
        "when the command starts (recorded in run.json: pass it to reproduce a CPU run bit "
        "for bit)"
    )
    # Speed and scale (sslscope.engine). Under torchrun, batch_size is the global batch.
    sync_batchnorm: bool = _opt(
        False, "under torchrun, BatchNorm statistics over the global batch (SyncBatchNorm, CUDA "
        "only); one process: no effect"
    )
    precision: str = _opt(
        "fp32", "fp32, or bf16: the networks under bfloat16 autocast, the losses in float32"
    )
    channels_last: bool = _opt(False, "images and convolution weights in channels-last layout")
    compile: bool = _opt(
        False, "torch.compile the step's forward and the views' colour jitter (a C++ compiler "
        "on CPU)")
    # Evaluation.
    eval_points: int = _opt(
        8, "about this many probe evaluations during training, log-spaced, step 0 and the last "
        "step included; 0: the last step only"
    )
    probe_batch_size: int = _opt(0, "linear-probe mini-batch size; 0: full-batch L-BFGS")
    # The kNN defaults are read from knn_classify's signature, the one place they are written,
    # so a run, its --help and a direct Python call cannot disagree.
    knn_k: int = _opt(
        inspect.signature(knn_classify).parameters["k"].default,
        "neighbours for the weighted kNN classifier",
    )
    knn_temperature: float = _opt(
        inspect.signature(knn_classify).parameters["temperature"].default,
        "temperature of the kNN weights exp(cos / T)",
    )
    # The clustering anatomy at the evaluation points (sslscope.anatomy; Ben-Shaul et al. 2023).
    levels: str = _opt(
        "", "label levels whose clustering is measured at each evaluation point: sample, class, "
        "superclass, random, comma-separated, or all; empty: none (class when --taps is set)"
    )
    taps: str = _opt(
        "", "backbone taps measured at each evaluation point as well as h: all, or names such "
        "as conv2,conv4 (small_cnn) or block3 (res_lh); empty: none"
    )
    sample_images: int = _opt(100, "images of the sample level, each its own class (paper: 500)")
    sample_train_views: int = _opt(
        20, "augmented views per image the sample level fits on (paper: 100)"
    )
    sample_test_views: int = _opt(5, "fresh views per image the sample level tests on (paper: 20)")
    random_targets: int = _opt(
        4, "label sets of graded randomness for the random level, from a supervised network's "
        "predictions over its training"
    )
    mine_seeds: int = _opt(
        0, "estimate I(X; h) with MINE at each evaluation point, averaged over this many seeds "
        "(the paper uses 5); 0: off"
    )
    # Instruments: measured on a fixed batch during training (sslscope.instruments).
    instruments: str = _opt(
        "spectrum,geometry", "instruments run during training, comma-separated; empty: none"
    )
    instrument_points: int = _opt(
        40, "about this many instrument steps, log-spaced, step 0 and the last step included"
    )
    instrument_batch: int = _opt(
        0, "images in the fixed instrument batch; 0: 1,024 or the whole training set if smaller"
    )
    # Guards (sslscope.guards).
    on_collapse: str = _opt(
        "warn", "when z collapses (spread below collapse_spread at collapse_points probe steps "
        "in a row): warn, stop (keeping the last checkpoint) or off"
    )
    collapse_spread: float = _opt(
        0.05, "normalised std of z times √D below which it counts as collapsed (about 1 when "
        "spread over the sphere)"
    )
    collapse_points: int = _opt(2, "measured steps in a row below collapse_spread")
    # Bookkeeping.
    log_every: int = _opt(10, "write the loss and its terms to metrics.jsonl every N steps")
    checkpoint_every: int = _opt(500, "save a resumable checkpoint every N steps")
    tensorboard: bool = _opt(True, "also write scalars to RUN_DIR/tensorboard when installed")


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}
_TYPES = typing.get_type_hints(Config)


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` to the type of config field ``name``, or raise a one-sentence UserError."""
    if name not in FIELDS:
        raise UserError(f"unknown config option {shown(repr(name))}; see `sslscope train --help`")
    kind = _TYPES[name]
    bad = UserError(f"config option '{name}' must be {_describe(kind)}, got {shown(repr(value))}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad
    if kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if kind is float:
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise bad from None
        if not math.isfinite(number):  # NaN or ±inf: no hyper-parameter means that
            raise UserError(f"config option '{name}' must be a finite number, got {value!r}")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    if kind is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise bad
        try:
            return tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise bad from None
    if kind is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    raise TypeError(f"unsupported config field type {kind}")  # a programming error


def _describe(kind: type) -> str:
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        tuple: "a comma-separated list of integers",
        dict: "a mapping",
    }[kind]


def replace(cfg: Config, **overrides: Any) -> Config:
    """A copy of ``cfg`` with ``overrides`` applied after type coercion."""
    return dataclasses.replace(cfg, **{k: coerce(k, v) for k, v in overrides.items()})


def to_dict(cfg: Config) -> dict[str, Any]:
    """JSON-ready dict of every field (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(d: dict[str, Any]) -> Config:
    """Build a Config from a dict such as a saved ``config.json``; unknown keys are rejected."""
    if not isinstance(d, dict):
        raise UserError("a config must be a JSON object of option names and values")
    return replace(Config(), **d)


def load(path: str | Path) -> Config:
    """Read a ``config.json`` written by :func:`save` (or by hand)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a directory; give a config.json (a run "
                        f"directory's is {path / 'config.json'})")
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not text (not UTF-8); give a config.json") \
            from None
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        reason = f"{e.msg} at line {e.lineno}"
        raise UserError(f"config file {path} is not valid JSON ({reason})") from None
    return from_dict(data)


def validate(cfg: Config) -> Config:
    """Check ranges and names; raise a one-sentence UserError for the first problem found."""
    from sslscope.anatomy import level_names
    from sslscope.data import DATASETS
    from sslscope.instruments.recorder import instrument_names
    from sslscope.losses import METHODS
    from sslscope.models import check_backbone
    from sslscope.optim import OPTIMIZERS
    from sslscope.precondition import applies_to
    from sslscope.views import RECIPES

    def choose(name: str, value: str, options: Any) -> None:
        if value not in options:
            raise UserError(f"unknown {name} '{shown(value)}'; choose one of: "
                            f"{', '.join(options)}")

    choose("method", cfg.method, METHODS)
    check_backbone(cfg.backbone)  # the name and its arguments, e.g. res_lh:10,250
    choose("dataset", cfg.dataset, DATASETS)
    choose("augment recipe", cfg.augment, RECIPES)
    choose("optimizer", cfg.optimizer, OPTIMIZERS)
    choose("precision", cfg.precision, ("fp32", "bf16"))
    choose("on_collapse action", cfg.on_collapse, ("warn", "stop", "off"))
    instrument_names(cfg.instruments)
    method = METHODS[cfg.method]
    level_names(cfg.levels)
    if (cfg.levels or cfg.taps or cfg.mine_seeds) and method.cross_modal:
        raise UserError(f"levels, taps and MINE measure one encoder's h; {cfg.method} has one "
                        "encoder per modality")
    loss_kwargs = method.resolve(cfg.loss_kwargs)
    if method.views is not None and cfg.n_views != method.views:
        raise UserError(f"method '{cfg.method}' uses exactly {method.views} views, got n_views="
                        f"{cfg.n_views}")
    checks = [
        (cfg.lr > 0, f"the learning rate must be positive, got {cfg.lr}"),
        (cfg.weight_decay >= 0, f"weight_decay must be ≥ 0, got {cfg.weight_decay}"),
        (0 <= cfg.momentum < 1, f"momentum must be in [0, 1), got {cfg.momentum}"),
        (cfg.lars_eta > 0, f"lars_eta must be positive, got {cfg.lars_eta}"),
        (cfg.batch_size >= 2, f"batch_size must be at least 2, got {cfg.batch_size}"),
        (cfg.steps >= 1, f"steps must be at least 1, got {cfg.steps}"),
        (0 <= cfg.threads <= 4096, f"threads must be between 0 (automatic) and 4096, got "
         f"{cfg.threads}"),
        # (seed, step) seeds a torch generator as seed·2³² + step and scikit-learn takes seeds
        # below 2³²: both fit only this range.
        (0 <= cfg.seed < 2**32, f"seed must be in [0, 2**32 − 1], got {cfg.seed}"),
        (0 <= cfg.warmup_steps <= cfg.steps,
         f"warmup_steps ({cfg.warmup_steps}) must be between 0 and steps ({cfg.steps}); pass "
         f"--warmup-steps {max(cfg.steps // 10, 0)} (a tenth of the steps) or fewer"),
        (0 <= cfg.final_lr_fraction <= 1, "final_lr_fraction must be in [0, 1]"),
        (cfg.n_views >= 2, f"n_views must be at least 2, got {cfg.n_views}"),
        (cfg.predictor_hidden >= 0, "predictor_hidden must be ≥ 0 (0: a linear predictor)"),
        (cfg.init_scale > 0, f"init_scale must be positive, got {cfg.init_scale}"),
        (cfg.init_scale == 1 or not method.projector_last_bn,
         f"init_scale has no effect on {cfg.method}: its projector ends in BatchNorm"),
        (cfg.precondition >= 0, f"precondition must be ≥ 0 (0: off), got {cfg.precondition}"),
        (cfg.precondition == 0 or applies_to(method, cfg.n_views),
         f"precondition does not apply to {cfg.method} with {cfg.n_views} views: it needs a "
         f"two-view method whose loss reads both views' z, with no predictor or target "
         f"({', '.join(m for m in METHODS if applies_to(METHODS[m], 2))})"),
        (0 <= cfg.ema_decay <= 1, f"ema_decay must be in [0, 1], got {cfg.ema_decay}"),
        (cfg.eval_points >= 0, "eval_points must be ≥ 0"),
        (cfg.probe_batch_size >= 0, "probe_batch_size must be ≥ 0 (0: full batch)"),
        (cfg.knn_k >= 1, f"knn_k must be at least 1, got {cfg.knn_k}"),
        (cfg.knn_temperature > 0, "knn_temperature must be positive"),
        (cfg.instrument_points >= 0, "instrument_points must be ≥ 0"),
        (cfg.sample_images >= 2, f"sample_images must be at least 2, got {cfg.sample_images}"),
        (cfg.sample_train_views >= 1 and cfg.sample_test_views >= 1,
         "sample_train_views and sample_test_views must be at least 1"),
        (cfg.random_targets >= 1, f"random_targets must be at least 1, got {cfg.random_targets}"),
        (cfg.mine_seeds >= 0, f"mine_seeds must be ≥ 0 (0: off), got {cfg.mine_seeds}"),
        (cfg.instrument_batch == 0 or cfg.instrument_batch >= 2,
         f"instrument_batch must be 0 (automatic) or at least 2, got {cfg.instrument_batch}"),
        (cfg.log_every >= 1, "log_every must be at least 1"),
        (cfg.collapse_spread >= 0, f"collapse_spread must be ≥ 0, got {cfg.collapse_spread}"),
        (cfg.collapse_points >= 1, f"collapse_points must be at least 1, got "
         f"{cfg.collapse_points}"),
        (cfg.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
        (all(d >= 1 for d in cfg.projector_dims), "projector widths must be positive integers"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    # Last, once the sizes are known to be sane: the loss itself on a small batch.
    problem = method.problem(loss_kwargs, batch=cfg.batch_size, views=cfg.n_views)
    if problem:
        raise UserError(f"--method {cfg.method} cannot run with its options: {problem}")
    return cfg
