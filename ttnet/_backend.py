"""The backend door: array-library dispatch, input checks and a small linear-algebra shim.

Every ttnet function finds the array library from its inputs (numpy or torch, through
``array_api_compat``) and returns arrays of the same library, dtype and device. There is
no global backend. :func:`array_ops` is the one place that tells libraries apart: it returns
the operations the executors need (``tensordot``, ``permute``, einsum with a path, the dense
product), generic ones over the array-API namespace, or those of ``ttnet._torch``, the one
file with torch-specific code. It is cached per array class, and torch is never imported
here (``array_api_compat`` only looks at libraries already imported).

Which dtypes are accepted and what half precision computes in: :mod:`ttnet.precision`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np
import opt_einsum

__all__ = [
    "ArrayOps",
    "array_ops",
    "as_float_array",
    "check_finite",
    "check_nonempty",
    "conj_t",
    "eigh",
    "finfo_eps",
    "get_namespace",
    "is_complex",
    "library_name",
    "norm",
    "qr",
    "qr_r",
    "svd",
    "to_numpy",
    "upcast_half",
]

Array = Any


def library_name(x: Array) -> str:
    """Name of the array library that ``x`` belongs to (``"numpy"``, ``"torch"``, ...).

    Example:
        >>> import numpy as np
        >>> library_name(np.zeros(2))
        'numpy'
    """
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    return array_api_compat.array_namespace(x).__name__.split(".")[-1]


def get_namespace(*arrays: Array, names: Sequence[str] | None = None) -> Any:
    """The array-API namespace shared by ``arrays``.

    Args:
        *arrays: arrays of one library (numpy or torch; others supported by
            ``array_api_compat`` work where they implement what is used).
        names: argument names, one per array, used in error messages.

    Returns:
        The ``array_api_compat`` namespace (e.g. ``array_api_compat.numpy``).

    Raises:
        TypeError: when an argument is not an array, or the arrays come from
            different libraries (e.g. numpy and torch in one call).

    Example:
        >>> import numpy as np
        >>> get_namespace(np.ones(2), np.zeros(3), names=["a", "b"]).__name__
        'array_api_compat.numpy'
    """
    if not arrays:
        raise TypeError("get_namespace needs at least one array")
    labels = list(names) if names is not None else [f"argument {i}" for i in range(len(arrays))]
    if len(labels) != len(arrays):
        raise ValueError(f"names: expected {len(arrays)} names, got {len(labels)}")
    first_lib = None
    first_label = None
    for array, label in zip(arrays, labels):
        try:
            lib = library_name(array)
        except TypeError:
            raise TypeError(
                f"{label}: expected a numpy array or torch tensor, got {type(array).__name__}"
            ) from None
        if first_lib is None:
            first_lib, first_label = lib, label
        elif lib != first_lib:
            raise TypeError(
                f"{first_label} is a {first_lib} array but {label} is a {lib} array; "
                "pass arrays of one library (convert one of them first)"
            )
    return array_api_compat.array_namespace(arrays[0])


class ArrayOps:
    """The operations the executors need, for one array library (generic: its namespace).

    ``ttnet._torch.TorchOps`` overrides them with torch's own functions. Obtain instances
    from :func:`array_ops`.

    Example:
        >>> import numpy as np
        >>> ops = array_ops(np.ones(2))
        >>> ops.permute(np.ones((2, 3)), (1, 0)).shape, ops.device_kind(np.ones(2))
        ((3, 2), 'cpu')
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def tensordot(self, a: Array, b: Array, axes: tuple[tuple[int, ...], ...]) -> Array:
        """``tensordot`` over the given axis pairs."""
        return self.xp.tensordot(a, b, axes=axes)

    def permute(self, x: Array, axes: tuple[int, ...]) -> Array:
        """``x`` with its axes permuted (a view where the library has views)."""
        return self.xp.permute_dims(x, axes)

    def einsum(self, equation: str, operands: Sequence[Array]) -> Array:
        """One einsum call (``opt_einsum`` finds the library's own)."""
        return opt_einsum.contract(equation, *operands, optimize=False)

    def einsum_path(self, equation: str, operands: Sequence[Array], path: Sequence[int]) -> Any:
        """One einsum call along a fixed pairwise path, or None where the library has none."""
        return None

    def device_kind(self, x: Array) -> str:
        """``"cpu"``, ``"cuda"``...: the kind of device ``x`` lives on (its cost model's key)."""
        return str(array_api_compat.device(x)).split(":")[0].lower() or "cpu"

    def default_float_dtype(self) -> Any:
        """The dtype integer and boolean inputs are converted to."""
        return self.xp.float64

    def astype(self, x: Array, dtype: Any) -> Array:
        """``x`` cast to ``dtype`` (``x`` itself when it has that dtype)."""
        return x if x.dtype == dtype else self.xp.astype(x, dtype)

    def dense_products(self, x: Array, stages: Sequence[tuple[Any, Sequence[Array]]],
                       bias: Array | None) -> Array:
        """``x`` through each ``(product, cores)`` of ``stages`` in turn, then ``+ bias``.

        Each product (a ``ttnet.dense.Product``) builds ``W`` from its cores and maps
        ``h -> (h @ W.T or h @ W) * scale``.
        """
        from ttnet.dense import build_matrix

        for (spec, transpose, scale), cores in stages:
            w = build_matrix(cores, spec)
            x = x @ (w.T if transpose else w)
            x = x if scale == 1.0 else x * scale
        return x if bias is None else x + bias


