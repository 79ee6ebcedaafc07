"""The LoRETTA paper's shape table (ttnet_nn.presets) and its rule for other sizes."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttnet_nn.presets import LORETTA_PRESETS, loretta_tensor_shape, paper_pooler_shape


@pytest.mark.parametrize(
    ("rows", "cols", "shape"),
    [
        (768, 8, (8, 8, 12, 8)),
        (768, 64, (8, 8, 12, 8, 8)),
        (64, 768, (8, 8, 12, 8, 8)),
        (4096, 8, (16, 16, 8, 4, 4)),
        (4096, 64, (16, 16, 16, 4, 4, 4)),
        (8192, 8, (4, 16, 16, 16, 4)),
        (8192, 64, (4, 16, 16, 16, 8, 4)),
        (8, 2304, (8, 8, 8, 4, 9)),
    ],
)
def test_loretta_presets_exact(rows, cols, shape):
    assert loretta_tensor_shape(rows, cols) == shape


def test_loretta_presets_products_and_pooler_count():
    for (rows, cols), shape in LORETTA_PRESETS.items():
        assert math.prod(shape) == rows * cols
    s, r = loretta_tensor_shape(768, 768), 5
    assert r * (s[0] + s[-1]) + r * r * sum(s[1:-1]) == 1080  # the paper's SEQ_CLS pooler


@given(rows=st.integers(1, 20_000), cols=st.integers(1, 5_000))
def test_loretta_general_rule_never_fails(rows, cols):
    shape = loretta_tensor_shape(rows, cols)
    assert math.prod(shape) == rows * cols and all(f >= 1 for f in shape)


@pytest.mark.parametrize("hidden", [2048, 2560, 3072])
def test_loretta_sizes_outside_table(hidden):
    shape = loretta_tensor_shape(hidden, 64)
    assert math.prod(shape) == hidden * 64 and max(shape) <= 16


def test_paper_pooler_shapes_are_square_tables_of_the_right_size():
    for hidden in (768, 1024, 1280, 1536, 1600, 2304, 4096, 5120, 8192):
        shape = paper_pooler_shape(hidden)
        assert shape is not None and math.prod(shape) == hidden * hidden
    assert paper_pooler_shape(384) is None
    with pytest.raises(ValueError, match="hidden: expected an integer >= 1, got 0"):
        paper_pooler_shape(0)
