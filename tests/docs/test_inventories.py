"""The offline intersphinx inventories (docs/_ext/inventories.py) say what intersphinx reads.

Each inventory is read back with Sphinx's own reader, as intersphinx reads it during the
build; the URLs are checked against the projects' page schemes named in the module.
"""

from __future__ import annotations

import importlib
import pathlib
import sys

import pytest
from sphinx.util.inventory import InventoryFile

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def inventories():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        yield importlib.import_module("inventories")
    finally:
        sys.path.remove(str(DOCS / "_ext"))
        sys.modules.pop("inventories", None)


@pytest.fixture(scope="module")
def loaded(inventories, tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """``{project: (base URL, {role: {name: item with .uri}})}``, as intersphinx reads them."""
    folder = tmp_path_factory.mktemp("inventories")
    result = {}
    for project, (base, path) in inventories.mapping(str(folder)).items():
        with open(path, "rb") as fh:
            result[project] = (base, InventoryFile.load(fh, base, lambda b, u: b + u))
    return result


def url(loaded, project: str, role: str, name: str) -> str:
    return loaded[project][1][f"py:{role}"][name].uri


def test_every_listed_object_is_importable_and_written(inventories, loaded) -> None:
    for project, names in inventories.OBJECTS.items():
        if project not in loaded:  # not installed here (dask is an extra)
            continue
        inventory = loaded[project][1]
        written = {name for role in ("class", "function", "data")
                   for name in inventory.get(f"py:{role}", {})}
        assert set(names) <= written, f"{project}: {set(names) - written}"


@pytest.mark.parametrize("name, page", [
    ("torch.nn.Module", "generated/torch.nn.Module.html#torch.nn.Module"),
    ("torch.nn.modules.module.Module", "generated/torch.nn.Module.html#torch.nn.Module"),
    ("torch.Tensor", "tensors.html#torch.Tensor"),
    ("torch.dtype", "tensor_attributes.html#torch.dtype"),
])
def test_torch_names_and_their_defining_modules_link_to_the_public_page(
        loaded, name: str, page: str) -> None:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    assert url(loaded, "torch", "class", name) == \
        f"https://docs.pytorch.org/docs/{major}.{minor}/{page}"


def test_transformers_links_name_the_installed_version_and_the_autodoc_page(loaded) -> None:
    import transformers

    version = transformers.__version__.split("+")[0]
    expected = (f"https://huggingface.co/docs/transformers/v{version}/en/main_classes/callback"
                "#transformers.TrainerControl")
    assert url(loaded, "transformers", "class", "transformers.TrainerControl") == expected
    # autodoc writes the defining module into signatures; it must reach the same page
    assert url(loaded, "transformers", "class",
               "transformers.trainer_callback.TrainerControl") == expected


def test_peft_functions_are_functions(loaded) -> None:
    assert url(loaded, "peft", "function", "peft.get_peft_model").endswith(
        "/en/package_reference/peft_model#peft.get_peft_model")


def test_a_moved_name_fails_instead_of_linking_nowhere(inventories, monkeypatch) -> None:
    monkeypatch.setitem(inventories.OBJECTS, "torch", {"torch.nn.NoSuchLayer": None})
    with pytest.raises(AttributeError, match="NoSuchLayer"):
        inventories.entries("torch")


def test_a_package_that_is_not_installed_is_left_out(inventories, monkeypatch,
                                                     tmp_path) -> None:
    monkeypatch.setitem(inventories.PROJECTS, "nope",
                        inventories.Project("no_such_package_here", "https://x/", None))
    monkeypatch.setitem(inventories.OBJECTS, "nope", {"no_such_package_here.X": "p"})
    assert "nope" not in inventories.mapping(str(tmp_path))
