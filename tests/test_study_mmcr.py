"""`sslscope study mmcr`: the power-law fit, the peak finder, the verdicts, the command.

Targets asserted: the fit recovers E∞, a and b of an exact power law (and of one with 1 %
noise, to a few percent); the log-log slope of C^(−b) is −b; the diagonal-peak finder reads a
hand-made grid; every verdict flips when the synthetic measurements are made to contradict the
claim (a claim that cannot come out "differs" is no test); bad options are one sentence and
status 2; a small study writes its claims, report and three sweeps, and a rerun retrains nothing.
"""

import dataclasses
import json
import math

import numpy as np
import pytest

import sslscope.studies.mmcr as mmcr
from sslscope.cli import main
from sslscope.studies.claims import significantly
from sslscope.studies.mmcr_claims import (
    CapacityCell,
    Results,
    claims_for,
    diagonal_peaks,
    fit_power_law,
    log_log_slope,
)
from sslscope.theory.capacity import ppe_surface

C = np.geomspace(1e3, 1e7, 12)


def test_fit_recovers_an_exact_power_law():
    fit = fit_power_law(C, 0.08 + 40.0 * C ** -0.45)
    assert fit.e_inf == pytest.approx(0.08, abs=1e-4)
    assert fit.b == pytest.approx(0.45, rel=1e-3)
    assert fit.a == pytest.approx(40.0, rel=1e-2)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9) and fit.n == 12


def test_fit_with_noise_and_too_few_points():
    rng = np.random.default_rng(0)
    y = (0.1 + 20.0 * C ** -0.4) * (1 + 0.01 * rng.standard_normal(C.size))
    fit = fit_power_law(C, y)
    assert fit.b == pytest.approx(0.4, rel=0.1) and fit.r2 > 0.99
    assert fit_power_law(C[:3], y[:3]) is None  # three parameters need four points
    assert fit_power_law([0.0, 1, 2, 3], [1, 0.5, 0.4, 0.3]) is None  # C must be positive


def test_significance_of_accuracy_differences():
    # 95 % vs 92 % on 450: SE = sqrt((.95*.05 + .92*.08)/450) = 1.64 points, z = 1.83: a tie
    assert significantly(0.95, 0.92, 450) is None
    assert significantly(0.95, 0.91, 450) is True  # z = 2.38
    assert significantly(0.91, 0.95, 450) is False
    assert significantly(0.95, 0.92, 4500) is True  # ten times the test set: z = 5.8


def test_log_log_slope_of_a_pure_power_law():
    assert log_log_slope(C, 3.0 * C ** -0.7) == pytest.approx(-0.7, rel=1e-12)


def test_diagonal_peaks_reads_rows_and_columns():
    table = np.array([[0.5, 0.3, 0.1],   # P = 16: peak at D = 16 (diagonal)
                      [0.2, 0.4, 0.6],   # P = 64: peak at D = 256 (off)
                      [0.1, 0.2, 0.3]])  # P = 256: peak at D = 256 (diagonal)
    lines = diagonal_peaks(table, [16, 64, 256], [16, 64, 256])
    assert [(x["line"], x["peak"], x["on_diagonal"]) for x in lines] == [
        ("P = 16", "D = 16", True), ("P = 64", "D = 256", False), ("P = 256", "D = 256", True),
        ("D = 16", "P = 16", True), ("D = 64", "P = 64", True), ("D = 256", "P = 64", False)]


GRIDS = dataclasses.replace(mmcr.REDUCED, ps=(16, 64, 256), ds=(16, 64, 256), ks=(2,),
                            capacity_steps=100, ablation_ks=(2, 8), multimodal_batches=(16, 512))
STEPS = [0, 10, 20, 40, 60, 80, 100]


def synthetic(*, diagonal_high: bool, views_help: bool, mmcr_wins: bool) -> Results:
    """Measurements that agree with every claim (or, flipped, contradict it)."""
    cells = []
    for p in GRIDS.ps:
        for d in GRIDS.ds:
            on = p == d
            b = 0.2 if on == diagonal_high else 0.5  # the diagonal slow and high, or not
            ppe = [0.9] + [2.0 * (s * p * 2) ** -b for s in STEPS[1:]]
            cells.append(CapacityCell(p, d, 2, STEPS, ppe, warmup=10))
    acc = {2: 0.80, 8: 0.90} if views_help else {2: 0.90, 8: 0.80}
    ablation = [{"local_weight": lam, "k": k, "h/linear/test_acc": acc[k],
                 "h/knn/test_acc": acc[k], "z/linear/test_acc": acc[k],
                 "z/knn/test_acc": acc[k], "inst/z/ppe": 0.2}
                for lam in (0.0, 5e-3) for k in (2, 8)]
    multimodal = [{"method": m, "batch": b, "a_to_b": v, "b_to_a": v, "retrieval": v,
                   "h/linear/test_acc": 0.9, "inst/z/ppe": 0.2}
                  for b in (16, 512) for m, v in
                  (("clip", 0.3), ("mmcr_multimodal", 0.5 if mmcr_wins else 0.1))]
    return Results(GRIDS, cells, ablation, multimodal, ppe_surface(GRIDS.ps, GRIDS.ds),
                   0.151, seeds=1, n_test=450)


