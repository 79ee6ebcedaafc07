"""Configs: the official signatures with working defaults, validation, JSON round trip, and
``adapter_config.json`` files as a hostile user writes them."""

import json

import peft
import pytest

from loretta import LorettaAdpConfig, LorettaConfig, LorettaRepConfig, LorettaType, TaskType
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


def test_configs_are_peft_configs_with_a_str_enum_type():
    cfg = LorettaAdpConfig()
    assert isinstance(cfg, peft.PeftConfig) and isinstance(cfg.peft_type, LorettaType)
    assert cfg.peft_type.value == "LORETTA_ADP" == cfg.peft_type  # transformers reads .value
    assert cfg.to_dict()["peft_type"] == "LORETTA_ADP"
    with pytest.raises(ValueError, match="peft_type: expected 'LORETTA_REP'"):
        LorettaRepConfig(peft_type="LORA")
    with pytest.raises(TypeError, match="LorettaAdpConfig or LorettaRepConfig"):
        LorettaConfig()


def test_from_dict_rejects_unknown_type_and_warns_on_unknown_keys():
    with pytest.raises(ValueError, match="peft_type"):
        LorettaConfig.from_dict({"peft_type": "LORA"})
    data = {**LorettaRepConfig(r=3).to_dict(), "rank": 3, "revision": "v2"}
    with pytest.warns(UserWarning, match=r"ignoring keys unknown to LorettaRepConfig: \['rank'\]"):
        cfg = LorettaConfig.from_dict(data)
    assert (cfg.r, cfg.revision) == (3, "v2")  # PEFT's own keys are known keys
    with pytest.raises(ValueError, match=r"here: r: expected a positive integer"):
        LorettaConfig.from_dict({"peft_type": "LORETTA_REP", "r": -1}, source="here")


@pytest.mark.parametrize("text, pattern", [
    ("{bad json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, received list"),
    ('{"peft_type": "LORETTA_ADP", "bottleneck_size": "64"}', "bottleneck_size: expected a positive"),
    ('{"peft_type": "LORETTA_ADP", "tensor_rank": 0}', "tensor_rank: expected a positive"),
    ('{"peft_type": "LORETTA_REP", "tt_ranks": {"x": [0]}}', r"tt_ranks\['x'\]"),
    ('{"peft_type": "LORETTA_REP", "inference_mode": "no"}', "inference_mode: expected a bool"),
    ('{"peft_type": "IA3"}', "peft_type: expected one of"),
])
def test_every_parse_error_names_the_file(tmp_path, text, pattern):
    (tmp_path / CONFIG_NAME).write_text(text)
    with pytest.raises(ValueError, match=rf"{tmp_path / CONFIG_NAME}: .*{pattern}"):
        LorettaConfig.from_pretrained(tmp_path)


def test_missing_config_and_wrong_class(tmp_path):
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        LorettaConfig.from_pretrained(tmp_path)
    LorettaRepConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'LORETTA_REP' is not 'LORETTA_ADP'"):
        LorettaAdpConfig.from_pretrained(tmp_path)
    assert isinstance(peft.PeftConfig.from_pretrained(tmp_path), LorettaRepConfig)  # PEFT's door
