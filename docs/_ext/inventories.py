"""Intersphinx without the network: inventories written at build time from the installed packages.

Intersphinx links a name such as ``torch.Tensor`` to another project's page through that
project's ``objects.inv``, normally downloaded. The docs build has no internet (CI reaches only
package registries), and Hugging Face's sites (transformers, PEFT) publish no ``objects.inv``
at all. So this extension writes one small inventory per project before intersphinx loads them:

- the names are :data:`OBJECTS`, the outside types our signatures and pages use; each is
  imported from the installed package, so a name that moved fails the build instead of
  linking nowhere;
- each name's URL follows that project's own scheme (:data:`PROJECTS`), on the documentation
  of the installed version (numpy 2.4 links to numpy.org/doc/2.4/);
- each object is also listed under the module that defines it (``torch.nn.Module`` is
  ``torch.nn.modules.module.Module``), which is the name autodoc writes into signatures;
- a reference into one of these projects that still finds no target is a warning (so ``-W``
  fails the build) that names the object to add here.

Sources of the URL schemes (checked against the projects' documentation sources):
numpy and torch build one page per object with Sphinx autosummary
(``reference/generated/numpy.ndarray.html``, ``generated/torch.nn.Module.html``), except the
few objects :data:`OBJECTS` gives a page for (``torch.Tensor`` is on ``tensors.html``);
the Python standard library documents each module on ``library/<module>.html``;
transformers and PEFT document each object on the page whose Markdown source holds its
``[[autodoc]]`` line (transformers ``docs/source/en/main_classes/{model,configuration,trainer,
callback}.md``, PEFT ``docs/source/package_reference/{peft_model,config,tuners,peft_types}.md``),
at ``/docs/<project>/v<version>/en/<page>#<package>.<name>``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import zlib
from dataclasses import dataclass

from sphinx.ext import intersphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Project:
    """Where a project's documentation lives and how it names its pages.

    ``base`` is formatted with ``version`` (the installed one, cut as ``version_parts`` says);
    ``page`` with ``name`` (the public dotted name) and ``module`` (its module part), for the
    objects :data:`OBJECTS` gives no page of their own.
    """

    package: str
    base: str
    page: str | None
    version_parts: int = 2


PROJECTS: dict[str, Project] = {
    "python": Project("sys", "https://docs.python.org/{version}/", "library/{module}.html"),
    "numpy": Project("numpy", "https://numpy.org/doc/{version}/",
                     "reference/generated/{name}.html"),
    "torch": Project("torch", "https://docs.pytorch.org/docs/{version}/",
                     "generated/{name}.html"),
    "dask": Project("dask", "https://docs.dask.org/en/stable/", "generated/{name}.html"),
    "transformers": Project("transformers", "https://huggingface.co/docs/transformers/v{version}/en/",
                            None, version_parts=3),
    "peft": Project("peft", "https://huggingface.co/docs/peft/v{version}/en/", None,
                    version_parts=3),
}

#: ``{project: {public name: page or None (the project's rule)}}``.
OBJECTS: dict[str, dict[str, str | None]] = {
    "python": {
        "argparse.ArgumentParser": None, "argparse.Namespace": None,
        "collections.abc.Callable": None, "collections.abc.Iterable": None,
        "collections.abc.Iterator": None, "collections.abc.Mapping": None,
        "collections.abc.Sequence": None, "enum.Enum": None, "os.PathLike": None,
        "pathlib.Path": None,
    },
    "numpy": {
        "numpy.dtype": None, "numpy.memmap": None, "numpy.ndarray": None,
        "numpy.random.Generator": "reference/random/generator.html",
    },
    "torch": {
        "torch.Tensor": "tensors.html", "torch.device": "tensor_attributes.html",
        "torch.dtype": "tensor_attributes.html", "torch.Generator": None,
        "torch.nn.Linear": None, "torch.nn.Module": None, "torch.nn.ModuleDict": None,
        "torch.nn.ParameterList": None,
        "torch.nn.parameter.Parameter": None, "torch.optim.Optimizer": "optim.html",
    },
    "dask": {"dask.array.Array": None, "dask.array.map_blocks": None},
    "transformers": {
        "transformers.PreTrainedConfig": "main_classes/configuration",
        "transformers.PreTrainedModel": "main_classes/model",
        "transformers.Trainer": "main_classes/trainer",
        "transformers.TrainingArguments": "main_classes/trainer",
        "transformers.TrainerCallback": "main_classes/callback",
        "transformers.TrainerControl": "main_classes/callback",
        "transformers.TrainerState": "main_classes/callback",
    },
    "peft": {
        "peft.PeftConfig": "package_reference/config",
        "peft.PeftModel": "package_reference/peft_model",
        "peft.PeftType": "package_reference/peft_types",
        "peft.TaskType": "package_reference/peft_types",
        "peft.get_peft_model": "package_reference/peft_model",
        "peft.tuners.tuners_utils.BaseTuner": "package_reference/tuners",
        "peft.tuners.tuners_utils.BaseTunerLayer": "package_reference/tuners",
    },
}


def resolve(name: str) -> tuple[str, object]:
    """``(module name, object)`` for a dotted name, importing the longest module prefix.

    Example:
        >>> resolve("collections.abc.Sequence")[0]
        'collections.abc'
    """
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return module_name, obj
    raise ImportError(f"{name}: no importable module prefix")


def role(obj: object) -> str:
    """The Python-domain role Sphinx files ``obj`` under (``class``, ``function`` or ``data``)."""
    if inspect.isclass(obj):
        return "class"
    return "function" if callable(obj) else "data"


def entries(project: str) -> list[tuple[str, str, str]]:
    """``(name, role, uri)`` rows of one project's inventory (public and defining names).

    Example:
        >>> rows = dict((name, uri) for name, _, uri in entries("python"))
        >>> rows["pathlib.Path"]
        'library/pathlib.html#pathlib.Path'
        >>> rows["collections.abc.Sequence"]
        'library/collections.abc.html#collections.abc.Sequence'
    """
    rule = PROJECTS[project].page
    rows = []
    for name, page in OBJECTS[project].items():
        module, obj = resolve(name)
        page = page or rule.format(name=name, module=module)
        uri, kind = f"{page}#{name}", role(obj)
        rows.append((name, kind, uri))
        defined = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        if kind == "class" and defined != name and not defined.startswith("."):
            rows.append((defined, kind, uri))
    return rows


def installed_version(project: str) -> str | None:
    """The installed version cut to the parts the project's URLs use; None if not installed.

    Example:
        >>> import sys
        >>> installed_version("python") == f"{sys.version_info[0]}.{sys.version_info[1]}"
        True
    """
    package = PROJECTS[project].package
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    if package == "sys":
        version = ".".join(map(str, module.version_info[:3]))
    else:
        version = module.__version__
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:PROJECTS[project].version_parts])


def write_inventory(path: str, project: str, version: str) -> None:
    """Write ``entries(project)`` as a Sphinx ``objects.inv`` (format version 2) to ``path``."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    body = "".join(f"{name} py:{kind} 1 {uri} -\n" for name, kind, uri in entries(project))
    with open(path, "wb") as fh:
        fh.write(header.encode() + zlib.compress(body.encode()))


