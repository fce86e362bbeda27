"""A run directory: where each file lives, the run's environment record, its final evaluation.

Layout (every file written atomically):

    RUN_DIR/
      config.json                  the exact resolved config; `sslscope train --config` re-runs it
      run.json                     environment, status, timing
      metrics.jsonl                one JSON object per log or evaluation step
      evaluation.json              final table: raw pixels, random init, trained (h and z)
      arrays/final_embeddings.safetensors   h and z of the test split and of training images
      checkpoints/last.safetensors resumable state (weights, optimizer, RNG)
      tensorboard/                 the same scalars as event files, when tensorboard is installed
      report.html                  self-contained report; figures/ holds PNG and SVG copies
      export/                      the encoder as safetensors + JSON (`sslscope export`)

Every other module asks :class:`RunFiles` for these paths, so the layout is written down once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sslscope import config as config_lib
from sslscope.checkpoint import load_checkpoint
from sslscope.errors import UserError, shown
from sslscope.files import (
    atomic_write_json,
    read_json_object,
    read_jsonl,
    remove_temporaries,
    write_jsonl,
)


@dataclass(frozen=True)
class RunFiles:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def run_info(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation.json"

    @property
    def embeddings(self) -> Path:
        return self.array("final_embeddings")

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.safetensors"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def export(self) -> Path:
        return self.root / "export"

    def array(self, name: str) -> Path:
        """``arrays/<name>.safetensors``: raw arrays kept for re-analysis."""
        return self.root / "arrays" / f"{name}.safetensors"

    def require(self) -> RunFiles:
        """Raise a UserError unless this looks like an existing run directory."""
        if not self.root.is_dir():
            raise UserError(f"run directory {self.root} does not exist")
        if not self.config.is_file():
            raise UserError(f"{self.root} is not a sslscope run directory (no config.json)")
        return self

    def load_config(self) -> config_lib.Config:
        return config_lib.load(self.config)


def now() -> str:
    """Current local time, ISO 8601 with seconds."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def git_sha() -> str | None:
    """The commit of the sslscope source tree, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5, check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    """The processor's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), "" where unknown.

    Linux's /proc/cpuinfo has it; platform.processor() there says only "x86_64". Floating-point
    results of a CPU run can change with the processor, so it is part of what a run ran on.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def environment(device: torch.device) -> dict[str, Any]:
    """What the run ran on: versions, device name, threads (airbench prints this too)."""
    from sslscope import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "sslscope_version": __version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "threads": torch.get_num_threads(),
        "git_sha": git_sha(),
    }


def update_run_info(files: RunFiles, **fields: Any) -> None:
    """Merge ``fields`` into run.json (created if missing)."""
    info: dict[str, Any] = {}
    if files.run_info.is_file():
        try:  # a damaged run.json is bookkeeping: start it afresh rather than stop the run
            saved = json.loads(files.run_info.read_text(encoding="utf-8"))
            info = saved if isinstance(saved, dict) else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            info = {}
    info.update(fields)
    try:
        atomic_write_json(files.run_info, info)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not files.run_info.is_file():
            raise
        # A full disk has no room for the new copy the atomic write needs, but the old file's
        # blocks are its own: rewriting it in place keeps run.json true (a run that stopped
        # says so, not "running"). Only here, where the alternative is a status that lies.
        data = (json.dumps(info, indent=2) + "\n").encode("utf-8")
        if len(data) > files.run_info.stat().st_blocks * 512:  # it would need a new block
            raise
        _rewrite_in_place(files.run_info, data)


