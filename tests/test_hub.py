"""``hf://`` sources against a local stand-in for the Hugging Face Hub (tests/hub_server.py, 127.0.0.1):
download into the standard cache, pin the commit and sha256 in the manifest, run again offline from the
cache, and fail with one line for a wrong revision, an unreachable hub and a repo without a checkpoint.

The CLI runs are subprocesses with the environment a user sets (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE):
huggingface_hub reads it at import, and nothing of ours is mocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from helpers import random_tensors, tiny_config  # noqa: E402
from hub_server import FakeHub  # noqa: E402
from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.errors import CheckpointError  # noqa: E402
from hrm.sources import resolve_checkpoint  # noqa: E402
from published_layouts import write_published  # noqa: E402

REPO = "sapientinc/HRM-checkpoint-sudoku-extreme"
SUDOKU_PATH = "data/sudoku-extreme-1k-aug-1000"


@pytest.fixture(scope="module")
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sudoku_repo(tmp_path_factory, hub):
    """A small Sudoku-shaped model in the official repo layout, served as REPO; returns (folder, commit)."""
    pytest.importorskip("torch")
    cfg = tiny_config(seq_len=81, vocab_size=11, num_puzzle_identifiers=1)
    folder = tmp_path_factory.mktemp("repo")
    write_published(folder, cfg, random_tensors(cfg), SUDOKU_PATH)
    return folder, hub.add_folder(REPO, folder)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now: connection refused


def _env(home: Path, endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="5", **extra)
    return env


def _cli(module: str, args: list, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = f"import sys; from {module} import main; sys.argv[0] = 'cli'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


def _one_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _resolved_files(hub: FakeHub, since: int = 0) -> set[str]:
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path, _ in hub.requests[since:]
            if method == "GET" and "/resolve/" in path}


def test_export_from_the_hub_then_offline_from_the_cache(tmp_path, hub, sudoku_repo):
    folder, commit = sudoku_repo
    home = tmp_path / "hf"
    weights_sha = hashlib.sha256((folder / "checkpoint").read_bytes()).hexdigest()
    export = "hrm.cli.export"
    before = len(hub.requests)

    # 1. online: the repo is listed, and only the weights and their config are downloaded
    proc = _cli(export, ["--checkpoint", f"hf://{REPO}", "--out", tmp_path / "d1", "--precision", "fp32", "--json"],
                _env(home, hub.url))
    assert proc.returncode == 0, proc.stderr
    assert _resolved_files(hub, before) == {"checkpoint", "all_config.yaml"}  # not README, *.py, .gitattributes
    assert f"task sudoku 9x9 inferred from data_path {SUDOKU_PATH}" in proc.stderr
    source = json.loads(proc.stdout)["source"]
    assert source["hub"] == {"repo": REPO, "requested": "main", "revision": commit, "file": "checkpoint",
                             "config": "all_config.yaml", "endpoint": hub.url}
    assert source["sha256"] == weights_sha and source["given"] == f"hf://{REPO}"
    cached = home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit / "checkpoint"
    assert source["path"] == str(cached) and cached.is_file()  # the standard cache layout under HF_HOME
    manifest = json.loads((tmp_path / "d1" / "manifest.json").read_text())
    assert manifest["source"]["hub"]["revision"] == commit and manifest["source"]["sha256"] == weights_sha
    assert manifest["task"]["name"] == "sudoku"

    # 2. HF_HUB_OFFLINE=1: not one request, the same commit and file from the cache
    before = len(hub.requests)
    proc = _cli(export, ["--checkpoint", f"hf://{REPO}", "--out", tmp_path / "d2", "--precision", "fp32", "--json"],
                _env(home, hub.url, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr
    assert len(hub.requests) == before
    assert f"offline (HF_HUB_OFFLINE): no request made; the cached snapshot of main is commit {commit}" in proc.stderr
    source2 = json.loads(proc.stdout)["source"]
    assert (source2["hub"]["revision"], source2["sha256"], source2["path"]) == (commit, weights_sha, str(cached))

    # 3. the hub unreachable: falls back to the cache by itself, and says so
    dead = _closed_port_url()
    proc = _cli(export, ["--checkpoint", f"hf://{REPO}", "--out", tmp_path / "d3", "--precision", "fp32"],
                _env(home, dead))
    assert proc.returncode == 0, proc.stderr
    assert f"hub unreachable at {dead}" in proc.stderr and f"using the cached snapshot of main, commit {commit}" in proc.stderr
    assert json.loads((tmp_path / "d3" / "manifest.json").read_text())["source"]["hub"]["revision"] == commit


def test_wrong_revision_one_line(tmp_path, hub, sudoku_repo):
    proc = _cli("hrm.cli.export", ["--checkpoint", f"hf://{REPO}@v9", "--out", tmp_path / "d"],
                _env(tmp_path / "hf", hub.url))
    _one_line(proc, f"error: hf://{REPO}@v9: revision 'v9' does not exist in {REPO} ({hub.url})")
    assert proc.returncode == 2 and not (tmp_path / "d").exists()


def test_unreachable_hub_without_cache_one_line(tmp_path):
    dead = _closed_port_url()
    proc = _cli("hrm.cli.export", ["--checkpoint", f"hf://{REPO}", "--out", tmp_path / "d"], _env(tmp_path / "hf", dead))
    _one_line(proc, f"hf://{REPO}: cannot reach the hub at {dead} (Connect",  # ConnectError (httpx), ConnectionError (requests)
              f"{REPO}@main is not in the Hugging Face cache ({tmp_path / 'hf' / 'hub'})")
    proc = _cli("hrm.cli.export", ["--checkpoint", f"hf://{REPO}", "--out", tmp_path / "d"],
                _env(tmp_path / "hf", dead, HF_HUB_OFFLINE="1"))
    _one_line(proc, "HF_HUB_OFFLINE is set", "download it once with the hub reachable")


def test_repo_without_checkpoint_one_line(tmp_path, hub):
    hub.add_commit("someone/code-only", {"README.md": b"# code\n", "model.py": b"import torch\n"})
    proc = _cli("hrm.cli.ckpt", ["info", "hf://someone/code-only"], _env(tmp_path / "hf", hub.url))
    _one_line(proc, "error: hf://someone/code-only: no checkpoint found", "found README.md, model.py")
    proc = _cli("hrm.cli.ckpt", ["info", "hf://nobody/nothing"], _env(tmp_path / "hf", hub.url))
    _one_line(proc, "no repository nobody/nothing at", "HF_TOKEN")


# ---- in-process: the library API with explicit endpoint and cache ---------------------------------------

def test_subpath_picks_one_run_and_downloads_only_it(tmp_path, hub):
    """A TRM-style release with two runs: the bare repo is ambiguous (listed), a subpath picks one run, and
    only that run's files are fetched."""
    cfg = tiny_config()
    folder = tmp_path / "release"
    for run in ("arc_v1_public/step_518071", "arc_v2_public/step_723914"):
        write_published(folder, cfg, random_tensors(cfg), "data/arc1concept-aug-1000", weights=run, extras=False)
    (folder / "README.md").write_text("# two runs\n")
    commit = hub.add_folder("someone/trm-release", folder)
    kw = dict(endpoint=hub.url, cache_dir=tmp_path / "cache", offline=False)
    with pytest.raises(CheckpointError, match=r"2 subfolders hold checkpoints: arc_v1_public/ \(step_518071\), "
                                              r"arc_v2_public/ \(step_723914\); name one, e\.g\. hf://someone/trm-release/arc_v1_public"):
        resolve_checkpoint("hf://someone/trm-release", **kw)
    before = len(hub.requests)
    r = resolve_checkpoint(f"hf://someone/trm-release@{commit}/arc_v2_public", **kw)
    assert _resolved_files(hub, before) == {"arc_v2_public/step_723914", "arc_v2_public/all_config.yaml"}
    assert r.hub["file"] == "arc_v2_public/step_723914" and r.hub["revision"] == commit
    assert r.sha256 == hashlib.sha256((folder / "arc_v2_public" / "step_723914").read_bytes()).hexdigest()


