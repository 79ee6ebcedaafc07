"""The dense route on torch as one autograd node: TT factors built, multiplied and differentiated
by straight-line code compiled once per plan.

Imported by :mod:`ttnet._torch` (so never at ``import ttnet``) and by :mod:`ttnet_nn`.

- :class:`Factor`: how one TT factor's matrix ``V`` (``in x out``, so that the product is
  ``h @ V``) is built from its cores: the chain of :func:`ttnet.dense.chain` and, where the
  layout needs it, one gather (an ``index_select`` with an index made once) that reorders the
  chain's interleaved modes and yields ``V`` contiguous, the orientation whose matrix product
  runs fastest; its backward gathers ``dV`` (or ``dV.T``, whichever product is faster) back and
  runs :func:`ttnet.dense.chain_backward`.
- :class:`ProductsPlan`: a sequence of such products, each with an optional bias, scale and
  elementwise map after it, and an optional residual ``+ x`` (a LoRA update ``s B(A x)``, a
  bottleneck adapter ``x + s up(act(down x))``, a linear layer). At a few dozen rows a step is
  a few dozen small torch calls, and the Python around them costs as much again when it loops
  over stages and cores, checks options and calls helpers; so the plan writes its forward and
  backward out as straight-line Python source -- every shape, view, index and option fixed --
  and compiles it once (as ``torch.fx`` does for graphs).
- :class:`Products`: the autograd node; :func:`run_products` picks it or the plain forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ttnet import dense

__all__ = ["Factor", "Map", "Products", "ProductsPlan", "Stage", "factor", "run_products"]


class Factor:
    """The dense route of one planned TT-matrix product on torch (sizes and indices only).

    ``V`` is the product's matrix as ``(in, out)`` (``W.T`` for ``x @ W.T``, ``W`` for
    ``x @ W``), built contiguous: ``h @ V`` is the matrix product's fastest form on CPU (MKL,
    measured; ``benchmarks/RESULTS.md``). The gradient of ``V`` is formed as ``dV`` or ``dV.T``,
    whichever has the smaller side as its rows (again the faster product), and gathered straight
    into the chain's interleaved order.

    Args:
        spec: How ``W`` is built from its cores (:func:`ttnet.dense.build_spec`).
        matvec: True for ``x @ W.T``, False for ``x @ W``.
        core_shapes: The shapes of the core tensors as passed (a TT tensor's cores are 3-D;
            their entries are those of the 4-D TT-matrix cores of ``spec``).

    Example:
        >>> from ttnet.dense import build_spec
        >>> f = Factor(build_spec(((1, 2, 3, 2), (2, 4, 5, 1))), True, ((1, 2, 3, 2), (2, 4, 5, 1)))
        >>> f.shape, f.grad_transposed, f.mat_shapes
        ((15, 8), True, ((-1, 2), (2, 20)))
    """

    def __init__(self, spec: dense.BuildSpec, matvec: bool,
                 core_shapes: Sequence[Sequence[int]]) -> None:
        self.spec = spec
        rows, cols = spec.size
        self.shape = (cols, rows) if matvec else (rows, cols)
        self.core_shapes = tuple(tuple(int(n) for n in s) for s in core_shapes)
        #: The cores as the chain's matrices: the first ``(p_1, r_1)``, the others
        #: ``(r_{k-1}, p_k r_k)`` (:func:`ttnet.dense.matrices`).
        self.mat_shapes = tuple((s[0], s[1]) if k else (-1, s[2])
                                for k, s in enumerate(spec.steps))
        #: Whether the gradient is formed as ``dV.T`` (``out x in``) rather than ``dV``.
        self.grad_transposed = self.shape[0] > self.shape[1]
        #: Gather into ``V`` and back (None: a view does).
        self.forward_index = dense.reorder_index(spec.shapes, matvec)
        self.backward_index = dense.reorder_index(spec.shapes, matvec != self.grad_transposed,
                                                  True)


@lru_cache(maxsize=256)
def factor(spec: dense.BuildSpec, matvec: bool, core_shapes: tuple) -> Factor:
    """The :class:`Factor` of these arguments, shared (its gather indices are made once).

    Example:
        >>> from ttnet.dense import build_spec
        >>> spec = build_spec(((1, 2, 3, 1),))
        >>> factor(spec, True, ((1, 2, 3, 1),)) is factor(spec, True, ((1, 2, 3, 1),))
        True
    """
    return Factor(spec, matvec, core_shapes)


class Map(Protocol):
    """An elementwise map between two products (an activation) with its derivative.

    ``forward(a)`` returns ``h`` (and may overwrite ``a``); ``backward(g, a, h)`` returns the
    gradient with respect to ``a`` from ``g``, the gradient with respect to ``h``. A map whose
    backward reads only ``h`` sets ``needs_input`` False (``a`` is then not kept).
    """

    needs_input: bool

    def forward(self, a: torch.Tensor) -> torch.Tensor: ...

    def backward(self, g: torch.Tensor, a: torch.Tensor | None,
                 h: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Stage:
    """One product of a :class:`ProductsPlan`: ``h -> map(scale * (h @ V) + bias_scale * bias)``.

    Attributes:
        factor: How ``V`` is built (:class:`Factor`).
        bias: Whether a bias tensor follows the stage's cores among the node's inputs.
        scale: The factor on ``h @ V``.
        bias_scale: The factor on the bias.
        map: The elementwise map applied last, or None (the last stage has none).
    """

    factor: Factor
    bias: bool = False
    scale: float = 1.0
    bias_scale: float = 1.0
    map: Map | None = None


_ZEROS: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _zero(x: torch.Tensor) -> torch.Tensor:
    """A 0-d zero of ``x``'s dtype and device: the ignored input of ``addmm(..., beta=0)``,
    which carries a scale on the product's ``alpha`` at no extra call."""
    key = (x.dtype, x.device)
    zero = _ZEROS.get(key)
    if zero is None:
        zero = _ZEROS[key] = torch.zeros((), dtype=x.dtype, device=x.device)
    return zero


