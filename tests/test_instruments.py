"""Instruments: hand-computed values of each measure, and the recorder inside a real run."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sslscope.cli import main
from sslscope.data import load_digits
from sslscope.errors import TrainingDiverged, UserError
from sslscope.evaluate.suite import extract_features
from sslscope.files import read_jsonl
from sslscope.instruments.capacity import centroid_capacity
from sslscope.instruments.geometry import alignment, normalized_std, uniformity
from sslscope.instruments.measures import INSTRUMENTS, ViewPair
from sslscope.instruments.recorder import (
    embed_pair,
    instrument_images,
    instrument_indices,
    instrument_names,
    instrument_views,
    instruments,
)
from sslscope.instruments.spectrum import cross_correlation_eigenvalues, rankme
from sslscope.instruments.steps import emergence_steps, staircase_steps
from sslscope.losses.mmcr import mmcr_multimodal_loss
from sslscope.observe import Snapshot
from sslscope.parts import build_parts
from sslscope.report import RunRecord, build_report
from sslscope.report.sections_dynamics import geometry_section, spectrum_over_training_section
from sslscope.runs import RunFiles
from sslscope.schedules import log_spaced_steps
from sslscope.train import train
from tests.conftest import tiny_config


def test_cross_correlation_by_hand():
    # One pair, z_a = e1, z_b = e2: C = e1 e2ᵀ, symmetrised [[0, ½], [½, 0]], eigenvalues ±½.
    z_a, z_b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert torch.allclose(cross_correlation_eigenvalues(z_a, z_b),
                          torch.tensor([0.5, -0.5], dtype=torch.float64))
    # Identical views: C = ZᵀZ / N, here diag(4, 1) / 2 — uncentred, so the mean counts.
    z = torch.tensor([[2.0, 1.0], [2.0, -1.0]])
    assert torch.allclose(cross_correlation_eigenvalues(z, z),
                          torch.tensor([4.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="two"):
        cross_correlation_eigenvalues(z, z[:, :1])


def test_alignment_uniformity_and_std_by_hand():
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert alignment(e1, 3 * e1) == 0.0  # normalised: the same direction
    assert alignment(e1, -e1) == pytest.approx(4.0)  # antipodal, α = 2
    assert alignment(e1, e2, alpha=1.0) == pytest.approx(math.sqrt(2))
    assert uniformity(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-12)  # collapsed
    assert uniformity(torch.cat([e1, -e1])) == pytest.approx(-8.0)  # one antipodal pair, t = 2
    # Four points at the square's corners: 4 pairs at squared distance 2, 2 at 4.
    square = torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    assert uniformity(square) == pytest.approx(math.log((4 * math.exp(-4) + 2 * math.exp(-8)) / 6))
    assert normalized_std(torch.ones(6, 4)) == pytest.approx(0.0, abs=1e-12)
    wide = torch.randn(20000, 64, generator=torch.Generator().manual_seed(0))
    assert normalized_std(wide) == pytest.approx(1 / math.sqrt(64), rel=0.02)


def test_spectrum_instrument_on_a_known_pair():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 3, generator=g) * torch.tensor([3.0, 2.0, 1.0])
    pair = ViewPair(h_a=z, h_b=z, z_a=z, z_b=z)
    measured = INSTRUMENTS["spectrum"](pair)
    both = torch.cat([z, z]).double()
    assert torch.allclose(measured.arrays["z/cov"],
                          torch.linalg.eigvalsh(torch.cov(both.T)).flip(0))
    assert torch.allclose(measured.arrays["z/xcorr"],
                          torch.linalg.eigvalsh(z.double().T @ z.double() / 50).flip(0))
    assert 1 < measured.scalars["z/eff_rank"] < 3 and 1 < measured.scalars["h/rankme"] < 3


def test_bad_instrument_input_is_one_sentence(capsys):
    with pytest.raises(UserError, match="unknown instrument 'spectra'; choose from: spectrum"):
        instrument_names("spectrum,spectra")
    with pytest.raises(UserError, match="instrument_batch 5000 exceeds the 1347 training"):
        instrument_images(load_digits(), 5000, seed=0)
    assert main(["train", "--preset", "smoke", "--instruments", "nope"]) == 2
    assert "unknown instrument 'nope'" in capsys.readouterr().err


def test_instruments_record_without_changing_training_and_resume_exactly(tmp_path):
    cfg = tiny_config(steps=8, checkpoint_every=3, log_every=1, instruments="spectrum,geometry",
                      instrument_points=5, instrument_batch=300)
    train(cfg, tmp_path / "straight", progress=False)
    train(tiny_config(steps=8, checkpoint_every=3, log_every=1, instruments=""),
          tmp_path / "without", progress=False)
    # A crash after the instrument row of step 4 was written, before the next checkpoint: the
    # run goes on from its step-3 checkpoint, and the rows it recorded after step 3 are redone.
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.safetensors"
    train(cfg, tmp_path / "resumed", progress=False, stop_at=3)
    at_step_3 = checkpoint.read_bytes()
    part_way = RunRecord.load(tmp_path / "resumed")  # a run part-way: what it has so far
    assert spectrum_over_training_section(part_way) and geometry_section(part_way)
    train(cfg, tmp_path / "resumed", progress=False, resume=True, stop_at=6)
    assert 4 in load_file(str(tmp_path / "resumed" / "arrays" / "spectrum.safetensors"))["step"]
    checkpoint.write_bytes(at_step_3)
    train(cfg, tmp_path / "resumed", progress=False, resume=True)

    def last_weights(name):
        return load_file(str(tmp_path / name / "checkpoints" / "last.safetensors"))

    plain, measured = last_weights("without"), last_weights("straight")
    assert all(torch.equal(plain[k], measured[k]) for k in plain)  # measuring changes nothing

    spectrum = load_file(str(tmp_path / "straight" / "arrays" / "spectrum.safetensors"))
    steps = log_spaced_steps(8, 5)
    assert spectrum["step"].tolist() == steps
    assert spectrum["h/cov"].shape == (len(steps), 128) and spectrum["z/xcorr"].shape[1] == 64
    assert spectrum["z/cov"].dtype == torch.float64
    assert (spectrum["z/cov"][:, :-1] >= spectrum["z/cov"][:, 1:]).all()  # descending
    resumed = load_file(str(tmp_path / "resumed" / "arrays" / "spectrum.safetensors"))
    assert resumed.keys() == spectrum.keys()
    assert all(torch.equal(resumed[k], spectrum[k]) for k in spectrum)

    def inst_rows(name):
        return [{k: v for k, v in r.items() if k.startswith("inst/") or k == "step"}
                for r in read_jsonl(tmp_path / name / "metrics.jsonl")
                if any(k.startswith("inst/") for k in r)]

    rows = inst_rows("straight")
    assert [r["step"] for r in rows] == steps and rows == inst_rows("resumed")
    assert {"inst/z/eff_rank", "inst/h/rankme", "inst/z/alignment", "inst/z/uniformity",
            "inst/z/normalized_std"} <= rows[0].keys()
    info = json.loads((tmp_path / "straight" / "run.json").read_text())
    assert info["status"] == "finished"
    page = build_report(tmp_path / "straight").read_text()
    assert "When each direction emerged" in page and "Steps of the loss staircase" in page
    for name in ("spectrum_over_training", "geometry"):
        assert (tmp_path / "straight" / "figures" / f"{name}.png").is_file()
    assert spectrum_over_training_section(RunRecord.load(tmp_path / "without")) is None


def test_emergence_steps_of_a_synthetic_staircase():
    # Eigenvalue j follows a sigmoid in log-time centred at step c_j; its half-crossing is c_j.
    steps = np.unique(np.geomspace(1, 10_000, 400).round()).astype(int)
    centres = np.array([30, 200, 1500])
    eig = 1 / (1 + (centres[None, :] / steps[:, None]) ** 6)  # (T, 3), rises from 0 to ~1
    found = emergence_steps(steps, eig)
    assert np.allclose(found, centres, rtol=0.03)
    assert np.isnan(emergence_steps(steps, np.ones((steps.size, 2)))).all()  # there from start
    assert np.isnan(emergence_steps(steps, np.zeros((steps.size, 1))))[0]  # never emerges


def test_staircase_steps_find_each_drop():
    steps = np.unique(np.geomspace(1, 10_000, 300).round())
    centres = np.array([20, 300, 4000])
    loss = 3 - (1 / (1 + (centres[None, :] / steps[:, None]) ** 8)).sum(1)  # three unit drops
    found = staircase_steps(steps, loss)
    assert found.size == 3 and np.allclose(found, centres, rtol=0.1)
    assert staircase_steps(steps, np.ones_like(steps)).size == 0  # a flat loss has no step


def test_non_finite_embeddings_stop_the_run_with_one_sentence(tmp_path):
    # lr far above 1/(8 λ_1): the linear model blows up within a few steps. The loss is only
    # checked at log steps (here never before the end); the instruments see it first.
    cfg = tiny_config(method="barlow_twins_linear", backbone="linear:4", projector_dims=(),
                      optimizer="sgd", momentum=0.0, warmup_steps=0, lr=5.0, steps=40,
                      log_every=100, checkpoint_every=100, instruments="spectrum",
                      instrument_points=40)
    with pytest.raises(TrainingDiverged, match="the embeddings became non-finite by step"):
        train(cfg, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


def _consume(cfg, tmp_path, name):
    """One instrument call at step 0 of ``cfg``'s freshly built parts: (scalars, arrays)."""
    data = load_digits()
    files = RunFiles(tmp_path / name)
    consumer = instruments(cfg, data, files)
    parts = build_parts(cfg, data, torch.device("cpu"))
    scalars = consumer.consume(Snapshot(0, parts, data, torch.device("cpu")))
    arrays = {n: load_file(str(files.array(n))) for n in instrument_names(cfg.instruments)
              if files.array(n).is_file()}  # geometry has scalars only
    return scalars, arrays, parts


