"""ttnet.decomposition: tt_svd and tt_matrix_svd against dense references."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ttnet
from ttnet import ranks as R
from ttnet import tt_full


def random_cores(rng, shape, ranks, dtype=np.float64):
    return [
        rng.standard_normal((ranks[k], n, ranks[k + 1])).astype(dtype)
        for k, n in enumerate(shape)
    ]


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, dtype=np.complex128) - b) / np.linalg.norm(b))


@st.composite
def tt_specs(draw, min_d=2, max_d=8, max_n=3, max_r=3):
    d = draw(st.integers(min_d, max_d))
    shape = tuple(draw(st.integers(1, max_n)) for _ in range(d))
    ranks = R.useful_ranks(shape, (1, *(draw(st.integers(1, max_r)) for _ in range(d - 1)), 1))
    return shape, ranks, draw(st.integers(0, 2**32 - 1))


@given(tt_specs(), st.sampled_from([1e-1, 1e-3, 1e-8]), st.sampled_from(["float32", "float64"]))
def test_tt_svd_error_within_eps(spec, eps, dtype):
    shape, _, seed = spec
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    tt = ttnet.tt_svd(a, eps=eps)
    assert tt.dtype == a.dtype and tt.shape == shape
    measured = rel(tt.full(), a.astype(np.float64))
    slack = 1e-5 if dtype == "float32" else 1e-12
    assert measured <= eps + slack
    assert abs(tt.error - measured) <= 1e-3 * measured + slack
    assert all(r <= m for r, m in zip(tt.ranks[1:-1], R.bond_max_ranks(shape)))


@given(tt_specs())
def test_tt_svd_recovers_known_ranks_exactly(spec):
    shape, ranks, seed = spec
    a = tt_full(random_cores(np.random.default_rng(seed), shape, ranks))
    tt = ttnet.tt_svd(a, eps=1e-12)
    assert tt.ranks == ranks
    assert rel(tt.full(), a) <= 1e-12
    assert tt.error <= 1e-12


@given(tt_specs(max_d=5), st.integers(1, 3))
def test_tt_svd_max_rank(spec, cap):
    shape, _, seed = spec
    a = np.random.default_rng(seed).standard_normal(shape)
    tt = ttnet.tt_svd(a, max_rank=cap)
    assert max(tt.ranks) <= max(cap, 1)
    assert abs(tt.error - rel(tt.full(), a)) <= 1e-9


def test_tt_svd_per_bond_max_rank():
    a = np.random.default_rng(0).standard_normal((3, 3, 3, 3))
    assert ttnet.tt_svd(a, max_rank=[1, 2, 3]).ranks == (1, 1, 2, 3, 1)


@given(tt_specs(min_d=3, max_d=6), st.integers(0, 200))
def test_tt_svd_max_params(spec, extra):
    shape, _, seed = spec
    a = np.random.default_rng(seed).standard_normal(shape)
    budget = sum(shape) + extra
    tt = ttnet.tt_svd(a, max_params=budget)
    assert tt.num_params <= budget
    measured = rel(tt.full(), a)
    assert abs(tt.error - measured) <= 1e-6 * max(measured, 1e-6)


def test_tt_svd_accurate_path_for_tight_eps():
    # rank-3 TT plus noise at 1e-9: below the Gram path's resolution, above eps.
    rng = np.random.default_rng(1)
    shape = (4,) * 8
    a = tt_full(random_cores(rng, shape, (1, 3, 3, 3, 3, 3, 3, 3, 1)))
    a = a / np.linalg.norm(a) + 1e-9 * rng.standard_normal(shape) / 256
    for eps in (1e-10, 1e-7):
        tt = ttnet.tt_svd(a, eps=eps)
        measured = rel(tt.full(), a)
        assert measured <= eps
        assert abs(tt.error - measured) <= 1e-2 * measured + 1e-15


def _svd_tt_reference(a, cap):
    """Plain SVD-based TT-SVD (the textbook algorithm) for comparison."""
    shape = a.shape
    c, r, cores = a, 1, []
    for n in shape[:-1]:
        u, s, vh = np.linalg.svd(c.reshape(r * n, -1), full_matrices=False)
        k = min(cap, len(s))
        cores.append(u[:, :k].reshape(r, n, k))
        c, r = s[:k, None] * vh[:k], k
    cores.append(c.reshape(r, shape[-1], 1))
    return tt_full(cores)


def test_tt_svd_gram_path_matches_svd_path_at_equal_ranks():
    rng = np.random.default_rng(2)
    shape = (4,) * 8
    smooth = tt_full(random_cores(rng, shape, (1, 4, 8, 8, 8, 8, 8, 4, 1)))
    for a in (rng.standard_normal(shape), smooth + 1e-3 * rng.standard_normal(shape)):
        ours = rel(ttnet.tt_svd(a, max_rank=6).full(), a)
        reference = rel(_svd_tt_reference(a, 6), a)
        assert ours <= reference * 1.01


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_tt_svd_complex(dtype):
    rng = np.random.default_rng(3)
    shape, ranks = (3, 4, 2, 3), (1, 2, 3, 2, 1)
    real, imag = random_cores(rng, shape, ranks), random_cores(rng, shape, ranks)
    cores = [c + 1j * d for c, d in zip(real, imag)]
    a = tt_full(cores).astype(dtype)
    tt = ttnet.tt_svd(a, eps=1e-5 if dtype == np.complex64 else 1e-12)
    assert tt.dtype == dtype and tt.ranks == ranks
    assert rel(tt.full(), a) <= (1e-5 if dtype == np.complex64 else 1e-12)


def test_tt_svd_single_mode_and_integer_input():
    tt = ttnet.tt_svd(np.arange(5))
    assert tt.dtype == np.float64 and tt.ranks == (1, 1) and tt.error == 0.0
    assert ttnet.tt_svd(np.zeros((2, 3))).error == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tt_svd_torch_matches_numpy(dtype):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(4).standard_normal((3, 4, 5, 2)).astype(dtype)
    ref = ttnet.tt_svd(a, eps=1e-2)
    tt = ttnet.tt_svd(torch.from_numpy(a), eps=1e-2)
    assert all(isinstance(c, torch.Tensor) for c in tt.cores)
    assert tt.cores[0].dtype == getattr(torch, dtype) and tt.ranks == ref.ranks
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert np.allclose(tt.full().numpy(), ref.full(), atol=tol)
    assert abs(tt.error - ref.error) <= tol


def test_tt_svd_torch_integer_uses_default_dtype():
    torch = pytest.importorskip("torch")
    assert ttnet.tt_svd(torch.arange(6).reshape(2, 3)).dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": -1e-3}, ValueError, "eps: expected a finite number >= 0"),
        ({"eps": float("inf")}, ValueError, "eps"),
        ({"max_rank": 0}, ValueError, "max_rank: expected an int >= 1, got 0"),
        ({"max_rank": [2, 2]}, ValueError, "max_rank: expected 3 per-bond ranks"),
        ({"max_params": 0}, ValueError, "max_params: expected an int >= 1"),
        ({"max_params": 5}, ValueError, "max_params: a TT of shape"),
    ],
)
def test_tt_svd_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        ttnet.tt_svd(np.ones((2, 2, 2, 2)), **kwargs)


@pytest.mark.parametrize(
    ("tensor", "error", "match"),
    [
        (np.zeros((2, 0, 3)), ValueError, r"tensor: expected a non-empty array, got shape"),
        (np.array([[1.0, np.nan]]), ValueError, "tensor: expected finite values"),
        (np.array(1.0), ValueError, "tensor: expected at least one axis"),
        (np.array(["a", "b"]), TypeError, "tensor: expected a numeric array"),
        ("abc", TypeError, "tensor: expected a numeric array"),
    ],
)
def test_tt_svd_bad_tensor(tensor, error, match):
    with pytest.raises(error, match=match):
        ttnet.tt_svd(tensor)


@st.composite
def matrix_specs(draw):
    d = draw(st.integers(1, 4))
    rows = tuple(draw(st.integers(1, 3)) for _ in range(d))
    cols = tuple(draw(st.integers(1, 3)) for _ in range(d))
    return rows, cols, draw(st.integers(0, 2**32 - 1))


@given(matrix_specs(), st.sampled_from([None, 1e-2]))
def test_tt_matrix_svd_dense_reference(spec, eps):
    rows, cols, seed = spec
    m, n = int(np.prod(rows)), int(np.prod(cols))
    w = np.random.default_rng(seed).standard_normal((m, n))
    ttm = ttnet.tt_matrix_svd(w, rows, cols, eps=eps)
    assert ttm.row_shape == rows and ttm.col_shape == cols and ttm.shape == (m, n)
    measured = rel(ttm.to_dense(), w)
    assert measured <= (eps or 1e-12)
    assert abs(ttm.error - measured) <= 1e-3 * measured + 1e-12


def test_tt_matrix_svd_known_ranks():
    rng = np.random.default_rng(5)
    cores = [rng.standard_normal(s) for s in [(1, 2, 3, 2), (2, 4, 2, 3), (3, 2, 3, 1)]]
    w = ttnet.TTMatrix(cores).to_dense()
    ttm = ttnet.tt_matrix_svd(w, (2, 4, 2), (3, 2, 3), eps=1e-12)
    assert ttm.ranks == (1, 2, 3, 1)
    assert rel(ttm.to_dense(), w) <= 1e-12
    budget = ttnet.tt_matrix_svd(w, (2, 4, 2), (3, 2, 3), max_params=40)
    assert budget.num_params <= 40


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (((2, 3), (2, 2)), ValueError, r"row_shape: product must be M = 4, got \(2, 3\)"),
        (((2, 2), (2, 3)), ValueError, r"col_shape: product must be N = 4, got \(2, 3\)"),
        (((4,), (2, 2)), ValueError, r"col_shape: expected 1 modes like row_shape"),
        (((2, 0), (2, 2)), ValueError, r"row_shape\[1\]: expected a mode size >= 1"),
        (((2, 2.0), (2, 2)), TypeError, r"row_shape\[1\]: expected an int"),
        ((4, (2, 2)), TypeError, "row_shape: expected a sequence of mode sizes"),
        (((), ()), ValueError, "row_shape: expected at least one mode"),
    ],
)
def test_tt_matrix_svd_bad_shapes(args, error, match):
    with pytest.raises(error, match=match):
        ttnet.tt_matrix_svd(np.ones((4, 4)), *args)


def test_tt_matrix_svd_needs_a_matrix():
    message = r"matrix: expected a 2-D array \(M, N\), got shape \(4,\)"
    with pytest.raises(ValueError, match=message):
        ttnet.tt_matrix_svd(np.ones(4), (2, 2), (1, 1))


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_precision_is_decomposed_in_float32_and_cast_back(dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(4, 5, 6, generator=gen, dtype=torch.float64)
    tt = ttnet.tt_svd(a.to(dtype), eps=1e-2)
    assert tt.dtype == dtype
    rel = float(torch.linalg.norm(tt.full().double() - a) / torch.linalg.norm(a))
    assert rel < 2e-2  # eps plus half-precision storage of the input and the cores
    rounded = (tt + tt).round(max_rank=3)
    assert rounded.dtype == dtype and max(rounded.ranks) <= 3
