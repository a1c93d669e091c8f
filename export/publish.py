"""Where an export lands: one writer per target, what ``--force`` may replace, and an atomic publish.

A deployment directory holds ``manifest.json`` and version folders (``v1/``, ``v2/``, ...) with the
graphs and initial states; the manifest names its files inside one version folder. An export:

1. takes an exclusive lock beside the target (``.<name>.lock``): a second export to the same
   ``--out`` fails at once instead of racing it, and everything below happens under the lock;
2. removes staging folders that killed exports left (``.<name>.partial-*`` beside the target,
   ``.partial-*`` inside it);
3. checks the target: a missing or empty directory is fine; an existing deployment needs
   ``force``; anything else (a folder that is not a deployment, or one that holds the source
   checkpoint, e.g. ``--out .``) is refused even with ``force``, because nothing of it is ours to
   replace;
4. writes everything into a staging folder laid out like the target (``v<N>/...`` + manifest);
5. publishes: a new target is one rename of the staging folder; an existing deployment gets the new
   version folder renamed in, then ``manifest.json`` replaced in one rename. A reader that read the old
   manifest finds the old version's files whole (the previous version is kept until the next export;
   older ones are deleted once they were superseded a minute ago), a reader that read the new one finds
   the new files: never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hrm.errors import ExportError
from hrm.io import LockHeld, exclusive_lock, publish_dir, remove_stale, staging_dir, umask_modes
from hrm.manifest import FORMAT, MANIFEST_NAME

_VERSION = re.compile(r"^v(\d+)$")
PARTIAL = ".partial-"
#: How long a superseded version folder stays for readers still loading it (the previous one always stays).
GRACE_S = 60.0


@dataclass
class Target:
    """An export's destination while its lock is held: the staging folder and the version it fills."""

    out_dir: Path
    stage: Path  # laid out like out_dir: <version>/... and manifest.json
    version: str  # "v3": the folder of this export's files
    existing: dict | None  # the manifest being replaced (raw JSON), None for a new deployment

    @property
    def prefix(self) -> str:
        """What this export's manifest paths start with (``v3/``: ``v3/fp16/l_step.onnx``)."""
        return f"{self.version}/"

    def refuse_source_inside(self, source: Path) -> None:
        """``--force`` never replaces a directory that holds the checkpoint being exported."""
        if self.existing is not None and _is_inside(source, self.out_dir):
            raise ExportError(f"{self.out_dir}: holds the source checkpoint {source}; choose another --out "
                              "(--force replaces only a deployment directory, never the checkpoint's)")

    def publish(self) -> None:
        """Make the staged export the deployment (see the module doc); then drop old version folders."""
        if self.existing is None:
            try:
                publish_dir(self.stage, self.out_dir)
            except FileExistsError:
                raise ExportError(f"{self.out_dir}: appeared while exporting (not by hrm-export: it holds no "
                                  "lock); nothing was replaced") from None
            return
        umask_modes(self.stage)
        publish_dir(self.stage / self.version, self.out_dir / self.version)
        os.utime(self.out_dir / self.version)  # its mtime says when it superseded the previous version
        (self.stage / MANIFEST_NAME).replace(self.out_dir / MANIFEST_NAME)  # the switch: one rename
        shutil.rmtree(self.stage, ignore_errors=True)
        self._drop_old_versions()

    def _drop_old_versions(self) -> None:
        """Delete version folders that are neither this export's nor the previous one and were superseded
        more than :data:`GRACE_S` ago: a reader that read an older manifest may still be opening its files."""
        previous = _version_of(self.existing or {})
        versions = sorted((int(m.group(1)), e) for e in self.out_dir.iterdir()
                          if (m := _VERSION.match(e.name)) and e.is_dir() and not e.is_symlink())
        now = time.time()
        for (_, entry), (_, successor) in zip(versions, versions[1:]):
            if entry.name not in (self.version, previous) and now - successor.stat().st_mtime >= GRACE_S:
                shutil.rmtree(entry, ignore_errors=True)
        if previous is None:  # a deployment from before version folders: its files are not in one
            for rel in _listed_files(self.existing or {}):
                path = self.out_dir / rel
                if _is_inside(path, self.out_dir) and path.is_file():
                    path.unlink()
                    for parent in path.parents:
                        if parent == self.out_dir or any(parent.iterdir()):
                            break
                        parent.rmdir()


