"""Tests for ttnet.contraction: expressions against dense references for every executor, the
cost model as part of the cache key, caching, half precision, and torch autograd."""

import dataclasses

import numpy as np
import opt_einsum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet import contraction_info, ttm_expression, ttm_matvec, ttm_rmatvec
from ttnet.cost import COST_MODELS, CostModel, default_cost_model

EXECUTORS = ("steps", "einsum", "dense")
#: Synthetic models: the tests below depend on what they charge, never on fitted constants.
FLOPS_ONLY = CostModel("cpu", 1.0, 0.0, 0.0, source="test: FLOPs only")
MEMORY_ONLY = CostModel("cpu", 0.0, 1.0, 0.0, source="test: elements only")


@given(
    modes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    r=st.integers(1, 4),
    lead=st.lists(st.integers(0, 5), min_size=0, max_size=2),
    dtype=st.sampled_from([np.float32, np.float64]),
    executor=st.sampled_from(EXECUTORS),
    seed=st.integers(0, 2**16),
)
def test_every_executor_matches_dense(modes, r, lead, dtype, executor, seed, ref):
    rng = np.random.default_rng(seed)
    cores = ref.ttm_cores(rng, [a for a, _ in modes], [b for _, b in modes], r, dtype)
    w = ref.einsum_dense(cores)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    rows = int(np.prod(lead))
    x = rng.standard_normal((*lead, w.shape[1])).astype(dtype)
    matvec = ttm_expression([c.shape for c in cores], rows, executor=executor)
    y = matvec(cores, x)
    assert y.shape == (*lead, w.shape[0]) and y.dtype == dtype
    np.testing.assert_allclose(y, x @ w.T, rtol=tol, atol=tol * max(1, w.shape[1]))
    z = rng.standard_normal((*lead, w.shape[0])).astype(dtype)
    rmatvec = ttm_expression([c.shape for c in cores], rows, kind="rmatvec", executor=executor)
    bias = rng.standard_normal(w.shape[1]).astype(dtype)
    np.testing.assert_allclose(rmatvec(cores, z, bias), z @ w + bias, rtol=tol,
                               atol=tol * max(1, w.shape[0]))
    np.testing.assert_allclose(ttm_matvec(cores, x), x @ w.T, rtol=tol, atol=tol * max(1, w.shape[1]))


def test_cost_model_is_part_of_the_cache_key():
    """A changed model gets its own plan (the old module constants left stale plans)."""
    shapes = ((1, 2, 6, 5), (5, 2, 8, 5), (5, 2, 8, 1))  # a LoRA factor 384 -> 8
    first = ttm_expression(shapes, 512, cost_model=FLOPS_ONLY)
    assert ttm_expression(list(map(list, shapes)), 512, cost_model=FLOPS_ONLY) is first
    changed = dataclasses.replace(FLOPS_ONLY, seconds_per_call=1.0)
    second = ttm_expression(shapes, 512, cost_model=changed)
    assert second is not first and second.info.cost_model is changed
    assert first.info.cost_model is FLOPS_ONLY
    assert ttm_expression(shapes, 512).info.cost_model is default_cost_model("cpu")


def test_thin_factors_with_many_rows_move_less_memory_densely():
    """Intermediates of a thin network are as large as x; W of a LoRA factor is tiny."""
    for m, n in [((2, 2, 2), (6, 8, 8)), ((6, 8, 8), (2, 2, 2)), ((1, 2, 2, 2), (8, 8, 8, 8))]:
        shapes = [(1 if k == 0 else 5, a, b, 1 if k == len(m) - 1 else 5)
                  for k, (a, b) in enumerate(zip(m, n))]
        info = ttm_expression(shapes, 4096, cost_model=MEMORY_ONLY).info
        assert info.executor == "dense"
        assert info.dense_cost.elements < info.tt_cost.elements


def test_large_square_layer_takes_the_tt_network_by_flops():
    """4096 x 4096 at TT rank 8: opt_einsum's count of the network is a fraction of the GEMM's."""
    shapes = [(1, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8, 1)]
    for rows in (8, 64, 8192):
        info = ttm_expression(shapes, rows, cost_model=FLOPS_ONLY).info
        assert info.strategy == "tt" and info.tt_flops * 3 < 2 * rows * 4096 * 4096
        assert info.dense_flops == info.build_flops + 2 * rows * 4096 * 4096


