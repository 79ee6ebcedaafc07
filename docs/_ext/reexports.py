"""Resolve cross-references to a public name by the module that defines it.

Docstrings say ``:func:`ttnet.contraction.ttm_matvec``` or, inside ``ttnet.plans``, just
``:func:`factorize```, while the API reference documents the re-exported names
(``ttnet.ttm_matvec``, ``ttnet.factorize``). When a Python reference finds no target, this
handler retries with

1. the package name followed by the tail of the dotted path
   (``ttnet.contraction.ttm_matvec`` -> ``ttnet.ttm_matvec``), then
2. the one documented object of a fitting type in the same package whose name ends the same
   way (``TARGET_MODE`` -> ``ttnet.plans.TARGET_MODE``).
"""

from __future__ import annotations


def candidates(target: str) -> list[str]:
    """Re-exported spellings of ``target``, most specific first.

    Example:
        >>> candidates("ttnet.plans.MatrixPlan")
        ['ttnet.MatrixPlan']
        >>> candidates("ttnet.tensor_train.TensorTrain.round")
        ['ttnet.TensorTrain.round', 'ttnet.round']
    """
    parts = target.lstrip("~.").split(".")
    return [".".join([parts[0], *parts[k:]]) for k in range(2, len(parts))]


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node.get("reftarget", "").lstrip("~.")
    module = node.get("py:module") or ""
    full = target if "." in target or not module else f"{module}.{target}"
    names = [name for name in candidates(full) if name in domain.objects]
    if not names:
        types = set(domain.objtypes_for_role(node["reftype"]) or ())
        root, suffix = full.split(".")[0] + ".", "." + target
        names = [name for name, entry in domain.objects.items()
                 if name.startswith(root) and name.endswith(suffix) and entry.objtype in types]
        if len(names) != 1:
            return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], names[0],
                               node, contnode)


def setup(app):
    """Register the handler."""
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
