"""Export a trained encoder as safetensors weights plus a JSON description of its architecture.

``sslscope export RUN_DIR`` writes ``RUN_DIR/export/encoder.safetensors`` and
``RUN_DIR/export/encoder.json``. Loading needs no pickle and no run directory:

    from sslscope.export import load_encoder
    encoder = load_encoder("runs/demo/export")     # a torch.nn.Module: h, z = encoder(x)

``x`` is a float batch (N, C, H, W) in [0, 1]; input normalisation is part of the module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from sslscope import __version__
from sslscope import config as config_lib
from sslscope.errors import UserError
from sslscope.files import atomic_write, atomic_write_json, read_json_object, read_tensors
from sslscope.losses import get_method
from sslscope.parts import build_model

FORMAT = "sslscope-encoder-1"


def describe(cfg: Any, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The JSON description of the encoder :func:`sslscope.parts.build_model` builds for ``cfg``.

    ``method``, ``backbone`` and ``projector_dims`` are what the builder reads; the rest is for
    people and other tools.
    """
    return {
        "format": FORMAT,
        "sslscope_version": __version__,
        "backbone": cfg.backbone,
        "projector_dims": list(cfg.projector_dims),
        "input_shape": list(input_shape),
        "cross_modal": get_method(cfg.method).cross_modal,
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
    """An encoder with the described architecture (weights and normalisation still to load).

    Built by the same :func:`sslscope.parts.build_model` as training, so every method's
    architecture (SimSiam's BatchNorm-ended projector, one encoder per modality) comes back.
    """
    if description.get("format") != FORMAT:
        raise UserError(f"not an sslscope encoder description (format {description.get('format')})")
    try:
        cfg = config_lib.replace(config_lib.Config(), method=description["method"],
                                 backbone=description["backbone"],
                                 projector_dims=description["projector_dims"])
        shape = tuple(description["input_shape"])
    except (KeyError, TypeError) as e:
        raise UserError(f"the encoder description lacks or garbles the field {e}") from None
    config_lib.validate(cfg)
    with torch.random.fork_rng(devices=[]):  # the builder seeds; leave the caller's RNG alone
        return build_model(cfg, shape)


def load_encoder(path: str | Path) -> nn.Module:
    """Load an exported encoder (eval mode) from its directory."""
    path = Path(path)
    description_file, weights = path / "encoder.json", path / "encoder.safetensors"
    if not description_file.is_file() or not weights.is_file():
        raise UserError(f"{path} has no encoder.json and encoder.safetensors; run sslscope export")
    model = build_from_description(read_json_object(description_file))
    try:
        model.load_state_dict(read_tensors(weights, "export the run again"), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"{weights} does not match the architecture in {description_file} "
                        f"({first})") from None
    return model.eval()
