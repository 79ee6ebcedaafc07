"""Where the blocked TT-SVD reads its data: a tensor run through kernels slab by slab.

A source holds one dense tensor (any mode layout: only its size and entry order matter)
and applies a kernel of :mod:`ttnet._kernels` to every slab of one of its unfoldings
``(rows, size / rows)``: column blocks of about :data:`SLAB_BYTES` (whole groups of
``group`` columns), combining the kernels' small results and writing their output blocks
side by side into an output array. Slabs are views, never copies of the data.

- :class:`LocalSource`: an array of this process — numpy, a ``numpy.memmap`` (read
  through the page cache, block after block), or torch on any device.
- :class:`MappedSource`: a tensor computed slab by slab from another source — projected
  by a left frame (data too large to keep) or scaled by a power of two (data whose squares
  would overflow or underflow).
- ``ttnet._dask.DaskSource``: a ``dask.array``; the kernels run on dask's workers.

Example:
    >>> import numpy as np
    >>> from ttnet._kernels import Gram
    >>> src = LocalSource(np.arange(24.0))
    >>> (g,) = src.run(4, 1, Gram(np.float64))
    >>> bool(np.allclose(g, np.arange(24.0).reshape(4, 6) @ np.arange(24.0).reshape(4, 6).T))
    True
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import array_api_compat

from ttnet._kernels import Then, add_parts, scratch_scope

__all__ = [
    "SAMPLE_SLABS",
    "SLAB_BYTES",
    "LocalSource",
    "MappedSource",
    "itemsize",
    "progress_bar",
    "want_progress",
]

Array = Any
Combine = Callable[[Any, Any], Any]

# Bytes of one slab: small enough to stay in a core's L2 cache while a kernel's several
# BLAS calls read it, large enough that the per-slab Python overhead is negligible.
SLAB_BYTES = 1 << 20
# Slabs read to propose a first frame (see ttnet._sample).
SAMPLE_SLABS = 8
# Inputs larger than this show a progress bar by default (when stderr is a terminal).
PROGRESS_BYTES = 1 << 30


def want_progress(progress: bool | None, nbytes: int) -> bool:
    """The progress setting: ``progress`` when given, else on for large inputs on a
    terminal.

    Example:
        >>> want_progress(None, 10), want_progress(True, 10)
        (False, True)
    """
    if progress is not None:
        return bool(progress)
    return nbytes > PROGRESS_BYTES and sys.stderr.isatty()


def progress_bar(items: Iterable[Any], total: int, desc: str, enabled: bool) -> Iterator[Any]:
    """``items``, with a tqdm progress bar on stderr when ``enabled``.

    Example:
        >>> list(progress_bar([1, 2], 2, "pass", False))
        [1, 2]
    """
    if not enabled:
        yield from items
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "progress=True needs tqdm: pip install 'ttnet[dask]' (or tqdm)"
        ) from None
    with tqdm(total=total, desc=desc, unit="block", leave=False) as bar:
        for item in items:
            yield item
            bar.update(1)


class LocalSource:
    """A dense tensor held by this process (numpy, numpy.memmap, torch), read in slabs.

    A C-contiguous array is never copied (a non-contiguous one is copied once, by the
    library's ``reshape``); an output array passed to :meth:`run` receives the blocks.
    """

    def __init__(self, array: Array, *, progress: bool = False, name: str = "tensor") -> None:
        xp = array_api_compat.array_namespace(array)
        self.xp = xp
        self.flat = xp.reshape(array, (-1,))
        self.size = int(self.flat.shape[0])
        self.dtype = array.dtype
        self.device = array_api_compat.device(array)
        self.itemsize = itemsize(array)
        self.progress = progress
        self.name = name

    def dense(self) -> Array:
        """The whole tensor (flat)."""
        return self.flat

    def slab_stats(self, rows: int, group: int) -> tuple[int, int]:
        """Width of a slab and how many slabs a pass reads (for the rounding bounds)."""
        spans = self.spans(rows, group)
        return spans[0][1] - spans[0][0], len(spans)

    def sample(self, rows: int, count: int = SAMPLE_SLABS) -> Array:
        """``count`` slabs spread evenly over the ``(rows, ...)`` unfolding, side by side."""
        unfolding = self.xp.reshape(self.flat, (rows, self.size // rows))
        spans = self.spans(rows, 1)
        picks = sorted({round(i * (len(spans) - 1) / max(count - 1, 1)) for i in range(count)})
        return self.xp.concat([unfolding[:, spans[i][0] : spans[i][1]] for i in picks], axis=1)

    def spans(self, rows: int, group: int) -> list[tuple[int, int]]:
        """Column ranges of the slabs of the ``(rows, size / rows)`` unfolding."""
        cols = self.size // rows
        width = max(SLAB_BYTES // (self.itemsize * rows), 1)
        width = max(group, width // group * group)
        return [(c, min(c + width, cols)) for c in range(0, cols, width)]

    def run(
        self,
        rows: int,
        group: int,
        kernel: Callable[[Array, str], tuple[Array | None, Any]],
        combine: Combine = add_parts,
        out: Array | None = None,
        desc: str = "tt_svd",
    ) -> Any:
        """Apply ``kernel`` to every slab; combine the parts; write blocks into ``out``."""
        cols = self.size // rows
        unfolding = self.xp.reshape(self.flat, (rows, cols))
        spans = self.spans(rows, group)
        total = None
        out_cols = 0 if out is None else int(out.shape[1])
        with scratch_scope():
            for c0, c1 in progress_bar(spans, len(spans), desc, self.progress):
                where = f"the block of columns {c0}:{c1} of its ({rows}, {cols}) unfolding"
                view = None if out is None else out[:, c0 * out_cols // cols : c1 * out_cols // cols]
                block, parts = kernel(unfolding[:, c0:c1], where, view)
                if view is not None and block is not view:
                    view[...] = block
                total = combine(total, parts)
        return total


class MappedSource:
    """Another source's tensor transformed slab by slab whenever it is read (nothing is
    kept). ``first`` is a kernel that returns the transformed slab: a
    :class:`ttnet._kernels.Project` applied to the base's ``(rows, ...)`` unfolding (the
    tensor ``F^H C``, whose rows are the frame's rank), or a :class:`ttnet._kernels.Scale`
    (``rows`` None: any unfolding, the same tensor times a power of two)."""

    def __init__(self, base: Any, first: Any, rows: int | None = None) -> None:
        self.base, self.first, self.base_rows = base, first, rows
        if rows is None:
            self.size, self.dtype, self.rows = base.size, base.dtype, 1
        else:
            self.rows = int(first.fh.shape[0])
            self.size, self.dtype = base.size // rows * self.rows, first.fh.dtype
        self.itemsize = base.itemsize
        self.xp, self.device, self.name = base.xp, base.device, base.name

    def dense(self) -> Array:
        """The whole tensor (flat), computed."""
        out = self.xp.empty((self.rows, self.size // self.rows), dtype=self.dtype,
                            device=self.device)
        self.base.run(self.base_rows or 1, 1, self.first, out=out, desc="tt_svd: map")
        return self.xp.reshape(out, (-1,))

    def slab_stats(self, rows: int, group: int) -> tuple[int, int]:
        """The underlying source's slabs (same columns)."""
        return self.base.slab_stats(self.base_rows or rows, group)

    def sample(self, rows: int, count: int = SAMPLE_SLABS) -> Array:
        """The underlying source's sample, transformed."""
        return self.first(self.base.sample(self.base_rows or rows, count), "sample")[0]

    def run(self, rows: int, group: int, kernel: Any, combine: Combine = add_parts,
            out: Array | None = None, desc: str = "tt_svd") -> Any:
        """Like :meth:`LocalSource.run` on the transformed tensor."""
        return self.base.run(self.base_rows or rows, group, Then(self.first, kernel), combine,
                             out, desc)


def itemsize(array: Array) -> int:
    """Bytes per entry of an array of any library.

    Example:
        >>> import numpy as np
        >>> itemsize(np.zeros(2, dtype=np.float32))
        4
    """
    size = getattr(array, "itemsize", None)  # numpy arrays, torch tensors
    if size is None:
        size = array.dtype.itemsize
    return int(size)
