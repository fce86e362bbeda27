"""The run's metrics log: JSON lines on disk, mirrored to TensorBoard when it is installed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sslscope.files import append_jsonl


class MetricsLog:
    """Append rows to ``metrics.jsonl``; also write their numbers as TensorBoard scalars.

    TensorBoard is optional (``pip install tensorboard``): without it only the JSON lines are
    written, which are what the report reads. Scalars are tagged with the row's keys
    ("train/loss", "eval/h/linear/test_acc", …) at the row's ``step``.

    Args:
        path: the JSON-lines file.
        tensorboard_dir: where event files go, or None for no TensorBoard.
    """

    def __init__(self, path: Path, tensorboard_dir: Path | None = None):
        self.path = path
        self._writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is not installed: JSON lines only
                return
            self._writer = SummaryWriter(log_dir=str(tensorboard_dir))

    @property
    def tensorboard(self) -> bool:
        """Whether scalars also go to TensorBoard."""
        return self._writer is not None

    def append(self, row: dict[str, Any]) -> None:
        """Write one row (it must have a "step")."""
        append_jsonl(self.path, row)
        if self._writer is None:
            return
        for key, value in row.items():
            if key in ("step", "time") or not isinstance(value, (int, float)):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            self._writer.add_scalar(key, value, global_step=row["step"])
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
