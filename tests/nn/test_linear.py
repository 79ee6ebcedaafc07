"""TTLinear: forward vs dense, layouts, initialisation, compression, dtypes, robustness."""

import io
import math

import pytest
import torch
from torch import nn

from ttnet import CostModel, plans, tt_full
from ttnet_nn import TTLinear

#: Synthetic cost models: tests that depend on a route choice say what the model charges.
FLOPS_ONLY = CostModel("cpu", 1.0, 0.0, 0.0, source="test: FLOPs only")
MEMORY_ONLY = CostModel("cpu", 0.0, 1.0, 0.0, source="test: elements only")

SIZES = [(768, 768), (576, 384), (384, 3072), (4099, 64), (64, 4099), (1, 5), (7, 1), (13, 13)]


def _reference(layer: TTLinear, x: torch.Tensor) -> torch.Tensor:
    return x @ layer.dense_weight().T + (0 if layer.bias is None else layer.bias)


@pytest.mark.parametrize(("in_features", "out_features"), SIZES)
def test_forward_matches_dense_weight_any_size(in_features, out_features):
    torch.manual_seed(0)
    layer = TTLinear(in_features, out_features, tt_rank=3, dtype=torch.float64)
    for lead in [(), (5,), (2, 3)]:
        x = torch.randn(*lead, in_features, dtype=torch.float64)
        y = layer(x)
        assert y.shape == (*lead, out_features)
        torch.testing.assert_close(y, _reference(layer, x), rtol=1e-10, atol=1e-12)


def test_planned_layout_follows_plan_matrix():
    layer = TTLinear(4096, 4096, tt_rank=8)
    assert [tuple(c.shape) for c in layer.cores] == [
        (1, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8, 1)
    ]
    plan = plans.plan_matrix(4099, 768)
    padded = TTLinear(768, 4099, shapes=plan)
    assert tuple(c.shape[1] for c in padded.cores) == plan.row_shape
    assert padded.dense_weight().shape == (4099, 768)


def test_explicit_modes_and_rank_clipping():
    layer = TTLinear(6, 4, shapes=((2, 2), (2, 3)), tt_rank=100, bias=False)
    assert layer.tt_ranks == (1, 4, 1)  # a bond can carry at most min(2*2, 2*3) = 4
    per_bond = TTLinear(512, 512, tt_rank=(2, 3))
    assert per_bond.tt_ranks == (1, 2, 3, 1)


@pytest.mark.parametrize(
    ("in_features", "out_features", "shape", "params"),
    [
        (768, 64, (8, 8, 12, 8, 8), 780),
        (64, 768, (8, 8, 12, 8, 8), 780),
        (4096, 64, (16, 16, 16, 4, 4, 4), 1100),
        (768, 8, (8, 8, 12, 8), 580),
        (8, 2304, (8, 8, 8, 4, 9), 585),
    ],
)
def test_paper_preset_reproduces_parameter_counts(in_features, out_features, shape, params):
    layer = TTLinear(in_features, out_features, bias=False, tt_rank=5, shapes="paper")
    assert layer.layout.tensor_shape == shape
    assert layer.num_params == params


