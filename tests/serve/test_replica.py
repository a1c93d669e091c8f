"""The serving replica and its value objects without Ray: answers, per-record errors, draining, option mapping."""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest

from serve_helpers import comparable

pytest.importorskip("onnxruntime")


@pytest.fixture
def replica(s4_deploy):
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.replica import SolverReplica
    from hrm.serve.spec import SessionSpec

    r = SolverReplica(SessionSpec(str(s4_deploy), batch=4, halting="act", options=OrtOptions(threads=1)))
    yield r
    if not r.closed:
        r.close(drain_s=0)


def test_replica_answers_equal_solo_and_share_slots(replica, s4_task, s4_lines, solo):
    """Three concurrent callers share the 4 slots; each gets exactly its puzzles' solo answers."""
    calls = [s4_lines[0:7], s4_lines[7:20], s4_lines[20:24]]
    puzzles = [s4_task.parse("\n".join(c), f"<call {n}>") for n, c in enumerate(calls)]

    async def concurrently():
        return await asyncio.gather(*(replica.solve(p) for p in puzzles))

    replies = asyncio.run(concurrently())
    for got, ps in zip(replies, puzzles):
        assert [comparable(a) for a in got] == [comparable(r.to_dict(trace=False)) for r in solo("act", ps)]
    stats = replica.stats()
    assert stats["answers"] == 24 and stats["slots"] == 4
    assert stats["mean_segments"] == pytest.approx(np.mean([a["segments"] for g in replies for a in g]))
    # slot use = slot-segments that held a puzzle / slot-segments computed; sharing keeps it above one caller's
    assert 0.5 < stats["slot_use"] <= 1.0


def test_refused_tokens_are_a_422_item_not_a_failed_batch(replica, s4_task, s4_lines):
    from hrm.tasks.base import Puzzle

    good = s4_task.parse(s4_lines[0], "<g>")[0]
    wrong = Puzzle(np.ones(9, np.int32), None, "<short>:1")
    out = asyncio.run(replica.solve([good, wrong, good], ids=[5, 6, 7]))
    assert [a.get("status") for a in out] == [None, 422, None]
    assert out[1]["source"] == "<short>:1" and "expected 16 tokens" in out[1]["error"]
    assert [out[0]["id"], out[2]["id"]] == [5, 7] and out[0]["answer_tokens"] == out[2]["answer_tokens"]


def test_close_fails_what_it_cannot_drain_with_503(replica, s4_task, s4_lines):
    """Closing with no drain time: every puzzle still gets one item (answered, or 503 'not answered'),
    and later calls are refused with 503 at once."""
    puzzles = s4_task.parse("\n".join(s4_lines * 4), "<many>")

    async def close_midway():
        task = asyncio.ensure_future(replica.solve(puzzles))
        await asyncio.sleep(0.05)
        failed = await asyncio.to_thread(replica.close, 0.0)
        return await asyncio.wait_for(task, 30), failed

    out, failed = asyncio.run(close_midway())
    assert len(out) == len(puzzles)
    errors = [a for a in out if "error" in a]
    assert len(errors) == failed > 0 and all(a["status"] == 503 and "shut down" in a["error"] for a in errors)
    later = asyncio.run(replica.solve(puzzles[:2]))
    assert [a["status"] for a in later] == [503, 503]
    assert replica.healthy() == "replica is closed"


def test_session_spec_travels_and_opens(s4_deploy):
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.spec import SessionSpec

    spec = SessionSpec(str(s4_deploy), batch=3, halting="fixed", max_segments=2, options=OrtOptions(threads=1))
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and copy.options == OrtOptions(threads=1) and copy.threads == 1
    with copy.open() as session:
        assert session.batch == 3 and session.backend.options.threads == 1
        assert (session.policy.mode, session.policy.max_segments) == ("fixed", 2)
    with pytest.raises(ValueError, match="batch"):
        SessionSpec(str(s4_deploy), batch=0)


