"""What a user's checkpoint argument names -> the weight file, its config file, and where they came from.

Every command that loads a checkpoint (``--checkpoint``, ``hrm-ckpt info|convert``, ``--init-from``) goes
through :func:`resolve_checkpoint` (called by :func:`hrm.checkpoint.load_checkpoint`), so all of them
accept the same sources:

* a file: our ``*.safetensors``, or an official state dict (``step_N``, ``checkpoint``, any ``torch.save``
  file) with ``all_config.yaml`` beside it or one folder up;
* a folder as training runs and Hugging Face repos leave them: it holds a file named ``checkpoint``,
  ``step_N`` files (the latest is taken) or one ``*.safetensors``, or holds them one subfolder down
  (TRM releases: ``arc_v1_public/step_518071`` with ``all_config.yaml`` beside it). Several candidates
  are listed, never guessed between; everything else (the training code copied next to the weights,
  README.md, .gitattributes) is ignored;
* ``hf://owner/repo[@revision][/subpath]``: the same rule applied to the repo's file listing, and the
  chosen files downloaded into the standard Hugging Face cache (:mod:`hrm.hub`).

The rule is one function over relative paths (:func:`pick_checkpoint`), so a folder on disk, a cached
snapshot and a repo on the Hub resolve the same way. This module is torch-free and reads no weights.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

from hrm.errors import CheckpointError

HF_SCHEME = "hf://"
CONFIG_NAME = "all_config.yaml"  # what the official trainers write beside their checkpoints
OFFICIAL_NAME = "checkpoint"  # the weight file's name in the official HRM Hugging Face repos
OURS_SUFFIX = ".safetensors"
STEP_RE = re.compile(r"^step_(\d+)$")  # what pretrain.py names each saved checkpoint
OFFICIAL_SUFFIXES = (".pt", ".pth", ".bin")  # accepted when named directly, never picked from a folder
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_weight_name(name: str) -> bool:
    """A file name :func:`pick_checkpoint` considers: ``checkpoint``, ``step_N`` or ``*.safetensors``."""
    return name == OFFICIAL_NAME or STEP_RE.match(name) is not None or name.endswith(OURS_SUFFIX)


# ---- hf:// references ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HubRef:
    """``hf://owner/repo[@revision][/subpath]`` (a revision holding ``/`` is written URL-encoded)."""

    repo_id: str
    revision: str | None = None  # None: the repo's default branch (main)
    subpath: str = ""

    @classmethod
    def parse(cls, text: str) -> "HubRef":
        if not text.startswith(HF_SCHEME):
            raise CheckpointError(f"{text}: not an {HF_SCHEME} source")
        parts = text[len(HF_SCHEME):].split("/")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise CheckpointError(f"{text}: expected {HF_SCHEME}owner/repo[@revision][/subpath]")
        owner, name = parts[0], parts[1]
        revision = None
        if "@" in name:
            name, revision = name.split("@", 1)
            revision = unquote(revision)
            if not revision:
                raise CheckpointError(f"{text}: empty revision after '@'")
        for what, value in (("owner", owner), ("repo name", name)):
            if not _REPO_PART.match(value) or ".." in value:
                raise CheckpointError(f"{text}: {what} {value!r} is not a valid Hugging Face name "
                                      "(letters, digits, '-', '_', '.')")
        rest = [p for p in parts[2:] if p]
        if any(p in (".", "..") for p in rest):
            raise CheckpointError(f"{text}: subpath may not contain '.' or '..'")
        return cls(f"{owner}/{name}", revision, "/".join(rest))

    def __str__(self) -> str:
        rev = f"@{quote(self.revision, safe='')}" if self.revision else ""
        return f"{HF_SCHEME}{self.repo_id}{rev}" + (f"/{self.subpath}" if self.subpath else "")


def as_source_text(given: str | os.PathLike[str]) -> str:
    """The user's argument as text. ``Path("hf://o/r")`` collapses the double slash to ``hf:/o/r``; a
    command that typed its option as a path still means the hub, so that spelling is read back."""
    text = os.fspath(given)
    if isinstance(given, PurePath) and text.startswith("hf:/") and not text.startswith(HF_SCHEME):
        text = HF_SCHEME + text[len("hf:/"):]
    return text