def test_report_is_separate_from_the_runner(ref):
    cores = ref.ttm_cores(np.random.default_rng(0), (3, 5), (2, 7), 3)
    expression = ttm_expression([c.shape for c in cores], 11)
    info = expression.info
    assert not callable(info) and dataclasses.is_dataclass(info)
    assert info == contraction_info(cores, 11)
    assert info.path and info.equation.count(",") == 2
    assert info.flops == (info.dense_flops if info.executor == "dense" else info.tt_flops)


def test_path_search_is_cached(monkeypatch, ref):
    cores = ref.ttm_cores(np.random.default_rng(0), (3, 5), (2, 7), 3)
    x = np.ones((11, 14))
    ttm_matvec(cores, x)
    calls = []
    original = opt_einsum.contract_path
    monkeypatch.setattr(
        opt_einsum, "contract_path", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    hits = ttm_expression.cache_info().hits
    for _ in range(5):
        ttm_matvec(cores, x)
    assert calls == [] and ttm_expression.cache_info().hits == hits + 5
    ttm_matvec(cores, np.ones((12, 14)))  # a new row count is a new search
    assert calls == [1]
    assert contraction_info(cores, 11) is contraction_info(cores, 11)


def test_path_depends_on_rows(ref):
    cores = ref.ttm_cores(np.random.default_rng(0), (4, 4, 4), (4, 4, 4), 4)
    assert contraction_info(cores, 8).path != contraction_info(cores, 8192).path


def test_zero_rows(ref):
    cores = ref.ttm_cores(np.random.default_rng(0), (2, 3), (4, 5), 2)
    assert ttm_matvec(cores, np.ones((0, 20))).shape == (0, 6)
    assert contraction_info(cores, 0).strategy == "dense"


def test_bad_inputs(ref):
    cores = ref.ttm_cores(np.random.default_rng(0), (2, 3), (4, 5), 2)
    shapes = [c.shape for c in cores]
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 20\), got \(3, 6\)"):
        ttm_matvec(cores, np.ones((3, 6)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 6\)"):
        ttm_rmatvec(cores, np.ones((3, 20)))
    with pytest.raises(ValueError, match="x must have shape"):
        ttm_matvec(cores, np.float64(1.0))
    with pytest.raises(ValueError, match="rows must be"):
        contraction_info(cores, -1)
    with pytest.raises(ValueError, match="rows must be"):
        ttm_expression(shapes, True)
    with pytest.raises(ValueError, match="kind must be"):
        contraction_info(cores, 2, kind="both")
    with pytest.raises(ValueError, match="executor must be"):
        ttm_expression(shapes, 2, executor="gpu")
    with pytest.raises(TypeError, match="cost_model: expected a CostModel"):
        ttm_expression(shapes, 2, cost_model="cpu")
    expression = ttm_expression(shapes, 3)
    with pytest.raises(ValueError, match="with 3 rows"):
        expression(cores, np.ones((4, 20)))
    with pytest.raises(ValueError, match="expected 2 cores"):
        expression(cores[:1], np.ones((3, 20)))
    with pytest.raises(ValueError, match="ranks do not chain"):
        ttm_expression([(1, 2, 2, 2), (3, 2, 2, 1)], 3)


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("merged", [False, True])
def test_torch_executors_agree_in_values_and_gradients(executor, merged, ref):
    """float64 gradcheck of x, bias and cores; ``merged``: cores given as (r, m*n, r')."""
    torch = pytest.importorskip("torch")
    shapes = ((1, 2, 3, 2), (2, 4, 1, 3), (3, 1, 5, 1))
    gen = torch.Generator().manual_seed(0)
    cores = [torch.randn(s, dtype=torch.float64, generator=gen) for s in shapes]
    if merged:
        cores = [c.reshape(c.shape[0], -1, c.shape[-1]) for c in cores]
    cores = [c.requires_grad_() for c in cores]
    expression = ttm_expression(shapes, 6, executor=executor)
    x = torch.randn(2, 3, 15, dtype=torch.float64, generator=gen, requires_grad=True)
    bias = torch.randn(8, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b, *c: expression(list(c), x, b), (x, bias, *cores))
    w = torch.from_numpy(ref.einsum_dense([c.detach().reshape(s).numpy() for c, s in
                                       zip(cores, shapes)]))
    torch.testing.assert_close(expression(cores, x, bias), x @ w.T + bias)


def test_torch_dense_route_is_one_autograd_node():
    torch = pytest.importorskip("torch")
    shapes = ((1, 2, 6, 5), (5, 2, 8, 5), (5, 2, 8, 1))
    cores = [torch.randn(s, requires_grad=True) for s in shapes]
    x = torch.randn(64, 384, requires_grad=True)
    y = ttm_expression(shapes, 64, executor="dense")(cores, x)
    assert type(y.grad_fn).__name__ == "ProductsBackward"
    with torch.no_grad():  # nothing to record: plain operations, no node
        assert ttm_expression(shapes, 64, executor="dense")(cores, x).grad_fn is None


def test_torch_uses_the_model_of_its_device_kind_or_the_one_given():
    torch = pytest.importorskip("torch")
    cores = [torch.randn(s) for s in ((1, 4, 4, 3), (3, 4, 4, 1))]
    assert contraction_info(cores, 32).cost_model is COST_MODELS["cpu"]
    calls_only = CostModel("cpu", 0.0, 0.0, 1.0)
    x = torch.randn(32, 16, requires_grad=True)
    y = ttm_matvec(cores, x, cost_model=calls_only)
    info = contraction_info(cores, 32, cost_model=calls_only)
    assert info.cost_model is calls_only
    assert (type(y.grad_fn).__name__ == "ProductsBackward") == (info.executor == "dense")


@pytest.mark.parametrize("half", ["bfloat16", "float16"])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_half_precision_computes_in_float32(half, executor, ref):
    """Each entry is the exact product up to one half-precision ulp plus float32 round-off
    (a chain of d products rounded in half precision, 2^-8 or 2^-11 each, misses that)."""
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, half)
    shapes = ((1, 4, 8, 6), (6, 4, 8, 6), (6, 4, 8, 6), (6, 2, 4, 1))
    gen = torch.Generator().manual_seed(0)
    cores = [(torch.randn(s, generator=gen) / 3).to(dtype).requires_grad_() for s in shapes]
    x = torch.randn(16, 2048, generator=gen).to(dtype).requires_grad_()
    y = ttm_expression(shapes, 16, executor=executor)(cores, x)
    assert y.dtype == dtype
    w = torch.from_numpy(ref.einsum_dense([c.detach().double().numpy() for c in cores]))
    exact = x.detach().double() @ w.T
    ulp = torch.finfo(dtype).eps * 2.0 ** torch.floor(torch.log2(exact.abs()))
    scale = x.detach().double().abs() @ w.abs().T  # float32 round-off: 1e-6 of it
    assert bool(((y.double() - exact).abs() <= ulp + 1e-6 * scale).all())
    y.float().sum().backward()
    assert x.grad.dtype == dtype and all(c.grad.dtype == dtype for c in cores)


