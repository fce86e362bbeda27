"""The clustering anatomy of a run: how h clusters at every label level, layer and point.

The consumer :func:`clustering` measures, at the run's evaluation points (the probes' steps),
the label-level measures of Ben-Shaul et al. (2023) on the backbone output h and on any chosen
backbone taps: NCC train/test accuracy, linear test accuracy, their ratio, CDNV and its parts
(:func:`sslscope.evaluate.collapse.collapse_metrics`), plus, as an option, MINE's estimate of
I(X; h). Keys are ``clus/<representation>/<level>/<metric>`` (``clus/h/sample/ncc_train_acc``,
``clus/conv4/class/linear_test_acc``), ``clus/randomness/<level>`` and ``clus/mine/mi``.

Label levels:
    sample: ``sample_images`` training images, each its own class; the classifiers fit on
        ``sample_train_views`` augmented views of each and are tested on ``sample_test_views``
        fresh views (the paper: 500 images, 100 and 20 views). The views are drawn once per
        run, from a generator of their own, with the run's augmentation recipe.
    class: the data set's labels on its fixed train/test split.
    superclass: the data set's coarse labels (:mod:`sslscope.data.hierarchy`), where it has
        them.
    random: ``random_targets`` labellings of graded randomness, ``random0`` the most random:
        a supervised network (the run's backbone plus a linear head) is trained on the split
        and its predictions at log-spaced steps are kept (:mod:`sslscope.supervised`). They are
        computed once per run and saved in ``arrays/targets.safetensors``, so a resumed run
        measures the same labels.

With every option off (the default) the consumer is not built and a run does no extra work.

References:
    Ben-Shaul, Shwartz-Ziv, Galanti, Dekel & LeCun, "Reverse Engineering Self-Supervised
    Learning", NeurIPS 2023, arXiv:2305.15614.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.data.hierarchy import superclass_labels
from sslscope.errors import UserError
from sslscope.evaluate.collapse import collapse_metrics
from sslscope.evaluate.mine import mine_estimate, pca_project
from sslscope.evaluate.suite import extract_features
from sslscope.files import atomic_write
from sslscope.models import Encoder, build_backbone
from sslscope.observe import Consumer, Snapshot
from sslscope.runs import RunFiles
from sslscope.schedules import log_spaced_steps
from sslscope.supervised import RandomTargets, randomness_targets, train_classifier
from sslscope.views import make_views

LEVELS = ("sample", "class", "superclass", "random")
TARGET_STEPS = 300  # the supervised network behind the random level: steps, lr, record points
TARGET_LR = 3e-4  # slow enough that its labels pass through every randomness (digits: 8 steps)
TARGET_RECORDS = 40
# The target network's seed is the run's plus this: with the run's own seed its initial network
# would be the SSL network's initialisation, and the most random labels a linear function of
# h at step 0 (a linear probe then reads them off perfectly before any training).
TARGET_SEED_OFFSET = 1_000
MINE_DIMS = 64  # X and h are projected on their top principal directions before MINE


def level_names(spec: str) -> list[str]:
    """``"class,sample"`` or ``"all"`` → the levels in :data:`LEVELS` order; "" → []."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return list(LEVELS)
    for name in names:
        if name not in LEVELS:
            raise UserError(f"unknown label level '{name}'; choose from: {', '.join(LEVELS)}, "
                            "or all")
    return [level for level in LEVELS if level in names]


def tap_selection(spec: str, available: list[str]) -> list[str]:
    """``"all"`` or ``"conv2,conv4"`` → taps in forward order, checked against ``available``."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return list(available)
    for name in names:
        if name not in available:
            listed = ", ".join(available) or "none"
            raise UserError(f"the backbone has no tap '{name}'; its taps are: {listed}")
    return [tap for tap in available if tap in names]


def sample_level_views(images: Tensor, recipe: str, n_images: int, train_views: int,
                       test_views: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The sample-level data set: images as classes, augmented views as samples.

    Args:
        images: uint8 (N, C, H, W), the self-supervised training images, on the run's device.
        recipe, n_images, train_views, test_views, seed: as the config's fields.

    Returns:
        (train_x, train_y, test_x, test_y): float views (n·A_train, C, H, W) and
        (n·A_test, C, H, W), labels int64 0 … n − 1, all on the images' device; the same for
        the same arguments.
    """
    if n_images > images.shape[0]:
        raise UserError(f"sample_images {n_images} exceeds the {images.shape[0]} training images")
    pick = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed + 17))
    chosen = images[pick[:n_images].to(images.device)]
    generator = torch.Generator(device=images.device)
    generator.manual_seed(seed * 2**32 + 2**32 - 2)  # no training step draws from this seed
    views = make_views(chosen, recipe, train_views + test_views, generator)  # A × (n, C, H, W)
    labels = torch.arange(n_images, device=images.device)
    train, test = views[:train_views], views[train_views:]
    return (torch.cat(train), labels.repeat(train_views), torch.cat(test),
            labels.repeat(test_views))


