"""The training loop, top to bottom.

config → device and seed → data → model (+ predictor, EMA target, loss state) → optimizer and
schedules → (resume) → loop → final evaluation and report. What a method needs is declared in
:data:`sslscope.methods.METHODS`; the loop has three structural branches (predictor, EMA
target, cross-modal split) and calls the loss through the method's ``inputs`` adapter.

Reproducibility: the batch at step t and the augmentation random numbers at step t are derived
from (seed, t) alone, so a run resumed from a checkpoint sees exactly the data an uninterrupted
run would, and the checkpoint only needs weights, optimizer state and the step.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from sslscope import config as config_lib
from sslscope.checkpoint import load_checkpoint, load_modules, read_checkpoint, save_checkpoint
from sslscope.config import Config
from sslscope.data import ImageData, load_dataset
from sslscope.distributed import gather
from sslscope.ema import cosine_ema_decay, ema_target, ema_update_
from sslscope.errors import TrainingDiverged, UserError
from sslscope.evaluate.suite import ProbeSettings, evaluate_encoder, evaluate_pixels
from sslscope.files import atomic_write, atomic_write_json, read_jsonl, write_jsonl
from sslscope.losses import make_objective, resolve_loss_kwargs
from sslscope.methods import METHODS, Outputs
from sslscope.metrics_log import MetricsLog
from sslscope.models import (
    CrossModalEncoder,
    build_backbone,
    build_encoder,
    mlp_head,
    split_modalities,
)
from sslscope.optim import build_optimizer
from sslscope.runs import RunFiles, environment, evaluation_table, now, update_run_info
from sslscope.schedules import log_spaced_steps, warmup_cosine
from sslscope.views import make_views


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


def build_model(cfg: Config, data: ImageData) -> nn.Module:
    """The encoder at initialisation, images → (h, z); the same config gives the same weights.

    Cross-modal methods get one encoder per modality, each normalised with its own statistics
    (from the first 4,096 training images, enough for per-channel moments).
    """
    torch.manual_seed(cfg.seed)
    spec = METHODS[cfg.method]
    if not spec.cross_modal:
        backbone = build_backbone(cfg.backbone, data.shape)
        return build_encoder(backbone, cfg.projector_dims, data.mean, data.std,
                             projector_last_bn=spec.projector_last_bn)
    sample = data.sample(4096).float().div(255)
    encoders = []
    for part in split_modalities(sample):
        pixels = part.transpose(0, 1).flatten(1)  # (C, N·H·W)
        backbone = build_backbone(cfg.backbone, tuple(part.shape[1:]))
        encoders.append(build_encoder(backbone, cfg.projector_dims, pixels.mean(1).tolist(),
                                      pixels.std(1).clamp_min(1e-3).tolist()))
    return CrossModalEncoder(*encoders)


def embedding_dim(model: nn.Module, data: ImageData, device: torch.device) -> int:
    """D of the projector output z that the loss sees (per modality for cross-modal models)."""
    probe = data.sample(2).to(device).float().div(255)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        z = model.modalities(probe)[0] if isinstance(model, CrossModalEncoder) else model(probe)[1]
    model.train(was_training)
    return z.shape[1]


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> Tensor:
    """Indices of the images in the batch at ``step``: a fresh permutation every epoch.

    The last partial batch of each epoch is dropped (a size-1 remainder would break BatchNorm
    and the losses' batch statistics).
    """
    per_epoch = n // batch_size
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    start = position * batch_size
    return torch.randperm(n, generator=generator)[start : start + batch_size]


class GracefulInterrupt:
    """The first Ctrl-C asks the loop to stop at the next step boundary; a second one aborts.

    Stopping between steps is what makes the checkpoint written on Ctrl-C resume exactly: an
    interrupt in the middle of a step could leave the optimizer updated and the EMA target not.
    """

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(
    cfg: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
) -> RunFiles:
    """Train ``cfg`` into ``run_dir``, evaluate and write the report.

    Args:
        cfg: the run's config; validated here.
        run_dir: output directory. A fresh run needs it absent or empty.
        resume: continue from ``run_dir``'s checkpoint (``cfg`` must equal its config.json).
        stop_at: stop after this many steps with a checkpoint, as if interrupted (for time-
            limited jobs and for testing resumption).
        progress: show a progress bar.

    Returns:
        The run's files.

    Raises:
        UserError: bad config or run directory. TrainingDiverged: non-finite loss.
    """
    config_lib.validate(cfg)
    files = RunFiles(Path(run_dir))
    device = resolve_device(cfg.device)
    torch.use_deterministic_algorithms(cfg.deterministic)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    images = data.ssl_images().to(device)  # uint8 (N, C, H, W), resident on the device
    if cfg.batch_size > images.shape[0]:
        n = images.shape[0]
        raise UserError(f"batch_size {cfg.batch_size} exceeds the {n} training images")

    spec = METHODS[cfg.method]
    loss_kwargs = resolve_loss_kwargs(spec.loss, cfg.loss_kwargs)
    model = build_model(cfg, data).to(device)
    dim = embedding_dim(model, data, device)
    objective, loss_module = make_objective(spec.loss, loss_kwargs, dim)
    # Everything that is trained or holds state is one ModuleDict: one optimizer, one checkpoint.
    parts = nn.ModuleDict({"encoder": model})
    if spec.predictor:
        parts["predictor"] = mlp_head(dim, (cfg.predictor_hidden, dim))
    if loss_module is not None:
        parts["objective"] = loss_module
    parts.to(device)
    optimizer = build_optimizer(cfg.optimizer, parts, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                momentum=cfg.momentum, lars_eta=cfg.lars_eta)
    if spec.target == "ema":  # not in the optimizer: it follows the online network
        parts["target"] = ema_target(model)
    lr = warmup_cosine(
        cfg.lr, cfg.steps, warmup_steps=cfg.warmup_steps, final_fraction=cfg.final_lr_fraction
    )
    if spec.target == "ema":
        ema = (cosine_ema_decay(cfg.ema_decay, cfg.steps) if spec.ema_schedule == "cosine"
               else [cfg.ema_decay] * cfg.steps)
    eval_steps = set(log_spaced_steps(cfg.steps, cfg.eval_points))
    probe = ProbeSettings(cfg.knn_k, cfg.knn_temperature, cfg.probe_batch_size, cfg.seed)
    n_views = 1 if spec.cross_modal else cfg.n_views

    start, elapsed = 0, 0.0
    if resume:
        saved = files.require().load_config()
        if saved != cfg:
            raise UserError(f"the config differs from {files.config}; resume with it unchanged")
        if files.checkpoint.is_file():
            info = load_checkpoint(files.checkpoint, {"parts": parts}, optimizer)
            start, elapsed = info["step"], info["elapsed"]
        # Rows logged after the checkpoint are redone; drop them so none appears twice.
        keep = [r for r in read_jsonl(files.metrics) if r["step"] < start
                or (r["step"] == start and "train/loss" in r)] if files.metrics.is_file() else []
        write_jsonl(files.metrics, keep)
    else:
        if files.root.exists() and any(files.root.iterdir()):
            raise UserError(
                f"run directory {files.root} is not empty; pass --resume or --overwrite"
            )
        files.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(files.config, config_lib.to_dict(cfg))
        update_run_info(files, **environment(device), loss_kwargs=loss_kwargs, started=now())
    update_run_info(files, status="running", finished=None)

    def checkpoint(step: int) -> None:
        save_checkpoint(files.checkpoint, {"parts": parts}, optimizer,
                        {"step": step, "elapsed": elapsed + time.perf_counter() - t0})

    def evaluate(step: int) -> None:
        if not data.num_classes:  # unlabeled data (an image folder without classes): no probes
            return
        results = evaluate_encoder(model, data, probe, device)
        log.append({"step": step, "time": elapsed + time.perf_counter() - t0,
                    **{f"eval/{k}": v for k, v in results.items()}})

    log = MetricsLog(files.metrics, files.root / "tensorboard" if cfg.tensorboard else None)
    t0 = time.perf_counter()
    augment_rng = torch.Generator(device=device)
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=cfg.method, unit="step")
    step = start
    try:
        with GracefulInterrupt() as interrupt:
            for step in range(start, cfg.steps + 1):
                if step == cfg.steps or step == stop_at or interrupt.requested:
                    break  # every update before `step` is done: a consistent state to save
                if step in eval_steps:
                    evaluate(step)
                parts.train()
                for group in optimizer.param_groups:
                    group["lr"] = lr[step]
                index = batch_indices(images.shape[0], cfg.batch_size, cfg.seed, step)
                augment_rng.manual_seed(cfg.seed * 2**32 + step)
                views = make_views(images[index.to(device)], cfg.augment, n_views, augment_rng)
                if spec.cross_modal:
                    z = list(model.modalities(views[0]))  # 2 × (N, D), one per modality
                else:
                    # One forward per view, as the official VICReg / Barlow Twins code does:
                    # BatchNorm statistics are per view, never mixed across views.
                    z = [model(v)[1] for v in views]  # V × (N, D)
                p = [parts["predictor"](zi) for zi in z] if spec.predictor else None
                t = None
                if spec.target == "ema":
                    with torch.no_grad():
                        t = [parts["target"](v)[1] for v in views]
                # Losses see the global batch: gather() is the identity in a single process.
                inputs = [gather(x) for x in spec.inputs(Outputs(z, p, t))]
                terms = objective(*inputs)  # the weighted terms; the loss is their sum
                loss = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if hasattr(loss_module, "after_optimizer_step"):
                    loss_module.after_optimizer_step()  # CLIP's clamp of the logit scale
                if spec.target == "ema":
                    ema_update_(parts["target"], model, decay=float(ema[step]))

                done = step + 1
                if done % cfg.log_every == 0 or done == cfg.steps:
                    value = loss.item()  # the only host sync of a training step
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"the loss became {value} at step {done}; the last good checkpoint "
                            f"is kept in {files.checkpoint}; lower the learning rate (now "
                            f"{cfg.lr:g})"
                        )
                    log.append({
                        "step": done, "epoch": done * cfg.batch_size / images.shape[0],
                        "time": elapsed + time.perf_counter() - t0, "train/loss": value,
                        "train/lr": lr[step],
                        **{f"train/loss/{k}": v.item() for k, v in terms.items()},
                    })
                    bar.set_postfix(loss=f"{value:.4g}")
                if done % cfg.checkpoint_every == 0 and done < cfg.steps:
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(f"the loss became non-finite at step {done}")
                    checkpoint(done)
                bar.update(1)
    except KeyboardInterrupt:  # a second Ctrl-C: the state may be mid-step, keep the last save
        bar.close()
        log.close()
        update_run_info(files, status="interrupted")
        raise
    except TrainingDiverged:
        bar.close()
        log.close()
        update_run_info(files, status="diverged")
        raise
    bar.close()
    checkpoint(step)
    if step == cfg.steps and step in eval_steps:
        evaluate(step)
    log.close()
    if interrupt.requested:
        update_run_info(files, status="interrupted", stopped_at=step)
        raise KeyboardInterrupt
    if step < cfg.steps:
        update_run_info(files, status="stopped", stopped_at=step)
        return files

    if data.num_classes:
        finish(files, cfg, data, model, probe, device)
    update_run_info(files, status="finished", finished=now(),
                    wall_seconds=elapsed + time.perf_counter() - t0)
    from sslscope.report import build_report  # matplotlib is imported only when reporting

    build_report(files.root)
    return files


def finish(
    files: RunFiles, cfg: Config, data: ImageData, model: nn.Module, probe: ProbeSettings,
    device: torch.device,
) -> dict:
    """Write evaluation.json: raw pixels vs the random-init encoder vs the trained one."""
    initial = build_model(cfg, data).to(device)
    table = evaluation_table(
        pixels=evaluate_pixels(data, probe, device),
        initial=evaluate_encoder(initial, data, probe, device),
        trained=evaluate_encoder(model, data, probe, device),
        step=cfg.steps,
    )
    atomic_write_json(files.evaluation, table)
    save_final_embeddings(files, data, model, device)
    return table


def save_final_embeddings(files: RunFiles, data: ImageData, model: nn.Module,
                          device: torch.device, max_train: int = 10_000) -> None:
    """Save h and z of the test split and of (up to ``max_train``) training images.

    The report draws its 2-D maps and nearest-neighbour grids from this file, so it never has
    to run a model. Keys: "test/h", "test/z", "test/y", "train/h", "train/z", "train/y" and
    "train/index" (which training images, in the data set's order).
    """
    from safetensors.torch import save_file

    from sslscope.evaluate.suite import extract_features

    index = torch.arange(data.train_x.shape[0])[:max_train]
    arrays = {"train/index": index, "train/y": data.train_y[index], "test/y": data.test_y}
    for split, images in (("train", data.train_x[index]), ("test", data.test_x)):
        for name, value in extract_features(model, images, device=device).items():
            arrays[f"{split}/{name}"] = value.cpu().contiguous()
    atomic_write(files.embeddings, lambda tmp: save_file(arrays, str(tmp)))


def load_trained_encoder(files: RunFiles, cfg: Config, data: ImageData,
                         device: torch.device) -> nn.Module:
    """The encoder of a finished run, from its checkpoint."""
    model = build_model(cfg, data).to(device)
    tensors, header = read_checkpoint(files.checkpoint)
    if header["info"]["step"] != cfg.steps:
        raise UserError(f"{files.root} stopped at step {header['info']['step']} of {cfg.steps}; "
                        "finish it with `sslscope train --resume` first")
    prefix = "parts/encoder."
    load_modules({k.replace(prefix, "encoder/", 1): v for k, v in tensors.items()
                  if k.startswith(prefix)}, {"encoder": model})
    return model


def export_run(run_dir: str | Path) -> Path:
    """Export a finished run's encoder to RUN_DIR/export (``sslscope export``)."""
    from sslscope.export import describe, export_encoder

    files = RunFiles(Path(run_dir)).require()
    cfg = files.load_config()
    data = load_dataset(cfg.dataset, cfg.data_dir)
    model = load_trained_encoder(files, cfg, data, torch.device("cpu"))
    return export_encoder(model, describe(cfg, data.shape, model), files.root / "export")


def evaluate_run(run_dir: str | Path, device: str | None = None) -> dict:
    """Re-evaluate a finished run from its checkpoint (``sslscope eval``) and rebuild its report."""
    files = RunFiles(Path(run_dir)).require()
    cfg = files.load_config()
    if device is not None:
        cfg = config_lib.replace(cfg, device=device)
    config_lib.validate(cfg)
    dev = resolve_device(cfg.device)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    model = load_trained_encoder(files, cfg, data, dev)
    probe = ProbeSettings(cfg.knn_k, cfg.knn_temperature, cfg.probe_batch_size, cfg.seed)
    table = finish(files, cfg, data, model, probe, dev)
    from sslscope.report import build_report

    build_report(files.root)
    return table