def test_torch_einsum_executor_and_its_fallback(monkeypatch, ref):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    np_cores = ref.ttm_cores(rng, (4, 8, 8, 4), (4, 8, 8, 4), 8)
    cores = [torch.nn.Parameter(torch.from_numpy(c)) for c in np_cores]
    expression = ttm_expression([c.shape for c in cores], 64, executor="einsum")
    x = torch.from_numpy(rng.standard_normal((64, 1024))).requires_grad_()
    calls = []
    original = torch._VF.einsum
    monkeypatch.setattr(
        torch._VF, "einsum", lambda *a, **k: calls.append(k["path"]) or original(*a, **k)
    )
    y = expression(cores, x)
    y.square().sum().backward()
    assert calls == [[i for step in expression.info.path for i in step]]
    grads = [x.grad, *(c.grad for c in cores)]
    ref = x.detach().numpy() @ ref.einsum_dense(np_cores).T
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-10)
    assert expression(np_cores, x.detach().numpy()).shape == (64, 1024)  # numpy: the steps
    assert len(calls) == 1

    # a torch whose _VF.einsum takes no path: the call raises TypeError, the steps run
    monkeypatch.setattr(torch._VF, "einsum", lambda equation, operands: pytest.fail("no path"))
    for t in (x, *cores):
        t.grad = None
    y2 = expression(cores, x)
    y2.square().sum().backward()
    torch.testing.assert_close(y2, y)
    for before, t in zip(grads, (x, *cores)):
        torch.testing.assert_close(t.grad, before)
