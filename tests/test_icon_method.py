"""`--method icon`: I-Con as a trainable method, against hand-written references.

Targets asserted (float64, 1e-12 unless said): p = augmentation, q = Gaussian on cosine, KL is
NT-Xent at τ = 2σ² (I-Con Thm 3), and for V = 3 views NT-Xent minus log 2 = H(p); q = Student-t
is the cross-entropy of the positive under the normalised Cauchy kernel (t-SimCLR, Cor. 2);
debiasing α is KL(p̃ ‖ q) with p̃ = (1 − α) p + α / (B − 1) written out; the
augmentation + k-NN kernel is ½ (positive + uniform over the k nearest) built by argsort; bad
options and misplaced flags are one sentence and status 2; the CLI trains it with its flags.
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from sslscope.cli import main
from sslscope.losses import METHODS
from sslscope.losses.contrastive import nt_xent_loss
from sslscope.losses.icon import icon_method_loss, supervisory_kernel


def views(n=12, d=5, v=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(v)]


def test_augmentation_gaussian_kl_is_nt_xent():
    za, zb = views()
    for sigma in (0.5, 0.7):
        assert float(icon_method_loss(za, zb, sigma=sigma)) == pytest.approx(
            float(nt_xent_loss(za, zb, temperature=2 * sigma**2)), abs=1e-12)
    three = views(v=3, seed=1)  # p uniform over 2 positives: KL = cross-entropy − log 2
    assert float(icon_method_loss(*three)) == pytest.approx(
        float(nt_xent_loss(*three, temperature=0.5)) - math.log(2), abs=1e-12)
    assert float(icon_method_loss(*three, divergence="cross_entropy")) == pytest.approx(
        float(nt_xent_loss(*three, temperature=0.5)), abs=1e-12)


def test_student_t_is_the_positive_cross_entropy_under_the_cauchy_kernel():
    za, zb = views(seed=2)
    z = torch.cat([za, zb])  # (B, D), view-major
    b, n = z.shape[0], za.shape[0]
    kernel = 1 / (1 + torch.cdist(z, z) ** 2)  # ν = 1
    kernel.fill_diagonal_(0)
    q = kernel / kernel.sum(1, keepdim=True)
    positive = (torch.arange(b) + n) % b
    expected = -torch.log(q[torch.arange(b), positive]).mean()
    assert float(icon_method_loss(za, zb, q="student_t")) == pytest.approx(float(expected),
                                                                           abs=1e-12)


def test_debiasing_is_kl_to_the_mixed_p():
    za, zb = views(seed=3)
    z = F.normalize(torch.cat([za, zb]), dim=1)
    b, n, alpha = z.shape[0], za.shape[0], 0.4
    logits = z @ z.T / 0.5
    logits.fill_diagonal_(-math.inf)
    log_q = torch.log_softmax(logits, dim=1)
    p = torch.full((b, b), alpha / (b - 1), dtype=torch.float64)
    p[torch.arange(b), (torch.arange(b) + n) % b] += 1 - alpha
    p.fill_diagonal_(0)
    off = ~torch.eye(b, dtype=torch.bool)
    expected = (p[off] * (p[off].log() - log_q[off])).sum() / b
    assert float(icon_method_loss(za, zb, debias=alpha)) == pytest.approx(float(expected),
                                                                          abs=1e-12)
    reverse = icon_method_loss(za, zb, debias=alpha, divergence="reverse_kl")
    q = log_q.exp()
    assert float(reverse) == pytest.approx(
        float((q[off] * (log_q[off] - p[off].log())).sum() / b), abs=1e-12)


def test_augmentation_knn_kernel_by_argsort():
    za, zb = views(n=6, d=3, seed=4)
    z = torch.cat([za, zb])
    b, k = z.shape[0], 2
    p = supervisory_kernel(z, 2, p="augmentation_knn", knn_k=k, walk_length=1)
    cos = F.normalize(z, dim=1) @ F.normalize(z, dim=1).T
    cos.fill_diagonal_(-2)
    expected = torch.zeros(b, b, dtype=torch.float64)
    expected[torch.arange(b), (torch.arange(b) + 6) % b] += 0.5
    for i in range(b):
        expected[i, cos[i].argsort(descending=True)[:k]] += 0.5 / k
    torch.testing.assert_close(p, expected, rtol=0, atol=1e-15)
    assert torch.allclose(p.sum(1), torch.ones(b, dtype=torch.float64))
    walked = supervisory_kernel(z, 2, p="augmentation_knn", knn_k=k, walk_length=2)
    assert torch.allclose(walked.sum(1), torch.ones(b, dtype=torch.float64))
    assert (walked.diagonal() == 0).all() and (walked > 0).sum() > (p > 0).sum()


def test_the_method_declares_its_flags_and_defaults():
    method = METHODS["icon"]
    assert method.flags == {"--icon-p": "p", "--icon-q": "q", "--debias": "debias"}
    assert method.defaults()["q"] == "gaussian" and method.defaults()["debias"] == 0.0


@pytest.mark.parametrize("argv, sentence", [
    (["--method", "icon", "--icon-q", "bogus"],
     "--method icon: q must be one of gaussian, student_t, gaussian_distance, got 'bogus'"),
    (["--method", "icon", "--debias", "1.5"], "--method icon: debias must be in [0, 1), got 1.5"),
    (["--method", "icon", "--loss", "divergence=reverse_kl"], "reverse_kl needs debias > 0"),
    (["--method", "vicreg", "--debias", "0.4"],
     "--debias is an option of --method icon, not of vicreg"),
    (["--debias", "0.4"], "--debias is an option of --method icon, not of vicreg"),  # demo
])
def test_bad_icon_options_are_one_sentence(tmp_path, capsys, argv, sentence):
    assert main(["train", *argv, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_trains_t_simclr_debiased(tmp_path):
    run = tmp_path / "r"
    assert main(["train", "--method", "icon", "--icon-p", "augmentation", "--icon-q",
                 "student_t", "--debias", "0.4", "--steps", "4", "--warmup-steps", "1",
                 "--batch-size", "32", "--backbone", "linear:16", "--projector-dims", "16",
                 "--eval-points", "0", "--instruments", "", "--device", "cpu",
                 "--run-dir", str(run), "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["method"] == "icon"
    assert cfg["loss_kwargs"] == {"p": "augmentation", "q": "student_t", "debias": 0.4}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert all(math.isfinite(r["train/loss/kl"]) for r in rows if "train/loss/kl" in r)
