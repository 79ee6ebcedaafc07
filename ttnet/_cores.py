"""Algorithms on raw lists of TT cores ``(r_{k-1}, n_k, r_k)``, shared by the value types.

:class:`ttnet.TensorTrain` and :class:`ttnet.TTMatrix` (whose cores are reshaped to
``(r_{k-1}, m_k * n_k, r_k)``) both call these; they are plain functions on arrays so
torch autograd flows through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat

from ttnet._backend import (
    as_float_array,
    check_finite,
    check_nonempty,
    conj_t,
    get_namespace,
    is_complex,
    qr,
    upcast_half,
)
from ttnet._backend import norm as _backend_norm

Array = Any


def validate_cores(cores: Sequence[Array], core_ndim: int, name: str = "cores") -> list[Array]:
    """Checked cores: one array library and dtype, ``core_ndim`` axes, chaining ranks.

    Integer / boolean cores are converted to float (see :mod:`ttnet._backend`).

    Raises:
        TypeError: not a sequence, mixed libraries or dtypes.
        ValueError: no cores, wrong number of axes, empty or non-finite core, boundary
            rank not 1, or ranks that do not chain; the message names the core index.
    """
    if isinstance(cores, (str, bytes)) or not isinstance(cores, Sequence):
        raise TypeError(f"{name}: expected a list of arrays, got {type(cores).__name__}")
    if len(cores) == 0:
        raise ValueError(f"{name}: expected at least one core, got an empty list")
    labels = [f"{name}[{k}]" for k in range(len(cores))]
    get_namespace(*cores, names=labels)
    checked = [as_float_array(c, label) for c, label in zip(cores, labels)]
    dtype = checked[0].dtype
    for k, core in enumerate(checked):
        label = labels[k]
        if core.ndim != core_ndim:
            raise ValueError(
                f"{label}: expected {core_ndim} axes (r_{{k-1}}, ..., r_k), "
                f"got shape {tuple(core.shape)}"
            )
        if core.dtype != dtype:
            raise TypeError(f"{label}: expected dtype {dtype} like {name}[0], got {core.dtype}")
        check_nonempty(core, label)
        check_finite(core, label)
    if int(checked[0].shape[0]) != 1:
        raise ValueError(f"{name}[0]: expected first rank 1, got {int(checked[0].shape[0])}")
    if int(checked[-1].shape[-1]) != 1:
        raise ValueError(
            f"{labels[-1]}: expected last rank 1, got {int(checked[-1].shape[-1])}"
        )
    for k in range(1, len(checked)):
        left, right = int(checked[k - 1].shape[-1]), int(checked[k].shape[0])
        if left != right:
            raise ValueError(
                f"{labels[k]}: ranks do not chain: {labels[k - 1]} ends with rank {left} "
                f"but {labels[k]} starts with rank {right}"
            )
    return checked


def add(a: Sequence[Array], b: Sequence[Array]) -> list[Array]:
    """Cores of the sum: block cores (first: row, middle: block diagonal, last: column)."""
    xp = get_namespace(a[0], b[0], names=["self", "other"])
    d = len(a)
    if d == 1:
        return [a[0] + b[0]]
    out = [xp.concat([a[0], b[0]], axis=2)]
    for k in range(1, d - 1):
        ga, gb = a[k], b[k]
        ra, n, ca = (int(s) for s in ga.shape)
        rb, _, cb = (int(s) for s in gb.shape)
        device = array_api_compat.device(ga)
        top = xp.concat([ga, xp.zeros((ra, n, cb), dtype=ga.dtype, device=device)], axis=2)
        bottom = xp.concat([xp.zeros((rb, n, ca), dtype=gb.dtype, device=device), gb], axis=2)
        out.append(xp.concat([top, bottom], axis=0))
    out.append(xp.concat([a[-1], b[-1]], axis=0))
    return out


def hadamard(a: Sequence[Array], b: Sequence[Array]) -> list[Array]:
    """Cores of the elementwise product: Kronecker products of the rank axes."""
    xp = get_namespace(a[0], b[0], names=["self", "other"])
    out = []
    for ga, gb in zip(a, b):
        ra, n, ca = (int(s) for s in ga.shape)
        rb, _, cb = (int(s) for s in gb.shape)
        prod = ga[:, None, :, :, None] * gb[None, :, :, None, :]
        out.append(xp.reshape(prod, (ra * rb, n, ca * cb)))
    return out


def dot(a: Sequence[Array], b: Sequence[Array]) -> Array:
    """``sum(conj(full(a)) * full(b))`` by transfer matrices, never forming the full tensors."""
    xp = get_namespace(a[0], b[0], names=["self", "other"])
    conj = is_complex(a[0])
    m = None
    for ga, gb in zip(a, b):
        ga = xp.conj(ga) if conj else ga
        if m is None:  # first core: ranks are 1 on the left
            m = xp.tensordot(ga[0], gb[0], axes=([0], [0]))
        else:
            t = xp.tensordot(m, ga, axes=([0], [0]))  # (rb, n, ca)
            m = xp.tensordot(t, gb, axes=([0, 1], [0, 1]))  # (ca, cb)
    return m[0, 0]


def _upcast(cores: Sequence[Array]) -> tuple[list[Array], Any]:
    """Cores in float32 when they are float16/bfloat16 (QR has no half precision), and the
    original dtype to cast back to (``None`` when no cast was needed)."""
    half = upcast_half(cores[0])[1]
    if half is None:
        return list(cores), None
    return [upcast_half(c)[0] for c in cores], half


def _cast_back(cores: list[Array], half: Any) -> list[Array]:
    if half is None:
        return cores
    xp = get_namespace(cores[0])
    return [xp.astype(c, half) for c in cores]


def orthogonalize_left(cores: Sequence[Array]) -> list[Array]:
    """Same tensor with cores ``0..d-2`` left-orthonormal (QR sweep left to right).

    float16/bfloat16 cores are orthogonalised in float32 and cast back.
    """
    xp = get_namespace(cores[0])
    out, half = _upcast(cores)
    for k in range(len(out) - 1):
        r0, n, r1 = (int(s) for s in out[k].shape)
        q, r = qr(xp.reshape(out[k], (r0 * n, r1)))
        out[k] = xp.reshape(q, (r0, n, int(q.shape[1])))
        out[k + 1] = xp.tensordot(r, out[k + 1], axes=([1], [0]))
    return _cast_back(out, half)


def orthogonalize_right(cores: Sequence[Array]) -> list[Array]:
    """Same tensor with cores ``1..d-1`` right-orthonormal (QR sweep right to left).

    float16/bfloat16 cores are orthogonalised in float32 and cast back.
    """
    xp = get_namespace(cores[0])
    out, half = _upcast(cores)
    for k in range(len(out) - 1, 0, -1):
        r0, n, r1 = (int(s) for s in out[k].shape)
        q, r = qr(conj_t(xp.reshape(out[k], (r0, n * r1))))
        rank = int(q.shape[1])
        out[k] = xp.reshape(conj_t(q), (rank, n, r1))
        out[k - 1] = xp.tensordot(out[k - 1], conj_t(r), axes=([2], [0]))
    return _cast_back(out, half)


def norm(cores: Sequence[Array]) -> Array:
    """Frobenius norm via left orthogonalisation (accurate, no full tensor).

    Computed in float32 for float16/bfloat16 cores, and without over- or underflow at
    extreme scales (:func:`ttnet._backend.norm`); returned in the cores' dtype.
    """
    xp = get_namespace(cores[0])
    wide, half = _upcast(cores)
    value = _backend_norm(orthogonalize_left(wide)[-1])
    return value if half is None else xp.astype(value, half)
