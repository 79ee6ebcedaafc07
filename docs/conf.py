"""Sphinx configuration for the ttnet documentation.

Build (what ``make docs`` runs; warnings fail the build)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

- Theme: pydata-sphinx-theme (as numpy, scipy, pandas and dask), with sphinx-design cards and
  sphinx-copybutton (copies code without ``>>>`` / ``$`` prompts or output).
- Markdown: myst-parser; ``benchmarks/RESULTS.md`` is included by ``performance.rst``.
- Examples: sphinx-gallery runs every ``docs/examples/*.py`` except :data:`NOT_EXECUTED` and
  renders it with its output and figures into ``docs/gallery/`` (generated, not committed).
  Unchanged examples are not run again while ``docs/gallery/`` exists.
- Links to numpy, torch, transformers, PEFT, dask and Python: intersphinx, with inventories
  written from the installed packages by ``docs/_ext/inventories.py`` (no network is used).
"""

import os
import re
import sys
import warnings
from importlib.metadata import version as _version

import matplotlib

matplotlib.use("Agg")

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(DOCS, "_ext"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A deprecation inside transformers that PEFT triggers; not the reader's concern on a page.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

project = "ttnet"
author = "ttnet developers"
copyright = "2024, ttnet developers"
release = _version("ttnet")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinx_gallery.gen_gallery",
    "inventories",
    "reexports",
]

exclude_patterns = ["_build", "examples"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]

# --- theme -------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"ttnet {release}"
html_static_path = ["_static"]
html_css_files = ["ttnet.css"]
html_theme_options = {
    "logo": {"text": "ttnet"},
    "navbar_start": ["navbar-logo", "version"],
    "navbar_center": ["navbar-short"],
    "navbar_end": ["theme-switcher"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "navbar_align": "left",
    "navbar_persistent": ["search-button"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# The left sidebar lists a page's own section; the top-level pages have none, so it goes,
# and their code blocks get its width.
html_sidebars = {page: [] for page in (
    "index", "getting_started", "tutorial_*", "gallery/*", "choosing", "parameter_counts",
    "performance", "design", "changelog")}
html_show_sourcelink = False
pygments_style = "sphinx"
highlight_language = "text"  # unlabelled blocks (benchmark output, commands) stay plain

# --- copy buttons: copy the code, not the prompts or the printed output ------------------------
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# --- myst (Markdown pages and includes) ----------------------------------------------------------
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# --- sphinx-gallery ----------------------------------------------------------------------------
#: Examples shown in the gallery but not run by the build: each starts several processes
#: (tests/docs/test_examples.py runs them with one process and two steps instead).
NOT_EXECUTED = ("ddp_train.py", "accelerate_train.py")
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/(?!(?:" + "|".join(map(re.escape, NOT_EXECUTED)) + r")$)[^/]+$",
    "within_subsection_order": "gallery_order.ExampleOrder",  # docs/_ext/gallery_order.py
    "download_all_examples": False,
    "write_computation_times": False,
    "show_signature": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "capture_repr": ("__repr__",),
    "reset_modules": ("matplotlib",),
}

# --- autodoc / napoleon -----------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
