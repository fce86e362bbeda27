"""Report sections from the final embeddings, spectrum instruments, and `sslscope compare`."""

from __future__ import annotations

import base64
import json
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sslscope.cli import main
from sslscope.data import load_digits
from sslscope.errors import UserError
from sslscope.instruments import effective_rank, eigenvalues, rankme
from sslscope.report import SECTIONS, RunRecord, build_report, sections_embeddings
from sslscope.report.sections_embeddings import (
    embedding_map_section,
    nearest_neighbours,
    neighbours_section,
    pca,
    spectrum_section,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
NEW_TITLES = ["Spectrum of the final embeddings", "2-D maps of the embeddings",
              "Nearest neighbours per class"]
NEW_STEMS = ["spectrum", "embedding_map", "neighbours"]
CONFIG = {"method": "vicreg", "dataset": "digits", "backbone": "small_cnn", "steps": 300,
          "lr": 0.002, "seed": 0}
ARRAYS = Path("arrays") / "final_embeddings.safetensors"
N_TRAIN_SAVED = 600  # a prefix of the 1,347 training images, as save_final_embeddings may keep


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _embeddings(digits, seed: int = 0) -> dict[str, torch.Tensor]:
    """h: class centre (a scaled one-hot in 32 dims) plus noise, so neighbours share classes."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(32, 16, generator=gen)

    def embed(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = 8.0 * torch.nn.functional.one_hot(y, 32).float()
        h = h + torch.randn(h.shape, generator=gen)  # (N, 32)
        return h, h @ mix  # z: (N, 16), a linear map of h

    index = torch.arange(N_TRAIN_SAVED)
    train_h, train_z = embed(digits.train_y[index])
    test_h, test_z = embed(digits.test_y)
    return {"train/index": index, "train/y": digits.train_y[index], "train/h": train_h,
            "train/z": train_z, "test/y": digits.test_y, "test/h": test_h, "test/z": test_z}


def _write_run(run_dir: Path, digits, *, seed: int = 0, arrays: bool = True, **config) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({**CONFIG, "seed": seed, **config}))
    rows = [{"step": s, "train/loss": 10.0 / (1 + s) + seed} for s in range(0, 301, 20)]
    rows += [{"step": s, "eval/h/linear/test_acc": 0.8 + 0.05 * math.log1p(s) / 6 + 0.01 * seed}
             for s in (0, 3, 30, 300)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    evaluation = {"final_step": 300, "rows": [
        {"name": "random init, backbone h", "features": "h", "step": 0,
         "linear": {"test_acc": 0.5}},
        {"name": "trained, backbone h", "features": "h", "step": 300,
         "linear": {"test_acc": 0.90 + 0.02 * seed}, "knn": {"test_acc": 0.88}},
        {"name": "trained, projector z", "features": "z", "step": 300,
         "linear": {"test_acc": 0.80}, "knn": {"test_acc": 0.70 + 0.04 * seed}},
    ]}
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation))
    (run_dir / "run.json").write_text(json.dumps({"wall_seconds": 60.0 + seed, "status": "done"}))
    if arrays:
        (run_dir / "arrays").mkdir(exist_ok=True)
        save_file(_embeddings(digits, seed), str(run_dir / ARRAYS))
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory, digits) -> tuple[Path, str]:
    """The report as it is without umap-learn, whether or not it is installed here."""
    run_dir = _write_run(tmp_path_factory.mktemp("run") / "vicreg-digits", digits)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sections_embeddings, "_import_umap", lambda: None)
        return run_dir, build_report(run_dir).read_text(encoding="utf-8")


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


# --- the report sections ----------------------------------------------------------------------


def test_new_sections_have_titles_pngs_and_figure_files(built):
    run_dir, page = built
    for title in NEW_TITLES:
        assert f"<h2>{title}</h2>" in page
    assert page.index("Probe accuracy over training") < page.index(NEW_TITLES[0])
    assert page.index(NEW_TITLES[-1]) < page.index("<h2>Configuration</h2>")
    payloads = DATA_URI.findall(page)
    assert len(payloads) == 5  # probes, loss + the three new figures
    for payload in payloads:
        assert base64.b64decode(payload, validate=True).startswith(PNG_SIGNATURE)
    for stem in NEW_STEMS:
        assert (run_dir / "figures" / f"{stem}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert b"<svg" in (run_dir / "figures" / f"{stem}.svg").read_bytes()
    assert "http" not in DATA_URI.sub("<img", page).lower()


def test_spectrum_caption_gives_effective_rank_and_rankme_for_h_and_z(built):
    _, page = built
    text = _section(page, "spectrum")
    assert "h (D = 32): effective rank" in text and "z (D = 16): effective rank" in text
    assert text.count("RankMe") >= 3 and "ε = 1e-07" in text
    erank_h = float(re.search(r"h \(D = 32\): effective rank ([\d.]+)", text).group(1))
    assert 9.0 < erank_h < 32.0  # 10 class directions dominate, plus isotropic noise


def test_map_caption_says_pca_variance_and_how_to_get_umap(built):
    _, page = built
    text = _section(page, "embedding-map")
    assert "numpy SVD of the centred float64 embeddings" in text
    assert re.search(r"explain [\d.]+ % \(h\) and [\d.]+ % \(z\)", text)
    assert "pip install umap-learn" in text and "integer labels" not in text


def test_neighbour_grid_mostly_matches_on_clustered_h(built):
    _, page = built
    text = _section(page, "neighbours")
    matches = int(re.search(r"(\d+) of 80 neighbours", text).group(1))
    assert matches >= 78  # centres 8·√2 apart, unit noise: nearly every neighbour agrees
    assert "among the 600 training images" in text


def test_missing_arrays_leave_the_sections_out(tmp_path, digits):
    run_dir = _write_run(tmp_path / "run", digits, arrays=False)
    record = RunRecord.load(run_dir)
    assert record.embeddings is None
    for section in (spectrum_section, embedding_map_section, neighbours_section):
        assert section(record) is None
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert "<h2>Summary</h2>" in page and "<h2>Configuration</h2>" in page
    assert not any(f"<h2>{title}</h2>" in page for title in NEW_TITLES)
    assert len(SECTIONS) == 11


def test_unloadable_dataset_gives_one_sentence_and_integer_labels(tmp_path, digits):
    run_dir = _write_run(tmp_path / "run", digits, dataset="nosuch")
    record = RunRecord.load(run_dir)
    body = neighbours_section(record).html
    assert body.count("<p") == 1 and body.startswith('<p class="note">No neighbour grid: the')
    assert "unknown dataset" in body and "<img" not in body
    assert "integer labels" in embedding_map_section(record).html


def test_labels_that_do_not_match_the_dataset_are_reported(tmp_path, digits):
    run_dir = _write_run(tmp_path / "run", digits)
    arrays = _embeddings(digits)
    arrays["test/y"] = (arrays["test/y"] + 1) % 10
    save_file(arrays, str(run_dir / ARRAYS))
    body = neighbours_section(RunRecord.load(run_dir)).html
    assert "does not match the saved embeddings" in body and "<img" not in body


def test_corrupt_arrays_file_is_a_user_error(tmp_path, digits):
    run_dir = _write_run(tmp_path / "run", digits)
    (run_dir / ARRAYS).write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        build_report(run_dir)
    assert not (run_dir / "report.html").exists()


@pytest.mark.parametrize("fails", [False, True])
def test_umap_panels_when_umap_imports(tmp_path, digits, monkeypatch, fails):
    class FakeUMAP:  # stands in for umap-learn, which is optional and not installed here
        def __init__(self, n_components, random_state, n_jobs):
            assert (n_components, random_state) == (2, 0)

        def fit_transform(self, x):
            assert x.shape[1] == min(50, x.shape[1]) and x.dtype == np.float64
            if fails:
                raise RuntimeError("boom")
            return x[:, :2] * 2

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    run_dir = _write_run(tmp_path / "run", digits)
    body = embedding_map_section(RunRecord.load(run_dir)).html
    assert ("UMAP failed (RuntimeError: boom)" in body) == fails
    assert ("Bottom row: UMAP" in body) != fails


def test_real_umap_maps_keep_the_classes_apart(tmp_path, digits):
    pytest.importorskip("umap", reason="umap-learn is not installed (optional)")
    arrays = _embeddings(digits)
    panels: list[tuple[str, np.ndarray]] = []
    caption = sections_embeddings._add_umap_panels(panels, arrays)
    assert caption.startswith("Bottom row: UMAP") and [t for t, _ in panels] == [
        "UMAP of h", "UMAP of z"]
    y = arrays["test/y"].numpy()
    for _, xy in panels:
        assert xy.shape == (len(y), 2) and np.isfinite(xy).all()
        # Ten well-separated clusters in h stay separated in 2-D: 1-NN (leave-one-out) on the map.
        d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        assert (y[d.argmin(1)] == y).mean() > 0.95


def test_pca_and_nearest_neighbours_helpers():
    x = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) + 5.0
    scores, ratio = pca(x, 2)
    np.testing.assert_allclose(ratio, [0.8, 0.2])
    np.testing.assert_allclose(np.abs(scores), np.abs(x - 5.0), atol=1e-12)
    assert pca(x[:, :1], 2)[0].shape == (4, 2)  # padded with a zero column
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.1], [0.7, 0.7]])
    idx = nearest_neighbours(torch.tensor([[10.0, 0.5]]), keys, 3)
    assert idx.tolist() == [[0, 3, 1]]


# --- spectrum instruments: hand cases ---------------------------------------------------------


def test_eigenvalues_of_a_known_diagonal_covariance():
    # Centred, mutually orthogonal ±1 columns (each squared norm 4), scaled by a: with N − 1 = 3,
    # the covariance is diag(4a²/3); a constant offset checks the centring.
    signs = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    a = torch.tensor([3.0, 1.0, 2.0])
    eigvals = eigenvalues((signs * a + 7.0).float())
    assert eigvals.dtype == torch.float64
    torch.testing.assert_close(eigvals, torch.tensor([12.0, 16 / 3, 4 / 3], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        eigenvalues(torch.zeros(1, 3))


def test_effective_rank_isotropic_rank_one_and_hand_values():
    gen = torch.Generator().manual_seed(0)
    n, d = 200, 12
    raw = torch.randn(n, d, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(raw - raw.mean(0))  # (N, D) centred orthonormal columns
    assert effective_rank(eigenvalues(q * math.sqrt(n - 1))) == pytest.approx(d, rel=1e-9)
    rank_one = torch.randn(n, 1, generator=gen) @ torch.randn(1, d, generator=gen) + 3.0
    assert effective_rank(eigenvalues(rank_one)) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    p = np.array([0.75, 0.25])
    assert effective_rank(torch.tensor([3.0, 1.0])) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert effective_rank(torch.tensor([-1e-18, 2.0])) == pytest.approx(1.0)
    assert math.isnan(effective_rank(torch.zeros(3)))


def test_rankme_of_k_equal_singular_values_is_k():
    gen = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(40, 5, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(8, 5, generator=gen, dtype=torch.float64))
    x = u @ torch.diag(torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0], dtype=torch.float64)) @ v.T
    eps = 1e-7  # the paper's formula, ε added after normalisation, not renormalised
    p = np.array([1 / 3 + eps] * 3 + [eps] * 5)  # min(N, D) = 8 singular values
    assert rankme(x) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert rankme(x) == pytest.approx(3.0, rel=1e-4)
    assert rankme(5.0 * x.float()) == pytest.approx(rankme(x), rel=1e-5)  # scale-free
    assert rankme(torch.eye(6)) == pytest.approx(6.0, rel=1e-5)


# --- sslscope compare -------------------------------------------------------------------------


def test_compare_two_seeds_and_another_config(tmp_path, digits, capsys):
    a = _write_run(tmp_path / "vicreg-s0", digits, seed=0, arrays=False)
    b = _write_run(tmp_path / "vicreg-s1", digits, seed=1, arrays=False)
    c = _write_run(tmp_path / "vicreg-lr", digits, seed=0, arrays=False, lr=0.01)
    out = tmp_path / "cmp" / "page.html"
    assert main(["compare", str(a), str(b), str(c), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    for name in ("vicreg-s0", "vicreg-s1", "vicreg-lr"):
        assert name in page
    seeds = _section(page, "seeds")
    assert "vicreg-s0, vicreg-s1" in seeds and "0, 1 (n = 2)" in seeds and "vicreg-lr" not in seeds
    assert "91.0 ± 1.4" in seeds  # h linear: 90 and 92
    assert "72.0 ± 2.8" in seeds  # z kNN: 70 and 74
    runs = _section(page, "runs")
    assert ">90.0</td>" in runs and ">92.0</td>" in runs and "1 min 1 s" in runs
    assert "<th>lr</th>" in _section(page, "config")
    payloads = DATA_URI.findall(page)
    assert len(payloads) == 2
    for stem in ("page_probes", "page_loss"):
        assert (out.parent / "figures" / f"{stem}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert b"<svg" in (out.parent / "figures" / f"{stem}.svg").read_bytes()
    assert "http" not in DATA_URI.sub("<img", page).lower()


def test_compare_says_when_a_seed_is_repeated(tmp_path, digits, capsys):
    a = _write_run(tmp_path / "again-a", digits, seed=0, arrays=False)
    b = _write_run(tmp_path / "again-b", digits, seed=0, arrays=False)
    out = tmp_path / "cmp" / "page.html"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    seeds = _section(out.read_text(encoding="utf-8"), "seeds")
    assert "0, 0 (a seed repeated: the spread is run-to-run noise, not across seeds) (n = 2)" \
        in seeds


def test_compare_figures_have_one_entry_per_seed_group(tmp_path, digits):
    from sslscope.report import compare

    dirs = [_write_run(tmp_path / "vicreg-s0", digits, seed=0, arrays=False),
            _write_run(tmp_path / "vicreg-s1", digits, seed=1, arrays=False),
            _write_run(tmp_path / "vicreg-lr", digits, seed=0, arrays=False, lr=0.01),
            _write_run(tmp_path / "byol-s0", digits, seed=0, arrays=False, method="byol")]
    records = [RunRecord.load(d) for d in dirs]
    names = [d.name for d in dirs]
    groups = compare._groups(records)
    labels = compare._group_labels(records, names, groups)
    # vicreg appears in two groups, so those are named by their first run; byol is unique.
    assert groups == [[0, 1], [2], [3]] and labels == ["vicreg-s0 (2 runs)", "vicreg-lr", "byol"]
    ax = compare._probe_figure(records, names, groups).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert len(ax.lines) == 4 and ax.get_xscale() == "log"
    loss_axes = compare._loss_figure(records, names, groups).axes
    assert [a.get_title() for a in loss_axes[:3]] == labels
    # One run, one look across the figures: the same colour and line style in both.
    look = {(line.get_color(), line.get_linestyle()) for line in ax.lines}
    assert [(line.get_color(), line.get_linestyle()) for line in ax.lines] == [
        (line.get_color(), line.get_linestyle()) for a in loss_axes[:3] for line in a.lines]
    assert len(look) == 4  # and four runs look four ways

    for d in dirs:  # keep only each run's last evaluation: a study that evaluates at the end
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "train/loss" in r or r["step"] == 300]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = [RunRecord.load(d) for d in dirs]
    ax = compare._probe_figure(records, names, groups).axes[0]
    assert ax.get_xscale() == "linear" and [t.get_text() for t in ax.get_xticklabels()] == labels
    dots = [line.get_ydata() for line in ax.lines]  # one marker series per group, in %
    final = 100 * (0.8 + 0.05 * math.log1p(300) / 6)
    assert len(dots) == 3
    np.testing.assert_allclose(dots[0], [final, final + 1])


def test_compare_without_seed_groups_says_so(tmp_path, digits, capsys):
    a = _write_run(tmp_path / "a", digits, arrays=False)
    b = _write_run(tmp_path / "b", digits, arrays=False, method="simclr")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.html")]) == 0
    assert "No two runs differ only by their seed" in (tmp_path / "c.html").read_text()


def test_compare_missing_run_dir_is_one_sentence_and_exit_2(tmp_path, digits, capsys):
    a = _write_run(tmp_path / "a", digits, arrays=False)
    code = main(["compare", str(a), str(tmp_path / "nope"), "--out", str(tmp_path / "c.html")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sslscope: error: ")
    assert "does not exist" in lines[0]
    assert not (tmp_path / "c.html").exists()


def test_rgb_images_and_many_classes(tmp_path, monkeypatch):
    """30 classes of 3-channel images: colour bar instead of a legend, RGB neighbour tiles."""
    from sslscope.data import DATASETS, ImageData

    gen = torch.Generator().manual_seed(0)
    train_y, test_y = torch.arange(90) % 30, torch.arange(60) % 30
    data = ImageData(
        name="rgb30", class_names=[f"class_{c}" for c in range(30)],
        train_x=torch.randint(0, 256, (90, 3, 4, 4), generator=gen, dtype=torch.uint8),
        test_x=torch.randint(0, 256, (60, 3, 4, 4), generator=gen, dtype=torch.uint8),
        train_y=train_y, test_y=test_y,
    )
    monkeypatch.setitem(DATASETS, "rgb30", lambda root: data)
    run_dir = tmp_path / "run"
    (run_dir / "arrays").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({**CONFIG, "dataset": "rgb30"}))
    centres = torch.randn(30, 8, generator=gen)
    arrays = {"train/index": torch.arange(90), "train/y": train_y, "test/y": test_y,
              "train/h": centres[train_y], "test/h": centres[test_y],
              "train/z": centres[train_y, :4], "test/z": centres[test_y, :4]}
    save_file(arrays, str(run_dir / ARRAYS))
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert "30 of 80 neighbours" in _section(page, "neighbours")  # 3 images per class, k = 8
    assert (run_dir / "figures" / "embedding_map.png").is_file()


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
def test_singular_values_from_the_gram_match_svdvals(shape):
    from sslscope.instruments.spectrum import singular_values

    gen = torch.Generator().manual_seed(3)
    # Ill-conditioned on purpose: singular values spread over eight decades.
    u, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=gen, dtype=torch.float64))
    sigma = torch.logspace(0, -8, min(shape), dtype=torch.float64)
    x = u @ torch.diag(sigma) @ v.T
    s = singular_values(x.float())
    reference = torch.linalg.svdvals(x.float().double())
    assert s.shape == reference.shape and bool((s[:-1] >= s[1:]).all())
    # Below √(max(N, D) ε₆₄) σ_max ≈ 2.6e-7 a value reads as 0: that is the absolute accuracy.
    torch.testing.assert_close(s, reference, rtol=0, atol=3e-7)
    # The values read as 0 (σ < 2.6e-7 here) move each p_k by ~1e-7, the entropy by
    # ~|log ε| times that: RankMe agrees with the SVD's to ~1e-5 on this extreme spectrum.
    svd_rankme = reference / reference.sum() + 1e-7
    assert rankme(x) == pytest.approx(float(torch.exp(-(svd_rankme * svd_rankme.log()).sum())),
                                      rel=1e-5)


def test_map_limits_ignore_a_few_outliers():
    from sslscope.report.sections_embeddings import robust_limits

    values = np.concatenate([np.random.default_rng(0).uniform(-1, 1, 446), [500, 600, -700, 800]])
    low, high = robust_limits(values)
    assert -1.2 < low < -0.9 and 0.9 < high < 1.2  # the 446 points fill the frame, not a corner
    assert robust_limits(np.zeros(10)) == (-1.0, 1.0)  # all equal: a unit frame around them
