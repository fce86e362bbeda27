"""The registered instruments: what is measured on the fixed instrument batch.

An instrument is a pure function of a :class:`ViewPair`, the backbone and projector outputs of
two augmented views of the same fixed images, returning a :class:`Measurement`: scalars (logged
to ``metrics.jsonl`` as ``inst/<key>``) and arrays (one row per instrument step in
``arrays/<instrument>.safetensors``). Adding one is a function here plus its entry in
:data:`INSTRUMENTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sslscope.instruments.geometry import alignment, normalized_std, uniformity
from sslscope.instruments.spectrum import (
    cross_correlation_eigenvalues,
    effective_rank,
    eigenvalues,
    rankme,
)


@dataclass(frozen=True)
class ViewPair:
    """Features of two views of the same N images; each (N, D_h) or (N, D_z), float32."""

    h_a: Tensor
    h_b: Tensor
    z_a: Tensor
    z_b: Tensor

    def both(self, name: str) -> Tensor:
        """Both views of ``"h"`` or ``"z"`` stacked: (2N, D), the sample for a covariance."""
        return torch.cat([getattr(self, f"{name}_a"), getattr(self, f"{name}_b")])


@dataclass(frozen=True)
class Measurement:
    """What an instrument returns: scalars by key, and float64 arrays (one row per step)."""

    scalars: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, Tensor] = field(default_factory=dict)


def spectrum(pair: ViewPair) -> Measurement:
    """Covariance eigenvalues of h and z, the cross-view cross-correlation's, ranks.

    Arrays (float64, descending): ``h/cov`` (D_h,), ``z/cov`` (D_z,) — covariance of both views
    stacked, 2N samples — and ``z/xcorr`` (D_z,), the eigenvalues of the stepwise theory's
    C = (Z_aᵀ Z_b + Z_bᵀ Z_a) / (2N). Scalars: effective rank of each covariance spectrum and
    RankMe of each stacked (2N, D) matrix.
    """
    arrays, scalars = {}, {}
    for name in ("h", "z"):
        x = pair.both(name)
        arrays[f"{name}/cov"] = eigenvalues(x).cpu()
        scalars[f"{name}/eff_rank"] = effective_rank(arrays[f"{name}/cov"])
        scalars[f"{name}/rankme"] = rankme(x)
    arrays["z/xcorr"] = cross_correlation_eigenvalues(pair.z_a, pair.z_b).cpu()
    return Measurement(scalars, arrays)


def geometry(pair: ViewPair) -> Measurement:
    """Alignment of the views, uniformity and the std of normalised embeddings, for h and z."""
    scalars = {}
    for name in ("h", "z"):
        a, b = getattr(pair, f"{name}_a"), getattr(pair, f"{name}_b")
        scalars[f"{name}/alignment"] = alignment(a, b)
        scalars[f"{name}/uniformity"] = uniformity(a)
        scalars[f"{name}/normalized_std"] = normalized_std(a)
    return Measurement(scalars)


INSTRUMENTS: dict[str, Callable[[ViewPair], Measurement]] = {
    "spectrum": spectrum,
    "geometry": geometry,
}
