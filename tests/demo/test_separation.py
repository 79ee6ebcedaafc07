"""The library and the demo are apart: ``import loretta`` imports no demo module, and loretta's
own code imports neither tqdm nor matplotlib (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

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
    code = CHECK.replace("import loretta\n", "import loretta\nexec(compile('import tqdm', "
                         "'x', 'exec'), {'__name__': 'loretta.fake'})\n", 1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode != 0
    assert "loretta.fake imports tqdm" in done.stderr
