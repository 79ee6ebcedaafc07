"""The LoRETTA paper's TT shapes: one table, pooler included, and the rule for other sizes.

LoRETTA stores a ``rows x cols`` matrix as a TT *tensor* whose full tensor, reshaped row-major,
is the matrix (the row/column boundary may fall inside a mode). The official code has a fixed
table of shapes; :data:`LORETTA_PRESETS` reproduces it and :func:`loretta_tensor_shape` extends
it to every size by a documented rule, so no hidden size raises ``KeyError``.
:func:`paper_pooler_shape` gives the shape of the tensorised SEQ_CLS pooler (``H x H``).
"""

from __future__ import annotations

from ttnet.plans import default_num_modes, factorize

__all__ = ["LORETTA_PRESETS", "loretta_tensor_shape", "paper_pooler_shape"]

#: The TT-tensor shapes of the official LoRETTA code, keyed by ``(rows, cols)``.
#: Down (``H x b``) and up (``b x H``) projections share a shape; ``(8, 2304)`` is
#: LoRETTA_rep's ``B`` on DeBERTa's ``in_proj``; ``(H, H)`` entries are the SEQ_CLS pooler
#: (``768 x 768``: 1,080 parameters at rank 5).
LORETTA_PRESETS: dict[tuple[int, int], tuple[int, ...]] = {
    (768, 8): (8, 8, 12, 8),
    (768, 64): (8, 8, 12, 8, 8),
    (4096, 8): (16, 16, 8, 4, 4),
    (4096, 64): (16, 16, 16, 4, 4, 4),
    (8192, 8): (4, 16, 16, 16, 4),
    (8192, 64): (4, 16, 16, 16, 8, 4),
    (8, 2304): (8, 8, 8, 4, 9),
    # SEQ_CLS poolers, H x H
    (768, 768): (8, 8, 12, 12, 8, 8),
    (1024, 1024): (4, 8, 8, 16, 8, 8, 4),
    (1280, 1280): (4, 4, 8, 8, 8, 8, 5, 5),
    (1536, 1536): (4, 4, 8, 8, 8, 8, 6, 6),
    (1600, 1600): (5, 5, 8, 8, 8, 8, 5, 5),
    (2304, 2304): (4, 4, 8, 8, 8, 8, 9, 9),
    (4096, 4096): (4, 4, 16, 16, 16, 16, 4, 4),
    (5120, 5120): (8, 8, 8, 10, 10, 8, 8, 8),  # the old table's (8, 8, 8, 10, 10, 8, 8) is 1/8 short
    (8192, 8192): (4, 4, 16, 16, 16, 16, 8, 8),
}
LORETTA_PRESETS.update({(c, r): s for (r, c), s in list(LORETTA_PRESETS.items())})


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


def loretta_tensor_shape(rows: int, cols: int) -> tuple[int, ...]:
    """The flat TT-tensor shape LoRETTA uses for a ``rows x cols`` weight.

    Published sizes come from :data:`LORETTA_PRESETS` (e.g. ``768 x 64 -> (8, 8, 12, 8, 8)``).
    Any other size follows the rule ``factorize(rows, d_r) + factorize(cols, d_c)`` with
    ``d = round(log8(n))`` modes per side (at least 1, :func:`ttnet.plans.default_num_modes`)
    and factors of 1 dropped, so the product is always exactly ``rows * cols`` (no padding; a
    prime size becomes one mode). Never raises ``KeyError``.

    Args:
        rows: Number of rows, ``>= 1``.
        cols: Number of columns, ``>= 1``.

    Returns:
        The tensor shape; reshaping the TT tensor row-major gives the ``rows x cols`` matrix.

    Raises:
        ValueError: If ``rows`` or ``cols`` is not a positive integer.

    Example:
        >>> loretta_tensor_shape(768, 64)
        (8, 8, 12, 8, 8)
        >>> loretta_tensor_shape(2048, 64)
        (4, 8, 8, 8, 8, 8)
    """
    _check_size("rows", rows)
    _check_size("cols", cols)
    preset = LORETTA_PRESETS.get((rows, cols))
    if preset is not None:
        return preset
    shape = factorize(rows, default_num_modes(rows)) + factorize(cols, default_num_modes(cols))
    kept = tuple(f for f in shape if f > 1)
    return kept or (1,)


def paper_pooler_shape(hidden: int) -> tuple[int, ...] | None:
    """The official code's TT shape of the SEQ_CLS pooler ``hidden x hidden``, or ``None``.

    ``None`` for a hidden size outside the official table (the caller then plans its own TT
    matrix instead of guessing a paper shape).

    Example:
        >>> paper_pooler_shape(768), paper_pooler_shape(384)
        ((8, 8, 12, 12, 8, 8), None)
    """
    _check_size("hidden", hidden)
    return LORETTA_PRESETS.get((hidden, hidden))
