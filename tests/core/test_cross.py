"""ttnet.tt_cross and ttnet.apply: exact recovery, budgets, error estimates, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttnet
from ttnet import TensorTrain


class CountingOracle:
    """Entries of a reference TT; records every multi-index it is asked for."""

    def __init__(self, tt):
        self.tt = tt
        self.seen = []

    def __call__(self, indices):
        assert indices.dtype == np.int64 and indices.ndim == 2
        self.seen.extend(map(tuple, indices.tolist()))
        return self.tt.gather(indices)

    @property
    def count(self):
        return len(self.seen)


@st.composite
def known_rank_tts(draw):
    """Random TTs of known ranks, some with extreme scales or a core with zero slices."""
    d = draw(st.integers(4, 6))
    shape = [draw(st.integers(4, 8)) for _ in range(d)]
    ranks = [1] + [draw(st.integers(1, 5)) for _ in range(d - 1)] + [1]
    for k in range(1, d):
        ranks[k] = min(ranks[k], int(np.prod(shape[:k])), int(np.prod(shape[k:])))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    cores = [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]
    if draw(st.booleans()):  # a mode where most slices are zero: pivots must avoid them
        k = draw(st.integers(0, d - 1))
        cores[k][:, 1:-1, :] = 0.0
    scale = draw(st.sampled_from([1.0, 1e-9, 1e9]))
    cores[0] = cores[0] * scale
    return TensorTrain(cores)


def unfolding_ranks(full):
    shape = full.shape
    return (1, *(int(np.linalg.matrix_rank(full.reshape(int(np.prod(shape[:k])), -1)))
                 for k in range(1, len(shape))), 1)


@given(known_rank_tts())
def test_cross_recovers_known_rank_exactly(tt):
    oracle = CountingOracle(tt)
    result = ttnet.tt_cross(oracle, tt.shape, eps=1e-12, n_check=10)
    full = tt.full()
    assert result.info.stop != "dense"
    assert np.linalg.norm(result.full() - full) <= 1e-10 * np.linalg.norm(full)
    assert result.ranks == unfolding_ranks(full)
    assert len(set(oracle.seen)) == oracle.count == result.info.evals  # never twice
    assert result.info.evals < np.prod(tt.shape)


def inverse_square(d, n):
    x = np.linspace(-1, 1, n)
    return lambda i: 1.0 / (1.0 + (x[i] ** 2).sum(axis=1))


@settings(max_examples=15)
@given(st.integers(0, 6000))
def test_max_evals_is_never_exceeded(extra):
    fn = inverse_square(6, 16)
    calls = []

    def oracle(indices):
        calls.append(len(indices))
        return fn(indices)

    budget = 16 + 200 + 6 * 16 + extra
    tt = ttnet.tt_cross(oracle, [16] * 6, eps=1e-12, max_evals=budget, n_check=200)
    assert sum(calls) == tt.info.evals <= budget
    assert tt.info.calls == len(calls)
    if tt.info.stop != "max_evals":
        assert tt.info.stop == "eps"
    assert np.isfinite(tt.error)


def test_max_evals_below_one_sweep_is_an_error():
    with pytest.raises(ValueError, match=r"max_evals: one sweep at rank 1 needs 96 .* got 500"):
        ttnet.tt_cross(inverse_square(6, 16), [16] * 6, max_evals=500, n_check=1000)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
def test_error_estimate_matches_true_error(eps):
    """The held-out error and the error on 20,000 fresh entries agree and meet eps."""
    fn = inverse_square(8, 32)
    tt = ttnet.tt_cross(fn, [32] * 8, eps=eps, seed=3)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 32, size=(20000, 8))
    values = fn(idx)
    true = np.linalg.norm(tt.gather(idx) - values) / np.linalg.norm(values)
    assert tt.info.stop == "eps"
    assert true <= eps and tt.error <= eps
    assert true / 3 <= tt.error <= 3 * true
    assert tt.info.history[-1][0] <= tt.info.evals


def test_large_function_to_1e6():
    """The docs' example size: 16**30 (about 1e36) entries."""
    fn = inverse_square(30, 16)
    tt = ttnet.tt_cross(fn, [16] * 30, eps=1e-6, n_check=500)
    idx = np.random.default_rng(0).integers(0, 16, size=(5000, 30))
    values = fn(idx)
    assert np.linalg.norm(tt.gather(idx) - values) <= 1e-6 * np.linalg.norm(values)
    assert tt.info.evals < 200_000


