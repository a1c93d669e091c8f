"""Atomic file writes and hashing: nothing half-written ever appears under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the destination's directory; rename it over ``path`` on success.

    The temp file lives beside the target so the final ``os.replace`` is atomic (same filesystem).
    On any exception the temp file is removed and the target is left untouched. The file gets the
    mode a plain ``open(path, "w")`` would give it (0666 less the umask), not ``mkstemp``'s 0600:
    checkpoints, manifests and reports are for sharing. The mode is set again before the rename, for
    writers that replace the temp file with their own (safetensors does).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_beside(path)
    try:
        mode = stat.S_IMODE(tmp_path.stat().st_mode)
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _create_beside(path: Path) -> Path:
    """Create an empty, uniquely named hidden file next to ``path`` with the umask's default mode."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed so multi-GB ARC checkpoints do not need to fit in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
