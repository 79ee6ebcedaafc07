"""Default placement for every supported family, explicit targets, and clear errors."""

import math

import pytest
import torch
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_LORA
from peft.utils.other import ModulesToSaveWrapper

from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model
from loretta.layer import TTAdapterLayer, TTLoRALayer, TTPoolerLayer
from loretta.mapping import DEFAULTS

FAMILIES = ["llama", "mistral", "qwen2", "gemma", "gemma2", "phi3", "gpt2", "gpt_neox", "opt",
            "bert", "roberta", "distilbert", "deberta", "deberta-v2"]
LLAMA_LIKE = {"llama", "mistral", "qwen2", "gemma", "gemma2"}
ENCODERS = {"bert", "roberta", "distilbert", "deberta", "deberta-v2"}
#: Families PEFT's LoRA table lacks, with the targets a LoRA user of them picks by hand.
NOT_IN_PEFT = {"phi3": {"qkv_proj"}, "distilbert": {"q_lin", "v_lin"}}


def _wrapped(model, kind):
    return {n: m for n, m in model.named_modules() if isinstance(m, kind)}


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_every_family_has_defaults():
    assert set(FAMILIES) <= set(DEFAULTS)
    assert set(NOT_IN_PEFT) == {f for f in FAMILIES if f not in PEFT_LORA}


@pytest.mark.parametrize("model_type", FAMILIES)
@pytest.mark.parametrize("preset", [None, "paper"])
def test_adp_default_placement_is_identity_at_init(make_model, batch, model_type, preset):
    base = make_model(model_type, layers=2)
    expected = _logits(base, batch)
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=8, tensor_rank=2,
                                                  preset=preset, task_type="CAUSAL_LM"))
    adapters = _wrapped(model, TTAdapterLayer)
    per_layer = 3 if (preset == "paper" and model_type in LLAMA_LIKE) else 2
    assert len(adapters) == 2 * per_layer
    assert torch.equal(_logits(model, batch), expected)
    positions = {m.loretta_position["default"] for m in adapters.values()}
    assert positions == ({"output"} if preset is None or model_type in ENCODERS
                         else {"input", "output"})


@pytest.mark.parametrize("model_type", FAMILIES)
def test_rep_default_targets_are_peft_lora_defaults(make_model, batch, model_type):
    base = make_model(model_type, layers=2)
    expected = _logits(base, batch)
    model = get_peft_model(base, LorettaRepConfig(r=4, tensor_rank=2))
    names = _wrapped(model, TTLoRALayer)
    targets = set(PEFT_LORA.get(model_type) or NOT_IN_PEFT[model_type])  # PEFT's table, not ours
    assert {n.rsplit(".", 1)[-1] for n in names} == targets
    assert len(names) == 2 * len(targets)
    assert set(model.peft_config["default"].target_modules) == targets
    assert torch.equal(_logits(model, batch), expected)
    # Each update really acts on its layer: a non-zero B moves that layer's output by B A x.
    layer = next(iter(names.values()))
    update = layer.loretta_rep["default"]
    with torch.no_grad():
        update.lora_B.cores[-1].normal_()
        x = torch.randn(3, layer.in_features)
        delta = update.delta_weight(layer.fan_in_fan_out)
        dense = delta.T if layer.fan_in_fan_out else delta
        torch.testing.assert_close(layer(x) - layer.base_layer(x), x @ dense.T, rtol=1e-4,
                                   atol=1e-5)
    assert not torch.equal(_logits(model, batch), expected)


def test_paper_llama_placement_is_three_mlp_adapters(make_model):
    model = get_peft_model(make_model("llama"), LorettaAdpConfig(preset="paper", bottleneck_size=8))
    found = {n.split("layers.0.")[-1]: m.loretta_position["default"]
             for n, m in _wrapped(model, TTAdapterLayer).items()}
    assert found == {"mlp.gate_proj": "input", "mlp.up_proj": "input", "mlp.down_proj": "output"}


