"""The stepwise theory of one run of the linear model: Γ of its training pairs, and predictions.

A run trains the theory's exact model when it uses ``--method barlow_twins_linear --backbone
linear:D --projector-dims '' --fixed-views true`` with plain full-batch gradient descent at a
constant learning rate (SGD, no momentum, no weight decay, no warm-up, no decay; batch = the
training set). Then its training pairs are the fixed views, x is the encoder's normalised,
centred, flattened input (:meth:`sslscope.models.small.Linear.inputs`), and every step is one
step of gradient descent on L = ‖W Γ Wᵀ − I‖² (time t = lr × step).

:func:`predict` rebuilds Γ from the run's config alone (the same seed draws the same views and
the same initial W), predicts the step time of each mode from W(0) and compares it with the
step times measured on the run's saved spectrum (``arrays/spectrum.safetensors``, ``z/xcorr``),
and measures how far the trained W is from the end point W∞ (up to rotation), so anyone can
recheck the prediction from the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file  # the arrays as NumPy, no torch round trip

from sslscope import config as config_lib
from sslscope.checkpoint import read_checkpoint
from sslscope.data import ImageData, load_dataset
from sslscope.errors import UserError
from sslscope.instruments.steps import emergence_steps
from sslscope.parts import build_model
from sslscope.runs import RunFiles
from sslscope.theory.stepwise import (
    eigenpairs,
    pair_cross_correlation,
    rotation_residual,
    step_times,
)
from sslscope.views import fixed_views


@dataclass(frozen=True)
class LinearTheory:
    """Γ's spectrum and the predicted and measured steps of one linear run (JSON-ready)."""

    gamma_eigenvalues: list[float]  # the top eigenvalues of Γ, descending (at least d)
    init_scale: float
    initial_singular_values: list[float]  # s_j(0) = ‖W(0) v_j‖, the effective aligned start
    lr: float
    precondition: float
    predicted_steps: list[float | None]  # t_j / lr, the closed form
    measured_steps: list[float | None]  # half-crossings of C's eigenvalues (None: not yet)
    ratios: list[float | None]  # measured / predicted
    final_rotation_residual: float  # ‖M Mᵀ − I‖_F of the trained W (0: W = U W∞ exactly)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def requirements(cfg: config_lib.Config, n_train: int) -> list[str]:
    """What keeps the run from being the theory's exact model ([] when nothing does)."""
    wanted = {
        "method": "barlow_twins_linear", "projector_dims": (), "fixed_views": True,
        "optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0, "warmup_steps": 0,
        "final_lr_fraction": 1.0, "batch_size": n_train,
    }
    problems = [f"{key}={wanted_value!r} (it has {getattr(cfg, key)!r})"
                for key, wanted_value in wanted.items() if getattr(cfg, key) != wanted_value]
    if not cfg.backbone.startswith("linear:"):
        problems.append(f"backbone=linear:D (it has {cfg.backbone!r})")
    return problems


@torch.no_grad()
def training_pairs(cfg: config_lib.Config, data: ImageData | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, x' (the centred inputs of the fixed views, (n, m) each) and W(0), (d, m), float64.

    ``data``: the run's data set if already loaded (else it is loaded from the config).
    """
    data = data or load_dataset(cfg.dataset, cfg.data_dir)
    images = data.ssl_images()
    encoder = build_model(cfg, tuple(images.shape[1:]), data)  # the run's W(0), seeded
    views = fixed_views(images, cfg.augment, cfg.n_views, cfg.seed)
    x = [encoder.backbone.inputs(encoder.normalize(v)).double().numpy() for v in views[:2]]
    w0 = encoder.backbone.weight_map.weight.double().numpy()
    return x[0], x[1], w0


def predict(run_dir: str | Path) -> LinearTheory:
    """The theory of the linear run in ``run_dir`` next to what it measured.

    Raises:
        UserError: the run is not the theory's model (the sentence says which option differs),
            or it has no saved spectrum.
    """
    files = RunFiles(Path(run_dir))
    cfg = config_lib.load(files.config)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    problems = requirements(cfg, data.ssl_images().shape[0])
    if problems:
        raise UserError(f"{run_dir} is not the stepwise theory's linear model; it needs "
                        + ", ".join(problems))
    x, x_prime, w0 = training_pairs(cfg, data)
    gamma = pair_cross_correlation(x, x_prime)
    lam, vecs = eigenpairs(gamma)
    d = w0.shape[0]
    s0 = np.linalg.norm(w0 @ vecs[:, :d], axis=0)
    predicted = step_times(lam[:d], s0, precondition=cfg.precondition) / cfg.lr
    arrays = files.array("spectrum")
    if not arrays.is_file():
        raise UserError(f"{run_dir} has no saved spectrum ({arrays}); train it with the "
                        "spectrum instrument on")
    try:
        saved = load_file(str(arrays))
    except (SafetensorError, OSError) as err:
        raise UserError(f"{arrays} is not a readable safetensors file ({err}); train the run "
                        "again with the spectrum instrument on") from None
    measured = emergence_steps(saved["step"].astype(np.float64), saved["z/xcorr"][:, :d])
    tensors, _ = read_checkpoint(files.checkpoint)
    w = tensors["parts/encoder.backbone.weight_map.weight"].double().numpy()
    return LinearTheory(
        gamma_eigenvalues=lam[: max(d, 16)].tolist(),
        init_scale=cfg.init_scale,
        initial_singular_values=s0.tolist(),
        lr=cfg.lr,
        precondition=cfg.precondition,
        predicted_steps=_finite(predicted),
        measured_steps=_finite(measured),
        ratios=_finite(measured / predicted),
        final_rotation_residual=rotation_residual(w, gamma),
    )


def _finite(values: np.ndarray) -> list[float | None]:
    """JSON-ready: None where a mode has not crossed (NaN is not JSON)."""
    return [float(v) if np.isfinite(v) else None for v in values]
