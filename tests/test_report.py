"""The run report from a synthetic run directory: content, escaping, self-containment."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sslscope.errors import UserError
from sslscope.evaluate.suite import PROBES
from sslscope.report import SECTIONS, RunRecord, Section, build_report

# The module, not its names: pytest would collect a function called test_acc as a test.
from sslscope.report import page as report_page
from sslscope.report.figures import probe_name, probe_sort_key

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
TITLES = ["Summary", "Loss and its terms", "Probe accuracy over training", "Configuration"]

CONFIG = {
    "method": "vicreg",
    "loss_kwargs": {"inv_weight": 25.0, "var_weight": 25.0, "cov_weight": 1.0},
    "dataset": "digits",
    "backbone": "small_cnn",
    "steps": 1500,
    "lr": 0.002,
    "note": "<script>alert(1)</script>",  # must come out escaped
    "views": [2, 0.5],
}
EVALUATION = {
    "final_step": 1500,
    "rows": [
        {"name": "raw pixels", "features": "pixels", "step": None,
         "linear": {"test_acc": 0.9728, "train_acc": 1.0, "val_acc": 0.96, "weight_decay": 1e-3},
         "knn": {"test_acc": 0.9812}},
        {"name": "random init, backbone h", "features": "h", "step": 0,
         "linear": {"test_acc": 0.9012}, "knn": {"test_acc": 0.8543}},
        {"name": "trained, backbone h", "features": "h", "step": 1500,
         "linear": {"test_acc": 0.9876}, "knn": {"test_acc": None}},
        {"name": "trained, projector z", "features": "z", "step": 1500,
         "knn": {"test_acc": 0.9601}},  # no "linear" entry
    ],
}
RUN_INFO = {
    "sslscope_version": "0.1.0", "torch": "2.13.0+cpu", "device": "cpu", "git_sha": "abc1234",
    "started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:02:05",
    "wall_seconds": 125.0, "status": "finished",
}


def _train_row(step: int) -> dict:
    inv, var, cov = 25.0 / (1 + step), 10.0 * np.exp(-step / 300), 0.5
    return {
        "step": step, "epoch": step / 100, "time": 0.05 * step,
        "train/loss": inv + var + cov, "train/lr": 0.002 * min(1.0, step / 100),
        "train/loss/invariance": inv, "train/loss/variance": var, "train/loss/covariance": cov,
    }


def _eval_row(step: int) -> dict:
    acc = 0.85 + 0.13 * (1 - np.exp(-step / 200))
    return {
        "step": step, "time": 0.05 * step,
        "eval/h/linear/test_acc": acc, "eval/h/knn/test_acc": acc - 0.02,
        "eval/z/linear/test_acc": acc - 0.05, "eval/z/knn/test_acc": acc - 0.04,
        "eval/h/linear/weight_decay": 1e-3,
    }


def _write_run(run_dir: Path, *, partial_last_line: bool = False) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(CONFIG))
    rows = [_train_row(s) for s in range(0, 1501, 50)]
    rows[3]["train/loss/variance"] = None  # non-finite values arrive as null
    rows[4]["spectrum/z/eff_rank"] = 12.5  # a key this report does not know
    evals = [_eval_row(s) for s in (0, 1, 3, 10, 31, 100, 316, 1000, 1500)]
    evals[2]["eval/z/knn/test_acc"] = None
    evals[3]["eval/h/ncc/test_acc"] = 0.9  # a probe this report has no name for
    lines = [json.dumps(r) for r in rows + evals]
    text = "\n".join(lines) + "\n"
    if partial_last_line:
        text += '{"step": 1550, "train/lo'  # a crash mid-append
    (run_dir / "metrics.jsonl").write_text(text)
    (run_dir / "evaluation.json").write_text(json.dumps(EVALUATION))
    (run_dir / "run.json").write_text(json.dumps(RUN_INFO))
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    run_dir = _write_run(tmp_path_factory.mktemp("run") / "vicreg_digits")
    path = build_report(run_dir)
    return run_dir, path.read_text(encoding="utf-8")


def test_report_written_with_every_section(built):
    run_dir, page = built
    assert (run_dir / "report.html").is_file()
    for title in TITLES:
        assert f"<h2>{title}</h2>" in page
    for anchor in ("summary", "loss", "probes", "config"):
        assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page
    assert page.index("<h2>Summary</h2>") < page.index("<h2>Configuration</h2>")


def test_images_are_embedded_pngs_and_page_is_self_contained(built):
    _, page = built
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) == 2  # loss and probes
    payloads = DATA_URI.findall(page)
    assert len(payloads) == len(images)
    for payload in payloads:
        assert base64.b64decode(payload, validate=True).startswith(PNG_SIGNATURE)
    # base64 can spell "http" by chance, so look at the page without the image payloads
    text = DATA_URI.sub("<img", page)
    assert "http" not in text.lower()
    assert "<script" not in text.lower() and "<link" not in text.lower()


def test_strings_from_the_run_are_escaped(built):
    _, page = built
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_summary_table_shows_percentages_and_best_per_column(built):
    _, page = built
    summary = page[page.index('id="summary"') : page.index('id="loss"')]
    for name in ("vicreg", "digits", "small_cnn", "1500", "2 min 5 s", "finished"):
        assert name in summary
    for pct in ("97.3", "98.1", "90.1", "85.4", "98.8", "96.0"):
        assert f">{pct}</td>" in summary
    assert "<td class=\"num\">—</td>" in summary  # null kNN and missing linear entry
    best = re.findall(r'<td class="num best">([^<]+)</td>', summary)
    assert best == ["98.1", "98.8"]  # kNN: raw pixels; linear: trained h
    assert "+8.6 points (linear probe)" in summary  # trained h vs random init h
    assert "+1.5 points (linear probe)" in summary  # trained h vs raw pixels


def test_config_section_lists_config_environment_and_rerun_command(built):
    run_dir, page = built
    config = page[page.index('id="config"') :]
    assert "inv_weight=25.0, var_weight=25.0, cov_weight=1.0" in config
    assert "[2, 0.5]" in config and "0.002" in config
    assert "2.13.0+cpu" in config and "abc1234" in config
    assert f"sslscope train --config {run_dir / 'config.json'}" in config


def test_figures_saved_as_png_and_svg_without_temp_files(built):
    run_dir, _ = built
    for stem in ("loss", "probes"):
        assert (run_dir / "figures" / f"{stem}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert b"<svg" in (run_dir / "figures" / f"{stem}.svg").read_bytes()
    leftovers = [p for p in run_dir.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_config_only_run_still_gets_a_report(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"method": "simclr"}))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "<h2>Summary</h2>" in page and "<h2>Configuration</h2>" in page
    assert "<h2>Loss and its terms</h2>" not in page and "<img" not in page
    assert "No final evaluation (run interrupted or still running)" in page
    assert "unknown (no run.json)" in page


def test_empty_metrics_and_empty_rows_omit_figure_sections(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "metrics.jsonl").write_text("")
    (tmp_path / "evaluation.json").write_text(json.dumps({"final_step": 3, "rows": []}))
    record = RunRecord.load(tmp_path)
    # summary and config always show; the figure sections (loss, probes, the three instrument
    # sections, clustering, spectrum, map, neighbours) have nothing to draw
    assert [s(record) is None for s in SECTIONS] == [False, *[True] * 9, False]
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "evaluation.json holds no rows" in page


def test_missing_run_dir_or_config_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        RunRecord.load(tmp_path / "nope")
    with pytest.raises(UserError, match="config.json"):
        RunRecord.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_record_splits_rows_and_tolerates_partial_last_line(tmp_path):
    record = RunRecord.load(_write_run(tmp_path / "run", partial_last_line=True))
    assert len(record.train_rows) == 31 and len(record.eval_rows) == 9
    steps, var = record.series("train/loss/variance")
    assert steps[3] == 150 and np.isnan(var[3]) and np.isfinite(np.delete(var, 3)).all()
    steps, acc = record.series("eval/z/knn/test_acc", rows="eval")
    assert steps.tolist() == [0, 1, 3, 10, 31, 100, 316, 1000, 1500] and np.isnan(acc[2])
    steps, _ = record.series("spectrum/z/eff_rank")
    assert steps.tolist() == [200]
    assert record.series("no/such/key")[0].shape == (0,)
    with pytest.raises(ValueError):
        record.series("train/loss", rows="bogus")
    assert build_report(record.run_dir).is_file()


def test_a_new_section_is_one_function_appended(tmp_path):
    _write_run(tmp_path)

    def steps_section(record: RunRecord) -> Section:
        return Section("Step count", f"<p>{len(record.train_rows)} rows</p>", "steps")

    page = build_report(tmp_path, sections=[*SECTIONS, steps_section]).read_text()
    assert '<a href="#steps">Step count</a>' in page and "<p>31 rows</p>" in page


def test_interrupted_run_says_so(tmp_path):
    _write_run(tmp_path)
    (tmp_path / "evaluation.json").unlink()
    info = {**RUN_INFO, "status": "interrupted", "finished": None, "wall_seconds": None}
    (tmp_path / "run.json").write_text(json.dumps(info))
    rows = [_train_row(s) for s in range(0, 701, 50)] + [_eval_row(s) for s in (0, 10, 100)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    summary = page[page.index('id="summary"') : page.index('id="loss"')]
    assert "1500 (last logged: 700)" in summary and "interrupted" in summary
    assert "No final evaluation (run interrupted or still running)" in summary
    assert "<th>wall time</th><td>—</td>" in summary
    assert len(DATA_URI.findall(page)) == 2  # both figures, the probe one without baselines


def test_malformed_evaluation_rows_are_ignored(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "evaluation.json").write_text(json.dumps({"final_step": 3, "rows": 5}))
    assert RunRecord.load(tmp_path).evaluation_rows() == []
    assert "evaluation.json holds no rows" in build_report(tmp_path).read_text(encoding="utf-8")


def test_probe_names_and_order_come_from_the_evaluation_suite():
    assert [probe_name(p) for p in PROBES] == list(PROBES.values())
    assert probe_name("my_probe") == "my_probe"  # a probe the vocabulary does not know
    shuffled = ["zeta", "alpha", *reversed(list(PROBES))]
    assert sorted(shuffled, key=probe_sort_key) == [*PROBES, "alpha", "zeta"]


def test_page_helpers_render_json_values_as_plain_text():
    missing = report_page.MISSING
    assert report_page.text(None) == report_page.text(math.nan) == missing
    assert report_page.text("a<b") == "a<b" and report_page.text(True) == "true"
    value = {"a": [1, {"b": None}], "c": {}}
    assert report_page.config_value(value) == f"a=[1, b={missing}], c={{}}"
    table = report_page.kv_table([("<k>", "v")])
    assert table == "<table><tr><th>&lt;k&gt;</th><td>v</td></tr></table>"
    assert report_page.percent(0.91234) == "91.2" and report_page.percent(math.nan) == missing
    durations = [report_page.duration(s) for s in (5, 185, 7620, None, "1")]
    assert durations == ["5.0 s", "3 min 5 s", "2 h 7 min", missing, missing]
    assert report_page.test_acc({"knn": {"test_acc": 0.5}}, "knn") == 0.5
    assert math.isnan(report_page.test_acc({"knn": 0.5}, "knn"))
