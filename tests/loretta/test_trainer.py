"""HF Trainer and accelerate: train, checkpoint (the adapter only), resume exactly.

The Trainer saves a LorettaModel, a ``peft.PeftModel``, with ``save_pretrained`` (adapter files,
PEFT's layout) and resumes with ``load_adapter``. accelerate saves ``state_dict()`` in
``model.safetensors`` and resumes with ``load_state_dict``; a LorettaModel's state dict is its
adapter state, so tied-weight models (GPT-2, a tied-embedding Llama) checkpoint too.
"""

import pytest
import torch
from safetensors.torch import load_file

from loretta import LorettaAdpConfig, LorettaModel, LorettaRepConfig, get_peft_model

MODELS = {"llama-tied": ("llama", {"tie_word_embeddings": True}), "gpt2": ("gpt2", {})}
CONFIGS = {
    "adp": lambda: LorettaAdpConfig(bottleneck_size=8, tensor_rank=3, adapter_dropout=0.1,
                                    train_norms=True),
    "rep": lambda: LorettaRepConfig(r=4, tensor_rank=3, lora_dropout=0.1, bias="loretta_only"),
}


def _dataset(n=16):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 100, (n, 8), generator=gen)
    return [{"input_ids": row, "labels": row} for row in ids]


def _peft_model(make_model, model, method):
    model_type, overrides = MODELS[model]
    base = make_model(model_type, layers=2, **overrides)
    assert base.get_output_embeddings().weight is base.get_input_embeddings().weight  # tied
    torch.manual_seed(0)
    return get_peft_model(base.train(), CONFIGS[method]())


def _trainer(peft, out_dir, callbacks=None):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(out_dir), max_steps=4, save_steps=2,
                             per_device_train_batch_size=4, learning_rate=1e-2, seed=0,
                             use_cpu=True, report_to=[], disable_tqdm=True,
                             remove_unused_columns=False, dataloader_num_workers=0)
    return Trainer(model=peft, args=args, train_dataset=_dataset(), callbacks=callbacks)


def _trainable(peft):
    return {n: p.detach().clone() for n, p in peft.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", sorted(CONFIGS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_trainer_checkpoints_only_the_adapter_and_resumes_exactly(make_model, batch, tmp_path,
                                                                  model, method):
    peft = _peft_model(make_model, model, method)
    start = _trainable(peft)
    trainer = _trainer(peft, tmp_path / "run")
    trainer.train()
    assert trainer.state.global_step == 4
    final = _trainable(peft)
    assert any(not torch.equal(start[n], final[n]) for n in start)

    # The checkpoint is an adapter folder holding exactly the trained tensors, no base weights.
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert not (checkpoint / "model.safetensors").exists()
    saved = load_file(checkpoint / "adapter_model.safetensors")
    assert len(saved) == len(final)
    assert sum(t.numel() for t in saved.values()) == sum(t.numel() for t in final.values())

    # A fresh model and Trainer resume from checkpoint-2 and end where the full run ended.
    resumed = _peft_model(make_model, model, method)
    _trainer(resumed, tmp_path / "run").train(resume_from_checkpoint=str(checkpoint))
    again = _trainable(resumed)
    assert again.keys() == final.keys()
    for name in final:
        assert torch.equal(again[name], final[name]), name

    # The last checkpoint loads as the trained adapter.
    loaded = LorettaModel.from_pretrained(make_model(MODELS[model][0], layers=2,
                                                     **MODELS[model][1]),
                                          tmp_path / "run" / "checkpoint-4")
    peft.eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, peft(**batch).logits)


def test_save_adapter_callback_makes_checkpoints_loadable_adapters(make_model, batch, tmp_path):
    from loretta.callbacks import SaveAdapterCallback

    peft = _peft_model(make_model, "gpt2", "rep")
    peft.add_adapter("other", LorettaRepConfig(r=2, tensor_rank=2))
    _trainer(peft, tmp_path / "run", callbacks=[SaveAdapterCallback()]).train()
    for step in (2, 4):
        folder = tmp_path / "run" / f"checkpoint-{step}"
        assert (folder / "adapter_config.json").is_file()
        assert (folder / "other" / "adapter_model.safetensors").is_file()  # every adapter
        assert (folder / "trainer_state.json").is_file()  # the Trainer's files are kept
    loaded = LorettaModel.from_pretrained(make_model("gpt2", layers=2), tmp_path / "run" /
                                          "checkpoint-4")
    peft.eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, peft(**batch).logits)