def verdicts(results):
    return {c.id: c.verdict for c in claims_for(results)}


def test_verdicts_agree_with_agreeing_measurements():
    assert verdicts(synthetic(diagonal_high=True, views_help=True, mmcr_wins=True)) == {
        "random-centroids": "agrees", "double-descent": "agrees", "compute-scaling": "agrees",
        "diagonal-slower": "agrees", "more-views": "agrees", "local-term": "agrees",
        "multimodal-small-batch-retrieval": "agrees",
        "multimodal-small-batch-probe": "inconclusive"}  # equal probes: a tie


def test_verdicts_differ_with_contradicting_measurements():
    found = verdicts(synthetic(diagonal_high=False, views_help=False, mmcr_wins=False))
    assert found["double-descent"] == "differs"
    assert found["diagonal-slower"] == "differs"
    assert found["more-views"] == "differs"
    assert found["multimodal-small-batch-retrieval"] == "differs"
    assert found["compute-scaling"] == "agrees"  # still exact power laws
    flat = synthetic(diagonal_high=True, views_help=True, mmcr_wins=True)
    for cell in flat.cells:  # PPE that does not fall with compute: no power law
        cell.ppe = [0.5, 0.2, 0.6, 0.1, 0.5, 0.2, 0.6]
        cell.__post_init__()
    assert verdicts(flat)["compute-scaling"] == "differs"
    for row in flat.ablation:  # the local term better by 9 points at every K
        row["h/linear/test_acc"] -= 0.09 * (row["local_weight"] == 0)
    assert verdicts(flat)["local-term"] == "differs"


def test_capacity_cell_compute_and_fitted_points():
    cell = CapacityCell(64, 16, 4, [0, 5, 10, 20, 40], [0.9, 0.8, 0.5, 0.4, 0.35], warmup=10)
    assert cell.compute == [0, 1280, 2560, 5120, 10240]
    assert cell.fitted_points() == ([2560, 5120, 10240], [0.5, 0.4, 0.35])
    assert cell.fit is None and cell.final == 0.35  # three points: no three-parameter fit
    assert cell.slope == pytest.approx(log_log_slope([2560, 5120, 10240], [0.5, 0.4, 0.35]))


def test_multimodal_steps_match_the_images_seen():
    assert [mmcr.multimodal_steps(mmcr.REDUCED, b) for b in (16, 64, 256, 512)] == [
        2048, 512, 128, 64]
    assert all(mmcr.multimodal_steps(mmcr.REDUCED, b) * b == mmcr.REDUCED.multimodal_images
               for b in mmcr.REDUCED.multimodal_batches)


@pytest.mark.parametrize("argv, sentence", [
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--seeds", "a,b"], "--seeds expects comma-separated integers, got 'a,b'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_one_sentence(tmp_path, capsys, argv, sentence):
    assert main(["study", "mmcr", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert not (tmp_path / "out" / "capacity" / "runs").exists()


TINY = mmcr.Grids(ps=(8, 16), ds=(8, 16), ks=(2,), capacity_steps=12, ablation_lambdas=(0.0, 5e-3),
                  ablation_ks=(2,), ablation_batch=16, ablation_dim=16, ablation_steps=6,
                  multimodal_batches=(8, 32), multimodal_images=128)


@pytest.mark.slow  # 14 small trainings in child processes, about a minute on 2 cores
def test_small_study_end_to_end_and_rerun_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(mmcr, "REDUCED", TINY)
    lines = []
    summary = mmcr.run_study(tmp_path / "mmcr", device="cpu", jobs=2, log=lines.append)
    claims = json.loads((tmp_path / "mmcr" / "summary.json").read_text())["claims"]
    assert [c["id"] for c in claims] == [
        "random-centroids", "double-descent", "compute-scaling", "diagonal-slower",
        "more-views", "local-term", "multimodal-small-batch-retrieval",
        "multimodal-small-batch-probe"]
    assert all(c["verdict"] in ("agrees", "differs", "inconclusive") for c in claims)
    text = summary.read_text()
    assert "| P \\ D | 8 | 16 |" in text and "clip" in text
    assert (tmp_path / "mmcr" / "report.html").is_file()
    for grid, cells in (("capacity", 4), ("ablation", 2), ("multimodal", 4)):
        rows = json.loads((tmp_path / "mmcr" / grid / "sweep.json").read_text())["rows"]
        assert len(rows) == cells and all(r["status"] == "finished" for r in rows)
        assert all(isinstance(r["inst/z/ppe"], float) and 0 <= r["inst/z/ppe"] <= 1
                   for r in rows)
    steps = json.loads((tmp_path / "mmcr" / "multimodal" / "runs" / "clip-B8-seed0" /
                        "config.json").read_text())["steps"]
    assert steps == 16  # 128 images / batch 8
    lines.clear()
    mmcr.run_study(tmp_path / "mmcr", device="cpu", jobs=2, log=lines.append)
    assert not any(line.endswith("training") for line in lines)
    assert math.isfinite(json.loads((tmp_path / "mmcr" / "summary.json").read_text())[
        "claims"][0]["measured"]["ppe_256x256"])
