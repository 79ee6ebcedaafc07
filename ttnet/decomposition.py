"""TT-SVD: a dense tensor or matrix -> TT with a guaranteed relative error.

``tt_svd(A, eps)`` returns a TT with ``||A - TT|| <= eps ||A||`` for every dtype, scale
and spectrum (each of the ``d - 1`` bonds may discard ``eps / sqrt(d - 1) ||A||``,
Oseledets 2011), and its :attr:`~ttnet.TensorTrain.error` is the true relative error.

How (details in :mod:`ttnet._sweep`): the data is read in slabs a fixed small number of
times. The first pass gives the Gram of a "thick" left unfolding (several leading modes)
and decides all of its bonds; the second projects the data onto the chosen frame and, in
the same pass, forms the right side's Gram (and, where a Gram cannot certify a rank or
report its error to a few percent, the exact residual); the third projects the right
side; the small middle is decomposed in memory. A Gram decides a bond only where its
rounding provably cannot change the decision; otherwise the measured residual checks it,
and if that fails a float64 Gram or a TSQR ``R`` factor (backward stable) decides again.
Data of low rank at the tolerance skips the first pass: a few slabs propose the frame and
the projection pass's exact residual accepts or rejects it (:mod:`ttnet._sample`).

Inputs: numpy arrays, torch tensors (any device), ``numpy.memmap`` files (read block by
block through the page cache, never loaded) and ``dask.array`` arrays (lazy, zarr, HDF5,
netCDF...: blocks are computed where dask runs them — on the workers of an active
``dask.distributed`` client). Memory beyond the result is bounded by ``memory_limit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from ttnet._backend import as_float_array, check_nonempty, get_namespace
from ttnet._decompose import decompose
from ttnet._sources import LocalSource, itemsize, want_progress
from ttnet.plans import check_shape
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

__all__ = ["tt_matrix_svd", "tt_svd"]

Array = Any

# Working memory a decomposition of a memmap or dask array may use beyond its result.
DEFAULT_MEMORY_LIMIT = 512 << 20


def _check_limit(memory_limit: int | None) -> int | None:
    if memory_limit is None:
        return None
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, np.integer)):
        raise TypeError(
            f"memory_limit: expected an int (bytes) or None, got {type(memory_limit).__name__}"
        )
    if memory_limit < 1:
        raise ValueError(f"memory_limit: expected a number of bytes >= 1, got {memory_limit}")
    return int(memory_limit)


def _check_progress(progress: bool | None) -> bool | None:
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress: expected True, False or None, got {progress!r}")
    return progress


def _check_shape(shape: Sequence[int], name: str) -> None:
    if len(shape) == 0:
        raise ValueError(f"{name}: expected at least one axis, got a 0-d array")
    if any(int(n) == 0 for n in shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(shape)}")


def _source(
    tensor: Array, name: str, memory_limit: int | None, progress: bool | None
) -> tuple[Any, tuple[int, ...], int]:
    """A source for ``tensor``, its shape, and the bytes a kept projection may take."""
    memory_limit = _check_limit(memory_limit)
    progress = _check_progress(progress)
    if array_api_compat.is_dask_array(tensor):
        from ttnet._dask import dask_source

        src = dask_source(tensor, name, memory_limit or DEFAULT_MEMORY_LIMIT, progress)
        return src, tuple(int(n) for n in tensor.shape), memory_limit or DEFAULT_MEMORY_LIMIT
    if isinstance(tensor, np.memmap):
        if tensor.dtype.kind not in "biufc":
            raise TypeError(f"{name}: expected a numeric array, got dtype {tensor.dtype}")
        _check_shape(tensor.shape, name)
        if not tensor.flags.c_contiguous:
            raise ValueError(
                f"{name}: expected a C-contiguous memmap (got strides {tensor.strides}); "
                "wrap it as dask.array.from_array(memmap) instead"
            )
        show = want_progress(progress, int(tensor.nbytes))
        src = LocalSource(tensor, progress=show, name=name)
        return src, tuple(int(n) for n in tensor.shape), memory_limit or DEFAULT_MEMORY_LIMIT
    a = as_float_array(tensor, name)
    get_namespace(a, names=[name])
    if a.ndim == 0:
        raise ValueError(f"{name}: expected at least one axis, got a 0-d array")
    check_nonempty(a, name)
    nbytes = math.prod(int(n) for n in a.shape) * itemsize(a)
    src = LocalSource(a, progress=want_progress(progress, nbytes), name=name)
    keep = memory_limit or max(DEFAULT_MEMORY_LIMIT, nbytes // 2)
    return src, tuple(int(n) for n in a.shape), keep


def tt_svd(
    tensor: Array,
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_params: int | None = None,
    *,
    memory_limit: int | None = None,
    progress: bool | None = None,
) -> TensorTrain:
    """Decompose a dense tensor into a :class:`~ttnet.TensorTrain` (TT-SVD).

    Args:
        tensor: dense array, at least one axis: numpy, torch (any device; float16 and
            bfloat16 are computed in float32), a ``numpy.memmap`` or a ``dask.array``
            (known chunk sizes). Integer and boolean arrays are converted to float (see
            :mod:`ttnet._backend`).
        eps: relative Frobenius error allowed for the whole result (``>= 0``); each bond
            may discard ``eps / sqrt(d - 1) * ||tensor||``.
        max_rank: rank cap, an int or one int per bond (``d - 1``); wins over ``eps``.
        max_params: parameter budget; wins over ``eps`` and ``max_rank``.
            With none of the three the decomposition is exact (full ranks, up to
            round-off).
        memory_limit: bytes of working memory beyond the result (default: 512 MiB for
            memmap and dask inputs; half the input's size, at least 512 MiB, for arrays
            in memory). A projection that does not fit is recomputed when read.
        progress: show a tqdm progress bar on stderr (default: for inputs over 1 GiB
            when stderr is a terminal).

    Returns:
        The TT, same library, dtype and device as ``tensor`` (numpy for memmap and dask
        inputs); ``.error`` holds the relative error reached,
        ``||tensor - tt.full()|| / ||tensor||``.

    Raises:
        ValueError: ``eps < 0``, ``max_rank < 1``, ``max_params`` below the all-ranks-1
            size, an empty or non-finite ``tensor`` (the message names the block where
            a NaN or infinity was found), a dask array with unknown chunk sizes.
            TypeError: non-numeric input.

    Example:
        >>> import numpy as np
        >>> x = np.linspace(0, 1, 4 ** 6).reshape((4,) * 6)
        >>> tt = tt_svd(np.sin(x), eps=1e-10)
        >>> tt.ranks, tt.error < 1e-10
        ((1, 2, 2, 2, 2, 2, 1), True)
    """
    src, shape, keep = _source(tensor, "tensor", memory_limit, progress)
    cores, error = decompose(src, shape, eps, max_rank, max_params, keep)
    return TensorTrain._trusted(cores, error)


def tt_matrix_svd(
    matrix: Array,
    row_shape: Sequence[int],
    col_shape: Sequence[int],
    eps: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    max_params: int | None = None,
    *,
    memory_limit: int | None = None,
    progress: bool | None = None,
) -> TTMatrix:
    """Decompose a dense matrix ``(M, N)`` into a :class:`~ttnet.TTMatrix`.

    The matrix is viewed as a tensor ``(m_1, ..., m_d, n_1, ..., n_d)`` (row-major
    multi-indices), its modes interleaved to ``(m_1 n_1, ..., m_d n_d)``, decomposed with
    :func:`tt_svd`, and each core reshaped to ``(r_{k-1}, m_k, n_k, r_k)``. An array in
    memory is interleaved by one copy; a memmap or dask array is interleaved lazily by
    dask (needs the ``dask`` extra), block by block.

    Args:
        matrix: dense 2-D array ``(M, N)`` (the kinds :func:`tt_svd` accepts).
        row_shape: ``(m_1, ..., m_d)`` with product ``M``.
        col_shape: ``(n_1, ..., n_d)`` with product ``N``, same length as ``row_shape``.
        eps, max_rank, max_params, memory_limit, progress: as in :func:`tt_svd` (mode
            sizes ``m_k * n_k``).

    Example:
        >>> import numpy as np
        >>> w = np.kron(np.eye(4), np.ones((2, 3)))
        >>> ttm = tt_matrix_svd(w, (4, 2), (4, 3), eps=1e-12)
        >>> ttm.ranks, ttm.shape, bool(np.allclose(ttm.to_dense(), w))
        ((1, 1, 1), (8, 12), True)
    """
    lazy = isinstance(matrix, np.memmap) or array_api_compat.is_dask_array(matrix)
    a = matrix if lazy else as_float_array(matrix, "matrix")
    if len(a.shape) != 2:
        raise ValueError(f"matrix: expected a 2-D array (M, N), got shape {tuple(a.shape)}")
    rows = check_shape(row_shape, "row_shape")
    cols = check_shape(col_shape, "col_shape")
    if len(rows) != len(cols):
        raise ValueError(
            f"col_shape: expected {len(rows)} modes like row_shape {rows}, got {cols}"
        )
    m, n = int(a.shape[0]), int(a.shape[1])
    if math.prod(rows) != m:
        raise ValueError(
            f"row_shape: product must be M = {m}, got {rows} (product {math.prod(rows)})"
        )
    if math.prod(cols) != n:
        raise ValueError(
            f"col_shape: product must be N = {n}, got {cols} (product {math.prod(cols)})"
        )
    if isinstance(a, np.memmap):
        a = _dask_view(a)
    xp = array_api_compat.array_namespace(a)
    d = len(rows)
    order = [axis for k in range(d) for axis in (k, d + k)]
    t = xp.permute_dims(xp.reshape(a, rows + cols), tuple(order))
    t = xp.reshape(t, tuple(mk * nk for mk, nk in zip(rows, cols)))
    src, shape, keep = _source(t, "matrix", memory_limit, progress)
    cores, error = decompose(src, shape, eps, max_rank, max_params, keep)
    cores = [
        src.xp.reshape(c, (int(c.shape[0]), mk, nk, int(c.shape[2])))
        for c, mk, nk in zip(cores, rows, cols)
    ]
    return TTMatrix._trusted(cores, error)


def _dask_view(memmap: np.memmap) -> Array:
    """A memmap as a lazy dask array (blocks read from the file when computed)."""
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(
            "matrix: interleaving a memmap's modes block by block needs dask: "
            "pip install 'ttnet[dask]'"
        ) from None
    return da.from_array(memmap, chunks="auto", asarray=False)
