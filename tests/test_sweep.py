"""``sslscope sweep``: grids parsed and typed by the config, cells named and validated before
anything is written, results tabulated, and a killed sweep resumed without redoing a cell."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sslscope import config as config_lib
from sslscope.cli import main
from sslscope.errors import UserError
from sslscope.studies.runner import state, threads_per_job
from sslscope.studies.sweep import (
    ACCURACY_COLUMNS,
    MAX_NAME,
    cell_name,
    parse_grid,
    plan,
    run_sweep,
)
from tests.conftest import tiny_config

# The smallest cell that still trains, evaluates and reports: a few seconds of training.
TINY = ["--preset", "smoke", "--backbone", "linear:8", "--instruments", "", "--eval-points", "0",
        "--device", "cpu"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_grid_values_are_typed_by_their_config_field():
    axes = parse_grid(["batch_size=16,32,64", "projector_dims=64,64/128,128", "lr=1e-3, 3e-3",
                       "fixed_views=true,false", "method=vicreg,mmcr",
                       "backbone=res_lh:4,64/res_lh:4,128", "loss.temperature=0.1,0.5",
                       "loss.kernel=gauss,cos"])
    assert axes == {
        "batch_size": [16, 32, 64], "projector_dims": [(64, 64), (128, 128)],
        "lr": [1e-3, 3e-3], "fixed_views": [True, False], "method": ["vicreg", "mmcr"],
        "backbone": ["res_lh:4,64", "res_lh:4,128"], "loss.temperature": [0.1, 0.5],
        "loss.kernel": ["gauss", "cos"]}
    assert list(axes) == ["batch_size", "projector_dims", "lr", "fixed_views", "method",
                          "backbone", "loss.temperature", "loss.kernel"]  # axis order kept
    # A list field's value is itself comma-separated: slashes separate its values.
    assert parse_grid(["projector_dims=64/128"]) == {"projector_dims": [(64,), (128,)]}
    assert parse_grid(["projector_dims=64,64"]) == {"projector_dims": [(64, 64)]}


def test_cell_names_are_readable_safe_and_unique():
    assert cell_name({"batch_size": 16, "projector_dims": (64, 64)}) == \
        "batch_size=16,projector_dims=64x64"
    assert cell_name({"backbone": "res_lh:4,64", "fixed_views": True, "lr": 1e-05,
                      "loss.temperature": 0.1}) == \
        "backbone=res_lh-4-64,fixed_views=true,lr=1e-05,loss.temperature=0.1"
    long = [cell_name({"taps": "conv" * 60 + str(i)}) for i in range(2)]
    assert all(len(n) == MAX_NAME for n in long) and long[0] != long[1]


def test_a_plan_is_the_product_with_seeds_last_each_cell_validated():
    base = tiny_config(method="nt_xent")
    cells = plan(base, {"batch_size": ["16", "32"], "loss.temperature": [0.1, 0.5]},
                 seeds=[0, 1])
    assert [c.name for c in cells[:3]] == [
        "batch_size=16,loss.temperature=0.1,seed=0", "batch_size=16,loss.temperature=0.1,seed=1",
        "batch_size=16,loss.temperature=0.5,seed=0"]
    assert len(cells) == 8 and cells[-1].cfg.batch_size == 32 and cells[-1].cfg.seed == 1
    assert cells[-1].cfg.loss_kwargs == {"temperature": 0.5}
    assert cells[0].cfg.steps == base.steps  # the rest is the base config's
    # A study's per-cell changes (not part of the name) and its own names.
    cells = plan(base, {"method": ["vicreg", "clip"]}, seeds=[3],
                 extra=lambda v: {"projector_dims": (16, 8)} if v["method"] == "clip" else {},
                 name=lambda v: f"{v['method']}-seed{v['seed']}")
    assert [c.name for c in cells] == ["vicreg-seed3", "clip-seed3"]
    assert [c.cfg.projector_dims for c in cells] == [base.projector_dims, (16, 8)]
    with pytest.raises(UserError, match="cell n_views=1 does not validate: n_views must be"):
        plan(config_lib.replace(base, method="mmcr"), {"n_views": [2, 1]})


@pytest.mark.parametrize("argv,fragment", [
    (["--grid", "nope=1,2"], "unknown config option 'nope'"),
    (["--grid", "batch_size=16,abc"], "'batch_size' must be an integer, got 'abc'"),
    (["--grid", "projector_dims=8,x/8"], "comma-separated list of integers"),
    (["--grid", "fixed_views=true,maybe"], "'fixed_views' must be true or false"),
    ([], "the grid is empty"),
    (["--grid", "batch_size="], "the grid axis batch_size has no values"),
    (["--grid", "batch_size=16,,32"], "the grid axis batch_size has an empty value"),
    (["--grid", "batch_size"], "--grid expects FIELD=V1,V2"),
    (["--grid", "batch_size=16", "--grid", "batch_size=32"], "names batch_size twice"),
    (["--grid", "batch_size=16,16"], "repeats the value 16"),
    (["--grid", "batch_size=16,32", "--batch-size", "8"],
     "batch_size is both a --grid axis and a plain option (--batch-size)"),
    (["--method", "nt_xent", "--loss", "temperature=0.3", "--grid", "loss.temperature=0.1,0.2"],
     "loss.temperature is both a --grid axis and a plain option (--loss temperature=...)"),
    (["--grid", "loss_kwargs=1,2"], "loss_kwargs is not a grid axis"),
    (["--seeds", "0,1", "--seed", "3"], "--seed and --seeds both set the seed"),
    (["--seeds", "0,1", "--grid", "seed=0,1"], "the seed is both a --grid axis and --seeds"),
    (["--seeds", "0,x"], "comma-separated integers"),
    (["--method", "mmcr", "--grid", "n_views=2,1"],
     "cell n_views=1 does not validate: n_views must be at least 2, got 1"),
    (["--grid", "method=vicreg,nope"], "cell method=nope does not validate: unknown method"),
    (["--grid", "batch_size=16,32", "--jobs", "0"], "--jobs must be at least 1, got 0"),
])
def test_a_bad_grid_is_one_sentence_exit_2_and_nothing_written(capsys, tmp_path, argv,
                                                               fragment):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "sweep", *TINY, "--out", str(out), *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("sslscope: error: ") and fragment in lines[0], lines[0]
    assert not out.exists() and not stdout


@pytest.mark.slow  # a training run; `make test` stays near 5 minutes
def test_a_sweep_trains_every_cell_and_tabulates_them(capsys, tmp_path):
    """Two cells at once through the command line: run directories, CSV, JSON and page."""
    out = tmp_path / "grid"
    code, stdout, err = run_cli(
        capsys, "sweep", *TINY, "--method", "mmcr", "--steps", "4", "--instruments",
        "spectrum", "--instrument-points", "2", "--instrument-batch", "64",
        "--grid", "projector_dims=8/8,8", "--out", str(out), "--jobs", "2")
    assert code == 0, err
    names = ["projector_dims=8", "projector_dims=8x8"]
    with open(out / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    saved = json.loads((out / "sweep.json").read_text())
    assert [r["cell"] for r in table] == [r["cell"] for r in saved["rows"]] == names
    columns = list(table[0])
    assert columns[:5] == ["cell", "projector_dims", "seed", "status", "wall_seconds"]
    assert set(ACCURACY_COLUMNS) <= set(columns) and {"inst/z/eff_rank", "inst/h/rankme"} <= \
        set(columns)
    assert saved["columns"] == columns and saved["base_config"]["method"] == "mmcr"
    assert [r["projector_dims"] for r in table] == ["8", "8,8"]  # as --projector-dims takes it
    assert [r["projector_dims"] for r in saved["rows"]] == [[8], [8, 8]]
    for name, row in zip(names, saved["rows"], strict=True):
        run = out / "runs" / name
        assert json.loads((run / "config.json").read_text())["projector_dims"] == row[
            "projector_dims"]
        assert row["status"] == "finished" and row["seed"] == 0 and row["wall_seconds"] > 0
        assert row["run_dir"] == f"runs/{name}" and (run / "report.html").is_file()
        evaluation = json.loads((run / "evaluation.json").read_text())
        trained_z = next(r for r in evaluation["rows"] if r["name"] == "trained, projector z")
        assert row["z/knn/test_acc"] == trained_z["knn"]["test_acc"]
        inst = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert row["inst/z/eff_rank"] == [r for r in inst if "inst/z/eff_rank" in r][-1][
            "inst/z/eff_rank"]
        assert float(table[names.index(name)]["h/linear/test_acc"]) == row["h/linear/test_acc"]
    page = (out / "compare.html").read_text()
    assert all(name in page for name in names)
    assert "projector_dims=8x8  finished" in stdout and str(out / "sweep.csv") in stdout


def test_children_get_the_cores_shared_out_at_most_the_callers_thread_limit(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [threads_per_job(n) for n in (1, 2, 3, 32)] == [16, 8, 5, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert [threads_per_job(n) for n in (1, 2, 8)] == [4, 4, 2]


def test_failed_cells_are_tabulated_and_reported_after_the_rest(tmp_path):
    # More images per step than the training split holds: valid as a config, fails at run time.
    with pytest.raises(UserError, match=r"1 of 1 cells failed .*sweep.csv.*exceeds"):
        run_sweep(tiny_config(backbone="linear:8"), {"batch_size": [100_000]}, tmp_path,
                  log=lambda s: None)
    row = json.loads((tmp_path / "sweep.json").read_text())["rows"][0]
    assert row["cell"] == "batch_size=100000" and row["status"] != "finished"
    assert "exceeds" in row["error"] and row["h/linear/test_acc"] is None


def _stamps(run_dir):
    return {name: ((run_dir / name).stat().st_mtime_ns, (run_dir / name).read_bytes())
            for name in ("run.json", "metrics.jsonl", "evaluation.json", "config.json")}


@pytest.mark.slow  # three cells and a report rebuilt, two at a time: 60-80 s on 2 cores
def test_a_killed_sweep_rerun_redoes_no_finished_cell(capsys, tmp_path):
    """Killed (SIGKILL, children too) once the 4-step cell is done and while the 400-step one
    trains beside it: the rerun keeps the first, resumes the second and trains the third."""
    out = tmp_path / "grid"
    argv = ["sweep", *TINY, "--method", "mmcr", "--checkpoint-every", "2",
            "--grid", "steps=4,400,6", "--out", str(out), "--jobs", "2"]
    # Its own process group, so one SIGKILL takes the sweep and its child trainings at once.
    proc = subprocess.Popen([sys.executable, "-m", "sslscope", *argv], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = None
    try:
        deadline = time.monotonic() + 300
        while finished is None and time.monotonic() < deadline and proc.poll() is None:
            for info in out.glob("runs/*/run.json"):
                try:
                    if json.loads(info.read_text()).get("status") == "finished":
                        finished = info.parent
                except (json.JSONDecodeError, OSError):
                    pass  # being replaced right now
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert finished is not None and finished.name == "steps=4", finished
    assert not (out / "sweep.csv").exists()  # killed before the end
    stopped = out / "runs" / "steps=400"
    assert json.loads((stopped / "run.json").read_text())["status"] == "running"
    assert (stopped / "checkpoints" / "last.safetensors").is_file()
    before = _stamps(finished)
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "steps=4: finished already, skipped" in stdout and "steps=400: resuming" in stdout
    assert "steps=6: training" in stdout
    assert _stamps(finished) == before
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["finished"] * 3
    assert all((out / r["run_dir"] / "report.html").is_file() for r in rows)
    logged = [json.loads(line) for line in (stopped / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "train/loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 400  # resumed: no step logged twice


def _start_endless_sweep(out):
    """Two 100,000-step cells training side by side; returns the sweep's process once both
    have logged a few steps."""
    argv = ["sweep", *TINY, "--method", "mmcr", "--log-every", "1", "--checkpoint-every", "1000",
            "--grid", "steps=100000,100001", "--out", str(out), "--jobs", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sslscope", *argv], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        logged = [len(p.read_text().splitlines()) for p in out.glob("runs/*/metrics.jsonl")]
        if len(logged) == 2 and min(logged) >= 3:
            return proc
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"the sweep did not start both cells: {proc.communicate()}")


def _assert_stopped_at_a_step_boundary(out):
    runs = [p.parent for p in out.glob("runs/*/run.json")]
    assert len(runs) == 2
    for run in runs:
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "interrupted", (run.name, info)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert info["checkpoint_step"] == info["stopped_at"] == rows[-1]["step"] >= 3
        cfg = config_lib.from_dict(json.loads((run / "config.json").read_text()))
        assert state(run, cfg) == "resume"  # what the rerun does with it


@pytest.mark.slow  # two trainings started and stopped: about 15 s
def test_sigterm_to_a_sweep_stops_its_trainings_at_a_step_boundary(tmp_path):
    out = tmp_path / "grid"
    proc = _start_endless_sweep(out)
    try:
        proc.send_signal(signal.SIGTERM)  # the sweep alone, as `kill PID` does
        stdout, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM); rerun the same command" in err and "Traceback" not in err
    assert stdout.count(": interrupted") == 2
    _assert_stopped_at_a_step_boundary(out)


@pytest.mark.slow
def test_trainings_of_a_sweep_killed_alone_stop_instead_of_training_on(tmp_path):
    out = tmp_path / "grid"
    proc = _start_endless_sweep(out)
    proc.kill()  # SIGKILL to the sweep only: it can pass nothing on
    proc.communicate()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        infos = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
        if all(info["status"] != "running" for info in infos):
            break
        time.sleep(0.2)
    _assert_stopped_at_a_step_boundary(out)
