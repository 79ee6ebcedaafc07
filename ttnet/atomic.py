"""Atomic file writes: a reader finds the old file or the whole new one, never a partial one.

The one writer of the project (core, layers, integration and demo all use it): the data goes
to a temporary file in the target's folder (same file system, so ``os.replace`` is atomic),
is flushed and ``fsync``-ed, then replaces the target. On any exception, ``KeyboardInterrupt``
included, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_open", "atomic_write"]

#: Prefix of the temporary files (hidden, and recognisable if a process is killed mid-write).
TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically.

    Args:
        path: the file to write (its folder must exist).
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Raises:
        ValueError: ``mode`` is not a write mode named above.
        FileNotFoundError: the folder of ``path`` does not exist.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "x.txt")
        >>> with atomic_open(path, "w") as fh:
        ...     _ = fh.write("new")
        >>> open(path).read()
        'new'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode: expected 'wb' or 'w', got {mode!r}")
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: folder {folder!r} of {target!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically (see :func:`atomic_open`).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "x.bin")
        >>> atomic_write(path, b"abc")
        >>> open(path, "rb").read()
        b'abc'
    """
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)
