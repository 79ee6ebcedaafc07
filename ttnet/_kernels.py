"""Per-slab work of the blocked TT-SVD, shared by the in-memory loop and dask workers.

A *slab* is a block of columns of an unfolding ``C`` (``rows x b``). Its columns come in
whole groups of ``group`` trailing-mode columns, so a slab-shaped array reshaped to
``(-1, group)`` holds whole rows of the right-hand unfolding. Each kernel is a small
picklable callable ``kernel(slab, where, out=None) -> (block, parts)``: an optional output
block (same columns, new rows; written into ``out`` when the caller passes where it goes)
and a tuple of small partial results, which the driver adds up (Grams, squared residuals)
or stacks (R factors, see :func:`stack_r`). ``where`` names the slab's position for error
messages.

Example:
    >>> import numpy as np
    >>> c = np.arange(12.0).reshape(2, 6)
    >>> _, (g,) = Gram(np.float64)(c, "block 0")
    >>> bool(np.allclose(g, c @ c.T))
    True
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from ttnet._backend import qr_r
from ttnet._blas import astype_into, matmul_into, residual_squares, sum_squares

__all__ = [
    "Gram",
    "MaxAbs",
    "Project",
    "ProjectRight",
    "RFactor",
    "Scale",
    "Then",
    "add_parts",
    "max_parts",
    "scratch_scope",
    "stack_r",
]

Array = Any
Parts = tuple[Any, ...]


_NAMESPACES: dict[type, Any] = {}


def _ns(x: Array) -> Any:
    """The array-API namespace of ``x``, cached by type (kernels run once per slab)."""
    kind = type(x)
    xp = _NAMESPACES.get(kind)
    if xp is None:
        xp = _NAMESPACES[kind] = array_api_compat.array_namespace(x)
    return xp


_SCRATCH = threading.local()


@contextlib.contextmanager
def scratch_scope() -> Iterator[None]:
    """Work buffers that the kernels of one pass reuse slab after slab (freed at the end):
    no slab-sized allocation per slab."""
    outer = getattr(_SCRATCH, "buffers", None)
    _SCRATCH.buffers = {}
    try:
        yield
    finally:
        _SCRATCH.buffers = outer


def _scratch(shape: tuple[int, ...], dtype: Any, like: Array, slot: str, xp: Any) -> Any:
    """A reusable uninitialised buffer of ``shape`` (``None`` outside a scratch scope)."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        return None
    size = math.prod(shape)
    key = (slot, type(like), str(dtype))
    buf = buffers.get(key)
    if buf is None or int(buf.shape[0]) < size:
        device = array_api_compat.device(like)
        buf = buffers[key] = xp.empty((size,), dtype=dtype, device=device)
    return buf[:size].reshape(shape)


def _prepare(slab: Array, dtype: Any, xp: Any, slot: str = "cast") -> Array:
    """``slab`` in ``dtype`` (a copy, into a scratch buffer, only when the dtype differs)."""
    if slab.dtype == dtype:
        return slab
    return astype_into(slab, dtype, _scratch(tuple(slab.shape), dtype, slab, slot, xp))


def _ct(x: Array, xp: Any) -> Array:
    """Conjugate transpose of a matrix (a view for real dtypes)."""
    xt = x.swapaxes(-1, -2)
    return xp.conj(xt) if xp.isdtype(x.dtype, "complex floating") else xt


def _check_finite(slab: Array, name: str, where: str, xp: Any) -> None:
    if not bool(xp.all(xp.isfinite(slab))):
        raise ValueError(f"{name}: expected finite values, got NaN or infinity in {where}")


def _widen(g: Array, xp: Any) -> Array:
    """A small partial result in double precision, so that summing many of them adds no
    error beyond each one's own (float32 Grams are summed in float64)."""
    if g.dtype == xp.float32:
        return xp.astype(g, xp.float64)
    if g.dtype == xp.complex64:
        return xp.astype(g, xp.complex128)
    return g


def _trace(g: Array, xp: Any) -> float:
    return float(xp.sum(xp.real(xp.linalg.diagonal(g))))


@dataclass(frozen=True)
class Gram:
    """Gram of a slab in ``dtype``: ``x x^H`` of its rows, or with ``group``, ``x^H x`` of
    the right unfolding's rows. Checks the slab for NaN/inf (the first pass over the data
    does the checking: a non-finite Gram with finite data means overflow, not bad data)."""

    dtype: Any
    group: int = 0
    name: str = "tensor"

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[None, Parts]:
        xp = _ns(slab)
        x = _prepare(slab, self.dtype, xp)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below
            if self.group:
                x = x.reshape(-1, self.group)
                g = _ct(x, xp) @ x
            else:
                g = x @ _ct(x, xp)
        if not math.isfinite(_trace(g, xp)):
            _check_finite(slab, self.name, where, xp)
        return None, (_widen(g, xp),)


