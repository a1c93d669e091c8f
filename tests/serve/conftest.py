"""A real local Ray cluster on 127.0.0.1 for the serve and distributed-eval tests, one per test session.

The bundled 4x4 Sudoku model is exported once; Serve listens on a free loopback port. Tests marked
``cluster`` use it; those that also take minutes are ``extended``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))

from hrm.serve.cluster import use_local_env  # noqa: E402

use_local_env()  # before anything imports ray (see hrm.serve.cluster)
os.environ.setdefault("RAY_metrics_report_interval_ms", "1000")  # metrics visible within a second

from helpers import MODELS  # noqa: E402
from serve_helpers import deploy_app, free_port  # noqa: E402


@pytest.fixture(scope="session")
def s4_deploy(tmp_path_factory):
    """The bundled 4x4 Sudoku model exported to ONNX (fp32 step graphs + fused segment)."""
    pytest.importorskip("onnx")
    from deploy_helpers import export

    return export(MODELS / "sudoku4.safetensors", tmp_path_factory.mktemp("serve") / "s4", ("fp32",))


@pytest.fixture(scope="session")
def s4_task(s4_deploy):
    from hrm.runtime import load_deployment

    return load_deployment(s4_deploy).task


@pytest.fixture(scope="session")
def s4_lines(s4_task):
    """60 puzzle strings: the README's examples and generated ones, one per line."""
    lines = [ln for ln in (MODELS.parent / "examples" / "sudoku4.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]
    for p in s4_task.generate(60 - len(lines), np.random.default_rng(11)):
        lines.append("".join("." if v == 0 else str(v) for v in s4_task.decode(p.tokens).reshape(-1)))
    return lines


@pytest.fixture(scope="session")
def ray_cluster():
    """``ray.init`` of a local cluster bound to 127.0.0.1 (8 logical CPUs over the real cores, so a few
    single-threaded replicas and actors can be scheduled at once)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    from hrm.serve.cluster import connect

    port = free_port()
    assert connect(None, num_cpus=8, metrics_port=port), "a Ray cluster was already running in this process"
    ray.metrics_port = port
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_port(ray_cluster):
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port},
                logging_config={"log_level": "WARNING", "enable_access_log": False})
    return port


@pytest.fixture(scope="session")
def served(s4_deploy, serve_port):
    """One application per halting mode: {"act": Served, "fixed": Served}."""
    return {h: deploy_app(s4_deploy, serve_port, h, h) for h in ("act", "fixed")}


@pytest.fixture(scope="session")
def solo(s4_deploy):
    """``solo[halting](puzzles)``: each puzzle solved alone by an in-process Session (batch 1)."""
    from hrm.runtime import Session
    from hrm.runtime.backends.options import OrtOptions

    sessions = {h: Session(s4_deploy, batch=1, halting=h, options=OrtOptions(threads=1)).activate()
                for h in ("act", "fixed")}
    yield lambda halting, puzzles: sessions[halting].solve(puzzles)
    for s in sessions.values():
        s.close()
