"""
Out-of-core TT-SVD of a lazy dask array
=======================================

:func:`ttnet.tt_svd` takes a ``dask.array`` and reads it block by block, in a fixed small
number of passes, without ever holding it in memory. Here the array is *lazy*: each block is
computed from a function when a pass needs it (it could as well come from zarr, HDF5 or
netCDF). The result is checked two ways: the error ttnet reports, which is certified
(``||A - TT|| <= eps ||A||``), and the error measured on random entries of the function.
Then the same call runs on a ``dask.distributed`` cluster with two workers.

Needs the ``dask`` extra (``pip install 'ttnet[dask]'``).
"""

# %%
# A 128 MiB array that is never formed
# ------------------------------------
# ``f(x) = 1 / (1 + |x|^2)`` on a grid of 4 points per axis of ``[-1, 1]^12``: 16.8 million
# float64 entries. :func:`dask.array.map_blocks` builds the array from a function of each
# block's position; nothing is computed until a pass of the decomposition asks for a block.

import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, get_task_stream
from matplotlib import pyplot as plt

import ttnet

D, N = 12, 4
GRID = np.linspace(-1.0, 1.0, N)


def f(indices: np.ndarray) -> np.ndarray:
    """The function at grid points given as an int array ``(batch, D)`` of indices."""
    return 1.0 / (1.0 + np.sum(GRID[indices] ** 2, axis=1))


def block(block_info=None) -> np.ndarray:
    """One block of the array: ``f`` on the grid points of its location, by broadcasting."""
    squares = 0.0
    for axis, (start, stop) in enumerate(block_info[None]["array-location"]):
        shape = [1] * D
        shape[axis] = stop - start
        squares = squares + (GRID[start:stop] ** 2).reshape(shape)
    return 1.0 / (1.0 + squares)


# 256 blocks of 512 KiB: the middle four axes are split, the outer eight kept whole.
chunks = tuple((N,) if axis < 4 or axis >= 8 else (1,) * N for axis in range(D))
lazy = da.map_blocks(block, chunks=chunks, dtype=np.float64, meta=np.empty((0,) * D), name="f")
print(f"shape {lazy.shape}, {lazy.nbytes / 2**20:.0f} MiB in {lazy.npartitions} blocks")

# %%
# Decompose with a certified error
# --------------------------------
# ``eps`` bounds the relative Frobenius error of the whole result; ``memory_limit`` bounds the
# working memory beyond the result (16 MiB here, an eighth of the array). ``.error`` is the
# error reached. The check draws 2,000 random multi-indices, evaluates ``f`` there directly
# and compares with the TT's entries (:meth:`ttnet.TensorTrain.gather`).

rng = np.random.default_rng(0)
sample = rng.integers(0, N, size=(2000, D))
exact = f(sample)


def sampled_error(tt: ttnet.TensorTrain) -> float:
    """Relative error of ``tt`` on the random entries ``sample``."""
    return float(np.linalg.norm(tt.gather(sample) - exact) / np.linalg.norm(exact))


EPS = (1e-2, 1e-4, 1e-6, 1e-8)
reported, measured = [], []
for eps in EPS:
    start = time.perf_counter()
    tt = ttnet.tt_svd(lazy, eps=eps, memory_limit=16 << 20)
    seconds = time.perf_counter() - start
    reported.append(tt.error)
    measured.append(sampled_error(tt))
    print(f"eps {eps:.0e}: ranks {tt.ranks}, {tt.num_params:,} parameters, "
          f"error reported {tt.error:.2e}, sampled {measured[-1]:.2e}, {seconds:.1f} s")

# %%
# The reported error is the error of the whole tensor, computed from what the sweep
# discarded rather than estimated; the random entries agree with it to within a few percent.
# Both stay below ``eps`` (dashed): the guarantee is for the worst case, and this smooth
# function needs TT ranks of only 2 to 6 for errors from ``1e-3`` down to ``1e-10``.

fig, ax = plt.subplots()
ax.loglog(EPS, EPS, "k--", label="eps (the guarantee)")
ax.loglog(EPS, reported, "o-", label="error reported by tt_svd")
ax.loglog(EPS, measured, "s:", label="error on 2,000 random entries")
ax.invert_xaxis()
ax.set_xlabel("eps")
ax.set_ylabel("relative error")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()

# %%
# The same call on a cluster
# --------------------------
# With a ``dask.distributed`` client active, the block work runs on its workers: the tasks
# that compute the blocks (``f``) and the ones that project them (``ttnet-...``). A real
# cluster is ``Client("tcp://scheduler:8786")``; here two in-process workers with one thread
# each. The task stream shows how the work was spread and how often each block was read.

with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as cluster, Client(cluster), get_task_stream() as ts:
    start = time.perf_counter()
    on_cluster = ttnet.tt_svd(lazy, eps=1e-6, memory_limit=16 << 20)
    seconds = time.perf_counter() - start

tasks = [(task["worker"], str(task["key"])) for task in ts.data]  # complete once closed
workers = sorted({worker for worker, _ in tasks})
block_reads = sum(key.startswith("('f',") for _, key in tasks)
print(f"ranks {on_cluster.ranks}, error reported {on_cluster.error:.2e}, "
      f"sampled {sampled_error(on_cluster):.2e}, {seconds:.1f} s")
print(f"each block computed {block_reads / lazy.npartitions:.2f} times on average")
for number, worker in enumerate(workers, 1):
    print(f"worker {number}: {sum(w == worker and 'ttnet' in key for w, key in tasks)} ttnet tasks")

# %%
# Both workers ran the projections, and the array was read about once: this tensor has low
# rank at the tolerance, so a few blocks propose the first frame and a single pass projects
# the data and checks the frame by its exact residual. Data without low rank at the
# tolerance is read a fixed small number of times (:doc:`/tutorial_decomposition`
# describes the passes); the benchmarks (:doc:`/performance`) time a
# 2 GiB memmap and the same data as a lazy dask array on a two-worker cluster.
