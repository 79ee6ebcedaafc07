"""Tests for ttnet.contraction: dense references, strategy choice, caching, torch autograd."""

import math

import numpy as np
import opt_einsum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import contraction
from ttnet.contraction import (
    contraction_info,
    tt_full,
    ttm_dense,
    ttm_matvec,
    ttm_rmatvec,
)


def _ranks(d, r):
    return [1] + [r] * (d - 1) + [1]


def _tt_cores(rng, shape, r, dtype=np.float64):
    rk = _ranks(len(shape), r)
    return [rng.standard_normal((rk[k], n, rk[k + 1])).astype(dtype) for k, n in enumerate(shape)]


def _ttm_cores(rng, m, n, r, dtype=np.float64):
    rk = _ranks(len(m), r)
    return [
        rng.standard_normal((rk[k], m[k], n[k], rk[k + 1])).astype(dtype) for k in range(len(m))
    ]


def _einsum_full(cores):
    """Dense reference: one einsum over all cores (independent of the code under test)."""
    d = len(cores)
    sym = opt_einsum.get_symbol
    terms = [sym(2 * d + k) + sym(k) + sym(2 * d + k + 1) for k in range(d)]
    return np.einsum(",".join(terms) + "->" + "".join(sym(k) for k in range(d)), *cores)


def _einsum_dense(cores):
    d = len(cores)
    sym = opt_einsum.get_symbol
    terms = [sym(2 * d + k) + sym(k) + sym(d + k) + sym(2 * d + k + 1) for k in range(d)]
    out = "".join(sym(k) for k in range(d)) + "".join(sym(d + k) for k in range(d))
    w = np.einsum(",".join(terms) + "->" + out, *cores)
    return w.reshape(math.prod(c.shape[1] for c in cores), -1)


mode_lists = st.lists(st.integers(1, 4), min_size=1, max_size=5)
dtypes = st.sampled_from([np.float32, np.float64])


def _tol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


@given(shape=mode_lists, r=st.integers(1, 4), dtype=dtypes, seed=st.integers(0, 2**16))
def test_tt_full_matches_einsum(shape, r, dtype, seed):
    cores = _tt_cores(np.random.default_rng(seed), shape, r, dtype)
    full = tt_full(cores)
    assert full.shape == tuple(shape) and full.dtype == dtype
    np.testing.assert_allclose(full, _einsum_full(cores), rtol=_tol(dtype), atol=_tol(dtype))


