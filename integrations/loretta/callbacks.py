"""``SaveAdapterCallback``, for training scripts written for earlier versions of this package.

A :class:`~loretta.LorettaModel` is a ``peft.PeftModel``, so the ``Trainer`` saves every
checkpoint with :meth:`~loretta.LorettaModel.save_pretrained` (an adapter folder in PEFT's
layout) and resumes with ``load_adapter`` by itself. The callback writes the adapters once more
after the Trainer has finished a checkpoint folder (keeping its other files) and refuses a
model that is not a LorettaModel.

Example:
    >>> from loretta.callbacks import SaveAdapterCallback
    >>> callback = SaveAdapterCallback()  # Trainer(..., callbacks=[callback])
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .model import LorettaModel

__all__ = ["SaveAdapterCallback"]


class SaveAdapterCallback(TrainerCallback):
    """Write the adapters' ``save_pretrained`` files into every ``checkpoint-N`` folder (on the
    process that saves, ``args.should_save``)."""

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                model: Any = None, **kwargs: Any) -> TrainerControl:
        """Save ``model``'s adapters into the checkpoint folder just written; TypeError if it
        is not a :class:`~loretta.LorettaModel` (or a DDP wrapper of one)."""
        inner = getattr(model, "module", model)
        if not isinstance(inner, LorettaModel):
            raise TypeError("SaveAdapterCallback: expected the Trainer's model to be a "
                            f"LorettaModel, received {type(inner).__name__}")
        if args.should_save:
            inner.save_pretrained(os.path.join(args.output_dir,
                                               f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"))
        return control
