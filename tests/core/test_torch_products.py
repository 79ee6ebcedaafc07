"""ttnet._torch_products: the dense route as one autograd node with generated code, checked
against plain autograd of an einsum reference (gradcheck in float64, float32 against float64),
over layouts that need a gather and ones that do not, every option of a stage, partial
gradients, and the caches (views of the cores, indices) under in-place edits and new storage."""


import pytest

torch = pytest.importorskip("torch")

from ttnet._torch_products import Factor, ProductsPlan, Stage, run_products
from ttnet.dense import build_spec


class Tanh:
    """A map whose backward reads its output (and whose forward overwrites its input)."""

    needs_input = False

    def forward(self, a):
        return a.tanh_()

    def backward(self, g, a, h):
        return g * (1 - h * h)


class Softplus:
    """A map whose backward reads its input."""

    needs_input = True

    def forward(self, a):
        return torch.nn.functional.softplus(a)

    def backward(self, g, a, h):
        return g * torch.sigmoid(a)


def _factor(shapes, matvec, merged=False):
    """A Factor for TT-matrix cores of ``shapes``; ``merged``: the cores are passed 3-D."""
    core_shapes = [(s[0], s[1] * s[2], s[3]) if merged else s for s in shapes]
    return Factor(build_spec(tuple(shapes)), matvec, core_shapes), core_shapes


# (shapes, matvec, merged) -> V (in, out): gathers in both directions (down, up), none forward
# (the paper's rows-then-columns layouts, given 3-D), one core, four cores; gradients formed
# transposed (in > out) and not
FACTORS = {
    "down": (((1, 2, 3, 2), (2, 2, 2, 3), (3, 2, 2, 1)), True, False),  # 12 -> 8
    "up": (((1, 3, 2, 2), (2, 2, 2, 2), (2, 2, 2, 1)), True, False),  # 8 -> 12
    "down_paper": (((1, 3, 1, 2), (2, 2, 1, 2), (2, 2, 2, 2), (2, 1, 4, 1)), False, True),
    "up_paper": (((1, 2, 1, 2), (2, 2, 1, 2), (2, 2, 3, 2), (2, 1, 4, 1)), False, True),
    "one_core": (((1, 3, 5, 1),), True, False),  # 5 -> 3
    "four_cores": (((1, 2, 1, 2), (2, 1, 2, 2), (2, 2, 2, 2), (2, 1, 2, 1)), True, False),
}


def _reference(ref, stages, residual, x, tensors, specs):
    """The plan's formula with autograd through einsum."""
    h, at = x, 0
    for stage, (shapes, matvec, _) in zip(stages, specs):
        cores = [t.reshape(s) for t, s in zip(tensors[at:], shapes)]
        at += len(shapes)
        w = ref.einsum_dense(cores, torch.einsum)
        a = stage.scale * (h @ (w.T if matvec else w))
        if stage.bias:
            a = a + stage.bias_scale * tensors[at]
            at += 1
        if stage.map is not None:
            a = torch.tanh(a) if isinstance(stage.map, Tanh) else torch.nn.functional.softplus(a)
        h = a
    return h + x if residual else h


def _case(names, options, residual, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    specs = [FACTORS[n] for n in names]
    stages, tensors = [], []
    for spec, opts in zip(specs, options):
        f, core_shapes = _factor(*spec)
        stages.append(Stage(f, **opts))
        tensors += [torch.randn(s, dtype=dtype, generator=gen) / 2 for s in core_shapes]
        if opts.get("bias"):
            tensors.append(torch.randn(f.shape[1], dtype=dtype, generator=gen))
    plan = ProductsPlan(tuple(stages), residual=residual)
    x = torch.randn(5, plan.in_size, dtype=dtype, generator=gen)
    return plan, specs, x, tensors


CASES = [
    (["down"], [{}], False),
    (["up_paper"], [{"bias": True, "scale": 0.5}], False),
    (["one_core"], [{"scale": -2.0}], False),
    (["four_cores"], [{"bias": True}], False),
    # LoRA: the scale on the first product, no bias
    (["down", "up"], [{"scale": 2.0}, {}], False),
    (["down_paper", "up_paper"], [{"scale": 2.0}, {}], False),
    # adapter: bias and map, then bias with scale, and the residual
    (["down", "up"], [{"bias": True, "map": Tanh()},
                      {"bias": True, "scale": 0.5, "bias_scale": 0.5}], True),
    (["down_paper", "up_paper"], [{"bias": True, "map": Softplus()}, {"bias": True}], True),
]


@pytest.mark.parametrize(("names", "options", "residual"), CASES)
def test_gradcheck_against_the_formula(names, options, residual, ref):
    plan, specs, x, tensors = _case(names, options, residual)
    stages = plan.stages
    inputs = [x.requires_grad_(), *(t.requires_grad_() for t in tensors)]
    assert torch.autograd.gradcheck(lambda x, *t: run_products(plan, x, t), inputs)
    y = run_products(plan, x, tensors)
    assert y.grad_fn.name() == "ProductsBackward"
    torch.testing.assert_close(y, _reference(ref, stages, residual, x, tensors, specs))
    with torch.no_grad():  # plain forward, no node
        torch.testing.assert_close(run_products(plan, x, tensors), y.detach())


@pytest.mark.parametrize(("names", "options", "residual"), CASES[4:])
def test_float32_forward_and_backward_against_float64(names, options, residual, ref):
    plan, specs, x64, t64 = _case(names, options, residual)
    x32 = x64.float().requires_grad_()
    t32 = [t.float().requires_grad_() for t in t64]
    x64.requires_grad_()
    for t in t64:
        t.requires_grad_()
    y32 = run_products(plan, x32, t32)
    y64 = _reference(ref, plan.stages, residual, x64, t64, specs)
    torch.testing.assert_close(y32.double(), y64, rtol=1e-5, atol=1e-5)
    grad = torch.randn(y64.shape, dtype=torch.float64)
    y32.backward(grad.float())
    y64.backward(grad)
    for a, b in zip([x32, *t32], [x64, *t64]):
        assert a.grad.dtype == torch.float32
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-5)


