"""The examples in the loretta docstrings run and print what they show."""

import doctest
import importlib

import pytest

MODULES = ["loretta", "loretta.config", "loretta.mapping", "loretta.layer", "loretta.injection",
           "loretta.model", "loretta.saving", "loretta.ranks", "loretta.counts"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
