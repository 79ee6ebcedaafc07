"""``dask.array`` inputs: the blocked TT-SVD's kernels run where dask runs its tasks.

For a pass over the ``(rows, size / rows)`` unfolding whose right side unfolds the last
modes into ``group`` columns, the array is rechunked (lazily) so that every block holds
the leading modes (product ``rows``) and the trailing ones (product ``group``) whole and a
range of the modes between; one task per block runs the kernel slab by slab
(:class:`ttnet._sources.LocalSource` on the block), and the small results are combined
in batches on the workers, then on the client. With an active ``dask.distributed``
client all of this runs on its workers (tasks named ``ttnet-...`` in the task stream);
otherwise on dask's local scheduler. A lazy array (``map_blocks``, zarr, HDF5) is never
materialised: each block is produced by the task that reads it, once per pass.

This module imports dask; ``import ttnet`` does not import it.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from ttnet._kernels import add_parts
from ttnet._sources import SAMPLE_SLABS, SLAB_BYTES, LocalSource, progress_bar, want_progress

__all__ = ["DaskSource", "dask_source"]

Array = Any
# Blocks per reduction task on the workers.
_BATCH = 16


def dask_source(array: Any, name: str, keep_bytes: int, progress: bool | None) -> DaskSource:
    """A :class:`DaskSource` for ``array`` after checking it (known chunks, numeric)."""
    for axis, sizes in enumerate(array.chunks):
        if any(math.isnan(s) for s in sizes):
            raise ValueError(
                f"{name}: expected a dask array with known chunk sizes, got unknown (NaN) "
                f"chunks along axis {axis}; call {name}.compute_chunk_sizes() first"
            )
    if np.dtype(array.dtype).kind not in "biufc":
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name}: expected at least one axis, got a 0-d array")
    if any(int(n) == 0 for n in array.shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(array.shape)}")
    show = want_progress(progress, int(array.nbytes))
    return DaskSource(array, name=name, progress=show, dense_limit=keep_bytes)


class DaskSource:
    """A dask array read block by block by dask's scheduler (see the module docstring)."""

    def __init__(self, array: Any, *, name: str = "tensor", progress: bool = False,
                 dense_limit: int = 512 << 20) -> None:
        import array_api_compat.numpy as xp

        self.array, self.name, self.progress = array, name, progress
        self.shape = tuple(int(n) for n in array.shape)
        self.size = math.prod(self.shape)
        self.dtype = np.dtype(array.dtype)
        self.itemsize = self.dtype.itemsize
        self.xp, self.device = xp, "cpu"
        self.dense_limit = dense_limit
        self._rechunked: dict[tuple[int, int], Any] = {}

    def dense(self) -> np.ndarray:
        """The whole tensor (flat) in memory, when it fits the memory setting."""
        if self.size * self.itemsize > self.dense_limit:
            raise ValueError(
                f"{self.name}: a tensor of shape {self.shape} has no unfolding narrow enough "
                f"for the blocked TT-SVD and does not fit memory_limit={self.dense_limit}"
            )
        return np.asarray(self.array.compute()).reshape(-1)

    def _axes(self, rows: int, group: int) -> tuple[int, int]:
        """Axes ``[0, s)`` multiply to ``rows``, axes ``[t, d)`` to ``group``."""
        prefix = np.cumprod((1, *self.shape))
        suffix = np.cumprod((1, *self.shape[::-1]))
        s = int(np.searchsorted(prefix, rows))
        t = len(self.shape) - int(np.searchsorted(suffix, group))
        if prefix[s] != rows or suffix[len(self.shape) - t] != group or s > t:
            raise ValueError(f"internal: unfolding ({rows}, group {group}) of {self.shape}")
        return s, t

    def _blocks(self, s: int, t: int) -> Any:
        """The array rechunked with axes ``< s`` and ``>= t`` whole, the others split into
        blocks of about 1/64 of the array (64 KiB to 128 MiB)."""
        key = (s, t)
        if key not in self._rechunked:
            spec = {i: (-1 if i < s or i >= t else "auto") for i in range(len(self.shape))}
            limit = min(max(self.size * self.itemsize // 64, 64 << 10), 128 << 20)
            self._rechunked[key] = self.array.rechunk(spec, block_size_limit=limit)
        return self._rechunked[key]

    def sample(self, rows: int, count: int = SAMPLE_SLABS) -> np.ndarray:
        """A slab from each of ``count`` blocks spread over the array (computed now)."""
        import dask

        blocks = self._blocks(*self._axes(rows, 1))
        flat = blocks.to_delayed().ravel()
        picks = sorted({round(i * (len(flat) - 1) / max(count - 1, 1)) for i in range(count)})
        width = max(SLAB_BYTES // (self.itemsize * rows), 1)
        pieces = dask.compute(*(flat[i] for i in picks))
        return np.concatenate(
            [np.asarray(p).reshape(rows, -1)[:, :width] for p in pieces], axis=1)

    def slab_stats(self, rows: int, group: int) -> tuple[int, int]:
        """Width of a slab and how many slabs a pass reads (for the rounding bounds)."""
        blocks = self._blocks(*self._axes(rows, group))
        per_block = max(math.prod(max(c) for c in blocks.chunks) // rows, 1)
        width = max(SLAB_BYTES // (self.itemsize * rows), 1)
        width = min(max(group, width // group * group), per_block)
        return width, math.ceil(self.size / rows / width) + blocks.npartitions

    def run(
        self,
        rows: int,
        group: int,
        kernel: Callable[[Array, str], tuple[Array | None, Any]],
        combine: Callable[[Any, Any], Any] = add_parts,
        out: np.ndarray | None = None,
        desc: str = "tt_svd",
    ) -> Any:
        """Apply ``kernel`` to every slab of every block; combine; fill ``out``."""
        import dask

        s, t = self._axes(rows, group)
        blocks = self._blocks(s, t)
        cols = self.size // rows
        ratio = None if out is None else (int(out.shape[0]), int(out.shape[1]), cols, out.dtype)
        token = uuid.uuid4().hex[:8]
        label = desc.replace("tt_svd: ", "").replace(" ", "-")
        delayed_blocks = blocks.to_delayed()
        tasks, places = [], []
        for idx in np.ndindex(delayed_blocks.shape):
            starts = [int(sum(blocks.chunks[a][: idx[a]])) for a in range(s, t)]
            sizes = [int(blocks.chunks[a][idx[a]]) for a in range(s, t)]
            where = f"dask block {idx} (axes {s}..{t - 1} from {tuple(starts)})"
            tasks.append(dask.delayed(_run_block, pure=True)(
                delayed_blocks[idx], rows, group, kernel, combine, ratio, where,
                dask_key_name=f"ttnet-{label}-{token}-{len(tasks)}"))
            places.append(tuple(slice(a, a + n) for a, n in zip(starts, sizes)))
        batches = [
            dask.delayed(_reduce_batch, pure=True)(
                combine, tasks[i : i + _BATCH], dask_key_name=f"ttnet-{label}-sum-{token}-{i}")
            for i in range(0, len(tasks), _BATCH)
        ]
        total = None
        middle = self.shape[s:t]
        view = None if out is None else out.reshape(ratio[0], *middle, -1)
        for i, (blocks_out, parts) in enumerate(_compute(batches, desc, self.progress)):
            total = combine(total, parts)
            for k, block in enumerate(blocks_out):
                if view is not None:
                    view[(slice(None), *places[i * _BATCH + k])] = block.reshape(
                        ratio[0], *(p.stop - p.start for p in places[i * _BATCH + k]), -1)
        return total


def _run_block(block: np.ndarray, rows: int, group: int, kernel: Any, combine: Any,
               ratio: tuple | None, where: str) -> tuple[Any, Any]:
    """One block: the kernel over its slabs (on a worker)."""
    x = np.ascontiguousarray(block).reshape(-1)
    out = None
    if ratio is not None:
        out_rows, out_cols, cols, dtype = ratio
        out = np.empty((out_rows, x.shape[0] // rows * out_cols // cols), dtype=dtype)
    parts = LocalSource(x).run(rows, group, _Where(kernel, where), combine, out)
    return out, parts


class _Where:
    """A kernel whose error messages name the dask block (not the slab inside it)."""

    def __init__(self, kernel: Any, where: str) -> None:
        self.kernel, self.where = kernel, where

    def __call__(self, slab: Array, where: str, out: Array = None) -> Any:
        return self.kernel(slab, f"{self.where}, {where}", out)


def _reduce_batch(combine: Any, results: list[tuple[Any, Any]]) -> tuple[list[Any], Any]:
    """Combine a batch of blocks' parts on a worker; pass their output blocks on."""
    total = None
    for _, parts in results:
        total = combine(total, parts)
    return [block for block, _ in results if block is not None], total


def _client() -> Any:
    """The active dask.distributed client, if any (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        return None


def _compute(tasks: list[Any], desc: str, progress: bool) -> list[Any]:
    """Compute ``tasks`` (on the distributed client when one is active), with progress."""
    import dask

    client = _client()
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        for _ in progress_bar(as_completed(futures), len(futures), desc, progress):
            pass
        return client.gather(futures)
    if not progress:
        return list(dask.compute(*tasks))
    results = []
    step = 4
    for i in progress_bar(range(0, len(tasks), step), math.ceil(len(tasks) / step), desc, True):
        results.extend(dask.compute(*tasks[i : i + step]))
    return results
