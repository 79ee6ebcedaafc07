"""What a hostile user tries: names that are paths, a second wrapping, a wrong fan_in_fan_out,
adapter configs that ask for absurd sizes, and weight files that do not fit."""

import json
import warnings

import peft
import pytest
from peft.tuners.tuners_utils import set_adapter
import torch
from safetensors.torch import load_file, save_file

from loretta import LorettaAdpConfig, LorettaModel, LorettaRepConfig, get_peft_model
from loretta.config import CONFIG_NAME
from loretta.saving import WEIGHTS_NAME

BAD_NAMES = ["/abs/path", "a/b", "..", "", "a.b", "x y", "tab\t", "é", 3, None]


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("name", BAD_NAMES)
def test_adapter_names_are_identifiers_at_every_door(make_model, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    config = LorettaRepConfig(r=4, tensor_rank=2)
    model = get_peft_model(make_model("llama"), config)
    before = sorted(p.name for p in tmp_path.iterdir())
    pattern = r"adapter_name: expected letters, digits, '_' or '-'"
    with pytest.raises(ValueError, match=pattern):
        model.add_adapter(name, LorettaRepConfig(r=4, tensor_rank=2))
    with pytest.raises(ValueError, match=pattern):
        get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2), name)
    # PEFT's own door: a non-string name fails inside PEFT (TypeError) before reaching loretta.
    with pytest.raises(ValueError if isinstance(name, str) else TypeError):
        peft.get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2), name)
    assert list(model.peft_config) == ["default"]
    model.save_pretrained("out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "out"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]


def test_loading_under_a_bad_name_is_refused_before_anything_is_built(make_model, tmp_path):
    get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2)).save_pretrained(
        tmp_path)
    for load in (lambda: LorettaModel.from_pretrained(make_model("llama"), tmp_path, "../up"),
                 lambda: peft.PeftModel.from_pretrained(make_model("llama"), tmp_path, "../up"),
                 lambda: make_model("llama").load_adapter(str(tmp_path), adapter_name="../up")):
        with pytest.raises(ValueError, match="adapter_name"):
            load()


@pytest.mark.parametrize("wrap", [get_peft_model, peft.get_peft_model])
def test_second_application_names_the_adapters_and_wipes_nothing(make_model, batch, train, wrap):
    model = wrap(make_model("bert"), LorettaAdpConfig(bottleneck_size=8, task_type="SEQ_CLS"))
    train(model, batch)
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    expected = _logits(model, batch)
    base = model.get_base_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns about a second modification first
        with pytest.raises(ValueError, match=r"\['default'\].*add_adapter"):
            wrap(base, LorettaAdpConfig(bottleneck_size=8, task_type="SEQ_CLS"))
    assert list(model.peft_config) == ["default"]
    assert all(torch.equal(p, trained[n]) for n, p in model.named_parameters() if n in trained)
    assert torch.equal(_logits(model, batch), expected)
    model.add_adapter("second", LorettaAdpConfig(bottleneck_size=4, task_type="SEQ_CLS"))
    assert torch.equal(_logits(model, batch), expected)  # the documented way adds, keeps


def test_transformers_loads_a_second_adapter_next_to_the_first(make_model, batch, train,
                                                              tmp_path):
    saved = {}
    for name, r in (("first", 4), ("second", 2)):
        model = get_peft_model(make_model("llama"), LorettaRepConfig(r=r, tensor_rank=2))
        train(model, batch)
        model.save_pretrained(tmp_path / name)
        saved[name] = _logits(model, batch)
    base = make_model("llama")
    base.load_adapter(str(tmp_path / "first"), adapter_name="first")
    base.load_adapter(str(tmp_path / "second"), adapter_name="second")  # becomes active
    assert torch.equal(_logits(base, batch), saved["second"])
    set_adapter(base, "first")  # transformers' own set_adapter asks for peft >= 0.22
    assert torch.equal(_logits(base, batch), saved["first"])
    with pytest.raises(ValueError, match="first"):
        base.load_adapter(str(tmp_path / "second"), adapter_name="first")


