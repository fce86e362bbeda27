"""Section 6: views/s and model-FLOP utilisation of CIFAR ResNet-18 training on a CUDA GPU.

What is timed: ``sslscope.train.train`` itself on CIFAR-shaped random images (written in the
CIFAR-10 file format, read by the real loader, resident on the GPU as uint8 with the views
made there), the ``cifar10-vicreg`` preset's networks (ResNet-18 CIFAR stem, 2048³ projector)
with evaluation and instruments off. The steady-state step is the difference of two runs that
stop after k₁ and k₂ steps, as in the training section. Each row is one engine setting:
precision (fp32 / bf16 autocast, losses in float32), channels-last, ``torch.compile``, and the
global batch (256–1024).

Model-FLOP utilisation: MFU = views/s × F / peak, F the encoder's forward + backward FLOPs per
view counted by ``torch.utils.flop_counter.FlopCounterMode`` on this very model (the convs
and matmuls; ~3.33 GFLOP for the backbone alone, performance.md §3), the peak the spec sheet's
dense bf16 tensor rate for the device when known (:data:`SPEC_PEAKS`), and also the rate a
large bf16 matmul reaches here (a measured ceiling, for any GPU). fp32 rows are divided by the
same bf16 peak, as airbench and the MFU anchors in performance.md do. The loss, the views and
the optimizer are not counted in F: they are the overhead the ratio exposes.

Without a CUDA device the section says so and measures nothing.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sslscope import config as config_lib
from sslscope.bench.table import Column, Section, Table
from sslscope.bench.timing import Settings, median
from sslscope.bench.training import train_seconds, write_synthetic_cifar
from sslscope.config import Config
from sslscope.parts import build_model
from sslscope.presets import PRESETS

# Dense bf16 tensor-core peaks, FLOP/s, from the vendors' spec sheets (no sparsity).
SPEC_PEAKS = {"H200": 989e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H100": 989e12,
              "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}
# (precision, channels_last, compile, batch): eager fp32 as the baseline, then what helps.
SETTINGS = (("fp32", False, False, 256), ("bf16", False, False, 256), ("bf16", True, False, 256),
            ("bf16", True, True, 256), ("bf16", True, False, 512), ("bf16", True, True, 512),
            ("bf16", True, False, 1024), ("bf16", True, True, 1024))
QUICK_SETTINGS = (("fp32", False, False, 32), ("bf16", True, False, 32))


def spec_peak(name: str) -> float | None:
    """The spec-sheet dense bf16 peak of a device called ``name``, or None when unknown."""
    return next((peak for key, peak in SPEC_PEAKS.items() if key in name), None)


def flops_per_view(cfg: Config, device: torch.device, batch: int = 8) -> float:
    """Forward + backward FLOPs of ``cfg``'s encoder (backbone and projector) per 3×32×32 view."""
    model = build_model(cfg, (3, 32, 32)).to(device).train()
    x = torch.rand(batch, 3, 32, 32, device=device)
    with FlopCounterMode(display=False) as counter:
        h, z = model(x)
        (h.sum() + z.sum()).backward()
    return counter.get_total_flops() / batch


def matmul_rate(device: torch.device, size: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of a size³ bf16 matmul on ``device``: the ceiling this GPU reaches here."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def gpu_config(settings: Settings, precision: str, channels_last: bool, compile_: bool,
               batch: int, steps: int) -> Config:
    """The timed run: cifar10-vicreg's networks on CIFAR-shaped data, only the steps."""
    root = write_synthetic_cifar(settings.scratch / "cifar-shaped", 2048 if not settings.quick
                                 else 64)
    cfg = PRESETS["cifar10-vicreg"]()
    if settings.quick:
        cfg = config_lib.replace(cfg, backbone="small_cnn", projector_dims=(64, 64))
    return config_lib.replace(
        cfg, device="cuda", data_dir=str(root), batch_size=batch, steps=steps, warmup_steps=1,
        instruments="", eval_points=0, tensorboard=False, checkpoint_every=1_000_000,
        precision=precision, channels_last=channels_last, compile=compile_)


def run(settings: Settings) -> Section:
    """One row per engine setting, or a note that there is no GPU."""
    title = "GPU: views/s and model-FLOP utilisation of CIFAR ResNet-18 training"
    if not torch.cuda.is_available():
        return Section("gpu", title, "Needs a CUDA device.", [],
                       notes=["No CUDA device on this machine: nothing measured. The GPU code "
                              "paths (nccl, SyncBatchNorm, bf16 on CUDA) have CPU tests where "
                              "they can; see tests/test_engine.py and tests/test_torchrun.py."])
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak, ceiling = spec_peak(name), matmul_rate(device)
    k1, timed = (2, 3) if settings.quick else (20, 50)
    table = Table(f"{name}: cifar10-vicreg networks, two views per image", [
        Column("precision"), Column("channels-last"), Column("compile"), Column("batch"),
        Column("views/s", "{:,.0f}"), Column("TFLOP/s", "{:.1f}"),
        Column("MFU (spec bf16 peak)", "{:.1%}", ratio=True),
        Column("of measured bf16 matmul", "{:.1%}", ratio=True),
        Column("speed-up over fp32 eager", "{:.2f}×", ratio=True)])
    baseline = None
    for precision, channels_last, compile_, batch in (QUICK_SETTINGS if settings.quick
                                                       else SETTINGS):
        cfg = gpu_config(settings, precision, channels_last, compile_, batch, k1 + timed + 1)
        flops = flops_per_view(cfg, device)
        run_dir = settings.scratch / "gpu-run"
        per_step = []
        for _ in range(settings.repeats):
            long, short = train_seconds(cfg, run_dir, k1 + timed), train_seconds(cfg, run_dir, k1)
            per_step.append((long - short) / timed)
        views = batch * cfg.n_views / median(per_step)
        baseline = baseline or views  # the first row: fp32, eager, batch 256
        rate = views * flops
        table.add(precision, "on" if channels_last else "off", "on" if compile_ else "off",
                  batch, views, rate / 1e12, rate / peak if peak else None, rate / ceiling,
                  views / baseline)
    return Section(
        "gpu", title,
        f"`sslscope.train` on CIFAR-shaped data resident on the GPU, steady-state step timed as "
        f"the difference of runs stopping after {k1} and {k1 + timed} steps, median of "
        f"{settings.repeats} repeats. F = {flops / 1e9:.2f} GFLOP per view (encoder forward + "
        f"backward, FlopCounterMode); spec bf16 peak "
        f"{'%.0f TFLOP/s' % (peak / 1e12) if peak else 'unknown for this device'}; a "
        f"8192³ bf16 matmul reaches {ceiling / 1e12:.0f} TFLOP/s here. The target is ≥ 25 % "
        "MFU for bf16.", [table])
