"""``loretta-train --experiment multitask`` end to end on a small slice: real model, the three
real corpora, 2 seeds (the full experiment is in test_full_run.py, slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from loretta.demo.cli import main
from loretta.demo.experiment import Workbench
from loretta.demo.methods import Settings
from loretta.demo.multitask import head_parameters


def test_small_multitask_run_writes_json_table_and_plot(tmp_path, capsys):
    out = tmp_path / "multitask"
    assert main(["--experiment", "multitask", "--methods", "loretta_rep,lora_r1", "--seeds", "2",
                 "--train-size", "16", "--eval-size", "16", "--batch-size", "8", "--lr", "2e-3",
                 "--output-dir", str(out)]) == 0
    summary = json.loads((out / "multitask.json").read_text())
    assert summary["tasks"] == ["polarity", "uncertainty", "spam"]
    assert summary["settings"]["corpus_labels"]["spam"] == ["spam", "ham"]
    sizes = {t["name"]: (t["train_size"], t["eval_size"]) for t in summary["settings"]["tasks"]}
    assert sizes == {"polarity": (16, 16), "uncertainty": (16, 16), "spam": (16, 16)}
    rows = {row["method"]: row for row in summary["methods"]}
    assert list(rows) == ["loretta_rep", "lora_r1"]
    for row in rows.values():
        assert set(row["tasks"]) == set(summary["tasks"])
        assert len(row["per_seed"]) == 2
        assert row["average"] == pytest.approx(np.mean(row["per_seed"]))
        assert row["average"] == pytest.approx(np.mean(list(row["tasks"].values())))
        for name, (low, high) in row["intervals"].items():
            assert low <= row["tasks"][name] <= high
        # nothing is trained after the last task: its accuracy is what its own training left,
        # which holds only if every task's own head was stored and put back
        assert row["tasks"]["spam"] == row["after_own_training"]["spam"]
    assert rows["lora_r1"]["trainable_params"] == 9_986
    assert rows["loretta_rep"]["trainable_params"] == 16_214
    table = (out / "multitask.md").read_text()
    assert table.startswith("| method | trainable params | polarity | uncertainty | spam |")
    assert "right after each task's own training" in table.lower()
    assert (out / "multitask.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "multitask: 4 sequences, 0 cached, 4 to train" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["loretta_adp", "loretta_rep", "lora", "full", "vera"])
def test_head_parameters_are_the_classifier_of_every_method(method):
    bench = _bench()
    model = bench.fresh_model(method, Settings(), 0)
    head = head_parameters(model)
    assert sum(p.numel() for p in head.values()) == 384 * 2 + 2
    assert all(p.requires_grad for p in head.values())


def test_a_model_without_a_head_is_refused():
    model = _bench().fresh_model("head", Settings(), 0)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="expected a trainable classifier head"):
        head_parameters(model)


_BENCH: list[Workbench] = []


def _bench() -> Workbench:
    if not _BENCH:
        _BENCH.append(Workbench("minilm", 32, progress=False))
    return _BENCH[0]
