"""BLAS-level helpers of the blocked kernels: products written in place, fused residuals.

Kept apart from :mod:`ttnet._backend` (dispatch, checks, the small linear-algebra shim):
these are the few places where the kernels of :mod:`ttnet._kernels` need more than the array
API offers — numpy's ``out=`` and torch's ``addmm`` — to avoid a slab-sized temporary per
call. The torch-specific code is in :mod:`ttnet._torch`.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["astype_into", "matmul_into", "residual_squares", "sum_squares"]

Array = Any


def matmul_into(a: Array, b: Array, out: Array | None) -> Array:
    """``a @ b``, written into ``out`` (any strides) when given; returns the product.

    numpy writes in place (no temporary); other libraries compute, then copy.

    Example:
        >>> import numpy as np
        >>> out = np.zeros((2, 6))
        >>> _ = matmul_into(np.eye(2), np.ones((2, 3)), out[:, 1:4])
        >>> out[0].tolist()
        [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    if out is None:
        return a @ b
    if array_api_compat.is_numpy_array(out):
        return np.matmul(a, b, out=out)
    out[...] = a @ b
    return out


def residual_squares(x: Array, f: Array, y: Array, work: Array | None = None) -> float:
    """``||x - f @ y||^2`` (a projection's residual); ``work`` (``x``'s shape and dtype, any
    contents) is used as the temporary when given.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> f = np.array([[1.0], [0.0]])
        >>> residual_squares(x, f, f.T @ x)
        25.0
    """
    if array_api_compat.is_numpy_array(x):
        d = np.matmul(f, y, out=work)
        np.subtract(x, d, out=d)
        return sum_squares(d)
    if array_api_compat.is_torch_array(x):
        from ttnet import _torch  # torch is already imported: x is a tensor

        return _torch.sum_squares(_torch.residual(x, f, y, work))
    return sum_squares(x - f @ y)


def astype_into(x: Array, dtype: Any, work: Array | None = None) -> Array:
    """``x`` in ``dtype``: ``x`` itself when it has it, else a copy (into ``work`` when
    given: ``x``'s shape, that dtype).

    Example:
        >>> import numpy as np
        >>> astype_into(np.ones(2, dtype=np.float32), np.float64).dtype
        dtype('float64')
    """
    if x.dtype == dtype:
        return x
    if work is None:
        return array_api_compat.array_namespace(x).astype(x, dtype)
    if array_api_compat.is_numpy_array(work):
        np.copyto(work, x)
    else:
        work[...] = x
    return work


def sum_squares(a: Array) -> float:
    """``sum(|a|**2)`` over all entries as a Python float (fast: one BLAS dot product).

    Not guarded against overflow or underflow: callers pass data of moderate scale.

    Example:
        >>> import numpy as np
        >>> sum_squares(np.array([[1 + 1j, 2.0]]))
        6.0
    """
    if array_api_compat.is_numpy_array(a):
        flat = a.reshape(-1)
        return float(np.vdot(flat, flat).real)
    if array_api_compat.is_torch_array(a):
        from ttnet._torch import sum_squares as torch_sum_squares  # a is a tensor

        return torch_sum_squares(a)
    xp = array_api_compat.array_namespace(a)
    flat = xp.reshape(a, (-1,))
    return float(xp.real(xp.vecdot(flat, flat)))