def random_targets(cfg: Config, data: ImageData, files: RunFiles,
                   device: torch.device) -> RandomTargets:
    """The run's randomness targets: read from its arrays, or trained once and saved there."""
    path = files.array("targets")
    if path.is_file():
        try:
            saved = load_file(str(path))
            return RandomTargets(saved["randomness"], saved["step"], saved["train"],
                                 saved["test"])
        except (SafetensorError, OSError, KeyError) as err:
            raise UserError(f"{path} is not a readable targets file ({err}); delete it to "
                            "train the targets again") from None
    record = {0} | set(np.unique(np.geomspace(1, TARGET_STEPS, TARGET_RECORDS).astype(int)))
    run = train_classifier(data, cfg.backbone, steps=TARGET_STEPS, lr=TARGET_LR,
                           record_at=sorted(record), seed=cfg.seed + TARGET_SEED_OFFSET,
                           device=device)
    targets = randomness_targets(run, data.train_y, data.num_classes, cfg.random_targets)
    tensors = {"randomness": targets.randomness, "step": targets.steps,
               "train": targets.train.contiguous(), "test": targets.test.contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    return targets


@dataclass(frozen=True)
class Prepared:
    """What the consumer draws or trains once per run, on the first call.

    Attributes:
        taps: the taps measured besides h, in forward order.
        labels: each eval-split level's (train labels, test labels).
        randomness: each random level's randomness in [0, 1].
        sample: the sample level's (train views, labels, test views, labels), or None.
        pixels: the training images on their top principal directions (MINE's X), or None.
    """

    taps: list[str]
    labels: dict[str, tuple[Tensor, Tensor]]
    randomness: dict[str, float]
    sample: tuple[Tensor, Tensor, Tensor, Tensor] | None
    pixels: Tensor | None


def clustering(cfg: Config, data: ImageData, files: RunFiles) -> Consumer | None:
    """The consumer of ``cfg.levels``, ``cfg.taps`` and ``cfg.mine_seeds``; None when all off."""
    levels = level_names(cfg.levels) or (["class"] if cfg.taps else [])
    if not levels and not cfg.mine_seeds:
        return None
    if not data.num_classes and any(level != "sample" for level in levels):
        raise UserError("the class, superclass and random levels need a labelled data set")
    if "superclass" in levels and superclass_labels(data.name, data.train_y) is None:
        raise UserError(f"the data set '{data.name}' has no superclasses; drop the superclass "
                        "level")
    if cfg.taps:  # checked before training starts, on a throwaway backbone of the data's shape
        with torch.random.fork_rng(devices=[]):  # its initialisation leaves the run's RNG alone
            names = list(getattr(build_backbone(cfg.backbone, data.shape), "feature_dims", {}))
        tap_selection(cfg.taps, names)
    if "sample" in levels and cfg.sample_images > data.ssl_images().shape[0]:
        raise UserError(f"sample_images {cfg.sample_images} exceeds the "
                        f"{data.ssl_images().shape[0]} training images")
    prepared: list[Prepared] = []  # built on the first call, on the run's device

    def prepare(encoder: Encoder, device: torch.device) -> Prepared:
        labels: dict[str, tuple[Tensor, Tensor]] = {}
        randomness: dict[str, float] = {}
        if "class" in levels:
            labels["class"] = (data.train_y, data.test_y)
        if "superclass" in levels:
            labels["superclass"] = (superclass_labels(data.name, data.train_y),
                                    superclass_labels(data.name, data.test_y))
        if "random" in levels:
            targets = random_targets(cfg, data, files, device)
            for i, r in enumerate(targets.randomness.tolist()):
                labels[f"random{i}"] = (targets.train[i], targets.test[i])
                randomness[f"random{i}"] = float(r)
        sample = None
        if "sample" in levels:
            sample = sample_level_views(data.ssl_images().to(device), cfg.augment,
                                        cfg.sample_images, cfg.sample_train_views,
                                        cfg.sample_test_views, cfg.seed)
        pixels = None
        if cfg.mine_seeds:
            pixels = pca_project(data.train_x.to(device).flatten(1).float().div_(255),
                                 MINE_DIMS)
        taps = tap_selection(cfg.taps, encoder.tap_names()) if cfg.taps else []
        return Prepared(taps, labels, randomness, sample, pixels)

    def consume(snapshot: Snapshot) -> dict[str, float]:
        encoder, device = snapshot.parts.encoder, snapshot.device
        if not prepared:
            prepared.append(prepare(encoder, device))
        p = prepared[0]
        reps = ["h", *p.taps]
        row = {f"clus/randomness/{level}": r for level, r in p.randomness.items()}
        if p.labels or p.pixels is not None:
            split = {name: snapshot.features(name, p.taps) for name in ("train", "test")}
        for level, (train_y, test_y) in p.labels.items():
            for rep in reps:
                values = collapse_metrics(split["train"][rep], train_y, split["test"][rep],
                                          test_y)
                row.update({f"clus/{rep}/{level}/{k}": v for k, v in values.items()})
        if p.sample is not None:
            train_x, train_y, test_x, test_y = p.sample
            train_f = extract_features(encoder, train_x, device=device, taps=p.taps)
            test_f = extract_features(encoder, test_x, device=device, taps=p.taps)
            for rep in reps:
                values = collapse_metrics(train_f[rep], train_y, test_f[rep], test_y)
                row.update({f"clus/{rep}/sample/{k}": v for k, v in values.items()})
        if p.pixels is not None:
            h = pca_project(split["train"]["h"], MINE_DIMS)
            mine = mine_estimate(p.pixels, h, seeds=range(cfg.mine_seeds))
            row.update({"clus/mine/mi": mine.mi, "clus/mine/mi_std": mine.std})
        return row

    return Consumer("clustering", frozenset(log_spaced_steps(cfg.steps, cfg.eval_points)),
                    consume)
