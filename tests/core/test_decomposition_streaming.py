"""tt_svd and tt_matrix_svd on data read in blocks: numpy.memmap files and dask arrays
(dask's local scheduler and a dask.distributed LocalCluster of 2 worker processes).

Small sizes run in the normal suite; the 2 GiB runs of the issue are marked slow:
``pytest -m slow tests/core/test_decomposition_streaming.py``.
"""

import hashlib
import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ttnet
from ttnet import tt_full

da = pytest.importorskip("dask.array")


def tt_cores(shape, rank, seed):
    rng = np.random.default_rng(seed)
    ranks = ttnet.ranks.useful_ranks(shape, (1, *[rank] * (len(shape) - 1), 1))
    cores = [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]
    cores[0] /= float(ttnet.TensorTrain(cores).norm())  # unit norm
    return cores, ranks


def lazy_tt(cores, dtype, split):
    """The full tensor of ``cores`` as a lazy dask array: one block per index of the modes
    in ``split`` (a range), each computed from slices of the cores (never the whole)."""
    shape = tuple(c.shape[1] for c in cores)
    chunks = tuple((1,) * n if k in split else (n,) for k, n in enumerate(shape))

    def block(block_info=None):
        where = block_info[None]["array-location"]
        pieces = [c[:, a:b, :] for c, (a, b) in zip(cores, where)]
        return tt_full(pieces).astype(dtype)

    return da.map_blocks(block, dtype=dtype, chunks=chunks, meta=np.empty((0,) * len(shape)))


def write_memmap(path, x):
    m = np.lib.format.open_memmap(path, mode="w+", dtype=x.dtype, shape=x.shape)
    da.store(x, m, lock=False)
    m.flush()
    del m
    return np.load(path, mmap_mode="r")


def relative_error(tt, a):
    a = np.asarray(a, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(tt.full(), dtype=np.float64) - a) / np.linalg.norm(a))


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def small():
    cores, ranks = tt_cores((2,) * 16, 5, 0)
    return cores, ranks, tt_full(cores)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_read_only_memmap_matches_in_memory_and_is_not_written(tmp_path, small, dtype):
    _, ranks, a = small
    path = tmp_path / "a.npy"
    m = write_memmap(path, da.from_array(a.astype(dtype), chunks=2**12))
    before = digest(path)
    eps = 1e-5 if dtype == "float32" else 1e-12
    tt = ttnet.tt_svd(m, eps=eps)
    assert tt.ranks == ranks and tt.dtype == np.dtype(dtype)
    assert isinstance(tt.cores[0], np.ndarray) and not isinstance(tt.cores[0], np.memmap)
    measured = relative_error(tt, a)
    assert measured <= eps and abs(tt.error - measured) <= 0.05 * measured + 3e-6
    assert ttnet.tt_svd(a.astype(dtype), eps=eps).ranks == ranks
    assert digest(path) == before


def test_memmap_projection_not_kept_when_memory_is_short(tmp_path, small):
    _, ranks, a = small
    m = write_memmap(tmp_path / "a.npy", da.from_array(a, chunks=2**12))
    tt = ttnet.tt_svd(m, eps=1e-12, memory_limit=1024)  # the projection is recomputed
    assert tt.ranks == ranks and relative_error(tt, a) <= 1e-12


def test_memmap_progress_bar(tmp_path, small, capsys):
    m = write_memmap(tmp_path / "a.npy", da.from_array(small[2], chunks=2**12))
    ttnet.tt_svd(m, eps=1e-8, progress=True)
    assert "tt_svd" in capsys.readouterr().err
    ttnet.tt_svd(m, eps=1e-8)  # default: no bar for small inputs
    assert capsys.readouterr().err == ""