def test_max_rank_stops_and_caps():
    tt = ttnet.tt_cross(inverse_square(8, 32), [32] * 8, eps=1e-12, max_rank=3)
    assert max(tt.ranks) <= 3 and tt.info.stop == "max_rank"
    assert 1e-12 < tt.error < 1e-2


def test_same_seed_same_result_and_complex_values():
    x = np.linspace(0, 1, 20)

    def fn(i):
        return np.exp(1j * x[i].sum(axis=1)) / (1 + x[i][:, 0])

    a = ttnet.tt_cross(fn, [20] * 5, eps=1e-10)
    b = ttnet.tt_cross(fn, [20] * 5, eps=1e-10)
    assert a.dtype == np.complex128 and all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores))
    assert np.allclose(a.full(), fn(np.indices([20] * 5).reshape(5, -1).T).reshape([20] * 5))


def test_small_tensors_are_evaluated_whole_and_zero_functions():
    tt = ttnet.tt_cross(lambda i: (i * 1.0).sum(axis=1), [3, 4, 5])
    assert tt.info.stop == "dense" and tt.info.evals == 60 and tt.error < 1e-14
    zero = ttnet.tt_cross(lambda i: np.zeros(len(i)), [16] * 6, n_check=100)
    assert zero.info.stop == "zero" and not np.any(zero.full())


def test_float32_answers_give_float32_cores():
    fn = inverse_square(5, 16)
    tt = ttnet.tt_cross(lambda i: fn(i).astype(np.float32), [16] * 5, eps=1e-5, n_check=100)
    assert tt.dtype == np.float32 and tt.error < 1e-5


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    pytest.importorskip("tqdm")
    ttnet.tt_cross(inverse_square(5, 16), [16] * 5, eps=1e-6, n_check=100)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    ttnet.tt_cross(inverse_square(5, 16), [16] * 5, eps=1e-6, n_check=100, progress=True)
    assert "cross sweep 1" in capsys.readouterr().err


def test_torch_indices_and_cores():
    torch = pytest.importorskip("torch")
    x = torch.as_tensor(np.linspace(-1, 1, 16))
    seen = []

    def fn(i):
        seen.append(type(i))
        return 1.0 / (1.0 + (x[i] ** 2).sum(dim=1))

    tt = ttnet.tt_cross(fn, [16] * 6, eps=1e-8, like=torch.zeros(0), n_check=200)
    ref = ttnet.tt_cross(inverse_square(6, 16), [16] * 6, eps=1e-8, n_check=200)
    assert set(seen) == {torch.Tensor} and isinstance(tt.cores[0], torch.Tensor)
    assert tt.dtype == torch.float64 and tt.ranks == ref.ranks
    assert all(np.allclose(a.numpy(), b) for a, b in zip(tt.cores, ref.cores))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda i: np.zeros((len(i), 1)), (r"fn: for indices of shape \(\d+, 6\) expected values "
                                          r"of shape \(\d+,\), got shape \(\d+, 1\)")),
        (lambda i: np.zeros(len(i) - 1), r"fn: .* got shape \(\d+,\)"),
        (lambda i: np.array(["a"] * len(i)), r"fn: .* of a numeric dtype, got dtype <U1"),
        (lambda i: np.where(i[:, 0] == 3, np.nan, 1.0), r"fn: .* finite values, got NaN"),
        (lambda i: np.full(len(i), np.inf), r"fn: .* finite values, got NaN or infinity"),
        (lambda i: None, r"fn: for indices of shape \(\d+, 6\) expected .*got shape \(\)"),
    ],
)
def test_bad_answers_of_fn(answer, message):
    with pytest.raises(ValueError, match=message):
        ttnet.tt_cross(answer, [16] * 6, eps=1e-6, n_check=100)


