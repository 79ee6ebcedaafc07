"""Tables, JSON and figures of the study and of the multitask experiment.

The tables are Markdown (readable in a terminal, pasted as is into ``benchmarks/RESULTS.md``).
Every file is written atomically.

Example:
    >>> from loretta.demo.summaries import percent
    >>> percent(0.78312), percent(-0.0041, signed=True)
    ('78.31', '-0.41')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ttnet.atomic import atomic_write

from .report import new_figure, save_figure
from .stats import pareto_front

__all__ = [
    "format_multitask_table",
    "format_study_table",
    "percent",
    "plot_multitask",
    "plot_pareto",
    "write_multitask_outputs",
    "write_study_outputs",
]


def percent(value: float, *, signed: bool = False) -> str:
    """An accuracy (or difference) as percentage points with two decimals."""
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def format_study_table(summary: dict[str, Any]) -> str:
    """The study as a Markdown table (accuracies in %), then the targets, met or missed.

    Example:
        >>> row = {"method": "head", "trainable_params": 770, "lr": 0.002, "lr_at_edge": False,
        ...        "mean": 0.6, "sd": 0.01, "interval": [0.58, 0.62], "accuracies": [0.6],
        ...        "diff_to_reference": None}
        >>> print(format_study_table({"reference": None, "methods": [row], "targets": []}))
        | method | trainable params | lr (dev) | held-out % mean ± sd | 95% interval | seeds |
        |---|---:|---:|---:|---:|---|
        | head | 770 | 0.002 | 60.00 ± 1.00 | 58.00 - 62.00 | 60.00 |
    """
    reference = summary["reference"]
    header = ["method", "trainable params", "lr (dev)", "held-out % mean ± sd", "95% interval",
              "seeds"]
    if reference:
        header.insert(5, f"paired diff to {reference} [95% interval]")
    lines = ["| " + " | ".join(header) + " |",
             "|---|---:|---:|---:|---:|" + ("---:|" if reference else "") + "---|"]
    for row in summary["methods"]:
        low, high = row["interval"]
        cells = [row["method"], f"{row['trainable_params']:,}",
                 f"{row['lr']:g}" + (" (edge)" if row["lr_at_edge"] else ""),
                 f"{percent(row['mean'])} ± {percent(row['sd'])}",
                 f"{percent(low)} - {percent(high)}",
                 " ".join(percent(a) for a in row["accuracies"])]
        if reference:
            diff = row["diff_to_reference"]
            cells.insert(5, "-" if diff is None else f"{percent(diff['mean'], signed=True)} "
                         f"[{percent(diff['low'], signed=True)}, "
                         f"{percent(diff['high'], signed=True)}]")
        lines.append("| " + " | ".join(cells) + " |")
    if summary["targets"]:
        lines += ["", "Targets:"]
        for target in summary["targets"]:
            verdict = {True: "met", False: "**missed**", None: "n/a"}[target["met"]]
            detail = f" ({target['detail']})" if target["detail"] else ""
            lines.append(f"- {target['target']}: {verdict}{detail}")
    return "\n".join(lines)


def _family(method: str) -> str:
    for prefix, family in (("loretta_adp", "LoRETTA_adp"), ("loretta_rep", "LoRETTA_rep"),
                           ("lora", "LoRA")):
        if method.startswith(prefix):
            return family
    return "head / full" if method in ("head", "full") else "other PEFT"


def plot_pareto(path: Path, summary: dict[str, Any], *, title: str = "") -> None:
    """Mean held-out accuracy (95 % bootstrap interval as error bar) against trainable
    parameters (log scale), one colour per family, with the Pareto front drawn."""
    figure, axes = new_figure((7.6, 5.0))
    rows = summary["methods"]
    colours = {}
    for row in rows:
        family = _family(row["method"])
        low, high = row["interval"]
        bars = axes.errorbar(row["trainable_params"], 100 * row["mean"],
                             yerr=[[100 * (row["mean"] - low)], [100 * (high - row["mean"])]],
                             fmt="o", capsize=3, color=colours.get(family),
                             label=None if family in colours else family)
        colours.setdefault(family, bars.lines[0].get_color())
        axes.annotate(row["method"], (row["trainable_params"], 100 * row["mean"]),
                      textcoords="offset points", xytext=(5, 4), fontsize=7)
    front = pareto_front([(r["trainable_params"], r["mean"]) for r in rows])
    axes.step([rows[i]["trainable_params"] for i in front],
              [100 * rows[i]["mean"] for i in front], where="post", color="grey",
              linestyle="--", linewidth=1, label="Pareto front", zorder=0)
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters (log scale)")
    axes.set_ylabel("held-out accuracy, % (mean over seeds, 95% interval)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(title or "Accuracy against trainable parameters")
    save_figure(figure, path)


def _write(folder: Path, stem: str, summary: dict[str, Any], table: str, plot: Any,
           title: str) -> dict[str, Path]:
    paths = {"json": folder / f"{stem}.json", "table": folder / f"{stem}.md",
             "plot": folder / ("pareto.png" if stem == "study" else f"{stem}.png")}
    atomic_write(paths["json"], json.dumps(summary, indent=2) + "\n")
    atomic_write(paths["table"], table + "\n")
    plot(paths["plot"], summary, title=title)
    return paths


def write_study_outputs(output_dir: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """Write ``study.json``, ``study.md`` and ``pareto.png`` into ``output_dir``."""
    settings = summary["settings"]
    return _write(Path(output_dir), "study", summary, format_study_table(summary), plot_pareto,
                  f"{settings['model']}, Pang & Lee, {settings['seeds']} seeds")


def format_multitask_table(summary: dict[str, Any]) -> str:
    """The multitask result laid out like the paper's Table 4 (accuracy %, mean ± sd over seeds
    after the whole sequence), then each task right after its own training.

    Example:
        >>> row = {"method": "lora", "trainable_params": 74498, "tasks": {"spam": 0.9},
        ...        "sd": {"spam": 0.01}, "intervals": {"spam": [0.85, 0.95]}, "average": 0.9,
        ...        "average_sd": 0.01, "after_own_training": {"spam": 0.9}}
        >>> print(format_multitask_table({"tasks": ["spam"], "methods": [row]}).splitlines()[2])
        | lora | 74,498 | 90.00 ± 1.00 [85.00 - 95.00] | 90.00 ± 1.00 |
    """
    names = summary["tasks"]
    lines = ["| method | trainable params | " + " | ".join(names) + " | average |",
             "|---|---:|" + "---:|" * (len(names) + 1)]
    for row in summary["methods"]:
        cells = []
        for name in names:
            low, high = row["intervals"][name]
            cell = f"{percent(row['tasks'][name])} ± {percent(row['sd'][name])}"
            if name == "spam":
                cell += f" [{percent(low)} - {percent(high)}]"
            cells.append(cell)
        average = f"{percent(row['average'])} ± {percent(row['average_sd'])}"
        lines.append(f"| {row['method']} | {row['trainable_params']:,} | "
                     + " | ".join(cells) + f" | {average} |")
    lines += ["", "Right after each task's own training (before the later tasks):", "",
              "| method | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for row in summary["methods"]:
        cells = [f"{percent(row['after_own_training'][n])} "
                 f"({percent(row['tasks'][n] - row['after_own_training'][n], signed=True)})"
                 for n in names]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_multitask(path: Path, summary: dict[str, Any], *, title: str = "") -> None:
    """Grouped bars: per task and on average, each method's held-out accuracy after the whole
    sequence (error bar: sd over seeds); a black tick marks the accuracy right after the
    task's own training."""
    figure, axes = new_figure((7.6, 4.6))
    names = [*summary["tasks"], "average"]
    rows = summary["methods"]
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        values = [row["tasks"][n] for n in summary["tasks"]] + [row["average"]]
        errors = [row["sd"][n] for n in summary["tasks"]] + [row["average_sd"]]
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(names))]
        axes.bar(xs, [100 * v for v in values], width, yerr=[100 * e for e in errors],
                 capsize=2, label=row["method"])
        own = [row["after_own_training"][n] for n in summary["tasks"]]
        axes.scatter(xs[:-1], [100 * v for v in own], marker="_", s=120, color="black",
                     zorder=3, label="right after own training" if k == 0 else None)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("held-out accuracy after the whole sequence, %")
    axes.set_ylim(40, 100)
    axes.grid(True, axis="y", alpha=0.3)
    # above the axes, so no bar (any of them may be near the floor) is covered
    axes.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(rows) + 1,
                frameon=False)
    axes.set_title(title or "Three tasks in sequence", pad=24)
    save_figure(figure, path)


def write_multitask_outputs(output_dir: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """Write ``multitask.json``, ``multitask.md`` and ``multitask.png`` into ``output_dir``."""
    settings = summary["settings"]
    return _write(Path(output_dir), "multitask", summary, format_multitask_table(summary),
                  plot_multitask,
                  f"{settings['model']}: three tasks in sequence, {settings['seeds']} seeds")
