"""Resumable checkpoints in one safetensors file: tensors in the body, JSON in the header.

Loading never unpickles code: module weights, optimizer tensors and RNG states are tensors;
step counters, optimizer hyper-parameters and bookkeeping go into the header metadata as JSON.
The file is written to a temporary name and renamed, so a crash mid-save keeps the previous one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sslscope.errors import UserError
from sslscope.files import atomic_write

_SEP = "/"


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim{_SEP}{idx}{_SEP}{key}"] = value
            else:
                scalars[f"{idx}{_SEP}{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(_SEP, 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(_SEP, 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> Path:
    """Save module states, optimizer state, the CPU RNG state and ``info`` (JSON-able) to ``path``.

    Args:
        path: destination ``.safetensors`` file.
        modules: named modules, e.g. {"encoder": encoder}; buffers (BatchNorm statistics, loss
            state) are included.
        optimizer: its full state, so that a resumed run takes the same steps.
        info: bookkeeping such as {"step": 500, "elapsed": 12.3}.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}{_SEP}{key}"] = value
    optim_tensors, optim_meta = _optimizer_to_flat(optimizer)
    tensors.update(optim_tensors)
    tensors["rng/torch_cpu"] = torch.get_rng_state()
    # safetensors refuses shared or non-contiguous storage: give each tensor its own copy.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "info": json.dumps(info), "optimizer": json.dumps(optim_meta), "format": "sslscope-1",
    }
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint's tensors and parsed header; a missing or corrupt file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        meta = header.get("__metadata__", {})
        parsed = {k: json.loads(meta[k]) for k in ("info", "optimizer")}
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise UserError(f"checkpoint {path} is unreadable or corrupt ({e})") from None
    return tensors, parsed


def load_modules(tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module]) -> None:
    """Load the named modules' states (strict) from a checkpoint's tensors."""
    for name, module in modules.items():
        prefix = f"{name}{_SEP}"
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise UserError(f"checkpoint does not match the '{name}' model ({first})") from None


def load_checkpoint(
    path: str | Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None,
    *, check: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Restore modules, optimizer and the CPU RNG from ``path``; returns the saved ``info``.

    ``check(info)`` runs before anything is restored (it raises to refuse the checkpoint).
    """
    tensors, parsed = read_checkpoint(path)
    if check is not None:
        check(parsed["info"])
    load_modules(tensors, modules)
    if optimizer is not None:
        optim_tensors = {k: v for k, v in tensors.items() if k.startswith(f"optim{_SEP}")}
        optimizer.load_state_dict(_optimizer_from_flat(optim_tensors, parsed["optimizer"]))
    torch.set_rng_state(tensors["rng/torch_cpu"])
    return parsed["info"]
