"""The run's metrics log: JSON lines on disk, mirrored to TensorBoard when it is installed."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path
from typing import Any

from sslscope.files import append_jsonl


class MetricsLog:
    """Append rows to ``metrics.jsonl``; also write their numbers as TensorBoard scalars.

    TensorBoard is optional (``pip install tensorboard``): without it only the JSON lines are
    written, which are what the report reads. Scalars are tagged with the row's keys
    ("train/loss", "eval/h/linear/test_acc", …) at the row's ``step``.

    The JSON lines are the record; TensorBoard is a mirror. A mirror that fails (a full disk
    under its background writer) is switched off with one line on stderr, instead of a
    thread's traceback or an error that hides the record's own: the next JSON line that
    cannot be written is what stops the run, with its file named.

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
            _quiet_writer_threads()

    @property
    def tensorboard(self) -> bool:
        """Whether scalars also go to TensorBoard."""
        return self._writer is not None

    def append(self, row: dict[str, Any]) -> None:
        """Write one row (it must have a "step")."""
        append_jsonl(self.path, row)
        if self._writer is None:
            return
        try:
            for key, value in row.items():
                if key in ("step", "time") or not isinstance(value, (int, float)):
                    continue
                if isinstance(value, float) and not math.isfinite(value):
                    continue
                self._writer.add_scalar(key, value, global_step=row["step"])
            self._writer.flush()
        except Exception as error:  # noqa: BLE001 - any failure of the mirror: see the class
            self._stop_mirror(error)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as error:  # noqa: BLE001
                self._stop_mirror(error)
            self._writer = None

    def _stop_mirror(self, error: Exception) -> None:
        self._writer = None
        print(f"sslscope: TensorBoard mirror stopped ({error}); metrics.jsonl goes on",
              file=sys.stderr)


def _quiet_writer_threads() -> None:
    """Keep the traceback of TensorBoard's writer thread off stderr.

    Its error reaches the caller at the next flush, where :class:`MetricsLog` reports it in one
    line.
    """
    previous = threading.excepthook
    if getattr(previous, "sslscope_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ != "_AsyncWriterThread":
            previous(args)

    hook.sslscope_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook
