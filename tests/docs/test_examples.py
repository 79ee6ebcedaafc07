"""Every code example of the documentation runs.

- Each page ``docs/*.rst`` is run as one doctest (all its ``>>>`` blocks in order, one
  namespace per page, as a reader would type them), in a temporary working directory.
- Each script ``docs/examples/*.py`` shown in the docs is run through its ``main`` function
  (see :data:`SCRIPT_ARGS` for the small arguments used here).
"""

from __future__ import annotations

import doctest
import importlib.util
import io
import pathlib

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Arguments of each example script's ``main`` in the test (kept small for speed).
SCRIPT_ARGS: dict[str, dict] = {
    "compression_plot.py": {},
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


def load_script(path: pathlib.Path):
    """Import ``docs/examples/<name>.py`` as a module (not as ``__main__``)."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SCRIPT_ARGS))
def test_example_script(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = load_script(DOCS / "examples" / name)
    try:
        module.main(**SCRIPT_ARGS[name])
    finally:
        if name == "accelerate_train.py":  # accelerate keeps a process-wide state: reset it
            from accelerate.state import AcceleratorState

            AcceleratorState._reset_state(reset_partial_state=True)
    if "out_dir" in SCRIPT_ARGS[name]:  # the training scripts save the trained adapter
        assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_every_example_script_is_tested() -> None:
    scripts = {p.name for p in (DOCS / "examples").glob("*.py")}
    assert scripts == set(SCRIPT_ARGS)


def test_every_example_script_is_shown() -> None:
    shown = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    for name in SCRIPT_ARGS:
        assert f"examples/{name}" in shown, f"{name} is not included by any page"