def test_memmap_integer_and_tt_matrix(tmp_path):
    rng = np.random.default_rng(1)
    w = np.kron(rng.integers(-3, 4, (8, 4)), rng.integers(-3, 4, (8, 8))).astype(np.int16)
    path = tmp_path / "w.npy"
    np.save(path, w)
    m = np.load(path, mmap_mode="r")
    ttm = ttnet.tt_matrix_svd(m, (8, 8), (4, 8), eps=1e-12)
    assert ttm.ranks == (1, 1, 1) and ttm.dtype == np.float64
    assert np.allclose(ttm.to_dense(), w)
    tt = ttnet.tt_svd(m.reshape(8, 8, 4, 8), eps=1e-12)
    assert np.allclose(tt.full(), w.reshape(8, 8, 4, 8))


def test_memmap_nan_names_the_block(tmp_path, small):
    a = small[2].copy()
    a.reshape(-1)[40000] = np.nan
    np.save(tmp_path / "a.npy", a)
    m = np.load(tmp_path / "a.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=r"tensor: expected finite values, got NaN or infinity "
                                         r"in the block of columns \d+:\d+ of its"):
        ttnet.tt_svd(m, eps=1e-3)


def test_bad_options():
    with pytest.raises(TypeError, match="memory_limit: expected an int"):
        ttnet.tt_svd(np.ones((2, 2)), memory_limit="1GB")
    with pytest.raises(ValueError, match="memory_limit: expected a number of bytes >= 1"):
        ttnet.tt_svd(np.ones((2, 2)), memory_limit=0)
    with pytest.raises(TypeError, match="progress: expected True, False or None"):
        ttnet.tt_svd(np.ones((2, 2)), progress="yes")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lazy_dask_array(small, dtype):
    cores, ranks, a = small
    calls = []
    x = lazy_tt(cores, dtype, range(6, 10)).map_blocks(lambda b: calls.append(b.size) or b)
    eps = 1e-5 if dtype == "float32" else 1e-12
    tt = ttnet.tt_svd(x, eps=eps)
    assert tt.ranks == ranks and tt.dtype == np.dtype(dtype)
    assert relative_error(tt, a) <= eps
    assert max(calls) <= a.size // 16  # blocks only, never the whole tensor


def test_dask_tt_matrix_matches_in_memory():
    rng = np.random.default_rng(2)
    cores = [rng.standard_normal(s) for s in [(1, 4, 4, 3), (3, 4, 4, 3), (3, 4, 4, 1)]]
    w = ttnet.TTMatrix(cores).to_dense()
    ttm = ttnet.tt_matrix_svd(da.from_array(w, chunks=(16, 16)), (4, 4, 4), (4, 4, 4), eps=1e-12)
    assert ttm.ranks == ttnet.tt_matrix_svd(w, (4, 4, 4), (4, 4, 4), eps=1e-12).ranks
    assert np.allclose(ttm.to_dense(), w)


def test_dask_unknown_chunks_are_rejected(small):
    x = da.from_array(small[2].reshape(256, 256), chunks=64)
    unknown = x[x[:, 0] > -10]
    with pytest.raises(ValueError, match=r"tensor: expected a dask array with known chunk "
                                         r"sizes, got unknown \(NaN\) chunks along axis 0"):
        ttnet.tt_svd(unknown, eps=1e-3)


def test_dask_nan_names_the_block(small):
    a = small[2].copy()
    a[1, 0, 1] = np.inf
    with pytest.raises(ValueError, match=r"got NaN or infinity in dask block \("):
        ttnet.tt_svd(da.from_array(a, chunks=(1,) * 4 + (2,) * 12), eps=1e-3)


def test_import_ttnet_does_not_import_dask():
    code = "import sys, ttnet; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster_client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_local_cluster_runs_the_block_work_on_its_workers(cluster_client, small):
    cores, ranks, a = small
    x = lazy_tt(cores, "float64", range(6, 10))
    with distributed.get_task_stream(cluster_client) as stream:
        tt = ttnet.tt_svd(x, eps=1e-12)
    assert tt.ranks == ranks and relative_error(tt, a) <= 1e-12
    ours = [t for t in stream.data if str(t["key"]).strip("()'").startswith("ttnet-")]
    assert len(ours) >= 2 * 8  # two passes (low rank: the frame comes from a sample), 8 blocks
    assert len({t["worker"] for t in ours}) == 2


