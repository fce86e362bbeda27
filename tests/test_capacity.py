"""MMCR capacity: the random-centroid PPE theory, the capacity instrument, its report section.

References: methods.md §2.2 and its appendix check (2) (PPE of uniform random unit centroids:
0.151 at P = D, 0.067 / 0.032 / 0.016 at P/D = ½ / ¼ / ⅛, symmetric in P ↔ D); the bound
√(P·min(P, D)) of Schaeffer et al. 2024, Prop. 3.3; and the MMCR loss of sslscope.losses.mmcr,
which the instrument must agree with on the same inputs.
"""

import math

import numpy as np
import pytest
import torch

from sslscope.instruments.capacity import capacity_bound, centroid_capacity
from sslscope.instruments.measures import INSTRUMENTS, ViewPair
from sslscope.instruments.spectrum import singular_values
from sslscope.losses.mmcr import (
    mmcr_centroids,
    mmcr_loss,
    mmcr_multimodal_loss,
    pretraining_percent_error,
)
from sslscope.report import SECTIONS, RunRecord, build_report
from sslscope.report.sections_capacity import capacity_section
from sslscope.theory.capacity import (
    SQUARE_RANDOM_PPE,
    asymptotic_ppe,
    ppe_surface,
    random_centroid_ppe,
)
from sslscope.train import train
from tests.conftest import tiny_config

F64 = torch.float64


def orthonormal_rows(p, d, seed=0):
    """(P, D) with orthonormal rows, P ≤ D."""
    q, _ = torch.linalg.qr(torch.randn(d, p, generator=torch.Generator().manual_seed(seed),
                                       dtype=F64))
    return q.T  # (P, D)


# --- theory: random unit centroids -------------------------------------------------------

def test_random_centroid_ppe_peaks_at_the_quarter_circle_value():
    assert SQUARE_RANDOM_PPE == pytest.approx(1 - 8 / (3 * math.pi)) == pytest.approx(0.1512, 1e-3)
    assert random_centroid_ppe(256, 256, trials=4, seed=0) == pytest.approx(0.151, abs=0.01)
    assert random_centroid_ppe(32, 256, trials=4, seed=0) < 0.02  # P/D = 1/8
    assert random_centroid_ppe(256, 32, trials=4, seed=0) < 0.02  # D/P = 1/8
    assert random_centroid_ppe(64, 64, seed=3) == random_centroid_ppe(64, 64, seed=3)


@pytest.mark.parametrize("p,d", [(32, 256), (64, 128), (128, 512)])
def test_random_centroid_ppe_is_symmetric_in_p_and_d(p, d):
    assert random_centroid_ppe(p, d, trials=4, seed=1) == pytest.approx(
        random_centroid_ppe(d, p, trials=4, seed=2), rel=0.08)


def test_the_marchenko_pastur_limit_matches_monte_carlo_and_the_reference_table():
    assert asymptotic_ppe(1.0) == pytest.approx(1 - 8 / (3 * math.pi), abs=1e-12)
    for ratio, reference in ((0.5, 0.067), (0.25, 0.032), (0.125, 0.016), (1 / 16, 0.008)):
        assert asymptotic_ppe(ratio) == pytest.approx(reference, abs=5e-4)
        assert asymptotic_ppe(1 / ratio) == asymptotic_ppe(ratio)  # P ↔ D
    assert asymptotic_ppe(1e-3) == pytest.approx(1e-3 / 8, rel=1e-3)  # small-ratio slope c/8
    for p, d in ((128, 256), (256, 64), (200, 200)):
        assert random_centroid_ppe(p, d, trials=4) == pytest.approx(
            asymptotic_ppe(min(p, d) / max(p, d)), abs=4e-3)
    with pytest.raises(ValueError, match="positive"):
        asymptotic_ppe(0.0)
    with pytest.raises(ValueError, match="at least 1"):
        random_centroid_ppe(0, 4)


def test_ppe_surface_is_a_grid_with_its_ridge_on_the_diagonal():
    sizes = [16, 64, 256]
    surface = ppe_surface(sizes, sizes, trials=2, seed=0)
    assert surface.shape == (3, 3) and surface.dtype == np.float64
    assert surface[1, 2] == random_centroid_ppe(64, 256, 2, 0)
    for i in range(3):
        assert surface[i].argmax() == i and surface[:, i].argmax() == i  # double descent
    assert surface[2, 2] == pytest.approx(SQUARE_RANDOM_PPE, abs=0.01)


