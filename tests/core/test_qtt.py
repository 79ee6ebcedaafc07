"""ttnet.quantize / ttnet.dequantize against dense reshapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ttnet

torch = pytest.importorskip("torch")


@given(st.data())
def test_quantize_round_trip_matches_dense(data):
    base = data.draw(st.sampled_from([2, 3]))
    digits = data.draw(st.lists(st.integers(0, 4 if base == 2 else 2), min_size=1, max_size=3))
    shape = tuple(base**L for L in digits)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal(shape) * data.draw(st.sampled_from([1.0, 1e-12, 1e12]))
    library = data.draw(st.sampled_from(["numpy", "torch"]))
    arg = torch.as_tensor(x) if library == "torch" else x
    q = ttnet.quantize(arg, base=base, eps=1e-13)
    total = sum(digits)
    assert q.shape == ((base,) * total if total else (1,))
    back = ttnet.dequantize(q, shape)
    full = back.full()
    full = full.numpy() if library == "torch" else full
    assert back.shape == shape
    assert np.linalg.norm(full - x) <= 1e-12 * np.linalg.norm(x)
    # the same QTT from the TT of x, without the full tensor
    q2 = ttnet.quantize(ttnet.tt_svd(arg), base=base, eps=1e-13)
    q2_full = q2.full().numpy() if library == "torch" else q2.full()
    assert q2.shape == q.shape
    assert np.linalg.norm(q2_full.reshape(shape) - x) <= 1e-12 * np.linalg.norm(x)


def test_smooth_vector_has_small_qtt_ranks():
    x = np.exp(-np.linspace(0, 3, 2**16) ** 2)
    q = ttnet.quantize(x, eps=1e-10)
    assert q.shape == (2,) * 16 and max(q.ranks) <= 8 and q.error <= 1e-10
    assert q.num_params < 600


def test_quantize_errors():
    with pytest.raises(ValueError, match="x: mode 1 has size 6, not a power of base 2"):
        ttnet.quantize(np.ones((4, 6)))
    with pytest.raises(ValueError, match="base: expected an int >= 2"):
        ttnet.quantize(np.ones(4), base=1)
    q = ttnet.quantize(np.arange(16.0))
    with pytest.raises(ValueError, match="shape: mode 1 of size 3 is not a product"):
        ttnet.dequantize(q, (2, 3))
    with pytest.raises(ValueError, match=r"shape: \(4,\) covers only 2 of the 4 modes"):
        ttnet.dequantize(q, (4,))
    with pytest.raises(TypeError, match="qtt: expected a TensorTrain"):
        ttnet.dequantize(np.ones(4), (4,))
