"""A module's TT factors run as one autograd node: the fast path of adapters and LoRA updates.

A :class:`ttnet_nn.TTAdapter` is ``x + s * up(act(down(x)))`` and a
:class:`ttnet_nn.TTLoRAUpdate` is ``s * B(A(x))``. Where every factor's plan runs the dense
route at the input's row count, :func:`run_branch` runs the whole branch -- each factor's
matrix built from its cores, the products, biases, activation, scale and residual -- as one
:class:`ttnet._torch.Products` node with a written-out backward; in eval mode without gradients
it reuses each factor's built matrix (:meth:`ttnet_nn._plans.LayerPlans.matrix`), so inference
costs what the dense bottleneck costs. Elsewhere (a factor on its TT network, a padded layout,
hooks on a factor, ``torch.compile``) it returns None and the module calls its factors one by
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.modules import module as _module

from ttnet import compute_dtype, default_cost_model
from ttnet._torch_products import run_products
from ttnet.cost import NO_COST, copy_cost

from ._plans import BranchPlans, products_plan
from .linear import TTLinear

_WIDE = (torch.float32, torch.float64)


def hooked(*modules: torch.nn.Module) -> bool:
    """Whether a hook (global, or on one of ``modules``) expects the modules to be called."""
    if (_module._global_forward_hooks or _module._global_forward_pre_hooks
            or _module._global_backward_hooks or _module._global_backward_pre_hooks):
        return True
    for m in modules:
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or \
                m._backward_pre_hooks:
            return True
    return False


def run_branch(
    plans: BranchPlans, factors: Sequence[TTLinear], stages: Sequence[dict[str, Any]],
    x: torch.Tensor, inputs: torch.Tensor, residual: bool, training: bool,
) -> torch.Tensor | None:
    """``inputs`` through ``factors`` as one node (plus ``x`` with ``residual``), or None.

    Args:
        plans: The module's cache.
        factors: The TT layers in order; their biases are used where a stage asks for one.
        stages: Per factor the :class:`ttnet._torch_products.Stage` options (``bias``,
            ``scale``, ``bias_scale``, ``map``).
        x: The module's input (its shape and dtype are the output's).
        inputs: What the first factor reads (``x``, or ``x`` after dropout).
        residual: Whether ``inputs`` (then ``x`` itself) is added to the result.
        training: The module's training flag.

    Returns:
        The branch's output in ``x``'s dtype, or None where the fused path does not apply.
    """
    if torch.compiler.is_compiling() or hooked(*factors):
        return None
    inference = not (training or torch.is_grad_enabled())
    tensors: list[torch.Tensor] = []
    cores = []
    held: list[object] = []
    for f, options in zip(factors, stages):
        own = f._core_list()
        cores.append(own)
        tensors += own
        if options.get("bias"):
            tensors.append(f.bias)
        held.append(f.cost_model)
    key = (x.numel() // factors[0].in_features, inference, residual, x.device.type)
    plan = plans.get(key, tensors + held, lambda: _plan(factors, stages, cores, key))
    if plan is None:
        return None
    dtype = inputs.dtype
    if dtype not in _WIDE or not all(t.dtype == dtype for t in tensors):
        dtype = compute_dtype(inputs, *tensors)
        inputs = inputs.to(dtype)
        tensors = [t.to(dtype) for t in tensors]
    weights = None
    if inference:
        weights = [f._matrix(own, dtype) for f, own in zip(factors, cores)]
    y = run_products(plan, inputs, tensors, weights)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def _plan(factors: Sequence[TTLinear], stages: Sequence[dict[str, Any]],
          cores: list[list[torch.Tensor]], key: tuple[int, bool, bool, str]) -> Any:
    """The :class:`ttnet._torch_products.ProductsPlan` of the factors for ``key`` (rows,
    inference, residual, device kind), or None.

    Inference: where every factor reuses its built matrix (its plan models one product with it
    no slower than its TT network). Training: where the cost model puts the whole branch as one
    node (each factor's dense route, one recorded call in all) no slower than each factor on
    its own cheaper route plus the pass over each factor's output (bias, activation, scale or
    residual) that the node folds into its products.
    """
    rows, inference, residual, kind = key
    models = [f.cost_model or default_cost_model(kind) for f in factors]
    entries = [f._entry(own, rows, model) for f, own, model in zip(factors, cores, models)]
    if any(e[4] is None for e in entries):
        return None
    if inference:
        if not all(e[3] for e in entries):
            return None
    else:
        infos = [e[2].info for e in entries]
        together = sum((i.dense_cost for i in infos), NO_COST)._replace(calls=1)
        apart = sum(min(m.seconds(i.tt_cost), m.seconds(i.dense_cost))
                    + m.seconds(copy_cost(rows * f.out_features))
                    for i, m, f in zip(infos, models, factors))
        if models[0].seconds(together) > apart:
            return None
    return products_plan([e[4] for e in entries], stages, residual)