@pytest.mark.parametrize("fixed", [False, True])
def test_extra_views_for_capacity_leave_the_first_two_unchanged(fixed):
    cfg = tiny_config(method="mmcr", n_views=4, fixed_views=fixed)
    data, index = load_digits(), torch.arange(0, 40, 3)
    two = instrument_views(cfg, data, index, torch.device("cpu"))
    four = instrument_views(cfg, data, index, torch.device("cpu"), n_views=4)
    assert len(two) == 2 and len(four) == 4
    assert all(torch.equal(a, b) for a, b in zip(two, four[:2], strict=False))
    assert not torch.equal(four[2], four[0])  # the extra views are new augmentations


def test_capacity_sees_all_k_views_and_moves_no_other_instrument(tmp_path):
    base = dict(method="mmcr", n_views=3, instrument_batch=120)
    plain, plain_arrays, _ = _consume(tiny_config(instruments="spectrum,geometry", **base),
                                      tmp_path, "plain")
    cfg = tiny_config(instruments="spectrum,geometry,capacity", **base)
    scalars, arrays, parts = _consume(cfg, tmp_path, "with")
    assert {k: scalars[k] for k in plain} == plain  # the same numbers, bit for bit
    assert all(torch.equal(arrays["spectrum"][k], v) for k, v in plain_arrays["spectrum"].items())
    # The capacity numbers are those of the K = 3 views, embedded as the recorder embeds them.
    data = load_digits()
    views = instrument_views(cfg, data, instrument_indices(data, 120, cfg.seed),
                             torch.device("cpu"), n_views=3)
    z = torch.stack([extract_features(parts.encoder, v, device="cpu")["z"] for v in views], 1)
    expected, sigma = centroid_capacity(z)  # (120, 3, 64)
    assert scalars["inst/z/ppe"] == pytest.approx(expected["ppe"], rel=1e-9)
    assert scalars["inst/z/local_nuclear"] == pytest.approx(expected["local_nuclear"], rel=1e-9)
    assert math.sqrt(3) <= expected["local_nuclear"] <= 3
    assert torch.allclose(arrays["capacity"]["z/centroid_sv"][0], sigma)


