"""hrm.io: an atomic write leaves nothing half-written and gives the file the mode a plain open() would."""

from __future__ import annotations

import os
import stat

import pytest

from hrm.io import atomic_path, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_umask_mode_of_a_plain_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "report.json", "{}\n")
        with atomic_path(tmp_path / "sub" / "blob.bin") as tmp:
            tmp.write_bytes(b"\0" * 8)
        (tmp_path / "plain.txt").write_text("")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert _mode(tmp_path / "report.json") == _mode(tmp_path / "sub" / "blob.bin") == 0o666 & ~umask


def test_checkpoint_is_readable_by_others_under_the_usual_umask(tmp_path, tiny_cfg, tiny_tensors):
    from hrm.checkpoint import save_checkpoint

    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", tiny_cfg, tiny_tensors)
    finally:
        os.umask(old)
    assert _mode(path) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
