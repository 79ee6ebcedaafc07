"""ttnet.TTMatrix: products from both sides, TT x TT products, transpose, arithmetic."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import TensorTrain, TTMatrix


def random_ttm(seed, rows, cols, ranks, dtype=np.float64):
    rng = np.random.default_rng(seed)
    cores = [
        rng.standard_normal((ranks[k], m, n, ranks[k + 1]))
        for k, (m, n) in enumerate(zip(rows, cols))
    ]
    return TTMatrix([c.astype(dtype) for c in cores])


@st.composite
def ttms(draw):
    d = draw(st.integers(1, 4))
    rows = tuple(draw(st.integers(1, 3)) for _ in range(d))
    cols = tuple(draw(st.integers(1, 3)) for _ in range(d))
    inner = tuple(draw(st.integers(1, 3)) for _ in range(d))
    ranks = (1, *(draw(st.integers(1, 3)) for _ in range(d - 1)), 1)
    seed = draw(st.integers(0, 2**31))
    return random_ttm(seed, rows, cols, ranks), random_ttm(seed + 1, cols, inner, ranks), seed


@given(ttms(), st.integers(1, 5))
def test_dense_products_match(spec, k):
    w, _, seed = spec
    rng = np.random.default_rng(seed)
    dense = w.to_dense()
    m, n = w.shape
    assert dense.shape == (m, n)
    x = rng.standard_normal((n, k))
    assert np.allclose(w @ x, dense @ x)
    y = rng.standard_normal((k, m))
    assert np.allclose(y @ w, y @ dense)
    assert np.allclose(w @ x[:, 0], dense @ x[:, 0])
    assert np.allclose(y[0] @ w, y[0] @ dense)
    batch = rng.standard_normal((2, k, n))
    assert np.allclose(w.matvec(batch), batch @ dense.T)
    assert np.allclose(w.T.to_dense(), dense.T)


@given(ttms())
def test_tt_products_match(spec):
    w, v, seed = spec
    assert np.allclose((w @ v).to_dense(), w.to_dense() @ v.to_dense())
    rng = np.random.default_rng(seed)
    cores = [rng.standard_normal((1, n, 1)) for n in w.col_shape]
    x = TensorTrain(cores)
    product = w @ x
    assert isinstance(product, TensorTrain) and product.shape == w.row_shape
    assert np.allclose(product.full().reshape(-1), w.to_dense() @ x.full().reshape(-1))


@given(ttms())
def test_arithmetic_and_round(spec):
    w, _, _ = spec
    dense = w.to_dense()
    assert np.allclose((w + w).to_dense(), 2 * dense)
    assert np.allclose((w - 0.5 * w).to_dense(), 0.5 * dense)
    assert np.allclose(w.hadamard(w).to_dense(), dense**2)
    assert np.isclose(float(w.norm()), np.linalg.norm(dense))
    assert np.isclose(float(w.dot(w)), np.sum(dense**2))
    rounded = (w + w).round(eps=1e-10)
    assert rounded.row_shape == w.row_shape and rounded.col_shape == w.col_shape
    assert np.allclose(rounded.to_dense(), 2 * dense)
    assert all(r <= s for r, s in zip(rounded.ranks, w.ranks))
    assert np.allclose(w.orthogonalize_left().to_dense(), dense)
    assert np.allclose(w.orthogonalize_right().to_dense(), dense)


def test_properties_and_repr():
    w = random_ttm(0, (2, 3), (4, 5), (1, 2, 1))
    assert w.shape == (6, 20) and w.row_shape == (2, 3) and w.col_shape == (4, 5)
    assert w.ranks == (1, 2, 1) and w.num_params == 2 * 4 * 2 + 2 * 3 * 5 and w.error is None
    assert repr(w) == (
        "TTMatrix(row_shape=(2, 3), col_shape=(4, 5), ranks=(1, 2, 1), dtype=float64, error=None)"
    )
    with pytest.raises(AttributeError, match="immutable"):
        w.error = 0.0


@pytest.mark.parametrize(
    ("cores", "error", "match"),
    [
        ([np.ones((1, 2, 1))], ValueError, r"cores\[0\]: expected 4 axes"),
        (
            [np.ones((1, 2, 2, 2)), np.ones((3, 2, 2, 1))],
            ValueError,
            r"cores\[1\]: ranks do not chain",
        ),
        ([np.ones((1, 2, 0, 1))], ValueError, r"cores\[0\]: expected a non-empty array"),
        ([np.full((1, 2, 2, 1), np.inf)], ValueError, r"cores\[0\]: expected finite values"),
    ],
)
def test_bad_cores(cores, error, match):
    with pytest.raises(error, match=match):
        TTMatrix(cores)


def test_shape_mismatches_name_the_argument():
    w = random_ttm(0, (2, 3), (4, 5), (1, 2, 1))
    message = r"other: expected the first axis to have length 20, got shape \(6, 2\)"
    with pytest.raises(ValueError, match=message):
        w @ np.ones((6, 2))
    message = r"other: expected the last axis to have length 6, got shape \(2, 20\)"
    with pytest.raises(ValueError, match=message):
        np.ones((2, 20)) @ w
    with pytest.raises(ValueError, match=r"x: expected the last axis to have length 20"):
        w.matvec(np.ones((3, 6)))
    with pytest.raises(ValueError, match=r"other: expected row_shape \(4, 5\)"):
        w @ w
    with pytest.raises(ValueError, match=r"other: expected a TensorTrain of shape \(4, 5\)"):
        w @ TensorTrain([np.ones((1, 2, 1)), np.ones((1, 3, 1))])


def test_torch_matches_numpy_and_mixing_raises():
    torch = pytest.importorskip("torch")
    w = random_ttm(0, (2, 4), (3, 4), (1, 3, 1))
    tw = TTMatrix([torch.from_numpy(c) for c in w.cores])
    x = np.random.default_rng(1).standard_normal((5, 12))
    tx = torch.from_numpy(x)
    assert np.allclose(tw.matvec(tx).numpy(), w.matvec(x))
    assert np.allclose((tw @ tx.T).numpy(), w @ x.T)
    assert np.allclose((tx[:, :8] @ tw).numpy(), x[:, :8] @ w)
    assert np.allclose(tw.to_dense().numpy(), w.to_dense())
    assert np.allclose(tw.matvec(tx.float()).numpy(), w.matvec(x), atol=1e-4)
    with pytest.raises(TypeError, match="self is a numpy array but x is a torch array"):
        w.matvec(tx)
    with pytest.raises(TypeError, match="self is a torch array but other is a numpy array"):
        tw @ x.T


def test_integer_batch_is_converted():
    w = random_ttm(0, (2,), (3,), (1, 1))
    assert np.allclose(w.matvec(np.arange(3)), w.to_dense() @ np.arange(3.0))
