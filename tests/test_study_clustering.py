"""The clustering study: its claims' tests on hand-made runs with known answers, and the study."""

from __future__ import annotations

import json

import pytest

from sslscope import config as config_lib
from sslscope.runs import RunFiles
from sslscope.studies.clustering_claims import CLAIMS, claims_and_results

STEPS = [0, 10, 50, 100]  # "early" (10 % of 100 steps) is step 10, "late" from step 50

# The paper's pattern, written so that every finding's test holds.
PAPER = {
    "sample/ncc_train_acc": [0.30, 0.95, 0.98, 0.99],
    "class/ncc_train_acc": [0.30, 0.40, 0.45, 0.50],
    "sample/ncc_linear_ratio": [0.50, 0.92, 0.95, 0.96],
    "class/ncc_linear_ratio": [0.50, 0.60, 0.70, 0.75],
    "class/ncc_test_acc": [0.30, 0.40, 0.45, 0.48],
    "random0/ncc_test_acc": [0.10, 0.11, 0.11, 0.12],
    "class/cdnv": [2.0, 1.5, 1.0, 0.8],
    "random0/cdnv": [3.0, 2.9, 2.9, 2.8],
    "class/between_distance": [1.0, 2.0, 3.0, 4.0],
    "random0/between_distance": [1.0, 1.0, 1.1, 1.1],
    "class/within_variance": [1.0, 1.1, 1.1, 1.1],
    "random0/within_variance": [1.0, 1.1, 1.1, 1.15],
    "mine": [1.0, 2.0, 1.5, 1.2],
}
# Linear accuracy (first, last) per representation and level: deeper is better, the classes
# gain most, the most random target barely; conv2 beats h on the classes; the superclass/class
# ratio grows with depth.
LINEAR = {
    ("conv1", "class"): (0.20, 0.40), ("conv2", "class"): (0.30, 0.62),
    ("h", "class"): (0.30, 0.60),
    ("conv1", "superclass"): (0.30, 0.45), ("conv2", "superclass"): (0.40, 0.75),
    ("h", "superclass"): (0.40, 0.78),
    ("conv1", "random0"): (0.10, 0.10), ("conv2", "random0"): (0.10, 0.11),
    ("h", "random0"): (0.10, 0.12),
    ("conv1", "random1"): (0.20, 0.25), ("conv2", "random1"): (0.20, 0.35),
    ("h", "random1"): (0.20, 0.40),
}
SUPERVISED = {"plain": {"ncc_train_acc": 1.0, "ncc_test_acc": 0.45},
              "augmented": {"ncc_train_acc": 0.9, "ncc_test_acc": 0.47}}


def write_run(path, changes=None):
    """A run directory holding only what the claims read: config, metrics rows."""
    values = {**PAPER, **(changes or {})}
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config_lib.to_dict(
        config_lib.replace(config_lib.Config(), steps=100, mine_seeds=5))))
    rows = []
    for i, step in enumerate(STEPS):
        row = {"step": step, "eval/h/knn/test_acc": 0.5,
               "clus/randomness/random0": 0.95, "clus/randomness/random1": 0.5}
        for key, series in values.items():
            if key == "mine":
                row["clus/mine/mi"], row["clus/mine/mi_std"] = series[i], 0.1
            else:
                row[f"clus/h/{key}"] = series[i]
        for (rep, level), (first, last) in LINEAR.items():
            row[f"clus/{rep}/{level}/linear_test_acc"] = first + (last - first) * step / 100
        rows.append(row)
    for step, inv, var, cov in ((10, 1.0, 10.0, 5.0), (20, 1.0, 8.0, 4.0), (30, 1.0, 6.0, 3.0),
                                (80, 0.99, 2.5, 1.2), (90, 0.98, 2.2, 1.1),
                                (100, 0.98, 2.0, 1.0)):
        rows.append({"step": step, "train/loss/invariance": inv, "train/loss/variance": var,
                     "train/loss/covariance": cov})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return RunFiles(path)


def without_keys(files, drop):
    """Rewrite a run's metrics without the keys ``drop(key)`` is true for."""
    rows = [json.loads(line) for line in files.metrics.read_text().splitlines()]
    files.metrics.write_text("".join(
        json.dumps({k: v for k, v in r.items() if not drop(k)}) + "\n" for r in rows))


def verdicts(tmp_path, name="run", changes=None, supervised=SUPERVISED):
    runs = {"vicreg-seed0": write_run(tmp_path / name, changes)}
    claims, _ = claims_and_results(runs, {0: supervised}, method="vicreg", seeds=[0])
    return {c.id: c.verdict for c in claims}


def test_the_papers_pattern_agrees_with_every_finding(tmp_path):
    got = verdicts(tmp_path)
    assert list(got) == list(CLAIMS)
    assert got == dict.fromkeys(CLAIMS, "agrees")


@pytest.mark.parametrize("changes, supervised, differs", [
    ({"sample/ncc_train_acc": [0.3, 0.5, 0.7, 0.9]}, SUPERVISED, {"1", "2", "3"}),
    ({"mine": [1.0, 1.2, 1.4, 1.6]}, SUPERVISED, {"4"}),
    ({"class/between_distance": [1.0, 1.0, 1.0, 1.0]}, SUPERVISED, {"8b"}),
    ({}, {"plain": {"ncc_train_acc": 0.95, "ncc_test_acc": 0.5},
          "augmented": {"ncc_train_acc": 0.97, "ncc_test_acc": 0.4}}, {"6a", "6b", "6c"}),
])
def test_a_run_against_a_finding_differs_on_exactly_that_finding(tmp_path, changes, supervised,
                                                                  differs):
    if "sample/ncc_train_acc" in changes:  # the ratio too: sample clustering arrives late
        changes["sample/ncc_linear_ratio"] = [0.5, 0.6, 0.8, 0.95]
    got = verdicts(tmp_path, changes=changes, supervised=supervised)
    assert {cid for cid, v in got.items() if v == "differs"} == differs
    assert {cid for cid, v in got.items() if v == "inconclusive"} == set()