def test_every_backend_options_object_travels_to_replicas(s4_deploy):
    """Replicas and actors get the options object itself (pickled by Ray): each backend's, equal after
    the trip; one of another backend is refused where the spec is made, not in a replica."""
    from hrm.runtime.backends.options import OptionsError, OrtOptions, TorchOptions, TrtOptions
    from hrm.serve.spec import SessionSpec

    for backend, options in (("ort", OrtOptions(threads=2, spin=False, fused=True, optimization="basic")),
                             ("trt", TrtOptions(cuda_graph=False, check=False)),
                             ("torch", TorchOptions(checkpoint="m.safetensors"))):
        spec = SessionSpec(str(s4_deploy), backend, "cuda", options=options)
        copy = pickle.loads(pickle.dumps(spec))
        assert copy == spec and type(copy.options) is type(options) and copy.options.describe() == options.describe()
    with pytest.raises(OptionsError, match="the trt backend takes TrtOptions, got OrtOptions"):
        SessionSpec(str(s4_deploy), "trt", "cuda", options=OrtOptions())


def test_scaling_maps_to_serve_options():
    from hrm.serve.spec import Scaling

    fixed = Scaling(replicas=3, cpus=2, gpus=0.5).deployment_options(slots=16)
    assert fixed == {"num_replicas": 3, "ray_actor_options": {"num_cpus": 2, "num_gpus": 0.5}}
    auto = Scaling(min_replicas=0, max_replicas=4).deployment_options(slots=16)
    assert auto["autoscaling_config"] == {"min_replicas": 0, "max_replicas": 4, "initial_replicas": 1,
                                          "target_ongoing_requests": 16}
    assert "num_replicas" not in auto
    for bad in (dict(replicas=0), dict(min_replicas=3, max_replicas=2), dict(cpus=-1)):
        with pytest.raises(ValueError):
            Scaling(**bad)


def test_records_in_input_order(s4_task):
    """What the ingress does with a request text: one item per record, errors in place (hrm-run's reader)."""
    from hrm.errors import ParseError
    from hrm.tasks.inputs import parse_records

    text = "....14..3.2.....\nbad\n\n1 2 | 3 4\n3 4 | 1 2\n2 1 | 4 3\n4 3 | 2 1\n.3.........2.43.\n12"
    items = parse_records(s4_task, text, "<t>")
    kinds = [(type(i).__name__, i.line if isinstance(i, ParseError) else i.source) for i in items]
    assert kinds == [("Puzzle", "<t>:1"), ("ParseError", 2), ("Puzzle", "<t>:4"), ("Puzzle", "<t>:8"),
                     ("ParseError", 9)]


