"""ttnet_nn: tensor-train layers for PyTorch, built on the ``ttnet`` core.

- :class:`TTLinear`: a linear layer whose weight is a TT matrix (or LoRETTA's TT tensor);
  its layouts are the types of :mod:`ttnet_nn.layout`.
- :class:`TTAdapter`: LoRETTA_adp, a bottleneck adapter with TT projections, identity at init.
- :class:`TTLoRA` / :class:`TTLoRAUpdate`: LoRETTA_rep, a LoRA update with TT factors; the
  update merges into and unmerges from any weight given its layout (``fan_in_fan_out``).
- :mod:`ttnet_nn.presets`: the LoRETTA paper's TT shapes.

Ranks: ``tt_rank`` sets a layer's TT ranks (constructors); ``max_rank`` caps them where a weight
is compressed (:meth:`TTLinear.from_linear`, :meth:`TTLinear.round_`), as in :func:`ttnet.tt_svd`.
Precision: :mod:`ttnet.precision` (parameters stored in the layer's dtype, computed in at least
float32). Never imports transformers.

Example:
    >>> import torch
    >>> from ttnet_nn import TTLinear
    >>> TTLinear(384, 576, tt_rank=4)(torch.randn(8, 384)).shape
    torch.Size([8, 576])
"""

from .adapter import TTAdapter
from .linear import TTLinear
from .lora import TTLoRA, TTLoRAUpdate

__all__ = ["TTAdapter", "TTLinear", "TTLoRA", "TTLoRAUpdate"]
