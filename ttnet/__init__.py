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

# --- reshaping plans and contraction paths (core-B) ---

__all__: list[str] = []
