"""LorettaModel: counting, named adapters, disable_adapter, merge/unload, options, rank rounding."""

import re

import peft
import pytest
import torch
from peft.utils.other import ModulesToSaveWrapper

from loretta import (LorettaAdpConfig, LorettaModel, LorettaRepConfig, PeftModel, get_peft_model,
                     round_ranks)
from loretta.layer import LorettaLayer, TTPoolerLayer


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_print_trainable_parameters_format(make_model, capsys):
    model = get_peft_model(make_model("llama"), LorettaAdpConfig(bottleneck_size=8))
    trainable, total = model.get_nb_trainable_parameters()
    model.print_trainable_parameters()
    line = capsys.readouterr().out.strip()
    pattern = r"trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}"
    assert re.fullmatch(pattern, line)
    assert line == (f"trainable params: {trainable:,d} || all params: {total:,d} || "
                    f"trainable%: {100 * trainable / total:.4f}")
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert PeftModel is LorettaModel and isinstance(model, peft.PeftModel)


def test_seq_cls_head_trainable(make_model):
    model = get_peft_model(make_model("bert"), LorettaRepConfig(task_type="SEQ_CLS"))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".classifier.modules_to_save.default.weight" in n for n in names)


def test_roberta_tt_pooler_splits_the_head(make_model):
    model = get_peft_model(make_model("roberta"), LorettaAdpConfig(task_type="SEQ_CLS",
                                                                  tt_pooler=True, bottleneck_size=8))
    head = model.get_base_model().classifier
    assert isinstance(head.dense, TTPoolerLayer)
    assert type(head.dense.loretta_pooler["default"]).__name__ == "TTLinear"
    assert isinstance(head.out_proj, ModulesToSaveWrapper)
    saved = model.peft_config["default"].modules_to_save
    assert "classifier.out_proj" in saved and "classifier" not in saved


@pytest.mark.parametrize("config", [LorettaAdpConfig(bottleneck_size=8, train_norms=True),
                                    LorettaRepConfig(r=4, train_norms=True)])
def test_disable_adapter_gives_base_outputs_after_training(make_model, batch, train, config):
    base = make_model("llama")
    expected = _logits(base, batch)
    model = get_peft_model(base, config)
    train(model, batch)
    assert not torch.equal(_logits(model, batch), expected)
    with model.disable_adapter():
        assert torch.equal(_logits(model, batch), expected)
    assert not torch.equal(_logits(model, batch), expected)


def test_named_adapters_add_set_delete(make_model, batch, train):
    base = make_model("bert")
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=4, task_type="SEQ_CLS"))
    train(model, batch)
    first = _logits(model, batch)
    model.add_adapter("other", LorettaAdpConfig(bottleneck_size=8, task_type="SEQ_CLS"))
    assert model.active_adapter == "default"
    assert torch.equal(_logits(model, batch), first)
    model.set_adapter("other")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".other." in n for n in trainable)
    train(model, batch)
    second = _logits(model, batch)
    assert not torch.equal(second, first)
    model.set_adapter("default")
    assert torch.equal(_logits(model, batch), first)
    model.delete_adapter("default")
    assert model.active_adapter == "other" and list(model.peft_config) == ["other"]
    assert torch.equal(_logits(model, batch), second)
    assert not any(".default." in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="missing"):
        model.set_adapter("missing")
    with pytest.raises(ValueError, match="different peft types"):
        model.add_adapter("rep", LorettaRepConfig())


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "deberta"])
def test_merge_and_unload_returns_plain_model(make_model, batch, train, model_type):
    config = LorettaRepConfig(r=4, task_type="SEQ_CLS" if model_type == "deberta" else "CAUSAL_LM",
                              preset="paper" if model_type == "deberta" else None, tensor_rank=3)
    model = get_peft_model(make_model(model_type), config)
    train(model, batch)
    adapted = _logits(model, batch)
    plain = model.merge_and_unload()
    assert type(plain).__module__.startswith("transformers.")
    for module in plain.modules():
        assert type(module).__module__.split(".")[0] in ("transformers", "torch"), module
    torch.testing.assert_close(_logits(plain, batch), adapted, rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in plain.parameters())


def test_merge_of_adp_is_refused_and_unload_restores(make_model, batch, train):
    base = make_model("llama")
    expected = _logits(base, batch)
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=8, train_norms=True))
    train(model, batch)
    with pytest.raises(ValueError, match="merge_and_unload.*non-linearity"):
        model.merge_and_unload()
    plain = model.unload()  # the original norms come back (PEFT's unload keeps trained copies)
    assert not any(isinstance(m, (LorettaLayer, ModulesToSaveWrapper)) for m in plain.modules())
    assert torch.equal(_logits(plain, batch), expected)


def test_train_norms_bias_and_modules_to_save(make_model):
    config = LorettaRepConfig(r=4, train_norms=True, bias="loretta_only",
                              modules_to_save=["lm_head"])
    model = get_peft_model(make_model("opt"), config)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lm_head.modules_to_save.default" in n for n in names)
    assert any("layer_norm.modules_to_save.default.weight" in n for n in names)
    biases = {n for n in names if n.endswith("base_layer.bias")}
    assert len(biases) == 2  # q_proj and v_proj of one layer
    every = LorettaRepConfig(r=4, bias="all")
    all_biases = {n for n, p in get_peft_model(make_model("opt"), every).named_parameters()
                  if p.requires_grad and n.endswith("bias")}
    assert len(all_biases) > len(biases)


