"""Atomic writes and hashing: nothing half-written ever appears under its final name.

Files: :func:`atomic_path` (write beside, rename over). Directories: :func:`staging_dir` +
:func:`publish_dir` (build beside, rename into place), :func:`remove_stale` (what a killed writer
left), :func:`exclusive_lock` (one writer per target). Used by the exporter and the dataset writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
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


# ---- directories: lock, stage, publish ---------------------------------------------------------------

class LockHeld(OSError):
    """Another process (or thread) holds the lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` body; fail at once
    with :class:`LockHeld` if someone else holds it. The lock file is removed on release.

    flock locks belong to an open file, so two threads of one process exclude each other too. After
    locking, the path is checked to still name the locked file: a holder that just released (and
    unlinked) it cannot leave two processes each holding a lock on a different file.
    """
    import fcntl

    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise LockHeld(path, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # we locked a file its holder had just unlinked: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def staging_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty hidden directory in ``parent`` (same filesystem as the target, so publishing it is
    a rename). Its name starts with ``prefix``: :func:`remove_stale` finds leftovers by it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def remove_stale(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Delete directories in ``parent`` whose names start with ``prefix`` (staging left by a killed
    writer). Only call while holding the lock that the writers of ``parent`` take."""
    parent = Path(parent)
    removed = []
    if parent.is_dir():
        for entry in parent.iterdir():
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def publish_dir(staging: str | os.PathLike, target: str | os.PathLike, replace: bool = False) -> None:
    """Make the finished directory ``staging`` appear as ``target`` in one rename.

    The tree gets the usual umask-based modes first (mkdtemp/mkstemp create 0700/0600 entries, which
    a service user could not read). ``target`` must not exist, or be an empty directory; with
    ``replace`` an existing one is moved aside first and deleted after (readers see the old or the
    new directory, never a mix, but for a moment nothing). Raises ``FileExistsError`` when
    ``target`` exists and is not empty without ``replace``: a concurrent writer got there first.
    """
    staging, target = Path(staging), Path(target)
    umask_modes(staging)
    aside = None
    if target.exists() or target.is_symlink():
        if replace:
            aside = staging_dir(target.parent, f".{target.name}.old-")
            os.rename(target, aside / target.name)
        elif target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
            target.rmdir()
        else:
            raise FileExistsError(f"{target}: exists")
    try:
        os.rename(staging, target)
    except OSError:
        if aside is not None:
            os.rename(aside / target.name, target)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def umask_modes(root: str | os.PathLike) -> None:
    """Give ``root`` and everything under it the modes a plain ``open``/``mkdir`` would have (umask-based)."""
    root = Path(root)
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
