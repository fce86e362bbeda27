"""Instruments during training: the fixed instrument batch, and each instrument's arrays on disk.

The instruments see the same images with the same augmentation random numbers at every
instrument step, so the two views' embeddings are comparable over time: the change of a
spectrum between two steps is the network's, not the batch's. The encoder runs in eval mode
under ``torch.no_grad()``, so measuring changes neither the weights, the BatchNorm statistics
nor any random stream of training: a run with instruments trains exactly as one without.

Arrays go to ``arrays/<instrument>.safetensors``, rewritten atomically at every instrument
step (so ``sslscope report`` can read them while the run goes on): a ``step`` array (T,) and
one (T, …) array per key. A resumed run drops the rows recorded after its checkpoint at its
first instrument step, as ``metrics.jsonl`` drops its rows, so its arrays equal an
uninterrupted run's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from sslscope.config import Config
from sslscope.data import ImageData
from sslscope.errors import TrainingDiverged, UserError
from sslscope.evaluate.suite import extract_features
from sslscope.files import atomic_write
from sslscope.instruments.measures import INSTRUMENTS, ViewPair
from sslscope.losses import get_method
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


def instrument_views(cfg: Config, data: ImageData, index: Tensor,
                     device: torch.device) -> list[Tensor]:
    """The two fixed views of the instrument images ``index``, drawn once for the whole run.

    In a ``fixed_views`` run they are the first two of the very views the images train on
    (:func:`sslscope.views.fixed_views`), so C measured on the whole training set is the
    theory's C exactly; otherwise two views from a generator of their own, which no training
    step uses.
    """
    if cfg.fixed_views and not get_method(cfg.method).cross_modal:
        every = fixed_views(data.ssl_images().to(device), cfg.augment, cfg.n_views, cfg.seed)
        return [view[index.to(device)] for view in every[:2]]
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed * 2**32 + 2**32 - 1)
    return make_views(data.ssl_images()[index].to(device), cfg.augment, 2, generator)


def embed_pair(encoder: nn.Module, views: list[Tensor], device: torch.device) -> ViewPair:
    """Backbone and projector outputs of two float views (N, C, H, W), eval mode, float32."""
    (a, b) = (extract_features(encoder, view, batch_size=FORWARD_CHUNK, device=device)
              for view in views)
    return ViewPair(a["h"], b["h"], a["z"], b["z"])


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
        try:
            saved = load_file(str(self.path))
        except (SafetensorError, OSError) as err:
            raise UserError(f"{self.path} is not a readable safetensors file ({err}); delete "
                            "it to record the instrument afresh") from None
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
    views: list[Tensor] = []
    logs = {name: ArrayLog(files.array(name)) for name in names}

    def consume(snapshot: Snapshot) -> dict[str, float]:
        if not views:  # drawn once, on the run's device
            views.extend(instrument_views(cfg, data, index, snapshot.device))
        pair = embed_pair(snapshot.parts.encoder, views, snapshot.device)
        if not all(bool(torch.isfinite(x).all()) for x in (pair.h_a, pair.h_b, pair.z_a, pair.z_b)):
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