@given(
    modes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    r=st.integers(1, 4),
    lead=st.lists(st.integers(0, 5), min_size=0, max_size=2),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_ttm_products_match_dense(modes, r, lead, dtype, seed):
    rng = np.random.default_rng(seed)
    m, n = [a for a, _ in modes], [b for _, b in modes]
    cores = _ttm_cores(rng, m, n, r, dtype)
    w = _einsum_dense(cores)
    tol = _tol(dtype)
    np.testing.assert_allclose(ttm_dense(cores), w, rtol=tol, atol=tol)
    x = rng.standard_normal((*lead, w.shape[1])).astype(dtype)
    y = ttm_matvec(cores, x)
    assert y.shape == (*lead, w.shape[0]) and y.dtype == dtype
    np.testing.assert_allclose(y, x @ w.T, rtol=tol, atol=tol * max(1, w.shape[1]))
    z = rng.standard_normal((*lead, w.shape[0])).astype(dtype)
    np.testing.assert_allclose(
        ttm_rmatvec(cores, z), z @ w, rtol=tol, atol=tol * max(1, w.shape[0])
    )


def _strategy_case():
    """64 x 768 as (4,4,4) x (8,8,12) at rank 5: the TT network for 8 rows, dense W for 8192."""
    return _ttm_cores(np.random.default_rng(0), (4, 4, 4), (8, 8, 12), 5)


def test_strategy_depends_on_rows():
    cores = _strategy_case()
    small, large = contraction_info(cores, 8), contraction_info(cores, 8192)
    assert small.strategy == "tt" and small.tt_cost.seconds < small.dense_cost.seconds
    assert large.strategy == "dense" and large.dense_cost.seconds <= large.tt_cost.seconds
    assert small.flops == small.tt_flops and large.flops == large.dense_flops
    assert large.dense_flops == large.build_flops + 2 * 8192 * 64 * 768
    assert large.dense_cost.flops == large.dense_flops


def test_cost_model_counts():
    """The dense route's cost, counted by hand for a 2-core (6 x 20) TT matrix and 7 rows."""
    cores = _ttm_cores(np.random.default_rng(0), (2, 3), (4, 5), 2)
    dense = contraction_info(cores, 7).dense_cost
    build = contraction.Cost(2 * 8 * 2 * 15, 2 * 8 * 2 * 15 * 8 // 2, 8 * 2 + 2 * 15 + 8 * 15, 1)
    copy = contraction.Cost(0, 0, 2 * 120, 1)
    product = contraction.Cost(2 * 7 * 20 * 6, 2 * 7 * 20 * 6 * 8 // 6, 7 * 20 + 120 + 7 * 6, 1)
    assert dense == build + copy + product
    assert dense.seconds == pytest.approx(
        contraction.SECONDS_PER_FLOP * dense.narrow_flops
        + contraction.SECONDS_PER_ELEMENT * dense.elements
        + contraction.SECONDS_PER_CALL * dense.calls
    )


@pytest.mark.parametrize(
    ("m", "n", "rank", "rows"),
    [
        ((2, 2, 2), (6, 8, 8), 5, 1024),  # LoRA A 384 -> 8 (planned)
        ((6, 8, 8), (2, 2, 2), 5, 1024),  # LoRA B 8 -> 384
        ((1, 1, 1, 8), (6, 8, 8, 1), 5, 1024),  # LoRA A 384 -> 8, the paper's layout
        ((1, 2, 2, 2), (8, 8, 8, 8), 5, 4096),  # LoRA A 4096 -> 8
        ((4, 4, 4), (8, 8, 12), 5, 4096),  # adapter down 768 -> 64 (planned)
    ],
)
def test_thin_factors_with_many_rows_build_the_dense_weight(m, n, rank, rows):
    """Memory-bound TT networks lose to one matmul with a tiny W (measured; the model agrees)."""
    cores = _ttm_cores(np.random.default_rng(0), m, n, rank)
    assert contraction_info(cores, rows).strategy == "dense"
    assert contraction.ttm_strategy([c.shape for c in cores], rows) == "dense"


def test_copies_of_non_contiguous_operands_are_counted():
    """x's contracted mode in the middle forces a copy of x; at the end it does not."""
    cores = _ttm_cores(np.random.default_rng(0), (1, 1, 1), (8, 8, 8), 1)
    sizes = {"a": 64, "b": 8, "c": 8, "d": 8}
    assert contraction._mergeable("abcd", ("abc", "d"), sizes)
    assert contraction._mergeable("abcd", ("ab", "cd"), sizes)
    assert not contraction._mergeable("abcd", ("acd", "b"), sizes)
    assert contraction._mergeable("abcd", ("acd", "b"), {**sizes, "c": 1, "d": 1})
    assert contraction_info(cores, 64).tt_cost.elements > 0


def test_path_depends_on_rows():
    cores = _ttm_cores(np.random.default_rng(0), (4, 4, 4), (4, 4, 4), 4)
    assert contraction_info(cores, 8).path != contraction_info(cores, 8192).path


def test_both_strategies_agree_with_dense():
    cores = _strategy_case()
    w = _einsum_dense(cores)
    rng = np.random.default_rng(1)
    for rows in (8, 8192):
        x = rng.standard_normal((rows, 768))
        np.testing.assert_allclose(ttm_matvec(cores, x), x @ w.T, rtol=1e-10, atol=1e-8)


def test_paper_sized_layer_uses_tt_network():
    cores = _ttm_cores(np.random.default_rng(0), (8, 8, 8, 8), (8, 8, 8, 8), 8)
    for rows in (8, 64, 8192):
        info = contraction_info(cores, rows)
        assert info.strategy == "tt" and info.tt_flops * 3 < info.dense_flops
        assert info.tt_cost.seconds * 2 < info.dense_cost.seconds


def test_path_search_is_cached(monkeypatch):
    cores = _ttm_cores(np.random.default_rng(0), (3, 5), (2, 7), 3)
    x = np.ones((11, 14))
    ttm_matvec(cores, x)
    calls = []
    original = opt_einsum.contract_path
    monkeypatch.setattr(
        opt_einsum, "contract_path", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    hits = contraction._plan.cache_info().hits
    for _ in range(5):
        ttm_matvec(cores, x)
    assert calls == [] and contraction._plan.cache_info().hits == hits + 5
    ttm_matvec(cores, np.ones((12, 14)))  # a new row count is a new search
    assert calls == [1]
    assert contraction_info(cores, 11) is contraction_info(cores, 11)


def test_zero_rows():
    cores = _ttm_cores(np.random.default_rng(0), (2, 3), (4, 5), 2)
    assert ttm_matvec(cores, np.ones((0, 20))).shape == (0, 6)
    assert contraction_info(cores, 0).strategy == "dense"


@pytest.mark.parametrize(
    ("cores", "message"),
    [
        ([], "cores must be a non-empty"),
        ([np.ones((1, 2, 2, 2)), np.ones((3, 2, 2, 1))], "ranks do not chain"),
        ([np.ones((2, 2, 2, 1))], "start and end with rank 1"),
        ([np.ones((1, 2, 1))], "cores\\[0\\] must have 4 axes"),
    ],
)
def test_bad_cores(cores, message):
    with pytest.raises(ValueError, match=message):
        ttm_matvec(cores, np.ones((1, 2)))
    if cores:
        with pytest.raises(ValueError, match=message.replace("4 axes", "")):
            ttm_dense(cores)


def test_bad_inputs():
    cores = _ttm_cores(np.random.default_rng(0), (2, 3), (4, 5), 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 20\), got \(3, 6\)"):
        ttm_matvec(cores, np.ones((3, 6)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 6\)"):
        ttm_rmatvec(cores, np.ones((3, 20)))
    with pytest.raises(ValueError, match="x must have shape"):
        ttm_matvec(cores, np.float64(1.0))
    with pytest.raises(ValueError, match="rows must be"):
        contraction_info(cores, -1)
    with pytest.raises(ValueError, match="kind must be"):
        contraction_info(cores, 2, kind="both")
    with pytest.raises(ValueError, match="cores\\[1\\] must have 3 axes"):
        tt_full([np.ones((1, 2, 1)), np.ones((1, 2, 1, 1))])


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_matches_numpy_and_autograd(dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    rng = np.random.default_rng(3)
    np_cores = _ttm_cores(rng, (4, 8, 8), (8, 8, 12), 5)
    cores = [torch.nn.Parameter(torch.from_numpy(c).to(dtype)) for c in np_cores]
    x_np = rng.standard_normal((2, 4, 768))
    x = torch.from_numpy(x_np).to(dtype).requires_grad_()
    y = ttm_matvec(cores, x)
    assert y.shape == (2, 4, 256) and y.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    w = _einsum_dense(np_cores)
    np.testing.assert_allclose(y.detach().numpy(), x_np @ w.T, rtol=tol, atol=tol * 100)
    y.square().sum().backward()
    assert all(c.grad is not None and c.grad.shape == c.shape for c in cores)
    # gradient check against the dense route
    w_t = ttm_dense([c.detach().requires_grad_() for c in cores])
    x2 = x.detach().requires_grad_()
    (x2 @ w_t.T).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=tol * 10, atol=tol * 100)
    z = ttm_rmatvec(cores, y.detach())
    assert z.shape == (2, 4, 768)
    full = tt_full([torch.from_numpy(c).to(dtype) for c in _tt_cores(rng, (3, 4, 5), 2)])
    assert full.shape == (3, 4, 5) and full.dtype == dtype


def test_torch_both_strategies_and_bfloat16():
    torch = pytest.importorskip("torch")
    cores = [torch.from_numpy(c) for c in _strategy_case()]
    w = ttm_dense(cores)
    for rows in (8, 8192):
        x = torch.randn(rows, 768, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(ttm_matvec(cores, x), x @ w.T)
    bf_cores = [c.to(torch.bfloat16) for c in cores]
    x = torch.randn(8, 768, generator=torch.Generator().manual_seed(1))
    y = ttm_matvec(bf_cores, x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    ref = x.double() @ ttm_dense([c.double() for c in bf_cores]).T
    assert ((y.double() - ref).norm() / ref.norm()).item() < 3e-2


def test_torch_einsum_executor_and_its_fallback(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    np_cores = _ttm_cores(rng, (4, 8, 8, 4), (4, 8, 8, 4), 8)
    cores = [torch.nn.Parameter(torch.from_numpy(c)) for c in np_cores]
    info = contraction_info(cores, 64)
    assert info.strategy == "tt" and info.tt_cost.seconds >= contraction.EINSUM_MIN_SECONDS
    assert info.einsum_path == tuple(i for step in info.path for i in step)
    assert contraction_info(cores, 1).einsum_path is None  # small networks run the steps
    x = torch.from_numpy(rng.standard_normal((64, 1024))).requires_grad_()
    calls = []
    original = torch._VF.einsum
    monkeypatch.setattr(
        torch._VF, "einsum", lambda *a, **k: calls.append(k["path"]) or original(*a, **k)
    )
    y = ttm_matvec(cores, x)
    y.square().sum().backward()
    assert calls == [list(info.einsum_path)]
    grads = [x.grad, *(c.grad for c in cores)]
    ref = x.detach().numpy() @ _einsum_dense(np_cores).T
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-10)
    assert ttm_matvec(np_cores, x.detach().numpy()).shape == (64, 1024)  # numpy: the steps
    assert len(calls) == 1

    # a torch whose _VF.einsum takes no path: the call raises TypeError, the steps run
    monkeypatch.setattr(torch._VF, "einsum", lambda equation, operands: pytest.fail("no path"))
    for t in (x, *cores):
        t.grad = None
    y2 = ttm_matvec(cores, x)
    y2.square().sum().backward()
    torch.testing.assert_close(y2, y)
    for before, t in zip(grads, (x, *cores)):
        torch.testing.assert_close(t.grad, before)
