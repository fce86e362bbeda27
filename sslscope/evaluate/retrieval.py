"""Cross-modal retrieval: does one modality's embedding find its own pair among the other's?

For N paired embeddings (a_i, b_i), a query a_i retrieves the b_j of largest cosine similarity;
top-1 accuracy a→b is the fraction of queries whose best match is their own pair, and b→a the
same the other way. It is how CLIP-style models are compared across batch sizes (Radford et
al. 2021, §3.1.4 zero-shot retrieval; Schaeffer et al. 2024 compare multimodal MMCR with CLIP
this way on DataComp), and chance is 1/N.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK = 4096  # queries per similarity block: 4096 × N floats, bounded memory at any N


def retrieval_top1(a: Tensor, b: Tensor) -> dict[str, float]:
    r"""Top-1 retrieval accuracy in both directions between paired embeddings.

        S_ij = ⟨a_i/‖a_i‖, b_j/‖b_j‖⟩,   a→b = mean_i [argmax_j S_ij = i],   b→a likewise on Sᵀ

    Ties go to the smallest index (``argmax``), so a collapsed embedding scores about 1/N, not 1.

    Args:
        a, b: (N, D_a) and (N, D_b) with D_a = D_b; row i of each is one pair. Any float dtype
            and device; compared in float32 on that device.

    Returns:
        {"a_to_b": …, "b_to_a": …}, fractions in [0, 1].

    Raises:
        ValueError: shapes that do not pair up.
    """
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"need two (N, D) tensors of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
    return {"a_to_b": _top1(a, b), "b_to_a": _top1(b, a)}


def _top1(queries: Tensor, keys: Tensor) -> float:
    n, hits = queries.shape[0], 0
    for start in range(0, n, CHUNK):
        best = (queries[start : start + CHUNK] @ keys.T).argmax(dim=1)  # (chunk,)
        hits += int((best == torch.arange(start, start + best.shape[0],
                                          device=best.device)).sum())
    return hits / n
