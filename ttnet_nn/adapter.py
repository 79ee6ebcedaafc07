"""TTAdapter: LoRETTA_adp, a bottleneck adapter with tensor-train down and up projections."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import finite_real, positive_int, probability
from .linear import TTLinear

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


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
        """Apply the adapter to ``x`` of shape ``(..., hidden_size)``."""
        h = self.down(self.dropout(x) if isinstance(self.dropout, nn.Dropout) else x)
        h = ACTIVATIONS[self.non_linearity](h)
        update = self.up(h)
        return x + (update if self.scaling == 1.0 else self.scaling * update)

    def extra_repr(self) -> str:
        """Sizes, activation and scaling."""
        return (f"hidden_size={self.hidden_size}, bottleneck_size={self.bottleneck_size}, "
                f"non_linearity={self.non_linearity}, scaling={self.scaling}")
