"""The library and the demo are apart: ``import loretta`` imports no demo module, and loretta's
own code imports neither tqdm nor matplotlib (checked in a fresh interpreter)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

CHECK = r"""
import sys

class Guard:
    '''Refuse tqdm, matplotlib and loretta.demo to any importer that is loretta's own code.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tqdm", "matplotlib") or name.startswith("loretta.demo"):
            frame = sys._getframe(1)
            while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_froz")):
                frame = frame.f_back
            importer = frame.f_globals.get("__name__", "") if frame else ""
            if importer.split(".")[0] == "loretta":
                raise ImportError(f"{importer} imports {name}")
        return None

sys.meta_path.insert(0, Guard())
import torch  # may import tqdm itself; forget it so that any later import meets the guard
for name in [m for m in sys.modules if m.split(".")[0] in ("tqdm", "matplotlib")]:
    del sys.modules[name]
import loretta
from loretta import LorettaAdpConfig, LorettaRepConfig, TaskType, get_peft_model
import loretta.counts
loaded = sorted(m for m in sys.modules if m.startswith(("loretta.demo", "matplotlib")))
print("loaded:", loaded)
"""


def test_import_loretta_imports_no_demo_module_nor_tqdm_nor_matplotlib():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded: []"


def test_the_guard_would_catch_a_library_module_importing_tqdm(tmp_path):
    """The check above can fail: a module named loretta.* that imports tqdm is refused."""
    # PEFT imports tqdm with loretta: forget it again, so the fake module's import is a fresh one
    code = CHECK.replace("import loretta\n", "import loretta\nsys.modules.pop('tqdm', None)\n"
                         "exec(compile('import tqdm', 'x', 'exec'), {'__name__': 'loretta.fake'})\n",
                         1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode != 0
    assert "loretta.fake imports tqdm" in done.stderr


def test_no_library_module_names_tqdm_matplotlib_or_the_demo_in_an_import():
    """Static half of the check: PEFT imports tqdm along with loretta, so a later import of it
    by loretta's own code would be served from ``sys.modules`` without meeting the guard."""
    package = Path(importlib.util.find_spec("loretta").origin).parent
    found = []
    # the library's modules (the demo is the subpackage; ``python -m loretta`` runs its CLI)
    for path in set(package.glob("*.py")) - {package / "__main__.py"}:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names
                      if n.split(".")[0] in ("tqdm", "matplotlib") or
                      n.startswith("loretta.demo") or
                      (isinstance(node, ast.ImportFrom) and node.level and n.startswith("demo"))]
    assert found == []
    assert len(list(package.glob("*.py"))) >= 10  # the walk saw the library's modules
