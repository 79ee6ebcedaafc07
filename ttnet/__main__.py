"""``python -m ttnet``: a short demonstration of the core (decompose, round, contract).

Prints, for a smooth function sampled on a grid and for a kernel matrix, the TT ranks,
the compression and the error (reported by ttnet and measured against the dense array).
"""

from __future__ import annotations

import time

import numpy as np

from ttnet.decomposition import tt_matrix_svd, tt_svd


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> None:
    """Run the demonstration and print its results.

    Example:
        >>> main()  # doctest: +ELLIPSIS
        ttnet core demo
        ...
    """
    print("ttnet core demo")
    # 1. A smooth function of 8 variables on a 4^8 grid (65,536 values).
    grid = np.linspace(0.0, 1.0, 4)
    axes = np.meshgrid(*([grid] * 8), indexing="ij")
    tensor = 1.0 / (1.0 + sum((k + 1) * x for k, x in enumerate(axes)))
    start = time.perf_counter()
    tt = tt_svd(tensor, eps=1e-6)
    elapsed = time.perf_counter() - start
    print(f"\n1/(1 + x1 + 2 x2 + ... + 8 x8) on a 4^8 grid, tt_svd(eps=1e-6) in {elapsed:.3f} s")
    print(f"  ranks {tt.ranks}")
    print(f"  {tensor.size:,} values -> {tt.num_params:,} parameters "
          f"({tensor.size / tt.num_params:.0f}x smaller)")
    print(f"  error: reported {tt.error:.2e}, measured {_rel(tt.full(), tensor):.2e}")

    # 2. Round a sum: ranks add, rounding brings them back.
    total = tt + 0.5 * tt
    rounded = total.round(eps=1e-10)
    print("\nround(tt + 0.5 tt, eps=1e-10)")
    print(f"  ranks {total.ranks} -> {rounded.ranks}")
    print(f"  error: reported {rounded.error:.2e}, "
          f"measured {_rel(rounded.full(), total.full()):.2e}")

    # 3. A 1024 x 1024 kernel matrix as a TT matrix, and a batch product with it.
    points = np.arange(1024, dtype=np.float64)
    kernel = 1.0 / (1.0 + np.abs(points[:, None] - points[None, :]) / 64.0)
    modes = (4, 4, 4, 4, 4)
    start = time.perf_counter()
    ttm = tt_matrix_svd(kernel, modes, modes, eps=1e-4)
    elapsed = time.perf_counter() - start
    print(f"\nkernel 1/(1 + |i - j| / 64), 1024 x 1024, tt_matrix_svd(eps=1e-4) in {elapsed:.3f} s")
    print(f"  ranks {ttm.ranks}")
    print(f"  {kernel.size:,} values -> {ttm.num_params:,} parameters "
          f"({kernel.size / ttm.num_params:.0f}x smaller)")
    print(f"  error: reported {ttm.error:.2e}, measured {_rel(ttm.to_dense(), kernel):.2e}")
    x = np.random.default_rng(0).standard_normal((8, 1024))
    y = ttm.matvec(x)
    print(f"  matvec, batch 8: relative error vs dense x @ W.T {_rel(y, x @ kernel.T):.2e}")


if __name__ == "__main__":
    main()
