"""Supervised training of a backbone with a linear classifier, and the labels it predicts.

Two uses, both from Ben-Shaul et al. (2023): the *randomness targets* (the labels a supervised
network predicts at successive points of its training, from arbitrary at initialisation to the
ground truth at the end), and the supervised baseline the SSL run's clustering is compared
with (with and without augmentation). The network is the run's backbone with a linear head on
h, trained by cross-entropy with AdamW; the batch at step t and its augmentation are drawn from
(seed, t), as in the SSL loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.data import ImageData
from sslscope.evaluate.suite import extract_features
from sslscope.models import Encoder, build_backbone, build_encoder
from sslscope.views import make_views


@dataclass
class SupervisedRun:
    """A trained classifier and its predictions over training.

    Attributes:
        encoder: images → (h, logits); the logits are its ``z``.
        steps: the recorded steps, ascending (0: the initialisation).
        train_predictions, test_predictions: int64 (S, N_train) and (S, N_test), the argmax
            of the logits at each recorded step, on the CPU.
    """

    encoder: Encoder
    steps: tuple[int, ...]
    train_predictions: Tensor
    test_predictions: Tensor


def train_classifier(
    data: ImageData,
    backbone: str,
    *,
    steps: int = 300,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    augment: str | None = None,
    record_at: Sequence[int] = (),
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> SupervisedRun:
    """Train ``backbone`` + a linear head by cross-entropy on the labelled training split.

    Args:
        data: the data set; its ``train_x``/``train_y`` are fit, ``test_x`` only predicted.
        backbone: a backbone spec (:func:`sslscope.models.build_backbone`).
        steps: AdamW steps at constant ``lr``; 300 steps of 128 are 28 epochs of digits.
        batch_size: images per step (at most the training set).
        augment: a recipe of :data:`sslscope.views.RECIPES` applied to every batch, or None.
        record_at: steps (0 … steps) at which train and test predictions are recorded.
        seed: initialisation, batch order and augmentation.
        device: where to train.

    Returns:
        A :class:`SupervisedRun`; the encoder is in eval mode.
    """
    device = torch.device(device)
    images, labels = data.train_x.to(device), data.train_y.to(device)
    n = images.shape[0]
    batch_size = min(batch_size, n)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = build_encoder(build_backbone(backbone, data.shape), (data.num_classes,),
                            data.mean, data.std).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    augmentation = torch.Generator(device=device)
    record = sorted({s for s in record_at if 0 <= s <= steps})
    predicted: dict[int, tuple[Tensor, Tensor]] = {}
    per_epoch = n // batch_size
    for step in range(steps + 1):
        if step in record:
            predicted[step] = centred_predictions(net, data, device)
        if step == steps:
            break
        epoch, position = divmod(step, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        index = order[position * batch_size:(position + 1) * batch_size].to(device)
        if augment is None:
            x = images[index].float().div_(255)
        else:
            augmentation.manual_seed(seed * 2**32 + step)
            x = make_views(images[index], augment, 1, augmentation)[0]
        net.train()
        loss = F.cross_entropy(net(x)[1], labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    empty = torch.empty(0, dtype=torch.int64)
    return SupervisedRun(
        net, tuple(record),
        torch.stack([predicted[s][0] for s in record]) if record else empty,
        torch.stack([predicted[s][1] for s in record]) if record else empty,
    )


def centred_predictions(net: Encoder, data: ImageData, device: torch.device
                        ) -> tuple[Tensor, Tensor]:
    """Argmax of the logits minus their mean over the training split, for train and test.

    Why centred: a randomly initialised network's plain argmax is nearly constant (its ReLU
    features share a large positive mean, so one logit wins for almost every image: 1 class of
    10 on digits), which is not the "arbitrary labels" the randomness targets start from.
    Subtracting each logit's training-set mean keeps the labels deterministic and spreads them
    over the classes; for a trained network, whose logits are confident, it changes little.
    """
    train, test = (extract_features(net, x, device=device)["z"] for x in (data.train_x,
                                                                          data.test_x))
    centre = train.mean(0)
    return (train - centre).argmax(1).cpu(), (test - centre).argmax(1).cpu()


@dataclass(frozen=True)
class RandomTargets:
    """Label sets of graded randomness (Ben-Shaul et al. 2023, §4.2 "randomness targets").

    Attributes:
        randomness: (R,) float in [0, 1], descending: 1 arbitrary, 0 the true labels.
        steps: (R,) the supervised network's step each label set was predicted at.
        train, test: int64 (R, N_train) and (R, N_test) labels.
    """

    randomness: Tensor
    steps: Tensor
    train: Tensor
    test: Tensor


def randomness(predicted: Tensor, truth: Tensor, num_classes: int) -> Tensor:
    """Normalised disagreement with the truth: r = clip((1 − a) / (1 − 1/K), 0, 1).

    a is the fraction of labels equal to the truth. A labelling at chance agreement (a = 1/K,
    as the predictions of a random network are) has r = 1 and the truth has r = 0. The paper
    normalises "randomness" to [0, 1] over the supervised epochs, the mapping unstated (likely
    by epoch index); ours measures the labels themselves, so it is comparable across runs.

    Args:
        predicted: (S, N) label sets; truth: (N,); num_classes: K ≥ 2.

    Returns:
        (S,) float64.
    """
    agreement = (predicted == truth).double().mean(1)
    return ((1 - agreement) / (1 - 1 / num_classes)).clamp(0, 1)


def randomness_targets(run: SupervisedRun, truth: Tensor, num_classes: int,
                       count: int) -> RandomTargets:
    """``count`` of the run's recorded label sets, spread evenly over randomness 1 → 0.

    For each target r* = 1, 1 − 1/count, …, 1/count (0 is left out: the true labels are the
    class level already), the recorded step whose randomness is nearest and not yet taken (a
    label set with a single class is never taken: it has no clustering to measure). Fewer than
    ``count`` come back when fewer usable steps were recorded.
    """
    r = randomness(run.train_predictions, truth.cpu(), num_classes)
    usable = [i for i in range(len(run.steps)) if run.train_predictions[i].unique().numel() > 1]
    chosen: list[int] = []
    for target in np.linspace(1.0, 0.0, count + 1)[:count]:
        free = [i for i in usable if i not in chosen]
        if free:
            chosen.append(min(free, key=lambda i: (abs(float(r[i]) - target), i)))
    chosen.sort(key=lambda i: (-float(r[i]), i))
    index = torch.tensor(chosen, dtype=torch.int64)
    return RandomTargets(r[index], torch.tensor(run.steps)[index],
                         run.train_predictions[index], run.test_predictions[index])
