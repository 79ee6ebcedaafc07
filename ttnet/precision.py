"""The precision policy of ttnet and ttnet_nn, in one place.

- **Accepted dtypes.** TT math needs floating-point arrays. Integer and boolean arrays are
  converted to the library's default float dtype (``float64`` for numpy,
  ``torch.get_default_dtype()`` for torch); float32, float64, complex64 and complex128 are kept;
  anything else (object, strings) raises ``TypeError``.
- **Mixed dtypes** promote by the library's rules (float32 with float64 gives float64).
- **Half precision** (float16, bfloat16) is stored, never computed in: every computation runs
  in :func:`compute_dtype` (float32 for half inputs) and the result is cast back.

  - Decomposition, rounding, norms and orthogonalisation run in float32 (numpy and torch have
    no half-precision SVD or QR) and return cores of the input's dtype.
  - Contractions (:func:`ttnet.ttm_matvec`, :func:`ttnet.ttm_rmatvec`, expressions) cast the
    cores and ``x`` to :func:`compute_dtype` of the two and return the promoted input dtype:
    a chain of ``d`` products in bfloat16 would round every intermediate to an 8-bit mantissa,
    so the error would grow with ``d``; the cores are small, so the cast costs little.
  - Layers (:mod:`ttnet_nn`) store parameters in their own dtype, run forward and backward in
    :func:`compute_dtype`, return outputs in the input's dtype and gradients in the
    parameters' dtype.
"""

from __future__ import annotations

from typing import Any

from ttnet._backend import get_namespace

__all__ = ["compute_dtype", "is_half"]

_CACHE: dict[tuple[Any, ...], Any] = {}
_HALF: dict[Any, bool] = {}


def is_half(dtype: Any) -> bool:
    """Whether ``dtype`` (numpy's or torch's) is float16 or bfloat16.

    Example:
        >>> import numpy as np
        >>> is_half(np.dtype(np.float16)), is_half(np.dtype(np.float32))
        (True, False)
    """
    half = _HALF.get(dtype)
    if half is None:
        half = _HALF[dtype] = str(dtype).rsplit(".", 1)[-1] in ("float16", "bfloat16")
    return half


def compute_dtype(*arrays: Any) -> Any:
    """The dtype ttnet computes in for ``arrays``: their promoted dtype, at least float32.

    Args:
        *arrays: Arrays of one library (numpy or torch).

    Returns:
        float32 when the promoted dtype is float16 or bfloat16, else the promoted dtype.

    Example:
        >>> import numpy as np
        >>> compute_dtype(np.ones(2, np.float16))
        dtype('float32')
        >>> compute_dtype(np.ones(2, np.float32), np.ones(2))
        dtype('float64')
        >>> import torch
        >>> compute_dtype(torch.ones(2, dtype=torch.bfloat16), torch.ones(2, dtype=torch.bfloat16))
        torch.float32
    """
    key = (type(arrays[0]), *(a.dtype for a in arrays))
    dtype = _CACHE.get(key)
    if dtype is None:
        xp = get_namespace(*arrays)
        dtype = xp.result_type(*arrays)
        if is_half(dtype):
            dtype = xp.result_type(xp.float32)
        _CACHE[key] = dtype
    return dtype
