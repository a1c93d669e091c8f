"""Bounded load on a real local Ray cluster: every request answered, every answer the solo answer,
also while a replica is killed and while the application shuts down."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

pytest.importorskip("ray.serve")
pytest.importorskip("httpx")

from serve_helpers import comparable, deploy_app  # noqa: E402

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def solo_answers(s4_task, s4_lines, solo):
    """line -> {halting -> the answer object of that puzzle solved alone}, as a one-puzzle request shows it."""
    out = {}
    for h in ("act", "fixed"):
        puzzles = [s4_task.parse(line, "<input 1>")[0] for line in s4_lines]
        for line, r in zip(s4_lines, solo(h, puzzles)):
            out.setdefault(line, {})[h] = comparable({**r.to_dict(trace=False), "id": 0})
    return out


def load(url, lines, n, clients=8, deadline_s=240.0, on_reply=None, per_request=1):
    """``n`` requests of ``per_request`` puzzles (one per line of one input text): request i carries lines
    i*per_request, ... (cycling)."""
    from hrm.serve.load import run_load

    requests = [["\n".join(line_of(lines, i, per_request))] for i in range(n)]
    return asyncio.run(run_load(url, requests, clients=clients, deadline_s=deadline_s, on_reply=on_reply))


def line_of(lines, i, per_request=1):
    return [lines[(i * per_request + k) % len(lines)] for k in range(per_request)]


@pytest.mark.extended  # ~15-30 s on 2 cores; the replica-kill test below runs a shorter load in make test
def test_2000_requests_from_8_clients(served, s4_lines, solo_answers):
    run = load(served["act"].url, s4_lines, 2000)
    assert run.unanswered == [], f"{len(run.unanswered)} unanswered, first: {run.outcomes[run.unanswered[0]]!r}"
    for i, reply in enumerate(run.outcomes):
        assert reply.status == 200, reply.answers
        assert [comparable(a) for a in reply.answers] == [solo_answers[line_of(s4_lines, i)[0]]["act"]], i
    assert served["act"].handle().solve.remote(s4_lines[:1]).result()["status"] == 200  # still healthy


def _replica_pids(app: str, want: int, timeout_s: float = 120.0) -> set[int]:
    """PIDs of the running solver replicas of ``app`` once ``want`` of them run (asked until all answered)."""
    from ray import serve

    handle = serve.get_deployment_handle("solver", app_name=app)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = serve.status().applications[app].deployments["solver"]
        if status.replica_states.get("RUNNING", 0) == want and sum(status.replica_states.values()) == want:
            pids = {handle.info.remote().result()["pid"] for _ in range(40)}
            if len(pids) == want:
                return pids
        time.sleep(0.5)
    raise AssertionError(f"{app}: {want} running solver replicas not seen within {timeout_s} s")


def test_replica_killed_during_load(s4_deploy, serve_port, s4_lines, solo_answers):
    """Freeze, then SIGKILL, one of two replicas while 8 clients send 240 requests of 8 puzzles: each
    request is answered (the lost puzzles resent once to the surviving replica), and Serve starts a
    replacement."""
    import httpx
    from ray import serve

    app = deploy_app(s4_deploy, serve_port, "kill", "act", replicas=2)
    try:
        pids = _replica_pids("kill", 2)
        victim = sorted(pids)[0]

        def kill(k: int) -> None:  # freeze it first, so that requests are surely in flight there when it dies
            if k == 60:
                os.kill(victim, signal.SIGSTOP)
                threading.Timer(1.0, os.kill, (victim, signal.SIGKILL)).start()

        run = load(app.url, s4_lines, 240, on_reply=kill, per_request=8)
        assert run.unanswered == [], f"{len(run.unanswered)} unanswered: {run.outcomes[run.unanswered[0]]!r}"
        statuses = {r.status for r in run.outcomes}
        assert statuses <= {200, 503}, [a for r in run.outcomes for a in r.answers if "error" in a][:3]
        for i, reply in enumerate(run.outcomes):
            assert len(reply.answers) == 8
            for a, line in zip(reply.answers, line_of(s4_lines, i, 8)):
                if "error" in a:  # only a puzzle lost twice may fail, and it says so
                    assert a["status"] == 503 and "retry" in a["error"]
                else:
                    assert {**comparable(a), "id": 0, "source": None} == {**solo_answers[line]["act"], "source": None}
        # Requests the frozen replica had not yet accepted are re-routed by Serve itself; accepted ones come
        # back as RayActorError and are resent by the ingress ("retried"). Which of the two happens depends on
        # timing, so the resend path is pinned down in test_replica.py; here: nothing lost, all answers right.
        assert httpx.get(app.url + "/readyz", timeout=30).json()["ready"]
        new = _replica_pids("kill", 2)
        assert victim not in new and len(new & pids) == 1
    finally:
        serve.delete("kill")


def test_shutdown_answers_or_refuses_every_request(s4_deploy, serve_port, s4_lines, solo_answers):
    """Deleting the application under load: each request gets its answers or an explicit HTTP error."""
    from ray import serve

    from hrm.serve.client import ServeError

    app = deploy_app(s4_deploy, serve_port, "drain", "act")
    stopper = threading.Thread(target=serve.delete, args=("drain",))

    def stop(k: int) -> None:
        if k == 100:
            stopper.start()

    run = load(app.url, s4_lines, 400, deadline_s=120, on_reply=stop)
    stopper.join(timeout=120)
    answered = refused = 0
    for i, outcome in enumerate(run.outcomes):
        if isinstance(outcome, ServeError) and outcome.status is not None:
            refused += 1  # the route is gone (404) or the proxy had no replica (503): explicit
            assert outcome.status in (404, 503), outcome
            continue
        assert not isinstance(outcome, BaseException), f"request {i}: {outcome!r}"
        for a in outcome.answers:
            if "error" in a:
                assert a["status"] == 503
            else:
                answered += 1
                assert comparable(a) == solo_answers[line_of(s4_lines, i)[0]]["act"]
    assert answered >= 100 and answered + refused <= 400
