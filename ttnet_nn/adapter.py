"""TTAdapter: LoRETTA_adp, a bottleneck adapter with tensor-train down and up projections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ttnet import compute_dtype

from ._branch import run_branch
from ._checks import finite_real, layer_input, positive_int, probability
from ._plans import BranchPlans
from .activations import ACTIVATIONS
from .linear import TTLinear

__all__ = ["ACTIVATIONS", "TTAdapter"]


class TTAdapter(nn.Module):
    """Bottleneck adapter ``y = x + scaling * up(act(down(dropout(x))))`` with TT projections.

    ``down`` (hidden -> bottleneck) and ``up`` (bottleneck -> hidden) are :class:`TTLinear`
    layers with biases. At initialisation the adapter is exactly the identity (``y`` equals
    ``x`` bit for bit): the *last core* of ``up`` and both biases start at zero, the other cores
    are variance matched as in :class:`TTLinear`.

    How the gradients get going: with ``up``'s weight zero, the first backward pass gives
    non-zero gradients only to ``up``'s last core and ``up``'s bias (every other core's gradient
    is multiplied by the zero core). Once an optimizer step has moved the last core away from
    zero, every parameter receives a non-zero gradient, from the second step on.

    Args:
        hidden_size: size of the input and output.
        bottleneck_size: size of the bottleneck.
        tt_rank: TT rank of both projections (int or per bond), default 5 as in the paper.
        non_linearity: one of ``relu``, ``gelu``, ``silu``/``swish``, ``tanh``, ``sigmoid``,
            ``identity``.
        dropout: dropout probability on the adapter's input branch.
        scaling: factor on the adapter branch.
        shapes: None (planned TT matrices), ``"paper"`` (LoRETTA's TT tensor shapes), or a pair
            ``(down_shapes, up_shapes)`` of anything :class:`TTLinear` accepts as ``shapes``.
        dtype: dtype of the parameters.
        device: device of the parameters.

    Example:
        >>> import torch
        >>> from ttnet_nn import TTAdapter
        >>> adapter = TTAdapter(768, 64, tt_rank=5, shapes="paper")
        >>> x = torch.randn(2, 7, 768)
        >>> torch.equal(adapter(x), x)
        True
        >>> sum(p.numel() for p in adapter.parameters())  # 2 * 780 + 64 + 768
        2392
    """

    def __init__(
        self,
        hidden_size: int,
        bottleneck_size: int,
        *,
        tt_rank: int | Sequence[int] = 5,
        non_linearity: str = "relu",
        dropout: float = 0.0,
        scaling: float = 1.0,
        shapes: object = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.bottleneck_size = positive_int("bottleneck_size", bottleneck_size)
        if non_linearity not in ACTIVATIONS:
            raise ValueError(f"non_linearity: expected one of {sorted(ACTIVATIONS)}, "
                             f"received {non_linearity!r}")
        self.non_linearity = non_linearity
        self.scaling = finite_real("scaling", scaling)
        p = probability("dropout", dropout)
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        if shapes is None or isinstance(shapes, str):
            down_shapes = up_shapes = shapes
        elif isinstance(shapes, Sequence) and len(shapes) == 2:
            down_shapes, up_shapes = shapes
        else:
            raise ValueError(f"shapes: expected None, 'paper' or (down_shapes, up_shapes), "
                             f"received {shapes!r}")
        factory = {"tt_rank": tt_rank, "dtype": dtype, "device": device}
        self.down = TTLinear(self.hidden_size, self.bottleneck_size, shapes=down_shapes, **factory)
        self.up = TTLinear(self.bottleneck_size, self.hidden_size, shapes=up_shapes, **factory)
        act = ACTIVATIONS[non_linearity]
        self._branch = BranchPlans()
        self._stages = ({"bias": True, "map": None if non_linearity == "identity" else act},
                        {"bias": True, "scale": self.scaling, "bias_scale": self.scaling})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise: variance-matched cores, zero last core of ``up``, zero biases.

        Example:
            >>> adapter = TTAdapter(32, 8)
            >>> adapter.reset_parameters()
            >>> x = torch.randn(2, 32)
            >>> torch.equal(adapter(x), x)
            True
        """
        self.down.reset_parameters()
        self.up.reset_parameters()
        with torch.no_grad():
            self.up.cores[-1].zero_()
            self.down.bias.zero_()
            self.up.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the adapter to ``x`` of shape ``(..., hidden_size)``.

        Where both projections run the dense route (:mod:`ttnet_nn._branch`), the whole
        adapter is one autograd node; in eval mode without gradients it reuses the built
        projections. The branch computes in :func:`ttnet.compute_dtype` and rounds once.
        """
        layer_input(x, self.hidden_size)
        modules = self._modules  # not through nn.Module.__getattr__: this runs every step
        dropout = self.training and isinstance(modules["dropout"], nn.Dropout)
        inputs = modules["dropout"](x) if dropout else x
        y = run_branch(self._branch, (modules["down"], modules["up"]), self._stages, x, inputs,
                       not dropout, self.training)
        if y is not None:
            return x + y if dropout else y
        wide = inputs.to(compute_dtype(inputs, self.down.cores[0]))
        update = self.up(ACTIVATIONS[self.non_linearity](self.down(wide)))
        branch = update if self.scaling == 1.0 else self.scaling * update
        return (x.to(branch.dtype) + branch).to(x.dtype)

    def _apply(self, fn: Any, recurse: bool = True) -> TTAdapter:
        self._branch.clear()  # .to(), .cuda(), .half() ...: the parameters move
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        """Sizes, activation and scaling."""
        return (f"hidden_size={self.hidden_size}, bottleneck_size={self.bottleneck_size}, "
                f"non_linearity={self.non_linearity}, scaling={self.scaling}")
