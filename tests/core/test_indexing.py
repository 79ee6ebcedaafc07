"""Entries, slices, gather, sum/mean and pickling of TensorTrain and TTMatrix, vs dense."""

import copy
import io
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ttnet
from ttnet import TensorTrain, TTMatrix

torch = pytest.importorskip("torch")
LIBRARIES = ["numpy", "torch"]


def as_library(cores, library):
    return [torch.as_tensor(c) for c in cores] if library == "torch" else cores


def to_np(x):
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@st.composite
def tts(draw, library=None):
    d = draw(st.integers(1, 5))
    shape = [draw(st.integers(1, 5)) for _ in range(d)]
    ranks = [1] + [draw(st.integers(1, 3)) for _ in range(d - 1)] + [1]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.complex128]))
    cores = [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]
    if dtype == np.complex128:
        cores = [c + 1j * rng.standard_normal(c.shape) for c in cores]
    cores = [c.astype(dtype) for c in cores]
    return TensorTrain(as_library(cores, library or draw(st.sampled_from(LIBRARIES))))


@st.composite
def keys(draw, shape):
    """Index keys: ints (negative too), slices with steps, an ellipsis, fewer items."""
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.integers(-n, n - 1))
            step = draw(st.sampled_from([1, 2, -1]))
            stop = None if step < 0 else draw(st.integers(start % n + 1, n))
            items.append(slice(start, stop, step))
        else:
            items.append(slice(None))
    cut = draw(st.integers(0, len(items)))
    if draw(st.booleans()) and cut < len(items):
        return (*items[:cut], Ellipsis)
    return tuple(items[:cut]) if cut else items[0] if items else ()


def tol(tt):
    return 1e-4 if "float32" in str(tt.dtype) else 1e-10


@given(st.data())
def test_getitem_matches_dense(data):
    tt = data.draw(tts())
    full = to_np(tt.full())
    key = data.draw(keys(tt.shape))
    got = tt[key]
    ref = full[key]
    value = to_np(got.full()) if isinstance(got, TensorTrain) else to_np(got)
    assert value.shape == ref.shape
    assert np.allclose(value, ref, atol=tol(tt) * max(1, np.abs(full).max()))


@given(st.data())
def test_gather_sum_mean_match_dense(data):
    tt = data.draw(tts())
    full = to_np(tt.full())
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    idx = np.stack([rng.integers(-n, n, size=17) for n in tt.shape], axis=1)
    atol = tol(tt) * max(1, np.abs(full).sum())
    assert np.allclose(to_np(tt.gather(idx)), full[tuple(idx.T)], atol=atol)
    axes = data.draw(st.lists(st.integers(0, tt.ndim - 1), unique=True, max_size=tt.ndim))
    axis = None if not axes else tuple(axes) if data.draw(st.booleans()) else axes[0]
    for method in ("sum", "mean"):
        got = getattr(tt, method)(axis)
        ref = getattr(full, method)(axis=axis)
        value = to_np(got.full()) if isinstance(got, TensorTrain) else to_np(got)
        assert np.allclose(value, ref, atol=atol)


@st.composite
def matrices(draw):
    d = draw(st.integers(1, 3))
    rows = [draw(st.integers(1, 4)) for _ in range(d)]
    cols = [draw(st.integers(1, 4)) for _ in range(d)]
    ranks = [1] + [draw(st.integers(1, 3)) for _ in range(d - 1)] + [1]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    cores = [rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1])) for k in range(d)]
    return TTMatrix(as_library(cores, draw(st.sampled_from(LIBRARIES))))


