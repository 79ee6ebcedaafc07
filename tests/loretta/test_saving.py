"""save_pretrained / from_pretrained: every trained tensor, bit-identical reload, clear errors."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from loretta import (LorettaAdpConfig, LorettaConfig, LorettaModel, LorettaRepConfig,
                     get_peft_model)
from loretta.config import CONFIG_NAME
from loretta.saving import WEIGHTS_NAME


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


CASES = [
    ("deberta", LorettaAdpConfig(preset="paper", task_type="SEQ_CLS", bottleneck_size=8)),
    ("deberta", LorettaRepConfig(preset="paper", task_type="SEQ_CLS", r=4, tensor_rank=3)),
    ("roberta", LorettaAdpConfig(preset="paper", task_type="SEQ_CLS", bottleneck_size=8)),
    ("llama", LorettaAdpConfig(preset="paper", bottleneck_size=8)),
    ("gpt2", LorettaRepConfig(r=4, bias="all", modules_to_save=["ln_f"])),
]


@pytest.mark.parametrize("model_type, config", CASES)
def test_reload_is_bit_identical(make_model, batch, train, tmp_path, model_type, config):
    model = get_peft_model(make_model(model_type), config)
    train(model, batch)
    expected = _logits(model, batch)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [CONFIG_NAME, WEIGHTS_NAME]
    loaded = LorettaModel.from_pretrained(make_model(model_type), tmp_path)
    assert torch.equal(_logits(loaded, batch), expected)
    assert not any(p.requires_grad for p in loaded.parameters())
    trainable = LorettaModel.from_pretrained(make_model(model_type), tmp_path, is_trainable=True)
    assert trainable.get_nb_trainable_parameters()[0] == model.get_nb_trainable_parameters()[0]


def test_file_holds_every_trainable_tensor(make_model, batch, train, tmp_path):
    # The official code drops trained norms and the TT pooler (reloaded logits differ).
    model = get_peft_model(make_model("deberta"), LorettaAdpConfig(
        preset="paper", task_type="SEQ_CLS", bottleneck_size=8))
    train(model, batch)
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / WEIGHTS_NAME)
    trainable = {n: p for n, p in model.base_model.named_parameters() if p.requires_grad}
    assert len(saved) == len(trainable)
    assert sum(t.numel() for t in saved.values()) == sum(p.numel() for p in trainable.values())
    for key in ("pooler.dense.loretta_pooler.cores.0", "classifier.weight",
                "deberta.embeddings.LayerNorm.weight",
                "deberta.encoder.layer.0.output.dense.loretta_adp.up.cores.0"):
        assert f"base_model.model.{key}" in saved  # PEFT's keys: no adapter name in them
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["peft_type"] == "LORETTA_ADP" and config["preset"] == "paper"


def test_load_adapter_under_another_name(make_model, batch, train, tmp_path):
    model = get_peft_model(make_model("llama"), LorettaRepConfig(r=4))
    train(model, batch)
    expected = _logits(model, batch)
    model.save_pretrained(tmp_path)
    other = get_peft_model(make_model("llama"), LorettaRepConfig(r=4))
    other.load_adapter(tmp_path, "trained")
    other.set_adapter("trained")
    assert torch.equal(_logits(other, batch), expected)


@pytest.mark.parametrize("target, pattern", [
    (dict(model_type="bert"), r"tensor '.*' of shape .* has no counterpart"),
    (dict(model_type="deberta", hidden=64), r"tensor '.*': the model expects shape .* file has"),
    (dict(model_type="deberta", num_labels=3),
     r"safetensors: tensor 'classifier.bias': the model expects shape \(3,\), the file has \(2,\)"),
    (dict(model_type="deberta", layers=2), r"expects tensor 'deberta.encoder.layer.1.*file lacks"),
])
def test_wrong_architecture_or_size_names_the_tensor(make_model, tmp_path, target, pattern):
    config = LorettaAdpConfig(task_type="SEQ_CLS", bottleneck_size=8, train_norms=True)
    get_peft_model(make_model("deberta"), config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=pattern):
        LorettaModel.from_pretrained(make_model(**target), tmp_path)


def test_missing_files_are_reported(make_model, tmp_path):
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        LorettaModel.from_pretrained(make_model("llama"), tmp_path)
    LorettaRepConfig().save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        LorettaModel.from_pretrained(make_model("llama"), tmp_path)


def test_wrong_family_is_refused_before_anything_is_built(make_model, tmp_path):
    get_peft_model(make_model("llama"), LorettaRepConfig(r=4)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"target_modules: \['q_proj', 'v_proj'\] matched no "
                                         r"module of the model; linear layer names in it: \["):
        LorettaModel.from_pretrained(make_model("gpt2"), tmp_path)
    # Same targets, another family: the tensor that does not fit is named.
    key = r"model\.layers\.0\.self_attn\.v_proj\.loretta_rep\.lora_B\.cores\.\d"
    with pytest.raises(ValueError, match=rf"tensor '{key}': the model expects shape"):
        LorettaModel.from_pretrained(make_model("llama", num_key_value_heads=4), tmp_path)


def test_not_trainable_load_freezes_everything(make_model, batch, train, tmp_path):
    config = LorettaRepConfig(r=4, bias="all", train_norms=True, modules_to_save=["lm_head"])
    model = get_peft_model(make_model("opt"), config)
    train(model, batch)
    model.save_pretrained(tmp_path)
    loaded = LorettaModel.from_pretrained(make_model("opt"), tmp_path)
    assert loaded.peft_config["default"].inference_mode and not loaded.training
    loaded.train()
    loaded.set_adapter("default")
    assert loaded.get_nb_trainable_parameters()[0] == 0
    loss = loaded(**batch).logits.float().pow(2).mean()
    assert not loss.requires_grad  # no graph at all: nothing can be trained by mistake
    # A trainable adapter added next to it trains alone; the loaded one stays frozen.
    loaded.add_adapter("new", LorettaRepConfig(r=2, tensor_rank=2))
    loaded.set_adapter("new")
    names = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert names and all(".new." in n for n in names)


def test_named_adapters_save_in_peft_layout_and_load_under_their_names(
    make_model, batch, train, tmp_path
):
    model = get_peft_model(make_model("bert"), LorettaAdpConfig(bottleneck_size=4,
                                                               task_type="SEQ_CLS"))
    train(model, batch)
    expected_default = _logits(model, batch)
    model.add_adapter("task_b", LorettaAdpConfig(bottleneck_size=8, task_type="SEQ_CLS",
                                                 train_norms=True))
    model.set_adapter("task_b")
    train(model, batch)
    expected_b = _logits(model, batch)
    model.set_adapter("default")
    model.save_pretrained(tmp_path)  # all adapters: default at the root, task_b in a subfolder
    assert LorettaConfig.from_pretrained(tmp_path).bottleneck_size == 4
    assert LorettaConfig.from_pretrained(tmp_path / "task_b").bottleneck_size == 8
    loaded = LorettaModel.from_pretrained(make_model("bert"), tmp_path)
    assert torch.equal(_logits(loaded, batch), expected_default)
    loaded.load_adapter(tmp_path / "task_b", "task_b")
    loaded.set_adapter("task_b")
    assert torch.equal(_logits(loaded, batch), expected_b)


def test_selected_adapters_saves_only_those(make_model, tmp_path):
    model = get_peft_model(make_model("bert"), LorettaAdpConfig(bottleneck_size=4))
    model.add_adapter("task_b", LorettaAdpConfig(bottleneck_size=8))
    model.save_pretrained(tmp_path, selected_adapters=["task_b"])
    assert sorted(os.listdir(tmp_path)) == ["task_b"]
    assert sorted(os.listdir(tmp_path / "task_b")) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    with pytest.raises(ValueError, match="adapter_name: expected one of .*'nope'"):
        model.save_pretrained(tmp_path / "other", selected_adapters=["nope"])
    assert not (tmp_path / "other").exists()  # nothing written before the names are checked
