"""Tests for ttnet.cost: work counted by hand, the model's arithmetic and its executor rule."""

import dataclasses
import math

import pytest

from ttnet.cost import (
    COST_MODELS,
    Cost,
    CostModel,
    build_cost,
    copy_cost,
    default_cost_model,
    matmul_cost,
)


def test_matmul_cost_by_hand():
    # (3, 4) @ (4, 2): 2*3*4*2 FLOPs; output width 2 < 8 -> narrow x4; 12 + 8 + 6 elements
    assert matmul_cost(3, 4, 2) == Cost(48, 192, 26, 1)
    assert matmul_cost(64, 768, 64) == Cost(2 * 64 * 768 * 64, 2 * 64 * 768 * 64,
                                            64 * 768 + 768 * 64 + 64 * 64, 1)


def test_build_cost_by_hand():
    """(6 x 20) TT matrix from cores (1,2,4,2), (2,3,5,1): one (8,2)@(2,15) product, one gather."""
    shapes = ((1, 2, 4, 2), (2, 3, 5, 1))
    product = Cost(2 * 8 * 2 * 15, 2 * 8 * 2 * 15 * 8 // 2, 8 * 2 + 2 * 15 + 8 * 15, 1)
    assert build_cost(shapes) == product + Cost(0, 0, 2 * 120, 1)
    assert build_cost(shapes, reorder=False) == product  # the chain's order is already it
    assert build_cost(((1, 3, 4, 1),), reorder=False) == Cost(0, 0, 0, 0)  # one core is W
    assert build_cost(((1, 3, 4, 1),)) == Cost(0, 0, 2 * 12, 1)  # W.T: one gather


def test_seconds_by_hand_and_linear_in_the_counts():
    model = CostModel("cpu", 1.0, 10.0, 100.0)
    assert model.seconds(Cost(4, 8, 3, 2)) == 8 + 30 + 200  # narrow FLOPs are what is charged
    a, b = matmul_cost(5, 7, 3), copy_cost(11)
    assert model.seconds(a + b) == pytest.approx(model.seconds(a) + model.seconds(b))


def test_choose_follows_the_model_not_fixed_constants():
    cheap_flops = CostModel("cpu", 0.0, 1.0, 0.0)  # only memory traffic counts
    many_calls = CostModel("cpu", 0.0, 0.0, 1.0)  # only calls count
    tt = Cost(1, 1, 1000, 2)
    dense = Cost(1, 1, 10, 5)
    assert cheap_flops.choose(tt, dense) == "dense"
    assert many_calls.choose(tt, dense) == "steps"
    tie = Cost(1, 1, 10, 2)
    assert cheap_flops.choose(tie, dense) == "dense"  # ties go to the dense route


def test_einsum_threshold_switches_the_tt_executor():
    base = CostModel("cpu", 1.0, 0.0, 0.0)
    tt, dense = Cost(10, 10, 0, 1), Cost(100, 100, 0, 1)
    assert dataclasses.replace(base, einsum_min_seconds=10.0).choose(tt, dense) == "einsum"
    assert dataclasses.replace(base, einsum_min_seconds=10.5).choose(tt, dense) == "steps"
    assert base.choose(tt, dense) == "steps"  # default: never


@pytest.mark.parametrize(
    ("field", "value"),
    [("seconds_per_flop", -1.0), ("seconds_per_element", math.nan), ("seconds_per_call", True),
     ("einsum_min_seconds", -2.0), ("device_kind", ""), ("seconds_per_flop", "1")],
)
def test_bad_constants_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(COST_MODELS["cpu"], **{field: value})


def test_models_are_frozen_hashable_and_per_device_kind():
    model = default_cost_model("cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.seconds_per_call = 0.0  # type: ignore[misc]
    assert hash(model) == hash(dataclasses.replace(model))
    assert default_cost_model("cuda").device_kind == "cuda"
    assert default_cost_model("cuda") != model
    assert default_cost_model("xla") is model  # unknown kinds use the CPU model