@pytest.mark.parametrize(
    ("in_features", "out_features", "shape", "viewed_as_matrix"),
    [
        (768, 64, (8, 8, 12, 8, 8), True),  # boundary between modes
        (4096, 8, (16, 16, 8, 4, 4), True),  # boundary inside the 4th mode (4 = 2 * 2)
        (8, 4096, (16, 16, 8, 4, 4), True),  # boundary inside the first mode (16 = 8 * 2)
        (6, 4, (4, 6), False),  # 6 does not split (4, 6) row-major: dense fallback
    ],
)
def test_tensor_layout_is_the_row_major_reshape(in_features, out_features, shape,
                                               viewed_as_matrix):
    torch.manual_seed(1)
    layer = TTLinear(in_features, out_features, tt_rank=3, shapes=shape, dtype=torch.float64)
    assert (layer.layout.splits is not None) == viewed_as_matrix
    full = tt_full(list(layer.cores)).reshape(in_features, out_features)
    torch.testing.assert_close(layer.dense_weight(), full.T)
    x = torch.randn(3, in_features, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ full + layer.bias, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("in_features", "out_features", "shapes"),
    [
        (768, 768, None),
        (1024, 4096, None),
        (4099, 768, None),
        (768, 64, "paper"),
        (64, 768, "paper"),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_init_matches_nn_linear_weight_variance(in_features, out_features, shapes, seed):
    torch.manual_seed(seed)
    layer = TTLinear(in_features, out_features, tt_rank=8, shapes=shapes)
    weight = layer.dense_weight().detach()
    target = 1.0 / (3.0 * in_features)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
    assert abs(weight.var().item() / target - 1.0) < 0.10
    dense = nn.Linear(in_features, out_features).weight.detach()
    assert abs(weight.var().item() / dense.var().item() - 1.0) < 0.10
    bound = 1.0 / math.sqrt(in_features)
    assert layer.bias.abs().max() <= bound


def test_from_linear_reports_error_and_respects_eps_and_rank():
    torch.manual_seed(0)
    dense = nn.Linear(96, 64, dtype=torch.float64)
    exact = TTLinear.from_linear(dense)
    assert exact.compression_error < 1e-12
    x = torch.randn(4, 96, dtype=torch.float64)
    torch.testing.assert_close(exact(x), dense(x))
    loose = TTLinear.from_linear(dense, eps=0.5)
    assert 0 < loose.compression_error <= 0.5
    capped = TTLinear.from_linear(dense, max_rank=2)
    assert max(capped.tt_ranks) == 2
    err = torch.linalg.matrix_norm(capped.dense_weight() - dense.weight) / torch.linalg.matrix_norm(
        dense.weight
    )
    assert capped.compression_error == pytest.approx(err.item())
    assert TTLinear(96, 64).compression_error is None


def test_from_linear_recovers_known_ranks_and_handles_padding():
    torch.manual_seed(0)
    low_rank = TTLinear(96, 64, tt_rank=2, dtype=torch.float64)
    again = TTLinear.from_linear(low_rank.to_linear(), eps=1e-10)
    assert again.compression_error < 1e-10
    assert again.tt_ranks == low_rank.tt_ranks
    padded = nn.Linear(67, 37, dtype=torch.float64)  # 67 and 37 are primes: the plan pads them
    assert TTLinear(67, 37).layout.plan.is_padded
    exact = TTLinear.from_linear(padded, eps=1e-10)
    assert exact.compression_error < 1e-10
    x = torch.randn(3, 67, dtype=torch.float64)
    torch.testing.assert_close(exact(x), padded(x))
    paper = TTLinear(768, 64, tt_rank=5, shapes="paper", dtype=torch.float64)
    recovered = TTLinear.from_linear(paper.to_linear(), eps=1e-10, shapes="paper")
    assert recovered.compression_error < 1e-10
    assert recovered.tt_ranks == paper.tt_ranks


def test_to_linear_keeps_dtype_and_output():
    torch.manual_seed(0)
    layer = TTLinear(40, 30, dtype=torch.float64)
    linear = layer.to_linear()
    assert isinstance(linear, nn.Linear) and linear.weight.dtype == torch.float64
    x = torch.randn(6, 40, dtype=torch.float64)
    torch.testing.assert_close(linear(x), layer(x))
    no_bias = TTLinear(40, 30, bias=False).to_linear()
    assert no_bias.bias is None


def test_extra_repr_shows_shapes_ranks_and_compression():
    text = repr(TTLinear(4096, 4096, tt_rank=8))
    for part in ["row_shape=(8, 8, 8, 8)", "ranks=(1, 8, 8, 8, 1)", "compression=", "params="]:
        assert part in text
    assert "tensor_shape=(8, 8, 12, 8, 8)" in repr(TTLinear(768, 64, shapes="paper"))


def test_state_dict_round_trip_is_exact():
    torch.manual_seed(0)
    layer = TTLinear(100, 60, tt_rank=4)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    fresh = TTLinear(100, 60, tt_rank=4)
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(5, 100)
    assert torch.equal(fresh(x), layer(x))
    assert set(layer.state_dict()) == {"cores.0", "cores.1", "bias"}


def test_to_dtype_moves_every_tensor():
    layer = TTLinear(48, 24).to(torch.float64)
    assert all(t.dtype == torch.float64 for t in layer.state_dict().values())
    assert layer(torch.randn(2, 48, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("param_dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(param_dtype, input_dtype):
    torch.manual_seed(0)
    layer = TTLinear(192, 96, tt_rank=4)
    x = torch.randn(3, 4, 192)
    expected = layer.double()(x.double())
    layer = layer.to(param_dtype)
    y = layer(x.to(input_dtype))
    assert y.dtype == input_dtype
    tol = 3e-2 if torch.bfloat16 in (input_dtype, param_dtype) else 1e-5
    torch.testing.assert_close(y.double(), expected, rtol=tol, atol=tol)
    y.float().sum().backward()
    assert all(c.grad is not None and c.grad.dtype == param_dtype for c in layer.cores)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rows", [4, 4096])
def test_half_precision_output_is_the_float32_result_rounded_once(dtype, rows):
    """Half-precision parameters and input: every output entry is the exact product of those
    values up to one ulp plus float32 round-off (1e-6 of the entry's scale); a chain of d
    products in half precision (2^-8 or 2^-11 per product) misses that."""
    torch.manual_seed(0)
    layer = TTLinear(2048, 64, tt_rank=6, dtype=dtype)
    x = torch.randn(rows, 2048).to(dtype)
    y = layer(x)
    weight = layer.dense_weight(torch.float64)
    exact = x.double() @ weight.T + layer.bias.double()
    ulp = torch.finfo(dtype).eps * 2.0 ** torch.floor(torch.log2(exact.abs()))
    scale = x.double().abs() @ weight.abs().T
    assert y.dtype == dtype and bool(((y.double() - exact).abs() <= ulp + 1e-6 * scale).all())


def test_gradcheck_float64(gradcheck_module):
    torch.manual_seed(0)
    for shapes in [None, (4, 3, 2)]:
        layer = TTLinear(6, 4, tt_rank=2, shapes=shapes, dtype=torch.float64)
        assert gradcheck_module(layer, torch.randn(3, 6, dtype=torch.float64))


def _ran_dense_route(y: torch.Tensor) -> bool:
    return type(y.grad_fn).__name__ == "ProductsBackward"


def test_forward_runs_the_executor_its_plan_reports():
    """The forward follows contraction_info(rows) of the layer's own cost model."""
    torch.manual_seed(0)
    big = TTLinear(4096, 4096, tt_rank=8, bias=False, cost_model=FLOPS_ONLY)
    thin = TTLinear(384, 8, bias=False, tt_rank=5, cost_model=MEMORY_ONLY)
    for layer, rows, executor in ((big, 64, "steps"), (thin, 4096, "dense"), (thin, 1, "steps")):
        assert layer.contraction_info(rows).executor == executor
        x = torch.randn(rows, layer.in_features, requires_grad=True)
        y = layer(x)
        assert _ran_dense_route(y) == (executor == "dense")
        torch.testing.assert_close(y, _reference(layer, x), rtol=1e-4, atol=1e-4)
    layer = TTLinear(384, 8, bias=False, tt_rank=5, cost_model=FLOPS_ONLY)
    layer.cost_model = MEMORY_ONLY  # the attribute is read at every call
    assert _ran_dense_route(layer(torch.randn(4096, 384, requires_grad=True)))


@pytest.mark.parametrize("shapes", ["paper", None])
def test_thin_factor_on_the_dense_route_matches_the_reference(shapes):
    """A LoRA factor (384 -> 8) on 1,024 rows builds its tiny weight; values and gradients."""
    torch.manual_seed(0)
    layer = TTLinear(384, 8, tt_rank=5, shapes=shapes, dtype=torch.float64,
                     cost_model=MEMORY_ONLY)
    assert layer.contraction_info(1024).executor == "dense"
    x = torch.randn(4, 256, 384, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert _ran_dense_route(y)
    reference = _reference(layer, x)
    torch.testing.assert_close(y, reference, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad(y.square().sum(), [x, *layer.cores, layer.bias])
    expected = torch.autograd.grad(reference.square().sum(), [x, *layer.cores, layer.bias])
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_modules_build_on_the_meta_device():
    from ttnet_nn import TTAdapter, TTLoRA

    layers = [
        TTLinear(768, 3072, device="meta"),
        TTLinear(768, 64, tt_rank=5, shapes="paper", device="meta"),
        TTAdapter(4096, 64, shapes="paper", device="meta"),
    ]
    with torch.device("meta"):
        layers.append(TTLoRA(nn.Linear(384, 384), r=8, lora_alpha=16))
    for layer in layers:
        assert all(p.is_meta for p in layer.parameters())
        fan_in = getattr(layer, "in_features", None) or layer.hidden_size
        assert layer(torch.empty(2, fan_in, device="meta")).is_meta
    layer = layers[0].to_empty(device="cpu")
    layer.reset_parameters()
    assert abs(layer.dense_weight().var().item() * 3 * 768 - 1) < 0.1


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_compile_fullgraph_without_graph_breaks():
    from ttnet_nn import TTAdapter, TTLoRA

    torch.manual_seed(0)
    model = nn.Sequential(
        TTLinear(64, 48, tt_rank=4),
        TTAdapter(48, 8, tt_rank=2),
        TTLoRA(nn.Linear(48, 24), r=4, lora_alpha=8, tt_rank=2, shapes="paper"),
        TTLinear(24, 7, tt_rank=2),  # padded plan
    )
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    for lead in [(5,), (3, 4), (2, 9)]:  # a new row count re-traces (the plan depends on it)
        x = torch.randn(*lead, 64)
        torch.testing.assert_close(compiled(x), model(x))
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    explained = torch._dynamo.explain(model[0])(torch.randn(5, 64))
    assert explained.graph_break_count == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, "in_features"),
        ({"in_features": -3}, ValueError, "in_features"),
        ({"out_features": 2.5}, ValueError, "out_features"),
        ({"out_features": True}, ValueError, "out_features"),
        ({"tt_rank": 0}, ValueError, "tt_rank"),
        ({"tt_rank": (2, 2, 2, 2)}, ValueError, "tt_rank"),
        ({"max_rank": 2}, TypeError, "max_rank"),  # the layers' rank argument is tt_rank
        ({"cost_model": "cpu"}, TypeError, "cost_model"),
        ({"shapes": (5, 7)}, ValueError, "shapes"),
        ({"shapes": "table"}, ValueError, "shapes"),
        ({"shapes": ((2, 2), (4, 4))}, ValueError, "shapes"),
        ({"shapes": ((4, 4), (0, 4))}, ValueError, r"shapes\[1\]"),
        ({"shapes": plans.plan_matrix(16, 32)}, ValueError, "MatrixPlan"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = {"in_features": 16, "out_features": 16, **kwargs}
    with pytest.raises(error, match=match):
        TTLinear(args.pop("in_features"), args.pop("out_features"), **args)


def test_bad_inputs_name_the_problem():
    layer = TTLinear(16, 8)
    with pytest.raises(ValueError, match=r"input: expected shape \(\.\.\., 16\)"):
        layer(torch.randn(4, 15))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(4, 16, dtype=torch.int64))
    with pytest.raises(TypeError, match="linear"):
        TTLinear.from_linear(nn.Conv1d(3, 3, 1))
    with pytest.raises(ValueError, match="eps"):
        TTLinear.from_linear(nn.Linear(16, 8), eps=-1.0)
