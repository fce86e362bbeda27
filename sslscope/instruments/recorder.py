"""Instruments during training: the fixed instrument batch, and each instrument's arrays on disk.

The instruments see the same images with the same augmentation random numbers at every
instrument step, so the two views' embeddings are comparable over time: the change of a
spectrum between two steps is the network's, not the batch's. When an instrument reads every
view (``measures.ALL_VIEWS``, e.g. ``capacity``), all ``cfg.n_views`` views are drawn from the
same generator, the first two being the very two views the other instruments see. The encoder
runs in eval mode under ``torch.no_grad()``, so measuring changes neither the weights, the
BatchNorm statistics nor any random stream of training: a run with instruments trains exactly
as one without.

Arrays go to ``arrays/<instrument>.safetensors``, rewritten atomically at every instrument
step (so ``sslscope report`` can read them while the run goes on): a ``step`` array (T,) and
one (T, …) array per key. A resumed run drops the rows recorded after its checkpoint at its
first instrument step, as ``metrics.jsonl`` drops its rows, so its arrays equal an
uninterrupted run's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.errors import TrainingDiverged, UserError
from sslscope.evaluate.suite import extract_features
from sslscope.files import atomic_write, read_tensors
from sslscope.instruments.measures import ALL_VIEWS, INSTRUMENTS, ViewPair
from sslscope.losses import get_method
from sslscope.models.cross_modal import CrossModalEncoder, split_modalities
from sslscope.observe import Consumer, Snapshot
from sslscope.runs import RunFiles
from sslscope.schedules import log_spaced_steps
from sslscope.views import fixed_views, make_views

DEFAULT_BATCH = 1024  # instrument images when cfg.instrument_batch is 0 (fewer if the set is)
FORWARD_CHUNK = 1024  # images per forward pass when embedding the instrument views


def instrument_names(spec: str) -> list[str]:
    """``"spectrum,geometry"`` → the names, checked against INSTRUMENTS; "" → []."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for name in names:
        if name not in INSTRUMENTS:
            raise UserError(f"unknown instrument '{name}'; choose from: {', '.join(INSTRUMENTS)}")
    return names


def instrument_indices(data: ImageData, size: int, seed: int) -> Tensor:
    """Which self-supervised training images form the fixed instrument batch, seeded.

    Args:
        data: the run's data; indices into ``data.ssl_images()`` (train plus unlabeled).
        size: how many; at most the number of training images.
        seed: the run's seed; the same seed picks the same images.

    Returns:
        int64 (size,), on the CPU, in a seeded random order.
    """
    n = data.ssl_images().shape[0]
    if size > n:
        raise UserError(f"instrument_batch {size} exceeds the {n} training images")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 7)
    return torch.randperm(n, generator=generator)[:size]


def instrument_images(data: ImageData, size: int, seed: int) -> Tensor:
    """The fixed instrument images, uint8 (size, C, H, W) (see :func:`instrument_indices`)."""
    return data.ssl_images()[instrument_indices(data, size, seed)]


def instrument_views(cfg: Config, data: ImageData, index: Tensor, device: torch.device,
                     n_views: int = 2) -> list[Tensor]:
    """The fixed views of the instrument images ``index``, drawn once for the whole run.

    In a ``fixed_views`` run they are the first ``n_views`` of the very views the images
    train on (:func:`sslscope.views.fixed_views`), so C measured on the whole training set is
    the theory's C exactly; otherwise views from a generator of their own, which no training
    step uses. Views are drawn in order from one generator, so the first two are the same for
    any ``n_views``.

    Args:
        n_views: 2, or up to ``cfg.n_views`` for the instruments that read every view.
    """
    if cfg.fixed_views and not get_method(cfg.method).cross_modal:
        every = fixed_views(data.ssl_images().to(device), cfg.augment, cfg.n_views, cfg.seed)
        return [view[index.to(device)] for view in every[:n_views]]
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed * 2**32 + 2**32 - 1)
    return make_views(data.ssl_images()[index].to(device), cfg.augment, n_views, generator)


def embed_pair(encoder: nn.Module, views: list[Tensor], device: torch.device, *,
               all_views: bool = False) -> ViewPair:
    """Backbone and projector outputs of float views (N, C, H, W), eval mode, float32.

    Args:
        views: V ≥ 2 views; ``h_a``, ``z_a`` … come from the first two.
        all_views: also fill :attr:`ViewPair.all_views`: the V views stacked (N, V, D), or
            for a :class:`CrossModalEncoder` the two modalities of ``views[0]`` (N, 2, D),
            each from its own encoder (one more pass over ``views[0]``). Without it only the
            first two views are embedded.
    """
    feats = [extract_features(encoder, view, batch_size=FORWARD_CHUNK, device=device)
             for view in (views if all_views else views[:2])]
    stacked = None
    if all_views and isinstance(encoder, CrossModalEncoder):
        stacked = modality_views(encoder, views[0], device)
    elif all_views:
        stacked = {name: torch.stack([f[name] for f in feats], dim=1) for name in ("h", "z")}
    a, b = feats[:2]
    return ViewPair(a["h"], b["h"], a["z"], b["z"], stacked)


