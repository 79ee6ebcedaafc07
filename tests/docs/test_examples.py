"""Every code example of the documentation runs.

- Each page ``docs/*.rst`` is run as one doctest (all its ``>>>`` blocks in order, one
  namespace per page, as a reader would type them), in a temporary working directory.
- Each gallery script ``docs/examples/*.py`` is run as the docs build runs it (as
  ``__main__``), except the multi-process ones the build only shows
  (:data:`NOT_EXECUTED`), whose ``main`` runs here with one process and two steps.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import io
import pathlib
import re
import runpy

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: The scripts the docs build shows without running (``NOT_EXECUTED`` in docs/conf.py), with
#: the small arguments of their ``main`` here.
NOT_EXECUTED: dict[str, dict] = {
    "ddp_train.py": {"world_size": 1, "steps": 2, "out_dir": "adapter"},
    "accelerate_train.py": {"steps": 2, "out_dir": "adapter"},
}


def run_page(page: pathlib.Path) -> tuple[int, str]:
    """Run the doctest blocks of one page; return (failures, report)."""
    text = page.read_text(encoding="utf-8")
    globs = {"__name__": f"docs.{page.stem}"}
    test = doctest.DocTestParser().get_doctest(text, globs, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    try:
        result = runner.run(test, out=out.write, clear_globs=True)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    return result.failed, out.getvalue()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page: pathlib.Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    failed, report = run_page(page)
    assert failed == 0, report


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name not in NOT_EXECUTED],
                         ids=lambda p: p.name)
def test_gallery_example_runs(path: pathlib.Path, tmp_path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    monkeypatch.chdir(tmp_path)
    try:
        runpy.run_path(str(path), run_name="__main__")
        figures = plt.get_fignums()
    finally:
        plt.close("all")
    assert figures, f"{path.name} draws no figure for its gallery thumbnail"
    assert not list(tmp_path.iterdir()), f"{path.name} left files in the working directory"


def load_script(path: pathlib.Path):
    """Import ``docs/examples/<name>.py`` as a module (not as ``__main__``)."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(NOT_EXECUTED))
def test_multiprocess_example_runs_in_one_process(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = load_script(DOCS / "examples" / name)
    try:
        module.main(**NOT_EXECUTED[name])
    finally:
        if name == "accelerate_train.py":  # accelerate keeps a process-wide state: reset it
            from accelerate.state import AcceleratorState

            AcceleratorState._reset_state(reset_partial_state=True)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_not_executed_list_matches_the_docs_build() -> None:
    conf = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    value = next(node.value for node in conf.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "NOT_EXECUTED" for t in node.targets))
    assert set(ast.literal_eval(value)) == set(NOT_EXECUTED)
    assert set(NOT_EXECUTED) <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_gallery_example_has_a_title(path: pathlib.Path) -> None:
    """sphinx-gallery takes the first lines of the module docstring as the example's title."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    lines = (docstring or "").strip("\n").splitlines()
    assert len(lines) >= 2 and re.fullmatch(r"=+", lines[1]) and len(lines[1]) >= len(lines[0]), \
        f"{path.name}: the docstring must start with a title underlined with '='"
