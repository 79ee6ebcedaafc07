"""The API reference covers every public name, and the docs' own extensions work."""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PACKAGES = ("ttnet", "ttnet_nn", "loretta")
DIRECTIVE = re.compile(r"^\.\. auto(?:class|function|data|module|attribute|exception)::\s+(\S+)",
                       re.MULTILINE)


def resolve(dotted: str) -> object:
    """Import ``a.b.C`` as the longest importable module prefix plus attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def documented() -> dict[str, object]:
    """``{directive target: object}`` for every autodoc directive of the API pages."""
    targets = {}
    for page in DOCS.glob("api*.rst"):
        for target in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            targets[target] = resolve(target)
    return targets


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    targets = documented()
    objects = list(targets.values())
    missing = [
        name for name in module.__all__
        if f"{package}.{name}" not in targets
        and not any(getattr(module, name) is obj for obj in objects)
    ]
    assert not missing, f"{package}: add to docs/api_{package}.rst: {missing}"


@pytest.mark.parametrize("name", ["inventories", "reexports"])
def test_docs_extension_docstrings(name: str, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    module = importlib.import_module(name)
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    finally:
        sys.modules.pop(name, None)
    assert result.failed == 0 and result.attempted > 0
