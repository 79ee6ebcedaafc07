"""ttnet: tensor-train (TT) math on numpy and torch arrays.

Example:
    >>> import numpy as np
    >>> import ttnet
    >>> a = np.random.default_rng(0).standard_normal((4, 4, 4, 4))
    >>> tt = ttnet.tt_svd(a, eps=1e-10)
    >>> bool(np.allclose(tt.full(), a))
    True
"""

# --- values, decomposition, rounding, ranks, interop (core-A) ---
from ttnet import ranks
from ttnet.decomposition import tt_matrix_svd, tt_svd
from ttnet.interop import from_tensorly, to_tensorly
from ttnet.rounding import round_cores
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

# --- reshaping plans and contraction paths (core-B) ---
from ttnet.contraction import (
    ContractionInfo,
    contraction_info,
    tt_full,
    ttm_dense,
    ttm_matvec,
    ttm_rmatvec,
)
from ttnet.plans import (
    MatrixPlan,
    default_num_modes,
    factorize,
    padded_size,
    plan_matrix,
)

# --- TT-cross, elementwise functions, files, QTT (issue 14) ---
from ttnet.apply import apply
from ttnet.cross import CrossInfo, tt_cross
from ttnet.io import load, save
from ttnet.qtt import dequantize, quantize

__all__: list[str] = [
    # core-A
    "TTMatrix",
    "TensorTrain",
    "from_tensorly",
    "ranks",
    "round_cores",
    "to_tensorly",
    "tt_matrix_svd",
    "tt_svd",
    # core-B
    "ContractionInfo",
    "MatrixPlan",
    "default_num_modes",
    "contraction_info",
    "factorize",
    "padded_size",
    "plan_matrix",
    "tt_full",
    "ttm_dense",
    "ttm_matvec",
    "ttm_rmatvec",
    # issue 14
    "CrossInfo",
    "apply",
    "dequantize",
    "load",
    "quantize",
    "save",
    "tt_cross",
]
