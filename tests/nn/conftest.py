"""Helpers shared by the layer tests (fixtures only: tests import nothing from this file)."""

import pytest
import torch
from torch.func import functional_call


def _gradcheck(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """gradcheck (float64) w.r.t. the input and every trainable parameter of ``module``."""
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    named = dict(module.named_parameters())
    params = tuple(named[n].detach().clone().requires_grad_() for n in names)

    def fn(inp, *values):
        return functional_call(module, dict(zip(names, values)), (inp,))

    return torch.autograd.gradcheck(fn, (x.requires_grad_(), *params), eps=1e-6, atol=1e-6)


@pytest.fixture
def gradcheck_module():
    """Return a function running float64 gradcheck over a module's input and parameters."""
    return _gradcheck


@pytest.fixture(scope="session")
def conv1d_class():
    """transformers' GPT-2 ``Conv1D`` (skips when transformers is not installed)."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    return pytorch_utils.Conv1D