def mapping(folder: str) -> dict[str, tuple[str, str]]:
    """Write an inventory for every installed project into ``folder``; the intersphinx mapping.

    Example:
        >>> import tempfile
        >>> found = mapping(tempfile.mkdtemp())
        >>> found["python"][0].startswith("https://docs.python.org/3.")
        True
    """
    os.makedirs(folder, exist_ok=True)
    found = {}
    for project, spec in PROJECTS.items():
        version = installed_version(project)
        if version is None:
            continue
        path = os.path.join(folder, f"{project}.inv")
        write_inventory(path, project, version)
        found[project] = (spec.base.format(version=version), path)
    return found


def _config_inited(app, config) -> None:
    config.intersphinx_mapping = mapping(os.path.join(app.doctreedir, "inventories"))


def _missing_reference(app, env, node, contnode) -> None:
    # Sphinx calls every listener of this event, so ask intersphinx itself whether it links.
    target = node.get("reftarget", "").lstrip("~.")
    if (node.get("refdomain") == "py" and target.split(".")[0] in _packages()
            and intersphinx.missing_reference(app, env, node, contnode) is None):
        LOGGER.warning("%s: no link to its documentation; add it to OBJECTS in "
                       "docs/_ext/inventories.py", target, location=node)


def _packages() -> set[str]:
    return {name.split(".")[0] for project in PROJECTS if project != "python"
            for name in OBJECTS[project]}


def setup(app):
    """Fill ``intersphinx_mapping`` before intersphinx validates it; flag unlinked names."""
    app.setup_extension("sphinx.ext.intersphinx")
    app.connect("config-inited", _config_inited, priority=400)
    app.connect("missing-reference", _missing_reference, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