def test_adapter_dtype_follows_base_in_bf16(make_model, batch):
    base = make_model("llama").to(torch.bfloat16)
    model = get_peft_model(base, LorettaAdpConfig(bottleneck_size=8))
    assert model(**batch).logits.dtype == torch.bfloat16
    params = [p for n, p in model.named_parameters() if ".loretta_adp." in n]
    assert params and {p.dtype for p in params} == {torch.float32}


def test_rank_adaptation_reports_savings_and_output_change(make_model, batch, train, tmp_path):
    model = get_peft_model(make_model("bert", hidden=64),
                           LorettaAdpConfig(bottleneck_size=16, tensor_rank=8, task_type="SEQ_CLS",
                                            tt_pooler=True))
    train(model, batch, steps=5)
    before = model.get_nb_trainable_parameters()[0]
    exact = model.round_ranks(eps=1e-7, inputs=batch)
    assert exact.output_change < 1e-4
    report = model.round_ranks(max_rank=2, inputs=batch)
    assert report.factors == 2 * 2 * 1 + 1  # down/up of 2 adapters + TT pooler
    assert report.params_saved > 0
    assert report.params_after == exact.params_after - report.params_saved
    assert model.get_nb_trainable_parameters()[0] == before - exact.params_saved \
        - report.params_saved
    assert 0 < report.output_change < 1 and 0 < report.max_factor_error < 1
    # A rounded adapter saves and reloads with its new ranks.
    logits = _logits(model, batch)
    ranks = model.peft_config["default"].tt_ranks
    assert len(ranks) == report.factors and max(max(r) for r in ranks.values()) <= 2
    model.save_pretrained(tmp_path)
    loaded = LorettaModel.from_pretrained(make_model("bert", hidden=64), tmp_path)
    assert torch.equal(_logits(loaded, batch), logits)
    with pytest.raises(ValueError, match="eps, max_rank"):
        model.round_ranks()


def test_rank_rounding_on_peft_model_loads_through_peft_and_transformers(make_model, batch,
                                                                         train, tmp_path):
    model = peft.get_peft_model(make_model("llama", hidden=64),
                                LorettaRepConfig(r=8, tensor_rank=6, lora_dropout=0.0))
    train(model, batch)
    report = round_ranks(model, "default", max_rank=3, inputs=batch)
    assert report.factors == 4 and report.params_saved > 0 and report.output_change > 0
    expected = _logits(model, batch)
    model.save_pretrained(tmp_path)
    loaded = peft.PeftModel.from_pretrained(make_model("llama", hidden=64), tmp_path)
    assert torch.equal(_logits(loaded, batch), expected)
    direct = make_model("llama", hidden=64)
    direct.load_adapter(str(tmp_path), adapter_name="rounded")
    assert torch.equal(_logits(direct, batch), expected)
    # A config whose recorded ranks exceed tensor_rank is refused before anything is built.
    bad = LorettaRepConfig(r=8, tensor_rank=2, tt_ranks=model.peft_config["default"].tt_ranks)
    with pytest.raises(ValueError, match=r"tt_ranks\[.*\]: expected ranks at most tensor_rank=2"):
        get_peft_model(make_model("llama", hidden=64), bad)


QUICK_START = {
    "adp": """
from transformers import AutoModelForCausalLM
from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model, TaskType
peft_config = LorettaAdpConfig(
            bottleneck_size=64,
            non_linearity="relu",
            adapter_dropout=0.0,
            target_modules=None, # default to be None for officially supported models
            scaling=1.0,
            bias="none",
            task_type='CAUSAL_LM', # choose from "SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS"
            tensor_rank=5,
        )
model = AutoModelForCausalLM.from_config(small_config)
model = get_peft_model(model, peft_config)
model.print_trainable_parameters()
""",
    "rep": """
from transformers import AutoModelForCausalLM
from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model, TaskType
peft_config = LorettaRepConfig(
            r=8, # bottleneck
            lora_alpha=16,
            target_modules=None,
            lora_dropout=0.05,
            bias="none",
            task_type='CAUSAL_LM', # choose from "SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS"
            tensor_rank=5,
        )
model = AutoModelForCausalLM.from_config(small_config)
model = get_peft_model(model, peft_config)
model.print_trainable_parameters()
""",
}


@pytest.mark.parametrize("method", sorted(QUICK_START))
def test_official_quick_start_runs_as_written(method, capsys):
    # The README of the official code, only with a config-built model instead of a download.
    from transformers import LlamaConfig

    torch.manual_seed(0)
    small_config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, vocab_size=100)
    namespace = {"small_config": small_config}
    exec(QUICK_START[method], namespace)  # noqa: S102 - the snippet, verbatim
    model = namespace["model"]
    trainable, total = model.get_nb_trainable_parameters()
    assert capsys.readouterr().out == (f"trainable params: {trainable:,d} || all params: "
                                       f"{total:,d} || trainable%: {100 * trainable / total:.4f}\n")
    assert isinstance(model, LorettaModel) and model.config.model_type == "llama"
    assert trainable > 0 and model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 100)