def test_bad_arguments():
    fn = inverse_square(3, 16)
    with pytest.raises(ValueError, match=r"shape\[1\]: expected a mode size >= 1, got 0"):
        ttnet.tt_cross(fn, [16, 0, 16])
    with pytest.raises(ValueError, match="shape: expected at least one mode"):
        ttnet.tt_cross(fn, [])
    with pytest.raises(TypeError, match="fn: expected a callable"):
        ttnet.tt_cross("f", [16] * 3)
    with pytest.raises(ValueError, match="eps"):
        ttnet.tt_cross(fn, [16] * 3, eps=-1.0)
    with pytest.raises(ValueError, match="max_rank"):
        ttnet.tt_cross(fn, [16] * 3, max_rank=0)


# --- apply --------------------------------------------------------------------------------


@st.composite
def small_tts(draw, positive=False):
    d = draw(st.integers(3, 5))
    shape = [draw(st.integers(5, 9)) for _ in range(d)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    grids = [rng.uniform(0.1, 1.0, n) for n in shape]
    # a sum of separable terms (rank 2): exp/sqrt/1/x of it have fast-decaying TT ranks
    cores = []
    for k, g in enumerate(grids):
        core = np.zeros((1 if k == 0 else 2, len(g), 1 if k == d - 1 else 2))
        if k == 0:
            core[0, :, 0], core[0, :, -1] = 1.0, g
        elif k == d - 1:
            core[0, :, 0], core[-1, :, 0] = g, 1.0
        else:
            core[0, :, 0], core[1, :, 1], core[0, :, 1] = 1.0, 1.0, g
        cores.append(core)
    return TensorTrain(cores)


@given(small_tts(), st.sampled_from(["exp", "sqrt", "inv"]))
def test_apply_matches_dense(tt, name):
    fn = {"exp": np.exp, "sqrt": np.sqrt, "inv": lambda v: 1.0 / v}[name]
    out = ttnet.apply(fn, tt, eps=1e-10, n_check=50)
    ref = fn(tt.full())
    assert np.linalg.norm(out.full() - ref) <= 1e-8 * np.linalg.norm(ref)
    assert out.error is not None and out.info.evals <= max(np.prod(tt.shape), 2000 * tt.ndim)


def test_apply_several_tts_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b, c = (ttnet.tt_svd(rng.uniform(0.5, 1, (6, 7, 8, 9)), max_rank=2) for _ in range(3))
    out = ttnet.apply(lambda x, y, z: x * y + z, a, b, c, eps=1e-12, n_check=50)
    assert np.allclose(out.full(), a.full() * b.full() + c.full())
    ta = TensorTrain([torch.as_tensor(g.copy()) for g in a.cores])
    tout = ttnet.apply(torch.exp, ta, eps=1e-12, n_check=50)
    assert isinstance(tout.cores[0], torch.Tensor)
    assert np.allclose(tout.full().numpy(), np.exp(a.full()))


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_apply_bad_input():
    a = ttnet.tt_svd(np.ones((4, 5, 6)))
    with pytest.raises(TypeError, match="at least one TensorTrain"):
        ttnet.apply(np.exp)
    with pytest.raises(ValueError, match=r"tts\[1\]: shape"):
        ttnet.apply(np.add, a, ttnet.tt_svd(np.ones((4, 5, 7))))
    with pytest.raises(ValueError, match="fn: .*finite"):
        ttnet.apply(lambda v: 1.0 / (v - 1.0), a, n_check=20)
