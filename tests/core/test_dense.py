"""Tests for ttnet.dense: reconstruction against einsum references, the reordering rule, and
the hand-written backward of the chain against autograd."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import dense
from ttnet.dense import build_spec, tt_full, ttm_dense

mode_lists = st.lists(st.integers(1, 4), min_size=1, max_size=5)
dtypes = st.sampled_from([np.float32, np.float64])


def tol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


@given(shape=mode_lists, r=st.integers(1, 4), dtype=dtypes, seed=st.integers(0, 2**16))
def test_tt_full_matches_einsum(shape, r, dtype, seed, ref):
    cores = ref.tt_cores(np.random.default_rng(seed), shape, r, dtype)
    full = tt_full(cores)
    assert full.shape == tuple(shape) and full.dtype == dtype
    np.testing.assert_allclose(full, ref.einsum_full(cores), rtol=tol(dtype), atol=tol(dtype))


@given(
    modes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    r=st.integers(1, 4),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_ttm_dense_matches_einsum(modes, r, dtype, seed, ref):
    """Covers the reordering copy and its skipped form (size-1 modes make it a view)."""
    cores = ref.ttm_cores(np.random.default_rng(seed), [a for a, _ in modes], [b for _, b in modes],
                      r, dtype)
    np.testing.assert_allclose(ttm_dense(cores), ref.einsum_dense(cores), rtol=tol(dtype),
                               atol=tol(dtype))


@pytest.mark.parametrize(
    ("shapes", "reorders"),
    [
        (((1, 2, 3, 2), (2, 4, 5, 1)), True),
        (((1, 8, 1, 5), (5, 8, 1, 5), (5, 1, 8, 1)), False),  # rows then columns: a view
        (((1, 8, 2, 5), (5, 1, 8, 1)), False),  # the boundary inside a mode
        (((1, 1, 8, 5), (5, 8, 1, 1)), True),  # columns then rows
        (((1, 3, 1, 1),), False),
    ],
)
def test_reordering_copy_is_skipped_exactly_when_nothing_moves(shapes, reorders, ref):
    assert (build_spec(shapes).perm is not None) == reorders
    cores = [np.random.default_rng(0).standard_normal(s) for s in shapes]
    np.testing.assert_allclose(ttm_dense(cores), ref.einsum_dense(cores), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "shapes",
    [((1, 2, 6, 5), (5, 2, 8, 5), (5, 2, 8, 1)), ((1, 8, 1, 3), (3, 4, 1, 3), (3, 1, 6, 1)),
     ((1, 3, 4, 1),)],
)
def test_chain_backward_matches_autograd(shapes):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    cores = [torch.randn(s, dtype=torch.float64, generator=gen, requires_grad=True)
             for s in shapes]
    spec = build_spec(shapes)
    w = dense.build_matrix(cores, spec)
    weight = torch.randn(w.shape, dtype=torch.float64, generator=gen)
    (w * weight).sum().backward()
    mats = dense.matrices([c.detach() for c in cores], spec.steps)
    _, prefixes = dense.chain(mats, spec.steps, keep=True)
    grads = dense.chain_backward(dense.from_matrix(weight, spec), mats, prefixes, spec.steps)
    for core, grad in zip(cores, grads):
        torch.testing.assert_close(grad.reshape(core.shape), core.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("cores", "message"),
    [
        ([], "cores must be a non-empty"),
        ([np.ones((1, 2, 2, 2)), np.ones((3, 2, 2, 1))], "ranks do not chain"),
        ([np.ones((2, 2, 2, 1))], "start and end with rank 1"),
        ([np.ones((1, 2, 1))], "cores\\[0\\] must have 4 axes"),
        ([np.ones((1, 0, 2, 1))], "no empty axis"),
    ],
)
def test_bad_cores(cores, message):
    with pytest.raises(ValueError, match=message):
        ttm_dense(cores)
    with pytest.raises(ValueError, match="cores\\[1\\] must have 3 axes"):
        tt_full([np.ones((1, 2, 1)), np.ones((1, 2, 1, 1))])
