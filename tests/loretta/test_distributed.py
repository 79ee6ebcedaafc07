"""HF Trainer (train, checkpoint, resume) and a real 2-process gloo DDP run."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from loretta import LorettaAdpConfig, LorettaRepConfig, get_peft_model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_processes_keep_parameters_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(worker), str(rank), "2", port, str(tmp_path)],
                              env=env, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    for method in ("adp", "rep"):
        first, second = (torch.load(tmp_path / f"rank{r}_{method}.pt") for r in range(2))
        assert first.keys() == second.keys() and len(first) > 0
        for name in first:
            assert torch.equal(first[name], second[name]), (method, name)


def _dataset(n=16):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 100, (n, 8), generator=gen)
    return [{"input_ids": row, "labels": row} for row in ids]


def _trainer(make_model, out_dir, max_steps=4):
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(0)
    model = get_peft_model(make_model("llama", layers=2).train(),
                           LorettaRepConfig(r=4, lora_dropout=0.1, train_norms=True))
    args = TrainingArguments(output_dir=str(out_dir), max_steps=max_steps, save_steps=2,
                             per_device_train_batch_size=4, learning_rate=1e-2, seed=0,
                             use_cpu=True, report_to=[], logging_steps=1, disable_tqdm=True,
                             remove_unused_columns=False, dataloader_num_workers=0)
    return model, Trainer(model=model, args=args, train_dataset=_dataset())


def _adapter(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_trainer_trains_checkpoints_and_resumes(make_model, tmp_path):
    model, trainer = _trainer(make_model, tmp_path / "run")
    start = _adapter(model)
    trainer.train()
    assert trainer.state.global_step == 4
    final = _adapter(model)
    assert any(not torch.equal(start[n], final[n]) for n in start)
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    # A fresh process resumes from checkpoint-2 and ends where the uninterrupted run ended.
    resumed, trainer = _trainer(make_model, tmp_path / "run")
    trainer.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    again = _adapter(resumed)
    for name in final:
        torch.testing.assert_close(again[name], final[name], rtol=1e-5, atol=1e-6)
    # The adapter of the trained model saves as usual next to the checkpoints.
    resumed.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_trainer_with_adp_seq_cls(make_model, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = get_peft_model(make_model("bert"), LorettaAdpConfig(
        bottleneck_size=8, task_type="SEQ_CLS", preset="paper"))
    data = [{"input_ids": d["input_ids"], "labels": torch.tensor(i % 2)}
            for i, d in enumerate(_dataset())]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                             use_cpu=True, report_to=[], disable_tqdm=True, save_strategy="no",
                             remove_unused_columns=False)
    result = Trainer(model=model, args=args, train_dataset=data).train()
    assert result.global_step == 2 and result.training_loss > 0