_OPS: dict[type, ArrayOps] = {}


def array_ops(x: Array) -> ArrayOps:
    """The :class:`ArrayOps` of ``x``'s library (torch: ``ttnet._torch.TorchOps``), cached.

    Example:
        >>> import numpy as np
        >>> array_ops(np.zeros(1)) is array_ops(np.ones(3))
        True
    """
    ops = _OPS.get(type(x))
    if ops is None:
        if array_api_compat.is_torch_array(x):
            from ttnet._torch import TorchOps  # torch is already imported: x is a tensor

            ops = TorchOps()
        else:
            ops = ArrayOps(array_api_compat.array_namespace(x))
        _OPS[type(x)] = ops
    return ops


def _is_array(x: Array) -> bool:
    return array_api_compat.is_array_api_obj(x)


def as_float_array(x: Array, name: str) -> Array:
    """``x`` as a floating-point array of its own library (the policy: :mod:`ttnet.precision`).

    Lists, tuples and scalars become numpy arrays. Integer and boolean arrays are
    converted to the library's default float dtype; float and complex arrays are
    returned unchanged.

    Raises:
        TypeError: for arrays of a non-numeric dtype, naming ``name``.

    Example:
        >>> import numpy as np
        >>> as_float_array(np.arange(3), "x").dtype
        dtype('float64')
    """
    if not _is_array(x):
        x = np.asarray(x)
    if array_api_compat.is_numpy_array(x) and x.dtype.kind not in "biufc":
        raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    xp = array_api_compat.array_namespace(x)
    if xp.isdtype(x.dtype, ("real floating", "complex floating")):
        return x
    if xp.isdtype(x.dtype, ("integral", "bool")):
        ops = array_ops(x)
        return ops.astype(x, ops.default_float_dtype())
    raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")


def upcast_half(x: Array) -> tuple[Array, Any]:
    """``(x as float32, x.dtype)`` for float16/bfloat16 ``x``, else ``(x, None)``.

    The linear algebra of numpy and torch has no half-precision SVD, QR or eigh, so
    half-precision inputs are decomposed in float32 and the caller casts back.

    Example:
        >>> import numpy as np
        >>> y, original = upcast_half(np.ones(2, dtype=np.float16))
        >>> y.dtype, original
        (dtype('float32'), dtype('float16'))
        >>> upcast_half(np.ones(2))[1] is None
        True
    """
    if str(x.dtype).rsplit(".", 1)[-1] not in ("float16", "bfloat16"):
        return x, None
    xp = array_api_compat.array_namespace(x)
    return xp.astype(x, xp.float32), x.dtype


def check_nonempty(x: Array, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``x`` has a zero-length axis.

    Example:
        >>> import numpy as np
        >>> check_nonempty(np.zeros((2, 0)), "tensor")
        Traceback (most recent call last):
        ...
        ValueError: tensor: expected a non-empty array, got shape (2, 0)
    """
    shape = tuple(int(s) for s in x.shape)
    if any(s == 0 for s in shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {shape}")


def check_finite(x: Array, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``x`` holds NaN or infinity.

    Example:
        >>> import numpy as np
        >>> check_finite(np.array([1.0, np.nan]), "tensor")
        Traceback (most recent call last):
        ...
        ValueError: tensor: expected finite values, got NaN or infinity
    """
    xp = array_api_compat.array_namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name}: expected finite values, got NaN or infinity")


def is_complex(x: Array) -> bool:
    """Whether ``x`` has a complex dtype.

    Example:
        >>> import numpy as np
        >>> is_complex(np.ones(2, dtype=complex)), is_complex(np.ones(2))
        (True, False)
    """
    xp = array_api_compat.array_namespace(x)
    return bool(xp.isdtype(x.dtype, "complex floating"))


def finfo_eps(x: Array) -> float:
    """Machine epsilon of ``x``'s (real) precision.

    Example:
        >>> import numpy as np
        >>> finfo_eps(np.ones(1, dtype=np.float32)) > finfo_eps(np.ones(1))
        True
    """
    xp = array_api_compat.array_namespace(x)
    dtype = x.dtype
    if xp.isdtype(dtype, "complex floating"):
        dtype = xp.real(x[(0,) * x.ndim] if x.ndim else x).dtype
    return float(xp.finfo(dtype).eps)


