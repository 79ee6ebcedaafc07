"""Helpers shared by the core tests, as a session fixture (tests import nothing from here)."""

import math
from types import SimpleNamespace

import numpy as np
import opt_einsum
import pytest


def _ranks(d, r):
    return [1] + [r] * (d - 1) + [1]


def tt_cores(rng, shape, r, dtype=np.float64):
    rk = _ranks(len(shape), r)
    return [rng.standard_normal((rk[k], n, rk[k + 1])).astype(dtype) for k, n in enumerate(shape)]


def ttm_cores(rng, m, n, r, dtype=np.float64):
    rk = _ranks(len(m), r)
    return [
        rng.standard_normal((rk[k], m[k], n[k], rk[k + 1])).astype(dtype) for k in range(len(m))
    ]


def einsum_full(cores):
    """Dense reference: one einsum over all cores (independent of the code under test)."""
    d = len(cores)
    sym = opt_einsum.get_symbol
    terms = [sym(2 * d + k) + sym(k) + sym(2 * d + k + 1) for k in range(d)]
    return np.einsum(",".join(terms) + "->" + "".join(sym(k) for k in range(d)), *cores)


def einsum_dense(cores, einsum=np.einsum):
    """``W`` (rows x cols) of TT-matrix cores by one einsum call (``torch.einsum`` keeps it
    differentiable): independent of the code under test."""
    d = len(cores)
    sym = opt_einsum.get_symbol
    terms = [sym(2 * d + k) + sym(k) + sym(d + k) + sym(2 * d + k + 1) for k in range(d)]
    out = "".join(sym(k) for k in range(d)) + "".join(sym(d + k) for k in range(d))
    w = einsum(",".join(terms) + "->" + out, *cores)
    return w.reshape(math.prod(c.shape[1] for c in cores), -1)


@pytest.fixture(scope="session")
def ref():
    """Random TT cores and dense references computed by one einsum (independent of ttnet)."""
    return SimpleNamespace(tt_cores=tt_cores, ttm_cores=ttm_cores, einsum_full=einsum_full,
                           einsum_dense=einsum_dense)
