"""Everything tensorly-specific in ttnet (tensorly is imported only when a conversion runs).

``tensorly.tt_tensor.TTTensor`` and :class:`~ttnet.TensorTrain` share the core layout
``(r_{k-1}, n_k, r_k)``; ``tensorly.tt_matrix.TTMatrix`` and :class:`~ttnet.TTMatrix` share
``(r_{k-1}, m_k, n_k, r_k)``. The value types call these helpers (which know nothing of them);
:mod:`ttnet.interop` builds its type-dispatching functions on the value types' methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The tensorly class for each number of core axes, and how error messages name it.
KINDS = {3: "TTTensor", 4: "TTMatrix"}


def to_tensorly(cores: Sequence[Any]) -> Any:
    """A tensorly ``TTTensor`` (3-D cores) or ``TTMatrix`` (4-D cores) on the same arrays.

    Example:
        >>> import numpy as np
        >>> type(to_tensorly([np.ones((1, 2, 1))])).__name__
        'TTTensor'
    """
    if cores[0].ndim == 3:
        from tensorly.tt_tensor import TTTensor

        return TTTensor(list(cores))
    from tensorly.tt_matrix import TTMatrix

    return TTMatrix(list(cores))


def factors(obj: Any, ndim: int | None = None) -> list[Any]:
    """The factor list of a tensorly TT object (or of a plain list of factors), checked.

    Args:
        obj: a ``TTTensor`` / ``TTMatrix`` or a list of their factors.
        ndim: the number of axes the caller needs (3 or 4), or None for either.

    Raises:
        TypeError: ``obj`` has no factor list, or factors of another number of axes.

    Example:
        >>> import numpy as np
        >>> len(factors([np.ones((1, 2, 1)), np.ones((1, 3, 1))]))
        2
        >>> factors([np.ones((1, 2, 1))], ndim=4)
        Traceback (most recent call last):
        ...
        TypeError: obj: expected a tensorly TTMatrix, got list
    """
    found = getattr(obj, "factors", obj)
    if isinstance(found, (str, bytes)) or not isinstance(found, (list, tuple)) or not found:
        expected = "a tensorly TTTensor / TTMatrix" if ndim is None else f"a tensorly {KINDS[ndim]}"
        raise TypeError(f"obj: expected {expected} or a list of factors, "
                        f"got {type(obj).__name__}")
    got = getattr(found[0], "ndim", None)
    if ndim is not None and got != ndim:
        raise TypeError(f"obj: expected a tensorly {KINDS[ndim]}, got {type(obj).__name__}")
    if got not in KINDS:
        raise TypeError(f"obj: expected 3-D (TT tensor) or 4-D (TT matrix) factors, got ndim {got}")
    return list(found)
