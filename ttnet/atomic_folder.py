"""Write a set of files into a folder so that a reader sees the old folder or the new one.

:func:`ttnet.atomic.atomic_write` makes one file atomic; a saved model is often several files
that must agree (a config beside its weights). :func:`write_folder` writes the new files as
anonymous files (``O_TMPFILE``: a process killed while writing leaves nothing), then builds a
staging folder ``.tmp-<name>-<pid>-<hex>`` beside the target holding hard links to every entry
it does not replace plus the new files, swaps it with the target in one
``renameat2(RENAME_EXCHANGE)``, and removes the old folder. Only those last steps (under a
millisecond) leave a staging folder when killed; later writes into the same parent remove
staging folders whose process is gone. Without ``O_TMPFILE`` or ``RENAME_EXCHANGE`` (other
file systems) the files are written by name, or the target is renamed aside for the swap (a
reader then finds no folder for a moment, never a mixed one).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Mapping

from ttnet.atomic import TEMP_PREFIX

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_STAGING = re.compile(re.escape(TEMP_PREFIX) + r".*-(\d+)-[0-9a-f]{8}")


def _check_relative(rel: str) -> str:
    parts = rel.split("/")
    if os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"files: expected relative paths inside the folder, received {rel!r}")
    return rel


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(parent: str) -> None:
    """Remove staging folders in ``parent`` left by processes that no longer run."""
    for entry in os.listdir(parent):
        match = _STAGING.fullmatch(entry)
        path = os.path.join(parent, entry)
        if match and os.path.isdir(path) and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _anonymous(parent: str, data: bytes) -> int | None:
    """An unnamed file holding ``data`` in ``parent``'s file system, or None if unsupported."""
    try:
        fd = os.open(parent, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except (AttributeError, OSError):
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _put(path: str, data: bytes, fd: int | None) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    if fd is not None:  # linkat(AT_SYMLINK_FOLLOW) of the /proc link names the unnamed file
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.link(f"/proc/self/fd/{fd}", os.path.basename(path), dst_dir_fd=folder_fd)
            return
        except OSError:
            pass
        finally:
            os.close(folder_fd)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _link_tree(src: str, dst: str, skip: set[str]) -> set[str]:
    """Recreate ``src`` in ``dst`` with hard links (folders made, links copied), except ``skip``."""
    done = set()
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            if rel in skip:
                continue
            target = os.path.join(dst, rel)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                os.symlink(os.readlink(path), target)
            elif stat.S_ISDIR(mode):
                os.mkdir(target, stat.S_IMODE(mode))
            elif stat.S_ISREG(mode):
                os.link(path, target, follow_symlinks=False)
            else:
                raise ValueError(f"save_directory: {path} is not a file, folder or link; "
                                 "it cannot be kept through an atomic save")
            done.add(rel)
        dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(root, d), src) in done
                   and not os.path.islink(os.path.join(root, d))]
    return done


def _exchange(staging: str, target: str) -> str:
    """Swap ``staging`` into ``target``; return the path that now holds the old target."""
    if not os.path.exists(target):
        os.rename(staging, target)
        return ""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(target),
                            _RENAME_EXCHANGE)
        err = 0 if rc == 0 else ctypes.get_errno()
    except AttributeError:  # no renameat2 in this C library
        err = errno.ENOSYS
    if err == 0:
        return staging
    if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise OSError(err, os.strerror(err), target)
    aside = f"{staging[:-8]}{secrets.token_hex(4)}"
    os.rename(target, aside)
    os.rename(staging, target)
    return aside


def _keep_strays(old: str, new: str, known: set[str]) -> None:
    """Move entries that appeared in the old folder during the write over to the new one."""
    for root, dirs, files in os.walk(old):
        for name in list(dirs) + files:
            rel = os.path.relpath(os.path.join(root, name), old)
            if rel not in known and not os.path.lexists(os.path.join(new, rel)):
                os.rename(os.path.join(old, rel), os.path.join(new, rel))
                if name in dirs:
                    dirs.remove(name)


def _remove(path: str) -> None:
    """Remove a folder tree quickly: its files are held open while their names go, so the
    kernel frees their blocks when they are closed, after the folder is gone."""
    held = []
    try:
        for root, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    held.append(os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW))
        shutil.rmtree(path, ignore_errors=True)
    finally:
        for fd in held:
            os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder(target: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (``{relative path: bytes}``) into folder ``target`` atomically.

    Entries of ``target`` that ``files`` does not name are kept (the same inodes, linked).

    Raises:
        ValueError: a path of ``files`` leaves the folder, or ``target`` holds a special file.
        NotADirectoryError: ``target`` exists and is not a folder.

    Example:
        >>> import os, tempfile
        >>> from ttnet.atomic_folder import write_folder
        >>> folder = os.path.join(tempfile.mkdtemp(), "adapter")
        >>> write_folder(folder, {"a.txt": b"1", "sub/b.txt": b"2"})
        >>> write_folder(folder, {"a.txt": b"3"})
        >>> sorted(os.listdir(folder)), open(os.path.join(folder, "a.txt")).read()
        (['a.txt', 'sub'], '3')
    """
    target = os.path.abspath(os.fspath(target))
    rels = {_check_relative(rel) for rel in files}
    if os.path.lexists(target) and not os.path.isdir(target):
        raise NotADirectoryError(f"save_directory: {target} exists and is not a folder")
    parent, base = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    remove_stale_staging(parent)
    handles = {rel: _anonymous(parent, data) for rel, data in files.items()}
    staging = os.path.join(parent, f"{TEMP_PREFIX}{base}-{os.getpid()}-{secrets.token_hex(4)}")
    old = ""
    try:  # from here until the old folder is gone, a kill leaves a staging folder: keep it short
        os.mkdir(staging)
        if os.path.isdir(target):
            os.chmod(staging, stat.S_IMODE(os.stat(target).st_mode))
        known = _link_tree(target, staging, rels) if os.path.isdir(target) else set()
        for rel, data in files.items():
            _put(os.path.join(staging, rel), data, handles[rel])
        old = _exchange(staging, target)
        if old:
            _keep_strays(old, target, known | rels)
    finally:
        for path in {staging, old} - {""}:
            if os.path.lexists(path) and path != target:
                _remove(path)
        for fd in handles.values():
            if fd is not None:
                os.close(fd)
    _fsync_dir(parent)
