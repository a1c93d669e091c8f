"""hrm-serve on a real local Ray cluster: HTTP answers equal Session.solve, bad records, health, handle, client."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ray.serve")
httpx = pytest.importorskip("httpx")

from serve_helpers import comparable  # noqa: E402

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("halting", ["act", "fixed"])
def test_http_answers_equal_session_solve(served, s4_task, s4_lines, solo, halting):
    """One request with 60 puzzles (more than the 8 slots: split over chunks) -> the answer objects
    hrm-run --json prints, equal to each puzzle solved alone in-process, in input order."""
    text = "\n".join(s4_lines)
    reply = httpx.post(served[halting].url + "/solve", json={"inputs": [text]}, timeout=120)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == 200 and len(body["answers"]) == len(s4_lines)
    expected = solo(halting, s4_task.parse(text, "<input 1>"))
    assert [comparable(a) for a in body["answers"]] == [comparable(r.to_dict(trace=False)) for r in expected]
    segments = [a["segments"] for a in body["answers"]]
    if halting == "fixed":
        assert set(segments) == {4}
    else:  # ACT really halts early on some and not on others
        assert min(segments) < max(segments)


def test_mixed_good_and_bad_records(served, s4_task, s4_lines, solo):
    """A malformed record gets a 422 item naming its input and line; every other record is answered."""
    good = s4_lines[:3]
    bad_grid = "1 2 | 3 4\n3 x | 1 2\n"  # a 4x4 grid paragraph (a record from line 1) with a bad character on line 2
    inputs = [f"{good[0]}\n.2.4..z..3.....1\n{good[1]}", bad_grid, good[2], "1234"]
    reply = httpx.post(served["act"].url + "/solve", json={"inputs": inputs}, timeout=60)
    assert reply.status_code == 422
    answers = reply.json()["answers"]
    assert [("error" in a) for a in answers] == [False, True, False, True, False, True]
    errors = [a for a in answers if "error" in a]
    assert [(e["source"], e["line"], e["status"]) for e in errors] == [  # the line a record starts on (C2)
        ("<input 1>", 2, 422), ("<input 2>", 1, 422), ("<input 4>", 1, 422)]
    assert "z" in errors[0]["error"] and "line 2: bad character 'x'" in errors[1]["error"]
    solved = [a for a in answers if "error" not in a]
    expected = solo("act", [s4_task.parse(g, f"<input {n}>")[0] for n, g in ((1, good[0]), (1, good[1]), (3, good[2]))])
    for got, want in zip(solved, expected):
        assert {k: got[k] for k in ("answer_tokens", "segments", "q_halt", "valid")} == \
               {k: want.to_dict()[k] for k in ("answer_tokens", "segments", "q_halt", "valid")}
    assert [a["source"] for a in solved] == ["<input 1>:1", "<input 1>:3", "<input 3>:1"]


def test_plain_text_body_and_refusals(served, s4_lines):
    url = served["fixed"].url + "/solve"
    reply = httpx.post(url, content="\n".join(s4_lines[:2]).encode(), headers={"content-type": "text/plain"})
    assert reply.status_code == 200 and [a["source"] for a in reply.json()["answers"]] == ["<input 1>:1", "<input 1>:2"]
    for body, expect in ((b"{not json", "not JSON"), (b'{"inputs": [1, 2]}', "expected {\"inputs\""),
                         (b'{"inputs": []}', "no puzzles")):
        r = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and expect in r.json()["error"], r.text
    r = httpx.post(url, content=b"\xff\xfe", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]


def test_health_and_readiness(served):
    base = served["act"].url
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(base + "/readyz")
    assert ready.status_code == 200
    info = ready.json()
    assert info["ready"] is True and info["halting"] == "act" and info["slots"] == 8 and info["task"] == "sudoku"
    assert info["replica"]["slots"] == 8 and info["replica"]["pid"] > 0


def test_python_handle_equals_http(served, s4_lines):
    handle = served["act"].handle()
    via_handle = handle.solve.remote(s4_lines[:5]).result()
    via_http = httpx.post(served["act"].url + "/solve", json={"inputs": s4_lines[:5]}).json()
    assert [comparable(a) for a in via_handle["answers"]] == [comparable(a) for a in via_http["answers"]]
    assert via_handle["status"] == 200


def test_sync_and_async_client(served, s4_lines):
    from hrm.serve.client import AsyncClient, Client, ServeError

    with Client(served["fixed"].url) as c:
        assert c.ready()
        reply = c.solve(s4_lines[0], "not a puzzle")
        assert reply.status == 422 and len(reply.results) == 1 and len(reply.errors) == 1
        with pytest.raises(ServeError, match="400"):
            c.solve("")

    async def many():
        async with AsyncClient(served["fixed"].url) as c:
            return await asyncio.gather(*(c.solve(line) for line in s4_lines[:10]))

    replies = asyncio.run(many())
    assert [r.results[0]["source"] for r in replies] == ["<input 1>:1"] * 10
    with Client(served["fixed"].url) as c:
        direct = c.solve(*s4_lines[:10]).results
    assert [comparable(r.results[0])["answer_tokens"] for r in replies] == [a["answer_tokens"] for a in direct]


def test_unreachable_server_is_an_error():
    from hrm.serve.client import Client, ServeError

    from serve_helpers import free_port

    with Client(f"http://127.0.0.1:{free_port()}", timeout=5) as c:
        assert not c.ready()
        with pytest.raises(ServeError, match="ConnectError"):
            c.solve("1...")


def test_prometheus_metrics_ours_and_serves(served, s4_lines, ray_cluster):
    """Our replica metrics and Serve's own reach the cluster's Prometheus endpoint, tagged per application."""
    import re
    import time

    httpx.post(served["fixed"].url + "/solve", json={"inputs": s4_lines[:20]}, timeout=60)
    url = f"http://127.0.0.1:{ray_cluster.metrics_port}/metrics"
    wanted = ["ray_hrm_segments_per_answer_count", "ray_hrm_queue_ms_count", "ray_hrm_slots_active",
              "ray_hrm_queue_depth", "ray_serve_num_http_requests_total"]
    deadline = time.monotonic() + 60
    while True:
        text = httpx.get(url, timeout=10).text
        found = {name for name in wanted if re.search(rf"^{name}\{{", text, re.M)}
        if len(found) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found == set(wanted)
    # fixed halting: every answer of the 'fixed' application ran exactly 4 segments (buckets: Ray's
    # exported _sum is approximated from bucket midpoints, the counts are exact)
    def bucket(le):
        labels = rf'[^}}]*application="fixed"[^}}]*le="{re.escape(le)}"[^}}]*'
        m = re.search(rf"^ray_hrm_segments_per_answer_bucket\{{{labels}\}} (\S+)", text, re.M)
        return float(m.group(1))

    assert bucket("3.0") == 0 and bucket("4.0") == bucket("+Inf") >= 20
