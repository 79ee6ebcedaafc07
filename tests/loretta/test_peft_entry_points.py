"""PEFT's and transformers' own entry points: get_peft_model, PeftModel.from_pretrained,
model.load_adapter (under any adapter name) and save_as_lora, all on LoRETTA adapters."""

import json

import peft
import pytest
import torch

from loretta import LorettaAdpConfig, LorettaModel, LorettaRepConfig, get_peft_model

CASES = {
    "llama-adp-paper-norms": ("llama", lambda: LorettaAdpConfig(
        bottleneck_size=8, preset="paper", train_norms=True)),
    "llama-rep-bias": ("llama", lambda: LorettaRepConfig(r=4, tensor_rank=3,
                                                          bias="loretta_only")),
    "gpt2-rep-conv1d": ("gpt2", lambda: LorettaRepConfig(r=4, tensor_rank=3,
                                                          modules_to_save=["ln_f"])),
    "deberta-adp-paper": ("deberta", lambda: LorettaAdpConfig(
        bottleneck_size=8, preset="paper", task_type="SEQ_CLS")),
    "roberta-rep-pooler": ("roberta", lambda: LorettaRepConfig(
        r=4, tensor_rank=3, task_type="SEQ_CLS", tt_pooler=True, train_norms=True)),
}


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def _trained(make_model, batch, train, case, wrap):
    model_type, config = CASES[case]
    model = wrap(make_model(model_type), config())
    train(model, batch)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_peft_get_peft_model_works_like_loretta_get_peft_model(make_model, batch, train, case):
    ours = _trained(make_model, batch, train, case, get_peft_model)
    theirs = _trained(make_model, batch, train, case, peft.get_peft_model)
    assert isinstance(theirs, peft.PeftModel) and not isinstance(theirs, LorettaModel)
    trainable = [n for n, p in ours.named_parameters() if p.requires_grad]
    assert trainable == [n for n, p in theirs.named_parameters() if p.requires_grad]
    assert ours.get_nb_trainable_parameters() == theirs.get_nb_trainable_parameters()
    assert torch.equal(_logits(ours, batch), _logits(theirs, batch))


@pytest.mark.parametrize("saver", ["loretta", "peft"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_entry_point_loads_bit_identically_under_any_name(make_model, batch, train,
                                                                tmp_path, case, saver):
    wrap = get_peft_model if saver == "loretta" else peft.get_peft_model
    model = _trained(make_model, batch, train, case, wrap)
    expected = _logits(model, batch)
    model.save_pretrained(tmp_path)
    model_type = CASES[case][0]
    for name in ("default", "renamed"):
        for label, cls in (("loretta", LorettaModel), ("peft", peft.PeftModel)):
            loaded = cls.from_pretrained(make_model(model_type), tmp_path, name)
            assert loaded.active_adapter == name
            assert torch.equal(_logits(loaded, batch), expected), (label, name)
        base = make_model(model_type)
        base.load_adapter(str(tmp_path), adapter_name=name)  # transformers' own loader
        assert torch.equal(_logits(base, batch), expected), ("transformers", name)


@pytest.mark.parametrize("model_type, config", [
    ("llama", lambda: LorettaRepConfig(r=4, tensor_rank=3, train_norms=True)),  # grouped-query
    ("gpt2", lambda: LorettaRepConfig(r=4, tensor_rank=3)),  # Conv1D, fan_in_fan_out
    ("bert", lambda: LorettaRepConfig(r=4, tensor_rank=3, task_type="SEQ_CLS",
                                      train_norms=True, lora_alpha=32)),
])
def test_save_as_lora_is_reproduced_by_peft_lora(make_model, batch, train, tmp_path, model_type,
                                                 config):
    model = get_peft_model(make_model(model_type), config())
    train(model, batch)
    expected = _logits(model, batch)
    assert model.supports_lora_conversion()
    peft.save_as_lora(tmp_path, model, rank=4)  # the update has rank <= r = 4: exact
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA"
    lora = peft.PeftModel.from_pretrained(make_model(model_type), tmp_path)
    got = _logits(lora, batch)
    assert not torch.equal(got, _logits(make_model(model_type), batch))  # the update is there
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize("config, layer", [
    (LorettaAdpConfig(bottleneck_size=8), "TTAdapterLayer"),
    (LorettaRepConfig(r=4, tensor_rank=3, task_type="SEQ_CLS", tt_pooler=True), "TTPoolerLayer"),
])
def test_save_as_lora_refuses_what_lora_cannot_hold(make_model, tmp_path, config, layer):
    model = get_peft_model(make_model("bert"), config)
    assert not model.supports_lora_conversion()
    with pytest.raises(TypeError, match=f"do not support LoRA conversion: .*loretta.layer.{layer}"):
        peft.save_as_lora(tmp_path, model, rank=4)