# ---- the folder rule ---------------------------------------------------------------------------------

def _choose(names: list[str], where: str) -> tuple[str, str]:
    """Pick among the weight files of one folder: (name, why). Only step_N files -> the latest."""
    steps = sorted((n for n in names if STEP_RE.match(n)), key=lambda n: int(STEP_RE.match(n)[1]))  # type: ignore[index]
    others = sorted(n for n in names if not STEP_RE.match(n))
    if not others:
        if len(steps) == 1:
            return steps[0], "the only step_N file"
        shown = ", ".join(steps) if len(steps) <= 4 else f"{steps[0]}, ..., {steps[-1]}"
        return steps[-1], f"the latest of {len(steps)} step_N files ({shown})"
    if len(others) == 1 and not steps:
        return others[0], "the only checkpoint file"
    listed = others + ([f"{len(steps)} step_N files (latest {steps[-1]})"] if steps else [])
    raise CheckpointError(f"{where}: holds several checkpoints ({', '.join(listed)}); name the file to use, "
                          f"e.g. {where.rstrip('/')}/{others[0]}")


def pick_checkpoint(paths: Iterable[str], where: str) -> tuple[str, str]:
    """The weight file among ``paths`` (POSIX paths relative to the folder): ``(relative path, why)``.

    Weight files in the folder itself win; else the one subfolder that has some. Several subfolders
    with weights, or several kinds of weight file in one folder, raise :class:`CheckpointError`
    listing them. Raises too when there is none, saying what was there.
    """
    paths = sorted(set(paths))
    top = [p for p in paths if "/" not in p and is_weight_name(p)]
    if top:
        return _choose(top, where)
    groups: dict[str, list[str]] = {}
    for p in paths:
        sub, _, name = p.partition("/")
        if name and "/" not in name and is_weight_name(name):
            groups.setdefault(sub, []).append(name)
    if not groups:
        shown = ", ".join(paths[:8]) + (f", ... ({len(paths)} files)" if len(paths) > 8 else "") if paths else "nothing"
        raise CheckpointError(f"{where}: no checkpoint found: expected a file named '{OFFICIAL_NAME}', step_N or "
                              f"*{OURS_SUFFIX} in it or in one subfolder; found {shown}")
    if len(groups) > 1:
        listed = ", ".join(f"{sub}/ ({', '.join(sorted(names)[:3])}{', ...' if len(names) > 3 else ''})"
                           for sub, names in sorted(groups.items()))
        raise CheckpointError(f"{where}: {len(groups)} subfolders hold checkpoints: {listed}; name one, "
                              f"e.g. {where.rstrip('/')}/{min(groups)}")
    sub, names = next(iter(groups.items()))
    name, why = _choose(names, f"{where.rstrip('/')}/{sub}")
    return f"{sub}/{name}", f"{why}, in subfolder {sub}/"


def config_for(weights: PurePath, exists: Callable[[PurePath], bool]) -> PurePath | None:
    """The official config of a weight file: ``all_config.yaml`` beside it, else one folder up."""
    for folder in dict.fromkeys((weights.parent, weights.parent.parent)):
        candidate = folder / CONFIG_NAME
        if exists(candidate):
            return candidate
    return None


def format_of(path: Path) -> str:
    """``"hrm"`` (our safetensors) or ``"official"`` (a torch.save state dict), from name and magic bytes."""
    if path.suffix == OURS_SUFFIX:
        return "hrm"
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"PK" or head[:1] == b"\x80" or is_weight_name(path.name) or path.suffix in OFFICIAL_SUFFIXES:
        return "official"
    raise CheckpointError(f"{path}: unknown checkpoint format (expected our .safetensors file or an official "
                          "step_N / checkpoint state dict with all_config.yaml beside it)")


