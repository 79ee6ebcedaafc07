"""``python -m loretta``: the same as the ``loretta-train`` command (see :mod:`loretta.demo.cli`)."""

from loretta.demo.cli import main

raise SystemExit(main())
