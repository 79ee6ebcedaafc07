"""A frozen base quantized with torchao (QLoRA-style): both methods train, save and reload;
merging into a quantized weight is refused unless asked to dequantize."""

import pytest
import torch

from loretta import LorettaAdpConfig, LorettaModel, LorettaRepConfig, get_peft_model

torchao = pytest.importorskip("torchao")
from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
from torchao.quantization.granularity import PerGroup

SCHEMES = {
    "int8": lambda: Int8WeightOnlyConfig(),
    # torchao's int4 on CPU: 4-bit values, grouped scales (held unpacked in int8 storage there).
    "int4": lambda: IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)),
}
CONFIGS = {
    "adp": lambda: LorettaAdpConfig(bottleneck_size=8, tensor_rank=3, train_norms=True),
    "rep": lambda: LorettaRepConfig(r=4, tensor_rank=3, lora_dropout=0.0),
}


def _quantized(make_model, scheme):
    model = make_model("llama", hidden=64, layers=2)
    quantize_(model, SCHEMES[scheme](),
              filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and "lm_head" not in name)
    assert type(model.model.layers[0].self_attn.q_proj.weight).__module__.startswith("torchao")
    return model


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("method", sorted(CONFIGS))
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_trains_saves_and_reloads_on_a_quantized_base(make_model, batch, tmp_path, scheme,
                                                      method):
    model = get_peft_model(_quantized(make_model, scheme), CONFIGS[method]())
    assert all(".loretta_" in n or ".modules_to_save." in n
               for n, p in model.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(6):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    assert losses[-1] < losses[0]
    expected = _logits(model, batch)
    model.save_pretrained(tmp_path)
    reloaded = LorettaModel.from_pretrained(_quantized(make_model, scheme), tmp_path)
    assert torch.equal(_logits(reloaded, batch), expected)


def test_merge_into_a_quantized_weight_is_refused_or_dequantized(make_model, batch, train):
    model = get_peft_model(_quantized(make_model, "int8"), CONFIGS["rep"]())
    train(model, batch)
    adapted = _logits(model, batch)
    with pytest.raises(ValueError, match=r"merge: the base weight is quantized \(Int8Tensor\).*"
                                         r"merge_and_unload\(dequantize=True\)"):
        model.merge_and_unload()
    assert torch.equal(_logits(model, batch), adapted)  # refused before anything changed
    plain = model.merge_and_unload(dequantize=True)
    q_proj = plain.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == "Linear" and type(q_proj.weight) is torch.nn.Parameter
    torch.testing.assert_close(_logits(plain, batch), adapted, rtol=1e-4, atol=1e-5)
