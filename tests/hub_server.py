"""A local stand-in for the Hugging Face Hub: the few HTTP endpoints ``huggingface_hub`` calls to list and
download a model repo, served on 127.0.0.1 so the ``hf://`` tests need no network and mock none of our code.

Endpoints (as the Hub answers them):

* ``GET /api/models/{owner}/{name}[/revision/{rev}]`` -> model info: ``id``, ``sha`` (the commit),
  ``siblings`` (``rfilename``; with ``?blobs=true`` also ``size``, ``blobId`` and ``lfs`` {sha256, size,
  pointerSize} for large files);
* ``GET /api/models/{owner}/{name}/tree/{rev}[/{path}]`` -> the file listing (``?recursive=true``);
* ``HEAD|GET /{owner}/{name}/resolve/{rev}/{path}`` -> the file, with ``X-Repo-Commit``, ``ETag`` (the
  git blob id; for LFS files ``X-Linked-Etag`` = the sha256 and ``X-Linked-Size``) and ``Range`` support
  (``huggingface_hub`` resumes a download cut off mid-file with ``Range: bytes=N-``; ``hub.interrupt``
  cuts one off).

Unknown repos, revisions and files get 404 with the ``X-Error-Code`` the Hub sends (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``), which ``huggingface_hub`` turns into its typed errors.
Every request is recorded (``hub.requests``) so a test can prove a run made none.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

#: suffixes stored as plain git blobs; everything else (weights) as LFS, as the Hub's .gitattributes does
TEXT_SUFFIXES = {".yaml", ".yml", ".md", ".py", ".json", ".txt"}


def _is_lfs(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not (name.startswith(".") or Path(name).suffix in TEXT_SUFFIXES)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeHub:
    """Repos ``{repo_id: {"refs": {name: commit}, "commits": {commit: {path: bytes}}}}`` served over HTTP."""

    repos: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)
    #: file path -> bytes to send before dropping the connection, once (a download cut off mid-file)
    interrupt: dict[str, int] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def add_commit(self, repo_id: str, files: dict[str, bytes], ref: str = "main") -> str:
        """Add a commit holding ``files`` (relative path -> content) and point ``ref`` at it; returns its sha."""
        digest = hashlib.sha1()
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        sha = digest.hexdigest()
        repo["commits"][sha] = dict(files)
        repo["refs"][ref] = sha
        return sha

    def add_folder(self, repo_id: str, folder: Path, ref: str = "main") -> str:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add_commit(repo_id, files, ref)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # ---- what the handler asks ----------------------------------------------------------------
    def lookup(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]] | str:
        """(commit, files) or the X-Error-Code to answer with."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return "RepoNotFound"
        commit = repo["refs"].get(revision, revision if revision in repo["commits"] else None)
        if commit is None:
            return "RevisionNotFound"
        return commit, repo["commits"][commit]


def _entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_id(data)}
    if _is_lfs(path):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # ---- routing --------------------------------------------------------------------------------
    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        self.hub.requests.append((self.command, url.path, dict(self.headers)))
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id = "/".join(parts[2:4])
            rest = parts[4:]
            if not rest or rest[0] == "revision":
                return self._info(repo_id, rest[1] if len(rest) > 1 else "main", query)
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo_id, rest[1], "/".join(rest[2:]), query)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
        self._error(404, "EntryNotFound", f"no route {url.path}")

    def _found(self, repo_id: str, revision: str):
        found = self.hub.lookup(repo_id, revision)
        if isinstance(found, str):
            self._error(404, found, f"{found}: {repo_id}@{revision}")
            return None
        return found

    def _info(self, repo_id: str, revision: str, query: dict) -> None:
        found = self._found(repo_id, revision)
        if found is None:
            return
        commit, files = found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path, data in sorted(files.items()):
            sib: dict = {"rfilename": path}
            if blobs:
                e = _entry(path, data)
                sib.update(size=e["size"], blobId=e["oid"])
                if "lfs" in e:
                    sib["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["lfs"]["size"], "pointerSize": 134}
            siblings.append(sib)
        self._json({"_id": commit[:24], "id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                    "siblings": siblings, "tags": [], "lastModified": "2025-07-22T00:00:00.000Z"})

    def _tree(self, repo_id: str, revision: str, prefix: str, query: dict) -> None:
        found = self._found(repo_id, revision)
        if found is None:
            return
        _, files = found
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        base = prefix.rstrip("/") + "/" if prefix else ""
        out, dirs = [], set()
        for path, data in sorted(files.items()):
            if not path.startswith(base):
                continue
            rel = path[len(base):]
            if recursive or "/" not in rel:
                out.append(_entry(path, data))
            if "/" in rel:
                parts = rel.split("/")
                for depth in range(1, len(parts) if recursive else 2):
                    dirs.add(base + "/".join(parts[:depth]))
        out += [{"type": "directory", "path": d, "oid": _git_blob_id(d.encode()), "size": 0} for d in sorted(dirs)]
        self._json(out)

    def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        found = self._found(repo_id, revision)
        if found is None:
            return
        commit, files = found
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} not in {repo_id}@{revision}")
        data = files[path]
        entry = _entry(path, data)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if "lfs" in entry:
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(len(data))
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            start = int(rng[6:].split("-")[0] or 0)
            if start >= len(data):
                return self._error(416, "RangeNotSatisfiable", rng)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            cut = self.hub.interrupt.pop(path, None)
            self.wfile.write(body if cut is None else body[:cut])
            if cut is not None:
                self.close_connection = True  # the client sees the body end early

    # ---- replies --------------------------------------------------------------------------------
    def _json(self, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