def test_corrupt_cached_file_is_detected(tmp_path, hub, sudoku_repo):
    kw = dict(endpoint=hub.url, cache_dir=tmp_path / "cache", offline=False)
    r = resolve_checkpoint(f"hf://{REPO}", **kw)
    assert load_checkpoint(r).sha256 == r.sha256
    blob = r.weights.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))  # same size, so huggingface_hub takes the cached file as it is
    with pytest.raises(CheckpointError, match="differs from the .* its source hf://.* promises"):
        load_checkpoint(resolve_checkpoint(f"hf://{REPO}", **kw))


def test_download_cut_off_resumes(tmp_path, hub):
    """The connection drops part-way through the weights; the download goes on from where it stopped (a
    Range request for the rest, not the whole file again) and the file is whole. huggingface_hub 1.x+
    retries within the run from its last whole 10 MiB chunk; 0.x fails the run and resumes the next one
    from the partial file it keeps in the cache (the error line says to run again)."""
    data = os.urandom(12 * 2**20)
    hub.add_commit("someone/big", {"checkpoint": data, "all_config.yaml": b"arch: {}\n"})
    hub.interrupt["checkpoint"] = 11 * 2**20
    kw = dict(endpoint=hub.url, cache_dir=tmp_path / "cache", offline=False)
    before = len(hub.requests)
    try:
        r = resolve_checkpoint("hf://someone/big", **kw)
    except CheckpointError as exc:
        assert "downloading checkpoint failed" in str(exc) and "run the same command again" in str(exc)
        r = resolve_checkpoint("hf://someone/big", **kw)
    ranges = [h.get("Range") or h.get("range") for m, p, h in hub.requests[before:] if m == "GET" and p.endswith("/checkpoint")]
    assert ranges[0] is None and ranges[1:] in ([f"bytes={10 * 2**20}-"], [f"bytes={11 * 2**20}-"]), ranges
    assert hashlib.sha256(r.weights.read_bytes()).hexdigest() == r.sha256 == hashlib.sha256(data).hexdigest()
