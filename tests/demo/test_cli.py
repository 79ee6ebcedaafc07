"""``loretta-train`` as a new user meets it: bad options, bad folders, Ctrl-C (issue 15)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loretta.demo.cli import build_parser, main
from loretta.demo.models import resolve_model


@pytest.mark.parametrize(("option", "value"), [
    ("--train-size", "0"), ("--eval-size", "-5"), ("--dev-size", "0"), ("--epochs", "0"),
    ("--max-steps", "0"), ("--batch-size", "-1"), ("--max-length", "0"), ("--lr", "0"),
    ("--lr", "-1e-3"), ("--lr", "nan"), ("--lr", "inf"), ("--threads", "0"), ("--seeds", "0"),
    ("--select-seeds", "0"), ("--jobs", "0"), ("--bottleneck", "0"), ("--tensor-rank", "-2"),
    ("--lora-r", "0"),
])
def test_zero_or_negative_values_are_rejected_naming_the_option(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([f"{option}={value}"])
    assert exit_info.value.code == 2
    assert f"argument {option}: must be > 0, received '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--seed", "-1", "argument --seed: must be >= 0, received '-1'"),
    ("--train-size", "ten", "argument --train-size: expected an integer, received 'ten'"),
    ("--methods", ",", "argument --methods: expected at least one method name"),
    ("--methods", " , ,", "argument --methods: expected at least one method name"),
    ("--methods", "", "argument --methods: expected at least one method name"),
    ("--methods", "lora,adapterx", "argument --methods: unknown method 'adapterx'"),
    ("--non-linearity", "softsign", "argument --non-linearity: invalid choice: 'softsign'"),
    ("--experiment", "sweep", "argument --experiment: invalid choice: 'sweep'"),
])
def test_bad_values_are_rejected_naming_the_option(option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([f"{option}={value}"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_thread_variable_is_rejected(monkeypatch, capsys):
    monkeypatch.setenv("TTNET_NUM_THREADS", "0")
    with pytest.raises(SystemExit):
        main(["--methods", "head"])
    assert "$TTNET_NUM_THREADS must be an integer >= 1, received '0'" in capsys.readouterr().err


def test_study_shortcut_and_method_lists_parse():
    args = build_parser().parse_args(["--study", "--methods", " lora , head,"])
    assert (args.experiment, args.methods) == ("study", ("lora", "head"))


@pytest.mark.parametrize("kind", ["file", "inside a file", "read-only"])
def test_output_dir_is_checked_before_anything_trains(kind, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    if kind == "read-only":
        target = Path("/proc/sys")  # writable by nobody, root included
        if not target.is_dir():
            pytest.skip("no /proc/sys here")
    elif kind == "inside a file":
        target = target / "sub"
    started = time.perf_counter()
    assert main(["--methods", "head", "--output-dir", str(target)]) == 2
    captured = capsys.readouterr()
    assert "loretta-train: error: --output-dir" in captured.err
    assert captured.out == ""  # nothing loaded or trained
    assert time.perf_counter() - started < 20


def test_read_only_folder_made_by_chmod(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; /proc/sys covers this case")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    assert main(["--methods", "head", "--output-dir", str(folder)]) == 2
    assert "is not a writable folder" in capsys.readouterr().err


@pytest.mark.parametrize("contents", ["empty", "config only"])
def test_model_folder_without_a_model_fails_before_the_data_is_fetched(contents, tmp_path,
                                                                       capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    if contents == "config only":
        shutil.copy(resolve_model("minilm").path / "config.json", folder)
    cache, out = tmp_path / "cache", tmp_path / "out"
    status = main(["--model", str(folder), "--data-dir", str(cache), "--output-dir", str(out)])
    assert status == 2
    err = capsys.readouterr().err
    expected = "holds neither config.json" if contents == "empty" else "but no weights"
    assert expected in err and str(folder) in err
    assert not cache.exists() and not out.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--study", "--lr", "1e-3"], "--lr and --lr-from cannot be combined with --study"),
    (["--experiment", "multitask", "--model", "smollm2"], "needs a sequence classifier"),
    (["--methods", "zero_shot"], "--methods for a sequence classifier must be among"),
    (["--lr-from", "/no/such/study.json"], "--lr-from '/no/such/study.json': expected"),
])
def test_contradictory_options_are_named(argv, message, tmp_path, capsys):
    assert main([*argv, "--output-dir", str(tmp_path / "out"), "--train-size", "8",
                 "--eval-size", "8", "--max-steps", "1"]) == 2
    assert message in capsys.readouterr().err


def test_lr_from_takes_each_methods_rate_from_a_study(tmp_path, capsys):
    study = tmp_path / "study.json"
    study.write_text(json.dumps({"methods": [{"method": "head", "lr": 0.0123}]}))
    out = tmp_path / "out"
    assert main(["--methods", "head", "--lr-from", str(study), "--train-size", "16",
                 "--eval-size", "16", "--max-steps", "1", "--output-dir", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["results"][0]["lr"] == 0.0123
    assert main(["--methods", "head,lora", "--lr-from", str(study),
                 "--output-dir", str(out)]) == 2
    assert "has no learning rate for ['lora']" in capsys.readouterr().err


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_ctrl_c_keeps_finished_methods_and_exits_130_without_a_traceback(tmp_path):
    """A real SIGINT to a real process, while the second method runs."""
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TTNET_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "loretta", "--methods", "head,lora", "--train-size", "32",
         "--eval-size", "800", "--max-steps", "2", "--output-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    results = out / "results.json"
    _wait_for(results.exists, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"interrupted; every finished result is kept in {out}" in stderr
    report = json.loads(results.read_text())
    assert [row["method"] for row in report["results"]] == ["head"]