@dataclass(frozen=True, eq=False)
class ProductsPlan:
    """A sequence of dense products run as one autograd node (:func:`run_products`).

    ``x`` goes through each :class:`Stage` in turn; with ``residual`` the input is added to the
    last stage's result. The node's inputs after ``x`` are each stage's cores, then its bias.
    Everything that depends on shapes is fixed here, once: the forward and backward as compiled
    straight-line code (:attr:`source`), the gather indices (per device) and the cores' matrix
    views (kept between calls while the cores keep their storage; in-place updates show
    through them).

    Example:
        >>> from ttnet.dense import build_spec, ttm_dense
        >>> shapes = ((1, 2, 3, 2), (2, 4, 5, 1))
        >>> plan = ProductsPlan((Stage(Factor(build_spec(shapes), True, shapes), scale=2.0),))
        >>> cores = [torch.randn(s) for s in shapes]
        >>> x = torch.randn(7, 15, requires_grad=True)
        >>> y = run_products(plan, x, cores)
        >>> torch.allclose(y, 2 * x @ ttm_dense(cores).T), y.grad_fn.name()
        (True, 'ProductsBackward')
    """

    stages: tuple[Stage, ...]
    residual: bool = False
    in_size: int = field(init=False)
    out_size: int = field(init=False)
    #: The generated source of ``forward``, ``backward`` and ``apply`` (for reading).
    source: str = field(init=False, repr=False)
    _code: dict[str, Callable[..., Any]] = field(init=False, repr=False)
    _cache: dict[str, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Check that the sizes chain; write and compile the code."""
        for prev, stage in zip(self.stages, self.stages[1:]):
            if prev.factor.shape[1] != stage.factor.shape[0]:
                raise ValueError(f"stages: sizes do not chain: {prev.factor.shape} then "
                                 f"{stage.factor.shape}")
        first, last = self.stages[0].factor.shape, self.stages[-1].factor.shape
        if self.stages[-1].map is not None:
            raise ValueError("stages: the last stage must have no map")
        if self.residual and first[0] != last[1]:
            raise ValueError(f"residual: the output size {last[1]} must equal the input size "
                             f"{first[0]}")
        object.__setattr__(self, "in_size", first[0])
        object.__setattr__(self, "out_size", last[1])
        source, namespace = _write(self)
        # the source holds only integers, indices and names of our own (scales are globals)
        exec(compile(source, f"<ttnet products plan {id(self):#x}>", "exec"), namespace)  # noqa: S102
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "_code", {k: namespace[k] for k in
                                           ("forward", "backward", "apply")})

    def views(self, tensors: Sequence[torch.Tensor]) -> tuple[list, list]:
        """The cores as the chain's matrices and their transposes, flat over the stages; kept
        while every core keeps its storage (non-contiguous cores, whose matrices are copies,
        are viewed afresh on every call)."""
        key = [t.data_ptr() for t in tensors]
        cached = self._cache.get("views")
        if cached is not None and cached[0] == key:
            return cached[1]
        mats = []
        at = 0
        for stage in self.stages:
            shapes = stage.factor.mat_shapes
            mats += [t.reshape(s) for t, s in zip(tensors[at : at + len(shapes)], shapes)]
            at += len(shapes) + stage.bias
        views = (mats, [m.t() for m in mats])
        if all(t.is_contiguous() for t in tensors):
            self._cache["views"] = (key, views)
        return views

    def indices(self, device: torch.device) -> list[torch.Tensor | None]:
        """Per stage the forward and backward gather indices on ``device`` (None: a view)."""
        cached = self._cache.get("indices")
        if cached is None or cached[0] != device:
            cached = self._cache["indices"] = (device, [
                None if i is None else torch.from_numpy(i).to(device)
                for stage in self.stages
                for i in (stage.factor.forward_index, stage.factor.backward_index)
            ])
        return cached[1]


def _write(plan: ProductsPlan) -> tuple[str, dict[str, Any]]:
    """The source of the plan's ``forward``, ``backward`` and ``apply``, and their globals."""
    namespace: dict[str, Any] = {"mm": torch.mm, "addmm": torch.addmm, "linear": F.linear}
    fwd = ["def forward(x, t, m, ix, zero):"]
    app = ["def apply(x, t, v, zero):"]
    bwd = ["def backward(g, x, st, m, mt, ix, zero, need):"]
    saved, grads, body = [], [], []
    h, at, core, last = "x", 0, 0, len(plan.stages) - 1
    for i, stage in enumerate(plan.stages):
        f = stage.factor
        d = len(f.core_shapes)
        b = at + d if stage.bias else None
        namespace[f"S{i}"], namespace[f"B{i}"] = stage.scale, stage.bias_scale
        if stage.map is not None:
            namespace[f"M{i}"] = stage.map
        # build V_i: the chain of core matrices m[core..core+d-1], then the gather
        prev, prefixes = f"m[{core}]", []
        for k in range(1, d):
            product = f"mm({prev}, m[{core + k}])"
            if k < d - 1:
                prev = f"p{i}_{k}"
                prefixes.append(prev)
                fwd.append(f"    {prev} = {product}.view(-1, {f.spec.steps[k][2]})")
            else:
                prev = product
        if f.forward_index is None:
            fwd.append(f"    v{i} = {prev}.view{f.shape}")
        else:
            fwd.append(f"    v{i} = {prev}.view(-1).index_select(0, ix[{2 * i}]).view{f.shape}")
        saved += [h, f"v{i}", *prefixes]
        # the product
        for lines, v in ((fwd, f"v{i}"), (app, f"v[{i}]")):
            lines.extend(_product(stage, i, h, v, b, plan.residual and i == last))
        if stage.map is not None:
            for lines in (fwd, app):
                lines.append(f"    o{i} = M{i}.forward(a{i})")
            saved += ([f"a{i}"] if stage.map.needs_input else []) + [f"o{i}"]
        body.append(_backward_stage(plan, i, h, prefixes, at, core))
        grads += [f"d{at + k}" for k in range(d)] + ([f"d{b}"] if b is not None else [])
        h = f"o{i}" if stage.map is not None else f"a{i}"
        at += d + stage.bias
        core += d
    fwd.append(f"    return {h}, ({', '.join(saved)},)")
    app.append(f"    return {h}")
    bwd.append(f"    {', '.join(saved)}, = st")
    bwd.append(f"    dx = {' = '.join(grads)} = None")
    bwd.append("    gy = g")
    for lines in reversed(body):
        bwd.extend(lines)
    bwd.append(f"    return dx, {', '.join(grads)}")
    return "\n".join(fwd + [""] + bwd + [""] + app) + "\n", namespace


def _scaled(a: str, b: str, scale: float, i: int) -> str:
    """Source of ``scale * (a @ b)`` in one call (``scale`` is stage ``i``'s)."""
    return f"mm({a}, {b})" if scale == 1.0 else f"addmm(zero, {a}, {b}, beta=0, alpha=S{i})"


def _product(stage: Stage, i: int, h: str, v: str, b: int | None, residual: bool) -> list[str]:
    """Source of stage ``i``'s product ``a_i`` from its input ``h`` and matrix ``v``."""
    if residual:
        lines = [f"    a{i} = addmm(x, {h}, {v}, alpha=S{i})"]
        if b is not None:
            lines.append(f"    a{i}.add_(t[{b}], alpha=B{i})")
        return lines
    if b is not None:
        return [f"    a{i} = addmm(t[{b}], {h}, {v}, beta=B{i}, alpha=S{i})"]
    return [f"    a{i} = {_scaled(h, v, stage.scale, i)}"]


def _backward_stage(plan: ProductsPlan, i: int, h: str, prefixes: list[str], at: int,
                    core: int) -> list[str]:
    """Source of stage ``i``'s backward: ``g`` (w.r.t. its output) to its cores', bias' and
    input's gradients."""
    stage = plan.stages[i]
    f, s, d = stage.factor, stage.scale, len(stage.factor.core_shapes)
    lines = []
    if stage.map is not None:
        a = f"a{i}" if stage.map.needs_input else "None"
        lines.append(f"    g = M{i}.backward(g, {a}, o{i})")
    need = " or ".join(f"need[{2 + at + k}]" for k in range(d))
    lines.append(f"    if {need}:")
    dv = _scaled("g.t()", h, s, i) if f.grad_transposed else _scaled(f"{h}.t()", "g", s, i)
    width = f.spec.steps[-1][1]
    if f.backward_index is None:
        lines.append(f"        dq = {dv}.view(-1, {width})")
    else:
        lines.append(f"        dq = {dv}.view(-1).index_select(0, ix[{2 * i + 1}])"
                     f".view(-1, {width})")
    for k in range(d - 1, 0, -1):  # dense.chain_backward, written out
        pt = f"mt[{core}]" if k == 1 else f"{prefixes[k - 2]}.t()"
        lines.append(f"        d{at + k} = mm({pt}, dq).view{f.core_shapes[k]}")
        lines.append(f"        dq = mm(dq, mt[{core + k}])")
        if k > 1:
            lines.append(f"        dq = dq.view(-1, {f.spec.steps[k - 1][1]})")
    lines.append(f"        d{at} = dq.view{f.core_shapes[0]}")
    if stage.bias:
        b = at + d
        sum_ = "g.sum(0)" if stage.bias_scale == 1.0 else f"g.sum(0).mul_(B{i})"
        lines.append(f"    if need[{2 + b}]:")
        lines.append(f"        d{b} = {sum_}")
    back = f"linear(g, v{i})" if s == 1.0 else _scaled("g", f"v{i}.t()", s, i)
    if i > 0:
        lines.append(f"    g = {back}")
    else:
        if plan.residual:
            back = "addmm(gy, g, v0.t(), alpha=S0)"
        lines.append("    if need[0]:")
        lines.append(f"        dx = {back}")
    return lines


class Products(torch.autograd.Function):
    """The products of a :class:`ProductsPlan` as one autograd node, its backward written out:
    per stage ``dV = h^T g`` (or its transpose), the bias gradient ``sum(g)``, ``g @ V^T`` for
    the stage before, and the cores' gradients by the chain's backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, plan: ProductsPlan, *tensors: torch.Tensor
    ) -> torch.Tensor:
        """Run the plan on ``x`` of shape ``(..., in_size)``; keep what the backward needs."""
        flat = x if x.ndim == 2 else x.reshape(-1, plan.in_size)
        mats, transposes = plan.views(tensors)
        ix = plan.indices(x.device)
        zero = _zero(x)
        y, ctx.st = plan._code["forward"](flat, tensors, mats, ix, zero)
        ctx.save_for_backward(x, *tensors)  # inputs: autograd checks they are not modified
        ctx.plan, ctx.run = plan, (mats, transposes, ix, zero)
        return y if x.ndim == 2 else y.view(*x.shape[:-1], plan.out_size)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Gradients of ``x`` and of every core and bias (in their shapes)."""
        if torch.is_grad_enabled():
            raise RuntimeError("ttnet's dense products are differentiable once: a backward "
                               "with create_graph=True is not supported")
        x = ctx.saved_tensors[0]
        plan = ctx.plan
        g = (dy if dy.ndim == 2 else dy.reshape(-1, plan.out_size)).contiguous()
        mats, transposes, ix, zero = ctx.run
        flat = x if x.ndim == 2 else x.reshape(-1, plan.in_size)
        dx, *grads = plan._code["backward"](g, flat, ctx.st, mats, transposes, ix, zero,
                                             ctx.needs_input_grad)
        if dx is not None and x.ndim != 2:
            dx = dx.view(x.shape)
        return (dx, None, *grads)


def run_products(
    plan: ProductsPlan, x: torch.Tensor, tensors: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """``x`` through ``plan``: one :class:`Products` node where a gradient is needed, else the
    plain products (with ``weights``, the stages' built ``V`` matrices, reused as they are).

    ``tensors`` are the stages' cores and biases in order, in one dtype with ``x`` (the
    caller casts: :mod:`ttnet.precision`).
    """
    if weights is None:
        if torch.is_grad_enabled() and (x.requires_grad
                                        or any(t.requires_grad for t in tensors)):
            return Products.apply(x, plan, *tensors)
        with torch.no_grad():
            mats, _ = plan.views(tensors)
            flat = x if x.ndim == 2 else x.reshape(-1, plan.in_size)
            y, _ = plan._code["forward"](flat, tensors, mats, plan.indices(x.device),
                                         _zero(x))
    else:
        flat = x if x.ndim == 2 else x.reshape(-1, plan.in_size)
        y = plan._code["apply"](flat, tensors, weights, _zero(x))
    return y if x.ndim == 2 else y.view(*x.shape[:-1], plan.out_size)
