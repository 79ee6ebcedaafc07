"""The order of the examples on the gallery page: TT math, then layers, then LoRETTA.

sphinx-gallery sorts the scripts of ``docs/examples`` with the key named by
``within_subsection_order`` in ``conf.py``; this one follows :data:`ORDER`. A script not
listed there goes where ``"*"`` stands (before the multi-process ones), by file name.
"""

from __future__ import annotations

import os

#: File names in gallery order; ``"*"`` marks where unlisted scripts go.
ORDER = (
    # ttnet: decompositions and functions
    "compression_plot.py",
    "tt_svd_dask.py",
    "cross_high_dimensional.py",
    "cross_plot.py",
    # ttnet_nn: layers
    "plot_ttlinear_network.py",
    # loretta: fine-tuning, loading, exporting
    "plot_loretta_minilm.py",
    "loretta_peft_loading.py",
    "loretta_export_lora.py",
    "*",
    # shown, not run by the build: several processes
    "ddp_train.py",
    "accelerate_train.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery: ``key(filename) -> (place in ORDER, filename)``.

    Example:
        >>> key = ExampleOrder("docs/examples")
        >>> sorted(["ddp_train.py", "new.py", "tt_svd_dask.py"], key=key)
        ['tt_svd_dask.py', 'new.py', 'ddp_train.py']
    """

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = os.path.basename(filename)
        return (ORDER.index(name) if name in ORDER else ORDER.index("*"), name)

    def __repr__(self) -> str:  # sphinx-gallery compares configs by repr between builds
        return f"ExampleOrder({ORDER})"
