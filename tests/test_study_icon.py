"""`sslscope study icon`: the cells, the verdicts on hand-made results, the command.

Targets asserted: every sweep cell is `--method icon` with α on both sides and the paper's
kernels (Student-t ν = 2); each verdict flips when the synthetic numbers are made to contradict
the claim; bad options are one sentence and status 2; a tiny study writes its claims, report,
clustering results and maps, and a rerun trains and computes nothing.
"""

import json

import pytest

from sslscope.cli import main
from sslscope.icon.clustering import LADDER
from sslscope.studies import icon
from sslscope.studies.icon_claims import Results, claims_for
from sslscope.studies.icon_maps import MAPS, REFERENCE

IDS = ["equivalences", "debias-simclr", "debias-t-simclr", "student-t-beats-gaussian",
       "clustering-beats-kmeans", "clustering-ladder", "tsne-is-icon", "student-t-map"]


def test_cells_are_icon_with_alpha_on_both_sides():
    for kernel, options in icon.KERNELS.items():
        for alpha in icon.ALPHAS:
            cfg = icon.variant_config(kernel, alpha, steps=10, seed=0, device="cpu")
            assert cfg.method == "icon"
            assert cfg.loss_kwargs == {**options, "debias": alpha, "debias_q": alpha}
    assert icon.KERNELS["t-SimCLR"] == {"q": "student_t", "dof": 2.0}
    assert icon.cell_name("t-SimCLR", 0.2, 1) == "t-simclr-alpha0.2-seed1"


def synthetic(*, debias_gain=0.06, t_gain=0.06, clustering=(0.90, 0.92, 0.95, 0.97),
              kmeans=0.93, trust_gap=0.001, t_map_gain=0.03, worst=1e-15):
    """Results whose numbers are the same for every seed, built from the knobs."""
    debias = {}
    for kernel, base in (("SimCLR", 0.80), ("t-SimCLR", 0.80 + t_gain)):
        for alpha in icon.ALPHAS:
            acc = base + (debias_gain if alpha > 0 else 0.0)
            debias[(kernel, alpha)] = {"h/linear/test_acc": [acc] * 3, "h/knn/test_acc": [acc] * 3}
    rungs = dict(zip(LADDER, clustering[1:], strict=True))
    trust = {REFERENCE: 0.99, "t-SNE (I-Con)": 0.99 - trust_gap,
             "SNE (I-Con)": 0.99 - trust_gap - t_map_gain,
             "parametric t-SNE (I-Con)": 0.98, "parametric SNE (I-Con)": 0.98 - t_map_gain}
    return Results(
        debias, n_test=450, seeds=3,
        clustering={"kmeans": [kmeans] * 3, "kmeans_l2": [kmeans - 0.01] * 3, **{
            k: [v] * 3 for k, v in rungs.items()}, "kNN only": [clustering[0]] * 3},
        n_images=1797, trust=trust, seconds=dict.fromkeys(trust, 1.0),
        equivalences=[{"method": "SimCLR", "abs_diff": worst}])


def verdicts(results):
    claims = claims_for(results)
    assert [c.id for c in claims] == IDS
    return {c.id: c.verdict for c in claims}


def test_verdicts_follow_the_numbers():
    assert set(verdicts(synthetic()).values()) == {"agrees"}
    flipped = verdicts(synthetic(debias_gain=-0.06, t_gain=-0.06, clustering=(0.9, 0.97, 0.95,
                                                                            0.90),
                                 kmeans=0.97, trust_gap=0.05, t_map_gain=-0.03, worst=1e-6))
    assert set(flipped.values()) == {"differs"}, flipped
    tied = verdicts(synthetic(debias_gain=0.0, t_gain=0.0, clustering=(0.9, 0.95, 0.95, 0.95),
                              kmeans=0.95))
    for claim in ("debias-simclr", "debias-t-simclr", "student-t-beats-gaussian",
                  "clustering-beats-kmeans", "clustering-ladder"):
        assert tied[claim] == "inconclusive", claim


def test_stronger_kmeans_is_the_bar():
    results = synthetic(clustering=(0.9, 0.92, 0.95, 0.97), kmeans=0.90)
    results.clustering["kmeans_l2"] = [0.99] * 3
    assert results.kmeans() == "kmeans_l2"
    assert verdicts(results)["clustering-beats-kmeans"] == "differs"


@pytest.mark.parametrize("argv, sentence", [
    (["--steps", "0"], "--steps must be at least 1, got 0"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--seeds", "x"], "--seeds expects comma-separated integers"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_one_sentence(tmp_path, capsys, argv, sentence):
    assert main(["study", "icon", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow  # eight small trainings in child processes and small maps, about 60 s
def test_tiny_study_end_to_end_and_rerun_computes_nothing(tmp_path):
    lines = []
    options = {"steps": 6, "seeds": [0], "device": "cpu", "jobs": 2, "cluster_steps": 5,
               "map_steps": 20, "map_points": 120}
    summary = icon.run_study(tmp_path / "i", log=lines.append, **options)
    out = tmp_path / "i"
    claims = json.loads((out / "summary.json").read_text())["claims"]
    assert [c["id"] for c in claims] == IDS
    assert claims[0]["verdict"] == "agrees"  # the equivalences hold in any run
    text = summary.read_text()
    assert "InfoNCE clustering: + kNN propagation" in text and "t-SimCLR" in text
    assert (out / "report.html").is_file() and (out / "figures" / "icon_maps.png").is_file()
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert len(rows) == len(icon.KERNELS) * len(icon.ALPHAS)
    assert all(r["status"] == "finished" for r in rows)
    ladder = json.loads((out / "clustering" / "seed0.json").read_text())
    assert ladder["images"] == 1797 and set(ladder["accuracy"]) == {
        "kmeans", "kmeans_l2", *LADDER, "kNN only"}
    maps = json.loads((out / "maps" / "maps.json").read_text())
    assert set(maps["trust"]) == {REFERENCE, *MAPS}
    lines.clear()
    icon.run_study(tmp_path / "i", log=lines.append, **options)
    assert not any(line.endswith("training") for line in lines)
    assert "maps: finished, skipped" in lines
    assert "clustering simclr-alpha0-seed0: finished, skipped" in lines
