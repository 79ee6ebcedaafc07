"""Entries, slices, batched gathers and sums of TT values, without forming the full array.

Functions on raw cores ``(r_{k-1}, n_k, r_k)`` (numpy or torch, one library), used by
:class:`~ttnet.TensorTrain` and :class:`~ttnet.TTMatrix` (whose cores are viewed with the
row and column axes merged, ``n_k = m_k * c_k``):

- :func:`gather_cores`: entries at a batch of multi-indices: left to right, the partial
  products are sorted by their index ``a`` in mode ``k`` and each run is multiplied by the
  slice ``G_k[:, a, :]`` (one product per index value, ``batch * sum r_{k-1} r_k`` work,
  no temporary beyond ``batch * r``).
- :func:`select_cores`: a key of ints, slices and ``...``. A slice keeps its mode (the core
  restricted to it); an int drops its mode, its ``(r_{k-1}, r_k)`` slice is multiplied into
  the next kept core on its right (or the last kept core when none is left).
- :func:`sum_cores`: summing over a mode contracts its core with a vector of ones; the
  resulting matrix is absorbed into a neighbour the same way.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from ttnet._backend import get_namespace, library_name, to_numpy

__all__ = [
    "check_index",
    "check_indices",
    "gather_cores",
    "normalize_axes",
    "select_cores",
    "sum_cores",
]

Array = Any


def _as_int(value: Any, message: str) -> int:
    """``value`` as an int (numpy and torch integers too); ``TypeError(message)`` otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{message}, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{message}, got {value!r}") from None


def check_index(i: Any, size: int, mode: int | str) -> int:
    """``i`` as an int in ``[0, size)`` (negative ``i`` counts from the end, as in numpy).

    ``mode``: the mode's number, or a label such as ``"rows"``.

    Raises:
        IndexError: ``i`` is out of range; the message names the mode.
        TypeError: ``i`` is not an integer.

    Example:
        >>> check_index(-1, 4, 0)
        3
        >>> check_index(4, 4, 2)
        Traceback (most recent call last):
        ...
        IndexError: index 4 is out of range for mode 2 of size 4
    """
    label = f"mode {mode}" if isinstance(mode, int) else mode
    value = _as_int(i, f"index for {label}: expected an int or a slice")
    if not -size <= value < size:
        raise IndexError(f"index {value} is out of range for {label} of size {size}")
    return value % size


