"""Report sections drawn from the final embeddings: spectrum, 2-D maps, nearest neighbours.

Each reads `RunRecord.embeddings` (``arrays/final_embeddings.safetensors``: h and z of the test
split and of training images, saved when training ends) and returns None when that file is
missing, so the report of an interrupted run still builds. No model is run.
"""

from __future__ import annotations

import math
from html import escape
from types import ModuleType
from typing import Any

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import cm, colors
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from sslscope.errors import UserError
from sslscope.instruments.spectrum import RANKME_EPS, effective_rank, eigenvalues, rankme
from sslscope.report.figures import embed_figure, mpl_text
from sslscope.report.page import MISSING, Section, SectionFn, percent
from sslscope.report.record import RunRecord

FEATURES = ("h", "z")
MAP_MAX_POINTS = 3000  # points drawn per panel; more make the SVG heavy and the plot a blob
MAP_SEED = 0  # which points are drawn when there are more, and UMAP's random_state
UMAP_PCA_DIMS = 50  # UMAP runs on the first 50 PCs: much faster, and the map barely changes
NN_MAX_CLASSES = 10
NN_K = 8
LEGEND_MAX_CLASSES = 20  # above this, a colour bar of the class index replaces the legend
MATCH, MISMATCH, QUERY = "#2e7d32", "#c62828", "black"


def spectrum_section(record: RunRecord) -> Section | None:
    """Covariance eigenvalues of the final test h and z, with effective rank and RankMe."""
    arrays = _arrays(record, "test/h", "test/z")
    if arrays is None:
        return None
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    facts = []
    for ax, feat in zip(fig.subplots(1, 2), FEATURES, strict=True):
        x = arrays[f"test/{feat}"]  # (N, D)
        eigvals = eigenvalues(x)  # (D,) float64, descending
        erank, rank_me = effective_rank(eigvals), rankme(x)
        lam = eigvals.numpy()
        k = np.arange(1, lam.size + 1)
        shown = lam > 0  # a log axis cannot show round-off zeros or negatives
        if shown.any():
            ax.plot(k[shown], lam[shown], marker=".", markersize=3,
                    color="C0" if feat == "h" else "C1")
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no variance: collapsed", ha="center", transform=ax.transAxes)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("k (eigenvalues in descending order)")
        ax.set_ylabel("eigenvalue λ_k of the covariance")
        ax.set_title(f"{feat} (D = {lam.size}): eff. rank {_num(erank)}, RankMe {_num(rank_me)}",
                     fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        facts.append(f"{feat} (D = {lam.size}): effective rank {_num(erank)}, "
                     f"RankMe {_num(rank_me)}")
    n = arrays["test/h"].shape[0]
    img = embed_figure(
        fig, record.files.figures, "spectrum", "eigenvalue spectra of the final h and z"
    )
    note = (
        f"Eigenvalues of the covariance (centred, divided by N − 1, float64) of the final "
        f"embeddings of the {n} test images, backbone output h (left) and projector output z "
        f"(right), largest first, on a log y axis; values ≤ 0 (round-off) are not drawn. "
        f"{'; '.join(facts)}. Effective rank: exp of the entropy of the eigenvalues normalised "
        f"to sum 1 (Roy &amp; Vetterli 2007). RankMe: exp of the entropy of the L1-normalised "
        f"singular values of the uncentred (N, D) matrix plus ε = {RANKME_EPS:g} (Garrido et "
        f"al., ICML 2023). Both range from 1 (one direction) to D (all directions used "
        f"equally); far below D means dimensional collapse."
    )
    return Section(
        "Spectrum of the final embeddings", f'{img}<p class="note">{note}</p>', "spectrum"
    )


def embedding_map_section(record: RunRecord) -> Section | None:
    """2-D maps of the final test h and z coloured by class: PCA always, UMAP when installed."""
    arrays = _arrays(record, "test/h", "test/z", "test/y")
    if arrays is None:
        return None
    y = arrays["test/y"].numpy().astype(np.int64)  # (N,)
    names, names_note = _class_names(record, y)
    panels: list[tuple[str, np.ndarray]] = []
    ratios = []
    for feat in FEATURES:
        coords, ratio = pca(arrays[f"test/{feat}"].numpy(), 2)
        panels.append((f"PCA of {feat}", coords))
        ratios.append(f"{percent(ratio[:2].sum())} % ({feat})")
    umap_note = _add_umap_panels(panels, arrays)
    n = y.size
    drawn = np.arange(n)
    if n > MAP_MAX_POINTS:
        drawn = np.sort(np.random.default_rng(MAP_SEED).choice(n, MAP_MAX_POINTS, replace=False))
    fig = _scatter_figure(panels, y, drawn, names)
    img = embed_figure(
        fig, record.files.figures, "embedding_map", "2-D maps of the final h and z"
    )
    note = (
        f"The {n} test images' final backbone output h (left) and projector output z (right), "
        f"projected onto their first two principal components (PCA by numpy SVD of the "
        f"centred float64 embeddings, no whitening), coloured by class{names_note}. The first "
        f"two PCs explain {' and '.join(ratios)} of the variance. {umap_note}"
    )
    if n > MAP_MAX_POINTS:
        note += (f" {MAP_MAX_POINTS} of the {n} points are drawn (a random subset, seed "
                 f"{MAP_SEED}); the projections used all of them.")
    return Section(
        "2-D maps of the embeddings", f'{img}<p class="note">{note}</p>', "embedding-map"
    )


def neighbours_section(record: RunRecord) -> Section | None:
    """For each class, one test image and its nearest training images by cosine similarity of h."""
    arrays = _arrays(record, "test/h", "test/y", "train/h", "train/y", "train/index")
    if arrays is None:
        return None
    title, anchor = "Nearest neighbours per class", "neighbours"
    try:
        data = record.dataset()
        _check_matches(data, arrays)
    except UserError as err:
        name = escape(str(record.config.get("dataset")))
        reason = escape(str(err).rstrip("."))
        body = f'<p class="note">No neighbour grid: the {name} images are needed ({reason}).</p>'
        return Section(title, body, anchor)

    test_y, train_y = arrays["test/y"].long(), arrays["train/y"].long()
    classes = [c for c in range(int(test_y.max()) + 1) if bool((test_y == c).any())]
    classes = classes[:NN_MAX_CLASSES]
    queries = [int((test_y == c).nonzero()[0]) for c in classes]  # first test image per class
    neighbours = nearest_neighbours(arrays["test/h"][queries], arrays["train/h"], NN_K)  # (Q, k)
    train_images = data.train_x[arrays["train/index"].long()]  # (N_train, C, H, W) uint8
    names = list(data.class_names)

    k = neighbours.shape[1]
    fig = Figure(figsize=(0.95 * (k + 1), 1.05 * len(classes) + 0.2))
    axes = np.asarray(fig.subplots(len(classes), k + 1, squeeze=False))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.97, bottom=0.01, wspace=0.12, hspace=0.45)
    matches = 0
    for row, (c, q) in enumerate(zip(classes, queries, strict=True)):
        _show_image(axes[row, 0], data.test_x[q], f"query: {names[c]}", QUERY, bold=True)
        for j, i in enumerate(neighbours[row].tolist()):
            label = int(train_y[i])
            matches += label == c
            colour = MATCH if label == c else MISMATCH
            _show_image(axes[row, j + 1], train_images[i], names[label], colour)
    img = embed_figure(
        fig, record.files.figures, "neighbours", "nearest training images per class"
    )
    total = len(classes) * k
    note = (
        f"For each of the first {len(classes)} classes, the first test image of that class "
        f"(left, black border) and its {k} nearest training images by cosine similarity of the "
        f"backbone output h, nearest first, among the {train_y.numel()} training images saved "
        f"with the run. Green border and title: same class as the query; red: another class. "
        f"{matches} of {total} neighbours ({percent(matches / total)} %) share the query's class."
    )
    return Section(title, f'{img}<p class="note">{note}</p>', anchor)


