"""`sslscope bench`: the quick run end to end, bad input, and that each baseline does our work."""

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from sslscope import config as config_lib
from sslscope.bench import SECTIONS, augmentation
from sslscope.bench.augmentation import kornia_pipeline, kornia_views
from sslscope.bench.evaluation import gaussian_features, sklearn_knn, sklearn_ncc, sklearn_probe
from sslscope.bench.pil_pipeline import PerSampleViews, per_sample_loader
from sslscope.bench.runner import RUNNERS
from sslscope.bench.table import Column, Table
from sslscope.bench.timing import Settings
from sslscope.bench.training import hand_written_step
from sslscope.cli import main
from sslscope.data import load_dataset
from sslscope.evaluate.neighbours import knn_accuracy, ncc_accuracy
from sslscope.evaluate.probes import linear_probe
from sslscope.files import read_jsonl
from sslscope.presets import demo
from sslscope.train import train
from sslscope.views import RECIPES, make_views

ROOT = Path(__file__).resolve().parents[1]


def test_quick_bench_writes_one_table_with_every_section(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--out", str(out), "--quick", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "bench.md"]  # no temp file
    md = (out / "bench.md").read_text()
    assert md in printed
    data = json.loads((out / "bench.json").read_text())
    head = data["header"]
    assert head["threads"] == 1 and head["quick"] and head["logical_cpus"] >= 1
    assert {"torch", "numpy", "scikit-learn", "kornia"} <= head["versions"].keys()
    assert head["command"].startswith("sslscope bench --out") and head["command"] in md
    assert [s["key"] for s in data["sections"]] == list(SECTIONS)
    for number, section in enumerate(data["sections"], 1):
        assert f"## {number}. {section['title']}" in md
        if section["key"] == "gpu" and not torch.cuda.is_available():
            assert not section["tables"] and "No CUDA device" in section["notes"][0]
            continue
        assert section["tables"] and section["seconds"] > 0
        ratios = [row[c] for table in section["tables"] for c in table["ratio_columns"]
                  for row in table["rows"] if not isinstance(row[c], str) and row[c] is not None]
        assert ratios, section["key"]
        assert all(math.isfinite(r) and r > 0 for r in ratios), (section["key"], ratios)
    kornia_row = data["sections"][0]["tables"][0]["rows"][0]["kornia (images/s)"]
    assert isinstance(kornia_row, float) or kornia_row == "kornia not installed"
    assert "lightly: not installed" in md


@pytest.mark.parametrize("argv,fragment", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--workers", "-1"], "--workers must be 0"),
    (["--sections", "training,nope"], "unknown bench section 'nope'"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, argv, fragment):
    assert main(["bench", "--out", str(tmp_path), "--quick", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sslscope: error: ") and fragment in err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "bench.md"
    path.write_text("keep me")
    assert main(["bench", "--out", str(path), "--quick"]) == 2
    assert "is a file" in capsys.readouterr().err and path.read_text() == "keep me"


def test_runners_follow_the_section_list():
    assert tuple(RUNNERS) == SECTIONS


def test_the_core_library_does_not_import_the_bench():
    # cli.py reads only the section names (sslscope/bench/__init__.py) and imports the runner
    # inside its handler; nothing else in the package may import the bench.
    pattern = re.compile(r"^\s*(from|import)\s+sslscope\.bench\b", re.M)
    offenders = [p.relative_to(ROOT).as_posix() for p in (ROOT / "sslscope").rglob("*.py")
                 if "bench" not in p.parts and p.name != "cli.py" and pattern.search(p.read_text())]
    assert offenders == []


def test_table_cells_and_json():
    table = Table("t", [Column("name"), Column("x", "{:.1f}", ratio=True)])
    table.add("a", 2.0)
    table.add("b", None)
    table.add("c", "not installed")
    table.add("d", math.nan)
    assert "| a | 2.0 |" in table.markdown() and "| b | — |" in table.markdown()
    assert "| c | not installed |" in table.markdown()
    rows = table.as_json()["rows"]
    assert table.as_json()["ratio_columns"] == ["x"] and rows[3]["x"] is None
    with pytest.raises(ValueError):
        table.add("too", 1.0, 2.0)


# --- the baselines do the same work as ours ---------------------------------------------------


def _gray_fraction(views):
    """Fraction of images whose three channels are equal (the grayscale op fired)."""
    x = torch.stack(views) if isinstance(views, list) else views
    return float(((x[:, 0] - x[:, 1]).abs().amax((1, 2)) < 1e-6).double().mean())


@pytest.mark.parametrize("recipe,shape", [("simclr", (3, 32, 32)), ("digits", (1, 8, 8))])
def test_baseline_pipelines_make_images_like_ours(recipe, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (400, *shape), dtype=torch.uint8, generator=g)
    ours = make_views(x, recipe, 2, g)
    per_sample = PerSampleViews(x, recipe, 2)
    pil = [torch.stack([per_sample[i][v] for i in range(len(x))]) for v in range(2)]
    sides = {"ours": ours, "per-sample": pil}
    pipes = [kornia_pipeline(a, shape) for a in RECIPES[recipe]]
    if all(p is not None for p in pipes):
        sides["kornia"] = kornia_views(pipes, x, 2)
    for name, views in sides.items():
        assert len(views) == 2, name
        for v in views:
            assert v.shape == x.shape and v.dtype == torch.float32, name
            assert 0 <= v.min() and v.max() <= 1, name
    if recipe == "simclr":  # grayscale with p = 0.2 on every side
        for name, views in sides.items():
            # 400 Bernoulli(0.2) draws: σ = 0.02; the per-sample side is not seeded, so
            # allow 5σ (a wrong probability such as 0.5 is 15σ away).
            assert abs(_gray_fraction(views[0]) - 0.2) < 0.1, name
    else:  # PIL's ops stay on the uint8 grid: only the recipe's N(0, 0.05²) noise leaves it
        off_grid = ((pil[0] * 255 - (pil[0] * 255).round()).abs() > 1e-3).double()
        assert off_grid.mean() > 0.5


def test_identity_recipe_is_the_identity_on_every_side():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=g)
    expected = x.float() / 255
    (aug,) = RECIPES["none"]
    pil = torch.stack([PerSampleViews(x, "none", 1)[i][0] for i in range(len(x))])
    torch.testing.assert_close(pil, expected)
    torch.testing.assert_close(make_views(x, "none", 1, g)[0], expected)
    pipe = kornia_pipeline(aug, (3, 16, 16))
    if pipe is not None:
        torch.testing.assert_close(kornia_views([pipe], x, 1)[0], expected, atol=1e-5,
                                   rtol=0)


def test_without_kornia_the_row_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia", None)  # `import kornia...` raises ImportError
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    settings = Settings(quick=True, repeats=1, threads=1, workers=0, scratch=tmp_path)
    rows = augmentation.run(settings).tables[0].as_json()["rows"]
    assert [r["kornia (images/s)"] for r in rows] == ["kornia not installed"] * 2
    assert all(r["ours / kornia"] == "kornia not installed" for r in rows)
    assert all(r["ours / per-sample"] > 0 for r in rows)
    assert [r["compiled / kornia"] for r in rows] == ["not measured with --quick"] * 2


def test_per_sample_loader_batches():
    x = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    batches = list(per_sample_loader(x, "digits", 2, batch_size=4, batches=3, workers=0))
    assert len(batches) == 3 and all(len(b) == 2 and b[0].shape == (4, 1, 8, 8)
                                     for b in batches)


def test_hand_written_loop_reaches_the_losses_of_sslscope_train(tmp_path):
    cfg = config_lib.replace(demo(), device="cpu", steps=6, warmup_steps=2, batch_size=32,
                             projector_dims=(32, 32), instruments="", eval_points=0,
                             tensorboard=False, log_every=1, checkpoint_every=1000)
    files = train(cfg, tmp_path / "run", stop_at=4, progress=False)
    logged = [r["train/loss"] for r in read_jsonl(files.metrics) if "train/loss" in r]
    data = load_dataset(cfg.dataset)
    step = hand_written_step(cfg, data, torch.device("cpu"))
    ours = [float(step(t)) for t in range(4)]
    assert len(logged) == 4
    assert ours == pytest.approx(logged, rel=1e-5)
    # The per-sample pipeline's batches feed the same step.
    loader = per_sample_loader(data.ssl_images(), cfg.augment, cfg.n_views,
                               batch_size=cfg.batch_size, batches=1, workers=0)
    fed = hand_written_step(cfg, data, torch.device("cpu"))
    assert math.isfinite(float(fed(0, next(iter(loader)))))


def test_scikit_learn_baselines_compute_our_probes():
    train_x, train_y, test_x, test_y = gaussian_features(600, 200, 32)
    assert knn_accuracy(train_x, train_y, test_x, test_y) == sklearn_knn(
        train_x, train_y, test_x, test_y, threads=1)
    assert ncc_accuracy(train_x, train_y, test_x, test_y) == sklearn_ncc(
        train_x, train_y, test_x, test_y)
    ours = linear_probe(train_x, train_y, test_x, test_y)
    theirs = sklearn_probe(train_x, train_y, test_x, test_y, (1e-4, 1e-3, 1e-2, 1e-1))
    assert abs(ours.test_acc - theirs["test_acc"]) <= 0.01
    one = sklearn_probe(train_x, train_y, test_x, test_y, (ours.weight_decay,),
                        val_fraction=0)
    assert abs(ours.test_acc - one["test_acc"]) <= 0.01


def test_gpu_section_counts_the_flops_of_performance_md():
    # performance.md §3 measured 3.329 GFLOP forward + backward per 32×32 view for the CIFAR
    # ResNet-18 (FlopCounterMode); with z = h the encoder is the backbone alone.
    from sslscope.bench.gpu import flops_per_view, spec_peak

    cfg = config_lib.replace(config_lib.Config(), backbone="resnet18", projector_dims=())
    assert flops_per_view(cfg, torch.device("cpu"), batch=2) == pytest.approx(3.329e9, rel=2e-3)
    assert spec_peak("NVIDIA H200") == spec_peak("NVIDIA H100 80GB HBM3 SXM") == 989e12
    assert spec_peak("NVIDIA A100-SXM4-80GB") == 312e12 and spec_peak("Quadro P1000") is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_section_measures_on_cuda(tmp_path):
    from sslscope.bench.gpu import run

    section = run(Settings(quick=True, repeats=1, threads=1, workers=0, scratch=tmp_path))
    rows = section.tables[0].rows
    assert len(rows) == 2 and all(row[4] > 0 and 0 < row[7] < 1.5 for row in rows)


def test_a_partial_rerun_keeps_the_other_sections(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--out", str(out), "--quick", "--threads", "1",
                 "--sections", "augmentation,evaluation"]) == 0
    first = json.loads((out / "bench.json").read_text())
    assert main(["bench", "--out", str(out), "--quick", "--threads", "1",
                 "--sections", "evaluation"]) == 0
    md, data = (out / "bench.md").read_text(), json.loads((out / "bench.json").read_text())
    assert [s["key"] for s in data["sections"]] == ["augmentation", "evaluation"]
    kept = data["sections"][0]
    assert kept["run"] == first["sections"][0]["run"] and kept["tables"] == first[
        "sections"][0]["tables"]
    assert data["sections"][1]["run"]["date"] == data["header"]["date"]
    assert md.count("_Not rerun: carried over") == 1 and "## 1. " in md and "## 4. " in md
    assert main(["bench", "--out", str(out), "--quick", "--threads", "1",
                 "--sections", "evaluation"]) == 0  # carried twice: still one line, same run
    again = (out / "bench.md").read_text()
    assert again.count("_Not rerun: carried over") == 1
    assert json.loads((out / "bench.json").read_text())["sections"][0]["run"] == kept["run"]
