"""The project's one atomic writer: old file or whole new file, never a partial one."""

import os

import pytest

from ttnet.atomic import TEMP_PREFIX, atomic_open, atomic_write


def test_failure_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    atomic_write(path, b"old")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # type: ignore[arg-type]  # the write itself fails
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.bin"]


def test_keyboard_interrupt_mid_write_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, "w") as fh:
            fh.write("half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_text_and_bytes_and_permissions(tmp_path):
    atomic_write(tmp_path / "a.txt", "é")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert oct(os.stat(tmp_path / "a.txt").st_mode & 0o777) == "0o644"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TEMP_PREFIX)]


def test_bad_mode_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="mode: expected 'wb' or 'w', got 'a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "x", b"")
