"""Cross-modal retrieval top-1: hand-computed cases, chance level, and the run's consumer.

Targets asserted: exact pairs (any rotation of both sides) give 1 both ways; a hand-built 3×3
case whose two directions differ; a collapsed embedding scores 1/N (ties go to index 0);
independent random pairs score near chance 1/N; a CLIP run logs both directions at its probe
steps, from the same test features the probes use.
"""

import json

import pytest
import torch

from sslscope import config as config_lib
from sslscope.evaluate.retrieval import CHUNK, retrieval_top1
from sslscope.train import train


def test_pairs_found_exactly_under_a_shared_rotation():
    a = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    assert retrieval_top1(a, a @ q.T @ q) == {"a_to_b": 1.0, "b_to_a": 1.0}
    assert retrieval_top1(a, 3.0 * a) == {"a_to_b": 1.0, "b_to_a": 1.0}  # cosine: scale-free


def test_hand_case_where_the_directions_differ():
    # Unit vectors at angles a = (0°, 15°, 90°), b = (0°, 40°, 90°). a1 is 15° from b0 and 25°
    # from b1: a→b misses it (2/3). b1's nearest a is a1 (25°, against 40° and 50°): b→a 3/3.
    def at(degrees):
        rad = torch.tensor(degrees, dtype=torch.float64).deg2rad()
        return torch.stack([rad.cos(), rad.sin()], dim=1)

    assert retrieval_top1(at([0, 15, 90]), at([0, 40, 90])) == pytest.approx(
        {"a_to_b": 2 / 3, "b_to_a": 1.0})


def test_collapse_and_chance():
    ones = torch.ones(40, 4)
    assert retrieval_top1(ones, ones) == {"a_to_b": 1 / 40, "b_to_a": 1 / 40}
    g = torch.Generator().manual_seed(2)
    found = retrieval_top1(torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g))
    assert all(v < 0.005 for v in found.values())  # chance 1/2000; 0.005 is ~8 σ above it


def test_chunks_give_the_unchunked_answer(monkeypatch):
    a = torch.randn(300, 6, generator=torch.Generator().manual_seed(3))
    b = a + 0.8 * torch.randn(300, 6, generator=torch.Generator().manual_seed(4))
    whole = retrieval_top1(a, b)
    monkeypatch.setattr("sslscope.evaluate.retrieval.CHUNK", 7)
    assert retrieval_top1(a, b) == whole and CHUNK > 300
    with pytest.raises(ValueError, match="one shape"):
        retrieval_top1(a, b[:, :5])


def test_clip_run_logs_retrieval_at_its_probe_steps(tmp_path, monkeypatch):
    monkeypatch.setattr("sslscope.train.write_final_evaluation", lambda *a, **k: None)
    cfg = config_lib.replace(config_lib.Config(), method="clip", augment="none",
                             backbone="linear:16", projector_dims=(8,), steps=6, warmup_steps=1,
                             batch_size=64, eval_points=2, instruments="", tensorboard=False,
                             device="cpu")
    train(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    found = [r for r in rows if "retrieval/z/a_to_b" in r]
    assert [r["step"] for r in found] == [r["step"] for r in rows if "eval/h/knn/test_acc" in r]
    assert found and all(0 <= r["retrieval/z/b_to_a"] <= 1 for r in found)
    vicreg = config_lib.replace(cfg, method="vicreg", augment="digits")
    from sslscope.consumers import retrieval
    from sslscope.data import load_dataset
    assert retrieval(vicreg, load_dataset("digits", ""), None) is None  # one encoder: none
