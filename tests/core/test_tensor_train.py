"""ttnet.TensorTrain: validation, arithmetic and products against dense references."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import TensorTrain
from ttnet import ranks as R


def random_tt(seed, shape, ranks, dtype=np.float64):
    rng = np.random.default_rng(seed)
    cores = [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]
    if np.issubdtype(dtype, np.complexfloating):
        cores = [c + 1j * rng.standard_normal(c.shape) for c in cores]
    return TensorTrain([c.astype(dtype) for c in cores])


@st.composite
def pairs(draw, max_d=8):
    d = draw(st.integers(2, max_d))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(d))

    def ranks():
        return (1, *(draw(st.integers(1, 3)) for _ in range(d - 1)), 1)

    dtype = draw(st.sampled_from([np.float64, np.complex128]))
    seed = draw(st.integers(0, 2**31))
    return random_tt(seed, shape, ranks(), dtype), random_tt(seed + 1, shape, ranks(), dtype)


@given(pairs())
def test_arithmetic_matches_dense(pair):
    a, b = pair
    fa, fb = a.full(), b.full()
    assert np.allclose((a + b).full(), fa + fb)
    assert np.allclose((a - b).full(), fa - fb)
    assert np.allclose((2.5 * a).full(), 2.5 * fa)
    assert np.allclose((a * -1.5).full(), -1.5 * fa)
    assert np.allclose((a / 4).full(), fa / 4)
    assert np.allclose((-a).full(), -fa)
    assert np.allclose(a.hadamard(b).full(), fa * fb)
    inner = tuple(x + y for x, y in zip(a.ranks[1:-1], b.ranks[1:-1]))
    assert (a + b).ranks == (1, *inner, 1)


@given(pairs())
def test_dot_and_norm_match_dense(pair):
    a, b = pair
    fa, fb = a.full(), b.full()
    assert np.allclose(complex(a.dot(b)), np.vdot(fa, fb))
    assert np.isclose(float(a.norm()), np.linalg.norm(fa))


@given(pairs(max_d=6))
def test_orthogonalization_keeps_values(pair):
    a, _ = pair
    left, right = a.orthogonalize_left(), a.orthogonalize_right()
    assert np.allclose(left.full(), a.full()) and np.allclose(right.full(), a.full())
    for core in left.cores[:-1]:
        g = core.reshape(-1, core.shape[2])
        assert np.allclose(g.conj().T @ g, np.eye(g.shape[1]))
    for core in right.cores[1:]:
        g = core.reshape(core.shape[0], -1)
        assert np.allclose(g @ g.conj().T, np.eye(g.shape[0]))


def test_properties_and_repr():
    tt = random_tt(0, (2, 3, 4), (1, 2, 3, 1))
    assert tt.shape == (2, 3, 4) and tt.ndim == 3 and tt.ranks == (1, 2, 3, 1)
    assert tt.num_params == 2 * 2 + 2 * 3 * 3 + 3 * 4
    assert tt.dtype == np.float64 and tt.error is None and tt.device == "cpu"
    assert repr(tt) == "TensorTrain(shape=(2, 3, 4), ranks=(1, 2, 3, 1), dtype=float64, error=None)"
    assert isinstance(tt.cores, tuple)
    assert np.allclose(sum([tt, tt]).full(), 2 * tt.full())


def test_immutable():
    tt = random_tt(0, (2, 2), (1, 2, 1))
    with pytest.raises(AttributeError, match="immutable"):
        tt.cores = ()
    with pytest.raises(AttributeError):
        tt.shape = (1,)


def test_integer_cores_are_converted():
    tt = TensorTrain([np.ones((1, 2, 1), dtype=np.int64)])
    assert tt.dtype == np.float64


G = np.ones((1, 2, 1))


@pytest.mark.parametrize(
    ("cores", "error", "match"),
    [
        ([], ValueError, "cores: expected at least one core, got an empty list"),
        (np.ones((1, 2, 1)), TypeError, "cores: expected a list of arrays, got ndarray"),
        (
            [G, np.ones((2, 2, 1))],
            ValueError,
            r"cores\[1\]: ranks do not chain: cores\[0\] ends with rank 1 "
            r"but cores\[1\] starts with rank 2",
        ),
        ([G, np.ones((2, 1))], ValueError, r"cores\[1\]: expected 3 axes"),
        ([np.ones((2, 2, 1))], ValueError, r"cores\[0\]: expected first rank 1, got 2"),
        ([G, np.ones((1, 2, 3))], ValueError, r"cores\[1\]: expected last rank 1, got 3"),
        ([G, np.ones((1, 0, 1))], ValueError, r"cores\[1\]: expected a non-empty array"),
        ([G, np.full((1, 2, 1), np.nan)], ValueError, r"cores\[1\]: expected finite values"),
        ([G, G.astype(np.float32)], TypeError, r"cores\[1\]: expected dtype float64"),
        ([G, "x"], TypeError, r"cores\[1\]: expected a numpy array or torch tensor"),
    ],
)
def test_bad_cores(cores, error, match):
    with pytest.raises(error, match=match):
        TensorTrain(cores)


def test_bad_error_value():
    with pytest.raises(ValueError, match="error: expected None or a finite number >= 0"):
        TensorTrain([G], error=-1.0)


def test_mixed_libraries_in_cores_and_operations():
    torch = pytest.importorskip("torch")
    message = r"cores\[0\] is a numpy array but cores\[1\] is a torch array"
    with pytest.raises(TypeError, match=message):
        TensorTrain([G, torch.ones(1, 2, 1, dtype=torch.float64)])
    a = TensorTrain([G, G])
    b = TensorTrain([torch.ones(1, 2, 1, dtype=torch.float64)] * 2)
    with pytest.raises(TypeError, match="self is a numpy array but other is a torch array"):
        a + b
    with pytest.raises(TypeError, match="self is a numpy array but other is a torch array"):
        a.dot(b)


def test_shape_and_type_mismatch():
    a = random_tt(0, (2, 3), (1, 2, 1))
    with pytest.raises(ValueError, match=r"other: \+ needs equal shapes"):
        a + random_tt(0, (3, 2), (1, 2, 1))
    with pytest.raises(ValueError, match="other: hadamard needs equal shapes"):
        a.hadamard(random_tt(0, (2, 3, 1), (1, 1, 1, 1)))
    with pytest.raises(TypeError):
        a + 1.0
    with pytest.raises(TypeError):
        a * "x"


def test_dtype_promotion_in_sum():
    a = random_tt(0, (2, 3), (1, 2, 1), np.float32)
    b = random_tt(1, (2, 3), (1, 2, 1), np.float64)
    assert (a + b).dtype == np.float64


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    a, b = random_tt(0, (3, 2, 4), (1, 2, 3, 1)), random_tt(1, (3, 2, 4), (1, 3, 2, 1))
    ta = TensorTrain([torch.from_numpy(c) for c in a.cores])
    tb = TensorTrain([torch.from_numpy(c) for c in b.cores])
    assert isinstance(ta.full(), torch.Tensor) and ta.dtype == torch.float64
    assert np.allclose((ta + tb).full().numpy(), (a + b).full())
    assert np.allclose(ta.hadamard(tb).full().numpy(), a.hadamard(b).full())
    assert np.isclose(float(ta.dot(tb)), float(a.dot(b)))
    assert np.isclose(float(ta.norm()), float(a.norm()))
    assert np.allclose(ta.orthogonalize_left().full().numpy(), a.full())
    assert np.allclose((ta * 2.0).full().numpy(), 2 * a.full())


def test_torch_autograd_flows_through_dot():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    cores = [
        torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
        for shape in [(1, 3, 2), (2, 3, 1)]
    ]
    tt = TensorTrain(cores)
    tt.dot(tt).backward()
    assert cores[0].grad is not None and torch.isfinite(cores[0].grad).all()


def test_round_method_uses_rank_rules():
    a = random_tt(0, (3, 3, 3, 3), (1, 2, 2, 2, 1))
    doubled = a + a
    rounded = doubled.round(eps=1e-12)
    assert rounded.ranks == a.ranks and rounded.error <= 1e-12
    assert np.allclose(rounded.full(), 2 * a.full())
    assert max(doubled.round(max_rank=1).ranks) == 1
    assert doubled.round(max_params=20).num_params <= 20
    assert R.count_params(a.shape, a.ranks) == a.num_params


@pytest.mark.parametrize("lib,dtype", [("numpy", "float16"), ("torch", "float16"),
                                       ("torch", "bfloat16")])
def test_half_precision_norm_and_orthogonalisation(lib, dtype):
    """Half-precision cores: norm and both orthogonalisations run (in float32) and keep the
    dtype; the values agree with a float64 reference to the half format's resolution."""
    rng = np.random.default_rng(7)
    ref = [rng.standard_normal(s) for s in [(1, 5, 3), (3, 4, 2), (2, 6, 1)]]
    if lib == "numpy":
        cores = [c.astype(dtype) for c in ref]
        back = np.asarray
    else:
        torch = pytest.importorskip("torch")
        cores = [torch.tensor(c, dtype=getattr(torch, dtype)) for c in ref]
        back = lambda t: t.float().numpy()  # noqa: E731
    tt = TensorTrain(cores)
    exact = [back(c).astype(np.float64) for c in cores]  # the rounded cores, in float64
    dense = TensorTrain(exact).full()
    tol = 2e-2 if dtype == "bfloat16" else 3e-3
    norm = tt.norm()
    assert str(norm.dtype).endswith(dtype)
    assert abs(float(norm) - np.linalg.norm(dense)) <= tol * np.linalg.norm(dense)
    for ortho in (tt.orthogonalize_left(), tt.orthogonalize_right()):
        assert all(str(c.dtype).endswith(dtype) for c in ortho.cores)
        got = TensorTrain([back(c).astype(np.float64) for c in ortho.cores]).full()
        assert np.linalg.norm(got - dense) <= tol * np.linalg.norm(dense)
