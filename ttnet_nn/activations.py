"""The activations a :class:`ttnet_nn.TTAdapter` applies between its projections.

Each :class:`Activation` is a callable (the function) that also knows its derivative, so the
adapter can run ``down``, the activation and ``up`` as one autograd node with a written-out
backward (:class:`ttnet._torch.Products`) instead of three recorded ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "Activation"]

Fn = Callable[[torch.Tensor], torch.Tensor]
_aten = torch.ops.aten


class Activation:
    """An elementwise activation and its derivative.

    Args:
        name: The name in :data:`ACTIVATIONS`.
        fn: The function (differentiable, for the layers' unfused path).
        forward: The same function on a tensor the caller owns (may work in place).
        backward: ``backward(g, a, h)``: the gradient w.r.t. the input ``a`` from the gradient
            ``g`` w.r.t. the output ``h``.
        needs_input: Whether ``backward`` reads ``a`` (else only ``h``, and ``a`` need not be
            kept).

    Example:
        >>> a = torch.tensor([-1.0, 2.0])
        >>> relu = ACTIVATIONS["relu"]
        >>> relu(a), relu.backward(torch.ones(2), None, relu(a))
        (tensor([0., 2.]), tensor([0., 1.]))
    """

    def __init__(self, name: str, fn: Fn, forward: Fn,
                 backward: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor],
                                    torch.Tensor], needs_input: bool) -> None:
        self.name = name
        self.fn = fn
        self.forward = forward
        self.backward = backward
        self.needs_input = needs_input

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the activation (recorded by autograd)."""
        return self.fn(x)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _by_name, (self.name,)  # pickled by name: the table holds the functions


def _by_name(name: str) -> Activation:
    return ACTIVATIONS[name]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


#: The activations by name (``swish`` is ``silu``). ``identity`` is the identity map.
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", F.relu, torch.relu_,
                       lambda g, a, h: _aten.threshold_backward.default(g, h, 0.0), False),
    "gelu": Activation("gelu", F.gelu, F.gelu,
                       lambda g, a, h: _aten.gelu_backward.default(g, a), True),
    "silu": Activation("silu", F.silu, F.silu,
                       lambda g, a, h: _aten.silu_backward.default(g, a), True),
    "swish": Activation("swish", F.silu, F.silu,
                        lambda g, a, h: _aten.silu_backward.default(g, a), True),
    "tanh": Activation("tanh", torch.tanh, torch.tanh_,
                       lambda g, a, h: _aten.tanh_backward.default(g, h), False),
    "sigmoid": Activation("sigmoid", torch.sigmoid, torch.sigmoid_,
                          lambda g, a, h: _aten.sigmoid_backward.default(g, h), False),
    "identity": Activation("identity", _identity, _identity, lambda g, a, h: g, False),
}
