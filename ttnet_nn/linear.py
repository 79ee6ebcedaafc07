"""TTLinear: a linear layer whose weight is a tensor train of plain ``nn.Parameter`` cores."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ttnet import TensorTrain, contraction

from ._checks import layer_input, positive_int, rank_spec
from ._layout import Layout, resolve_layout, resolve_ranks

DEFAULT_TT_RANK = 8


def compute_dtype(input_dtype: torch.dtype, param_dtype: torch.dtype) -> torch.dtype:
    """The dtype a TT contraction runs in: the promoted dtype of input and cores, at least float32.

    A TT forward is a chain of ``d`` small products; in bfloat16/float16 every intermediate
    would be rounded to an 8/11-bit mantissa, so the error grows with ``d``. The cores are small,
    so casting them (and the input) to float32 costs little; the result is cast back to the
    input's dtype.

    Example:
        >>> compute_dtype(torch.bfloat16, torch.bfloat16)
        torch.float32
        >>> compute_dtype(torch.float32, torch.float64)
        torch.float64
    """
    dtype = torch.promote_types(input_dtype, param_dtype)
    if torch.finfo(dtype).bits < 32:
        return torch.float32
    return dtype


class TTLinear(nn.Module):
    """A linear layer ``y = x @ W.T + b`` whose weight ``W`` (out x in) is a tensor train.

    The cores are plain parameters in ``self.cores`` (an ``nn.ParameterList``). The forward pass
    contracts the input with the cores through :func:`ttnet.contraction.ttm_matvec`, which
    picks, for the actual number of rows, the cheaper of the TT network (its opt_einsum path is
    cached) and "build the dense ``W`` then matmul". Nothing is cached on the module, so
    ``state_dict``, ``.to()``, DDP, FSDP and ``torch.compile`` see only the parameters.

    Precision: the contraction runs in :func:`compute_dtype` (the promoted dtype of input and
    cores, at least float32), and the output has the input's dtype.

    Initialisation: cores are drawn i.i.d. ``N(0, s^2)`` with ``s^(2d) * prod(inner ranks)`` equal
    to ``1 / (3 * in_features)``, the variance of ``nn.Linear``'s kaiming-uniform weight (so the
    dense weight's expected mean square is that variance), and then rescaled together so that
    the mean square equals it exactly (computed from the cores with
    :meth:`ttnet.TensorTrain.norm`; no dense weight is built). On the ``meta`` device, which
    holds no values, the rescaling is skipped, so layers can be built there and materialised
    later (``to_empty`` then ``reset_parameters``). The bias follows
    ``nn.Linear``: ``U(-1/sqrt(in), 1/sqrt(in))``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to add a learnable bias.
        tt_rank: rank of every inner bond (an int) or one per bond. In a TT matrix each is
            lowered to the largest rank its bond can use; the paper's tensor layout keeps it
            everywhere, as the official code does (so the paper's counts are reproduced).
            Default 8.
        max_rank: the same as ``tt_rank`` under the name :func:`ttnet.tt_svd` uses; give at
            most one of the two.
        shapes: how ``W`` becomes TT cores. None: :func:`ttnet.plans.plan_matrix` (any sizes;
            zero padding where a size factorises badly). A :class:`ttnet.plans.MatrixPlan`, or a
            pair ``(out_modes, in_modes)``: a TT matrix with cores ``(r, m_k, n_k, r')``. A flat
            sequence of ints with product ``in * out``, or ``"paper"``
            (:func:`ttnet_nn.presets.loretta_tensor_shape`): the LoRETTA paper's layout, a TT tensor
            (cores ``(r, t_k, r')``) reshaped row-major to ``(in, out)``.
        dtype: dtype of the parameters.
        device: device of the parameters.

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
        max_rank: int | Sequence[int] | None = None,
        shapes: object = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        if tt_rank is not None and max_rank is not None:
            raise ValueError(f"tt_rank, max_rank: expected at most one of them, received "
                             f"tt_rank={tt_rank!r} and max_rank={max_rank!r}")
        rank_name = "tt_rank" if max_rank is None else "max_rank"
        rank = max_rank if tt_rank is None else tt_rank
        rank = DEFAULT_TT_RANK if rank is None else rank_spec(rank_name, rank)
        self._layout = resolve_layout(shapes, self.in_features, self.out_features)
        factory = {"dtype": dtype, "device": device}
        self.cores = nn.ParameterList(
            nn.Parameter(torch.empty(shape, **factory))
            for shape in self._layout.core_shapes(resolve_ranks(self._layout, rank, rank_name))
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.compression_error: float | None = None
        """Relative Frobenius error of the weight after :meth:`from_linear`, else None."""
        self.reset_parameters()

    @property
    def layout(self) -> Layout:
        """The resolved weight layout (a TT-matrix or the paper's TT-tensor layout; sizes only).

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
            >>> layer = TTLinear(1024, 1024)
            >>> layer.reset_parameters()
            >>> abs(layer.dense_weight().var().item() * 3 * 1024 - 1) < 0.1
            True
        """
        target = 1.0 / (3.0 * self.in_features)
        d = len(self.cores)
        paths = math.prod(self.tt_ranks)
        with torch.no_grad():
            for core in self.cores:
                core.normal_(0.0, (target / paths) ** (0.5 / d))
            if not self.cores[0].is_meta:  # meta tensors hold no values to measure
                train = TensorTrain([c.reshape(c.shape[0], -1, c.shape[-1]) for c in self.cores])
                numel = math.prod(self._layout.mode_sizes)
                scale = (target * numel / float(train.norm()) ** 2) ** (0.5 / d)
                for core in self.cores:
                    core.mul_(scale)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape ``(..., in_features)``."""
        layer_input(x, self.in_features)
        dtype = compute_dtype(x.dtype, self.cores[0].dtype)
        y = self._layout.matvec([c.to(dtype) for c in self.cores], x.to(dtype))
        if self.bias is not None:
            y = y + self.bias.to(dtype)
        return y.to(x.dtype)

    def dense_weight(self) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)``, differentiable w.r.t. the cores.

        Example:
            >>> layer = TTLinear(6, 4, bias=False)
            >>> x = torch.randn(3, 6)
            >>> torch.allclose(layer(x), x @ layer.dense_weight().T, atol=1e-6)
            True
        """
        return self._layout.dense(list(self.cores))

    def contraction_info(self, rows: int) -> contraction.ContractionInfo | None:
        """How the forward pass contracts an input of ``rows`` rows (strategy, path, FLOPs).

        Returns None for a TT-tensor layout whose modes do not split into input and output
        parts (then the forward builds the dense weight).

        Example:
            >>> layer = TTLinear(4096, 4096, tt_rank=8)
            >>> layer.contraction_info(64).strategy
            'tt'
        """
        cores = self._layout.matrix_cores(list(self.cores))
        return None if cores is None else contraction.contraction_info(cores, rows)

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
            linear: the layer to compress (its dtype and device are kept).
            eps: relative Frobenius error allowed for the whole weight (None: no tolerance).
            max_rank: largest rank per bond (an int or one per bond; None: no cap). With both
                None the decomposition is exact.
            shapes: the layout, as for the constructor.

        Returns:
            A ``TTLinear`` whose ``compression_error`` is the relative Frobenius error of its
            dense weight against ``linear.weight``.

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
            norm = torch.linalg.matrix_norm(weight)
            error = torch.linalg.matrix_norm(layer.dense_weight() - weight)
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
