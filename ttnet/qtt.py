"""Quantized TT (QTT): split each mode of size ``base**L`` into ``L`` modes of size ``base``.

A vector of length ``2**30`` becomes a TT with 30 modes of size 2, whose ranks stay small
for smooth or structured data (Oseledets, "Approximation of 2^d x 2^d matrices using
tensor decomposition", SIAM J. Matrix Anal. Appl. 31 (2010); Khoromskij, "O(d log N)-
quantics approximation of N-d tensors in high-dimensional numerical modeling", Constr.
Approx. 34 (2011)).

The digits of an index are ordered most significant first, and the digits of one mode
stay together: ``quantize`` is a C-order reshape, so the QTT's full tensor is the input
reshaped to ``(base, ..., base)``. :func:`dequantize` merges each group of consecutive
modes back into one (contracting their cores), giving a TT with the original modes; its
``.full()`` is the input again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ttnet._backend import as_float_array, get_namespace, svd
from ttnet.decomposition import tt_svd
from ttnet.plans import check_shape
from ttnet.tensor_train import TensorTrain

__all__ = ["dequantize", "quantize"]

Array = Any


def _digits(size: int, base: int, name: str, k: int) -> int:
    """``L`` with ``base**L == size``; ``ValueError`` naming the mode otherwise."""
    count, rest = 0, size
    while rest > 1 and rest % base == 0:
        rest //= base
        count += 1
    if rest != 1:
        raise ValueError(f"{name}: mode {k} has size {size}, not a power of base {base}")
    return count


def _check_base(base: int) -> int:
    if isinstance(base, bool) or not isinstance(base, int) or base < 2:
        raise ValueError(f"base: expected an int >= 2, got {base!r}")
    return base


def _split_core(core: Array, count: int, base: int) -> list[Array]:
    """Exact split of a core ``(r, base**count, r')`` into ``count`` cores of mode ``base``
    (SVDs keeping every nonzero singular value; rounding afterwards sets the ranks)."""
    xp = get_namespace(core)
    r0, _, r1 = (int(s) for s in core.shape)
    out, rest, left = [], core, r0
    for _ in range(count - 1):
        u, s, vh = svd(xp.reshape(rest, (left * base, -1)))
        keep = max(1, int(xp.sum(s > s[0] * 1e-15)) if float(s[0]) > 0 else 1)
        out.append(xp.reshape(u[:, :keep], (left, base, keep)))
        rest = s[:keep, None] * vh[:keep]
        left = keep
    out.append(xp.reshape(rest, (left, base, r1)))
    return out


def quantize(
    x: Array | TensorTrain,
    base: int = 2,
    eps: float | None = None,
    max_rank: int | None = None,
) -> TensorTrain:
    """The QTT of ``x``: each mode of size ``base**L`` split into ``L`` modes of size ``base``.

    Args:
        x: an array (numpy or torch) whose every mode size is a power of ``base``, e.g. a
            vector of length ``2**d``; or a :class:`~ttnet.TensorTrain` with such modes
            (its cores are split, no full tensor is formed).
        base: the size of the new modes.
        eps: relative error allowed (TT-SVD for an array, rounding for a TT).
        max_rank: rank cap.

    Returns:
        A TensorTrain with modes of size ``base`` (``.error`` as for :func:`ttnet.tt_svd`).

    Raises:
        ValueError: a mode size that is not a power of ``base``, or ``base < 2``.

    Example:
        >>> import numpy as np, ttnet
        >>> x = np.sin(np.linspace(0, 1, 2**20))
        >>> q = ttnet.quantize(x, eps=1e-12)
        >>> q.shape == (2,) * 20, max(q.ranks), q.num_params < 200
        (True, 2, True)
        >>> bool(np.allclose(ttnet.dequantize(q, x.shape).full(), x))
        True
    """
    base = _check_base(base)
    if isinstance(x, TensorTrain):
        counts = [_digits(n, base, "x", k) for k, n in enumerate(x.shape)]
        cores = []
        for core, count in zip(x.cores, counts):
            if count == 0:  # a mode of size 1: fold it into the next core (or the last one)
                cores.append(core)
                continue
            cores.extend(_split_core(core, count, base))
        merged = TensorTrain(_drop_unit_modes(cores))
        return merged.round(eps=eps, max_rank=max_rank)
    x = as_float_array(x, "x")
    counts = [_digits(int(n), base, "x", k) for k, n in enumerate(x.shape)]
    xp = get_namespace(x)
    total = sum(counts)
    return tt_svd(xp.reshape(x, (base,) * total if total else (1,)), eps=eps, max_rank=max_rank)


def _drop_unit_modes(cores: list[Array]) -> list[Array]:
    """Cores with every mode-size-1 core multiplied into a neighbour (one core is kept)."""
    xp = get_namespace(cores[0])
    kept: list[Array] = []
    pending = None
    for core in cores:
        if int(core.shape[1]) == 1 and len(cores) > 1:
            matrix = core[:, 0, :]
            pending = matrix if pending is None else pending @ matrix
            continue
        if pending is not None:
            core = xp.tensordot(pending, core, axes=([1], [0]))
            pending = None
        kept.append(core)
    if not kept:
        return [xp.reshape(pending, (1, 1, 1))]
    if pending is not None:
        kept[-1] = xp.tensordot(kept[-1], pending, axes=([2], [0]))
    return kept


def dequantize(qtt: TensorTrain, shape: Sequence[int]) -> TensorTrain:
    """Merge consecutive modes of ``qtt`` back into modes of sizes ``shape``.

    Each group of consecutive modes whose sizes multiply to ``shape[k]`` becomes one mode
    (its cores contracted, the ranks between them disappear); modes of size 1 in ``shape``
    get a core of ones. ``dequantize(quantize(x), x.shape).full()`` is ``x``.

    Raises:
        ValueError: the modes of ``qtt`` cannot be grouped into ``shape`` in order.

    Example:
        >>> import numpy as np, ttnet
        >>> x = np.arange(32.0).reshape(4, 8)
        >>> tt = ttnet.dequantize(ttnet.quantize(x), (4, 8))
        >>> tt.shape, bool(np.allclose(tt.full(), x))
        ((4, 8), True)
    """
    if not isinstance(qtt, TensorTrain):
        raise TypeError(f"qtt: expected a TensorTrain, got {type(qtt).__name__}")
    shape = check_shape(shape)
    xp = get_namespace(qtt.cores[0])
    cores, out, pos = list(qtt.cores), [], 0
    for k, size in enumerate(shape):
        r = int(cores[pos].shape[0]) if pos < len(cores) else 1
        merged = xp.reshape(xp.eye(r, dtype=qtt.dtype, device=qtt.device), (r, 1, r))
        # take modes until the product is ``size``; modes of size 1 go with the group before
        while pos < len(cores) and (int(merged.shape[1]) < size or int(cores[pos].shape[1]) == 1):
            core = cores[pos]
            block = xp.tensordot(merged, core, axes=([2], [0]))  # (r, m, n, r')
            merged = xp.reshape(block, (r, -1, int(core.shape[2])))
            pos += 1
        if int(merged.shape[1]) != size:
            raise ValueError(
                f"shape: mode {k} of size {size} is not a product of consecutive modes of "
                f"qtt (shape {qtt.shape})"
            )
        out.append(merged)
    if pos != len(cores):
        raise ValueError(f"shape: {shape} covers only {pos} of the {len(cores)} modes of qtt")
    return TensorTrain._trusted(out)
