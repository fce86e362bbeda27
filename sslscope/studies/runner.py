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

Stopping a study: a SIGINT or SIGTERM reaching this process (Ctrl-C, ``kill``, a scheduler) is
passed on to the trainings running now, each of which stops at its next step boundary with a
checkpoint; no further run starts; :func:`run_jobs` waits for them and raises
:class:`~sslscope.errors.Interrupted`. Rerunning the study resumes them. Each child is also told
to stop (SIGTERM) if this process dies without passing a signal on (a SIGKILL of the study
alone), so no orphan trains on into a directory the rerun resumes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.entry import STOP_WITH_PARENT
from sslscope.errors import Interrupted, UserError
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


class _Children:
    """The trainings running now, so that a stop reaches each of them once and none starts after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self.stopping: int | None = None  # the signal that stopped the study

    def run(self, command: list[str], threads: int,
            output: Path) -> subprocess.CompletedProcess | None:
        """``command`` in a child process, to its end; None when the study is stopping.

        Its stdout and stderr go to the file ``output`` (read back into ``stdout``, then
        deleted), not to a pipe: a child orphaned by the study's death would otherwise meet a
        broken pipe at its next line of output, and fail the run it is stopping cleanly.
        """
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               STOP_WITH_PARENT: str(os.getpid())}
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "wb") as sink:
            with self._lock:  # a stop between this check and Popen would miss the new child
                child = None if self.stopping is not None else subprocess.Popen(
                    command, env=env, stdout=sink, stderr=subprocess.STDOUT)
                if child is not None:
                    self._live.add(child)
            try:
                if child is not None:
                    child.wait()
            finally:
                with self._lock:
                    self._live.discard(child)
        if child is None:
            output.unlink(missing_ok=True)
            return None
        text = output.read_text(encoding="utf-8", errors="replace")
        output.unlink(missing_ok=True)
        return subprocess.CompletedProcess(command, child.returncode, text, "")

    def stop(self, signum: int) -> None:
        """Pass ``signum`` on to every running child; start no more."""
        with self._lock:
            self.stopping = signum
            for child in self._live:
                if child.poll() is None:
                    child.send_signal(signum)


def _train_child(job: Job, run_dir: Path, threads: int, log: Callable[[str], None],
                 children: _Children) -> None:
    if children.stopping is not None:
        return  # stopped before this run's turn: the rerun does it
    what = state(run_dir, job.cfg)
    if what == "finished":
        # `sslscope train` writes the report after run.json says finished; a kill in between
        # leaves a finished run without it, which only needs the report, not a retraining.
        if not RunFiles(run_dir).report.is_file():
            children.run([sys.executable, "-m", "sslscope", "report", str(run_dir)], threads,
                         run_dir.parent / f".{job.name}.log")
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
    done = children.run(command, threads, run_dir.parent / f".{job.name}.log")
    config_file.unlink(missing_ok=True)
    if done is None:
        return
    if children.stopping is not None and done.returncode == 128 + children.stopping:
        log(f"{job.name}: interrupted")
        return
    if done.returncode != 0:
        lines = done.stdout.strip().splitlines() or ["no output"]
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
    children = _Children()
    pool = ThreadPoolExecutor(max_workers=max(parallel, 1))
    futures = [pool.submit(_train_child, job, runs_dir / job.name, threads, log, children)
               for job in jobs]
    try:
        first_failure: UserError | None = None
        for job, future in zip(jobs, futures, strict=True):
            try:
                future.result()
            except UserError as e:
                if failed is None:  # the first failure, in job order, once all have run
                    first_failure = first_failure or e
                else:
                    failed[job.name] = str(e)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM through the command line's handler
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        _stop_and_wait(children, futures, signum)
        raise Interrupted(signum) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if first_failure is not None:
        raise first_failure
    return {job.name: RunFiles(runs_dir / job.name) for job in jobs}


def _stop_and_wait(children: _Children, futures: list, signum: int) -> None:
    """Pass ``signum`` to the running children and wait until each has stopped.

    Another signal while waiting is passed on too: a child's second signal aborts its step
    in flight, keeping its last checkpoint (:class:`sslscope.train.GracefulInterrupt`).
    """
    children.stop(signum)
    for future in futures:
        while True:
            try:
                future.exception()  # waits; a failure was reported by the child already
                break
            except KeyboardInterrupt as again:
                children.stop(again.signum if isinstance(again, Interrupted) else signal.SIGINT)