def test_save_adapter_callback_rejects_a_plain_model(make_model, tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from loretta.callbacks import SaveAdapterCallback

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    with pytest.raises(TypeError, match="expected the Trainer's model to be a LorettaModel, "
                                        "received GPT2LMHeadModel"):
        SaveAdapterCallback().on_save(args, TrainerState(), TrainerControl(),
                                      model=make_model("gpt2", layers=2))


def test_state_dict_is_the_adapter_and_loads_strictly(make_model):
    peft = get_peft_model(make_model("llama", layers=2, tie_word_embeddings=True),
                          LorettaRepConfig(r=4, bias="all", modules_to_save=["lm_head"]))
    peft.add_adapter("other", LorettaRepConfig(r=2, tensor_rank=2))
    state = peft.state_dict()
    trainable = {n for n, p in peft.named_parameters() if p.requires_grad}
    assert trainable < set(state)  # the inactive adapter is saved too
    assert {n for n in state if ".other." in n} and all(
        ".loretta_" in n or ".modules_to_save." in n or n.endswith(".bias") for n in state)
    assert "base_model.model.embed_tokens.weight" not in state
    fresh = get_peft_model(make_model("llama", layers=2, tie_word_embeddings=True),
                           LorettaRepConfig(r=4, bias="all", modules_to_save=["lm_head"]))
    fresh.add_adapter("other", LorettaRepConfig(r=2, tensor_rank=2))
    with torch.no_grad():
        for value in state.values():
            value.add_(1.0)  # detached views of the live tensors: the source model moves too
    assert str(fresh.load_state_dict(state)) == "<All keys matched successfully>"
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
    incomplete = dict(state)
    incomplete.pop(next(k for k in state if ".other." in k))
    with pytest.raises(RuntimeError, match="Missing key.*other"):
        fresh.load_state_dict(incomplete)
    # Wrapped in another module (as DDP does), the frozen base is still not "missing".
    outer = torch.nn.ModuleDict({"module": fresh})
    assert set(outer.state_dict()) == {f"module.{k}" for k in state}
    outer.load_state_dict(outer.state_dict())


def test_accelerate_prepare_save_state_and_load_state(make_model, tmp_path):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    accelerator = Accelerator(cpu=True)
    try:
        peft = _peft_model(make_model, "llama-tied", "rep")
        optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=1e-2)
        model, optimizer = accelerator.prepare(peft, optimizer)
        assert accelerator.unwrap_model(model) is peft

        def step(ids):
            loss = model(input_ids=ids, labels=ids).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()

        data = torch.stack([d["input_ids"] for d in _dataset(12)]).split(4)
        torch.manual_seed(1)
        step(data[0])
        accelerator.save_state(str(tmp_path / "state"))
        saved = load_file(tmp_path / "state" / "model.safetensors")
        assert set(saved) == set(_trainable(peft))
        snapshot = _trainable(peft)
        step(data[1])
        accelerator.load_state(str(tmp_path / "state"))
        assert all(torch.equal(p, snapshot[n]) for n, p in _trainable(peft).items())
        step(data[1])  # training goes on from the restored state
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def test_trainer_seq_cls_paper_preset_checkpoints_head_pooler_and_norms(make_model, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = get_peft_model(make_model("bert"), LorettaAdpConfig(
        bottleneck_size=8, task_type="SEQ_CLS", preset="paper"))
    data = [{"input_ids": d["input_ids"], "labels": torch.tensor(i % 2)}
            for i, d in enumerate(_dataset())]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                             use_cpu=True, report_to=[], disable_tqdm=True, save_steps=2,
                             remove_unused_columns=False)
    result = Trainer(model=model, args=args, train_dataset=data).train()
    assert result.global_step == 2 and result.training_loss > 0
    saved = load_file(tmp_path / "checkpoint-2" / "adapter_model.safetensors")
    assert len(saved) == len(_trainable(model))
    for part in ("classifier.weight", "pooler.dense.loretta_pooler.cores", "LayerNorm.weight"):
        assert any(part in k for k in saved), part
