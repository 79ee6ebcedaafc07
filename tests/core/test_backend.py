"""ttnet._backend: namespace detection, float policy, input checks, the linalg shim."""

import subprocess
import sys

import numpy as np
import pytest

from ttnet import _backend as B

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
TOL = {np.float32: 1e-4, np.float64: 1e-12, np.complex64: 1e-4, np.complex128: 1e-12}


def _matrix(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def test_namespace_numpy():
    assert B.get_namespace(np.ones(2), np.ones(3)).__name__ == "array_api_compat.numpy"
    assert B.library_name(np.ones(2)) == "numpy"


def test_namespace_mixing_names_both_arguments():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"left is a numpy array but right is a torch array"):
        B.get_namespace(np.ones(2), torch.ones(2), names=["left", "right"])
    assert B.library_name(torch.ones(1)) == "torch"


def test_namespace_rejects_non_arrays():
    with pytest.raises(TypeError, match="tensor: expected a numpy array or torch tensor, got str"):
        B.get_namespace("abc", names=["tensor"])


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(np.arange(3), np.float64), (np.array([True, False]), np.float64), ([1, 2], np.float64),
     (np.ones(2, np.float32), np.float32), (np.ones(2, np.complex64), np.complex64)],
)
def test_float_policy_numpy(value, dtype):
    assert B.as_float_array(value, "x").dtype == dtype


def test_float_policy_torch_uses_default_dtype():
    torch = pytest.importorskip("torch")
    assert B.as_float_array(torch.arange(3), "x").dtype == torch.get_default_dtype()
    assert B.as_float_array(torch.ones(2, dtype=torch.bool), "x").dtype == torch.get_default_dtype()
    half = torch.ones(2, dtype=torch.float16)
    assert B.as_float_array(half, "x") is half


def test_float_policy_rejects_strings():
    with pytest.raises(TypeError, match="x: expected a numeric array, got dtype <U1"):
        B.as_float_array(np.array(["a"]), "x")


def test_checks_name_the_argument():
    message = r"cores\[2\]: expected a non-empty array, got shape \(1, 0, 1\)"
    with pytest.raises(ValueError, match=message):
        B.check_nonempty(np.zeros((1, 0, 1)), "cores[2]")
    with pytest.raises(ValueError, match="tensor: expected finite values"):
        B.check_finite(np.array([np.inf]), "tensor")
    B.check_finite(np.ones(2), "tensor")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_linalg_shim_numpy(dtype, shape):
    a = _matrix(shape, dtype)
    tol = TOL[dtype]
    u, s, vh = B.svd(a)
    k = min(shape)
    assert u.shape == (shape[0], k) and vh.shape == (k, shape[1])
    assert np.allclose((u * s) @ vh, a, atol=tol * 10)
    assert np.all(np.diff(s) <= 0)
    q, r = B.qr(a)
    assert np.allclose(q @ r, a, atol=tol * 10)
    g = a @ B.conj_t(a)
    w, v = B.eigh(g)
    assert np.allclose((v * w) @ B.conj_t(v), g, atol=tol * 100)
    assert abs(float(B.norm(a)) - np.linalg.norm(a)) < tol * 10
    assert B.is_complex(a) == np.issubdtype(dtype, np.complexfloating)


@pytest.mark.parametrize("dtype", DTYPES)
def test_qr_r_blocks_match_gram(dtype):
    a = _matrix((6000, 4), dtype, seed=1)
    r = B.qr_r(a, block_rows=1000)
    assert r.shape == (4, 4)
    g = B.conj_t(a) @ a
    assert np.allclose(B.conj_t(r) @ r, g, rtol=TOL[dtype] * 100, atol=TOL[dtype] * 1e4)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_linalg_shim_torch_matches_numpy(dtype):
    torch = pytest.importorskip("torch")
    a = _matrix((6, 4), getattr(np, dtype))
    t = torch.from_numpy(a)
    _, s_np, _ = B.svd(a)
    u, s, vh = B.svd(t)
    assert isinstance(s, torch.Tensor)
    assert np.allclose(s.numpy(), s_np, atol=TOL[getattr(np, dtype)] * 10)
    q, r = B.qr(t)
    assert torch.allclose(q @ r, t, atol=1e-4)
    assert B.qr_r(t).shape == (4, 4)
    w, _ = B.eigh(t @ B.conj_t(t))
    assert w.shape == (6,)
    assert abs(float(B.norm(t)) - np.linalg.norm(a)) < 1e-4
    assert B.finfo_eps(t) == B.finfo_eps(a)
    assert np.allclose(B.to_numpy(t), a)


def test_import_ttnet_does_not_import_torch_or_tensorly():
    code = "import sys, ttnet; print('torch' in sys.modules, 'tensorly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
