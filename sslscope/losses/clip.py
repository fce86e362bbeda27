"""CLIP's symmetric InfoNCE between two modalities, and the learnable logit scale."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslscope.losses._terms import check_pair
from sslscope.methods import Method


def _logits(z_a: Tensor, z_b: Tensor, logit_scale: Tensor | float) -> Tensor:
    """S = exp(logit_scale) · ẑ_a ẑ_bᵀ, shape (N, N); row n of S scores a_n against every b_m."""
    check_pair(z_a, z_b)
    scale = torch.as_tensor(logit_scale, dtype=z_a.dtype, device=z_a.device)
    if scale.ndim != 0:
        raise ValueError(f"logit_scale must be a scalar, got shape {tuple(scale.shape)}")
    return scale.exp() * (F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T)  # (N, N)


def clip_terms(z_a: Tensor, z_b: Tensor, logit_scale: Tensor | float) -> dict[str, Tensor]:
    """The two directions of :func:`clip_loss`, each already halved; they sum to it.

    Returns:
        ``{"a_to_b": ½ CE(S, I), "b_to_a": ½ CE(Sᵀ, I)}``.
    """
    logits = _logits(z_a, z_b, logit_scale)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return {
        "a_to_b": 0.5 * F.cross_entropy(logits, labels),
        "b_to_a": 0.5 * F.cross_entropy(logits.T, labels),
    }


def clip_loss(z_a: Tensor, z_b: Tensor, logit_scale: Tensor | float) -> Tensor:
    r"""Symmetric InfoNCE over an N×N similarity matrix (CLIP).

        S_nm = exp(s) · cos(z_a,n, z_b,m)
        L    = ½ [ CE(S, I) + CE(Sᵀ, I) ]

    CE(S, I) = −(1/N) Σ_n log softmax_m(S_nm)|_{m=n}: each a_n must pick its b_n among the
    N candidates of the batch, and vice versa. For orthonormal ẑ_a = ẑ_b (N ≤ D) and scale
    exp(s): L = log(1 + (N − 1)·e^(−exp(s))).

    Args:
        z_a: first modality (image tower), shape (N, D), N ≥ 2; normalised here.
        z_b: second modality (text tower), shape (N, D); normalised here.
        logit_scale: s, the **log** of the inverse temperature: a learnable scalar tensor
            (keep it in :class:`LogitScale`) or a fixed float. CLIP initialises it at
            log(1/0.07) ≈ 2.659.

    Returns:
        Scalar tensor; gradients reach z_a, z_b and a learnable ``logit_scale``. Negatives
        are the local batch only; the caller gathers across ranks if ever needed.

    Deviation: no clamp here. CLIP caps exp(s) at 100; open_clip does it by clamping the
    parameter in place after each optimiser step, which we follow with
    :meth:`LogitScale.clamp_`. A clamp inside the loss would zero the gradient of s once it
    overshoots the cap and leave it stuck there (Adam's momentum would push it further).

    References:
        Radford et al., "Learning Transferable Visual Models From Natural Language
        Supervision", ICML 2021, arXiv:2103.00020, Figure 3 (pseudo-code) and §2.5.
        openai/CLIP@d05afc43, clip/model.py, CLIP.__init__ (logit_scale) and CLIP.forward.
        mlfoundations/open_clip@89fb801f, src/open_clip/loss.py, ClipLoss.forward.
    """
    return sum(clip_terms(z_a, z_b, logit_scale).values())


class LogitScale(nn.Module):
    """A learnable log inverse temperature s for :func:`clip_loss`, clamped on request.

    Call :meth:`clamp_` after every ``optimizer.step()`` to keep exp(s) in [1, max_scale],
    as open_clip does (``logit_scale.clamp_(0, math.log(100))``). Exclude the parameter from
    weight decay, as open_clip does for every 0-d or 1-d parameter.

    Args:
        temperature: initial τ, so s = log(1/τ); 0.07 is CLIP's initialisation (taken from
            Wu et al. 2018).
        max_scale: the cap on exp(s); 100 is the CLIP paper's value ("clipped to prevent
            scaling the logits by more than 100").

    References:
        openai/CLIP@d05afc43, clip/model.py, CLIP.__init__.
        mlfoundations/open_clip@89fb801f, src/open_clip/task/image_text_task.py,
        clamp_logit_scale.
    """

    def __init__(self, temperature: float = 0.07, *, max_scale: float = 100.0) -> None:
        super().__init__()
        if temperature <= 0 or max_scale < 1:
            raise ValueError(
                f"need temperature > 0 and max_scale ≥ 1, got {temperature} and {max_scale}"
            )
        self.max_scale = max_scale
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def forward(self) -> Tensor:
        """The parameter s (a 0-d tensor), to pass as ``clip_loss(..., logit_scale)``."""
        return self.logit_scale

    @torch.no_grad()
    def clamp_(self) -> LogitScale:
        """Clamp s into [0, log(max_scale)] in place; call after ``optimizer.step()``."""
        self.logit_scale.clamp_(0.0, math.log(self.max_scale))
        return self

    def extra_repr(self) -> str:
        return f"max_scale={self.max_scale}"


class CLIPLoss(nn.Module):
    """:func:`clip_loss` with its learnable logit scale, as a callable ``(z_a, z_b) -> loss``.

    The training loop treats it like the other loss modules: :meth:`terms` gives the weighted
    terms, the parameter is trained with the encoders (without weight decay: it is 0-d), and
    :meth:`after_optimizer_step` applies CLIP's clamp.

    Args:
        dim: unused; present so every loss module is built as ``Module(dim, **kwargs)``.
        temperature: initial τ = 1 / exp(s); 0.07 as CLIP.
    """

    def __init__(self, dim: int | None = None, *, temperature: float = 0.07) -> None:
        super().__init__()
        self.scale = LogitScale(temperature)

    def terms(self, z_a: Tensor, z_b: Tensor) -> dict[str, Tensor]:
        """The two directions' cross-entropies, weighted to sum to the loss."""
        return clip_terms(z_a, z_b, self.scale())

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        return sum(self.terms(z_a, z_b).values())

    def after_optimizer_step(self) -> None:
        """Keep exp(s) in [1, 100], as CLIP does."""
        self.scale.clamp_()


METHODS = [
    Method("clip", "CLIP's symmetric InfoNCE across two modalities (Radford 2021)",
           clip_loss, clip_terms, args={"z_a": "N D", "z_b": "N D", "logit_scale": "parameter"},
           module=CLIPLoss, cross_modal=True),
]