def test_capacity_of_a_cross_modal_run_is_over_its_two_modalities(tmp_path):
    cfg = tiny_config(method="mmcr_multimodal", instruments="capacity", instrument_batch=80)
    scalars, arrays, parts = _consume(cfg, tmp_path, "run")
    data = load_digits()
    view = instrument_views(cfg, data, instrument_indices(data, 80, cfg.seed),
                            torch.device("cpu"))[0]
    encoder = parts.encoder.eval()
    with torch.no_grad():
        z = torch.stack(encoder.modalities(view), dim=1)  # (80, 2, D): the loss's manifolds
        pair = embed_pair(encoder, [view, view], torch.device("cpu"), all_views=True)
        loss = mmcr_multimodal_loss(*encoder.modalities(view))
    assert torch.allclose(pair.all_views["z"], z)
    assert pair.z_a.shape[1] == 2 * z.shape[2]  # the other instruments see both concatenated
    assert scalars["inst/z/ppe"] == pytest.approx(centroid_capacity(z)[0]["ppe"], rel=1e-6)
    assert -scalars["inst/z/centroid_nuclear"] == pytest.approx(float(loss), rel=1e-5)
    assert arrays["capacity"]["h/shape"][0].tolist() == [80, pair.all_views["h"].shape[2]]


@pytest.mark.parametrize("n, d", [(400, 32), (10, 32)])  # D ≤ 2N: one shared Gram; 2N < D
def test_spectrum_instrument_shares_the_gram_and_matches_the_definitions(n, d):
    # Features far from the origin (ReLU-like, mean 50 ≫ spread) are where centring through
    # xᵀx − N x̄x̄ᵀ cancels most; float64 keeps it at ~ε·|x̄|²/λ of the smallest eigenvalue.
    g = torch.Generator().manual_seed(2)
    h = 50 + torch.randn(n, d, generator=g) * torch.linspace(0.1, 3, d)
    pair = ViewPair(h_a=h[: n // 2], h_b=h[n // 2:], z_a=h[: n // 2], z_b=h[n // 2:])
    measured = INSTRUMENTS["spectrum"](pair)
    reference = torch.linalg.eigvalsh(torch.cov(h.double().T)).flip(0)
    torch.testing.assert_close(measured.arrays["h/cov"], reference, rtol=0,
                               atol=1e-9 * float(reference[0]))
    assert measured.scalars["h/rankme"] == pytest.approx(rankme(h), rel=1e-9)
