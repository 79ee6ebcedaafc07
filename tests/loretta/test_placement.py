"""Default placement for every supported family, explicit targets, and clear errors."""

import pytest
import torch

from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model
from loretta.layer import AdapterWrapper, LoraWrapper, ReplacementWrapper
from loretta.mapping import DEFAULTS

FAMILIES = ["llama", "mistral", "qwen2", "gemma", "gemma2", "phi3", "gpt2", "gpt_neox", "opt",
            "bert", "roberta", "distilbert", "deberta", "deberta-v2"]
LLAMA_LIKE = {"llama", "mistral", "qwen2", "gemma", "gemma2"}


def _wrapped(model, kind):
    return {n: m for n, m in model.named_modules() if isinstance(m, kind)}


def test_every_family_has_defaults():
    assert set(FAMILIES) <= set(DEFAULTS)


@pytest.mark.parametrize("model_type", FAMILIES)
@pytest.mark.parametrize("preset", [None, "paper"])
def test_adp_default_placement_is_identity_at_init(make_model, batch, model_type, preset):
    base = make_model(model_type, layers=2)
    with torch.no_grad():
        expected = base(**batch).logits
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=8, tensor_rank=2,
                                                  preset=preset, task_type="CAUSAL_LM"))
    adapters = _wrapped(model, AdapterWrapper)
    per_layer = 3 if (preset == "paper" and model_type in LLAMA_LIKE) else 2
    assert len(adapters) == 2 * per_layer
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, expected)
    positions = {m.positions["default"] for m in adapters.values()}
    assert positions == ({"output"} if preset is None or model_type in
                         {"bert", "roberta", "distilbert", "deberta", "deberta-v2"}
                         else {"input", "output"})


@pytest.mark.parametrize("model_type", FAMILIES)
def test_rep_default_targets_are_peft_lora_defaults(make_model, batch, model_type):
    base = make_model(model_type, layers=2)
    with torch.no_grad():
        expected = base(**batch).logits
    model = get_peft_model(base, LorettaRepConfig(r=4, tensor_rank=2))
    names = _wrapped(model, LoraWrapper)
    targets = DEFAULTS[model_type].lora_targets
    assert len(names) == 2 * len(targets)
    assert all(any(n.endswith("." + t) for t in targets) for n in names)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, expected)


def test_paper_llama_placement_is_three_mlp_adapters(make_model):
    model = get_peft_model(make_model("llama"), LorettaAdpConfig(preset="paper", bottleneck_size=8))
    found = {n.split("layers.0.")[-1]: m.positions["default"]
             for n, m in _wrapped(model, AdapterWrapper).items()}
    assert found == {"mlp.gate_proj": "input", "mlp.up_proj": "input", "mlp.down_proj": "output"}


@pytest.mark.parametrize("hidden", [2048, 2560, 3072, 576, 384])
@pytest.mark.parametrize("preset", [None, "paper"])
def test_hidden_sizes_the_official_code_rejects(make_model, batch, hidden, preset):
    base = make_model("bert", hidden=hidden)
    with torch.no_grad():
        expected = base(**batch).logits
    model = get_peft_model(base, LorettaAdpConfig(preset=preset, task_type="SEQ_CLS"))
    with torch.no_grad():
        out = model(**batch).logits
    assert out.shape == expected.shape
    if preset is None:  # no TT pooler: the model starts exactly as the base
        assert torch.equal(out, expected)


@pytest.mark.parametrize("targets, count", [
    (["query"], 1),
    (["attention.self.value", "key"], 2),
    (r".*layer\.0\.attention\.self\.query", 1),
])
def test_explicit_targets_by_name_suffix_or_regex(make_model, targets, count):
    model = get_peft_model(make_model("bert"), LorettaRepConfig(target_modules=targets))
    assert len(_wrapped(model, LoraWrapper)) == count


def test_adapter_positions_option(make_model):
    config = LorettaAdpConfig(target_modules=["c_fc"], adapter_positions={"c_fc": "input"})
    model = get_peft_model(make_model("gpt2"), config)
    (wrapper,) = _wrapped(model, AdapterWrapper).values()
    assert wrapper.positions["default"] == "input"
    assert wrapper.loretta_adp["default"].hidden_size == 32  # Conv1D input size


def test_unknown_model_type_error_says_how_to_fix(make_model):
    model = make_model("llama")
    model.config.model_type = "my-model"
    with pytest.raises(ValueError, match=r"target_modules.*'my-model'.*regex"):
        get_peft_model(model, LorettaAdpConfig())
    get_peft_model(model, LorettaAdpConfig(target_modules=["down_proj"]))  # explicit targets work


def test_targets_that_match_nothing_or_no_linear(make_model):
    with pytest.raises(ValueError, match=r"target_modules.*matched no module.*q_proj"):
        get_peft_model(make_model("llama"), LorettaRepConfig(target_modules=["qq_proj"]))
    with pytest.raises(TypeError, match=r"target_modules.*LlamaRMSNorm"):
        get_peft_model(make_model("llama"), LorettaRepConfig(target_modules=["input_layernorm"]))
    with pytest.raises(ValueError, match="modules_to_save"):
        get_peft_model(make_model("llama"), LorettaRepConfig(modules_to_save=["nothing"]))


def test_layer_norm_check_only_trains_norms_and_adapters(make_model):
    # The official code's norm check reads a stale loop variable and can train a whole model.
    model = get_peft_model(make_model("deberta"), LorettaAdpConfig(preset="paper",
                                                                  task_type="SEQ_CLS"))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".loretta_" in n for n in names)
    norms = _wrapped(model, ReplacementWrapper)
    assert sum("LayerNorm" in n for n in norms) == 3  # embeddings + 2 per layer (1 layer)
