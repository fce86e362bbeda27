"""The one stratified split (sslscope.data.splits): counts, coverage, seeding, exact order."""

import math

import pytest
import torch

from sslscope.data.splits import stratified_split

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def reference_split(labels, fraction, seed):
    """The algorithm in plain Python: classes in ascending order, members in permutation order."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    kept, held = [], []
    for c in sorted(set(labels)):
        members = [i for i in perm if labels[i] == c]
        n_held = min(math.floor(fraction * len(members) + 0.5), len(members) - 1)
        held += members[:n_held]
        kept += members[n_held:]
    return kept, held


# Fractions whose products with an integer are exact in float32 or never a half, so the
# Python floor above and the float32 arithmetic of the split agree.
@pytest.mark.parametrize("fraction", [0.0, 0.125, 0.2, 0.25, 0.5, 0.75, 1.0])
def test_counts_per_class_keep_one_and_cover(fraction):
    sizes = [1, 2, 3, 4, 5, 7, 10, 13]
    y = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    y = y[torch.randperm(y.numel(), generator=torch.Generator().manual_seed(3))]
    kept, held = stratified_split(y, fraction, seed=0)
    assert kept.dtype == held.dtype == torch.int64
    expected = [min(math.floor(fraction * n + 0.5), n - 1) for n in sizes]
    assert torch.bincount(y[held], minlength=len(sizes)).tolist() == expected
    assert torch.bincount(y[kept], minlength=len(sizes)).min() >= 1  # every class kept
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(y.numel()))  # disjoint, covering


def test_seeded():
    y = torch.arange(103) % 4
    kept_a, held_a = stratified_split(y, 0.2, seed=5)
    kept_b, held_b = stratified_split(y, 0.2, seed=5)
    assert torch.equal(held_a, held_b) and torch.equal(kept_a, kept_b)
    assert not torch.equal(held_a, stratified_split(y, 0.2, seed=6)[1])
    # classes of 26, 26, 26, 25 members: round(0.2 n) = 5 each
    assert torch.bincount(y[held_a]).tolist() == [5, 5, 5, 5]


def test_hand_case_rounds_half_up():
    # Class sizes 1, 2, 3, 5 at fraction 0.5: ⌊n/2 + 0.5⌋ = 1, 1, 2, 3, at most n − 1 = 0, 1, 2, 4,
    # so 0, 1, 2, 3 held out (numpy's round, half to even, would hold out 2 of the 5).
    y = torch.tensor([3, 1, 2, 3, 0, 3, 2, 1, 3, 2, 3])
    kept, held = stratified_split(y, 0.5, seed=0)
    assert torch.bincount(y[held], minlength=4).tolist() == [0, 1, 2, 3]
    assert torch.bincount(y[kept], minlength=4).tolist() == [1, 1, 1, 2]
    assert kept[0] == 4  # both parts are grouped by class, lowest label first
    assert y[held].tolist() == [1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("seed", [0, 1, 17])
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_order_matches_the_reference(seed, fraction):
    y = (torch.arange(60) * 7 % 5).tolist() + [5]  # and a class with a single member
    kept, held = stratified_split(torch.tensor(y), fraction, seed)
    assert (kept.tolist(), held.tolist()) == reference_split(y, fraction, seed)


def test_nothing_held_out_is_not_an_error():
    kept, held = stratified_split(torch.tensor([0, 0, 1, 1]), 0.1, seed=0)
    assert held.numel() == 0 and sorted(kept.tolist()) == [0, 1, 2, 3]


def test_bad_input():
    with pytest.raises(ValueError, match="1-D integer"):
        stratified_split(torch.zeros(4), 0.5, seed=0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        stratified_split(torch.zeros(4, dtype=torch.long), 1.5, seed=0)


@pytest.mark.gpu
@needs_cuda
def test_cuda_gives_the_cpu_split_on_the_device():
    y = torch.arange(500) % 7
    kept, held = stratified_split(y.cuda(), 0.2, seed=4)
    assert kept.device.type == held.device.type == "cuda"
    cpu = stratified_split(y, 0.2, seed=4)
    assert torch.equal(kept.cpu(), cpu[0]) and torch.equal(held.cpu(), cpu[1])
