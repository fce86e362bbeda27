"""Read a run directory once into a `RunRecord` that every report section can use.

The run directory is the contract between the training loop and the report:

    config.json        resolved config (flat JSON object; `loss_kwargs` is one nested dict)
    metrics.jsonl      one JSON object per line: training rows and evaluation rows
    evaluation.json    final evaluation table (missing if the run was interrupted)
    run.json           environment and status (may be missing)
    arrays/final_embeddings.safetensors   final h and z (missing if the run was interrupted);
                       read on first use by `RunRecord.embeddings`

Rows of `metrics.jsonl` are told apart by their keys: a row with any ``eval/...`` key is an
evaluation row, every other row is a training row. Keys the report does not know (for example
``spectrum/z/eff_rank``) are kept in the rows and simply ignored by sections that do not ask for
them, so the training loop can log new things without breaking old reports.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslscope.errors import UserError
from sslscope.files import read_json_object, read_jsonl, read_tensors
from sslscope.runs import RunFiles

if TYPE_CHECKING:
    from torch import Tensor

    from sslscope.data import ImageData

EVAL_PREFIX = "eval/"


@dataclass
class RunRecord:
    """Everything a report section may read, loaded once from a run directory.

    Attributes:
        run_dir: the run directory, as given to `load`.
        config: the resolved config (`config.json`).
        train_rows: rows of `metrics.jsonl` without any ``eval/`` key, in file order.
        eval_rows: rows of `metrics.jsonl` with at least one ``eval/`` key, in file order.
        evaluation: `evaluation.json`, or None if the run has no final evaluation yet.
        run_info: `run.json`, or None if it is missing.
    """

    run_dir: Path
    config: dict[str, Any]
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    eval_rows: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    run_info: dict[str, Any] | None = None
    # The outcome of the first `dataset()` call: the data or the error, so it is tried once.
    _dataset: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        """Read `run_dir`; only `config.json` is required.

        A trailing partial line in `metrics.jsonl` (a crash mid-append) is skipped, and lines
        that are not JSON objects are ignored.

        Raises:
            UserError: `run_dir` or its `config.json` is missing, or a JSON file is corrupt.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"Run directory {run_dir} does not exist; pass the folder a run wrote.")
        files = RunFiles(run_dir)
        config = read_json_object(files.config)
        if config is None:
            raise UserError(
                f"{files.config} is missing; a run directory needs the config.json its run wrote."
            )
        rows: list[dict[str, Any]] = []
        if files.metrics.is_file():
            rows = [r for r in read_jsonl(files.metrics) if isinstance(r, dict)]
        is_eval = [any(str(k).startswith(EVAL_PREFIX) for k in r) for r in rows]
        return cls(
            run_dir=run_dir,
            config=config,
            train_rows=[r for r, e in zip(rows, is_eval, strict=True) if not e],
            eval_rows=[r for r, e in zip(rows, is_eval, strict=True) if e],
            evaluation=read_json_object(files.evaluation),
            run_info=read_json_object(files.run_info),
        )

    @property
    def files(self) -> RunFiles:
        """Where each file of the run directory lives (figures, report, config, …)."""
        return RunFiles(self.run_dir)

    def series(self, key: str, rows: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Return the values of one metric over steps.

        Args:
            key: a metrics key, e.g. ``"train/loss"`` or ``"eval/h/knn/test_acc"``.
            rows: ``"train"``, ``"eval"`` or ``"all"`` (both, in file order within each kind).

        Returns:
            ``(steps, values)``: int64 array of shape (T,) and float64 array of shape (T,) for
            the T rows that have both ``step`` and `key`, in file order. null, non-numeric and
            non-finite values become NaN, so a line plot shows a gap there.
        """
        if rows == "train":
            source = self.train_rows
        elif rows == "eval":
            source = self.eval_rows
        elif rows == "all":
            source = self.train_rows + self.eval_rows
        else:
            raise ValueError(f"rows must be 'train', 'eval' or 'all', got {rows!r}")
        steps, values = [], []
        for row in source:
            step = row.get("step")
            if key not in row or not _is_number(step):
                continue
            steps.append(int(step))
            values.append(as_float(row[key]))
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def evaluation_rows(self) -> list[dict[str, Any]]:
        """The rows of `evaluation.json` that are JSON objects; [] when there is none."""
        rows = (self.evaluation or {}).get("rows")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    @functools.cached_property
    def embeddings(self) -> dict[str, Tensor] | None:
        """The final embeddings of ``arrays/final_embeddings.safetensors``, read on first use.

        Keys (written by `sslscope.operations.save_final_embeddings`): ``"test/h"`` (N_test, D_h),
        ``"test/z"`` (N_test, D_z), ``"test/y"`` (N_test,), and the same for ``"train/..."``
        (a prefix of at most 10,000 training images) plus ``"train/index"`` (N_train,), the
        positions of those images in the data set's train split. CPU tensors as saved.

        Returns:
            None when the file is missing (an interrupted run, or one from before the file
            existed); sections then leave themselves out.

        Raises:
            UserError: the file exists but is not a readable safetensors file.
        """
        return _read_arrays(self.files.embeddings, "delete it and rebuild it with `sslscope eval`")

    def arrays(self, name: str) -> dict[str, Tensor] | None:
        """An instrument's ``arrays/<name>.safetensors`` (``step`` (T,) and (T, …) rows).

        Read afresh on each call: a running run rewrites the file (atomically) as it goes, and
        a report built mid-run shows what is there now.

        Returns:
            None when the file is missing (the instrument was off, or the run predates it).

        Raises:
            UserError: the file exists but is not a readable safetensors file.
        """
        return _read_arrays(self.files.array(name), "restore it from a copy, or delete it "
                            "and rerun the instruments")

    def dataset(self) -> ImageData:
        """The run's data set (``config["dataset"]`` under ``config["data_dir"]``), loaded once.

        Used for images and class names. Loading reads files (or an archive) under ``data_dir``
        but never downloads: a report is rebuilt from what is on disk.

        Raises:
            UserError: it cannot be loaded (unknown name, files missing offline, corrupt
                files); the same error again on later calls, without a second attempt.
        """
        if self._dataset is None:
            from sslscope.data import load_dataset
            from sslscope.data.download import downloads_disabled

            name = self.config.get("dataset")
            try:
                if not isinstance(name, str):
                    raise UserError("config.json names no dataset")
                with downloads_disabled():
                    self._dataset = load_dataset(name, self.config.get("data_dir"))
            except (UserError, OSError, ValueError) as err:
                self._dataset = err if isinstance(err, UserError) else UserError(str(err))
        if isinstance(self._dataset, UserError):
            raise self._dataset
        return self._dataset

    def keys(self, rows: str = "train") -> list[str]:
        """All metric keys present in `rows` (``"train"`` or ``"eval"``), in first-seen order."""
        source = self.eval_rows if rows == "eval" else self.train_rows
        seen: dict[str, None] = {}
        for row in source:
            for k in row:
                seen.setdefault(str(k), None)
        return list(seen)


def as_float(value: Any) -> float:
    """`value` as a float; None, booleans, strings and non-finite numbers become NaN."""
    if not _is_number(value):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_arrays(path: Path, advice: str) -> dict[str, Tensor] | None:
    """The tensors of a safetensors file; None when it is missing; a UserError when unreadable."""
    if not path.is_file():
        return None
    return read_tensors(path, f"{advice}.")
