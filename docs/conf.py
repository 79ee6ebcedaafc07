"""Sphinx configuration for the ttnet documentation.

Build (what ``make docs`` runs; warnings fail the build)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The figure in Tutorial 1 is computed by the build itself (``matplotlib``'s ``plot``
directive runs ``docs/examples/compression_plot.py``); the benchmark tables of
``benchmarks/RESULTS.md`` are rendered by the small ``markdown_tables`` extension in
``docs/_ext``. No network is used (no intersphinx mapping).
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(DOCS, "_ext"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

project = "ttnet"
author = "ttnet developers"
copyright = "2024, ttnet developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "matplotlib.sphinxext.plot_directive",
    "markdown_tables",
    "reexports",
]

exclude_patterns = ["_build", "examples", "generated"]
html_theme = "alabaster"
html_theme_options = {"description": "Tensor trains for numpy, torch and transformers"}
html_static_path: list[str] = []
pygments_style = "sphinx"

# --- autodoc / napoleon -----------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True

# --- matplotlib plot directive: one PNG per figure, no source / format links -------------------
plot_formats = [("png", 110)]
plot_html_show_formats = False
plot_html_show_source_link = False
plot_include_source = False
plot_working_directory = DOCS
plot_rcparams = {"figure.figsize": (6.4, 4.0), "savefig.bbox": "tight"}
