"""A grid of config overrides, each cell an ordinary run directory: ``sslscope sweep``.

    sslscope sweep --method mmcr --steps 200 --grid batch_size=16,32,64
        --grid projector_dims=64,64/128,128 --seeds 0,1 --out runs/grid --jobs 2

Each ``--grid FIELD=V1,V2,...`` is one axis and the cells are the Cartesian product of the
axes (``--seeds`` adds a last axis, ``seed``). A cell is the base config (every other
``sslscope train`` option, parsed as ``sslscope train`` parses it) with its axis values
applied, trained by :func:`sslscope.studies.runner.run_jobs` into ``OUT/runs/<cell name>``:
child processes, ``jobs`` at a time; a rerun skips finished cells, resumes killed ones and
redoes cells whose config changed. Every cell's config is validated before anything is
written, so a bad grid is one sentence and no half-made sweep.

Results, rewritten atomically after each sweep: ``OUT/sweep.csv`` and ``OUT/sweep.json``, one
row per cell (axis values, seed, status, wall time, final test accuracies of the trained h and
z, the last value of every ``inst/...`` scalar in its metrics), and ``OUT/compare.html``
(:func:`sslscope.report.compare.build_comparison` over the cells).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.errors import UserError
from sslscope.evaluate.suite import PROBES
from sslscope.files import atomic_write_json, atomic_write_text, read_json_object, read_jsonl
from sslscope.runs import RunFiles
from sslscope.studies.runner import Job, run_jobs

HELP = "train a grid of configs, several at once, resumable; one results table"
DESCRIPTION = """\
Train every cell of a grid of config overrides (the Cartesian product of the --grid axes)
as an ordinary run directory OUT/runs/<cell>, JOBS at a time. The other options set the
base config of every cell, as in `sslscope train`. Every cell is validated first; a rerun
skips finished cells, resumes killed ones and redoes those whose config changed."""
GRID_HELP = """\
grid syntax (--grid FIELD=VALUES, repeatable; each is one axis of the grid):
  values are separated by commas and typed by the config field:
    --grid batch_size=16,32,64   --grid lr=1e-3,3e-3   --grid method=vicreg,mmcr
  by slashes when a value holds commas itself (no value may hold a slash); a list field such
  as projector_dims always uses slashes (projector_dims=64/128 is two one-layer projectors):
    --grid projector_dims=64,64/128,128   --grid backbone=res_lh:4,64/res_lh:4,128
  a loss keyword argument (what --loss KEY=VALUE sets) is the axis loss.KEY:
    --grid loss.temperature=0.1,0.5
  a grid field cannot also be given as a plain option; --seeds 0,1,2 adds a seed axis.
Cells are OUT/runs/<name>, the name built from the axis values (batch_size=16,seed=0);
results: OUT/sweep.csv, OUT/sweep.json (one row per cell) and OUT/compare.html.

examples:
  sslscope sweep --method mmcr --steps 200 --grid batch_size=16,32,64 \\
      --grid projector_dims=64,64/128,128 --out runs/grid --jobs 2
  sslscope sweep --grid method=vicreg,barlow_twins --seeds 0,1,2 --out runs/pair
"""

LOSS_PREFIX = "loss."
# Directory names stay well under the 255 bytes filesystems allow; longer ones get a hash.
MAX_NAME = 150
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
# The final evaluation's columns: test accuracy of each probe on the trained h and z.
ACCURACY_COLUMNS = tuple(f"{f}/{probe}/test_acc" for f in ("h", "z") for probe in PROBES)


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: its run directory's name, its axis values and its config."""

    name: str
    values: dict[str, Any]
    cfg: Config


