"""``SaveAdapterCallback``: every Trainer checkpoint is a loadable adapter folder.

A :class:`~loretta.LorettaModel` is a ``peft.PeftModel``, so the ``Trainer`` itself saves it
with :meth:`~loretta.LorettaModel.save_pretrained` (``adapter_config.json`` and
``adapter_model.safetensors`` per adapter, PEFT's layout) and resumes with ``load_adapter``.
This callback writes the adapters once more after the Trainer has finished a checkpoint
folder, refusing any model that is not a LorettaModel; it is kept for training scripts
written for earlier versions of this package, where the Trainer saved a state dict instead.

Example:
    >>> from loretta.callbacks import SaveAdapterCallback
    >>> callback = SaveAdapterCallback()  # Trainer(..., callbacks=[callback])
    >>> type(callback).__mro__[1].__name__
    'TrainerCallback'
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .model import LorettaModel

__all__ = ["SaveAdapterCallback"]


class SaveAdapterCallback(TrainerCallback):
    """Write the adapters' ``save_pretrained`` files into every ``checkpoint-N`` folder.

    Only the process that saves (``args.should_save``) writes; the Trainer's other files in
    the folder are kept (the write is atomic, see :meth:`~loretta.LorettaModel.save_pretrained`).
    """

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> TrainerControl:
        """Save the adapters of ``model`` into the checkpoint folder just written.

        Raises:
            TypeError: ``model`` is not a :class:`~loretta.LorettaModel`.
        """
        inner = getattr(model, "module", model)  # a DDP wrapper holds it as .module
        if not isinstance(inner, LorettaModel):
            raise TypeError(
                "SaveAdapterCallback: expected the Trainer's model to be a LorettaModel, "
                f"received {type(inner).__name__}"
            )
        if args.should_save:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            inner.save_pretrained(folder)
        return control