@pytest.mark.parametrize("model_type, wrong", [("llama", True), ("gpt2", False)])
def test_contradicting_fan_in_fan_out_is_corrected_with_a_warning(make_model, batch, train,
                                                                  model_type, wrong):
    # The llama has grouped-query attention (v_proj 32 -> 16), so a transposed merge cannot
    # even be added; GPT-2's Conv1D stores (in, out).
    config = LorettaRepConfig(r=4, tensor_rank=2, fan_in_fan_out=wrong, lora_dropout=0.0)
    with pytest.warns(UserWarning, match=rf"fan_in_fan_out: .* using fan_in_fan_out={not wrong} "
                                         rf"instead of {wrong}"):
        model = get_peft_model(make_model(model_type), config)
    train(model, batch)
    adapted = _logits(model, batch)
    plain = model.merge_and_unload()
    torch.testing.assert_close(_logits(plain, batch), adapted, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("field, value, pattern", [
    ("tensor_rank", 100_000, (r"tensor_rank: expected at most \d+ \(no bond of the \d+x\d+ TT "
                              r"factor model\.layers\.0\.self_attn\.q_proj\.lora_A")),
    ("r", 10**9, r"r: expected at most 32 \(the smaller size of model\.layers\.0"),
    ("tt_ranks", {"model.layers.0.self_attn.q_proj.lora_A": [4]},
     r"tt_ranks\['model\.layers\.0\.self_attn\.q_proj\.lora_A'\]: expected ranks at most"),
])
def test_hostile_sizes_in_the_config_are_refused_before_allocation(make_model, tmp_path, field,
                                                                   value, pattern):
    # tensor_rank 100,000 would ask for ~10^11 parameters per factor; nothing is allocated.
    get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2)).save_pretrained(
        tmp_path)
    path = tmp_path / CONFIG_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    for load in (lambda: LorettaModel.from_pretrained(make_model("llama"), tmp_path),
                 lambda: peft.PeftModel.from_pretrained(make_model("llama"), tmp_path),
                 lambda: make_model("llama").load_adapter(str(tmp_path))):
        with pytest.raises(ValueError, match=pattern):
            load()


def test_adp_bottleneck_wider_than_the_layer_is_refused(make_model):
    with pytest.raises(ValueError, match=r"bottleneck_size: expected at most 32 \(the width of "):
        get_peft_model(make_model("llama"), LorettaAdpConfig(bottleneck_size=10**9))


def test_unknown_keys_warn_and_load(make_model, batch, tmp_path):
    model = get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2))
    model.save_pretrained(tmp_path)
    path = tmp_path / CONFIG_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), "from_the_future": [1],
                                "revision": "main"}))
    with pytest.warns(UserWarning, match=r"adapter_config.json: ignoring keys .*from_the_future"):
        loaded = LorettaModel.from_pretrained(make_model("llama"), tmp_path)
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))
    assert loaded.peft_config["default"].revision == "main"


@pytest.mark.parametrize("edit, pattern", [
    ("shrink", r"tensor '.*lora_B\.cores\.\d': the model expects shape .*, the file has"),
    ("drop", r"the model expects tensor '.*' of shape .*, the file lacks it"),
    ("extra", r"tensor 'model\.intruder\.weight' of shape \(2,\) has no counterpart"),
    ("truncate", r"adapter_model.safetensors: not a readable safetensors file"),
])
def test_weights_that_disagree_with_the_config_name_the_tensor(make_model, tmp_path, edit,
                                                               pattern):
    get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2)).save_pretrained(
        tmp_path)
    path = tmp_path / WEIGHTS_NAME
    tensors = load_file(path)
    key = min(k for k in tensors if ".lora_B.cores." in k)
    if edit == "shrink":
        tensors[key] = tensors[key][..., :1].contiguous()
    elif edit == "drop":
        del tensors[key]
    elif edit == "extra":
        tensors["base_model.model.model.intruder.weight"] = torch.zeros(2)
    save_file(tensors, path)
    if edit == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    model = get_peft_model(make_model("llama"), LorettaRepConfig(r=4, tensor_rank=2))
    for load in (lambda: LorettaModel.from_pretrained(make_model("llama"), tmp_path),
                 lambda: model.load_adapter(tmp_path, "other")):
        with pytest.raises(ValueError, match=pattern):
            load()
    assert list(model.peft_config) == ["default"]  # a refused load leaves nothing behind
    if edit != "truncate":  # PEFT's own door checks the tensors too (it loads non-strictly)
        with pytest.raises(ValueError, match=pattern):
            peft.PeftModel.from_pretrained(make_model("llama"), tmp_path)
