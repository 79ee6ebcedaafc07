"""Dense reconstruction: TT cores to the full tensor or the dense matrix, and back for gradients.

A chain of cores that starts and ends at rank 1 is cheapest to multiply out left to right: one
matrix product per core, ``(N_{<k}, r_{k-1}) @ (r_{k-1}, n_k r_k)``, the running product
growing by one mode at a time. A TT matrix (cores ``(r_{k-1}, m_k, n_k, r_k)``) multiplied out
this way comes out with its row and column modes interleaved, ``(m_1, n_1, ..., m_d, n_d)``;
one reordering copy makes the ``(M, N)`` matrix, skipped when it would not move anything (every
``m_k`` or ``n_k`` of size 1 except at the boundary, as in the LoRETTA paper's layouts).

:func:`tt_full` and :func:`ttm_dense` are the public verbs. The pieces below them
(:class:`BuildSpec`, :func:`chain`, :func:`chain_backward`) are shared with the executors:
the dense route of a contraction (:mod:`ttnet.executors`) and torch's fused autograd function,
which differentiates the chain by hand (two matrix products per core) instead of recording it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from ttnet._backend import array_ops

__all__ = ["tt_full", "ttm_dense"]

Array = Any
Shapes = tuple[tuple[int, ...], ...]


def check_cores(cores: Sequence[Any], ndim: int) -> Shapes:
    """Shapes of ``cores`` after checking their number of axes and that the ranks chain."""
    if len(cores) == 0:
        raise ValueError("cores must be a non-empty sequence of arrays, got an empty sequence")
    shapes = tuple(tuple(int(s) for s in c.shape) for c in cores)
    for k, s in enumerate(shapes):
        if len(s) != ndim:
            raise ValueError(f"cores[{k}] must have {ndim} axes, got shape {s}")
    check_chain(shapes)
    return shapes


def check_chain(shapes: Shapes) -> None:
    """Raise ``ValueError`` unless the core shapes start and end at rank 1 and chain."""
    if shapes[0][0] != 1 or shapes[-1][-1] != 1:
        raise ValueError(
            f"cores must start and end with rank 1, got first rank {shapes[0][0]} "
            f"and last rank {shapes[-1][-1]}"
        )
    for k in range(len(shapes) - 1):
        if shapes[k][-1] != shapes[k + 1][0]:
            raise ValueError(
                f"cores[{k}] and cores[{k + 1}] ranks do not chain: {shapes[k][-1]} != "
                f"{shapes[k + 1][0]} (shapes {shapes[k]} and {shapes[k + 1]})"
            )
    for k, s in enumerate(shapes):
        if any(n < 1 for n in s):
            raise ValueError(f"cores[{k}] must have no empty axis, got shape {s}")


def links(shapes: Shapes) -> Shapes:
    """Per core ``(r_{k-1}, p_k * r_k, r_k)`` (``p_k`` the product of its mode sizes)."""
    return tuple((s[0], math.prod(s[1:]), s[-1]) for s in shapes)


def matrices(cores: Sequence[Array], steps: Shapes) -> list[Array]:
    """The cores as matrices: the first ``(p_1, r_1)``, the others ``(r_{k-1}, p_k r_k)``.

    ``steps`` is :func:`links` of the cores' shapes.
    """
    first = cores[0].reshape(-1, steps[0][2])
    return [first, *(core.reshape(r, width) for core, (r, width, _) in
                     zip(cores[1:], steps[1:]))]


MatMul = Callable[[Array, Array], Array]


def chain(
    mats: Sequence[Array], steps: Shapes, keep: bool = False, matmul: MatMul = operator.matmul
) -> tuple[Array, list[Array]]:
    """Multiply the cores out left to right; return ``(P_d, prefixes)``.

    ``mats`` are the cores as matrices (:func:`matrices`). ``P_k`` is ``(p_1 ... p_k, r_k)``:
    ``P_1`` is the first core, ``P_k = P_{k-1} @ G_k`` reshaped (the last one is returned as
    the product ``(p_1 ... p_{d-1}, p_d)``, the same entries in the same order). With ``keep``
    the prefixes ``P_1, ..., P_{d-1}`` are returned too (what :func:`chain_backward` needs),
    else ``[]``. ``matmul`` multiplies two matrices (torch passes ``torch.mm``).
    """
    res = mats[0]
    prefixes = []
    last = len(mats) - 1
    for k in range(1, last + 1):
        if keep:
            prefixes.append(res)
        res = matmul(res, mats[k])
        if k < last:
            res = res.reshape(-1, steps[k][2])
    return res, prefixes


def chain_backward(
    grad: Array, mats: Sequence[Array], prefixes: Sequence[Array], steps: Shapes,
    matmul: MatMul = operator.matmul, transposes: Sequence[Array] | None = None,
) -> list[Array]:
    """Gradients of the core matrices ``(r_{k-1}, p_k r_k)`` from the gradient of ``P_d``.

    Reverse of :func:`chain`: for ``k = d..2``, with ``Q = P_{k-1} @ G_k``,
    ``dG_k = P_{k-1}^T dQ`` and ``dP_{k-1} = dQ G_k^T``; ``dG_1 = dP_1``. Two matrix products
    per core, nothing recorded. ``grad`` may have any shape with ``P_d``'s entries in order (as
    :func:`from_matrix` gives); the caller reshapes each gradient to its core's shape.
    ``matmul`` multiplies two matrices; ``transposes``, where at hand, are the transposes of
    ``mats`` (then none is taken here, and ``P_1^T`` is the first of them).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> steps = links(((1, 3, 2), (2, 4, 1)))
        >>> mats = matrices([rng.random((1, 3, 2)), rng.random((2, 4, 1))], steps)
        >>> full, prefixes = chain(mats, steps, keep=True)  # d sum(full) / d cores:
        >>> grads = chain_backward(np.ones((12, 1)), mats, prefixes, steps)
        >>> bool(np.allclose(grads[1], mats[0].reshape(3, 2).sum(0)[:, None] @ np.ones((1, 4))))
        True
        >>> bool(np.allclose(grads[0], np.ones((3, 1)) @ mats[1].sum(1)[None]))
        True
    """
    d = len(steps)
    grads: list[Array] = [None] * d
    for k in range(d - 1, 0, -1):
        dq = grad.reshape(-1, steps[k][1])
        if transposes is None:
            grads[k] = matmul(prefixes[k - 1].T, dq)
            grad = matmul(dq, mats[k].T)
        else:
            grads[k] = matmul(transposes[0] if k == 1 else prefixes[k - 1].T, dq)
            grad = matmul(dq, transposes[k])
    grads[0] = grad
    return grads


@dataclass(frozen=True)
class BuildSpec:
    """How the dense ``(M, N)`` matrix of TT-matrix cores is multiplied out and reordered.

    Attributes:
        shapes: Core shapes ``(r_{k-1}, m_k, n_k, r_k)``.
        steps: :func:`links` of ``shapes``.
        interleaved: Axes of the chain's result, ``(m_1, n_1, ..., m_d, n_d)``.
        perm: Permutation from ``interleaved`` to ``(m_1..m_d, n_1..n_d)``, or ``None`` when
            it moves no axis of size above 1 (the reshape is then a view).
        inverse: The inverse of ``perm`` (``None`` with it).
        split: ``(m_1, ..., m_d, n_1, ..., n_d)``.
        size: ``(M, N)``.
    """

    shapes: Shapes
    steps: Shapes
    interleaved: tuple[int, ...]
    perm: tuple[int, ...] | None
    inverse: tuple[int, ...] | None
    split: tuple[int, ...]
    size: tuple[int, int]


@lru_cache(maxsize=1024)
def build_spec(shapes: Shapes) -> BuildSpec:
    """The :class:`BuildSpec` of TT-matrix cores of ``shapes`` (cached).

    Example:
        >>> spec = build_spec(((1, 2, 3, 4), (4, 5, 6, 1)))
        >>> spec.size, spec.perm
        ((10, 18), (0, 2, 1, 3))
        >>> build_spec(((1, 8, 1, 5), (5, 1, 4, 1))).perm is None  # rows, then columns
        True
    """
    d = len(shapes)
    interleaved = tuple(n for s in shapes for n in s[1:3])
    perm: tuple[int, ...] | None = tuple(range(0, 2 * d, 2)) + tuple(range(1, 2 * d, 2))
    moved = [axis for axis in perm if interleaved[axis] > 1]
    if moved == sorted(moved):
        perm = None
    inverse = None if perm is None else tuple(perm.index(i) for i in range(2 * d))
    split = tuple(s[1] for s in shapes) + tuple(s[2] for s in shapes)
    size = (math.prod(split[:d]), math.prod(split[d:]))
    return BuildSpec(shapes, links(shapes), interleaved, perm, inverse, split, size)


@lru_cache(maxsize=256)
def reorder_index(shapes: Shapes, transpose: bool, inverse: bool = False) -> np.ndarray | None:
    """The reordering of :func:`to_matrix` as a gather: flat positions, or None if it is none.

    For TT-matrix cores of ``shapes``: ``index`` such that ``res.reshape(-1)[index]`` is ``W``
    (``transpose=False``) or ``W.T`` (``True``), row-major, where ``res`` is the chain's result
    in its interleaved order; with ``inverse``, the index of the way back (``W`` or ``W.T``
    flattened, gathered into the chain's order). One gather of this kind reorders any layout in
    one call and yields either orientation at the same cost. None where the gather would leave
    every entry in place. Cached.

    Example:
        >>> reorder_index(((1, 2, 2, 1),), transpose=False) is None  # one core: W itself
        True
        >>> reorder_index(((1, 2, 2, 1),), transpose=True).tolist()  # its transpose
        [0, 2, 1, 3]
        >>> reorder_index(((1, 2, 1, 2), (2, 1, 2, 1)), transpose=False) is None  # rows, then cols
        True
    """
    spec = build_spec(shapes)
    d = len(shapes)
    order = np.arange(math.prod(spec.size)).reshape(spec.interleaved)
    matrix = order.transpose(tuple(range(0, 2 * d, 2)) + tuple(range(1, 2 * d, 2)))
    matrix = matrix.reshape(spec.size)
    index = np.ascontiguousarray(matrix.T if transpose else matrix).reshape(-1)
    if np.array_equal(index, order.reshape(-1)):
        return None
    return np.argsort(index) if inverse else index


class Product(NamedTuple):
    """One step of a sequence of dense products: ``h -> (h @ W.T or h @ W) * scale``.

    Attributes:
        spec: How ``W`` is built from its cores.
        transpose: True for ``h @ W.T`` (a matvec), False for ``h @ W``.
        scale: The factor on the result (1.0: none).
    """

    spec: BuildSpec
    transpose: bool
    scale: float


def build_matrix(cores: Sequence[Array], spec: BuildSpec) -> Array:
    """The dense ``(M, N)`` matrix of TT-matrix cores (differentiable where the library is)."""
    res, _ = chain(matrices(cores, spec.steps), spec.steps)
    return to_matrix(res, spec)


def to_matrix(res: Array, spec: BuildSpec) -> Array:
    """The chain's result ``(M N, 1)`` in interleaved order as the ``(M, N)`` matrix."""
    if spec.perm is None:
        return res.reshape(spec.size)
    return array_ops(res).permute(res.reshape(spec.interleaved), spec.perm).reshape(*spec.size)


def from_matrix(grad: Array, spec: BuildSpec) -> Array:
    """The inverse of :func:`to_matrix`: an ``(M, N)`` matrix in the chain's interleaved order,
    shaped ``(M N / w, w)`` for the last core's width ``w`` (what :func:`chain_backward` reads).
    """
    width = spec.steps[-1][1]
    if spec.perm is None:
        return grad.reshape(-1, width)
    return array_ops(grad).permute(grad.reshape(spec.split), spec.inverse).reshape(-1, width)


def tt_full(cores: Sequence[Array]) -> Array:
    """Contract TT-tensor cores ``(r_{k-1}, n_k, r_k)`` into the full tensor ``(n_1, ..., n_d)``.

    Args:
        cores: The TT cores (numpy arrays or torch tensors, one library and dtype).

    Returns:
        The full tensor, same library, dtype and device as the cores.

    Raises:
        ValueError: If a core is not 3-dimensional or the ranks do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 3, 2)), rng.random((2, 4, 2)), rng.random((2, 5, 1))]
        >>> full = tt_full(cores)
        >>> full.shape, bool(np.allclose(full, np.einsum("aib,bjc,cka->ijk", *cores)))
        ((3, 4, 5), True)
    """
    shapes = check_cores(cores, 3)
    steps = links(shapes)
    res, _ = chain(matrices(cores, steps), steps)
    return res.reshape(tuple(s[1] for s in shapes))


def ttm_dense(cores: Sequence[Array]) -> Array:
    """Contract TT-matrix cores ``(r_{k-1}, m_k, n_k, r_k)`` into the dense ``W`` ``(M, N)``.

    Args:
        cores: The TT-matrix cores (numpy arrays or torch tensors, one library and dtype).

    Returns:
        ``W`` with ``M = prod(m_k)`` rows and ``N = prod(n_k)`` columns (row-major multi-indices).

    Raises:
        ValueError: If a core is not 4-dimensional or the ranks do not chain.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> cores = [rng.random((1, 2, 3, 2)), rng.random((2, 4, 5, 1))]
        >>> w = ttm_dense(cores)
        >>> ref = np.einsum("aijb,bklc->ikjl", *cores).reshape(8, 15)
        >>> w.shape, bool(np.allclose(w, ref))
        ((8, 15), True)
    """
    return build_matrix(cores, build_spec(check_cores(cores, 4)))
