"""Instruments: pure functions that measure embeddings, ``(N, D)`` tensors in, numbers out.

    from sslscope.instruments import eigenvalues, effective_rank, rankme
    eigvals = eigenvalues(z)                 # (D,) float64, descending
    effective_rank(eigvals), rankme(z)       # floats in [1, D]

Say in every log key or caption which representation went in: h or z.
"""

from sslscope.instruments.spectrum import effective_rank, eigenvalues, rankme

__all__ = ["effective_rank", "eigenvalues", "rankme"]