def _rewrite_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def start_run(
    files: RunFiles,
    cfg: config_lib.Config,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    *,
    resume: bool,
    device: torch.device,
    loss_kwargs: dict[str, Any],
) -> tuple[int, float]:
    """Prepare the run directory for training and return (first step, seconds already trained).

    A fresh run needs the directory absent or empty and writes config.json and run.json. A
    resumed one needs the same config, restores ``modules``, ``optimizer`` and the RNG from the
    checkpoint (if one was written), and drops the metrics rows logged after it: they are
    redone, and none may appear twice.
    """
    start, elapsed = 0, 0.0
    if resume:
        saved = files.require().load_config()
        if saved != cfg:
            raise UserError(f"the config differs from {files.config}; resume with it unchanged")
        remove_temporaries(files.root)  # a kill mid-write leaves them; this process owns the run
        if files.checkpoint.is_file():
            info = load_checkpoint(files.checkpoint, modules, optimizer,
                                   check=lambda info: _same_config(info, cfg, files))
            start, elapsed = info["step"], info["elapsed"]
        else:
            saved_at = (read_json_object(files.run_info) or {}).get("checkpoint_step")
            if saved_at:  # restarting at step 0 would rewrite the metrics of every step since
                raise UserError(f"{files.checkpoint} is missing, but the run saved a checkpoint "
                                f"at step {saved_at}; restore it, or start the run again with "
                                "--overwrite")
        # The evaluation row of the checkpoint step comes after its training row: it is redone.
        keep = [r for r in read_jsonl(files.metrics) if r["step"] < start
                or (r["step"] == start and "train/loss" in r)] if files.metrics.is_file() else []
        write_jsonl(files.metrics, keep)
    else:
        if files.root.exists() and not files.root.is_dir():
            raise UserError(f"run directory {files.root} is a file; choose another --run-dir")
        if files.root.exists() and any(files.root.iterdir()):
            raise UserError(
                f"run directory {files.root} is not empty; pass --resume or --overwrite"
            )
        _start_fresh(files, cfg, environment(device), loss_kwargs)
        return start, elapsed
    update_run_info(files, status="running", finished=None)
    return start, elapsed


def _start_fresh(files: RunFiles, cfg: config_lib.Config, env: dict[str, Any],
                 loss_kwargs: dict[str, Any]) -> None:
    """Write config.json and run.json of a new run; on a failed write, neither (nor the dir)."""
    created = not files.root.exists()
    files.root.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_json(files.config, config_lib.to_dict(cfg))
        update_run_info(files, **env, loss_kwargs=loss_kwargs, started=now(), status="running",
                        finished=None)
    except OSError as error:  # a full disk, a quota: leave the place as it was
        for path in (files.config, files.run_info):
            path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                files.root.rmdir()
        where = f" writing {shown(error.filename, 300)}" if error.filename else ""
        raise UserError(f"{error.strerror or error}{where}; nothing was written") from None


def _same_config(info: dict[str, Any], cfg: config_lib.Config, files: RunFiles) -> None:
    """Refuse a checkpoint trained with another config than config.json now holds."""
    trained = info.get("config")  # absent in checkpoints written before it was recorded
    if trained is None:
        return
    changed = sorted(k for k, v in config_lib.to_dict(cfg).items() if trained.get(k) != v)
    if changed:
        raise UserError(f"{files.config} was changed since the checkpoint was saved ("
                        f"{', '.join(changed)}); restore it, or start a new run with the new "
                        "config")


def evaluation_table(
    pixels: dict[str, float], initial: dict[str, float], trained: dict[str, float], step: int
) -> dict[str, Any]:
    """The final table: what self-supervision bought over raw pixels and a random network.

    Args:
        pixels: probe results on raw pixels, keys "linear/test_acc", "knn/test_acc", ...
        initial, trained: :func:`sslscope.evaluate.suite.evaluate_encoder` results of the
            randomly initialised and of the trained encoder (keys "h/linear/test_acc", ...).
        step: the trained encoder's step.
    """

    def row(name: str, features: str, at: int | None, values: dict[str, float]) -> dict:
        out: dict[str, Any] = {"name": name, "features": features, "step": at}
        for key, value in values.items():
            probe, metric = key.split("/", 1)
            out.setdefault(probe, {})[metric] = value
        return out

    def part(results: dict[str, float], features: str) -> dict[str, float]:
        prefix = f"{features}/"
        return {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}

    return {
        "final_step": step,
        "rows": [
            row("raw pixels", "pixels", None, pixels),
            row("random init, backbone h", "h", 0, part(initial, "h")),
            row("random init, projector z", "z", 0, part(initial, "z")),
            row("trained, backbone h", "h", step, part(trained, "h")),
            row("trained, projector z", "z", step, part(trained, "z")),
        ],
    }