# --- the instrument's measures ----------------------------------------------------------

def test_identical_views_of_orthonormal_centroids_have_zero_ppe():
    p, k, d = 6, 3, 10
    views = orthonormal_rows(p, d)[:, None, :].expand(p, k, d) * 2.5  # scale: normalised away
    scalars, sigma = centroid_capacity(views)
    assert scalars["ppe"] == pytest.approx(0.0, abs=1e-12)
    assert scalars["centroid_nuclear"] == pytest.approx(p) and scalars["capacity_bound"] == p
    assert scalars["local_nuclear"] == pytest.approx(math.sqrt(k))  # rank-1 Z_n of K unit cols
    assert scalars["centroid_norm"] == pytest.approx(1.0)
    assert sigma.shape == (p,) and sigma.dtype == F64
    assert torch.allclose(sigma, torch.ones(p, dtype=F64))


def test_the_bound_by_hand_and_a_collapse():
    assert capacity_bound(3, 5) == 3.0  # P ≤ D: P
    assert capacity_bound(8, 2) == 4.0  # P ≥ D: √(P D) = √16
    assert capacity_bound(6, 4) == pytest.approx(math.sqrt(24))
    with pytest.raises(ValueError, match="at least 1"):
        capacity_bound(0, 3)
    # All P centroids one unit vector: rank 1, ‖M‖_* = √P, PPE = 1 − 1/√min(P, D).
    for p, d in ((9, 4), (4, 9)):
        scalars, _ = centroid_capacity(torch.ones(p, 2, d))
        assert scalars["centroid_nuclear"] == pytest.approx(math.sqrt(p), rel=1e-7)
        assert scalars["ppe"] == pytest.approx(1 - 1 / math.sqrt(min(p, d)), abs=1e-7)


def test_local_nuclear_norm_and_centroids_by_hand():
    theta = 0.7
    e1, e2 = torch.tensor([1.0, 0.0, 0.0], dtype=F64), torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    tilted = torch.tensor([math.cos(theta), math.sin(theta), 0.0], dtype=F64)
    views = torch.stack([torch.stack([e1, 3 * e2]),  # orthogonal views: ‖Z‖_* = 2
                         torch.stack([e1, 0.5 * e1]),  # identical views: ‖Z‖_* = √2
                         torch.stack([e1, tilted])])  # σ = √(1 ± cos θ)
    local = (2 + math.sqrt(2) + math.sqrt(1 + math.cos(theta)) + math.sqrt(1 - math.cos(theta))) / 3
    scalars, sigma = centroid_capacity(views)
    assert scalars["local_nuclear"] == pytest.approx(local, abs=1e-12)
    m = torch.stack([(e1 + e2) / 2, e1, (e1 + tilted) / 2])  # the centroids
    assert torch.allclose(sigma, torch.linalg.svdvals(m), atol=1e-12)
    assert scalars["centroid_nuclear"] == pytest.approx(float(torch.linalg.svdvals(m).sum()))
    norms = (math.sqrt(0.5) + 1 + math.cos(theta / 2)) / 3
    assert scalars["centroid_norm"] == pytest.approx(norms, abs=1e-12)


@pytest.mark.parametrize("shape", [(7, 4, 5), (5, 3, 11), (40, 2, 16), (3, 6, 4)])
def test_the_instrument_agrees_with_svdvals_and_the_mmcr_loss(shape):
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=F64)
    scalars, sigma = centroid_capacity(z)
    centroids = mmcr_centroids(z)
    assert torch.allclose(sigma, torch.linalg.svdvals(centroids), atol=1e-10)
    assert scalars["centroid_nuclear"] == pytest.approx(
        float(torch.linalg.svdvals(centroids).sum()), rel=1e-12)
    assert scalars["ppe"] == pytest.approx(float(pretraining_percent_error(centroids)), abs=1e-12)
    for weight in (0.0, 5e-3, 0.7):  # L = −‖M‖_* + λ mean_n ‖Z_n‖_*
        expected = -scalars["centroid_nuclear"] + weight * scalars["local_nuclear"]
        assert float(mmcr_loss(z, local_weight=weight)) == pytest.approx(expected, rel=1e-12)
    z_float = z.float()  # float32 in, float64 inside
    assert centroid_capacity(z_float)[0]["ppe"] == pytest.approx(scalars["ppe"], abs=1e-6)
    assert torch.equal(z_float, z.float())  # not modified in place


