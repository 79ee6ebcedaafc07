"""TTLinear: a linear layer whose weight is a tensor train of plain ``nn.Parameter`` cores."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ttnet import (
    ContractionInfo,
    CostModel,
    TensorTrain,
    compute_dtype,
    default_cost_model,
    round_cores,
)
from ttnet._torch_products import run_products

from ._checks import layer_input, positive_int, rank_spec
from ._plans import LayerPlans
from .layout import Layout, resolve_layout, resolve_ranks

DEFAULT_TT_RANK = 8


class TTLinear(nn.Module):
    """A linear layer ``y = x @ W.T + b`` whose weight ``W`` (out x in) is a tensor train.

    The cores are plain parameters in ``self.cores`` (an ``nn.ParameterList``). The forward pass
    runs the product planned by :func:`ttnet.ttm_expression` for the actual number of rows: the
    TT network (its opt_einsum path cached) or "build the dense ``W``, then one matrix product",
    whichever the cost model (:attr:`cost_model`, default: :func:`ttnet.default_cost_model` of the
    input's device kind) predicts to be faster; on the dense route training builds ``W`` and
    differentiates the build by hand, in one autograd node.

    Inference: in eval mode without gradients, where one product with a built ``W`` is modelled
    no slower than the TT network, the built ``W`` is kept and reused (rebuilt when a core
    changes: an optimizer step, ``load_state_dict``, ``copy_``, ``.to()``; not after writes
    through ``.data``), so inference costs what a dense layer does. It is never in ``state_dict``.

    Precision (:mod:`ttnet.precision`): parameters are stored in the layer's dtype; forward and
    backward compute in :func:`ttnet.compute_dtype` (at least float32); the output has the input's
    dtype and the gradients the parameters' dtype.

    Initialisation: cores are drawn i.i.d. ``N(0, s^2)`` (in float32) with
    ``s^(2d) * prod(inner ranks)`` equal to ``1 / (3 * in_features)``, the variance of
    ``nn.Linear``'s kaiming-uniform weight, then rescaled together so that the dense weight's mean
    square equals it exactly (computed from the cores with :meth:`ttnet.TensorTrain.norm`; no
    dense weight is built), and stored in the layer's dtype. On the ``meta`` device, which holds no
    values, nothing is drawn, so layers can be built there and materialised later (``to_empty``
    then ``reset_parameters``). The bias follows ``nn.Linear``: ``U(-1/sqrt(in), 1/sqrt(in))``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to add a learnable bias.
        tt_rank: rank of every inner bond (an int) or one per bond, default 8. In a TT matrix each
            is lowered to the largest rank its bond can use; the paper's tensor layout keeps it
            everywhere, as the official code does (so the paper's counts are reproduced). The
            layers' rank argument is ``tt_rank`` everywhere; ``max_rank`` (in :meth:`from_linear`
            and :meth:`round_`) is the core's cap on ranks, as in :func:`ttnet.tt_svd`.
        shapes: how ``W`` becomes TT cores (:func:`ttnet_nn.layout.resolve_layout`). None:
            :func:`ttnet.plans.plan_matrix` (any sizes; zero padding where a size factorises
            badly). A :class:`ttnet.plans.MatrixPlan`, or a pair ``(out_modes, in_modes)``: a TT
            matrix with cores ``(r, m_k, n_k, r')``. A flat sequence of ints with product
            ``in * out``, or ``"paper"`` (:func:`ttnet_nn.presets.loretta_tensor_shape`): the
            LoRETTA paper's layout, a TT tensor (cores ``(r, t_k, r')``) reshaped row-major to
            ``(in, out)``.
        dtype: dtype of the parameters.
        device: device of the parameters.
        cost_model: the :class:`ttnet.CostModel` that plans the forward (None: the default for
            the input's device kind); also the attribute :attr:`cost_model`.

    Example:
        >>> import torch
        >>> from ttnet_nn import TTLinear
        >>> _ = torch.manual_seed(0)
        >>> layer = TTLinear(768, 3072, tt_rank=8)
        >>> layer(torch.randn(2, 5, 768)).shape
        torch.Size([2, 5, 3072])
        >>> layer.compression_ratio > 100
        True
        >>> paper = TTLinear(768, 64, tt_rank=5, shapes="paper")
        >>> [tuple(c.shape) for c in paper.cores]
        [(1, 8, 5), (5, 8, 5), (5, 12, 5), (5, 8, 5), (5, 8, 1)]
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        tt_rank: int | Sequence[int] | None = None,
        shapes: object = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        cost_model: CostModel | None = None,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        rank = DEFAULT_TT_RANK if tt_rank is None else rank_spec("tt_rank", tt_rank)
        if cost_model is not None and not isinstance(cost_model, CostModel):
            raise TypeError(f"cost_model: expected a ttnet.CostModel or None, received "
                            f"{type(cost_model).__name__}")
        self.cost_model = cost_model
        """The :class:`ttnet.CostModel` that plans the forward; None: the device kind's default."""
        self._layout = resolve_layout(shapes, self.in_features, self.out_features)
        factory = {"dtype": dtype, "device": device}
        self.cores = nn.ParameterList(
            nn.Parameter(torch.empty(shape, **factory))
            for shape in self._layout.core_shapes(resolve_ranks(self._layout, rank))
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.compression_error: float | None = None
        """Relative Frobenius error of the weight after :meth:`from_linear`, else None."""
        self._plans = LayerPlans()
        self.reset_parameters()

    @property
    def layout(self) -> Layout:
        """The resolved weight layout (:mod:`ttnet_nn.layout`; sizes only).

        Example:
            >>> TTLinear(768, 3072).layout.plan.col_shape
            (4, 4, 6, 8)
        """
        return self._layout

    @property
    def tt_ranks(self) -> tuple[int, ...]:
        """TT ranks including the boundary 1s, read from the cores.

        Example:
            >>> TTLinear(4096, 4096, tt_rank=(2, 4, 6)).tt_ranks
            (1, 2, 4, 6, 1)
        """
        return (*(int(c.shape[0]) for c in self.cores), 1)

    @property
    def num_params(self) -> int:
        """Number of parameters of the layer (cores and bias).

        Example:
            >>> TTLinear(768, 64, tt_rank=5, shapes="paper", bias=False).num_params
            780
        """
        return sum(p.numel() for p in self.parameters())

    @property
    def compression_ratio(self) -> float:
        """Entries of the dense weight divided by parameters of the cores.

        Example:
            >>> round(TTLinear(4096, 4096, tt_rank=8).compression_ratio)
            1820
        """
        return self.in_features * self.out_features / sum(c.numel() for c in self.cores)

    def reset_parameters(self) -> None:
        """Draw new cores and bias (variance matched to ``nn.Linear``, see the class docstring).

        Example:
            >>> layer = TTLinear(1024, 1024, dtype=torch.bfloat16)
            >>> layer.reset_parameters()
            >>> abs(layer.dense_weight().float().var().item() * 3 * 1024 - 1) < 0.1
            True
        """
        self._plans.drop_weight()
        if self.cores[0].is_meta:  # meta tensors hold no values to draw or measure
            return
        target = 1.0 / (3.0 * self.in_features)
        d = len(self.cores)
        std = (target / math.prod(self.tt_ranks)) ** (0.5 / d)
        device = self.cores[0].device
        drawn = [torch.randn(c.shape, device=device) * std for c in self.cores]
        train = TensorTrain([c.reshape(c.shape[0], -1, c.shape[-1]) for c in drawn])
        numel = math.prod(self._layout.mode_sizes)
        scale = (target * numel / float(train.norm()) ** 2) ** (0.5 / d)
        with torch.no_grad():
            for core, value in zip(self.cores, drawn):
                core.copy_(value * scale)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                self.bias.copy_(torch.empty_like(self.bias, dtype=torch.float32)
                                .uniform_(-bound, bound))

    def _core_list(self) -> list[torch.Tensor]:
        """The cores, read without ``ParameterList``'s slow iteration where that is safe."""
        cores = self._modules["cores"]
        stored = cores._parameters
        if len(stored) == len(cores):  # no parametrization or wrapper moved one away
            return list(stored.values())
        return list(cores)

    def _entry(self, cores: list[torch.Tensor], rows: int, model: CostModel) -> tuple[Any, ...]:
        """The cached plan entry for ``rows`` (:meth:`ttnet_nn._plans.LayerPlans.entry`), with
        a one-node dense route where the layout runs its expression as it is (not padded)."""
        padded = getattr(self._layout, "plan", None) is not None and self._layout.plan.is_padded
        return self._plans.entry(self._layout.expression, cores, rows, model,
                                 None if padded else self.bias is not None)

    def _matrix(self, cores: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """The eval-mode matrix ``V`` (``in x out``) in ``dtype``, built once per core state."""
        return self._plans.matrix(self._layout.dense, cores, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape ``(..., in_features)``."""
        layer_input(x, self.in_features)
        cores = self._core_list()
        # operator.index: under torch.compile a dynamic batch size is specialised here (the plan
        # depends on the row count), so the plan lookup gets a plain int
        rows = operator.index(x.numel() // self.in_features)
        model = self.cost_model or default_cost_model(x.device.type)
        if torch.compiler.is_compiling():
            expression = self._plans.expression(self._layout.expression, cores, rows, model)
            y = self._layout.forward(cores, x, self.bias, expression)
            return y if y.dtype == x.dtype else y.to(x.dtype)
        _, _, expression, prefer, _, single = self._entry(cores, rows, model)
        bias = self.bias
        if not (self.training or torch.is_grad_enabled()) and prefer:
            v = self._matrix(cores, compute_dtype(x, cores[0]))  # eval: built once
            x2 = x.reshape(-1, self.in_features)
            if x2.dtype != v.dtype:
                x2 = x2.to(v.dtype)
            if bias is None:
                y = torch.mm(x2, v)
            else:
                y = torch.addmm(bias if bias.dtype == v.dtype else bias.to(v.dtype), x2, v)
            y = y.view(*x.shape[:-1], self.out_features)
        elif single is not None and expression.info.executor == "dense":
            tensors = cores if bias is None else [*cores, bias]
            dtype = compute_dtype(x, cores[0])
            if x.dtype != dtype or any(t.dtype != dtype for t in tensors):
                tensors = [t.to(dtype) for t in tensors]
                y = run_products(single, x.to(dtype), tensors)
            else:
                y = run_products(single, x, tensors)
        else:
            y = self._layout.forward(cores, x, bias, expression)
        return y if y.dtype == x.dtype else y.to(x.dtype)

    def train(self, mode: bool = True) -> TTLinear:
        """Set training mode (as ``nn.Module.train``) and drop the inference cache."""
        self._plans.drop_weight()
        return super().train(mode)

    def _apply(self, fn: Any, recurse: bool = True) -> TTLinear:
        self._plans = LayerPlans()  # .to(), .cuda(), .half() ...: the parameters move
        return super()._apply(fn, recurse)

    def dense_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)``, differentiable w.r.t. the cores.

        Built in :func:`ttnet.compute_dtype` (at least float32) and returned in ``dtype``
        (default: the parameters' dtype).

        Example:
            >>> layer = TTLinear(6, 4, bias=False)
            >>> x = torch.randn(3, 6)
            >>> torch.allclose(layer(x), x @ layer.dense_weight().T, atol=1e-6)
            True
            >>> TTLinear(6, 4, dtype=torch.bfloat16).dense_weight(torch.float32).dtype
            torch.float32
        """
        cores = self._core_list()
        wide = compute_dtype(cores[0])
        weight = self._layout.dense([c.to(wide) for c in cores])
        return weight.to(cores[0].dtype if dtype is None else dtype)

    def contraction_info(self, rows: int) -> ContractionInfo | None:
        """How the forward pass contracts an input of ``rows`` rows (executor, path, FLOPs).

        Uses :attr:`cost_model`, or the default for the cores' device kind. Returns None for a
        TT-tensor layout whose modes do not split into input and output parts (then the forward
        builds the dense weight).

        Example:
            >>> layer = TTLinear(4096, 4096, tt_rank=8)
            >>> info = layer.contraction_info(64)
            >>> info.executor in ("steps", "einsum", "dense"), info.tt_flops < info.dense_flops
            (True, True)
        """
        cores = self._core_list()
        model = self.cost_model or default_cost_model(cores[0].device.type)
        expression = self._layout.expression(tuple(tuple(c.shape) for c in cores), rows, model)
        return None if expression is None else expression.info

    @torch.no_grad()
    def round_(self, eps: float | None = None, max_rank: int | Sequence[int] | None = None) -> float:
        """Round the cores to lower TT ranks in place (:func:`ttnet.round_cores`).

        The cores become new parameters (same dtype, device and ``requires_grad``): create the
        optimizer again afterwards. The layout is unchanged.

        Args:
            eps: relative Frobenius error allowed for the weight (None: no tolerance).
            max_rank: largest rank per bond (an int or one per bond; None: no cap). With both
                None the ranks become the exact ranks of the weight.

        Returns:
            The relative Frobenius error of the rounded weight against the weight before.

        Example:
            >>> _ = torch.manual_seed(0)
            >>> layer = TTLinear(256, 256, tt_rank=8)
            >>> error = layer.round_(max_rank=3)
            >>> layer.tt_ranks, 0 < error < 1
            ((1, 3, 3, 1), True)
        """
        old = list(self.cores)
        flat = [c.reshape(c.shape[0], -1, c.shape[-1]) for c in old]
        new, error = round_cores(flat, eps=eps, max_rank=max_rank)
        self.cores = nn.ParameterList(
            nn.Parameter(core.reshape(core.shape[0], *c.shape[1:-1], core.shape[-1])
                         .to(c.dtype).contiguous(), requires_grad=c.requires_grad)
            for core, c in zip(new, old)
        )
        self._plans = LayerPlans()
        return float(error)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        eps: float | None = None,
        max_rank: int | Sequence[int] | None = None,
        *,
        shapes: object = None,
    ) -> TTLinear:
        """Compress a trained ``nn.Linear`` with TT-SVD (:func:`ttnet.tt_matrix_svd` / ``tt_svd``).

        Args:
            linear: the layer to compress (its dtype and device are kept; half precision is
                decomposed in float32).
            eps: relative Frobenius error allowed for the whole weight (None: no tolerance).
            max_rank: largest rank per bond (an int or one per bond; None: no cap). With both
                None the decomposition is exact.
            shapes: the layout, as for the constructor.

        Returns:
            A ``TTLinear`` whose ``compression_error`` is the relative Frobenius error of its
            dense weight (in the stored dtype) against ``linear.weight``.

        Example:
            >>> _ = torch.manual_seed(0)
            >>> dense = nn.Linear(64, 32)
            >>> layer = TTLinear.from_linear(dense, max_rank=4)
            >>> 0 < layer.compression_error < 1
            True
            >>> exact = TTLinear.from_linear(dense)
            >>> exact.compression_error < 1e-5
            True
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected a torch.nn.Linear, received {type(linear).__name__}")
        weight = linear.weight.detach()
        layout = resolve_layout(shapes, linear.in_features, linear.out_features)
        cores = layout.decompose(weight, eps, max_rank)
        inner = tuple(int(c.shape[-1]) for c in cores[:-1]) or 1
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                    tt_rank=inner, shapes=layout, dtype=weight.dtype, device=weight.device)
        with torch.no_grad():
            for param, core in zip(layer.cores, cores):
                param.copy_(core)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
            wide = compute_dtype(weight)
            reference = weight.to(wide)
            norm = torch.linalg.matrix_norm(reference)
            error = torch.linalg.matrix_norm(layer.dense_weight().to(wide) - reference)
            layer.compression_error = float(error / norm) if norm > 0 else float(error)
        return layer

    def to_linear(self) -> nn.Linear:
        """A dense ``nn.Linear`` with the same weight and bias (same dtype and device).

        Example:
            >>> layer = TTLinear(12, 10)
            >>> x = torch.randn(4, 12)
            >>> torch.allclose(layer.to_linear()(x), layer(x), atol=1e-6)
            True
        """
        weight = self.cores[0]
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           dtype=weight.dtype, device=weight.device)
        with torch.no_grad():
            linear.weight.copy_(self.dense_weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def extra_repr(self) -> str:
        """Sizes, layout, ranks, parameter count and compression ratio."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, {self._layout.describe()}, ranks={self.tt_ranks}, "
            f"params={self.num_params}, compression={self.compression_ratio:.1f}x"
        )