@pytest.mark.parametrize("hidden", [2048, 2560, 3072, 576, 384])
@pytest.mark.parametrize("preset", [None, "paper"])
def test_hidden_sizes_the_official_code_rejects(make_model, batch, hidden, preset):
    # The official code raises KeyError for these sizes. Here the TT factors cover exactly the
    # H x 64 matrices, the adapters start as the identity, and the paper's pooler is a TT layer
    # whose dense weight is what the model now applies.
    base = make_model("bert", hidden=hidden)
    plain = make_model("bert", hidden=hidden)
    model = get_peft_model(base, LorettaAdpConfig(preset=preset, task_type="SEQ_CLS"))
    for layer in _wrapped(model, TTAdapterLayer).values():
        adapter = layer.loretta_adp["default"]
        for factor in (adapter.down, adapter.up):
            modes = [math.prod(c.shape[1:-1]) for c in factor.cores]
            assert math.prod(modes) == hidden * 64
    poolers = _wrapped(model, TTPoolerLayer)
    assert len(poolers) == (1 if preset == "paper" else 0)
    with torch.no_grad():
        for tt in (p.loretta_pooler["default"] for p in poolers.values()):
            plain.bert.pooler.dense.weight.copy_(tt.dense_weight())
            plain.bert.pooler.dense.bias.copy_(tt.bias)
    torch.testing.assert_close(_logits(model, batch), _logits(plain, batch), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("targets, count", [
    (["query"], 1),
    (["attention.self.value", "key"], 2),
    (r".*layer\.0\.attention\.self\.query", 1),
])
def test_explicit_targets_by_name_suffix_or_regex(make_model, targets, count):
    model = get_peft_model(make_model("bert"), LorettaRepConfig(target_modules=targets))
    assert len(_wrapped(model, TTLoRALayer)) == count


def test_adapter_positions_option(make_model):
    config = LorettaAdpConfig(target_modules=["c_fc"], adapter_positions={"c_fc": "input"})
    model = get_peft_model(make_model("gpt2"), config)
    (layer,) = _wrapped(model, TTAdapterLayer).values()
    assert layer.loretta_position["default"] == "input"
    assert layer.loretta_adp["default"].hidden_size == 32  # Conv1D input size


def test_unknown_model_type_error_says_how_to_fix(make_model, monkeypatch):
    model = make_model("llama")
    monkeypatch.setattr(type(model.config), "model_type", "my-model")
    with pytest.raises(ValueError, match=r"target_modules.*'my-model'.*regex"):
        get_peft_model(model, LorettaAdpConfig(bottleneck_size=8))
    get_peft_model(model, LorettaAdpConfig(bottleneck_size=8, target_modules=["down_proj"]))


def test_targets_that_match_nothing_or_no_linear(make_model):
    with pytest.raises(ValueError, match=r"target_modules.*matched no module.*q_proj"):
        get_peft_model(make_model("llama"), LorettaRepConfig(target_modules=["qq_proj"]))
    with pytest.raises(TypeError, match=r"target_modules.*LlamaRMSNorm"):
        get_peft_model(make_model("llama"), LorettaRepConfig(target_modules=["input_layernorm"]))
    with pytest.raises(ValueError, match="modules_to_save"):
        get_peft_model(make_model("llama"), LorettaRepConfig(modules_to_save=["nothing"]))


def test_layer_norm_check_only_trains_norms_and_adapters(make_model):
    # The official code's norm check reads a stale loop variable and can train a whole model.
    model = get_peft_model(make_model("deberta"), LorettaAdpConfig(
        preset="paper", task_type="SEQ_CLS", bottleneck_size=8))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".loretta_" in n or ".modules_to_save.default." in n for n in names)
    saved = _wrapped(model, ModulesToSaveWrapper)
    assert sum("LayerNorm" in n for n in saved) == 3  # embeddings + 2 per layer (1 layer)
    assert {n.rsplit(".", 1)[-1] for n in saved} == {"LayerNorm", "classifier"}