def check_indices(indices: Any, shape: Sequence[int], like: Array, labels: Sequence[str]) -> Array:
    """``indices`` as an int64 ``(batch, len(shape))`` array of ``like``'s library, in range.

    Negative indices count from the end (as in numpy). ``labels[k]`` names column ``k`` in
    messages ("mode 2", "rows").

    Raises:
        ValueError: not a 2-D array with one column per mode.
        TypeError: not integers.
        IndexError: an index out of range; the message names the mode.

    Example:
        >>> import numpy as np
        >>> check_indices([[0, -1]], (2, 3), np.zeros(1), ["mode 0", "mode 1"]).tolist()
        [[0, 2]]
    """
    torch_like = library_name(like) == "torch"
    if torch_like:
        import torch  # already imported: ``like`` is a torch tensor

        if not isinstance(indices, torch.Tensor):
            indices = torch.as_tensor(np.asarray(indices))
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"indices: expected integers, got dtype {indices.dtype}")
        indices = indices.to(device=like.device, dtype=torch.int64)
    else:
        indices = np.asarray(to_numpy(indices) if not isinstance(indices, np.ndarray) else indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"indices: expected integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64)
    d = len(shape)
    if indices.ndim != 2 or int(indices.shape[1]) != d:
        raise ValueError(
            f"indices: expected shape (batch, {d}), one column per mode, got {tuple(indices.shape)}"
        )
    if int(indices.shape[0]) == 0:
        return indices
    xp = get_namespace(indices)
    low, high = xp.min(indices, axis=0), xp.max(indices, axis=0)
    for k, size in enumerate(shape):
        for value in (int(low[k]), int(high[k])):
            if not -size <= value < size:
                raise IndexError(f"index {value} is out of range for {labels[k]} of size {size}")
    sizes = xp.asarray(list(shape), dtype=indices.dtype, device=array_api_compat.device(indices))
    return xp.where(indices < 0, indices + sizes, indices)


def _chain(pieces: Sequence[tuple[bool, Array]], xp: Any) -> list[Array] | Array:
    """Cores from ``(kept, piece)`` pairs: kept pieces are cores, the others matrices that
    are multiplied into the next kept core (or the last one). With nothing kept, the
    product of the matrices as a 0-d array."""
    out: list[Array] = []
    pending = None
    for kept, piece in pieces:
        if kept:
            if pending is not None:
                piece = xp.tensordot(pending, piece, axes=([1], [0]))
                pending = None
            out.append(piece)
        else:
            pending = piece if pending is None else pending @ piece
    if not out:
        return pending[0, 0]
    if pending is not None:
        out[-1] = xp.tensordot(out[-1], pending, axes=([2], [0]))
    return out


def gather_cores(cores: Sequence[Array], indices: Array) -> Array:
    """Entries ``full[indices[b, 0], ..., indices[b, d-1]]`` for each row ``b``.

    Args:
        cores: TT cores ``(r_{k-1}, n_k, r_k)``.
        indices: integers ``(batch, d)``, already checked to be in range (numpy or of the
            cores' library).

    Returns:
        ``(batch,)`` values of the cores' library, dtype and device.

    Example:
        >>> import numpy as np
        >>> cores = [np.arange(6.0).reshape(1, 3, 2), np.ones((2, 2, 1))]
        >>> gather_cores(cores, np.array([[2, 0], [1, 1]])).tolist()
        [9.0, 5.0]
    """
    xp = get_namespace(cores[0])
    if library_name(cores[0]) == "torch" and isinstance(indices, np.ndarray):
        import torch  # already imported: the cores are torch tensors

        indices = torch.as_tensor(indices, device=cores[0].device)
    if int(indices.shape[0]) == 0:
        return xp.zeros((0,), dtype=cores[0].dtype, device=array_api_compat.device(cores[0]))
    perm = None  # rows of ``vec`` are the batch rows in this order
    vec = cores[0][0][indices[:, 0]]  # (batch, r_1)
    for k in range(1, len(cores)):
        column = indices[:, k] if perm is None else indices[perm, k]
        order = xp.argsort(column, stable=True)
        ends = xp.searchsorted(column[order], xp.arange(int(cores[k].shape[1]) + 1,
                                                        device=array_api_compat.device(column)))
        vec = vec[order]
        perm = order if perm is None else perm[order]
        ends = [int(e) for e in ends]
        r0, n, r1 = (int(s) for s in cores[k].shape)  # slices as contiguous (r0, r1) blocks:
        slices = xp.reshape(xp.reshape(xp.permute_dims(cores[k], (1, 0, 2)), (-1,)), (n, r0, r1))
        parts = [vec[ends[a] : ends[a + 1]] @ slices[a]
                 for a in range(n) if ends[a + 1] > ends[a]]
        vec = xp.concat(parts, axis=0)
    values = vec[:, 0]
    if perm is None:
        return values
    out = xp.empty_like(values)
    out[perm] = values
    return out


def select_cores(cores: Sequence[Array], key: Any) -> list[Array] | Array:
    """Cores of ``full[key]`` (or the entry, a 0-d array, when every mode gets an int).

    ``key``: ints, slices and at most one ``...``, no more items than modes; missing
    trailing items mean ``:``.

    Raises:
        IndexError: an int out of range, a slice that selects nothing (a TT mode cannot
            be empty), too many items or two ``...``; the message names the mode.

    Example:
        >>> import numpy as np
        >>> cores = [np.arange(6.0).reshape(1, 3, 2), np.ones((2, 2, 1))]
        >>> [c.shape for c in select_cores(cores, (slice(1, None),))]
        [(1, 2, 2), (2, 2, 1)]
        >>> float(select_cores(cores, (2, 0)))
        9.0
    """
    xp = get_namespace(cores[0])
    shape = [int(c.shape[1]) for c in cores]
    items = _expand_key(key, len(shape))
    pieces = []
    for k, (item, core) in enumerate(zip(items, cores)):
        if isinstance(item, slice):
            positions = range(shape[k])[item]
            if len(positions) == 0:
                raise IndexError(f"slice {item} selects no entries of mode {k} of size {shape[k]}")
            if positions.step == 1:
                part = core[:, positions.start : positions.stop, :]
            else:
                take = np.arange(positions.start, positions.stop, positions.step)
                if library_name(core) == "torch":
                    import torch  # already imported: the cores are torch tensors

                    take = torch.as_tensor(take, device=core.device)
                part = core[:, take, :]
            pieces.append((True, part))
        else:
            pieces.append((False, core[:, check_index(item, shape[k], k), :]))
    return _chain(pieces, xp)


def _expand_key(key: Any, d: int) -> list[Any]:
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = d - (len(items) - 1)
        items = items[:at] + [slice(None)] * max(fill, 0) + items[at + 1 :]
    if len(items) > d:
        raise IndexError(f"too many indices: the tensor has {d} modes, got {len(items)} items")
    return items + [slice(None)] * (d - len(items))


def normalize_axes(axis: int | Sequence[int] | None, d: int) -> tuple[int, ...]:
    """``axis`` as sorted distinct modes in ``[0, d)`` (``None``: all of them).

    Raises:
        IndexError: an axis out of range. ValueError: an axis given twice.
        TypeError: an axis that is not an int.

    Example:
        >>> normalize_axes((-1, 0), 3)
        (0, 2)
    """
    if axis is None:
        return tuple(range(d))
    items = [axis] if not isinstance(axis, (tuple, list)) else list(axis)
    out = []
    for item in items:
        value = _as_int(item, "axis: expected an int or a tuple of ints")
        if not -d <= value < d:
            raise IndexError(f"axis: {value} is out of range for a tensor with {d} modes")
        out.append(value % d)
    if len(set(out)) != len(out):
        raise ValueError(f"axis: each mode at most once, got {axis}")
    return tuple(sorted(out))


def sum_cores(cores: Sequence[Array], axes: Sequence[int]) -> list[Array] | Array:
    """Cores of ``full.sum(axis=axes)`` (a 0-d array when every mode is summed).

    Example:
        >>> import numpy as np
        >>> cores = [np.arange(6.0).reshape(1, 3, 2), np.ones((2, 2, 1))]
        >>> float(sum_cores(cores, (0, 1))), sum_cores(cores, (1,))[0].shape
        (30.0, (1, 3, 1))
    """
    xp = get_namespace(cores[0])
    pieces = [
        (False, xp.sum(core, axis=1)) if k in axes else (True, core)
        for k, core in enumerate(cores)
    ]
    return _chain(pieces, xp)
