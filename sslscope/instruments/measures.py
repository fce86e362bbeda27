"""The registered instruments: what is measured on the fixed instrument batch.

An instrument is a pure function of a :class:`ViewPair`, the backbone and projector outputs of
two augmented views of the same fixed images, returning a :class:`Measurement`: scalars (logged
to ``metrics.jsonl`` as ``inst/<key>``) and arrays (one row per instrument step in
``arrays/<instrument>.safetensors``). Adding one is a function here plus its entry in
:data:`INSTRUMENTS`; one that reads every view of a K-view run (:meth:`ViewPair.views`) is
also named in :data:`ALL_VIEWS`, so that the recorder draws and embeds the extra views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sslscope.instruments.capacity import centroid_capacity
from sslscope.instruments.geometry import alignment, normalized_std, uniformity
from sslscope.instruments.spectrum import (
    cross_correlation_eigenvalues,
    effective_rank,
    eigenvalues,
    rankme,
)


@dataclass(frozen=True)
class ViewPair:
    """Features of two views of the same N images; each (N, D_h) or (N, D_z), float32.

    Attributes:
        h_a, h_b, z_a, z_b: backbone and projector outputs of the first two views (of a
            cross-modal model: both modalities concatenated, as its probes see them).
        all_views: ``{"h": (N, K, D_h), "z": (N, K, D_z)}``, every view of the image in row n,
            when the recorder drew them for an instrument in :data:`ALL_VIEWS`; else None. In
            a K-view run, K = ``cfg.n_views`` and ``all_views[name][:, :2]`` are the two views
            above, unchanged. In a cross-modal run the K = 2 "views" are the two modalities of
            the first view (each encoder's own h and z), the manifold its loss sees.
    """

    h_a: Tensor
    h_b: Tensor
    z_a: Tensor
    z_b: Tensor
    all_views: dict[str, Tensor] | None = None

    def both(self, name: str) -> Tensor:
        """Both views of ``"h"`` or ``"z"`` stacked: (2N, D), the sample for a covariance."""
        return torch.cat([getattr(self, f"{name}_a"), getattr(self, f"{name}_b")])

    def views(self, name: str) -> Tensor:
        """Every view of ``"h"`` or ``"z"``: (N, K, D); the two views (K = 2) if not drawn."""
        if self.all_views is not None:
            return self.all_views[name]
        return torch.stack([getattr(self, f"{name}_a"), getattr(self, f"{name}_b")], dim=1)


@dataclass(frozen=True)
class Measurement:
    """What an instrument returns: scalars by key, and arrays (one row per step).

    Arrays are float64 measurements, or int64 sizes such as ``capacity``'s (P, D).
    """

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
        x = pair.both(name).to(torch.float64)
        n, d = x.shape
        # One (D, D) product serves both the covariance and RankMe's singular values.
        gram = x.T @ x if d <= n else None
        arrays[f"{name}/cov"] = eigenvalues(x, gram=gram).cpu()
        scalars[f"{name}/eff_rank"] = effective_rank(arrays[f"{name}/cov"])
        scalars[f"{name}/rankme"] = rankme(x, gram=gram)
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


def capacity(pair: ViewPair) -> Measurement:
    """MMCR's manifold capacity of h and z: centroid nuclear norm, its bound and PPE.

    On every view of each image (:meth:`ViewPair.views`, K = ``cfg.n_views``; the two
    modalities of a cross-modal model), normalised, with centroids μ_n and M = [μ_n]_n (P×D):
    scalars ``{h,z}/centroid_nuclear`` ‖M‖_*, ``{h,z}/capacity_bound`` √(P·min(P, D)),
    ``{h,z}/ppe`` 1 − ‖M‖_*/√(P·min(P, D)) (Schaeffer et al. 2024, Eq. 4),
    ``{h,z}/local_nuclear`` mean_n ‖Z_n‖_* and ``{h,z}/centroid_norm`` mean_n ‖μ_n‖; arrays
    ``{h,z}/centroid_sv``, σ(M) (min(P, D),) float64, descending (see
    :func:`sslscope.instruments.capacity.centroid_capacity`), and ``{h,z}/shape``, (P, D)
    int64, which the bound alone does not give when P ≤ D. Only the online encoder is
    measured (momentum MMCR's loss also averages in its target).
    """
    scalars, arrays = {}, {}
    # A cross-modal model whose two backbones differ in width has no h centroid: z only.
    for name in ("h", "z") if pair.all_views is None else pair.all_views:
        measured, sigma = centroid_capacity(pair.views(name))
        scalars.update({f"{name}/{k}": v for k, v in measured.items()})
        arrays[f"{name}/centroid_sv"] = sigma.cpu()
        arrays[f"{name}/shape"] = torch.tensor(pair.views(name).shape[::2])  # (P, D), int64
    return Measurement(scalars, arrays)


INSTRUMENTS: dict[str, Callable[[ViewPair], Measurement]] = {
    "spectrum": spectrum,
    "geometry": geometry,
    "capacity": capacity,
}

# The instruments that read every view (ViewPair.views): with one of them on, the recorder
# draws and embeds all cfg.n_views views of the fixed images, not only the first two.
ALL_VIEWS: frozenset[str] = frozenset({"capacity"})
