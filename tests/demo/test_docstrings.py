"""The ``Example:`` doctests of every module of ``loretta.demo`` run (tests/docs covers the
top-level modules of the three packages; the demo is a subpackage)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

NAMES = [f"loretta.demo.{info.name}" for info in pkgutil.iter_modules(
    importlib.util.find_spec("loretta.demo").submodule_search_locations)]


def test_every_demo_module_is_covered():
    assert {"cli", "data", "engine", "experiment", "methods", "models", "multitask", "report",
            "runs", "stats", "study", "summaries"} <= {name.rsplit(".", 1)[1] for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0, f"{name} has no runnable example"
