"""ttnet: tensor-train (TT) math on numpy and torch arrays.

Example:
    >>> import numpy as np
    >>> import ttnet
    >>> a = np.random.default_rng(0).standard_normal((4, 4, 4, 4))
    >>> tt = ttnet.tt_svd(a, eps=1e-10)
    >>> bool(np.allclose(tt.full(), a))
    True
"""

from ttnet import ranks
from ttnet.apply import apply
from ttnet.contraction import (
    ContractionInfo,
    TTMExpression,
    contraction_info,
    ttm_expression,
    ttm_matvec,
    ttm_rmatvec,
)
from ttnet.cost import Cost, CostModel, default_cost_model
from ttnet.cross import CrossInfo, tt_cross
from ttnet.decomposition import tt_matrix_svd, tt_svd
from ttnet.dense import tt_full, ttm_dense
from ttnet.interop import from_tensorly, to_tensorly
from ttnet.io import load, save
from ttnet.plans import MatrixPlan, default_num_modes, factorize, padded_size, plan_matrix
from ttnet.precision import compute_dtype
from ttnet.qtt import dequantize, quantize
from ttnet.rounding import round_cores
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

__all__: list[str] = [
    "ContractionInfo",
    "Cost",
    "CrossInfo",
    "CostModel",
    "MatrixPlan",
    "TTMExpression",
    "TTMatrix",
    "TensorTrain",
    "apply",
    "compute_dtype",
    "contraction_info",
    "default_cost_model",
    "default_num_modes",
    "dequantize",
    "factorize",
    "from_tensorly",
    "load",
    "padded_size",
    "plan_matrix",
    "quantize",
    "ranks",
    "round_cores",
    "save",
    "to_tensorly",
    "tt_cross",
    "tt_full",
    "tt_matrix_svd",
    "tt_svd",
    "ttm_dense",
    "ttm_expression",
    "ttm_matvec",
    "ttm_rmatvec",
]
