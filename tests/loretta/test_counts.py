"""The paper's parameter counts, exact integers, on the meta device (no memory, no download)."""

import pytest

from loretta import LorettaAdpConfig, LorettaRepConfig
from loretta.counts import build_meta, lora_count, loretta_count


def test_deberta_base_adp_seq_cls_with_tt_pooler():
    # 24 adapters x 2,392 + 25 LayerNorms x 1,536 + TT pooler 1,848 + classifier 1,538
    assert loretta_count("DeBERTa-base", LorettaAdpConfig(preset="paper")) == 99_194


def test_deberta_base_rep():
    # 12 x (A 580 + B 585) + 38,400 norms + 1,848 pooler + 1,538 classifier
    assert loretta_count("DeBERTa-base", LorettaRepConfig(preset="paper")) == 55_766


def test_llama2_7b_adp_official_placement():
    assert loretta_count("LLaMA-2-7B", LorettaAdpConfig(preset="paper")) == 876_800
    assert loretta_count("LLaMA-2-7B", LorettaAdpConfig(preset="paper", train_norms=False)) \
        == 610_560


def test_peft_lora_r8_qv_llama2_7b():
    assert lora_count("LLaMA-2-7B", r=8) == 4_194_304


def test_meta_models_hold_no_memory():
    model = build_meta("LLaMA-2-7B")
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("config", [LorettaAdpConfig(preset="paper"), LorettaRepConfig()])
def test_adapters_follow_the_base_device(config):
    from loretta import get_peft_model

    model = get_peft_model(build_meta("DeBERTa-base"), config)
    assert {p.device.type for p in model.parameters()} == {"meta"}