def modality_views(encoder: CrossModalEncoder, view: Tensor,
                   device: torch.device) -> dict[str, Tensor]:
    """The two modalities of one view as a two-view stack: {"h": (N, 2, D_h), "z": (N, 2, D_z)}.

    Each modality goes through its own encoder, as in the loss of CLIP and multimodal MMCR
    (``CrossModalEncoder.modalities``). h is left out when the two backbones differ in width.
    """
    parts = [extract_features(enc, x, batch_size=FORWARD_CHUNK, device=device)
             for enc, x in zip((encoder.encoder_a, encoder.encoder_b), split_modalities(view),
                               strict=True)]
    return {name: torch.stack([p[name] for p in parts], dim=1) for name in ("h", "z")
            if parts[0][name].shape == parts[1][name].shape}


class ArrayLog:
    """One instrument's arrays over training: ``step`` (T,) and a (T, …) row stack per key.

    Args:
        path: the safetensors file; rewritten atomically by each :meth:`append`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: list[int] | None = None  # None until the first append reads the file
        self.rows: dict[str, list[Tensor]] = {}

    def _resume(self, step: int) -> None:
        """Keep what an earlier process recorded before ``step``; drop the rest."""
        self.steps, self.rows = [], {}
        if not self.path.is_file():
            return
        saved = read_tensors(self.path, "delete it to record the instrument afresh")
        steps = saved.pop("step")
        keep = steps < step
        self.steps = [int(s) for s in steps[keep].tolist()]
        self.rows = {k: list(v[keep].unbind(0)) for k, v in saved.items()}

    def append(self, step: int, arrays: dict[str, Tensor]) -> None:
        """Add the row of ``step`` and rewrite the file."""
        if self.steps is None:
            self._resume(step)
        self.steps.append(step)
        for key, value in arrays.items():
            self.rows.setdefault(key, []).append(value.detach().cpu())
        tensors = {"step": torch.tensor(self.steps, dtype=torch.int64)}
        tensors.update({k: torch.stack(v).contiguous() for k, v in self.rows.items()})
        atomic_write(self.path, lambda tmp: save_file(tensors, str(tmp)))


def instruments(cfg: Config, data: ImageData, files: RunFiles) -> Consumer | None:
    """The consumer that runs ``cfg.instruments`` at ``cfg.instrument_points`` log-spaced steps.

    Scalars are logged as ``inst/<key>`` (``inst/z/eff_rank``); arrays go to
    ``arrays/<instrument>.safetensors``. None when no instrument is asked for.
    """
    names = instrument_names(cfg.instruments)
    if not names:
        return None
    size = cfg.instrument_batch or min(DEFAULT_BATCH, data.ssl_images().shape[0])
    index = instrument_indices(data, size, cfg.seed)
    every_view = any(name in ALL_VIEWS for name in names)  # draw the extra views only then
    cross_modal = get_method(cfg.method).cross_modal
    n_views = cfg.n_views if every_view and not cross_modal else 2
    views: list[Tensor] = []
    logs = {name: ArrayLog(files.array(name)) for name in names}

    def consume(snapshot: Snapshot) -> dict[str, float]:
        if not views:  # drawn once, on the run's device
            views.extend(instrument_views(cfg, data, index, snapshot.device, n_views))
        pair = embed_pair(snapshot.parts.encoder, views, snapshot.device, all_views=every_view)
        features = [pair.h_a, pair.h_b, pair.z_a, pair.z_b, *(pair.all_views or {}).values()]
        if not all(bool(torch.isfinite(x).all()) for x in features):
            raise TrainingDiverged(
                f"the embeddings became non-finite by step {snapshot.step}; the last good "
                f"checkpoint is kept in {files.checkpoint}; lower the learning rate (now "
                f"{cfg.lr:g})"
            )
        scalars: dict[str, float] = {}
        for name in names:
            measured = INSTRUMENTS[name](pair)
            scalars.update({f"inst/{k}": v for k, v in measured.scalars.items()})
            if measured.arrays:
                logs[name].append(snapshot.step, measured.arrays)
        return scalars

    steps = frozenset(log_spaced_steps(cfg.steps, cfg.instrument_points))
    return Consumer("instruments", steps, consume)
