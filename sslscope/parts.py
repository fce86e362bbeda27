"""Everything a run trains or keeps, built from its config: the one builder.

Training, re-evaluation and export all build their networks here, so a method's architecture
(a predictor, an EMA target, one encoder per modality, SimSiam's BatchNorm-ended projector) is
decided in one place and every checkpoint or export loads back into what it was saved from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.ema import ema_target
from sslscope.errors import UserError
from sslscope.losses import get_method
from sslscope.methods import Method
from sslscope.models import (
    CrossModalEncoder,
    build_backbone,
    build_encoder,
    mlp_head,
    split_modalities,
)

STATISTICS_SAMPLE = 4096  # images whose per-channel moments normalise a modality's input


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when available, else CPU; an unavailable CUDA request is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' was requested but no CUDA GPU is available")
    return device


def build_model(
    cfg: Config, shape: tuple[int, int, int], data: ImageData | None = None
) -> nn.Module:
    """The encoder at initialisation, images → (h, z); the same config gives the same weights.

    Args:
        cfg: reads ``method``, ``backbone``, ``projector_dims`` and ``seed``.
        shape: (C, H, W) of the images.
        data: the training data, whose statistics normalise the input. None builds identity
            normalisation, to be overwritten by loading a state dict (an export or checkpoint
            holds the statistics as buffers).

    Cross-modal methods get one encoder per modality, each normalised with its own statistics
    (from the first 4,096 training images, enough for per-channel moments).
    """
    torch.manual_seed(cfg.seed)
    method = get_method(cfg.method)
    if not method.cross_modal:
        mean, std = (data.mean, data.std) if data is not None else ([0.0] * shape[0],
                                                                   [1.0] * shape[0])
        backbone = build_backbone(cfg.backbone, shape)
        encoder = build_encoder(backbone, cfg.projector_dims, mean, std,
                                projector_last_bn=method.projector_last_bn)
        fit = getattr(backbone, "fit_statistics", None)  # e.g. the linear model's mean image
        if fit is not None and data is not None:
            with torch.no_grad():
                fit(encoder.normalize(data.sample(STATISTICS_SAMPLE).float().div(255)))
        return scale_output_layer(encoder, cfg.init_scale)
    sample = (data.sample(STATISTICS_SAMPLE) if data is not None
              else torch.zeros(1, *shape, dtype=torch.uint8)).float().div(255)
    encoders = []
    for part in split_modalities(sample):
        pixels = part.transpose(0, 1).flatten(1)  # (C, N·H·W)
        mean, std = pixels.mean(1).tolist(), pixels.std(1).clamp_min(1e-3).tolist()
        if data is None:
            mean, std = [0.0] * len(mean), [1.0] * len(std)
        backbone = build_backbone(cfg.backbone, tuple(part.shape[1:]))
        encoders.append(scale_output_layer(build_encoder(backbone, cfg.projector_dims, mean, std),
                                           cfg.init_scale))
    return CrossModalEncoder(*encoders)


@torch.no_grad()
def scale_output_layer(encoder: nn.Module, scale: float) -> nn.Module:
    """Multiply the last Linear layer before z (weight and bias) by ``scale``, in place.

    The stepwise regime needs a small initial embedding, and under BatchNorm shrinking the
    layers before a BatchNorm changes nothing; shrinking every layer of a deep ReLU network
    instead leaves it near a rank-one kernel that stalls after the first mode (methods.md §1.5).
    Scaling only the output layer is what the trial there found to give separated steps.
    ``scale == 1`` leaves the encoder untouched. Draws no random numbers.
    """
    if scale == 1:
        return encoder
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError("init_scale needs a Linear layer before z; this encoder has none")
    for param in linears[-1].parameters():
        param.mul_(scale)
    return encoder


def embedding_dim(model: nn.Module, shape: tuple[int, int, int], device: torch.device) -> int:
    """D of the projector output z that the loss sees (per modality for cross-modal models)."""
    probe = torch.zeros(2, *shape, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        z = model.modalities(probe)[0] if isinstance(model, CrossModalEncoder) else model(probe)[1]
    model.train(was_training)
    return z.shape[1]


@dataclass
class Parts:
    """A run's networks and objective.

    Attributes:
        modules: everything trained or holding state, one ModuleDict so there is one optimizer
            and one checkpoint: "encoder" (images → (h, z)), and as the method needs them
            "predictor" (z → p), "objective" (the loss's state or parameters) and "target" (the
            EMA copy of the encoder, not optimised).
        method: the method's record.
        objective: batch inputs → weighted terms (a dict of scalars summing to the loss).
        loss_kwargs: the loss's complete keyword arguments.
        dim: D, the width of z.
    """

    modules: nn.ModuleDict
    method: Method
    objective: Callable[..., dict[str, Tensor]]
    loss_kwargs: dict[str, Any]
    dim: int

    @property
    def encoder(self) -> nn.Module:
        return self.modules["encoder"]

    @property
    def trained(self) -> nn.ModuleDict:
        """The modules the optimizer updates: all but the EMA target."""
        return nn.ModuleDict({k: m for k, m in self.modules.items() if k != "target"})


def build_parts(cfg: Config, data: ImageData | None, device: torch.device,
                shape: tuple[int, int, int] | None = None) -> Parts:
    """The run's parts at initialisation, on ``device``.

    Args:
        cfg: a validated config.
        data: the training data (input statistics); None with ``shape`` for parts whose
            weights and statistics will be loaded (export, re-evaluation).
        device: where the modules live.
        shape: (C, H, W); default ``data.shape``.
    """
    shape = shape or data.shape
    method = get_method(cfg.method)
    loss_kwargs = method.resolve(cfg.loss_kwargs)
    model = build_model(cfg, shape, data).to(device)
    dim = embedding_dim(model, shape, device)
    objective, loss_module = method.objective(loss_kwargs, dim)
    modules = nn.ModuleDict({"encoder": model})
    if method.predictor:  # drawn after the encoder from the generator build_model seeded
        hidden = (cfg.predictor_hidden,) if cfg.predictor_hidden else ()  # 0: one Linear
        modules["predictor"] = mlp_head(dim, (*hidden, dim))
    if loss_module is not None:
        modules["objective"] = loss_module
    modules.to(device)
    if method.target == "ema":
        modules["target"] = ema_target(model)
    return Parts(modules, method, objective, loss_kwargs, dim)
