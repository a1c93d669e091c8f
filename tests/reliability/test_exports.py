"""Exports under concurrent use and interruption: one writer per target, --force replaces only a
deployment, a reader never loads graphs of two models, and a killed export's leftovers are cleaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hrm.errors import ExportError  # noqa: E402
from hrm.export import export_deployment  # noqa: E402
from hrm.manifest import load_manifest  # noqa: E402
from hrm.runtime.backends.options import OrtOptions  # noqa: E402


@pytest.fixture(scope="module")
def second_ckpt(tmp_path_factory, tiny_cfg):
    """The tiny model with other weights: a deployment of it answers differently."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import random_tensors

    from hrm.checkpoint import save_checkpoint

    task = {"name": "sudoku", "params": {"size": 4}}
    path = tmp_path_factory.mktemp("ckpt2") / "other.safetensors"
    return save_checkpoint(path, tiny_cfg, random_tensors(tiny_cfg, seed=1), task=task)


def test_concurrent_exports_without_force_one_wins(tmp_path, tiny_ckpt_path, second_ckpt):
    out = tmp_path / "deploy"
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def run(name, ckpt):
        barrier.wait()
        try:
            export_deployment(ckpt, out, precisions="fp32", validate=False)
            outcome[name] = "written"
        except ExportError as exc:
            outcome[name] = str(exc)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in (("a", tiny_ckpt_path), ("b", second_ckpt))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "written" for v in outcome.values()) == [False, True], outcome
    loser = next(v for v in outcome.values() if v != "written")
    assert "another export is writing this deployment" in loser or "pass --force to replace it" in loser
    winner = tiny_ckpt_path if outcome["a"] == "written" else second_ckpt
    m = load_manifest(out)
    assert m.source["path"] == str(Path(winner).absolute())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]  # no lock or staging left


def test_force_replaces_only_a_deployment(tmp_path, tiny_ckpt_path):
    work = tmp_path / "work"
    work.mkdir()
    ckpt = work / "model.safetensors"
    ckpt.write_bytes(Path(tiny_ckpt_path).read_bytes())
    (work / "notes.txt").write_text("mine")
    for out in (work, work / "."):  # the folder that holds the checkpoint, also spelled '.'
        with pytest.raises(ExportError, match="not empty and is not a deployment"):
            export_deployment(ckpt, out, precisions="fp32", validate=False, force=True)
    # a deployment directory that holds the checkpoint: still refused
    dep = tmp_path / "dep"
    export_deployment(ckpt, dep, precisions="fp32", validate=False)
    inside = dep / "model.safetensors"
    inside.write_bytes(ckpt.read_bytes())
    with pytest.raises(ExportError, match="holds the source checkpoint"):
        export_deployment(inside, dep, precisions="fp32", validate=False, force=True)
    assert inside.is_file() and ckpt.is_file() and (work / "notes.txt").read_text() == "mine"
    load_manifest(dep)


def test_cli_out_dot_keeps_the_checkpoint(tmp_path, tiny_ckpt_path, monkeypatch):
    from click.testing import CliRunner

    from hrm.cli.export import main

    (tmp_path / "model.safetensors").write_bytes(Path(tiny_ckpt_path).read_bytes())
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["--checkpoint", "model.safetensors", "--out", ".", "--force", "--precision", "fp32",
                                  "--no-validate"])
    assert r.exit_code == 2 and "is not a deployment" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_killed_export_leaves_leftovers_that_the_next_export_removes(tmp_path, tiny_ckpt_path):
    out = tmp_path / "deploy"
    script = f"""
import os, signal
from hrm.export import api
real = api.save_init
def killed(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # mid-export: graphs written, no manifest, no cleanup
api.save_init = killed
api.export_deployment({str(tiny_ckpt_path)!r}, {str(out)!r}, precisions="fp32", validate=False,
                      force=os.path.exists({str(out)!r}))
"""
    for _ in range(2):  # once into a new target, once into an existing deployment
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        left = [p.name for p in tmp_path.iterdir()] + ([p.name for p in out.iterdir()] if out.exists() else [])
        assert any(".partial-" in name for name in left), left
        export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False, force=out.exists())
        assert [p.name for p in tmp_path.iterdir()] == ["deploy"]
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
        load_manifest(out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "v1", "v2"]


def test_readers_never_see_two_models_while_force_exports_replace(tmp_path, tiny_ckpt_path, second_ckpt):
    """Readers load (verify, then re-open every graph by path, as a backend does; and a real ORT session
    every tenth load) while another thread re-exports A, B, A, ... with --force. Zero mixed loads."""
    from hrm.io import sha256_file
    from hrm.runtime import Session

    out = tmp_path / "deploy"
    export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False)
    rng = np.random.default_rng(0)
    puzzle = rng.integers(1, 6, (1, 16)).astype(np.int32)
    answers = {}
    for ckpt in (tiny_ckpt_path, second_ckpt):
        export_deployment(ckpt, out, precisions="fp32", validate=False, force=True)
        with Session(out, batch=1, options=OrtOptions(threads=1), halting="fixed") as s:
            r = s.solve(puzzle)[0]
            answers[load_manifest(out).source["sha256"]] = (tuple(r.q_halt), tuple(r.q_continue))
    assert len(set(answers.values())) == 2  # the two models answer differently

    stop = threading.Event()
    exports = [0]
    loads, mixed, failed = [0], [], []
    lock = threading.Lock()

    def exporter() -> None:
        k = 0
        while not stop.is_set():
            export_deployment((tiny_ckpt_path, second_ckpt)[k % 2], out, precisions="fp32", validate=False,
                              force=True)
            k += 1
            exports[0] = k

    def reader(n: int) -> None:
        for i in range(n):
            try:
                m = load_manifest(out)
                for rel, sha in m.files():
                    if sha256_file(m.path(rel)) != sha:  # re-opened by path after verification
                        with lock:
                            mixed.append(rel)
                if i % 10 == 0:
                    with Session(out, batch=1, options=OrtOptions(threads=1), halting="fixed") as s:
                        r = s.solve(puzzle)[0]
                        got = (tuple(r.q_halt), tuple(r.q_continue))
                        if answers[s.deployment.manifest.source["sha256"]] != got:
                            with lock:
                                mixed.append("session")
            except Exception as exc:  # not mixed, but counted: must not happen either
                with lock:
                    failed.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                loads[0] += 1

    writer = threading.Thread(target=exporter)
    writer.start()
    readers = [threading.Thread(target=reader, args=(80,)) for _ in range(3)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    writer.join()
    assert exports[0] >= 3, "the exports did not overlap the loads"
    assert loads[0] >= 200 and mixed == [] and failed == [], (loads, mixed, failed[:3])


def test_superseded_versions_are_kept_a_while_then_dropped(tmp_path, tiny_ckpt_path):
    from hrm.export.publish import GRACE_S

    out = tmp_path / "deploy"
    for _ in range(3):
        export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False, force=out.exists())
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "v1", "v2", "v3"]  # v1 superseded just now
    past = (out / "v2").stat().st_mtime - GRACE_S - 1
    os.utime(out / "v2", (past, past))  # v2 superseded v1 more than the grace period ago
    export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "v2", "v3", "v4"]
    assert load_manifest(out).init["H_init"]["file"].startswith("v4/")
