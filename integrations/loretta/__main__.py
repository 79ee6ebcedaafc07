"""``python -m loretta``: the same as the ``loretta-train`` command (see :mod:`loretta.cli`)."""

from loretta.cli import main

raise SystemExit(main())