SECTIONS: list[SectionFn] = [spectrum_section, embedding_map_section, neighbours_section]


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Scores on the first `k` principal components, by SVD of the centred data.

        x − x̄ = U S Vᵀ,   scores = U[:, :k] S[:k],   ratio_i = S_i² / Σ_j S_j²

    Args:
        x: data, shape (N, D); cast to float64 and centred (the input is not modified).
        k: number of components; fewer columns exist when min(N, D) < k, and the scores are
            then padded with zeros to k columns.

    Returns:
        ``(scores, ratio)``: shape (N, k) and (min(k, N, D),), float64. ``ratio`` is the
        fraction of the total variance each component explains (NaN if there is none). Signs
        are fixed so the largest-magnitude loading of each component is positive, as
        scikit-learn's ``svd_flip`` does, so a rebuilt report draws the same map.
    """
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    m = min(k, s.size)
    signs = np.sign(vt[np.arange(m), np.abs(vt[:m]).argmax(axis=1)])
    signs[signs == 0] = 1.0
    scores = np.zeros((x.shape[0], k))
    scores[:, :m] = u[:, :m] * (s[:m] * signs)
    var = s**2
    ratio = var[:m] / var.sum() if var.sum() > 0 else np.full(m, np.nan)
    return scores, ratio


def nearest_neighbours(queries: Tensor, keys: Tensor, k: int) -> Tensor:
    """Indices of the `k` rows of `keys` with the highest cosine similarity to each query.

    Args:
        queries: shape (Q, D); keys: shape (N, D). Both L2-normalised inside, in float64.
        k: neighbours per query; at most N are returned.

    Returns:
        int64, shape (Q, min(k, N)), most similar first.
    """
    q = F.normalize(queries.to(torch.float64), dim=1)
    keys = F.normalize(keys.to(torch.float64), dim=1)
    return (q @ keys.T).topk(min(k, keys.shape[0]), dim=1).indices  # (Q, N) → (Q, k)


def _arrays(record: RunRecord, *keys: str) -> dict[str, Tensor] | None:
    """The embeddings file's arrays if it exists and has every key in `keys`, else None."""
    arrays = record.embeddings
    if arrays is None or any(key not in arrays for key in keys):
        return None
    return arrays