def test_findings_that_cannot_be_measured_are_inconclusive(tmp_path):
    runs = {"vicreg-seed0": write_run(tmp_path / "run")}
    without_keys(runs["vicreg-seed0"], lambda k: k.startswith(("clus/mine", "train/loss")))
    claims, _ = claims_and_results(runs, {0: SUPERVISED}, method="vicreg", seeds=[0])
    got = {c.id: (c.verdict, c.detail) for c in claims}
    assert got["4"] == ("inconclusive", "MINE was off")
    assert got["5"][0] == "inconclusive" and "not measurable" in got["5"][1]


@pytest.mark.slow
def test_clustering_study_writes_its_claims_and_report_and_skips_on_rerun(tmp_path,
                                                                          monkeypatch):
    """The whole study at a tiny size (its numbers are the study's own business)."""
    from sslscope import anatomy
    from sslscope.studies import clustering

    real = clustering.ssl_config
    monkeypatch.setattr(clustering, "ssl_config", lambda *a, **kw: config_lib.replace(
        real(*a, **kw), steps=20, warmup_steps=2, batch_size=64, eval_points=3,
        projector_dims=(32,), sample_images=10, sample_train_views=3, sample_test_views=2,
        mine_seeds=1, random_targets=2, taps="conv2,conv6", log_every=2))
    monkeypatch.setattr(clustering, "SUPERVISED", {"steps": 20, "batch_size": 64, "lr": 1e-3})
    monkeypatch.setattr(anatomy, "TARGET_STEPS", 30)
    summary = clustering.run_study(tmp_path, device="cpu", log=lambda s: None)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert [c["id"] for c in saved["claims"]] == list(CLAIMS)
    assert all(c["verdict"] in ("agrees", "differs", "inconclusive") for c in saved["claims"])
    assert summary.read_text().startswith("# The clustering anatomy")
    assert (tmp_path / "supervised" / "plain-seed0.json").is_file()
    html = (tmp_path / "report.html").read_text()
    assert "SSL against supervised training" in html and "Clustering over training" in html
    said = []
    clustering.run_study(tmp_path, device="cpu", log=said.append)
    assert len([s for s in said if s.endswith("skipped")]) == 3  # the run and both baselines
    assert not [s for s in said if s.endswith("training")
                or s.endswith("training the supervised baseline")]


@pytest.mark.slow
def test_clustering_study_runs_on_cifar100_files_with_its_superclasses(tmp_path, monkeypatch):
    """The study on generated CIFAR-100 files in the real format (3 train, 2 test per class)."""
    from sslscope import anatomy
    from sslscope.data import cifar
    from sslscope.data.hierarchy import SUPERCLASSES
    from sslscope.studies import clustering
    from tests.test_datasets import _dump, _rows

    folder = tmp_path / "data" / cifar.CIFAR100_DIR
    coarse = SUPERCLASSES["cifar100"].coarse_of
    for split, per_class, seed in (("train", 3, 1), ("test", 2, 2)):
        fine = [c for c in range(100) for _ in range(per_class)]
        _dump(folder / split, {b"data": _rows(len(fine), seed=seed), b"fine_labels": fine,
                               b"coarse_labels": [coarse[c] for c in fine]})
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    real = clustering.ssl_config
    monkeypatch.setattr(clustering, "ssl_config", lambda *a, **kw: config_lib.replace(
        real(*a, **kw), steps=6, warmup_steps=1, batch_size=64, eval_points=2,
        projector_dims=(32,), sample_images=10, sample_train_views=3, sample_test_views=2,
        mine_seeds=1, random_targets=2, taps="conv6", log_every=2))
    monkeypatch.setattr(clustering, "SUPERVISED", {"steps": 6, "batch_size": 64, "lr": 1e-3})
    monkeypatch.setattr(anatomy, "TARGET_STEPS", 10)
    clustering.run_study(tmp_path / "out", dataset="cifar100", data_dir=str(tmp_path / "data"),
                         device="cpu", log=lambda s: None)
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["title"].endswith("on cifar100")
    cfg = json.loads((tmp_path / "out" / "runs" / "vicreg-seed0" / "config.json").read_text())
    assert cfg["augment"] == "simclr" and cfg["levels"] == "all"
    rows = (tmp_path / "out" / "runs" / "vicreg-seed0" / "metrics.jsonl").read_text()
    assert "clus/h/superclass/cdnv" in rows and "clus/conv6/sample/linear_test_acc" in rows


def test_a_run_without_random_targets_leaves_7_and_8_inconclusive(tmp_path):
    runs = {"vicreg-seed0": write_run(tmp_path / "run")}
    without_keys(runs["vicreg-seed0"], lambda k: "random" in k)
    claims, _ = claims_and_results(runs, {0: SUPERVISED}, method="vicreg", seeds=[0])
    got = {c.id: c.verdict for c in claims}
    assert {got[i] for i in ("7a", "7b", "8a", "8b")} == {"inconclusive"}
    assert got["1"] == got["9c"] == "agrees"
