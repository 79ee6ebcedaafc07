"""The default comparison's outputs: a text table, a JSON file and two PNG plots.

Every file is written atomically (:mod:`ttnet.atomic`); :func:`write_outputs` is called after
each method, so an interrupted run keeps every finished method.

Example:
    >>> from loretta.demo.experiment import MethodResult
    >>> from loretta.demo.report import format_table
    >>> row = MethodResult("head", 770, 0.66, 10.0, 2.0, 125, 2e-3, [0.7, 0.6])
    >>> print(format_table([row]))
    method                trainable params  held-out acc  seconds  s/step
    head                               770        0.6600     12.0  0.0800
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ttnet.atomic import atomic_open, atomic_write

from .experiment import MethodResult

__all__ = ["format_table", "new_figure", "plot_accuracy", "plot_losses", "save_figure",
           "write_json", "write_outputs"]

_HEADER = ("method", "trainable params", "held-out acc", "seconds", "s/step")
_WIDTHS = (20, 18, 14, 9, 8)


def format_table(results: Sequence[MethodResult]) -> str:
    """Format the results as an aligned text table.

    Args:
        results: One result per method.

    Returns:
        The table: method, trainable parameters, held-out accuracy, seconds (training plus
        evaluation) and training seconds per step.

    Example:
        >>> format_table([]).split()[:2]
        ['method', 'trainable']
    """
    lines = [
        _HEADER[0].ljust(_WIDTHS[0]) + "".join(h.rjust(w) for h, w in zip(_HEADER[1:], _WIDTHS[1:]))
    ]
    for row in results:
        cells = (
            f"{row.trainable_params:,}",
            f"{row.accuracy:.4f}",
            f"{row.train_seconds + row.eval_seconds:.1f}",
            f"{row.seconds_per_step:.4f}",
        )
        padded = "".join(cell.rjust(width) for cell, width in zip(cells, _WIDTHS[1:]))
        lines.append(row.method.ljust(_WIDTHS[0]) + padded)
    return "\n".join(lines)


def write_json(path: Path, results: Sequence[MethodResult], settings: dict[str, Any]) -> None:
    """Write the settings and every result (with its loss curve) as JSON.

    Args:
        path: File to write (replaced atomically).
        settings: The run's settings, stored under ``"settings"``.
        results: Stored under ``"results"``, each with ``seconds_per_step`` added.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "results.json"
        >>> write_json(out, [], {"seed": 0})
        >>> json.loads(out.read_text())["settings"]
        {'seed': 0}
    """
    rows = [{**asdict(row), "seconds_per_step": row.seconds_per_step} for row in results]
    text = json.dumps({"settings": settings, "results": rows}, indent=2) + "\n"
    atomic_write(path, text)


def new_figure(size: tuple[float, float] = (6.4, 4.4)) -> Any:
    """A matplotlib figure (no pyplot state) and its axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots()


def save_figure(figure: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (no half-written image is ever visible)."""
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)


def plot_accuracy(path: Path, results: Sequence[MethodResult], *, title: str = "") -> None:
    """Plot held-out accuracy against trainable parameters (log scale) to a PNG.

    Args:
        path: PNG file to write.
        results: Rows to plot; rows without trainable parameters (zero-shot) are drawn as a
            horizontal line.
        title: Figure title.

    Example:
        >>> import tempfile, pathlib
        >>> from loretta.demo.experiment import MethodResult
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "accuracy.png"
        >>> plot_accuracy(out, [MethodResult("head", 770, 0.66, 1.0, 1.0, 1, 1e-3)])
        >>> out.stat().st_size > 0
        True
    """
    figure, axes = new_figure()
    for row in results:
        if row.trainable_params:
            axes.scatter(row.trainable_params, row.accuracy, s=50, zorder=3)
            axes.annotate(row.method, (row.trainable_params, row.accuracy),
                          textcoords="offset points", xytext=(6, 4))
        else:
            axes.axhline(row.accuracy, color="grey", linestyle="--", label=row.method)
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters (log scale)")
    axes.set_ylabel("held-out accuracy")
    axes.grid(True, which="both", alpha=0.3)
    if any(not row.trainable_params for row in results):
        axes.legend(loc="lower right")
    axes.set_title(title or "Accuracy against trainable parameters")
    save_figure(figure, path)


def _smooth(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_losses(path: Path, results: Sequence[MethodResult], *, title: str = "") -> None:
    """Plot every method's training loss over steps (raw, faint, and a moving average).

    Args:
        path: PNG file to write.
        results: Rows to plot; rows without steps are left out.
        title: Figure title.

    Example:
        >>> import tempfile, pathlib
        >>> from loretta.demo.experiment import MethodResult
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "loss.png"
        >>> plot_losses(out, [MethodResult("head", 770, 0.66, 1.0, 1.0, 2, 1e-3, [0.7, 0.6])])
        >>> out.stat().st_size > 0
        True
    """
    figure, axes = new_figure()
    for row in results:
        if not row.losses:
            continue
        steps = range(1, len(row.losses) + 1)
        line, = axes.plot(steps, _smooth(row.losses, 10), label=row.method)
        axes.plot(steps, row.losses, color=line.get_color(), alpha=0.2, linewidth=0.8)
    axes.set_xlabel("step")
    axes.set_ylabel("training loss (moving average of 10 steps; raw faint)")
    axes.grid(True, alpha=0.3)
    if any(row.losses for row in results):
        axes.legend()
    axes.set_title(title or "Training loss")
    save_figure(figure, path)


def write_outputs(
    output_dir: Path, results: Sequence[MethodResult], settings: dict[str, Any]
) -> dict[str, Path]:
    """Write ``results.json``, ``results.txt``, ``accuracy_vs_params.png`` and ``loss_curves.png``.

    Args:
        output_dir: Folder (created if missing).
        results: The rows.
        settings: The run's settings (stored in the JSON and used in plot titles).

    Returns:
        The written paths by kind: ``json``, ``table``, ``accuracy_plot``, ``loss_plot``.

    Example:
        >>> import tempfile
        >>> sorted(write_outputs(Path(tempfile.mkdtemp()), [], {}))
        ['accuracy_plot', 'json', 'loss_plot', 'table']
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "table": folder / "results.txt",
        "accuracy_plot": folder / "accuracy_vs_params.png",
        "loss_plot": folder / "loss_curves.png",
    }
    name = settings.get("model", "")
    write_json(paths["json"], results, settings)
    atomic_write(paths["table"], format_table(results) + "\n")
    title = f"{name}: accuracy vs trainable parameters"
    plot_accuracy(paths["accuracy_plot"], results, title=title)
    plot_losses(paths["loss_plot"], results, title=f"{name}: training loss")
    return paths
