"""Presets transcribed from solo-learn's published CIFAR pre-training recipes (issue 10, item 3).

Source: ``vturrisi/solo-learn@9187ea39`` (:data:`SOLO`), files
``scripts/pretrain/cifar/{vicreg,barlow,simclr,byol,simsiam}.yaml`` and
``scripts/pretrain/cifar/augmentations/{asymmetric,symmetric,symmetric_weak}.yaml``; the defaults
those files leave unset are read from ``solo/args/pretrain.py`` (lr scaling, LARS defaults),
``solo/methods/base.py`` (scheduler defaults, CIFAR stem) and ``solo/methods/<method>.py``
(projector layout, loss defaults). Accuracies are the Acc@1 of the README's "CIFAR-10" and
"CIFAR-100" tables at the same commit (ResNet-18, 1000 epochs; the README does not say there
whether Acc@1 is its online classifier or an offline linear evaluation). The numbers were
transcribed by reading those files; no solo-learn code is used. **sslscope has not reproduced
any of these accuracies**: no preset here has been trained to the end.

:data:`TABLE` holds solo-learn's numbers under solo-learn's names; :func:`to_config` maps a row
to a :class:`~sslscope.config.Config`. Settings shared by every row (:data:`COMMON`): batch 256
on one GPU, 1000 epochs, 10 warm-up epochs, cosine to 0, LARS momentum 0.9 with
``clip_lr=True`` and ``exclude_bias_n_norm=True``. solo-learn multiplies the lr by
batch_size × devices × nodes / 256 (``solo/args/pretrain.py``), which is 1 for these files
(256 × 1 × 1), so the lr in the yaml is the peak lr; sslscope's ``lr`` is absolute and is not
rescaled if ``batch_size`` is overridden. The CIFAR-100 recipes are the CIFAR-10 files with
``data.dataset`` changed, as their comments say ("change here for cifar100"). One number is
converted rather than copied: solo-learn's VICReg sums the two views' variance hinges where
sslscope averages them, so its ``var_loss_weight`` 25 is ``var_weight`` 50 (the same loss).

Several GPUs: the yamls train with ``strategy: ddp`` and ``sync_batchnorm: True``; the presets
set ``sync_batchnorm`` (global-batch statistics under torchrun; nothing changes in one process,
and on CPU, where PyTorch has no SyncBatchNorm, a torchrun job needs ``--sync-batchnorm false``).
``batch_size`` 256 is the global batch in sslscope, per GPU in solo-learn: with
``devices: [0]`` the two agree; on W GPUs solo-learn's batch would be 256·W.

Steps: both CIFARs have 50,000 training images and both loaders drop the last partial batch,
so an epoch is ⌊50000/256⌋ = 195 steps: 1000 epochs = 195,000 steps, 10 warm-up epochs = 1,950.

Known differences from solo-learn that the Config cannot express (each preset lists its own):

- LARS. solo-learn's (``solo/utils/lars.py``) uses the trust ratio η‖w‖/(‖g‖ + λ‖w‖ + ε) and,
  with ``clip_lr``, a per-tensor rate min(lr_t, trust): wherever trust > lr_t it is plain SGD.
  sslscope's (:mod:`sslscope.optim`) has no clipping and takes lr_t · η‖w‖/‖g + λw‖, so with
  the same η = 0.02 its steps on weight tensors are different in size and follow the schedule
  everywhere. Biases and norm parameters are excluded from decay and adaptation in both.
- No online linear classifier (solo-learn's ``classifier_lr`` 0.1, trained on detached
  features, so it never changes the backbone); sslscope evaluates with offline probes.
- Warm-up starts at lr/1950 rather than ``warmup_start_lr`` 3e-5; training in float32 rather
  than ``precision: 16-mixed`` (``--precision bf16`` is the nearest on a GPU: bfloat16
  autocast, float32 losses; float16 with loss scaling is not offered); crops resampled
  bilinearly rather than bicubically; inputs normalised with the training images' own mean
  and std rather than solo-learn's constants (``solo/data/pretrain_dataloader.py``,
  MEANS_N_STD).
- Backbone: solo-learn replaces torchvision's stem with a 3×3 conv of **padding 2** (34×34
  maps) and no max-pool; sslscope's ``resnet18`` pads by 1 (32×32). Hidden projector Linears
  carry a bias in solo-learn and none here (BatchNorm follows, so it is redundant).
- Augmentation: every preset uses sslscope's ``simclr`` recipe, the nearest one in
  :data:`sslscope.views.RECIPES` to each yaml (per-preset differences in the docstrings). The
  ``byol`` recipe matches ``asymmetric.yaml`` in all but blur (ours p = 1.0 / 0.1, theirs 0 / 0)
  and was not chosen: a 3×3 blur on every view-1 image at 32×32 is a larger change than
  saturation 0.4 for 0.2 and no solarisation on view 2. Exact recipes would need new entries in
  RECIPES. torchvision's ColorJitter also shuffles its four ops; ours run in a fixed order.

STL-10: solo-learn publishes no STL-10 pre-training recipe (there is no
``scripts/pretrain/stl10``) and no STL-10 result, so no ``stl10-*`` preset is defined: it
would claim a provenance that does not exist.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sslscope.config import Config, replace

SOLO_COMMIT = "9187ea39c2c3f43c455ab06664d2b019a9802954"
SOLO = f"vturrisi/solo-learn@{SOLO_COMMIT[:8]}"
CIFAR_DIR = "scripts/pretrain/cifar"
TRAIN_IMAGES = 50_000  # CIFAR-10 and CIFAR-100 training sets

# Shared by every row. batch_size and max_epochs: each cifar yaml; momentum, eta default and
# lr scaling: solo/args/pretrain.py; warmup_epochs (10), warmup_start_lr (3e-5), min_lr (0.0),
# interval "step": solo/methods/base.py defaults, which no cifar yaml overrides.
COMMON: dict[str, Any] = {
    "batch_size": 256, "devices": 1, "max_epochs": 1000, "warmup_epochs": 10,
    "warmup_start_lr": 3e-5, "min_lr": 0.0, "momentum": 0.9, "clip_lr": True,
    "exclude_bias_n_norm": True, "classifier_lr": 0.1, "precision": "16-mixed",
    "sync_batchnorm": True, "strategy": "ddp",  # every cifar yaml's PL overrides
}
STEPS_PER_EPOCH = TRAIN_IMAGES // COMMON["batch_size"]  # 195: drop_last in both loaders


@dataclass(frozen=True)
class SoloRecipe:
    """One solo-learn CIFAR recipe as written (solo-learn's names), and its README accuracies.

    ``proj_layers`` (Linear layers in the projector) is read from ``solo/methods/<m>.py``;
    ``augmentations`` names the yaml (``inline`` for vicreg.yaml's own block).
    """

    file: str
    method: str  # the sslscope method it maps to
    optimizer: str
    lr: float
    weight_decay: float
    eta: float | None  # LARS trust coefficient; None for SGD
    proj_hidden_dim: int
    proj_output_dim: int
    proj_layers: int
    method_kwargs: dict = field(default_factory=dict)  # loss hyper-parameters, solo's names
    pred_hidden_dim: int | None = None
    base_tau: float | None = None  # final_tau is 1.0 in byol.yaml
    augmentations: str = "inline"
    acc: dict = field(default_factory=dict)  # README Acc@1 (%) per dataset


# Sources, all at SOLO: optimizer, lr, weight_decay and eta (optimizer.kwargs), proj_*_dim,
# pred_hidden_dim, method_kwargs and base_tau (momentum) from CIFAR_DIR/<file>; proj_layers and
# defaults the yaml omits from solo/methods/<method>.py; acc from README.md, "Results", tables
# "CIFAR-10" and "CIFAR-100", column Acc@1 (rows Barlow Twins, BYOL, SimCLR, Simsiam, VICReg).
# fmt: off
TABLE: dict[str, SoloRecipe] = {
    "vicreg": SoloRecipe(
        "vicreg.yaml", "vicreg", "lars", lr=0.3, weight_decay=1e-4, eta=0.02,
        proj_hidden_dim=2048, proj_output_dim=2048, proj_layers=3,
        method_kwargs={"sim_loss_weight": 25.0, "var_loss_weight": 25.0, "cov_loss_weight": 1.0},
        acc={"cifar10": 92.07, "cifar100": 68.54}),
    "barlow_twins": SoloRecipe(
        # lamb is not in barlow.yaml: 0.0051 is solo/methods/barlow_twins.py's default.
        "barlow.yaml", "barlow_twins", "lars", lr=0.3, weight_decay=1e-4, eta=0.02,
        proj_hidden_dim=2048, proj_output_dim=2048, proj_layers=3,
        method_kwargs={"lamb": 0.0051, "scale_loss": 0.1}, augmentations="asymmetric.yaml",
        acc={"cifar10": 92.10, "cifar100": 70.90}),
    "simclr": SoloRecipe(
        "simclr.yaml", "nt_xent", "lars", lr=0.4, weight_decay=1e-4, eta=0.02,
        proj_hidden_dim=2048, proj_output_dim=256, proj_layers=2,
        method_kwargs={"temperature": 0.2}, augmentations="symmetric.yaml",
        acc={"cifar10": 90.74, "cifar100": 65.78}),
    "byol": SoloRecipe(
        "byol.yaml", "byol", "lars", lr=1.0, weight_decay=1e-5, eta=0.02,
        proj_hidden_dim=4096, proj_output_dim=256, proj_layers=2, pred_hidden_dim=4096,
        base_tau=0.99, augmentations="asymmetric.yaml",
        acc={"cifar10": 92.58, "cifar100": 70.46}),
    "simsiam": SoloRecipe(
        # simsiam.yaml also sets temperature 0.2, which solo/methods/simsiam.py never reads.
        "simsiam.yaml", "simsiam", "sgd", lr=0.5, weight_decay=1e-5, eta=None,
        proj_hidden_dim=2048, proj_output_dim=2048, proj_layers=3, pred_hidden_dim=512,
        augmentations="symmetric_weak.yaml", acc={"cifar10": 90.51, "cifar100": 66.04}),
}
# fmt: on

DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
NAMES = {"vicreg": "VICReg", "barlow_twins": "Barlow Twins", "simclr": "SimCLR", "byol": "BYOL",
         "simsiam": "SimSiam"}

# What sslscope's "simclr" recipe (crop 0.08–1, jitter p 0.8 (0.4, 0.4, 0.4, 0.1), grayscale
# 0.2, flip 0.5, no blur, no solarisation) changes relative to each yaml's augmentations.
AUGMENT_DIFFERENCES = {
    "vicreg": "vicreg.yaml's own block has crop scale 0.2–1 (ours 0.08–1), saturation 0.2 "
              "(ours 0.4) and solarisation p 0.1 (ours 0)",
    "barlow_twins": "asymmetric.yaml has saturation 0.2 (ours 0.4) and solarisation p 0.2 on "
                    "the second view (ours 0); ours is symmetric",
    "simclr": "symmetric.yaml has jitter (0.8, 0.8, 0.8, 0.2) (ours (0.4, 0.4, 0.4, 0.1)) and "
              "blur p 0.5 with σ ∈ [0.1, 2] (ours none)",
    "byol": "asymmetric.yaml has saturation 0.2 (ours 0.4) and solarisation p 0.2 on the second "
            "view (ours 0); ours is symmetric",
    "simsiam": "symmetric_weak.yaml has blur p 0.5 with σ ∈ [0.1, 2] (ours none); the rest "
               "matches",
}
# Differences particular to one method (the module docstring lists those shared by all).
METHOD_DIFFERENCES = {
    "vicreg": "nothing particular to VICReg; solo-learn sums the two views' variance hinges where "
              "sslscope averages them, so its var_loss_weight 25 is var_weight 50 here (the "
              "same loss).",
    "barlow_twins": "solo-learn multiplies the loss by scale_loss 0.1; sslscope's loss has no "
                    "such factor. Under either LARS a loss factor s acts on weight tensors like "
                    "dividing the weight decay by s, so solo-learn's 1e-4 behaves like 1e-3 on "
                    "sslscope's unscaled loss (the preset keeps the literal 1e-4); on biases and "
                    "norms, which are not adapted, it scales the steps. Neither is expressible "
                    "exactly.",
    "simclr": "solo-learn's projector is Linear-ReLU-Linear with no BatchNorm; sslscope's "
              "always has BatchNorm after the hidden Linear.",
    "byol": "solo-learn's EMA averages parameters only and its cosine τ schedule divides by "
            "the step count (τ a hair below 1 at the end); sslscope also averages BatchNorm "
            "buffers and ends at τ = 1 exactly (sslscope.ema).",
    "simsiam": "solo-learn keeps the predictor's lr constant (static_lr) while the rest follow "
               "the schedule; sslscope schedules every parameter. solo-learn's SGD also decays "
               "biases and norms (exclude_bias_n_norm_wd is off); sslscope's never does.",
}


def loss_kwargs(key: str) -> dict[str, Any]:
    """solo-learn's loss hyper-parameters of recipe ``key`` in sslscope's loss names."""
    kw = TABLE[key].method_kwargs
    if key == "vicreg":
        # Same objective: solo-learn's variance term is v(z_a) + v(z_b), ours (v(z_a)+v(z_b))/2.
        return {"inv_weight": kw["sim_loss_weight"], "var_weight": 2 * kw["var_loss_weight"],
                "cov_weight": kw["cov_loss_weight"]}
    if key == "barlow_twins":
        return {"offdiag_weight": kw["lamb"]}  # scale_loss has no counterpart (see docstring)
    return dict(kw)  # simclr: temperature; byol and simsiam have none


def to_config(key: str, dataset: str) -> Config:
    """The Config of TABLE[key] on ``dataset`` ("cifar10" or "cifar100"); see the module doc."""
    if dataset not in DATASETS:  # the step counts assume a 50,000-image CIFAR training set
        raise ValueError(f"the recipes are for {', '.join(DATASETS)}, got {dataset!r}")
    r = TABLE[key]
    overrides: dict[str, Any] = {
        "method": r.method, "loss_kwargs": loss_kwargs(key), "backbone": "resnet18",
        # hidden widths then output: proj_layers Linear layers in all.
        "projector_dims": (r.proj_hidden_dim,) * (r.proj_layers - 1) + (r.proj_output_dim,),
        "dataset": dataset, "augment": "simclr", "n_views": 2,
        "optimizer": r.optimizer, "lr": r.lr, "weight_decay": r.weight_decay,
        "momentum": COMMON["momentum"], "batch_size": COMMON["batch_size"],
        "steps": COMMON["max_epochs"] * STEPS_PER_EPOCH,
        "warmup_steps": COMMON["warmup_epochs"] * STEPS_PER_EPOCH,
        "final_lr_fraction": COMMON["min_lr"] / r.lr,  # solo-learn's cosine ends at min_lr
        # Global-batch BatchNorm under torchrun, as the yamls ask; no effect in one process.
        "sync_batchnorm": COMMON["sync_batchnorm"],
    }
    if r.eta is not None:
        overrides["lars_eta"] = r.eta
    if r.pred_hidden_dim is not None:
        overrides["predictor_hidden"] = r.pred_hidden_dim
    if r.base_tau is not None:
        overrides["ema_decay"] = r.base_tau  # BYOL's cosine schedule takes it to 1
    return replace(Config(), **overrides)


def _doc(key: str, dataset: str, name: str) -> str:
    """The preset's docstring: its first line is what ``sslscope train --help`` lists."""
    r, data = TABLE[key], DATASETS[dataset]
    aug = r.augmentations if r.augmentations != "inline" else "its own augmentations block"
    paragraphs = [
        f"Transcribed from {SOLO}, {CIFAR_DIR}/{r.file} (augmentations: {aug}); "
        "sslscope.recipes.TABLE holds every number and its source.",
        f"solo-learn's README.md at {SOLO} reports Acc@1 {r.acc[dataset]:.2f} % on {data} for "
        "this recipe (ResNet-18, 1000 epochs). sslscope has not reproduced it: the preset has "
        "not been trained to the end, and it differs from solo-learn as listed here and in "
        "the sslscope.recipes module docstring.",
        f"Command: ``sslscope train --preset {name}`` (195,000 ResNet-18 steps: a GPU job).",
        f"Augmentation: sslscope's ``simclr`` recipe; {AUGMENT_DIFFERENCES[key]}.",
        f"Method: {METHOD_DIFFERENCES[key]}",
    ]
    acc = f"{r.acc[dataset]:.2f} %"
    first = f"solo-learn's {data} {NAMES[key]} recipe; README {acc}, not reproduced"
    body = "\n\n".join(textwrap.fill(p, 96, initial_indent="    ", subsequent_indent="    ")
                       for p in paragraphs)
    return f"{first}.\n\n{body}\n"


def _preset(key: str, dataset: str) -> tuple[str, Callable[[], Config]]:
    name = f"{dataset}-{key}"

    def preset() -> Config:
        return to_config(key, dataset)

    preset.__name__ = preset.__qualname__ = name.replace("-", "_")
    preset.__doc__ = _doc(key, dataset, name)
    return name, preset


RECIPE_PRESETS: dict[str, Callable[[], Config]] = dict(
    _preset(key, dataset) for dataset in DATASETS for key in TABLE
)
