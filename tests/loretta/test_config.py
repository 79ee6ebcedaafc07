"""Configs: the official signatures with working defaults, validation, JSON round trip."""

import json

import pytest

from loretta import LorettaAdpConfig, LorettaConfig, LorettaRepConfig, TaskType
from loretta.config import CONFIG_NAME


def test_official_adp_signature_and_defaults():
    cfg = LorettaAdpConfig(bottleneck_size=64, non_linearity="relu", adapter_dropout=0.0,
                           target_modules=None, scaling=1.0, bias="none",
                           task_type="CAUSAL_LM", tensor_rank=5)
    assert cfg == LorettaAdpConfig()
    assert (cfg.bottleneck_size, cfg.tensor_rank, cfg.scaling) == (64, 5, 1.0)


def test_rep_defaults_work_and_none_does_not_crash():
    # The official LorettaRepConfig defaults lora_alpha=None, lora_dropout=None and crashes.
    assert (LorettaRepConfig().r, LorettaRepConfig().lora_alpha) == (8, 16)
    cfg = LorettaRepConfig(lora_alpha=None, lora_dropout=None)
    assert (cfg.lora_alpha, cfg.lora_dropout) == (8, 0.0)


@pytest.mark.parametrize("member", list(TaskType))
def test_task_type_strings_and_members(member):
    assert LorettaAdpConfig(task_type=member).task_type == member.value
    assert LorettaRepConfig(task_type=member.value).task_type == member.value


def test_preset_sets_norms_and_pooler_only_for_seq_cls():
    paper = LorettaAdpConfig(preset="paper", task_type=TaskType.SEQ_CLS)
    assert paper.norms_trained and paper.pooler_tensorised
    assert not LorettaAdpConfig(preset="paper").pooler_tensorised
    assert not LorettaAdpConfig(preset="paper", train_norms=False).norms_trained
    assert not LorettaRepConfig(task_type="SEQ_CLS").pooler_tensorised


@pytest.mark.parametrize("kwargs, argument", [
    ({"bias": "some"}, "bias"),
    ({"task_type": "CLASSIFY"}, "task_type"),
    ({"tensor_rank": 0}, "tensor_rank"),
    ({"preset": "official"}, "preset"),
    ({"bottleneck_size": -1}, "bottleneck_size"),
    ({"adapter_dropout": 1.5}, "adapter_dropout"),
    ({"adapter_positions": {"gate_proj": "inside"}}, "adapter_positions"),
    ({"target_modules": 3}, "target_modules"),
    ({"train_norms": "yes"}, "train_norms"),
])
def test_bad_adp_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        LorettaAdpConfig(**kwargs)


@pytest.mark.parametrize("kwargs, argument", [
    ({"r": 0}, "r"), ({"lora_alpha": -2}, "lora_alpha"), ({"lora_dropout": 1.0}, "lora_dropout"),
])
def test_bad_rep_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        LorettaRepConfig(**kwargs)


def test_bias_aliases_of_the_official_code():
    assert LorettaAdpConfig(bias="adapter_only").bias == "loretta_only"
    assert LorettaRepConfig(bias="lora_only").bias == "loretta_only"


@pytest.mark.parametrize("cfg", [
    LorettaAdpConfig(bottleneck_size=16, target_modules=["q_proj"], preset="paper",
                     adapter_positions={"q_proj": "input"}, modules_to_save=["lm_head"]),
    LorettaRepConfig(r=4, lora_alpha=8, target_modules=r".*\.query", task_type="SEQ_CLS"),
])
def test_json_round_trip(tmp_path, cfg):
    cfg.save_pretrained(tmp_path)
    data = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert data["peft_type"] == cfg.peft_type
    assert LorettaConfig.from_pretrained(tmp_path) == cfg
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_NAME]  # no temp file left


def test_from_dict_rejects_unknown_type_and_fields():
    with pytest.raises(ValueError, match="peft_type"):
        LorettaConfig.from_dict({"peft_type": "LORA"})
    with pytest.raises(ValueError, match="unknown fields"):
        LorettaConfig.from_dict({"peft_type": "LORETTA_REP", "rank": 3})
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        LorettaConfig.from_pretrained("/nonexistent-dir")
