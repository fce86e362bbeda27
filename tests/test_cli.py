"""The command line: one clear sentence and exit 2 on bad input; help that covers every option."""

import json
import subprocess
import sys

import pytest

from sslscope import config as config_lib
from sslscope.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_sentence(err, *fragments):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("sslscope: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("argv,fragments", [
    (["train", "--method", "nope"], ["unknown method 'nope'", "vicreg"]),
    (["train", "--lr", "-0.1"], ["learning rate must be positive"]),
    (["train", "--lr", "fast"], ["'lr' must be a number"]),
    (["train", "--steps", "1.5"], ["'steps' must be an integer"]),
    (["train", "--loss", "lambda=1"], ["no option 'lambda'"]),
    (["train", "--loss", "inv_weight"], ["KEY=VALUE"]),
    (["train", "--preset", "huge"], ["unknown preset 'huge'"]),
    (["train", "--backbone", "vgg99"], ["unknown backbone 'vgg99'"]),
    (["train", "--config", "/nonexistent/config.json"], ["does not exist"]),
    (["train", "--resume", "/nonexistent/run"], ["does not exist"]),
    (["eval", "/nonexistent/run"], ["run directory /nonexistent/run does not exist"]),
    (["report", "/nonexistent/run"], ["does not exist"]),
    # The stepwise regime's options (issue 8's bad inputs).
    (["train", "--instruments", "spectra"], ["unknown instrument 'spectra'"]),
    (["train", "--instrument-batch", "100000"], ["instrument_batch 100000 exceeds"]),
    (["train", "--init-scale", "0"], ["init_scale must be positive"]),
    (["train", "--method", "byol", "--precondition", "0.1"],
     ["precondition does not apply to byol"]),
    (["train", "--precondition", "-1"], ["precondition must be ≥ 0"]),
    # The clustering anatomy's options (issue 9).
    (["train", "--levels", "pixels"], ["unknown label level 'pixels'"]),
    (["train", "--taps", "block9"], ["no tap 'block9'; its taps are: conv1"]),
    (["train", "--levels", "sample", "--sample-images", "5000"],
     ["sample_images 5000 exceeds the 1347 training images"]),
    (["train", "--method", "clip", "--levels", "class"], ["one encoder per modality"]),
    (["train", "--mine-seeds", "-2"], ["mine_seeds must be ≥ 0"]),
    # Found by trying it as a user (issue 13's list).
    (["train", "--steps", "20"], ["warmup_steps (100) must be between 0 and steps (20)",
                                  "--warmup-steps 2"]),
    (["train", "--seed", "-1"], ["seed must be in [0, 2**32 − 1], got -1"]),
    (["train", "--stop-at", "-1"], ["--stop-at must be a step of at least 1, got -1"]),
    (["train", "--method", "x" * 100_000], ["unknown method '" + "x" * 40 + "… (100,000 "
                                            "characters)'"]),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, argv, fragments):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_sentence(err, *fragments)


def test_config_file_with_unknown_key_or_wrong_type(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"method": "vicreg", "learning_rate": 0.1}))
    code, _, err = run_cli(capsys, "train", "--config", str(path))
    assert code == 2
    assert_one_sentence(err, "unknown config option 'learning_rate'")
    path.write_text(json.dumps({"steps": "many"}))
    code, _, err = run_cli(capsys, "train", "--config", str(path))
    assert code == 2
    assert_one_sentence(err, "'steps' must be an integer")
    path.write_text("{not json")
    code, _, err = run_cli(capsys, "train", "--config", str(path))
    assert code == 2
    assert_one_sentence(err, "not valid JSON")


def test_eval_of_a_directory_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval", str(tmp_path))
    assert code == 2
    assert_one_sentence(err, "not a sslscope run directory")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in config_lib.FIELDS:
        flag = "--loss" if name == "loss_kwargs" else "--" + name.replace("_", "-")
        assert flag in text, flag
    assert "vicreg" in text and "nt_xent" in text and "--resume" in text