def _literal(text: str) -> Any:
    """A loss option's value as ``--loss KEY=VALUE`` reads it: a Python literal, else text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def typed_value(field: str, value: Any) -> Any:
    """``value`` typed for the axis ``field`` (a config field, or ``loss.KEY``)."""
    if field.startswith(LOSS_PREFIX):
        if not field[len(LOSS_PREFIX):]:
            raise UserError("a loss axis is loss.KEY=V1,V2 with KEY a loss option, got 'loss.'")
        return _literal(value.strip()) if isinstance(value, str) else value
    if field == "loss_kwargs":
        raise UserError("loss_kwargs is not a grid axis; sweep one loss option with "
                        "--grid loss.KEY=V1,V2")
    return config_lib.coerce(field, value)


def split_values(field: str, text: str) -> list[str]:
    """The values of ``--grid FIELD=TEXT`` as text (module's :data:`GRID_HELP`)."""
    if not text.strip():
        raise UserError(f"the grid axis {field} has no values")
    # A list field's single value is itself comma-separated (projector_dims=64,64).
    listed = field in config_lib.FIELDS and isinstance(config_lib.FIELDS[field].default, tuple)
    values = [v.strip() for v in text.split("/" if listed or "/" in text else ",")]
    if not all(values):
        raise UserError(f"the grid axis {field} has an empty value in '{text}'")
    return values


def parse_grid(items: Sequence[str], *, given: Collection[str] = ()) -> dict[str, list[Any]]:
    """The axes of ``--grid`` arguments, each value typed by its field.

    ``["batch_size=16,32", "projector_dims=64,64/128"]`` → ``{"batch_size": [16, 32],
    "projector_dims": [(64, 64), (128,)]}``.

    Args:
        items: the ``--grid`` arguments, in axis order.
        given: config fields (and ``loss.KEY`` names) already set by plain options; an axis
            on one of them is an error, since one of the two settings would be ignored.

    Raises:
        UserError: a malformed item, an unknown field, a value of the wrong type, an empty
            axis or value, a field named twice or also given as an option.
    """
    axes: dict[str, list[Any]] = {}
    for item in items:
        field, sep, text = item.partition("=")
        field = field.strip()
        if not sep or not field:
            raise UserError(f"--grid expects FIELD=V1,V2,..., got '{item}'")
        if field in axes:
            raise UserError(f"--grid names {field} twice; give all its values in one --grid")
        if field in given:
            flag = (f"--loss {field[len(LOSS_PREFIX):]}=..." if field.startswith(LOSS_PREFIX)
                    else "--" + field.replace("_", "-"))
            raise UserError(f"{field} is both a --grid axis and a plain option ({flag}); "
                            "drop one")
        axes[field] = [typed_value(field, v) for v in split_values(field, text)]
    return axes


def value_text(value: Any) -> str:
    """A value as it appears in a cell name: ``(64, 64)`` → ``64x64``, filesystem-safe."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value)) or "none"
    return _UNSAFE.sub("-", str(value))


def cell_name(values: Mapping[str, Any]) -> str:
    """``{"batch_size": 16, "projector_dims": (64, 64)}`` → ``batch_size=16,projector_dims=64x64``.

    Names longer than :data:`MAX_NAME` are cut and end in a hash of the whole name.
    """
    name = ",".join(f"{field}={value_text(v)}" for field, v in values.items())
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:MAX_NAME - 11]}-{digest}"
    return name


def plan(base_cfg: Config, axes: Mapping[str, Sequence[Any]], *,
         seeds: Sequence[int] | None = None,
         extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
         name: Callable[[dict[str, Any]], str] = cell_name) -> list[Cell]:
    """Every cell of the grid, each config validated; nothing is written.

    Args:
        base_cfg: what every cell starts from.
        axes: field (or ``loss.KEY``) → its values, in axis order; values are typed with
            :func:`typed_value`, so text such as ``"16"`` is fine.
        seeds: if given, a last axis ``seed``.
        extra: more overrides for a cell from its axis values (a study's per-method
            changes), applied before the axis values; not part of the name.
        name: the cell's directory name from its axis values.

    Raises:
        UserError: an empty grid or axis, a repeated value, a seed axis given twice, two cells
            with one name, or a cell whose config does not validate (naming the cell).
    """
    typed = {field: [typed_value(field, v) for v in values] for field, values in axes.items()}
    if seeds is not None:
        if "seed" in typed:
            raise UserError("the seed is both a --grid axis and --seeds; use one")
        typed["seed"] = [config_lib.coerce("seed", s) for s in seeds]
    if not typed:
        raise UserError("the grid is empty: give at least one --grid FIELD=V1,V2,... or --seeds")
    for field, values in typed.items():
        if not values:
            raise UserError(f"the grid axis {field} has no values")
        seen = [repr(v) for v in values]
        twice = next((v for v, s in zip(values, seen, strict=True) if seen.count(s) > 1), None)
        if twice is not None:
            raise UserError(f"the grid axis {field} repeats the value {value_text(twice)}")
    cells: list[Cell] = []
    for combo in itertools.product(*typed.values()):
        values = dict(zip(typed, combo, strict=True))
        overrides = {**(extra(values) if extra else {}),
                     **{k: v for k, v in values.items() if not k.startswith(LOSS_PREFIX)}}
        loss = {k[len(LOSS_PREFIX):]: v for k, v in values.items() if k.startswith(LOSS_PREFIX)}
        if loss:
            overrides["loss_kwargs"] = {**base_cfg.loss_kwargs, **loss}
        cell = name(values)
        try:
            cfg = config_lib.validate(config_lib.replace(base_cfg, **overrides))
        except UserError as e:
            raise UserError(f"cell {cell} does not validate: {e}") from None
        cells.append(Cell(cell, values, cfg))
    names = [c.name for c in cells]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:
        raise UserError(f"two cells of the grid get the directory name {clash}")
    return cells


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _trained_accuracy(evaluation: dict[str, Any] | None, features: str, probe: str) -> Any:
    """The final trained row's test accuracy (never random init, step 0, or raw pixels)."""
    rows = [r for r in (evaluation or {}).get("rows", [])
            if r.get("features") == features and r.get("step") not in (0, None)]
    final = [r for r in rows if r.get("step") == (evaluation or {}).get("final_step")] or rows
    return final[-1].get(probe, {}).get("test_acc") if final else None


def result_row(cell: Cell, files: RunFiles, error: str | None = None) -> dict[str, Any]:
    """One row of the results: axis values, seed, status, wall time, accuracies, instruments."""
    info = read_json_object(files.run_info) or {}
    evaluation = read_json_object(files.evaluation)
    row: dict[str, Any] = {"cell": cell.name}
    row.update({field: _json_value(v) for field, v in cell.values.items()})
    row.update(seed=cell.cfg.seed, status=info.get("status", "missing"),
               wall_seconds=info.get("wall_seconds"))
    row.update({column: _trained_accuracy(evaluation, *column.split("/")[:2])
                for column in ACCURACY_COLUMNS})
    last: dict[str, Any] = {}
    for metrics in read_jsonl(files.metrics) if files.metrics.is_file() else []:
        last.update({k: v for k, v in metrics.items() if k.startswith("inst/")})
    row.update(sorted(last.items()))  # a new instrument's scalars appear with no change here
    row.update(run_dir=str(Path("runs") / cell.name), error=error)
    return row


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))  # as --projector-dims takes it
    return str(value)


