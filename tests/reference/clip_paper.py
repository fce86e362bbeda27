"""CLIP's symmetric loss written from the paper's Figure 3 NumPy-like pseudo-code.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021, arXiv:2103.00020, Figure 3:

    I_e = l2_normalize(np.dot(I_f, W_i), axis=1)
    T_e = l2_normalize(np.dot(T_f, W_t), axis=1)
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    labels = np.arange(n)
    loss_i = cross_entropy_loss(logits, labels, axis=0)
    loss_t = cross_entropy_loss(logits, labels, axis=1)
    loss = (loss_i + loss_t)/2

The projections W_i, W_t are the caller's (the inputs here are already projected). The
pseudo-code leaves ``cross_entropy_loss(..., axis)`` undefined; it is spelt out below as the mean
over samples of −log softmax taken along ``axis``. Cross-checked in the tests against
``clip_open_clip``, transcribed from mlfoundations/open_clip@89fb801f, src/open_clip/loss.py,
ClipLoss.get_logits (single-process branch, L109–L110) and ClipLoss.forward (L136–L139), MIT
licence; the all-gather branch and the label cache are dropped.
"""

import numpy as np
import torch
import torch.nn.functional as F


def _l2_normalize(x, axis):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def _cross_entropy_loss(logits, labels, axis):
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=axis, keepdims=True))
    picked = log_softmax[labels, labels]  # the diagonal, normalised along ``axis``
    return -float(np.mean(picked))


def clip_paper(I_f: np.ndarray, T_f: np.ndarray, t: float) -> float:
    n = I_f.shape[0]
    I_e = _l2_normalize(I_f, axis=1)
    T_e = _l2_normalize(T_f, axis=1)
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    labels = np.arange(n)
    loss_i = _cross_entropy_loss(logits, labels, axis=0)
    loss_t = _cross_entropy_loss(logits, labels, axis=1)
    return (loss_i + loss_t) / 2


def clip_open_clip(image_features, text_features, logit_scale):
    """open_clip's ClipLoss on normalised features; ``logit_scale`` is exp(s), as there."""
    logits_per_image = logit_scale * image_features @ text_features.T
    logits_per_text = logit_scale * text_features @ image_features.T
    labels = torch.arange(logits_per_image.shape[0], device=image_features.device)
    total_loss = (
        F.cross_entropy(logits_per_image, labels) +
        F.cross_entropy(logits_per_text, labels)
    ) / 2
    return total_loss
