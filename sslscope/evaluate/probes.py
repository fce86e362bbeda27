"""Linear probe: L2-regularised multinomial logistic regression on frozen features.

One public function, :func:`linear_probe`, which searches the weight decay on a held-out part of
the train split, refits on the whole train split and reports accuracies. It is a pure function
of tensors and runs on their device; it reads numbers back from the device once per fit (the
L-BFGS line search does so on every step, which is inherent to it), never per mini-batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sslscope.data.splits import stratified_split
from sslscope.evaluate.neighbours import check_labelled, infer_num_classes


@dataclass(frozen=True)
class LinearProbeResult:
    """Accuracies (fractions in [0, 1]) of a linear probe and the weight decay it chose.

    Attributes:
        test_acc: accuracy on the test split of the model refit on the whole train split.
        train_acc: accuracy of that model on the whole train split.
        val_acc: accuracy on the validation part of the train split, of the model fit on the
            rest at the chosen weight decay; NaN when ``val_fraction=0`` (no search).
        weight_decay: the chosen weight decay.
    """

    test_acc: float
    train_acc: float
    val_acc: float
    weight_decay: float

    def as_dict(self) -> dict[str, float]:
        """The four fields as a flat ``{name: value}`` dict, e.g. for a metrics line."""
        return asdict(self)


def linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    num_classes: int | None = None,
    weight_decays: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    val_fraction: float = 0.2,
    max_iter: int = 1000,
    batch_size: int | None = None,
    epochs: int = 100,
    lr: float = 3e-2,
    seed: int = 0,
) -> LinearProbeResult:
    r"""Linear-probe accuracy of frozen features, with the weight decay chosen on validation.

    Features are standardised per dimension with the mean and (biased) standard deviation of the
    split the model is fit on; constant dimensions are only centred. Standardising makes one
    weight-decay grid fit backbone outputs ``h`` and projector outputs ``z`` alike, whatever
    their scale, and makes the absolute optimiser tolerances meaningful. The model is
    multinomial logistic regression, with the bias left out of the penalty:

        L(W, b) = (1/N) Σ_i −log softmax(W x̃_i + b)_{y_i}  +  weight_decay · ‖W‖²_F

    Search: a stratified, seeded ``val_fraction`` of the train split is held out
    (:func:`sslscope.data.splits.stratified_split`); the model is fit on the rest for every
    weight decay and the one with the most correct validation predictions wins (ties go to the
    larger weight decay, the simpler model). The model is then refit on the whole train split
    with that weight decay.

    Optimisers:
        - ``batch_size=None`` (full batch): ``torch.optim.LBFGS`` with strong-Wolfe line search
          on the exact gradient, to convergence (max |∂L| ≤ 1e-6 in float32, 1e-9 in float64,
          or no more progress), at most ``max_iter`` iterations. Weight decays are fit from the
          largest down, each warm-started from the previous solution (a regularisation path),
          and the refit is warm-started from the chosen solution. The objective is convex and
          strictly so in W, so warm starts change the cost, not the predictions (up to the
          tolerance). In float32 the search's fits stop at max |∂L| ≤ 1e-5: they only rank
          the weight decays, and on digits and on the bench's Gaussian mixtures (up to
          20,000 × 512 tried) they chose the weight decay that fits to 1e-6 choose, with the
          same validation accuracy to within a few samples, in 1.2–1.9× less time; the
          refit, whose accuracies are reported, goes to 1e-6.
        - ``batch_size=B`` (mini-batch, for N · D too large for full batch): ``epochs`` epochs
          of Adam on the same objective (the penalty is in the loss, not decoupled), learning
          rate ``lr`` decayed to 0 by a cosine over all steps, batches drawn by a generator
          seeded with ``seed``, from zero weights (the refit from the chosen solution). All
          weight decays train together in one stacked (K, C, D) weight tensor: Adam acts
          element by element, so this is exactly K independent runs that share the passes over
          the data.

    Everything runs on the device of ``train_x`` in float32 (float64 inputs stay float64).
    Cost: ~0.1 s for the full search on N = 1,400, D = 256, C = 10 on two CPU cores; the first
    call in a process adds ~1 s, the one-time import that any ``torch.optim`` optimiser triggers.

    Args:
        train_x: train features, shape (N, D); standardised inside, not modified.
        train_y: integer labels, shape (N,), values in [0, C), at least two distinct classes.
        test_x: test features, shape (M, D); standardised with the train statistics.
        test_y: integer labels, shape (M,).
        num_classes: C; 1 + the largest label in train_y and test_y when None.
        weight_decays: grid of the penalty weight above, searched in decades. Measured on
            standardised features: digits pixels pick 1e-3 (neighbouring decades lose < 1
            point), noisy Gaussian classes 1e-1 or 1. Much above 1 the penalty shrinks W until
            the unpenalised bias (the log class priors) outweighs it, and unless the classes
            are exactly balanced accuracy falls towards the majority class, so the grid stops
            at 1. At 1e-6 (sklearn C ≈ 360 for N = 1,400) the fit is as good as unregularised.
            SimCLR's transfer protocol searches 45 log-spaced values in [1e-6, 1e5] of a
            differently scaled penalty; decades are enough for a monitor and keep the search
            to 7 fits.
        val_fraction: share of each class held out for the search; 0 skips the search (then
            ``weight_decays`` must hold a single value and ``val_acc`` is NaN).
        max_iter: L-BFGS iterations per fit (full-batch mode only). Fits converge in 10–100
            iterations on the tests' problems; 1000 only bounds pathological cases.
        batch_size: None for full-batch L-BFGS; an int B for mini-batch Adam.
        epochs: passes over the data per fit (mini-batch mode only). With 100 epochs and
            B = 256, mini-batch mode is within a point of full batch on digits and on the
            tests' synthetic problems; it falls short mainly at small weight decays on
            correlated features, where Adam has not converged.
        lr: Adam's peak learning rate (mini-batch mode only). 3e-2 was best or tied among
            1e-2, 3e-2 and 1e-1 on those problems (standardised inputs).
        seed: seeds the validation split and the mini-batch order.

    Returns:
        A :class:`LinearProbeResult` of Python floats.

    Raises:
        ValueError: on shapes that do not match, non-integer or negative labels, NaN or infinite
            features, fewer than two classes, an empty grid, or a ``val_fraction`` that holds
            out no sample (every class too small).

    References:
        Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
        ICML 2020, arXiv:2002.05709, App. B.8 (L-BFGS, ℓ2 weight chosen on a validation split,
        refit on train + validation).
        Ericsson, Gouk & Hospedales, "How Well Do Self-Supervised Models Transfer?", CVPR 2021,
        arXiv:2011.13377 (the same protocol on standardised features; code
        linusericsson/ssl-transfer, linear.py).
    """
    check_labelled(train_x, train_y, "train")
    check_labelled(test_x, test_y, "test", train_x)
    wds = sorted({float(wd) for wd in weight_decays}, reverse=True)  # largest first: path order
    if not wds or wds[-1] < 0:
        raise ValueError(
            f"weight_decays must be a non-empty grid of values ≥ 0, got {tuple(weight_decays)}"
        )
    if not 0 <= val_fraction < 1 or (val_fraction == 0 and len(wds) > 1):
        raise ValueError(
            f"val_fraction must be in [0, 1), and 0 only with a single weight "
            f"decay; got {val_fraction} with {len(wds)} weight decays"
        )
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be None or ≥ 1, got {batch_size}")
    if num_classes is None:
        num_classes = infer_num_classes(train_y, test_y)
    classes = torch.unique(train_y).tolist()  # sorted
    if len(classes) < 2 or classes[0] < 0 or classes[-1] >= num_classes:
        raise ValueError(
            f"train_y must hold at least two classes, all in [0, {num_classes}); "
            f"got {len(classes)} distinct labels from {classes[0]} to {classes[-1]}"
        )
    train_y, test_y = train_y.long(), test_y.long()

    dtype = torch.float64 if train_x.dtype == torch.float64 else torch.float32
    train_x, test_x = train_x.to(dtype), test_x.to(dtype)

    def fit(x: Tensor, y: Tensor, grid: list[float], init: tuple[Tensor, Tensor] | None,
            search: bool = False):
        if batch_size is None:
            return _fit_lbfgs(x, y, num_classes, grid, init, max_iter=max_iter, search=search)
        return _fit_adam(
            x, y, num_classes, grid, init, batch_size=batch_size, epochs=epochs, lr=lr, seed=seed
        )

    val_acc, best, init = math.nan, 0, None
    if val_fraction > 0:
        fit_idx, val_idx = stratified_split(train_y, val_fraction, seed)
        if val_idx.numel() == 0:  # a shape, not a read from the device
            raise ValueError(
                f"val_fraction={val_fraction} leaves no validation sample; use more "
                f"data, a larger val_fraction, or val_fraction=0 with one weight decay"
            )
        mean, std = _moments(train_x[fit_idx])
        w, b = fit((train_x[fit_idx] - mean) / std, train_y[fit_idx], wds, None,  # (K, C, D)
                   search=True)
        correct = _correct((train_x[val_idx] - mean) / std, train_y[val_idx], w, b)  # (K,)
        correct_list = correct.tolist()
        # wds is descending, and index() finds the first maximum: ties go to the larger wd.
        best = correct_list.index(max(correct_list))
        val_acc = correct_list[best] / val_idx.numel()
        init = (w[best], b[best])

    mean, std = _moments(train_x)
    train_s, test_s = (train_x - mean) / std, (test_x - mean) / std
    w, b = fit(train_s, train_y, [wds[best]], init)  # (1, C, D), (1, C)
    train_correct = _correct(train_s, train_y, w, b)
    test_correct = _correct(test_s, test_y, w, b)
    counts = torch.cat([train_correct, test_correct]).tolist()
    return LinearProbeResult(
        test_acc=counts[1] / test_y.numel(),
        train_acc=counts[0] / train_y.numel(),
        val_acc=val_acc,
        weight_decay=wds[best],
    )


def _moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-dimension mean and biased std of (N, D) features, each (D,), for standardising.

    A dimension whose std is at rounding-error level relative to its mean is constant: its std
    is replaced by 1, so it is centred but not blown up into noise (sklearn's StandardScaler
    does the same).
    """
    std, mean = torch.std_mean(x, dim=0, correction=0)
    constant = std <= 100 * torch.finfo(x.dtype).eps * mean.abs()
    return mean, torch.where(constant, 1.0, std)


