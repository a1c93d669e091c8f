"""The hrm-serve command: refusals before any cluster starts, and a real run joined to the test cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("ray.serve")
httpx = pytest.importorskip("httpx")


@pytest.mark.parametrize("args, message", [
    (["--min-replicas", "3", "--max-replicas", "2"], "autoscaling bounds"),
    (["--precision", "fp16"], "no 'fp16' variant"),
    (["--backend", "trt"], "CUDA only"),
])
def test_refused_before_any_cluster_starts(s4_deploy, args, message):
    from hrm.cli.serve import main

    result = CliRunner().invoke(main, [str(s4_deploy), *args])
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.cluster
def test_serve_command_answers_then_drains_on_sigterm(ray_cluster, serve_port, s4_deploy, s4_lines):
    """hrm-serve joined to a running cluster: ready, answers over HTTP, and on SIGTERM deletes its
    application and exits 0."""
    from ray import serve

    gcs = ray_cluster.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "hrm.cli.serve", str(s4_deploy), "--address", gcs, "--port", str(serve_port),
           "--name", "cli", "--route-prefix", "/cli", "--batch", "4", "--threads", "1", "--drain", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        assert "Ctrl-C stops" in "".join(lines), "".join(lines)
        url = f"http://127.0.0.1:{serve_port}/cli"
        assert f"POST {url}/solve" in lines[-1]
        reply = httpx.post(url + "/solve", json={"inputs": s4_lines[:3]}, timeout=60)
        assert reply.status_code == 200 and len(reply.json()["answers"]) == 3
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "draining and stopping" in rest
    assert "cli" not in serve.status().applications


@pytest.mark.cluster
def test_replicas_that_cannot_start_are_one_clear_error(serve_port, s4_deploy):
    """A spec the replicas cannot open (here the trt backend on a CPU) fails the deployment with the
    replica's own error, and leaves no application behind."""
    from ray import serve

    from hrm.errors import HRMError
    from hrm.serve.app import run_app
    from hrm.serve.spec import SessionSpec

    with pytest.raises(HRMError, match="deploying on Ray Serve failed: hrm.manifest.RefusedVariant: .*manifest.json: "
                                       "TensorRT runs on CUDA only, not 'cpu'"):
        run_app(SessionSpec(str(s4_deploy), backend="trt"), name="broken", route_prefix="/broken", port=serve_port)
    assert "broken" not in serve.status().applications
