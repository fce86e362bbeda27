"""Run a study's trainings: each an ordinary run directory, finished ones skipped, several at once.

A study names its runs (:class:`Job`: a name and a config) and hands them to :func:`run_jobs`,
which makes ``RUNS_DIR/<name>/`` with ``sslscope train`` in a child process per run, so every
run directory is exactly what the command line leaves (its ``report.html`` included) and a crash
in one run is a sentence, not a dead study. Rerunning the study:

- skips a run whose ``run.json`` says finished and whose ``config.json`` equals the job's config
  (only its ``report.html`` is rebuilt if missing: the child was killed while writing it);
- resumes one that stopped, was interrupted or was killed (``run.json`` not finished, a
  checkpoint present) with the same config, from its last checkpoint;
- starts afresh, replacing the directory, when the config changed (a different flag).

``parallel`` runs that many children at once with cores / parallel threads each (at most the
``OMP_NUM_THREADS`` of this process, when set): two processes with two OpenMP threads each on
two cores spin-wait and run several times slower.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.errors import UserError
from sslscope.files import atomic_write_json, read_json_object
from sslscope.runs import RunFiles


@dataclass(frozen=True)
class Job:
    """One training of a study: its directory name under the runs folder and its config."""

    name: str
    cfg: Config


def state(run_dir: Path, cfg: Config) -> str:
    """``"finished"``, ``"resume"`` or ``"fresh"``: what :func:`run_jobs` does with ``run_dir``."""
    files = RunFiles(run_dir)
    saved = read_json_object(files.config) if files.config.is_file() else None
    if saved != config_lib.to_dict(cfg):
        return "fresh"
    info = read_json_object(files.run_info) if files.run_info.is_file() else None
    if info and info.get("status") == "finished" and files.evaluation.is_file():
        return "finished"
    return "resume" if files.checkpoint.is_file() else "fresh"


def threads_per_job(parallel: int) -> int:
    """OpenMP threads for each of ``parallel`` simultaneous runs: the cores shared out.

    An ``OMP_NUM_THREADS`` set for this process caps it: the caller has limited the whole job
    (a shared machine, a test run), and a child spinning on more threads than it gets runs
    several times slower (module docstring).
    """
    threads = (os.cpu_count() or 1) // max(parallel, 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    if cap.isdigit() and int(cap) > 0:
        threads = min(threads, int(cap))
    return max(1, threads)


def _child(command: list[str], threads: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def _train_child(job: Job, run_dir: Path, threads: int, log: Callable[[str], None]) -> None:
    what = state(run_dir, job.cfg)
    if what == "finished":
        # `sslscope train` writes the report after run.json says finished; a kill in between
        # leaves a finished run without it, which only needs the report, not a retraining.
        if not RunFiles(run_dir).report.is_file():
            _child([sys.executable, "-m", "sslscope", "report", str(run_dir)], threads)
        log(f"{job.name}: finished already, skipped")
        return
    if what == "fresh" and run_dir.exists():
        if any(run_dir.iterdir()) and not RunFiles(run_dir).config.is_file():
            raise UserError(f"refusing to replace {run_dir}: it is not a sslscope run directory")
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    config_file = run_dir.parent / f".{job.name}.config.json"
    atomic_write_json(config_file, config_lib.to_dict(job.cfg))
    command = [sys.executable, "-m", "sslscope", "train", "--no-progress"]
    command += (["--resume", str(run_dir)] if what == "resume"
                else ["--config", str(config_file), "--run-dir", str(run_dir)])
    log(f"{job.name}: {'resuming' if what == 'resume' else 'training'}")
    done = _child(command, threads)
    config_file.unlink(missing_ok=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise UserError(f"run {job.name} failed ({run_dir}): {lines[-1]}")
    log(f"{job.name}: done")


def run_jobs(jobs: Sequence[Job], runs_dir: str | Path, *, parallel: int = 1,
             log: Callable[[str], None] = print,
             failed: dict[str, str] | None = None) -> dict[str, RunFiles]:
    """Make (or keep) every job's run directory under ``runs_dir``; returns their files by name.

    Every job runs even when an earlier one fails. With ``failed`` given, each failed run's
    sentence is put there under its name instead of raising (a sweep tabulates them).

    Raises:
        UserError: a duplicate job name, or (without ``failed``) the first run that failed, in
            job order (its last line of output).
    """
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise UserError(f"duplicate run names in a study: {names}")
    runs_dir = Path(runs_dir)
    threads = threads_per_job(parallel)
    with ThreadPoolExecutor(max_workers=max(parallel, 1)) as pool:
        futures = [pool.submit(_train_child, job, runs_dir / job.name, threads, log)
                   for job in jobs]
        for job, future in zip(jobs, futures, strict=True):
            try:
                future.result()
            except UserError as e:
                if failed is None:
                    raise  # the first failure, in job order; the pool still finishes the rest
                failed[job.name] = str(e)
    return {job.name: RunFiles(runs_dir / job.name) for job in jobs}

