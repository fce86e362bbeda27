"""The "Clustering over training" report section, from synthetic ``clus/`` keys."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from sslscope.report import SECTIONS, RunRecord, build_report, sections_clustering
from sslscope.report.sections_clustering import clustering_section

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CONFIG = {"method": "vicreg", "dataset": "digits", "backbone": "small_cnn", "steps": 1000}
STEPS = (0, 10, 100, 316, 1000)
LEVELS = ("sample", "class", "superclass", "random0", "random1")
RANDOMNESS = {"random0": 0.3, "random1": 1.0}
ALL_METRICS = ("ncc_train_acc", "ncc_test_acc", "linear_test_acc", "ncc_linear_ratio", "cdnv",
               "within_variance", "between_distance")
FIGURES = ["accuracy", "ncc_ratio", "cdnv", "layers", "mine", "loss_terms"]


def _clus(rep: str, level: str, step: int, metrics=ALL_METRICS) -> dict:
    """Plausible values that improve with training, worse for noisier labels and early taps."""
    t = np.log1p(step) / np.log1p(STEPS[-1])
    noise = RANDOMNESS.get(level, 0.0)
    depth = {"conv1": 0.5, "conv2": 0.8}.get(rep, 1.0)
    linear = depth * (0.3 + 0.6 * t) * (1 - 0.5 * noise)
    ncc = linear * (0.6 + 0.35 * t)
    within, between = 1.0 - 0.5 * t, 0.5 + 2 * t * (1 - noise)
    values = {"ncc_train_acc": ncc + 0.05, "ncc_test_acc": ncc, "linear_test_acc": linear,
              "ncc_linear_ratio": ncc / linear, "within_variance": within,
              "between_distance": between, "cdnv": within / between}
    return {f"clus/{rep}/{level}/{m}": values[m] for m in metrics}


def _write_run(run_dir: Path, *, taps=("conv1", "conv2"), levels=LEVELS, mine=True,
               loss_terms=True, clus=True) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(CONFIG))
    rows = []
    for step in range(0, 1001, 50):
        row = {"step": step, "train/loss": 10.0 / (1 + step)}
        if loss_terms:
            row |= {"train/loss/invariance": 5.0 / (1 + step), "train/loss/variance": 3.0,
                    "train/loss/covariance": 1.0 + 1.0 / (1 + step)}
        rows.append(row)
    for step in STEPS:
        row = {"step": step, "eval/h/linear/test_acc": 0.5 + 0.0004 * step}
        if clus:
            for level in levels:
                for rep in taps:  # taps first, in forward order, as the producer logs them
                    row |= _clus(rep, level, step, ("linear_test_acc", "ncc_test_acc"))
                row |= _clus("h", level, step)
            row |= {f"clus/randomness/{lvl}": r for lvl, r in RANDOMNESS.items() if lvl in levels}
            if mine:
                row |= {"clus/mine/mi": 1.0 + np.log1p(step), "clus/mine/mi_std": 0.2}
        rows.append(row)
    if clus:
        rows[-1]["clus/h/class/cdnv"] = None  # non-finite values arrive as null
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def _images(html: str) -> list[str]:
    payloads = DATA_URI.findall(html)
    assert len(payloads) == len(re.findall(r"<img\b", html))
    for payload in payloads:
        assert base64.b64decode(payload, validate=True).startswith(PNG_SIGNATURE)
    return payloads


def _section_html(page: str) -> str:
    match = re.search(r'<section id="clustering">(.*?)</section>', page, re.S)
    assert match, "no clustering section on the page"
    return match.group(1)


def test_full_run_gets_the_section_with_every_figure(tmp_path):
    run_dir = _write_run(tmp_path / "full")
    # Only this section, to stay fast; its place among the others is checked below.
    page = build_report(run_dir, sections=[clustering_section]).read_text(encoding="utf-8")
    assert '<a href="#clustering">Clustering over training</a>' in page
    assert len(_images(_section_html(page))) == len(FIGURES)
    for name in FIGURES:
        for ext in ("png", "svg"):
            assert (run_dir / "figures" / f"clustering_{name}.{ext}").is_file()


def test_run_without_clus_keys_has_no_section(tmp_path):
    run_dir = _write_run(tmp_path / "old", clus=False)
    assert clustering_section(RunRecord.load(run_dir)) is None
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert 'id="clustering"' not in page and "Clustering over training" not in page
    assert not list((run_dir / "figures").glob("clustering_*"))


def test_partial_data_renders(tmp_path):
    """Only the class level of h: no taps, no MINE, no loss terms, no random levels."""
    run_dir = _write_run(tmp_path / "partial", taps=(), levels=("class",), mine=False,
                         loss_terms=False)
    section = clustering_section(RunRecord.load(run_dir))
    assert section is not None and section.anchor == "clustering"
    assert len(_images(section.html)) == 3
    drawn = sorted(p.stem for p in (run_dir / "figures").glob("clustering_*.png"))
    assert drawn == ["clustering_accuracy", "clustering_cdnv", "clustering_ncc_ratio"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"taps": (), "levels": ("class",), "mine": False, "loss_terms": False},
     ["accuracy", "ncc_ratio", "cdnv"]),
    ({"taps": ("conv1",), "levels": ("class", "random0"), "mine": False},
     ["accuracy", "ncc_ratio", "cdnv", "layers", "loss_terms"]),
    ({"taps": ("conv1", "conv2"), "levels": ("random0",), "loss_terms": False},
     ["cdnv", "layers", "mine"]),
    ({"taps": (), "levels": ("sample", "superclass"), "mine": True, "loss_terms": False},
     ["accuracy", "ncc_ratio", "mine"]),
])
def test_each_figure_is_drawn_only_from_its_keys(tmp_path, monkeypatch, kwargs, expected):
    """Which figures a layout gets; the figures are built but not rendered, to stay fast."""
    drawn = []

    def embed(fig, fig_dir, name, alt):
        assert fig.axes, name
        drawn.append(name.removeprefix("clustering_"))
        return "<img>"

    monkeypatch.setattr(sections_clustering, "embed_figure", embed)
    section = clustering_section(RunRecord.load(_write_run(tmp_path / "run", **kwargs)))
    assert section is not None and drawn == expected


def test_section_is_registered_after_the_instrument_sections():
    names = [fn.__name__ for fn in SECTIONS]
    assert names.index("clustering_section") == names.index("capacity_section") + 1
