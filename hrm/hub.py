"""``hf://owner/repo[@revision][/subpath]``: a checkpoint straight from the Hugging Face Hub.

Online: one API call lists the revision's files and pins a branch or tag to its commit; the folder rule of
:mod:`hrm.sources` picks the weight file (and the ``all_config.yaml`` that goes with it) from that
listing, and only those files are downloaded, by ``huggingface_hub``, into the standard cache
(``HF_HUB_CACHE`` / ``HF_HOME``). Downloads resume as huggingface_hub does it: 1.x and later retry a
dropped connection within the run with a Range request from the last whole chunk (files on Xet storage
also keep their chunks in the Xet cache across runs); 0.x keeps the partial file in the cache and the
next run continues it. The commit and the Hub's sha256 of the weight file go into the manifest; the
loader checks the file against that sha256.

Offline, decided here once: with ``HF_HUB_OFFLINE=1`` no request is made at all; when the Hub cannot be
reached (connection refused, timeout, 5xx) the run falls back to the cache by itself and says so. Either
way the revision must have been downloaded before; its cached snapshot is resolved with the same folder
rule. Answers that are not outages (no such repo, no such revision, no checkpoint in the repo) never
fall back: a typo must not quietly run a stale cached model.

``huggingface_hub`` is optional (extra ``hub``) and imported only when an ``hf://`` source is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from hrm.errors import CheckpointError
from hrm.sources import (
    OURS_SUFFIX,
    HubRef,
    ResolvedCheckpoint,
    ignored_files,
    config_for,
    format_of,
    pick_checkpoint,
    resolve_local,
    with_notes,
)

DEFAULT_REVISION = "main"
_NETWORK_MODULES = ("httpx", "httpx2", "requests", "urllib3", "h11", "httpcore")


def _hf() -> Any:
    """huggingface_hub, with its ``constants`` (the settings it read from the environment) loaded."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401 - a lazy attribute of the package otherwise
    except ImportError:
        raise CheckpointError("hf:// sources need huggingface_hub: pip install 'hrm-deploy[hub]'") from None
    return huggingface_hub


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _outage(exc: Exception, ref: HubRef, endpoint: str) -> str:
    """Describe a failure that may be an outage (the cache may stand in); raise for the Hub's real answers."""
    from huggingface_hub.utils import HfHubHTTPError, HFValidationError, RepositoryNotFoundError, RevisionNotFoundError

    want = ref.revision or DEFAULT_REVISION
    if isinstance(exc, RevisionNotFoundError):
        raise CheckpointError(f"{ref}: revision '{want}' does not exist in {ref.repo_id} ({endpoint})") from None
    if isinstance(exc, RepositoryNotFoundError):
        raise CheckpointError(f"{ref}: no repository {ref.repo_id} at {endpoint} (a private or gated repo needs "
                              "a token: set HF_TOKEN)") from None
    if isinstance(exc, HFValidationError):
        raise CheckpointError(f"{ref}: {_one_line(exc)}") from None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError):
        if status is not None and status < 500:
            raise CheckpointError(f"{ref}: the hub at {endpoint} answered {status}: {_one_line(exc)}") from None
        return f"HTTP {status}"
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _NETWORK_MODULES:
        return f"{type(exc).__name__}: {_one_line(exc)}"
    raise exc  # not a network failure: a bug, shown as one


def _pick_in_listing(files: Mapping[str, Any], ref: HubRef) -> tuple[str, str]:
    """(repo-relative weight file, why) for ``ref``'s subpath: a file named directly, or the folder rule."""
    if ref.subpath in files:
        return ref.subpath, "named directly"
    prefix = f"{ref.subpath}/" if ref.subpath else ""
    under = [p[len(prefix):] for p in files if p.startswith(prefix)]
    if ref.subpath and not under:
        raise CheckpointError(f"{ref}: {ref.repo_id} has no file or folder '{ref.subpath}' at this revision")
    rel, why = pick_checkpoint(under, str(ref))
    return prefix + rel, why