def write_results(out_dir: Path, base_cfg: Config, rows: list[dict[str, Any]]) -> Path:
    """Write ``sweep.csv`` and ``sweep.json`` (atomically); returns the JSON's path."""
    columns: list[str] = []
    for row in rows:  # the union, in first-seen order: cells may log different instruments
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_text(row.get(c)) for c in columns] for row in rows)
    atomic_write_text(out_dir / "sweep.csv", buffer.getvalue())
    return atomic_write_json(out_dir / "sweep.json", {
        "base_config": config_lib.to_dict(base_cfg), "columns": columns,
        "rows": [{c: row.get(c) for c in columns} for row in rows]})


def run_sweep(base_cfg: Config, axes: Mapping[str, Sequence[Any]], out_dir: str | Path, *,
              jobs: int = 1, seeds: Sequence[int] | None = None,
              extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
              name: Callable[[dict[str, Any]], str] = cell_name,
              page: str | None = "compare.html",
              log: Callable[[str], None] = print) -> Path:
    """Train (or keep) every cell of the grid, then write the results and the comparison page.

    Args:
        base_cfg, axes, seeds, extra, name: the grid, as in :func:`plan`.
        out_dir: cells go to ``out_dir/runs/<name>``; the results next to them.
        jobs: cells trained at once, each with cores / jobs threads.
        page: file name of the comparison page in ``out_dir``; None: no page.
        log: one line per cell started, skipped or done.

    Returns:
        The path of ``out_dir/sweep.json``.

    Raises:
        UserError: a bad grid or ``jobs`` below 1 (nothing written), or cells that failed
            (after the results of all cells are written; the sentence names the first).
    """
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    cells = plan(base_cfg, axes, seeds=seeds, extra=extra, name=name)
    return run_cells(cells, out_dir, base_cfg, jobs=jobs, page=page, log=log)


def run_cells(cells: Sequence[Cell], out_dir: str | Path, base_cfg: Config, *, jobs: int = 1,
              page: str | None = "compare.html",
              log: Callable[[str], None] = print) -> Path:
    """Train (or keep) validated ``cells``, then write the results and the comparison page.

    The second half of :func:`run_sweep`, for a study whose cells are not a Cartesian grid
    (one factor at a time). ``base_cfg`` is recorded in sweep.json.

    Returns:
        The path of ``out_dir/sweep.json``.

    Raises:
        UserError: cells that failed (after the results of all cells are written).
    """
    out_dir = Path(out_dir)
    failed: dict[str, str] = {}
    runs = run_jobs([Job(c.name, c.cfg) for c in cells], out_dir / "runs", parallel=jobs,
                    log=log, failed=failed)
    rows = [result_row(c, runs[c.name], failed.get(c.name)) for c in cells]
    path = write_results(out_dir, base_cfg, rows)
    shown = [runs[c.name].root for c in cells if runs[c.name].config.is_file()]
    if page and shown:
        from sslscope.report.compare import build_comparison  # matplotlib: only when it runs

        build_comparison(shown, out_dir / page)
    if failed:
        first = next(iter(failed.values()))
        raise UserError(f"{len(failed)} of {len(cells)} cells failed (see "
                        f"{out_dir / 'sweep.csv'}); the first: {first}")
    return path


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a short text table for the terminal: cell, status, h's linear and kNN."""
    width = max([len("cell"), *(len(r["cell"]) for r in rows)])
    lines = [f"{'cell':<{width}}  {'status':<9} {'h linear':>9} {'h kNN':>9}"]
    for r in rows:
        accs = "".join(f" {100 * v:8.2f}%" if isinstance(v, float) else f" {'—':>9}"
                       for v in (r.get("h/linear/test_acc"), r.get("h/knn/test_acc")))
        lines.append(f"{r['cell']:<{width}}  {r['status']:<9}{accs}")
    return "\n".join(lines)
