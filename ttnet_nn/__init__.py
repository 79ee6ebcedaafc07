"""ttnet_nn: tensor-train layers for PyTorch, built on the ``ttnet`` core.

- :class:`TTLinear`: a linear layer whose weight is a TT matrix (or LoRETTA's TT tensor).
- :class:`TTAdapter`: LoRETTA_adp, a bottleneck adapter with TT projections, identity at init.
- :class:`TTLoRA` / :class:`TTLoRAUpdate`: LoRETTA_rep, a LoRA update with TT factors.

Never imports transformers.

Example:
    >>> import torch
    >>> from ttnet_nn import TTLinear
    >>> TTLinear(384, 576, tt_rank=4)(torch.randn(8, 384)).shape
    torch.Size([8, 576])
"""

from .adapter import TTAdapter
from .linear import TTLinear, compute_dtype
from .lora import TTLoRA, TTLoRAUpdate

__all__ = ["TTAdapter", "TTLinear", "TTLoRA", "TTLoRAUpdate", "compute_dtype"]
