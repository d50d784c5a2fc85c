"""Atomic writes: all or nothing, and ordinary file permissions."""

import os
import stat
from pathlib import Path

import pytest

from stylefusion.fsutil import atomic_write, atomic_write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    atomic_write_text(target, "old")

    def half_written(tmp: Path) -> None:
        tmp.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half_written)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_a_writer_that_recreates_the_file_still_gets_ordinary_permissions(tmp_path: Path) -> None:
    def recreate(tmp: Path) -> None:  # like safetensors.save_file: a fresh file at the path
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        os.close(fd)

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "w.safetensors", recreate)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644
