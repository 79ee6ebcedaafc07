"""Conversion to and from tensorly's TT classes (tensorly is imported only when used).

``tensorly.tt_tensor.TTTensor`` and ttnet's :class:`~ttnet.TensorTrain` share the core
layout ``(r_{k-1}, n_k, r_k)``; ``tensorly.tt_matrix.TTMatrix`` and ttnet's
:class:`~ttnet.TTMatrix` share ``(r_{k-1}, m_k, n_k, r_k)``. Conversions reuse the core
arrays, so round trips are exact. These two functions dispatch on the type; the value types'
own ``to_tensorly`` / ``from_tensorly`` methods do the work (imports point one way: this
module uses the value types, never the reverse).
"""

from __future__ import annotations

from typing import Any

from ttnet import _tensorly
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

__all__ = ["from_tensorly", "to_tensorly"]


def to_tensorly(value: TensorTrain | TTMatrix) -> Any:
    """A tensorly ``TTTensor`` (from a TensorTrain) or ``TTMatrix`` (from a TTMatrix).

    Raises:
        TypeError: ``value`` is neither. ImportError: tensorly is not installed.

    Example:
        >>> import numpy as np, ttnet
        >>> tt = ttnet.tt_svd(np.ones((2, 3)))
        >>> type(to_tensorly(tt)).__name__
        'TTTensor'
    """
    if not isinstance(value, (TensorTrain, TTMatrix)):
        raise TypeError(f"value: expected a TensorTrain or TTMatrix, got {type(value).__name__}")
    return value.to_tensorly()


def from_tensorly(obj: Any) -> TensorTrain | TTMatrix:
    """A :class:`~ttnet.TensorTrain` or :class:`~ttnet.TTMatrix` from a tensorly TT object.

    Args:
        obj: a ``tensorly`` ``TTTensor`` or ``TTMatrix``, or a plain list of their
            factors (3-D factors give a TensorTrain, 4-D a TTMatrix).

    Raises:
        TypeError: ``obj`` is none of these. ValueError: invalid factors (as the
            constructors).

    Example:
        >>> import numpy as np
        >>> from tensorly.tt_tensor import TTTensor
        >>> from_tensorly(TTTensor([np.ones((1, 2, 1)), np.ones((1, 3, 1))])).shape
        (2, 3)
    """
    found = _tensorly.factors(obj)
    return TensorTrain(found) if found[0].ndim == 3 else TTMatrix(found)