@given(matrices(), st.data())
def test_tt_matrix_indexing_matches_dense(w, data):
    dense = to_np(w.to_dense())
    m, n = w.shape
    i, j = data.draw(st.integers(-m, m - 1)), data.draw(st.integers(-n, n - 1))
    assert np.isclose(to_np(w[i, j]), dense[i, j])
    assert np.allclose(to_np(w[i, :].full()).reshape(-1), dense[i])
    assert np.allclose(to_np(w[:, j].full()).reshape(-1), dense[:, j])
    assert w[:, :] is w
    pairs = np.array([[i, j], [m - 1, 0], [0, n - 1]])
    assert np.allclose(to_np(w.gather(pairs)), dense[pairs[:, 0], pairs[:, 1]])
    assert np.isclose(to_np(w.sum()), dense.sum()) and np.isclose(to_np(w.mean()), dense.mean())
    for axis in (0, 1):
        assert np.allclose(to_np(w.sum(axis).full()).reshape(-1), dense.sum(axis))
        assert np.allclose(to_np(w.mean(axis).full()).reshape(-1), dense.mean(axis))


def test_out_of_range_indices_name_the_mode():
    tt = ttnet.tt_svd(np.ones((2, 3, 4)))
    with pytest.raises(IndexError, match="index 4 is out of range for mode 2 of size 4"):
        tt[0, 0, 4]
    with pytest.raises(IndexError, match="index -3 is out of range for mode 0 of size 2"):
        tt[-3]
    with pytest.raises(IndexError, match="index 3 is out of range for mode 1 of size 3"):
        tt.gather([[0, 0, 0], [1, 3, 0]])
    with pytest.raises(IndexError, match="index 3 is out of range for mode 1 of size 3"):
        tt.gather(torch.tensor([[0, 3, 0]]))
    with pytest.raises(IndexError, match="selects no entries of mode 1"):
        tt[:, 2:2]
    with pytest.raises(IndexError, match="too many indices"):
        tt[0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"indices: expected shape \(batch, 3\)"):
        tt.gather([[0, 0]])
    with pytest.raises(TypeError, match="indices: expected integers"):
        tt.gather([[0.5, 0, 0]])
    with pytest.raises(IndexError, match="axis: 3 is out of range"):
        tt.sum(axis=3)
    with pytest.raises(ValueError, match="axis: each mode at most once"):
        tt.sum(axis=(0, -3))
    w = TTMatrix([np.ones((1, 2, 3, 1))])
    with pytest.raises(IndexError, match="index 2 is out of range for rows of size 2"):
        w[2, 0]
    with pytest.raises(IndexError, match="index 3 is out of range for columns of size 3"):
        w.gather([[0, 3]])
    with pytest.raises(IndexError, match="two indices"):
        w[0]


def test_empty_gather_and_torch_device():
    tt = TensorTrain([torch.ones((1, 3, 1)), torch.ones((1, 2, 1))])
    empty = tt.gather(np.zeros((0, 2), dtype=np.int64))
    assert isinstance(empty, torch.Tensor) and empty.shape == (0,)
    assert tt.gather([[2, 1]]).device == tt.device


def roundtrips(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return [
        pickle.loads(pickle.dumps(value)),
        copy.deepcopy(value),
        copy.copy(value),
        torch.load(buffer, weights_only=False),
    ]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "float16"])
def test_pickle_deepcopy_torch_save_bit_for_bit(library, dtype):
    rng = np.random.default_rng(0)
    tt = ttnet.tt_svd(rng.standard_normal((3, 4, 5)).astype(dtype), eps=1e-1)
    w = ttnet.tt_matrix_svd(rng.standard_normal((6, 6)).astype(dtype), (2, 3), (3, 2))
    cross = ttnet.tt_cross(lambda i: (i + 1.0).prod(axis=1), [8] * 5, eps=1e-10, n_check=30)
    for value in (tt, w, cross):
        value = type(value)._trusted(as_library(list(value.cores), library), value.error,
                                     value.info)
        for copy_ in roundtrips(value):
            assert type(copy_) is type(value) and copy_.error == value.error
            assert copy_.info == value.info
            for a, b in zip(copy_.cores, value.cores):
                assert a.dtype == b.dtype and a.shape == b.shape
                assert to_np(a).tobytes() == to_np(b).tobytes()
            with pytest.raises(AttributeError, match="immutable"):
                copy_._cores = ()
