"""The run cache (what makes a killed study resume) and parallel execution in real processes."""

from __future__ import annotations

import json
import operator

import pytest
from loretta.demo.runs import RunCache, execute

KEY = {"method": "lora", "seed": 1, "lr": 0.004, "train_size": 2000, "settings": {"r": 8}}


def test_a_stored_run_is_found_only_under_its_own_key(tmp_path):
    cache = RunCache(tmp_path / "runs")
    assert cache.load(KEY) is None
    cache.store(KEY, {"dev": "0110"})
    assert cache.load(KEY)["dev"] == "0110"
    for changed in ({"seed": 2}, {"lr": 0.002}, {"train_size": 64}, {"settings": {"r": 4}}):
        assert cache.load({**KEY, **changed}) is None
    assert [p.name[:12] for p in (tmp_path / "runs").iterdir()] == ["lora-1-0.004"]


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"key": {"seed": 1}}'])
def test_a_corrupt_or_foreign_file_is_not_trusted(tmp_path, content):
    cache = RunCache(tmp_path)
    cache.store(KEY, {"dev": "1"})
    cache.path(KEY).write_text(content)
    assert cache.load(KEY) is None
    cache.store(KEY, {"dev": "0"})  # recomputed and replaced
    assert json.loads(cache.path(KEY).read_text())["dev"] == "0"


def test_jobs_run_in_spawned_processes_and_report_in_the_parent():
    done = {}
    execute(range(1, 6), operator.mul, int, ("7",), processes=2,
            on_done=lambda job, result: done.__setitem__(job, result))
    assert done == {job: 7 * job for job in range(1, 6)}


def test_no_jobs_start_nothing():
    def refuse(*_):
        raise AssertionError("state built for no job")

    execute([], operator.mul, refuse, (), processes=2, on_done=refuse)
