"""Export a trained encoder as safetensors weights plus a JSON description of its architecture.

``sslscope export RUN_DIR`` writes ``RUN_DIR/export/encoder.safetensors`` and
``RUN_DIR/export/encoder.json``. Loading needs no pickle and no run directory:

    from sslscope.export import load_encoder
    encoder = load_encoder("runs/demo/export")     # a torch.nn.Module: h, z = encoder(x)

``x`` is a float batch (N, C, H, W) in [0, 1]; input normalisation is part of the module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sslscope import __version__
from sslscope.errors import UserError
from sslscope.files import atomic_write, atomic_write_json
from sslscope.models import CrossModalEncoder, build_backbone, build_encoder, split_modalities

FORMAT = "sslscope-encoder-1"


def describe(cfg: Any, input_shape: tuple[int, int, int], model: nn.Module) -> dict[str, Any]:
    """The JSON description of an encoder built by :func:`sslscope.train.build_model`."""
    return {
        "format": FORMAT,
        "sslscope_version": __version__,
        "backbone": cfg.backbone,
        "projector_dims": list(cfg.projector_dims),
        "input_shape": list(input_shape),
        "cross_modal": isinstance(model, CrossModalEncoder),
        "method": cfg.method,
        "dataset": cfg.dataset,
        "outputs": "(h, z): backbone output and projector output",
    }


def export_encoder(model: nn.Module, description: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``encoder.safetensors`` and ``encoder.json`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(out_dir / "encoder.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_json(out_dir / "encoder.json", description)
    return out_dir


def build_from_description(description: dict[str, Any]) -> nn.Module:
    """An encoder with the described architecture (weights and normalisation still to load)."""
    if description.get("format") != FORMAT:
        raise UserError(f"not an sslscope encoder description (format {description.get('format')})")
    c, h, w = description["input_shape"]
    dims = tuple(description["projector_dims"])
    if not description["cross_modal"]:
        backbone = build_backbone(description["backbone"], (c, h, w))
        return build_encoder(backbone, dims, [0.0] * c, [1.0] * c)
    parts = split_modalities(torch.zeros(1, c, h, w))
    encoders = [
        build_encoder(build_backbone(description["backbone"], tuple(p.shape[1:])), dims,
                      [0.0] * p.shape[1], [1.0] * p.shape[1])
        for p in parts
    ]
    return CrossModalEncoder(*encoders)


def load_encoder(path: str | Path) -> nn.Module:
    """Load an exported encoder (eval mode) from its directory."""
    path = Path(path)
    description_file, weights = path / "encoder.json", path / "encoder.safetensors"
    if not description_file.is_file() or not weights.is_file():
        raise UserError(f"{path} has no encoder.json and encoder.safetensors; run sslscope export")
    model = build_from_description(json.loads(description_file.read_text()))
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model.eval()
