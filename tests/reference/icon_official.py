"""I-Con kernels and divergences transcribed from the authors' code, for equality tests.

Source: ShadeAlsha/ICon@afbf34f33e10bd3ddccb99aa48bf30e35ad37a72 (2026-02-18). Licence: the
repository has no LICENSE file at this commit (nor a licence statement in its README); these
short excerpts are transcribed for test comparison only and are not part of the package.

Transcribed, operation by operation:
- distributions/utils.py L3–6, fill_diagonal
- distributions/distance.py L51–57 DistanceKernel._euclidean_distance (returns the SQUARED
  distance), L59–63 _cosine_distance, L115–128 Gaussian._compute, L167–197 StudentT._compute
- distributions/graph.py L17–41 UniformKNN._compute, L51–73 Label._compute
- distributions/clustering.py L26–44 UniformCluster._compute
- distributions/base.py L170–180 LeakKernel._compute
- playground/divergences.py L21–52 kl_divergence, L55–95 reverse_kl_divergence

Differences from the original: module attributes (sigma, metric, mask_diagonal, df, gamma, k,
eps) became arguments; the Kernel dispatch on dict batches is dropped. The flags named
``normalize`` in the originals read ``self.normalize``, which ``Kernel.__init__`` never sets,
so it is the bound *method* ``Kernel.normalize`` and always truthy: the normalising branch
always runs (house-style bug 4). It is transcribed here as always running. ``p`` is 2 for the
cosine distance (the ``DistanceKernel`` default).
"""

import torch
import torch.nn.functional as F


def fill_diagonal(tensor, value):
    mask = torch.eye(tensor.shape[0], device=tensor.device, dtype=torch.bool)
    tensor = tensor.masked_fill(mask, value)
    return tensor


def euclidean_distance(x1, x2):
    x1_norm = (x1**2).sum(1).view(-1, 1)
    x2_norm = (x2**2).sum(1).view(1, -1)
    dist = x1_norm + x2_norm - 2.0 * torch.mm(x1, x2.t())
    return torch.clamp(dist, 0.0, float("inf"))


def cosine_distance(x1, x2):
    x1_normalized = F.normalize(x1, p=2, dim=1)
    x2_normalized = F.normalize(x2, p=2, dim=1)
    return 1 - torch.mm(x1_normalized, x2_normalized.t())


def _distances(features, metric):
    return {"euclidean": euclidean_distance, "cosine": cosine_distance}[metric](features, features)


def gaussian(features, sigma, metric="euclidean", mask_diagonal=True, return_log=True):
    distances = _distances(features, metric)
    if mask_diagonal:
        distances = fill_diagonal(distances, float("inf"))

    logits = -distances / (2 * sigma**2)

    if return_log:
        affinities = F.log_softmax(logits, dim=1)
    else:
        affinities = F.softmax(logits, dim=1)
    return affinities


def student_t(
    features, gamma=1.0, df=1.0, metric="euclidean", mask_diagonal=True, return_log=False
):
    gamma = torch.tensor(float(gamma), dtype=features.dtype)
    distances = _distances(features, metric)

    if mask_diagonal:
        distances = fill_diagonal(distances, float("inf"))

    squared_distances = distances**2

    if return_log:
        log_term = (df / 2) * (torch.log(squared_distances + 1e-8) - 2 * torch.log(gamma))
        log_denominator = torch.log1p(torch.exp(log_term))
        affinities = -log_denominator
    else:
        affinities = 1 / (1 + (squared_distances / gamma**2) ** (df / 2))

    # `if self.normalize:` is always true (bound method), see the module docstring
    if return_log:
        affinities = affinities - torch.logsumexp(affinities, dim=1, keepdim=True)
    else:
        affinities = F.normalize(affinities, p=1, dim=1)

    return affinities


def uniform_knn(features, k, metric="euclidean", mask_diagonal=True, eps=0.0):
    distances = _distances(features, metric)

    if mask_diagonal:
        distances.fill_diagonal_(float("inf"))

    _, nn_idx = torch.topk(distances, k=min(k, distances.size(1)), dim=1, largest=False)

    n = distances.size(0)
    adj_matrix = torch.zeros_like(distances)
    row_idx = torch.arange(n, device=distances.device).view(-1, 1).expand(-1, k)
    adj_matrix[row_idx.flatten(), nn_idx.flatten()] = 1.0

    # `if self.normalize:` is always true
    deg = adj_matrix.sum(dim=1, keepdim=True)
    adj_matrix = adj_matrix / (deg + eps)

    return adj_matrix


def label(labels, pairwise=True, num_classes=None, mask_diagonal=True, eps=0.0):
    labels1 = labels2 = labels
    if not pairwise:
        labels2 = torch.arange(num_classes, device=labels2.device)

    adj_matrix = (labels1.unsqueeze(1) == labels2.unsqueeze(0)).float()

    if mask_diagonal and pairwise:
        adj_matrix.fill_diagonal_(0)

    # `if self.normalize:` is always true
    row_sums = adj_matrix.sum(dim=1, keepdim=True)
    adj_matrix = adj_matrix / (row_sums + eps)

    return adj_matrix


def uniform_cluster(cluster_probs, mask_diagonal=False, eps=0.0, return_log=True):
    probs1 = probs2 = cluster_probs

    cluster_sizes = probs1.sum(dim=0)

    kernel = (probs1 / (cluster_sizes + eps)) @ probs2.t()

    if mask_diagonal:
        kernel = fill_diagonal(kernel, 0.0)

    if return_log:
        return kernel.log()
    return kernel


def leak(kernel_output, alpha):
    n = kernel_output.size(1)
    uniform_kernel = torch.ones_like(kernel_output) / n

    leaked_kernel = (1 - alpha) * kernel_output + alpha * uniform_kernel
    return leaked_kernel


def kl_divergence(p, q, log_q=True, eps=1e-10):
    if p.shape != q.shape:
        raise ValueError(f"Shape mismatch: p {p.shape} != q {q.shape}")

    p_flat = p.flatten()
    q_flat = q.flatten()
    non_zero_mask = p_flat > eps

    p_filtered = p_flat[non_zero_mask]
    q_filtered = q_flat[non_zero_mask]

    log_q_vals = q_filtered if log_q else torch.log(q_filtered.clamp(min=eps))
    cross_entropy = -torch.sum(p_filtered * log_q_vals)

    return cross_entropy / p.shape[0]


def reverse_kl_divergence(p, q, log_q=True, eps=1e-10):
    if p.shape != q.shape:
        raise ValueError(f"Shape mismatch: p {p.shape} != q {q.shape}")

    if log_q:
        q_prob = torch.exp(q)
    else:
        q_prob = q

    p_clamped = p.clamp(min=eps)
    q_clamped = q_prob.clamp(min=eps)

    q_flat = q_clamped.flatten()
    p_flat = p_clamped.flatten()
    non_zero_mask = q_flat > eps

    q_filtered = q_flat[non_zero_mask]
    p_filtered = p_flat[non_zero_mask]

    reverse_kl = torch.sum(q_filtered * (torch.log(q_filtered) - torch.log(p_filtered)))

    return reverse_kl / p.shape[0]