def fetch(ref: HubRef, *, endpoint: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
          offline: bool | None = None) -> ResolvedCheckpoint:
    """Resolve ``ref`` to files in the Hugging Face cache (downloading what is missing). See the module doc."""
    hf = _hf()
    endpoint = (endpoint or hf.constants.ENDPOINT).rstrip("/")
    offline = hf.constants.HF_HUB_OFFLINE if offline is None else offline
    if offline:
        return _from_cache(ref, endpoint, cache_dir, reason=None)
    try:
        info = hf.HfApi(endpoint=endpoint).repo_info(ref.repo_id, revision=ref.revision, files_metadata=True,
                                                     timeout=hf.constants.HF_HUB_ETAG_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - sorted into answers (raised) and outages (cache) by _outage
        return _from_cache(ref, endpoint, cache_dir, reason=_outage(exc, ref, endpoint))
    files = {s.rfilename: s for s in info.siblings or ()}
    weights, why = _pick_in_listing(files, ref)
    config = None
    if not weights.endswith(OURS_SUFFIX):
        found = config_for(PurePosixPath(weights), lambda p: str(p) in files)
        config = str(found) if found is not None else None
    local: dict[str, Path] = {}
    for rel in filter(None, (weights, config)):
        try:
            path = Path(hf.hf_hub_download(ref.repo_id, rel, revision=ref.revision, endpoint=endpoint,
                                           cache_dir=cache_dir))
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"{ref}: downloading {rel} failed ({_outage(exc, ref, endpoint)}); run the same "
                                  "command again (what was downloaded stays in the cache)") from None
        if info.sha and path.parents[rel.count("/")].name != info.sha:
            raise CheckpointError(f"{ref}: {ref.revision or DEFAULT_REVISION} moved to another commit while "
                                  f"downloading (listed {info.sha}); run the same command again")
        local[rel] = path
    lfs = getattr(files[weights], "lfs", None)
    hub = {"repo": ref.repo_id, "requested": ref.revision or DEFAULT_REVISION, "revision": info.sha,
           "file": weights, "config": config, "endpoint": endpoint}
    return ResolvedCheckpoint(str(ref), local[weights], format_of(local[weights]),
                              local[config] if config else None, why,
                              ignored_files(list(files), [weights, config or ""], weights), hub,
                              sha256=(lfs["sha256"] if isinstance(lfs, Mapping) else getattr(lfs, "sha256", None)))


def _cached_snapshot(ref: HubRef, cache_dir: str | os.PathLike[str] | None) -> tuple[Path, str] | None:
    """(snapshot folder, commit) of ``ref``'s revision in the cache: a branch/tag via its ref, or a commit."""
    hf = _hf()
    want = ref.revision or DEFAULT_REVISION
    try:
        cache = hf.scan_cache_dir(cache_dir)
    except hf.CacheNotFound:
        return None
    for repo in cache.repos:
        if repo.repo_id == ref.repo_id and repo.repo_type == "model":
            for rev in repo.revisions:
                if want in rev.refs or rev.commit_hash == want:
                    return Path(rev.snapshot_path), rev.commit_hash
    return None


def _from_cache(ref: HubRef, endpoint: str, cache_dir: str | os.PathLike[str] | None,
                reason: str | None) -> ResolvedCheckpoint:
    """Offline (``reason`` None: HF_HUB_OFFLINE) or the Hub unreachable (``reason``): the cached snapshot."""
    hf = _hf()
    want = ref.revision or DEFAULT_REVISION
    found = _cached_snapshot(ref, cache_dir)
    cache_name = cache_dir or hf.constants.HF_HUB_CACHE
    if found is None:
        if reason is None:
            raise CheckpointError(f"{ref}: HF_HUB_OFFLINE is set and {ref.repo_id}@{want} is not in the Hugging "
                                  f"Face cache ({cache_name}); download it once with the hub reachable")
        raise CheckpointError(f"{ref}: cannot reach the hub at {endpoint} ({reason}), and {ref.repo_id}@{want} is "
                              f"not in the Hugging Face cache ({cache_name})")
    snapshot, commit = found
    resolved = resolve_local(snapshot / ref.subpath if ref.subpath else snapshot, given=str(ref),
                             where=f"{ref} (cached commit {commit[:12]})")
    note = (f"offline (HF_HUB_OFFLINE): no request made; the cached snapshot of {want} is commit {commit}"
            if reason is None else
            f"hub unreachable at {endpoint} ({reason}): using the cached snapshot of {want}, commit {commit} "
            "(the hub may have newer commits)")
    rel = lambda p: p.relative_to(snapshot).as_posix() if p is not None else None  # noqa: E731
    hub = {"repo": ref.repo_id, "requested": want, "revision": commit, "file": rel(resolved.weights),
           "config": rel(resolved.config) if resolved.config and snapshot in resolved.config.parents else None,
           "endpoint": endpoint, "offline": True}
    return with_notes(resolved, note, hub=hub)
