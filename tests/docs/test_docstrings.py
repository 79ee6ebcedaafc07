"""The ``Example:`` doctests of every module of ttnet, ttnet_nn and loretta (its demo
subpackage included) run.

The API reference shows these examples, so they are part of the documentation. This is the
suite's form of ``python -m pytest --doctest-modules --pyargs ttnet ttnet_nn loretta`` (same
option flags: ``ELLIPSIS``), one test per module.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

PACKAGES = ("ttnet", "ttnet_nn", "loretta")


def module_names(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every module of ``packages`` and their subpackages (``__main__`` excluded), found
    without importing."""
    names = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        names.append(package)
        for info in pkgutil.iter_modules(spec.submodule_search_locations):
            if info.ispkg:
                names += module_names((f"{package}.{info.name}",))
            elif info.name != "__main__":
                names.append(f"{package}.{info.name}")
    return names


def test_every_demo_module_is_covered():
    assert {f"loretta.demo.{name}" for name in (
        "cli", "data", "engine", "experiment", "methods", "models", "multitask", "report",
        "runs", "stats", "study", "summaries")} <= set(module_names())


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
