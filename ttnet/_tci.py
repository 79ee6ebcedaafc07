"""The state and pivot search of tensor cross interpolation (see :mod:`ttnet.cross`).

:class:`Bonds` holds the nested pivot sets and the fibers; :func:`search_bond` adds pivots
at one bond by rook search on its two-site matrix. Everything here is numpy (float64 or
complex128); :func:`ttnet.tt_cross` converts the result.
"""

from __future__ import annotations

import numpy as np

from ttnet._oracle import Oracle

__all__ = ["Bonds", "search_bond"]

# Rook search: most row/column moves per pivot.
ROOK_MOVES = 4


class Bonds:
    """Nested pivot sets and fibers of a TCI (numpy, float64 or complex128)."""

    def __init__(self, oracle: Oracle, x0: np.ndarray) -> None:
        self.oracle = oracle
        self.n = list(oracle.shape)
        d = len(self.n)
        # I[k]: prefixes (r_k, k+1) for k < d-1, J[k]: suffixes (r_k, d-k-1); sentinel empties.
        self.left = [x0[None, : k + 1] for k in range(d - 1)]
        self.right = [x0[None, k + 1 :] for k in range(d - 1)]
        self.rows = [[int(x0[k])] for k in range(d - 1)]  # pivot rows of Pi_k: p * n_k + a
        self.cols = [[(int(x0[k + 1]), 0)] for k in range(d - 1)]  # pivot columns (b, q)
        fibers = [self._fiber_indices(k) for k in range(d)]
        values = oracle(np.concatenate(fibers))
        bounds = np.cumsum([0] + [len(f) for f in fibers])
        self.cores = [values[bounds[k] : bounds[k + 1]].reshape(1, self.n[k], 1) for k in range(d)]

    def prefixes(self, k: int) -> np.ndarray:
        """``I_{k-1}``: the prefixes of length ``k`` (one empty row for ``k = 0``)."""
        return self.left[k - 1] if k > 0 else np.zeros((1, 0), dtype=np.int64)

    def suffixes(self, k: int) -> np.ndarray:
        """``J_k``: the suffixes after mode ``k`` (one empty row for the last mode)."""
        return self.right[k] if k < len(self.n) - 1 else np.zeros((1, 0), dtype=np.int64)

    def _fiber_indices(self, k: int) -> np.ndarray:
        """Multi-indices of ``T_k`` in C order ``(r_{k-1}, n_k, r_k)``."""
        left, right, n = self.prefixes(k), self.suffixes(k), self.n[k]
        a = np.repeat(np.repeat(np.arange(n), len(right))[None, :], len(left), axis=0).reshape(-1)
        return np.concatenate(
            [
                np.repeat(left, n * len(right), axis=0),
                a[:, None],
                np.tile(right, (len(left) * n, 1)),
            ],
            axis=1,
        )

    def column(self, k: int, col: tuple[int, int]) -> np.ndarray:
        """``Pi_k[:, (b, q)]``: all ``(p, a)`` rows, evaluated."""
        b, q = col
        left, n = self.prefixes(k), self.n[k]
        tail = np.concatenate([[b], self.suffixes(k + 1)[q]])
        idx = np.concatenate(
            [
                np.repeat(left, n, axis=0),
                np.tile(np.arange(n), len(left))[:, None],
                np.tile(tail, (len(left) * n, 1)),
            ],
            axis=1,
        )
        return self.oracle(idx.astype(np.int64))

    def row(self, k: int, row: int) -> np.ndarray:
        """``Pi_k[(p, a), :]``: all ``(b, q)`` columns, evaluated."""
        p, a = divmod(row, self.n[k])
        right, n = self.suffixes(k + 1), self.n[k + 1]
        head = np.concatenate([self.prefixes(k)[p], [a]])
        idx = np.concatenate(
            [
                np.tile(head, (n * len(right), 1)),
                np.repeat(np.arange(n), len(right))[:, None],
                np.tile(right, (n, 1)),
            ],
            axis=1,
        )
        return self.oracle(idx.astype(np.int64))

    def interpolation(self, k: int) -> np.ndarray:
        """``T_k P_k^{-1}`` as a matrix ``(r_{k-1} n_k, r_k)``: ``Q Q[I]^{-1}``."""
        core = self.cores[k]
        q = np.linalg.qr(core.reshape(-1, core.shape[2]))[0]
        return np.linalg.solve(q[self.rows[k]].T, q.T).T

    def add(self, k: int, row: int, col: tuple[int, int], row_values, col_values) -> None:
        """Add the pivot ``(row, col)`` at bond ``k`` with its evaluated row and column."""
        p, a = divmod(row, self.n[k])
        b, q = col
        self.left[k] = np.concatenate([self.left[k], [[*self.prefixes(k)[p], a]]])
        self.right[k] = np.concatenate([self.right[k], [[b, *self.suffixes(k + 1)[q]]]])
        self.rows[k].append(row)
        self.cols[k].append(col)
        left, right = self.cores[k], self.cores[k + 1]
        self.cores[k] = np.concatenate([left, col_values.reshape(left.shape[0], -1, 1)], axis=2)
        self.cores[k + 1] = np.concatenate(
            [right, row_values.reshape(1, -1, right.shape[2])], axis=0
        )

    def tt_cores(self) -> list[np.ndarray]:
        """The TT cores ``T_k P_k^{-1}`` (last: ``T_d``)."""
        d = len(self.n)
        out = [self.interpolation(k).reshape(self.cores[k].shape) for k in range(d - 1)]
        return out + [self.cores[d - 1]]