def test_the_instrument_agrees_with_the_multimodal_loss():
    g = torch.Generator().manual_seed(4)
    z_a, z_b = (torch.randn(12, 6, generator=g, dtype=F64) for _ in range(2))
    pair = ViewPair(h_a=z_a, h_b=z_b, z_a=z_a, z_b=z_b)  # two views stacked: K = 2
    measured = INSTRUMENTS["capacity"](pair)
    assert -measured.scalars["z/centroid_nuclear"] == pytest.approx(
        float(mmcr_multimodal_loss(z_a, z_b)), rel=1e-12)
    assert measured.arrays["z/centroid_sv"].shape == (6,)
    assert measured.arrays["z/shape"].tolist() == [12, 6]


def test_singular_values_from_the_gram_matrix_match_svdvals():
    g = torch.Generator().manual_seed(0)
    for shape in ((50, 20), (20, 50), (8, 3, 7), (16, 16)):
        m = torch.randn(*shape, generator=g, dtype=F64)
        assert torch.allclose(singular_values(m), torch.linalg.svdvals(m), atol=1e-12)
    rank_one = torch.ones(64, 32, dtype=F64)
    assert singular_values(rank_one)[1:].max() < 1e-6 and (singular_values(rank_one) >= 0).all()


def test_the_instrument_reads_every_view_when_given_and_rejects_bad_shapes():
    g = torch.Generator().manual_seed(2)
    every = {name: torch.randn(10, 4, 8, generator=g) for name in ("h", "z")}
    pair = ViewPair(h_a=every["h"][:, 0], h_b=every["h"][:, 1], z_a=every["z"][:, 0],
                    z_b=every["z"][:, 1], all_views=every)
    measured = INSTRUMENTS["capacity"](pair)
    assert measured.scalars["z/ppe"] == pytest.approx(centroid_capacity(every["z"])[0]["ppe"])
    two = INSTRUMENTS["capacity"](ViewPair(pair.h_a, pair.h_b, pair.z_a, pair.z_b))
    assert two.scalars["z/ppe"] == pytest.approx(centroid_capacity(every["z"][:, :2])[0]["ppe"])
    assert set(measured.scalars) == {f"{n}/{k}" for n in ("h", "z") for k in (
        "centroid_nuclear", "capacity_bound", "ppe", "local_nuclear", "centroid_norm")}
    with pytest.raises(ValueError, match=r"\(P, K, D\)"):
        centroid_capacity(torch.zeros(4, 3))


# --- a run and its report ---------------------------------------------------------------

@pytest.mark.slow  # a training run; `make test` stays near 5 minutes
def test_a_two_view_run_logs_ppe_and_its_report_shows_the_section(tmp_path, finished_run):
    # VICReg with its two views: PPE is loggable for any method, not only MMCR.
    run = tmp_path / "vicreg"
    train(tiny_config(steps=6, instruments="capacity", instrument_points=4, instrument_batch=100),
          run, progress=False)
    record = RunRecord.load(run)
    steps, ppe = record.series("inst/z/ppe", rows="all")
    assert steps.size == 4 and ((ppe > 0) & (ppe < 1)).all()
    _, bound = record.series("inst/z/capacity_bound", rows="all")
    assert bound == pytest.approx(math.sqrt(100 * 64))  # P = 100 > D = 64
    _, local = record.series("inst/z/local_nuclear", rows="all")
    assert ((local >= math.sqrt(2) - 1e-9) & (local <= 2 + 1e-9)).all()  # K = 2
    arrays = record.arrays("capacity")
    assert arrays["z/centroid_sv"].shape == (4, 64) and arrays["h/centroid_sv"].shape == (4, 100)
    assert arrays["z/shape"][-1].tolist() == [100, 64]
    section = capacity_section(record)
    assert section is not None and section.anchor == "capacity"
    assert "random-centroid PPE" in section.html
    assert capacity_section in SECTIONS  # registered (its place: test_report_structure)
    page = build_report(run, sections=[capacity_section]).read_text(encoding="utf-8")
    assert '<h2>Manifold capacity</h2>' in page and (run / "figures" / "capacity.png").is_file()
    # A run without the instrument (spectrum and geometry only) has no such section. (Its
    # report is not built here: the shared run must stay as the core wrote it.)
    assert capacity_section(RunRecord.load(finished_run)) is None
