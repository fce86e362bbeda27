"""`sslscope study tico`: the variants, the verdicts on hand-made results, the command.

Targets asserted: every variant's config validates and differs from hybrid-beta0.9 in one
factor only; each verdict flips when the synthetic accuracies are made to contradict the
claim; bad options are one sentence and status 2; a tiny study writes its claims, report and
sweep table, and a rerun trains nothing.
"""

import json

import numpy as np
import pytest

from sslscope.cli import main
from sslscope.studies import tico
from sslscope.studies.tico_claims import Results, Variant, claims_for


def test_variants_are_one_factor_from_the_recommended_hybrid():
    base = tico.VARIANTS["hybrid-beta0.9"][1]
    for name, (method, loss) in tico.VARIANTS.items():
        cfg = tico.variant_config(name, steps=10, seed=0, device="cpu")
        assert cfg.method == method and cfg.instruments == "spectrum"
        if method == "vicreg_tico":
            changed = {k for k in {**base, **loss} if loss.get(k, base.get(k)) != base.get(k)}
            assert len(changed) <= 1, name


def synthetic(acc):
    """Results whose linear and kNN accuracies are ``acc[variant]`` for all three seeds."""
    variants = {name: Variant(name, {p: [a] * 3 for p in ("h/linear/test_acc",
                                                           "h/knn/test_acc")},
                              [10.0] * 3, [0, 10], [1.0, 10.0], np.ones(8))
                for name, a in acc.items()}
    return Results(variants, n_test=450, seeds=3)


AGREEING = {"vicreg": 0.90, "hybrid-beta0": 0.90, "hybrid-beta0.5": 0.90,
            "hybrid-beta0.9": 0.95, "hybrid-beta0.99": 0.90, "hybrid-beta0.9-diag": 0.85,
            "hybrid-beta0.9-l2": 0.95, "tico": 0.90}


def test_verdicts_follow_the_numbers():
    verdicts = {c.id: c.verdict for c in claims_for(synthetic(AGREEING))}
    assert verdicts == {"beta0-is-vicreg": "agrees", "adaptive-helps": "agrees",
                        "offdiag-better": "agrees", "raw-not-worse": "agrees"}
    flipped = {**AGREEING, "hybrid-beta0": 0.80, "hybrid-beta0.5": 0.80,
               "hybrid-beta0.9": 0.80, "hybrid-beta0.99": 0.80, "hybrid-beta0.9-diag": 0.90,
               "hybrid-beta0.9-l2": 0.90}
    verdicts = {c.id: c.verdict for c in claims_for(synthetic(flipped))}
    assert verdicts == {"beta0-is-vicreg": "differs", "adaptive-helps": "differs",
                        "offdiag-better": "differs", "raw-not-worse": "differs"}
    tied = {**AGREEING, "hybrid-beta0.9": 0.90, "hybrid-beta0.9-diag": 0.90}
    verdicts = {c.id: c.verdict for c in claims_for(synthetic(tied))}
    assert verdicts["adaptive-helps"] == "inconclusive"
    assert verdicts["offdiag-better"] == "inconclusive"


@pytest.mark.parametrize("argv, sentence", [
    (["--steps", "0"], "--steps must be at least 1, got 0"),
    (["--seeds", "x"], "--seeds expects comma-separated integers"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_one_sentence(tmp_path, capsys, argv, sentence):
    assert main(["study", "tico", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow  # eight small trainings in child processes, about 40 s on 2 cores
def test_tiny_study_end_to_end_and_rerun_trains_nothing(tmp_path):
    lines = []
    summary = tico.run_study(tmp_path / "t", steps=6, seeds=[0], device="cpu", jobs=2,
                             log=lines.append)
    claims = json.loads((tmp_path / "t" / "summary.json").read_text())["claims"]
    assert [c["id"] for c in claims] == ["beta0-is-vicreg", "adaptive-helps",
                                         "offdiag-better", "raw-not-worse"]
    assert "`hybrid-beta0.99`" in summary.read_text()
    assert (tmp_path / "t" / "report.html").is_file()
    rows = json.loads((tmp_path / "t" / "sweep.json").read_text())["rows"]
    assert len(rows) == len(tico.VARIANTS) and all(r["status"] == "finished" for r in rows)
    lines.clear()
    tico.run_study(tmp_path / "t", steps=6, seeds=[0], device="cpu", jobs=2, log=lines.append)
    assert not any(line.endswith("training") for line in lines)
