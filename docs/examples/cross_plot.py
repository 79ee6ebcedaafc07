"""TT-cross: error against function evaluations
=============================================

ttnet.tt_cross against teneva's cross on ``1/(1+|x|^2)``, d=8.
The tensor of ``f(x) = 1 / (1 + |x|^2)`` on a grid of 32 points per mode on ``[-1, 1]^8``
(32^8, about 1.1e12 entries). ttnet: one :func:`ttnet.tt_cross` run per target ``eps``;
teneva (when installed): one ``teneva.cross`` run with its documented defaults, the error
recorded after every sweep. Both errors are measured on the same 2,000 random entries that
neither method saw; the evaluation counts are distinct multi-indices (ttnet's includes
its held-out sample).

The docs build runs this script (sphinx-gallery); the tutorial "Approximating functions"
shows its figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.ticker import NullFormatter

import ttnet

D, N = 8, 32
EPS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)


def make_oracle():
    """The entry oracle: an int array ``(batch, 8)`` of grid indices -> ``(batch,)`` values."""
    grid = np.linspace(-1.0, 1.0, N)
    return lambda idx: 1.0 / (1.0 + np.sum(grid[idx] ** 2, axis=1))


def ttnet_curve(fn, test, ref) -> tuple[list[int], list[float]]:
    """Evaluations and test errors of tt_cross for each target in :data:`EPS`."""
    evals, errors = [], []
    for eps in EPS:
        tt = ttnet.tt_cross(fn, [N] * D, eps=eps)
        evals.append(tt.info.evals)
        errors.append(float(np.linalg.norm(tt.gather(test) - ref) / np.linalg.norm(ref)))
    return evals, errors


def teneva_curve(fn, test, ref) -> tuple[list[int], list[float]] | None:
    """Evaluations and test errors after each sweep of teneva's cross (None: not installed)."""
    try:
        import teneva
    except ImportError:
        return None
    evals, errors = [], []

    def record(y, info, opts):
        evals.append(info["m"])
        errors.append(float(np.linalg.norm(teneva.get_many(y, test) - ref) / np.linalg.norm(ref)))

    y0 = teneva.rand([N] * D, r=1, seed=0)
    teneva.cross(fn, y0, m=10**7, e=1e-10, dr_min=1, dr_max=1, cache={}, cb=record)
    return evals, errors


def main() -> plt.Figure:
    """Draw the figure and return it."""
    fn = make_oracle()
    test = np.random.default_rng(1).integers(0, N, size=(2000, D))
    ref = fn(test)
    fig, ax = plt.subplots()
    ax.loglog(*ttnet_curve(fn, test, ref), "o-", label="ttnet.tt_cross (one run per eps)")
    theirs = teneva_curve(fn, test, ref)
    if theirs is None:
        ax.set_title("teneva is not installed: ttnet only", fontsize=9)
    else:
        ax.loglog(*theirs, "s--", label="teneva.cross (after each sweep)")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("function evaluations")
    ax.set_ylabel("relative error on 2,000 random entries")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


if __name__ == "__main__":
    main()