def _correct(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Number of correct predictions per stacked model: x (N, D), w (K, C, D), b (K, C) -> (K,)."""
    logits = torch.einsum("nd,kcd->knc", x, w) + b[:, None, :]  # (K, N, C)
    return (logits.argmax(-1) == y).sum(1)


def _fit_lbfgs(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    weight_decays: list[float],
    init: tuple[Tensor, Tensor] | None,
    *,
    max_iter: int,
    search: bool = False,
) -> tuple[Tensor, Tensor]:
    """Full-batch L-BFGS fits along the weight-decay path; returns w (K, C, D), b (K, C).

    ``search``: the fits only rank weight decays; float32 fits then stop at 1e-5, not 1e-6.
    """
    n, d = x.shape
    rows = torch.arange(n, device=x.device)
    # Absolute tolerances suit the standardised problem, whose gradients start O(1). Float32
    # stalls near max |∂L| ~ 1e-6 (probabilities then agree with a float64 solve to ~1e-4).
    # The loss is summed in float64 even for float32 inputs: a float32 mean resolves changes
    # of only ~1e-7, and L-BFGS stops early when it sees one step with no change in the loss.
    # (Ten times looser, a float32 fit differs from a float64 solve by ~2e-3 in probability at
    # weight decay 1e-4, too much for the reported model, but not for ranking weight decays.)
    tol_grad, tol_change = (1e-9, 1e-14) if x.dtype == torch.float64 else (
        1e-5 if search else 1e-6, 1e-10)
    log_tiny = math.log(torch.finfo(x.dtype).tiny) + 1  # exp of it is a normal float
    if init is None:
        w, b = x.new_zeros(num_classes, d), x.new_zeros(num_classes)
    else:
        w, b = init[0].clone(), init[1].clone()
    ws, bs = [], []
    for wd in weight_decays:
        opt = torch.optim.LBFGS(
            [w, b],
            lr=1,
            max_iter=max_iter,
            max_eval=2 * max_iter,
            tolerance_grad=tol_grad,
            tolerance_change=tol_change,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure(wd: float = wd) -> Tensor:
            # The gradient is written out rather than taken by autograd: it is two matmuls,
            # and skipping the graph halves the cost of each of the many small evaluations.
            logp = torch.addmm(b, x, w.T).log_softmax(1)  # (N, C)
            loss = (
                wd * w.square().sum(dtype=torch.float64)
                - logp[rows, y].sum(dtype=torch.float64) / n
            )
            # Softmax probabilities, (N, C), floored at the smallest normal float: as the fit
            # sharpens, exp underflows to denormals, on which x86 matrix products run several
            # times slower (~40 % of a 20,000 × 512 probe's time went there). The floor moves
            # the gradient by ~1e-36; the division by N comes after the product, where it
            # cannot make denormals again.
            resid = logp.clamp_min_(log_tiny).exp_()
            resid[rows, y] -= 1  # ∂(Σ_i CE_i)/∂logits = p − onehot
            w.grad = torch.addmm(w, resid.T, x, beta=2 * wd, alpha=1 / n)  # (C, D)
            b.grad = resid.sum(0) / n  # (C,)
            return loss

        opt.step(closure)
        ws.append(w.clone())
        bs.append(b.clone())
    return torch.stack(ws), torch.stack(bs)


def _fit_adam(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    weight_decays: list[float],
    init: tuple[Tensor, Tensor] | None,
    *,
    batch_size: int,
    epochs: int,
    lr: float,
    seed: int,
) -> tuple[Tensor, Tensor]:
    """Mini-batch Adam fits of all weight decays at once; returns w (K, C, D), b (K, C)."""
    n, d = x.shape
    k = len(weight_decays)
    wd = torch.tensor(weight_decays, dtype=x.dtype, device=x.device)  # (K,)
    if init is None:
        w = x.new_zeros(k, num_classes, d)
        b = x.new_zeros(k, num_classes)
    else:
        w = init[0].expand(k, -1, -1).clone()
        b = init[1].expand(k, -1).clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.Adam([w, b], lr=lr)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen, device=x.device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            logits = torch.einsum("nd,kcd->knc", xb, w) + b[:, None, :]  # (K, B, C)
            # Sum over the K runs of each run's mean loss: the runs do not share gradients.
            ce = (
                F.cross_entropy(logits.reshape(-1, num_classes), yb.repeat(k), reduction="sum")
                / yb.numel()
            )
            loss = ce + (wd * w.square().sum((1, 2))).sum()
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return w.detach(), b.detach()