_CTRL_C = """
import sys, numpy as np, ttnet
m = np.load(sys.argv[1], mmap_mode="r")
print("ready", flush=True)
while True:
    ttnet.tt_svd(m, eps=1e-6, memory_limit=4096)
"""


def test_ctrl_c_leaves_no_temporary_files(tmp_path, small):
    path = tmp_path / "a.npy"
    np.save(path, small[2])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-c", _CTRL_C, str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "scratch"]


# --- the 2 GiB runs (slow) -----------------------------------------------------

BIG_SHAPE = (2,) * 29  # 2 GiB of float32


def _peak_anon(fn):
    """Run ``fn``; return its result and the peak of RssAnon above the level before, in
    bytes (/proc/self/status sampled every 2 ms; file-backed pages are not counted)."""

    def anon():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no RssAnon in /proc/self/status")

    base, peak, done = anon(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], anon())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return result, max(peak[0], anon()) - base


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    cores, ranks = tt_cores(BIG_SHAPE, 6, 7)
    path = tmp_path_factory.mktemp("big") / "tt2gib.npy"
    write_memmap(path, lazy_tt(cores, "float32", range(8, 16)))
    yield path, cores, ranks
    path.unlink()


def _sampled_error(tt, cores, samples=200_000, seed=0):
    """Relative error estimated on random entries (the full tensor is 2 GiB)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 2, (samples, len(cores)))

    def entries(cs):
        v = np.ones((samples, 1))
        for k, c in enumerate(cs):
            v = np.einsum("sa,asb->sb", v, np.asarray(c, dtype=np.float64)[:, idx[:, k], :])
        return v[:, 0]

    ref = entries(cores)
    return float(np.linalg.norm(entries(tt.cores) - ref) / np.linalg.norm(ref))


_MEASURE = """
import pickle, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import ttnet
from test_decomposition_streaming import _peak_anon
m = np.load(sys.argv[1], mmap_mode="r")
tt, extra = _peak_anon(lambda: ttnet.tt_svd(m, eps=1e-4))
sys.stdout.buffer.write(pickle.dumps(([np.asarray(c) for c in tt.cores], tt.error, extra)))
"""


@pytest.mark.slow
def test_2gib_memmap_within_512mib(big_file):
    # In a fresh process, with glibc returning freed blocks, so RssAnon is what is in use.
    path, cores, ranks = big_file
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 << 10)}
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), here], env=env,
                         capture_output=True, check=True)
    cores_out, error, extra = pickle.loads(out.stdout)
    tt = ttnet.TensorTrain(cores_out, error=error)
    assert tt.ranks == ranks
    assert extra <= 512 << 20, extra / 2**20
    assert tt.error <= 1e-4 and _sampled_error(tt, cores) <= 1e-4


@pytest.mark.slow
def test_2gib_lazy_dask_on_local_cluster(cluster_client, big_file):
    _, cores, ranks = big_file
    x = lazy_tt(cores, "float32", range(8, 16))
    with distributed.get_task_stream(cluster_client) as stream:
        tt = ttnet.tt_svd(x, eps=1e-4)
    assert tt.ranks == ranks
    assert tt.error <= 1e-4 and _sampled_error(tt, cores) <= 1e-4
    ours = [t for t in stream.data if str(t["key"]).strip("()'").startswith("ttnet-")]
    assert len({t["worker"] for t in ours}) == 2 and len(ours) >= 2 * 16


def test_sampled_error_agrees_with_dense(small):
    cores, _, a = small
    tt = ttnet.tt_svd(a, max_rank=3)
    assert math.isclose(_sampled_error(tt, cores, samples=50_000), relative_error(tt, a),
                        rel_tol=0.1)


def test_peak_anon_sees_an_allocation():
    # 64 MiB: above glibc's largest mmap threshold, so always fresh pages
    _, extra = _peak_anon(lambda: np.ones(64 << 20, dtype=np.uint8).sum())
    assert 56 << 20 <= extra <= 160 << 20
