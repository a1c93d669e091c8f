"""Continuous batching: every puzzle gets exactly what solving it alone gives, whatever shares its batch."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")

from hrm.runtime import Scheduler, Session  # noqa: E402
from hrm.runtime.backends.options import OrtOptions  # noqa: E402

SLOTS = (1, 2, 3, 5)


@pytest.fixture(scope="module")
def sessions(tiny_deploy):
    opened = {b: Session(tiny_deploy, backend="ort", batch=b, options=OrtOptions(threads=1)).activate() for b in SLOTS}
    yield opened
    for s in opened.values():
        s.close()


@pytest.fixture(scope="module")
def alone(sessions, batch16):
    """Each puzzle solved on its own (batch 1), act and fixed."""
    tokens, ids = batch16
    out = {}
    for halting in ("act", "fixed"):
        out[halting] = [sessions[1].solve(tokens[i:i + 1], puzzle_ids=ids[i:i + 1], halting=halting)[0]
                        for i in range(len(tokens))]
    return out


def same(a, b) -> None:
    np.testing.assert_array_equal(a.answer_tokens, b.answer_tokens)
    assert a.segments == b.segments
    assert a.q_halt == b.q_halt and a.q_continue == b.q_continue  # bit-identical on the CPU


@pytest.fixture(scope="module")
def puzzles(batch16):
    from hrm.tasks.base import Puzzle

    tokens, ids = batch16
    return [Puzzle(tokens[i], None, f"p{i}", int(ids[i])) for i in range(len(tokens))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scheduler_matches_solving_alone(sessions, alone, puzzles, data):
    slots = data.draw(st.sampled_from(SLOTS), label="slots")
    halting = data.draw(st.sampled_from(["act", "fixed"]), label="halting")
    order = data.draw(st.permutations(range(len(puzzles))), label="order")[: data.draw(st.integers(3, 16), label="n")]
    # arrivals: after each segment, some number of new requests arrive
    gaps = data.draw(st.lists(st.integers(0, 3), min_size=len(order), max_size=len(order)), label="arrivals")
    sched = Scheduler(sessions[slots], slots, halting=halting)
    futures = {}
    pending = list(order)
    for burst in gaps:
        for _ in range(burst):
            if pending:
                i = pending.pop(0)
                futures[i] = sched.submit(puzzles[i], request_id=i)
        sched.step()
    for i in pending:
        futures[i] = sched.submit(puzzles[i], request_id=i)
    sched.run_until_idle()
    assert sched.active == 0 and sched.pending == 0
    sched.stop()
    for i, fut in futures.items():
        res = fut.result(timeout=0)
        assert res.request_id == i
        same(res, alone[halting][i])


def test_scheduler_with_puzzle_ids_and_threads(sessions, alone, puzzles):
    """Submission from several threads while a background driver runs; ids travel with the puzzles."""
    sched = Scheduler(sessions[3], 3, halting="act")
    futures: dict[int, object] = {}
    lock = threading.Lock()

    def submit(part):
        for i in part:
            f = sched.submit(puzzles[i], request_id=i)
            with lock:
                futures[i] = f

    with sched:
        threads = [threading.Thread(target=submit, args=(range(k, 16, 4),)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = {i: f.result(timeout=60) for i, f in futures.items()}
    assert sorted(results) == list(range(16))
    for i, r in results.items():
        assert r.request_id == i and r.source == f"p{i}"
        same(r, alone["act"][i])


def test_solve_refuses_to_clobber_a_busy_scheduler(sessions, batch16):
    tokens, _ = batch16
    sched = Scheduler(sessions[2], 2, halting="fixed")
    for i in range(3):
        sched.submit(tokens[i])
    sched.step()
    with pytest.raises(RuntimeError, match="Scheduler"):
        sessions[2].solve(tokens[:1])
    sched.run_until_idle()
    sessions[2].solve(tokens[:1])  # free again
    sched.stop()


def test_bad_submission_fails_its_future_only(sessions, batch16):
    tokens, _ = batch16
    sched = Scheduler(sessions[2], 2)
    from hrm.tasks.base import Puzzle

    bad = sched.submit(np.ones(5, np.int32))
    bad_id = sched.submit(Puzzle(tokens[1], None, "x", 9))
    good = sched.submit(tokens[0])
    sched.run_until_idle()
    with pytest.raises(ValueError, match="expected 16 tokens"):
        bad.result(timeout=0)
    with pytest.raises(ValueError, match="puzzle id 9 outside"):
        bad_id.result(timeout=0)
    assert good.result(timeout=0).segments >= 1
    sched.stop()