def test_train_then_eval_then_report(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--preset", "smoke", "--eval-points", "0",
                             "--device", "cpu", "--run-dir", str(run_dir), "--no-progress",
                             "--loss", "inv_weight=20")
    assert code == 0, err
    assert "trained, backbone h" in out
    saved = config_lib.load(run_dir / "config.json")
    assert saved.loss_kwargs == {"inv_weight": 20} and saved.eval_points == 0
    # Re-running the saved config as is gives the same config.
    assert config_lib.from_dict(json.loads((run_dir / "config.json").read_text())) == saved
    code, _, err = run_cli(capsys, "train", "--preset", "smoke", "--run-dir", str(run_dir))
    assert code == 2
    assert_one_sentence(err, "not empty")
    code, out, _ = run_cli(capsys, "eval", str(run_dir))
    assert code == 0 and "raw pixels" in out
    (run_dir / "report.html").unlink()
    code, _, _ = run_cli(capsys, "report", str(run_dir))
    assert code == 0 and (run_dir / "report.html").is_file()


def test_overwrite_refuses_a_directory_that_is_not_a_run(capsys, tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    code, _, err = run_cli(capsys, "train", "--preset", "smoke", "--run-dir", str(tmp_path),
                           "--overwrite")
    assert code == 2
    assert_one_sentence(err, "not a sslscope run directory")
    assert (tmp_path / "precious.txt").exists()


def test_console_script_prints_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "sslscope", "train", "--method", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_icon_table_prints_every_equivalence_and_passes(capsys):
    code, out, _ = run_cli(capsys, "icon-table", "--n", "5")
    assert code == 0
    for method in ("SimCLR", "SupCon", "cross-entropy", "label smoothing", "SNE", "t-SNE"):
        assert method in out
    assert "largest difference" in out


@pytest.mark.parametrize("n", ["0", "3", "100000"])
def test_icon_table_rejects_sizes_outside_its_range(capsys, n):
    code, _, err = run_cli(capsys, "icon-table", "--n", n)
    assert code == 2 and "--n must be between 4 and 2048" in err and "Traceback" not in err


@pytest.mark.slow
def test_study_methods_writes_a_table(capsys, tmp_path):
    code, out, err = run_cli(capsys, "study", "methods", "--out", str(tmp_path), "--methods",
                             "vicreg,byol", "--seeds", "0", "--steps", "4", "--device", "cpu")
    assert code == 0, err
    table = (tmp_path / "results.md").read_text()
    assert "| `vicreg` |" in table and "| `byol` |" in table and "raw pixels" in table
    assert "Differences from the base config" not in table  # neither has overrides
    assert f"study methods --out {tmp_path} --methods vicreg,byol --steps 4" in table
    assert not (tmp_path / "runs").exists()  # run directories are removed unless --keep-runs
    page = (tmp_path / "report.html").read_text()
    assert "vicreg-seed0" in page and "byol-seed0" in page and "data:image/png;base64," in page


@pytest.mark.slow  # a training run; `make test` stays near 5 minutes
def test_study_table_cells_are_the_runs_test_accuracies(capsys, tmp_path):
    code, _, err = run_cli(capsys, "study", "methods", "--out", str(tmp_path), "--methods",
                           "vicreg", "--seeds", "0", "--steps", "3", "--device", "cpu",
                           "--keep-runs")
    assert code == 0, err
    assert (tmp_path / "runs" / "vicreg-seed0" / "report.html").is_file()  # kept: as train does
    table = (tmp_path / "results.md").read_text()
    assert "| method | linear probe | kNN | NCC | k-means | wall s / run |" in table
    rows = json.loads(next((tmp_path / "runs").glob("vicreg-seed0*/evaluation.json")).read_text())
    for name, label in [("trained, backbone h", "`vicreg`"), ("raw pixels", "raw pixels")]:
        row = next(r for r in rows["rows"] if r["name"] == name)
        want = [f"{100 * row[p]['test_acc']:.2f}" for p in ("linear", "knn", "ncc", "cluster")]
        line = next(line for line in table.splitlines() if line.startswith(f"| {label}"))
        assert [c.strip() for c in line.split("|")[2:6]] == want


@pytest.mark.parametrize("argv,fragment", [
    (["study", "methods", "--methods", "nope"], "unknown method 'nope'"),
    (["study", "methods", "--seeds", "a,b"], "comma-separated integers"),
    (["study", "stepwise", "--jobs", "0"], "--jobs must be at least 1"),
    (["study", "stepwise", "--precondition", "0"], "--precondition must be positive"),
    (["study", "clustering", "--backbone", "vgg"], "unknown backbone 'vgg'"),
    (["study", "clustering", "--method", "nope"], "unknown method 'nope'"),
    (["study", "clustering", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_study_bad_input(capsys, argv, fragment):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_sentence(err, fragment)