def test_partial_gradients_and_inputs_of_any_rank(ref):
    """Frozen cores get no gradient (and cost none); a 3-D input and an expanded output
    gradient (from a sum) work."""
    plan, specs, x, tensors = _case(["down", "up"], [{"scale": 2.0}, {}], False,
                                    dtype=torch.float32)
    frozen = tensors[:3]
    trained = [t.requires_grad_() for t in tensors[3:]]
    x3 = x.reshape(5, 1, -1)
    y = run_products(plan, x3, [*frozen, *trained])
    assert y.shape == (5, 1, plan.out_size)
    y.sum().backward()
    assert all(t.grad is None for t in frozen)
    reference = [t.detach().clone().requires_grad_() for t in trained]
    _reference(ref, plan.stages, False, x, [*frozen, *reference], specs).sum().backward()
    for a, b in zip(trained, reference):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_core_views_follow_in_place_edits_and_new_storage(ref):
    plan, specs, x, tensors = _case(["down", "up_paper"], [{}, {}], False,
                                    dtype=torch.float32)
    first = run_products(plan, x, tensors)
    with torch.no_grad():
        tensors[1].mul_(3.0)  # the cached view shows it
    torch.testing.assert_close(run_products(plan, x, tensors),
                               _reference(ref, plan.stages, False, x, tensors, specs))
    fresh = [t.clone() for t in tensors]
    fresh[0].zero_()  # new storage: viewed anew
    assert run_products(plan, x, fresh).abs().max() == 0
    # non-contiguous cores: correct, and never kept (their matrices are copies)
    odd = [t.transpose(0, -1).contiguous().transpose(0, -1) for t in tensors]
    torch.testing.assert_close(run_products(plan, x, odd), run_products(plan, x, tensors))
    with torch.no_grad():
        odd[2].mul_(-1.0)
    torch.testing.assert_close(run_products(plan, x, odd),
                               _reference(ref, plan.stages, False, x, odd, specs))
    assert not torch.allclose(first, run_products(plan, x, odd))


def test_edits_between_forward_and_backward_and_double_backward_raise():
    plan, _, x, tensors = _case(["down"], [{}], False, dtype=torch.float32)
    cores = [t.requires_grad_() for t in tensors]
    y = run_products(plan, x, cores)
    with torch.no_grad():
        cores[0].add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = run_products(plan, x.requires_grad_(), cores)
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=False)
    assert gx.shape == x.shape
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(run_products(plan, x, cores).sum(), x, create_graph=True)


def test_apply_with_built_matrices_equals_the_forward(ref):
    plan, specs, x, tensors = _case(["down", "up"], [{"bias": True, "map": Tanh()},
                                                     {"bias": True, "scale": 0.5}], True)
    weights, at = [], 0
    for (shapes, matvec, _), stage in zip(specs, plan.stages):
        w = ref.einsum_dense([t.reshape(s) for t, s in zip(tensors[at:], shapes)],
                             torch.einsum)
        weights.append((w.T if matvec else w).contiguous())
        at += len(shapes) + stage.bias
    torch.testing.assert_close(run_products(plan, x, tensors, weights),
                               run_products(plan, x, tensors))


def test_bad_plans_are_refused():
    f1, _ = _factor(*FACTORS["down"])  # 12 -> 8
    f2, _ = _factor(*FACTORS["one_core"])  # 5 -> 3
    with pytest.raises(ValueError, match="sizes do not chain"):
        ProductsPlan((Stage(f1), Stage(f2)))
    with pytest.raises(ValueError, match="last stage must have no map"):
        ProductsPlan((Stage(f1, map=Tanh()),))
    with pytest.raises(ValueError, match="residual"):
        ProductsPlan((Stage(f1),), residual=True)


def test_the_generated_code_is_straight_line():
    plan, *_ = _case(["down", "up"], [{"scale": 2.0}, {}], False)
    for word in ("for ", "while ", "range(", "zip("):
        assert word not in plan.source
    assert plan.source.count("index_select") == 4  # two gathers each way
