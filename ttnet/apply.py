"""Elementwise functions of tensor trains, through TT-cross: :func:`apply`.

``apply(fn, a, b, ...)`` is the TT of ``fn(a_full, b_full, ...)`` computed entry-wise, e.g.
``exp(a)``, ``1 / a``, ``sqrt(a)`` or ``a * b + c``, without forming any full tensor:
:func:`ttnet.tt_cross` asks for entries, which are gathered from the input TTs
(:meth:`~ttnet.TensorTrain.gather`) and passed through ``fn``. The result carries the error
reached (``.error``, on a held-out sample) and the cross record (``.info``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ttnet._backend import get_namespace, library_name
from ttnet.cross import tt_cross
from ttnet.tensor_train import TensorTrain

__all__ = ["apply"]

Array = Any


def apply(
    fn: Callable[..., Array],
    *tts: TensorTrain,
    eps: float | None = 1e-10,
    max_rank: int | Sequence[int] | None = None,
    max_evals: int | None = None,
    seed: int = 0,
    n_check: int = 1000,
    progress: bool | None = None,
) -> TensorTrain:
    """The TT of ``fn(*values)`` applied entry by entry to the TTs ``tts`` (by TT-cross).

    Args:
        fn: ``fn(v_1, ..., v_m) -> values``, elementwise on 1-D arrays of the TTs' library
            (``numpy.exp``, ``torch.sqrt``, ``lambda a, b: a * b + 1``, ...).
        *tts: one or more TensorTrains of one shape and library.
        eps, max_rank, max_evals, seed, n_check, progress: as for :func:`ttnet.tt_cross`.

    Returns:
        A TensorTrain; ``.error`` is the relative error on a held-out sample and ``.info``
        the :class:`ttnet.CrossInfo` record.

    Raises:
        TypeError: no TT, or an argument that is not a TensorTrain, or TTs of different
            libraries.
        ValueError: TTs of different shapes; ``fn`` answering with a wrong shape or a
            non-finite value (e.g. ``1 / a`` where ``a`` has a zero entry).

    Example:
        >>> import numpy as np, ttnet
        >>> x = np.linspace(0, 1, 16)
        >>> a = ttnet.tt_svd(np.add.outer(np.add.outer(x, x), x))
        >>> e = ttnet.apply(np.exp, a, eps=1e-10)
        >>> bool(np.allclose(e.full(), np.exp(a.full()))), e.ranks
        (True, (1, 1, 1, 1))
    """
    if not tts:
        raise TypeError("apply: expected at least one TensorTrain after fn")
    for k, tt in enumerate(tts):
        if not isinstance(tt, TensorTrain):
            raise TypeError(f"tts[{k}]: expected a TensorTrain, got {type(tt).__name__}")
        if tt.shape != tts[0].shape:
            raise ValueError(f"tts[{k}]: shape {tt.shape} differs from tts[0]'s {tts[0].shape}")
    get_namespace(*(tt.cores[0] for tt in tts), names=[f"tts[{k}]" for k in range(len(tts))])
    first = tts[0].cores[0]
    like = first if library_name(first) == "torch" else None

    def entries(indices: Array) -> Array:
        return fn(*(tt.gather(indices) for tt in tts))

    return tt_cross(entries, tts[0].shape, eps=eps, max_rank=max_rank, max_evals=max_evals,
                    seed=seed, like=like, n_check=n_check, progress=progress)
