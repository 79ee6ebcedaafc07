"""Sphinx configuration for the ttnet documentation."""

project = "ttnet"
author = "ttnet developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
]
exclude_patterns = ["_build"]
html_theme = "alabaster"