def to_numpy(x: Array) -> np.ndarray:
    """A numpy copy of ``x`` (detached and on the host for torch).

    Example:
        >>> import numpy as np
        >>> to_numpy(np.arange(2.0)).tolist()
        [0.0, 1.0]
    """
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def conj_t(x: Array) -> Array:
    """The conjugate transpose of a matrix ``x`` (a plain transpose for real dtypes).

    Example:
        >>> import numpy as np
        >>> conj_t(np.array([[1 + 2j, 3j]])).tolist()
        [[(1-2j)], [-3j]]
    """
    xp = array_api_compat.array_namespace(x)
    xt = xp.matrix_transpose(x)
    return xp.conj(xt) if is_complex(x) else xt


def svd(a: Array) -> tuple[Array, Array, Array]:
    """Thin SVD ``a = u @ diag(s) @ vh`` with singular values in descending order.

    Example:
        >>> import numpy as np
        >>> a = np.arange(6.0).reshape(2, 3)
        >>> u, s, vh = svd(a)
        >>> u.shape, s.shape, vh.shape, bool(np.allclose(u * s @ vh, a))
        ((2, 2), (2,), (2, 3), True)
    """
    xp = array_api_compat.array_namespace(a)
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    return u, s, vh


def qr(a: Array) -> tuple[Array, Array]:
    """Reduced QR ``a = q @ r``: ``q`` (m, k) with orthonormal columns, ``r`` (k, n), k = min(m, n).

    Example:
        >>> import numpy as np
        >>> q, r = qr(np.arange(6.0).reshape(3, 2))
        >>> q.shape, r.shape
        ((3, 2), (2, 2))
    """
    xp = array_api_compat.array_namespace(a)
    q, r = xp.linalg.qr(a, mode="reduced")
    return q, r


def qr_r(a: Array, block_rows: int = 2048) -> Array:
    """The ``r`` factor of a tall matrix's QR, computed by blocks (TSQR), without ``q``.

    Backward stable like Householder QR, and fast for tall-skinny matrices: row blocks
    are factored separately (LAPACK's R-only mode: no ``q`` is formed) and their ``r``
    factors stacked and factored again. The result agrees with ``qr(a)[1]`` up to the
    signs of its rows.

    Args:
        a: matrix (m, n).
        block_rows: rows per block (raised to at least ``4 * n``).

    Example:
        >>> import numpy as np
        >>> a = np.random.default_rng(0).standard_normal((5000, 3))
        >>> r = qr_r(a)
        >>> bool(np.allclose(r.T @ r, a.T @ a))
        True
    """
    xp = array_api_compat.array_namespace(a)
    m, n = int(a.shape[0]), int(a.shape[1])
    block = max(block_rows, 4 * n)
    if m <= 2 * block:
        return _r_factor(a)
    factors = [_r_factor(a[i : i + block]) for i in range(0, m, block)]
    return _r_factor(xp.concat(factors, axis=0))


def _r_factor(a: Array) -> Array:
    """LAPACK QR returning only ``r`` (``min(m, n) x n``)."""
    if array_api_compat.is_numpy_array(a):
        return np.linalg.qr(a, mode="r")
    if array_api_compat.is_torch_array(a):
        from ttnet._torch import r_factor  # torch is already imported: a is a tensor

        return r_factor(a)
    return array_api_compat.array_namespace(a).linalg.qr(a, mode="reduced")[1]


def eigh(a: Array) -> tuple[Array, Array]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric / Hermitian matrix.

    Example:
        >>> import numpy as np
        >>> w, v = eigh(np.array([[2.0, 0.0], [0.0, 1.0]]))
        >>> w.tolist()
        [1.0, 2.0]
    """
    xp = array_api_compat.array_namespace(a)
    w, v = xp.linalg.eigh(a)
    return w, v


def norm(a: Array) -> Array:
    """Frobenius norm over all entries of ``a``, as a 0-d array of ``a``'s library.

    Safe at every scale the dtype holds: where the squares would overflow or underflow
    (values beyond about ``1e154`` or below ``1e-138`` in float64, ``1e19`` / ``1e-13``
    in float32) it is computed on ``a`` divided by its largest magnitude.

    Example:
        >>> import numpy as np
        >>> float(norm(np.array([[3.0], [4.0]])))
        5.0
        >>> f"{float(norm(np.array([3e200, 4e200]))):.6g}"
        '5e+200'
    """
    xp = array_api_compat.array_namespace(a)
    flat = xp.reshape(a, (-1,))
    with np.errstate(over="ignore", under="ignore"):  # checked below
        value = xp.linalg.vector_norm(flat)
    info = xp.finfo(value.dtype)
    if math.isfinite(float(value)) and float(value) >= math.sqrt(info.smallest_normal) / info.eps:
        return value
    top = xp.max(xp.abs(flat)) if flat.shape[0] else value
    if not 0.0 < float(top) < math.inf:
        return value
    return top * xp.linalg.vector_norm(flat / top)
