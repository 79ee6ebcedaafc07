"""``SaveAdapterCallback``: Trainer checkpoints that load like saved adapters.

The ``Trainer`` saves a model that is not a ``PreTrainedModel`` as its ``state_dict`` in
``checkpoint-N/model.safetensors`` (for a :class:`~loretta.LorettaModel` that is the adapter
state, enough to resume). With this callback every checkpoint folder also gets
:meth:`~loretta.LorettaModel.save_pretrained`'s files (``adapter_config.json`` and
``adapter_model.safetensors``, PEFT's layout), so ``LorettaModel.from_pretrained(base,
"out/checkpoint-N")`` loads it directly, as with PEFT.

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

    Only the process that saves (``args.should_save``) writes; the files are written
    atomically, like :meth:`~loretta.LorettaModel.save_pretrained`.
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
