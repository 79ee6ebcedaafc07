"""The full-size runs: the default comparison, the study, the multitask experiment, SmolLM2.

Slow: `make test` leaves them out (`-m "not slow"`); `make test-slow` (or
`.venv/bin/python -m pytest -m slow tests/demo`) runs them. On one thread of a 2-core CPU the
default run takes about 6-8 minutes, SmolLM2 about 14, the multitask experiment about 1-3 hours
and the study (18 methods, 5 seeds, 3 learning-rate candidates on the development set) 4-8
hours, depending on what else the machine runs; `--jobs 2` halves the study on an idle 2-core
machine. Wall times are printed, not asserted (``benchmarks/RESULTS.md`` records them). The
study test asserts the issue's targets, so it fails where the study misses them; the tables in
RESULTS.md say which.
"""

from __future__ import annotations

import json
import time

import pytest
from loretta.demo.cli import main

pytestmark = pytest.mark.slow


def test_default_run(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["--threads", "1", "--output-dir", str(tmp_path)]) == 0
    seconds = time.perf_counter() - start
    report = json.loads((tmp_path / "results.json").read_text())
    rows = {row["method"]: row for row in report["results"]}
    with capsys.disabled():
        print(f"\ndefault run: {seconds:.0f} s\n{(tmp_path / 'results.txt').read_text()}")
    adp, rep, lora, lora_r2, head = (
        rows[name] for name in ("loretta_adp", "loretta_rep", "lora", "lora_r2", "head"))
    assert lora["trainable_params"] == 74_498
    assert adp["trainable_params"] <= lora["trainable_params"] / 3
    assert abs(lora_r2["trainable_params"] / adp["trainable_params"] - 1) <= 0.25
    assert adp["accuracy"] >= 0.75
    assert rep["accuracy"] >= head["accuracy"] + 0.03


def test_full_study_meets_the_targets(tmp_path, capsys):
    assert main(["--study", "--threads", "1", "--jobs", "2", "--output-dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "study.json").read_text())
    with capsys.disabled():
        print(f"\nstudy: {summary['wall_seconds']:.0f} s\n{(tmp_path / 'study.md').read_text()}")
    assert len(summary["methods"]) >= 17
    assert all(len(row["accuracies"]) == 5 for row in summary["methods"])
    missed = [t for t in summary["targets"] if t["met"] is False]
    assert not missed, missed


def test_full_multitask_run(tmp_path, capsys):
    assert main(["--experiment", "multitask", "--threads", "1", "--output-dir",
                 str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "multitask.json").read_text())
    with capsys.disabled():
        print(f"\nmultitask: {summary['wall_seconds']:.0f} s\n"
              f"{(tmp_path / 'multitask.md').read_text()}")
    rows = {row["method"]: row for row in summary["methods"]}
    assert list(rows) == ["loretta_adp", "loretta_rep", "lora", "full"]
    assert all(len(row["per_seed"]) == 3 for row in rows.values())
    # every method learns every task it is trained on (chance is 0.5)
    assert all(acc > 0.6 for row in rows.values() for acc in row["after_own_training"].values())


def test_smollm2_default_run_meets_the_target(tmp_path, capsys):
    """SmolLM2-135M-Instruct: zero-shot first, then LoRETTA_adp for 60 steps (960 / 16)."""
    assert main(["--model", "smollm2", "--threads", "1", "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    rows = {row["method"]: row for row in report["results"]}
    with capsys.disabled():
        print(f"\nsmollm2 default run:\n{(tmp_path / 'results.txt').read_text()}")
    assert list(rows) == ["zero_shot", "loretta_adp"]
    assert rows["loretta_adp"]["steps"] <= 60
    assert rows["loretta_adp"]["accuracy"] >= 0.80
    assert rows["loretta_adp"]["accuracy"] > rows["zero_shot"]["accuracy"]