def _fresh(rng: np.random.Generator, size: int, taken: set, tries: int = 8) -> int | None:
    """A random position in ``range(size)`` not in ``taken`` (``None`` if none was found)."""
    if len(taken) >= size:
        return None
    for _ in range(tries):
        pos = int(rng.integers(size))
        if pos not in taken:
            return pos
    free = np.setdiff1d(np.arange(size), np.fromiter(taken, dtype=np.int64))
    return int(free[rng.integers(len(free))])


def search_bond(bonds: Bonds, k: int, tol: float, cap: int, rng: np.random.Generator) -> int:
    """Add pivots at bond ``k`` while rook search finds an error above ``tol``.

    Rows and columns of the two-site matrix ``Pi_k`` evaluated during the search are kept
    with their signed errors; each new pivot updates the interpolation and those errors by
    a rank-1 (Schur complement) step, and the largest kept error starts the next search.
    The bond is done when a fresh random column and then a fresh random row show no error
    above ``tol``, or its rank reaches ``cap``.

    Returns:
        The number of pivots added.
    """
    interp = bonds.interpolation(k)  # (R, r): T_k P_k^{-1}
    right = bonds.cores[k + 1]
    width = right.shape[2]
    coef = right.reshape(right.shape[0], -1)  # (r, C): T_{k+1}
    pivot_rows = list(bonds.rows[k])
    pivot_cols = [b * width + q for b, q in bonds.cols[k]]
    cols: dict[int, list[np.ndarray]] = {}  # flat column b * r_{k+1} + q -> [values, error]
    rows: dict[int, list[np.ndarray]] = {}  # row p * n_k + a -> [values, error]

    def eval_col(j: int) -> None:
        if j not in cols:
            values = bonds.column(k, divmod(j, width))
            cols[j] = [values, values - interp @ coef[:, j]]

    def eval_row(i: int) -> None:
        if i not in rows:
            values = bonds.row(k, i)
            rows[i] = [values, values - interp[i] @ coef]

    def largest(err: np.ndarray, exclude: list[int]) -> int:
        mag = np.abs(err)
        mag[exclude] = 0.0
        return int(np.argmax(mag))

    added = failures = 0
    while len(pivot_rows) < cap:
        best, start = tol, None
        for j, (_, err) in cols.items():
            i = largest(err, pivot_rows)
            if abs(err[i]) > best:
                best, start = abs(err[i]), (i, j)
        for i, (_, err) in rows.items():
            j = largest(err, pivot_cols)
            if abs(err[j]) > best:
                best, start = abs(err[j]), (i, j)
        if start is None:
            if failures >= 2:
                break
            if failures == 0:
                j = _fresh(rng, coef.shape[1], set(pivot_cols) | set(cols))
                if j is not None:
                    eval_col(j)
            else:
                i = _fresh(rng, interp.shape[0], set(pivot_rows) | set(rows))
                if i is not None:
                    eval_row(i)
            failures += 1
            continue
        i, j = start
        for _ in range(ROOK_MOVES):
            eval_row(i)
            j = largest(rows[i][1], pivot_cols)
            eval_col(j)
            i_next = largest(cols[j][1], pivot_rows)
            if i_next == i:
                break
            i = i_next
        eval_row(i)
        row_values, row_err = rows.pop(i)
        col_values, col_err = cols.pop(j)
        u = col_err / col_err[i]
        interp = np.concatenate([interp - np.outer(u, interp[i]), u[:, None]], axis=1)
        coef = np.concatenate([coef, row_values[None, :]], axis=0)
        for jj, item in cols.items():
            item[1] = item[1] - u * row_err[jj]
        for ii, item in rows.items():
            item[1] = item[1] - u[ii] * row_err
        bonds.add(k, i, divmod(j, width), row_values, col_values)
        pivot_rows.append(i)
        pivot_cols.append(j)
        added += 1
        failures = 0
    return added
