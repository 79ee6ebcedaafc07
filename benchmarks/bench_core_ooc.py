"""Core benchmark, part 3: TT-SVD of a 2 GiB tensor that is not loaded into memory.

A float32 tensor of shape (2,)^29 and exact TT rank 6 is written to a ``.npy`` file block
by block (nothing of its size is ever allocated), then decomposed (``eps=1e-4``):

- as a ``numpy.memmap`` (read-only): time as a multiple of one read of the file with a warm
  page cache (``m.sum()``, timed right before), extra anonymous memory (RssAnon above the
  level before: the file's pages in the page cache are not counted), ranks, the reported
  error and the error measured on 200,000 random entries;
- as a lazy ``dask.array`` (``map_blocks`` from the cores, never materialised) on a
  ``dask.distributed.LocalCluster`` of 2 worker processes: time as a multiple of one read of
  that array (``x.sum().compute()``: every block made once), ranks, errors, and how many
  ttnet block tasks each worker ran (from the cluster's task stream).

The file is deleted afterwards. Run through ``benchmarks/bench_core.py --out-of-core``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import ttnet

SHAPE = (2,) * 29
RANK = 6
SPLIT = 8  # the file is written (and the dask array chunked) one index of these modes at a time


def _cores(seed: int = 7) -> tuple[list[np.ndarray], tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    ranks = ttnet.ranks.useful_ranks(SHAPE, (1, *[RANK] * (len(SHAPE) - 1), 1))
    cores = [rng.standard_normal((ranks[k], 2, ranks[k + 1])) for k in range(len(SHAPE))]
    cores[0] /= float(ttnet.TensorTrain(cores).norm())
    return cores, ranks


def _right_matrix(cores: list[np.ndarray]) -> np.ndarray:
    """The train of ``cores`` as a (first rank, entries) matrix."""
    out = cores[-1].reshape(cores[-1].shape[0], -1)
    for c in reversed(cores[:-1]):
        out = (c.reshape(-1, c.shape[2]) @ out).reshape(c.shape[0], -1)
    return out


def write_file(path: str, cores: list[np.ndarray]) -> None:
    m = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=SHAPE)
    flat = m.reshape(2**SPLIT, -1)
    left, right = _left_matrix(cores[:SPLIT]), _right_matrix(cores[SPLIT:])
    for i in range(2**SPLIT):
        flat[i] = left[i] @ right
    m.flush()
    del m, flat


def _left_matrix(cores: list[np.ndarray]) -> np.ndarray:
    """The train of ``cores`` as an (entries, last rank) matrix."""
    out = cores[0].reshape(-1, cores[0].shape[2])
    for c in cores[1:]:
        out = (out @ c.reshape(c.shape[0], -1)).reshape(-1, c.shape[2])
    return out


def lazy_array(cores: list[np.ndarray]) -> Any:
    """The tensor as a dask array whose blocks (one per index of modes 8..15) are computed
    from the cores by the task that needs them."""
    import dask.array as da

    inner = range(SPLIT, 2 * SPLIT)
    chunks = tuple((1, 1) if k in inner else (2,) for k in range(len(SHAPE)))
    left, right = _left_matrix(cores[:SPLIT]), _right_matrix(cores[2 * SPLIT :])
    shape = tuple(1 if k in inner else 2 for k in range(len(SHAPE)))

    def block(block_info: Any = None) -> np.ndarray:
        index = tuple(a for a, _ in block_info[None]["array-location"][SPLIT : 2 * SPLIT])
        middle = np.eye(left.shape[1])
        for c, i in zip(cores[SPLIT : 2 * SPLIT], index):
            middle = middle @ c[:, i, :]
        return (left @ middle @ right).astype(np.float32).reshape(shape)

    return da.map_blocks(block, dtype=np.float32, chunks=chunks, meta=np.empty((0,) * len(SHAPE)))


def sampled_error(tt: ttnet.TensorTrain, cores: list[np.ndarray], samples: int = 200_000) -> float:
    """Relative error on random entries (the full tensor is 2 GiB)."""
    idx = np.random.default_rng(1).integers(0, 2, (samples, len(SHAPE)))

    def values(cs: list[Any]) -> np.ndarray:
        v = np.ones((samples, 1, 1))
        for k, c in enumerate(cs):
            v = v @ np.take(np.asarray(c, dtype=np.float64), idx[:, k], axis=1).transpose(1, 0, 2)
        return v[:, 0, 0]

    ref = values(cores)
    return float(np.linalg.norm(values(list(tt.cores)) - ref) / np.linalg.norm(ref))


def bench_out_of_core(args: Any, add: Callable[..., None], peak_extra: Callable) -> None:
    workdir = tempfile.mkdtemp(prefix="ttnet-bench-", dir=args.workdir)
    path = os.path.join(workdir, "tt2gib.npy")
    cores, ranks = _cores()
    try:
        t0 = time.perf_counter()
        write_file(path, cores)
        print(f"(wrote {path} in {time.perf_counter() - t0:.0f} s)", flush=True)
        m = np.load(path, mmap_mode="r")
        m.sum()  # warm the page cache
        rows = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            m.sum()
            read = time.perf_counter() - t0
            tt, sec, extra = peak_extra(lambda: ttnet.tt_svd(m, eps=1e-4))
            rows.append((sec, sec / read, extra, read))
        sec, ratio, extra, read = (statistics.median(v) for v in zip(*rows))
        note = f"{'exact' if tt.ranks == ranks else 'NOT exact'} (max {max(tt.ranks)})"
        add("2 GiB f32 memmap (2,)^29 exact rank 6, eps 1e-4", "ttnet", sec, ratio,
            f"{extra / 2**20:.0f} MiB", sampled_error(tt, cores),
            f"{note}; reported error {tt.error:.2e}; one read {read:.2f} s")
        _bench_dask(add, cores, ranks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _bench_dask(add: Callable[..., None], cores: list[np.ndarray], ranks: tuple) -> None:
    from distributed import Client, LocalCluster, get_task_stream

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        x = lazy_array(cores)
        t0 = time.perf_counter()
        x.sum().compute()
        read = time.perf_counter() - t0  # one read of the lazy array: each block made once
        with get_task_stream(client) as stream:
            t0 = time.perf_counter()
            tt = ttnet.tt_svd(x, eps=1e-4)
            sec = time.perf_counter() - t0
        ours = [t for t in stream.data if str(t["key"]).strip("()'").startswith("ttnet-")]
        per_worker = sorted(sum(t["worker"] == w for t in ours) for w in {t["worker"] for t in ours})
        note = (f"{'exact' if tt.ranks == ranks else 'NOT exact'}; reported error "
                f"{tt.error:.2e}; ttnet tasks per worker {per_worker}; one read "
                f"(x.sum().compute()) {read:.2f} s")
        add("same, lazy dask.array on LocalCluster (2 workers x 1 thread)", "ttnet", sec,
            sec / read, "on workers", sampled_error(tt, cores), note)
