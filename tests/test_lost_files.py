"""What a cluster, a full disk or a careless user does to a run directory: one sentence, no loss.

Targets asserted (issue 13's list, found by trying it): `--resume` of a run whose checkpoint was
deleted refuses instead of silently restarting at step 0 and rewriting metrics.jsonl; a
hand-edited config.json is refused on `--resume`, naming the fields; a temporary file left by a
kill during a write is removed when the run resumes; the divergence message names a checkpoint
only when one exists; an unwritable output (a file where a directory goes, a name too long for
the file system, a full disk) is one sentence and status 2.
"""

import json

import pytest

from sslscope import config as config_lib
from sslscope.cli import main
from sslscope.errors import TrainingDiverged, UserError
from sslscope.files import read_jsonl
from sslscope.train import train
from tests.conftest import tiny_config
from tests.test_train import patch_terms

TINY = ["--preset", "smoke", "--backbone", "linear:8", "--instruments", "", "--eval-points", "0",
        "--device", "cpu", "--no-progress"]


def cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def stopped_run(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(steps=8, log_every=1, checkpoint_every=2), run, progress=False, stop_at=4)
    return run


def test_resume_without_its_checkpoint_refuses(stopped_run, capsys):
    before = (stopped_run / "metrics.jsonl").read_text()
    (stopped_run / "checkpoints" / "last.safetensors").unlink()
    code, err = cli(capsys, "train", "--resume", str(stopped_run), "--no-progress")
    assert code == 2 and "checkpoint" in err and "step 4" in err, err
    assert (stopped_run / "metrics.jsonl").read_text() == before  # nothing rewritten


def test_resume_with_a_hand_edited_config_refuses(stopped_run, capsys):
    path = stopped_run / "config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "lr": saved["lr"] * 100}))
    code, err = cli(capsys, "train", "--resume", str(stopped_run), "--no-progress")
    assert code == 2 and "config.json was changed" in err and "lr" in err, err


def test_a_temporary_file_left_by_a_kill_is_removed_on_resume(stopped_run):
    leftover = stopped_run / "checkpoints" / ".last.safetensors.abc123.tmp"
    leftover.write_bytes(b"")  # what a SIGKILL during a checkpoint write leaves
    cfg = config_lib.load(stopped_run / "config.json")
    train(cfg, stopped_run, progress=False, resume=True)
    assert not leftover.exists()
    assert [r["step"] for r in read_jsonl(stopped_run / "metrics.jsonl") if "train/loss" in r] \
        == list(range(1, 9))


def test_divergence_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    import torch

    from sslscope import losses

    def nan_terms(z_a, z_b, **kwargs):
        terms = losses.vicreg_terms(z_a, z_b, **kwargs)
        return {k: v * float("nan") for k, v in terms.items()} if torch.is_grad_enabled() \
            else terms

    patch_terms(monkeypatch, "vicreg", nan_terms)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        train(tiny_config(steps=10, log_every=1, checkpoint_every=5), tmp_path / "r",
              progress=False)


def test_non_finite_gradients_under_a_finite_loss_stop_at_the_step_they_began(tmp_path,
                                                                            monkeypatch):
    """0 · √(z − z) adds nothing to the loss but a NaN to every gradient (0 · ∞): from step 3
    on. Logged every 5 steps, saved every 2: the run stops at the check of step 4, names step
    3 and the finite loss, and keeps the checkpoint of step 2, whose weights are finite."""
    import torch
    from safetensors.torch import load_file

    from sslscope import losses

    calls = {"n": 0}

    def sqrt_at_zero(z_a, z_b, **kwargs):
        terms = losses.vicreg_terms(z_a, z_b, **kwargs)
        calls["n"] += torch.is_grad_enabled()  # training steps; not the config's dry run
        if calls["n"] >= 3:
            terms["invariance"] = terms["invariance"] + 0 * torch.sqrt(z_a - z_a).sum()
        return terms

    patch_terms(monkeypatch, "vicreg", sqrt_at_zero)
    run = tmp_path / "r"
    with pytest.raises(TrainingDiverged, match=r"the gradients became non-finite at step 3 while "
                       r"the loss was finite \([0-9.]+\): usually a square root.*the last good "
                       r"checkpoint is kept"):
        train(tiny_config(steps=10, log_every=5, checkpoint_every=2), run, progress=False)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "diverged" and info["checkpoint_step"] == 2
    saved = load_file(str(run / "checkpoints" / "last.safetensors"))
    assert all(torch.isfinite(t).all() for t in saved.values() if t.is_floating_point())


def test_unwritable_outputs_are_one_sentence(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    for run_dir in (a_file, a_file / "run", tmp_path / ("x" * 5000)):
        code, err = cli(capsys, "train", *TINY, "--run-dir", str(run_dir))
        assert code == 2 and err.startswith("sslscope: error: ") and len(err.splitlines()) == 1
        assert len(err) < 400, err
    assert a_file.read_text() == "not a directory"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sslscope.files.os.replace", full_disk)
    code, err = cli(capsys, "train", *TINY, "--run-dir", str(tmp_path / "full"))
    assert code == 2 and "No space left on device" in err, err


def test_a_failed_checkpoint_write_is_a_sentence_not_a_safetensors_error(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from sslscope import checkpoint

    def failing_save(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(checkpoint, "save_file", failing_save)
    with pytest.raises(UserError, match=r"No space left on device writing \S+last.safetensors; "
                       r"training stopped at step 2; no checkpoint was written yet: free some "
                       r"space, then start again"):
        train(tiny_config(steps=4, checkpoint_every=2), tmp_path / "r", progress=False)
    assert not list((tmp_path / "r").rglob("*.tmp"))
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "failed"


def test_compare_and_export_into_an_unwritable_place_are_one_sentence(finished_run, tmp_path,
                                                                       capsys):
    a_file = tmp_path / "file"
    a_file.write_text("in the way")
    code, err = cli(capsys, "compare", str(finished_run), "--out", str(a_file / "c.html"))
    assert code == 2 and err.startswith("sslscope: error: ") and len(err.splitlines()) == 1, err
    run = tmp_path / "run"
    import shutil

    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "export", ignore_errors=True)
    (run / "export").write_text("a file where the export directory goes")
    code, err = cli(capsys, "export", str(run))
    assert code == 2 and err.startswith("sslscope: error: ") and len(err.splitlines()) == 1, err