def _class_names(record: RunRecord, y: np.ndarray) -> tuple[list[str], str]:
    """Class names from the data set, or the integer labels (and a caption note saying so)."""
    needed = int(y.max()) + 1 if y.size else 0
    try:
        names = list(record.dataset().class_names)
        if len(names) >= needed:
            return names, ""
    except UserError:
        pass
    note = " (integer labels: the data set could not be loaded for its class names)"
    return [str(c) for c in range(needed)], note


def _add_umap_panels(panels: list[tuple[str, np.ndarray]], arrays: dict[str, Tensor]) -> str:
    """Append UMAP maps of h and z to `panels` when umap-learn imports; return the caption part."""
    umap = _import_umap()
    if umap is None:
        return "UMAP maps are added when umap-learn is installed (pip install umap-learn)."
    try:
        for feat in FEATURES:
            reduced = pca(arrays[f"test/{feat}"].numpy(), UMAP_PCA_DIMS)[0]
            reducer = umap.UMAP(n_components=2, random_state=MAP_SEED, n_jobs=1)
            panels.append((f"UMAP of {feat}", np.asarray(reducer.fit_transform(reduced))))
    # umap-learn is optional third-party code; whatever it raises must not cost the report.
    except Exception as err:  # noqa: BLE001
        del panels[len(FEATURES):]
        reason = escape(f"{type(err).__name__}: {err}")
        return f"UMAP failed ({reason}), so it is not drawn."
    return (f"Bottom row: UMAP (umap-learn, 2-D, default n_neighbors and min_dist, random_state "
            f"{MAP_SEED}) of the first {UMAP_PCA_DIMS} principal components of each.")


def _import_umap() -> ModuleType | None:
    try:
        import umap
    except ImportError:
        return None
    return umap


def robust_limits(values: np.ndarray, share: float = 0.01) -> tuple[float, float]:
    """Axis limits holding all but the outer ``share`` of the points on each side, padded 5 %.

    A few outliers far out would otherwise squeeze every other point of a PCA map into a corner
    (found: 450 test points in one corner). The outliers stay drawn, beyond the frame.
    """
    low, high = np.quantile(values, [share, 1 - share])
    pad = 0.05 * (high - low) or 1.0
    return float(low - pad), float(high + pad)


def _scatter_figure(
    panels: list[tuple[str, np.ndarray]], y: np.ndarray, drawn: np.ndarray, names: list[str]
) -> Figure:
    """Two panels per row (h, z); one colour per class, shared legend or colour bar."""
    rows = math.ceil(len(panels) / 2)
    fig = Figure(figsize=(9.0, 4.0 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, 2, squeeze=False)).ravel()
    n_classes = len(names)
    if n_classes <= 10:
        colour = [matplotlib.colormaps["tab10"](c) for c in range(n_classes)]
    elif n_classes <= LEGEND_MAX_CLASSES:
        colour = [matplotlib.colormaps["tab20"](c) for c in range(n_classes)]
    else:
        turbo = matplotlib.colormaps["turbo"]
        colour = [turbo(c / (n_classes - 1)) for c in range(n_classes)]
    present = np.unique(y[drawn])
    for ax, (title, coords) in zip(axes, panels, strict=False):
        for c in present:
            pts = coords[drawn][y[drawn] == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.75, color=colour[c], linewidths=0,
                       label=mpl_text(names[c]))
        ax.set_title(title, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(*robust_limits(coords[drawn, 0]))
        ax.set_ylim(*robust_limits(coords[drawn, 1]))
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if n_classes <= LEGEND_MAX_CLASSES:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", markerscale=2.5,
                   fontsize="small", title="class")
    else:
        mappable = cm.ScalarMappable(norm=colors.Normalize(0, n_classes - 1), cmap="turbo")
        fig.colorbar(mappable, ax=list(axes), label="class index", shrink=0.8)
    return fig


def _show_image(ax: Any, image: Tensor, title: str, colour: str, bold: bool = False) -> None:
    """Draw one uint8 (C, H, W) image without ticks, framed and titled in `colour`."""
    pixels = image.numpy()
    if pixels.shape[0] == 3:
        ax.imshow(pixels.transpose(1, 2, 0), interpolation="nearest")
    else:  # grayscale (any other channel count shows its first channel)
        ax.imshow(pixels[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3.0 if not bold else 2.0)
    ax.set_title(mpl_text(title), fontsize=7, color=colour,
                 fontweight="bold" if bold else "normal", pad=2)


def _check_matches(data: Any, arrays: dict[str, Tensor]) -> None:
    """Raise UserError unless the loaded data set is the one the arrays were computed on."""
    index = arrays["train/index"].long()
    ok = (
        index.numel() > 0
        and int(index.max()) < data.train_x.shape[0]
        and int(index.min()) >= 0
        and torch.equal(data.train_y[index].long(), arrays["train/y"].long())
        and torch.equal(data.test_y.long(), arrays["test/y"].long())
    )
    if not ok:
        raise UserError("the data set on disk does not match the saved embeddings' labels")


def _num(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else MISSING


