"""``loretta-train --study`` end to end on a small slice: real model, real data, 2 seeds, a
Ctrl-C in the middle and a resumed run (the full study is in test_full_run.py, slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from loretta.demo.cli import main
from loretta.demo.study import LR_FACTORS, lr_candidates

ARGS = ["--study", "--methods", "loretta_adp,lora", "--seeds", "2", "--select-seeds", "1",
        "--train-size", "16", "--eval-size", "32", "--dev-size", "24", "--batch-size", "8"]


def test_small_study_survives_ctrl_c_resumes_and_writes_json_table_and_plot(tmp_path, capsys):
    out = tmp_path / "study"
    runs = out / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TTNET_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "loretta", *ARGS, "--output-dir", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    end = time.monotonic() + 120
    while not (runs.is_dir() and len(list(runs.glob("*.json"))) >= 2):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    kept = {p.name for p in runs.glob("*.json")}
    assert len(kept) >= 2 and not list(runs.glob(".tmp-*"))

    assert main([*ARGS, "--output-dir", str(out)]) == 0
    log = capsys.readouterr().out
    cached = int(log.split("runs, ", 1)[1].split(" cached")[0])
    assert cached >= len(kept) - 1  # what finished before Ctrl-C is not trained again
    assert kept <= {p.name for p in runs.glob("*.json")}

    summary = json.loads((out / "study.json").read_text())
    rows = {row["method"]: row for row in summary["methods"]}
    assert list(rows) == ["loretta_adp", "lora"] and summary["reference"] == "lora"
    for method, row in rows.items():
        assert row["lr"] in lr_candidates(method)
        assert [c["lr"] for c in row["lr_candidates"]] == lr_candidates(method)
        best = max(row["lr_candidates"], key=lambda c: c["dev_accuracy"])
        assert row["lr"] == best["lr"]  # chosen on the development sentences
        assert len(row["accuracies"]) == 2 and row["seeds"] == [0, 1]
        assert all(0 <= a <= 1 for a in row["accuracies"])
        assert abs(row["mean"] - sum(row["accuracies"]) / 2) < 1e-12
        assert row["interval"][0] <= row["mean"] <= row["interval"][1]
    assert rows["lora"]["trainable_params"] == 74_498
    assert rows["lora"]["diff_to_reference"] is None
    diff = rows["loretta_adp"]["diff_to_reference"]
    assert diff["low"] <= diff["mean"] <= diff["high"]
    assert abs(diff["mean"] - (rows["loretta_adp"]["mean"] - rows["lora"]["mean"])) < 1e-9
    assert summary["settings"]["lr_factors"] == list(LR_FACTORS)
    assert summary["targets"][0]["target"].startswith("loretta_adp <= 1/3")
    assert isinstance(summary["targets"][0]["met"], bool)
    table = (out / "study.md").read_text()
    assert table.startswith("| method | trainable params | lr (dev) |") and "Targets:" in table
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_rejects_more_selection_seeds_than_seeds(tmp_path, capsys):
    assert main([*ARGS[:-2], "--select-seeds", "3", "--output-dir", str(tmp_path)]) == 2
    assert "--select-seeds must be <= --seeds (2), received 3" in capsys.readouterr().err