@dataclass(frozen=True)
class Project:
    """``y = fh @ slab`` for a left frame ``f`` (``fh = f^H``, working dtype), with,
    optionally, the squared residual ``||slab - f y||^2`` (``residual``), ``||y||^2``
    (``norm``) and the Gram of ``y``'s right unfolding (``group`` columns, in
    ``gram_dtype``), in that order."""

    fh: Array
    f: Array
    residual: bool = False
    group: int = 0
    gram_dtype: Any = None
    keep: bool = True
    norm: bool = False

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[Array | None, Parts]:
        xp = _ns(slab)
        x = _prepare(slab, self.fh.dtype, xp)
        y = matmul_into(self.fh, x, out if self.keep else None)
        parts: list[Any] = []
        if self.residual:
            work = _scratch(tuple(x.shape), x.dtype, x, "residual", xp)
            parts.append(residual_squares(x, self.f, y, work))
        if self.norm:
            parts.append(sum_squares(y))
        if self.group:
            yr = _prepare(y, self.gram_dtype, xp, "cast y").reshape(-1, self.group)
            parts.append(_widen(_ct(yr, xp) @ yr, xp))
        return (y if self.keep else None), tuple(parts)


@dataclass(frozen=True)
class ProjectRight:
    """``z = y_R @ w`` for the right unfolding ``y_R`` (``w.shape[0]`` columns) of a slab
    and a right frame ``w`` (orthonormal columns); optionally the squared residual
    ``||y_R - z w^H||^2``. The block returned is ``z`` laid out as a slab:
    ``(rows, b / group * r)``."""

    w: Array
    residual: bool = False

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[Array, Parts]:
        xp = _ns(slab)
        rows = int(slab.shape[0])
        yr = _prepare(slab, self.w.dtype, xp).reshape(-1, int(self.w.shape[0]))
        z = yr @ self.w
        parts = ()
        if self.residual:
            work = _scratch(tuple(yr.shape), yr.dtype, yr, "residual", xp)
            parts = (residual_squares(yr, z, _ct(self.w, xp), work),)
        return z.reshape(rows, -1), parts


@dataclass(frozen=True)
class RFactor:
    """The ``r`` factor (TSQR, no ``q``) of a slab's ``x^H`` (rows' side) or, with
    ``group``, of its right unfolding; combine with :func:`stack_r`."""

    dtype: Any
    group: int = 0

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[None, Parts]:
        xp = _ns(slab)
        x = _prepare(slab, self.dtype, xp)
        x = x.reshape(-1, self.group) if self.group else _ct(x, xp)
        return None, (qr_r(x),)


@dataclass(frozen=True)
class Then:
    """Apply ``first`` (a kernel that returns a block) and then ``second`` to the block:
    e.g. slabs of a projected tensor computed on the fly from the original's."""

    first: Any
    second: Any

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[Array | None, Parts]:
        y, _ = self.first(slab, where)
        return self.second(y, where, out)


@dataclass(frozen=True)
class Scale:
    """The slab times ``factor`` (a power of two: exact), as a block."""

    factor: float

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[Array, Parts]:
        return slab * self.factor, ()


@dataclass(frozen=True)
class MaxAbs:
    """The largest magnitude in a slab (combine with :func:`max_parts`)."""

    def __call__(self, slab: Array, where: str, out: Array = None) -> tuple[None, Parts]:
        xp = _ns(slab)
        return None, (float(xp.max(xp.abs(slab))),)


def add_parts(a: Parts | None, b: Parts) -> Parts:
    """Element-wise sum of two tuples of partial results (``a`` may be ``None``)."""
    if a is None:
        return b
    return tuple(x + y for x, y in zip(a, b))


def max_parts(a: Parts | None, b: Parts) -> Parts:
    """Element-wise maximum of two tuples of partial results (``a`` may be ``None``)."""
    if a is None:
        return b
    return tuple(max(x, y) for x, y in zip(a, b))


def stack_r(a: Parts | None, b: Parts) -> Parts:
    """Combine two R factors: the ``r`` of their stack."""
    if a is None:
        return b
    xp = array_api_compat.array_namespace(a[0])
    return (qr_r(xp.concat([a[0], b[0]], axis=0)),)
