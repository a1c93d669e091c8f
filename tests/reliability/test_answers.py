"""Answers are never silently wrong: inputs are refused before any cast, count or shape change, and
a Scheduler's futures always resolve (stop, drain, an exception in the with-block, submit after stop)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from hrm.errors import InputError  # noqa: E402
from hrm.runtime import Scheduler, SchedulerClosed, Session  # noqa: E402
from hrm.runtime.backends.options import OrtOptions  # noqa: E402


@pytest.fixture(scope="module")
def session(rel_deploy):
    with Session(rel_deploy, backend="ort", batch=3, options=OrtOptions(threads=1), halting="fixed") as s:
        yield s


# ---- inputs: dtype, range, shape, count --------------------------------------------------------------

@pytest.mark.parametrize("bad, words", [
    (np.array([[2**33 + 2] + [1] * 15], np.int64), "<array>:1: token 8589934594 at position 0 is outside int32"),
    (np.full((1, 16), 1.7), "<array>:1: expected integers, got dtype float64"),
    (np.array([[1] * 15 + [6]], np.int32), "<array>:1: token 6 at position 15 is outside [0, 6)"),
    (np.array([[1] * 15 + [-1]], np.int32), "<array>:1: token -1 at position 15 is outside [0, 6)"),
    (np.ones((1, 12), np.int32), "<array>:1: expected 16 tokens, got 12"),
    (np.ones((2, 2, 16), np.int32), "expected an array [N, seq_len]"),
])
def test_bad_tokens_are_refused_naming_the_row(session, bad, words):
    with pytest.raises(InputError) as info:
        session.solve(bad)
    assert words in str(info.value)


def test_bad_row_is_named_and_nothing_runs(session, rel_tokens):
    tokens = rel_tokens[:3].astype(np.int64)
    tokens[2, 5] = 2**33 + 2  # would be 2 after an int32 cast: a real-looking puzzle
    with pytest.raises(InputError, match=r"<array>:3: token 8589934594 at position 5"):
        session.solve(tokens)


def test_puzzle_id_count_and_values_are_checked(session, rel_tokens):
    with pytest.raises(InputError, match=r"puzzle_ids: expected one per puzzle \(3\), got shape \[1\]"):
        session.solve(rel_tokens[:3], puzzle_ids=[0])
    with pytest.raises(InputError, match="puzzle_ids: expected integers"):
        session.solve(rel_tokens[:2], puzzle_ids=[0.0, 1.5])
    with pytest.raises(InputError, match="<array>:2: puzzle id 3 outside"):
        session.solve(rel_tokens[:2], puzzle_ids=[0, 3])
    assert len(session.solve(rel_tokens[:3], puzzle_ids=[0, 1, 2])) == 3


def test_puzzle_objects_and_scheduler_submissions_are_checked(session, rel_tokens):
    from hrm.tasks.base import Puzzle

    class Fake:  # anything with .tokens, e.g. another library's puzzle type
        tokens = np.array([1.7] * 16)
        source = "fake:1"

    with pytest.raises(InputError, match="fake:1: expected integers"):
        session.solve([Fake()])
    with pytest.raises(ValueError, match="outside int32"):
        Puzzle(np.array([2**33 + 2] * 16), None, "p:1")
    with Scheduler(session, 3) as sched:
        bad = sched.submit(np.array([2**33 + 2] * 16))
        good = sched.submit(rel_tokens[0])
        with pytest.raises(InputError, match="outside int32"):
            bad.result(timeout=30)
        assert good.result(timeout=30).segments == 4


# ---- scheduler life cycle ----------------------------------------------------------------------------

def test_one_scheduler_per_session_enforced_at_construction(session, rel_tokens):
    first = Scheduler(session, 3)
    with pytest.raises(RuntimeError, match="already driven by an open Scheduler"):
        Scheduler(session, 2)
    first.stop()
    second = Scheduler(session, 2)  # free again once the first is stopped
    second.stop()


def test_stop_without_drain_resolves_every_future(session, rel_tokens):
    sched = Scheduler(session, 3)
    futures = [sched.submit(t) for t in rel_tokens]
    sched.step()  # three in flight, nine queued
    sched.stop(drain=False)
    for f in futures:
        with pytest.raises(SchedulerClosed, match="stopped before this request was answered"):
            f.result(timeout=0)


def test_stop_with_drain_answers_everything_caller_driven(session, rel_tokens):
    sched = Scheduler(session, 3)
    futures = [sched.submit(t) for t in rel_tokens]
    sched.stop()  # no background thread: drains here
    assert [f.result(timeout=0).segments for f in futures] == [4] * len(rel_tokens)


def test_exception_in_with_block_resolves_every_future(session, rel_tokens):
    futures = []
    with pytest.raises(KeyError):
        with Scheduler(session, 3) as sched:
            futures = [sched.submit(t) for t in rel_tokens]
            raise KeyError("caller bug")
    for f in futures:
        assert f.done()
        if f.exception() is not None:
            assert isinstance(f.exception(), SchedulerClosed) and "with-block raised KeyError" in str(f.exception())
    Scheduler(session, 3).stop()  # and the session is free again


def test_submit_after_stop_raises(session, rel_tokens):
    with Scheduler(session, 3) as sched:
        assert sched.submit(rel_tokens[0]).result(timeout=30).segments == 4
    with pytest.raises(SchedulerClosed, match="was stopped"):
        sched.submit(rel_tokens[1])
    with pytest.raises(SchedulerClosed):
        sched.step()


def test_concurrent_submit_and_stop_never_hang(session, rel_tokens):
    """Submitters racing a stop: each submission either raises SchedulerClosed or gets a future that resolves."""
    sched = Scheduler(session, 3).start()
    outcomes: list = []
    lock = threading.Lock()

    def submit() -> None:
        for t in rel_tokens:
            try:
                f = sched.submit(t)
            except SchedulerClosed:
                with lock:
                    outcomes.append("refused")
                continue
            with lock:
                outcomes.append(f)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    sched.stop(drain=False)
    for t in threads:
        t.join()
    for f in outcomes:
        if f != "refused":
            f.exception(timeout=30)  # resolved: answered or SchedulerClosed, never pending
            assert f.done()
    assert len(outcomes) == 4 * len(rel_tokens)