# ---- the answer ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedCheckpoint:
    """What a source resolved to: the files to load and the provenance to record in the manifest."""

    given: str  # what the user wrote
    weights: Path
    format: str  # "hrm" | "official"
    config: Path | None = None  # all_config.yaml (official weights only)
    found: str = "named directly"  # why this weight file
    ignored: tuple[str, ...] = ()  # other files beside it, not used
    hub: Mapping[str, Any] | None = None  # repo, requested, revision (commit), file, config, endpoint[, offline]
    sha256: str | None = None  # what the source promises for the weight file (the Hub's LFS hash)
    notes: tuple[str, ...] = ()  # e.g. that the hub was offline and the cache stood in

    def describe(self) -> list[str]:
        """Lines for ``hrm-ckpt info`` and ``hrm-export``'s progress: what was found, from where."""
        lines = []
        if self.hub:
            h = self.hub
            lines.append(f"hub {h['repo']}@{h['requested']} = commit {h['revision']} ({h['endpoint']}), "
                         f"file {h['file']}" + (f" sha256 {self.sha256[:16]}..." if self.sha256 else ""))
        lines.append(f"weights {self.weights.name} ({self.found})"
                     + (f"; config {self.config.name} from {self.config.parent}" if self.config else ""))
        if self.ignored:
            shown = ", ".join(self.ignored[:6]) + (f", ... ({len(self.ignored)} files)" if len(self.ignored) > 6 else "")
            lines.append(f"ignored: {shown}")
        return lines + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        """The provenance recorded in the manifest's ``source`` block (beside path, format, sha256)."""
        out: dict[str, Any] = {"given": self.given, "found": self.found}
        if self.config is not None:
            out["config"] = str(self.config.absolute())
        if self.hub:
            out["hub"] = dict(self.hub)
        return out


def _listing(folder: Path) -> list[str]:
    """Files in ``folder`` and one level of subfolders (hidden folders such as .cache skipped)."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            out.append(entry.name)
        elif entry.is_dir() and not entry.name.startswith("."):
            out += [f"{entry.name}/{e.name}" for e in sorted(os.scandir(entry.path), key=lambda e: e.name) if e.is_file()]
    return out


def ignored_files(paths: Collection[str], used: Collection[str], weights: str) -> tuple[str, ...]:
    """Files at the top level and beside ``weights`` that are neither used nor other weight files."""
    folder = str(PurePosixPath(weights).parent)
    level = {p for p in paths if "/" not in p or str(PurePosixPath(p).parent) == folder}
    return tuple(sorted(level - set(used) - {p for p in level if is_weight_name(PurePosixPath(p).name)}))


def resolve_local(path: Path, given: str | None = None, where: str | None = None) -> ResolvedCheckpoint:
    """Resolve a file or folder on disk (``where`` names it in messages, e.g. the hf:// source)."""
    where = where or str(path)
    if not path.exists():
        raise CheckpointError(f"{where}: no such file or directory")
    found, ignored = "named directly", ()
    weights = path
    if path.is_dir():
        paths = _listing(path)
        rel, found = pick_checkpoint(paths, where)
        weights = path / rel
    fmt = format_of(weights)
    config = config_for(weights, lambda p: Path(p).is_file()) if fmt == "official" else None
    config = Path(config) if config is not None else None
    if path.is_dir():
        used = [p.relative_to(path).as_posix() for p in (weights, config) if p is not None and path in p.parents]
        ignored = ignored_files(paths, used, rel)
    return ResolvedCheckpoint(given or str(path), weights, fmt, config, found, ignored)


def resolve_checkpoint(given: str | os.PathLike[str] | ResolvedCheckpoint, *, endpoint: str | None = None,
                       cache_dir: str | os.PathLike[str] | None = None,
                       offline: bool | None = None) -> ResolvedCheckpoint:
    """Resolve what the user gave (path, folder or ``hf://`` reference). ``endpoint`` / ``cache_dir`` /
    ``offline`` apply to ``hf://`` only; None = huggingface_hub's own settings (HF_ENDPOINT,
    HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE)."""
    if isinstance(given, ResolvedCheckpoint):
        return given
    text = as_source_text(given)
    if text.startswith(HF_SCHEME):
        from hrm.hub import fetch

        return fetch(HubRef.parse(text), endpoint=endpoint, cache_dir=cache_dir, offline=offline)
    return resolve_local(Path(text), given=text)


def with_notes(resolved: ResolvedCheckpoint, *notes: str, **changes: Any) -> ResolvedCheckpoint:
    return replace(resolved, notes=resolved.notes + tuple(notes), **changes)