def test_kuberay_manifest_builds_the_app():
    """deploy/kuberay's RayService names an importable builder whose args map to the intended options, and
    its pods carry the Serve settings (SERVE_ENV) a cluster hrm-serve starts gets."""
    import importlib

    import yaml

    pytest.importorskip("ray.serve")

    from helpers import MODELS

    doc = yaml.safe_load((MODELS.parent / "deploy" / "kuberay" / "hrm-serve.yaml").read_text())
    assert doc["kind"] == "RayService"
    app = yaml.safe_load(doc["spec"]["serveConfigV2"])["applications"][0]
    module, name = app["import_path"].split(":")
    builder = getattr(importlib.import_module(module), name)
    from hrm.serve.app import options_from_args

    spec, scaling, _ = options_from_args(app["args"])
    assert (spec.device, spec.precision, spec.batch, spec.halting) == ("cuda", "fp16", 64, "act")
    assert scaling.autoscaling and (scaling.min_replicas, scaling.max_replicas, scaling.gpus) == (1, 4, 1.0)
    assert builder(app["args"]) is not None  # binds the application (no cluster needed)
    from hrm.serve.cluster import LOCAL_ENV, SERVE_ENV

    cluster = doc["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for pod in pods:  # every Ray process of the cluster gets the Serve settings a local cluster gets
        for container in pod["template"]["spec"]["containers"]:
            assert {e["name"]: e["value"] for e in container["env"]} == SERVE_ENV, container["name"]
    assert LOCAL_ENV.items() >= SERVE_ENV.items()
    from hrm.runtime.backends.options import OptionsError, OrtOptions

    spec, scaling, _ = options_from_args({"deployment": "d", "threads": "2", "fused": "true", "spin": "no"})
    assert spec.options == OrtOptions(threads=2, fused=True, spin=False) and (scaling.cpus, scaling.gpus) == (2, 0)
    with pytest.raises(ValueError, match="unknown \\['slots'\\]"):
        options_from_args({"deployment": "d", "slots": 3})
    with pytest.raises(OptionsError, match="the torch backend has no threads option"):
        options_from_args({"deployment": "d", "backend": "torch", "threads": 2})


def test_serve_package_imports_neither_ray_nor_torch():
    """Clients and replicas-as-objects stay light: only hrm.serve.app / .evaluate import Ray."""
    import subprocess
    import sys

    code = ("import sys, hrm.serve, hrm.serve.client, hrm.serve.replica, hrm.tasks.inputs, hrm.serve.load\n"
            "bad = [m for m in ('ray', 'torch') if m in sys.modules]\nassert not bad, bad\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_health_fails_when_puzzles_wait_and_no_segment_runs(replica, s4_task, s4_lines):
    """Serve replaces a replica whose check fails: idle is healthy, a stalled scheduler is not."""
    import time

    assert replica.healthy(stall_s=0.01) is None
    with replica.session.lock:  # a hung backend: the driver cannot run a segment
        future = replica._submit(s4_task.parse(s4_lines[0], "<s>")[0], 0)
        assert replica.healthy(stall_s=0.05) is None  # waiting, but not for long yet
        time.sleep(0.1)
        problem = replica.healthy(stall_s=0.05)
    assert problem is not None and "no segment ran" in problem and "1 puzzles" in problem
    assert future.result(timeout=30).segments >= 1  # the backend is back: answered
    assert replica.healthy(stall_s=0.05) is None


def _ingress_over(solver):
    """The ingress's request path over a stand-in solver handle (no cluster): what it does when a replica dies."""
    pytest.importorskip("ray.serve")
    from hrm.serve.app import IngressBase

    ingress = IngressBase.__new__(IngressBase)
    ingress.solver, ingress.chunk, ingress.retried, ingress.lost = solver, 4, 0, 0
    return ingress


class _Solver:
    """``solve.remote(chunk, ids)`` fails with RayActorError for the first ``deaths`` calls, then answers."""

    def __init__(self, deaths: int) -> None:
        self.deaths, self.calls = deaths, []
        self.solve = self

    async def remote(self, chunk, ids):
        from ray.exceptions import RayActorError

        self.calls.append(list(ids))
        if len(self.calls) <= self.deaths:
            raise RayActorError()
        return [{"id": i, "status": 200} for i in ids]


@pytest.mark.parametrize("deaths", [1, 2])
def test_ingress_resends_puzzles_of_a_dead_replica_once(deaths):
    """A replica that dies mid-request (RayActorError): its puzzles go out once more; a second death answers
    them with 503 naming the retry, never drops them. (The cluster test kills a real replica; whether a
    request is in flight there at that instant is up to timing, so the path is pinned down here.)"""
    from types import SimpleNamespace

    solver = _Solver(deaths)
    ingress = _ingress_over(solver)
    puzzles = [SimpleNamespace(source=f"p{i}") for i in range(3)]
    out = asyncio.run(ingress._answer(puzzles))
    assert solver.calls == [[0, 1, 2], [0, 1, 2]]
    assert ingress.retried == 3 and ingress.lost == (3 if deaths == 2 else 0)
    if deaths == 1:
        assert [a["id"] for a in out] == [0, 1, 2] and all(a["status"] == 200 for a in out)
    else:
        assert all(a["status"] == 503 and "after one retry" in a["error"] for a in out)
