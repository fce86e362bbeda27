"""What is done to a run as a whole, outside the loop: final evaluation, re-evaluation, export.

The training loop calls :func:`write_final_evaluation` when it finishes; ``sslscope eval`` and
``sslscope export`` call :func:`evaluate_run` and :func:`export_run` on a finished run directory.
Building the report is left to the caller (the command line): the core writes files, the report
reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from sslscope import config as config_lib
from sslscope.checkpoint import load_modules, read_checkpoint
from sslscope.config import Config
from sslscope.data import ImageData, load_dataset
from sslscope.errors import UserError
from sslscope.evaluate.suite import (
    ProbeSettings,
    evaluate_encoder,
    evaluate_pixels,
    extract_features,
)
from sslscope.files import atomic_write, atomic_write_json
from sslscope.parts import Parts, build_model, build_parts, resolve_device
from sslscope.runs import RunFiles, evaluation_table

FINAL_TRAIN_IMAGES = 10_000  # training images whose final h and z are saved for the report


def write_final_evaluation(files: RunFiles, cfg: Config, data: ImageData, encoder: torch.nn.Module,
                           device: torch.device,
                           trained: dict[str, float] | None = None) -> dict[str, Any]:
    """Write evaluation.json and the final embeddings; returns the evaluation table.

    The table holds raw pixels vs the random-init encoder vs the trained one, on h and z.
    ``trained`` is the trained encoder's :func:`evaluate_encoder` result when the caller has
    it already (the loop's probes at the last step compute exactly these numbers); None
    evaluates it here.
    """
    probe = ProbeSettings.of(cfg)
    initial = build_model(cfg, data.shape, data).to(device)
    table = evaluation_table(
        pixels=evaluate_pixels(data, probe, device),
        initial=evaluate_encoder(initial, data, probe, device),
        trained=trained if trained is not None else evaluate_encoder(encoder, data, probe,
                                                                     device),
        step=cfg.steps,
    )
    atomic_write_json(files.evaluation, table)
    save_final_embeddings(files, data, encoder, device)
    return table


def save_final_embeddings(files: RunFiles, data: ImageData, encoder: torch.nn.Module,
                          device: torch.device, max_train: int = FINAL_TRAIN_IMAGES) -> None:
    """Save h and z of the test split and of (up to ``max_train``) training images.

    The report draws its 2-D maps and nearest-neighbour grids from this file, so it never has
    to run a model. Keys: "test/h", "test/z", "test/y", "train/h", "train/z", "train/y" and
    "train/index" (which training images, in the data set's order).
    """
    index = torch.arange(data.train_x.shape[0])[:max_train]
    arrays = {"train/index": index, "train/y": data.train_y[index], "test/y": data.test_y}
    for split, images in (("train", data.train_x[index]), ("test", data.test_x)):
        for name, value in extract_features(encoder, images, device=device).items():
            arrays[f"{split}/{name}"] = value.cpu().contiguous()
    atomic_write(files.embeddings, lambda tmp: save_file(arrays, str(tmp)))


def load_trained_parts(files: RunFiles, cfg: Config, data: ImageData,
                       device: torch.device) -> Parts:
    """The parts of a finished run, from its checkpoint, built by the builder training uses."""
    tensors, header = read_checkpoint(files.checkpoint)
    if header["info"]["step"] != cfg.steps:
        raise UserError(f"{files.root} stopped at step {header['info']['step']} of {cfg.steps}; "
                        "finish it with `sslscope train --resume` first")
    parts = build_parts(cfg, data, device)
    load_modules(tensors, {"parts": parts.modules})
    return parts


def evaluate_run(run_dir: str | Path, device: str | None = None) -> dict[str, Any]:
    """Re-evaluate a finished run from its checkpoint (``sslscope eval``); returns the table."""
    files = RunFiles(Path(run_dir)).require()
    cfg = files.load_config()
    if device is not None:
        cfg = config_lib.replace(cfg, device=device)
    config_lib.validate(cfg)
    dev = resolve_device(cfg.device)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    parts = load_trained_parts(files, cfg, data, dev)
    return write_final_evaluation(files, cfg, data, parts.encoder, dev)


def export_run(run_dir: str | Path) -> Path:
    """Export a finished run's encoder to RUN_DIR/export (``sslscope export``)."""
    from sslscope.export import describe, export_encoder

    files = RunFiles(Path(run_dir)).require()
    cfg = files.load_config()
    data = load_dataset(cfg.dataset, cfg.data_dir)
    parts = load_trained_parts(files, cfg, data, torch.device("cpu"))
    return export_encoder(parts.encoder, describe(cfg, data.shape), files.export)
