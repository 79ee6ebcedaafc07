"""ttnet.interop: exact round trips with tensorly's TT classes."""

import numpy as np
import pytest

import ttnet
from ttnet import TensorTrain, TTMatrix
from ttnet.interop import from_tensorly, to_tensorly

tl = pytest.importorskip("tensorly")


def test_tensor_train_round_trip_is_exact():
    a = np.random.default_rng(0).standard_normal((3, 4, 5))
    tt = ttnet.tt_svd(a, max_rank=2)
    obj = tt.to_tensorly()
    assert obj.rank == tt.ranks
    assert np.array_equal(tl.tt_to_tensor(obj), tt.full())
    back = TensorTrain.from_tensorly(obj)
    assert all(np.array_equal(x, y) for x, y in zip(back.cores, tt.cores))


def test_tt_matrix_round_trip_is_exact_and_orders_agree():
    w = np.random.default_rng(1).standard_normal((6, 20))
    ttm = ttnet.tt_matrix_svd(w, (2, 3), (4, 5), max_rank=3)
    obj = ttm.to_tensorly()
    assert np.allclose(obj.to_matrix(), ttm.to_dense())
    back = TTMatrix.from_tensorly(obj)
    assert back.ranks == ttm.ranks
    assert all(np.array_equal(x, y) for x, y in zip(back.cores, ttm.cores))


def test_from_tensorly_accepts_factor_lists_and_tensorly_results():
    from tensorly.decomposition import tensor_train

    a = np.random.default_rng(2).standard_normal((3, 3, 3))
    factors = tensor_train(a, rank=[1, 3, 3, 1])
    tt = from_tensorly(factors)
    assert isinstance(tt, TensorTrain) and np.allclose(tt.full(), a)
    assert isinstance(from_tensorly([np.ones((1, 2, 2, 1))]), TTMatrix)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ("abc", "obj: expected a tensorly TTTensor / TTMatrix"),
        ([np.ones((2, 2))], "obj: expected 3-D"),
    ],
)
def test_from_tensorly_bad_input(obj, match):
    with pytest.raises(TypeError, match=match):
        from_tensorly(obj)


def test_wrong_kind_and_to_tensorly_type():
    with pytest.raises(TypeError, match="obj: expected a tensorly TTTensor"):
        TensorTrain.from_tensorly([np.ones((1, 2, 2, 1))])
    with pytest.raises(TypeError, match="obj: expected a tensorly TTMatrix"):
        TTMatrix.from_tensorly([np.ones((1, 2, 1))])
    with pytest.raises(TypeError, match="value: expected a TensorTrain or TTMatrix, got ndarray"):
        to_tensorly(np.ones(2))