@contextlib.contextmanager
def open_target(out_dir: Path, force: bool) -> Iterator[Target]:
    """Lock ``out_dir``, check it (module doc, steps 1-3) and stage; the staging folder is removed when
    the body raises (nothing under ``out_dir`` changes unless :meth:`Target.publish` ran)."""
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create the parent directory {parent} ({exc.strerror})") from None
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(parent / f".{out_dir.name}.lock"))
        except LockHeld as exc:
            raise ExportError(f"{out_dir}: another export is writing this deployment ({exc.holder}); wait for it "
                              "or choose another --out") from None
        except OSError as exc:
            raise ExportError(f"{out_dir}: cannot write in {parent} ({exc.strerror})") from None
        remove_stale(parent, f".{out_dir.name}{PARTIAL}")
        remove_stale(parent, f".{out_dir.name}.old-")  # (what exports before version folders left)
        existing = _check(out_dir, force)
        if existing is not None:
            remove_stale(out_dir, PARTIAL)
        version = f"v{_next_version(out_dir)}"
        try:
            stage = staging_dir(out_dir if existing is not None else parent,
                                PARTIAL if existing is not None else f".{out_dir.name}{PARTIAL}")
        except OSError as exc:
            raise ExportError(f"{out_dir}: cannot write in {exc.filename or parent} ({exc.strerror})") from None
        stack.callback(shutil.rmtree, stage, ignore_errors=True)  # gone already once published
        yield Target(out_dir, stage, version, existing)


def _check(out_dir: Path, force: bool) -> dict | None:
    """None for a new target; the raw manifest of an existing deployment that ``force`` may replace."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        return None
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a directory")
    if not any(out_dir.iterdir()):
        return None
    manifest = _our_manifest(out_dir)
    if manifest is None:
        raise ExportError(f"{out_dir}: directory exists, is not empty and is not a deployment (no hrm-deploy "
                          f"{MANIFEST_NAME}); choose another --out (--force replaces only a deployment)")
    if not force:
        raise ExportError(f"{out_dir}: a deployment exists there; pass --force to replace it")
    return manifest


def _our_manifest(out_dir: Path) -> dict | None:
    try:
        raw = json.loads((out_dir / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return raw if isinstance(raw, dict) and raw.get("format") == FORMAT else None


def _next_version(out_dir: Path) -> int:
    numbers = [int(m.group(1)) for e in (out_dir.iterdir() if out_dir.is_dir() else ())
               if (m := _VERSION.match(e.name))]
    return max(numbers, default=0) + 1


def _listed_files(raw: dict) -> list[str]:
    """The deployment files a raw manifest names: initial states, graphs and engines, puzzle identifiers
    (not the ``source`` blocks, which name files outside the deployment)."""
    files = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str) and isinstance(node.get("sha256"), str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    ids = raw.get("puzzle_identifiers")
    ids = [{k: v for k, v in ids.items() if k != "source"}] if isinstance(ids, dict) else []
    walk({"init": raw.get("init"), "variants": raw.get("variants"), "puzzle_identifiers": ids})
    return files


def _version_of(raw: dict) -> str | None:
    """The version folder a manifest's files live in (None for the layout before version folders)."""
    tops = {Path(f).parts[0] for f in _listed_files(raw) if Path(f).parts}
    return next(iter(tops)) if len(tops) == 1 and _VERSION.match(next(iter(tops))) else None


def _is_inside(path: Path, directory: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(directory).resolve())
    except OSError:
        return False
