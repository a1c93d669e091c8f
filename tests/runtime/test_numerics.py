"""NaN/Inf in the recurrence is caught per segment and names the segment and the rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from deploy_helpers import copy_deployment, patch_initializer  # noqa: E402

from hrm.errors import NumericsError  # noqa: E402
from hrm.runtime import Scheduler, Session  # noqa: E402
from hrm.runtime.backends.options import OrtOptions  # noqa: E402
from hrm.tasks.base import Puzzle  # noqa: E402


@pytest.fixture(scope="module")
def nan_deploy(tiny_deploy, tmp_path_factory):
    """Puzzle id 2's embedding is NaN: only rows with puzzle id 2 go bad."""
    d = copy_deployment(tiny_deploy, tmp_path_factory.mktemp("nan") / "d")

    def poison(w):
        w = w.copy()
        w[2] = np.nan
        return w
    patch_initializer(d, "fp32", "embed", "puzzle_emb.weights", poison)
    return d


def test_solve_raises_naming_segment_and_rows(nan_deploy, batch16):
    tokens, _ = batch16
    ids = np.array([0, 2, 1, 2], np.int32)
    puzzles = [Puzzle(tokens[i], None, f"in.txt:{i + 1}", int(ids[i])) for i in range(4)]
    with Session(nan_deploy, batch=4, options=OrtOptions(threads=1)) as s:
        with pytest.raises(NumericsError) as info:
            s.solve(puzzles, halting="fixed")
    err = info.value
    assert err.segment == 1 and err.rows == [1, 3]
    assert "segment 1" in str(err) and "in.txt:2" in str(err) and "in.txt:4" in str(err)


def test_scheduler_fails_only_the_bad_rows(nan_deploy, batch16):
    tokens, _ = batch16
    with Session(nan_deploy, batch=3, options=OrtOptions(threads=1)) as s:
        sched = Scheduler(s, 3, halting="fixed")
        futs = [sched.submit(Puzzle(tokens[i], None, f"p{i}", pid)) for i, pid in enumerate([0, 2, 1, 0])]
        sched.run_until_idle()
    with pytest.raises(NumericsError, match=r"p1: non-finite q values .* at segment 1 \(batch row 1"):
        futs[1].result(timeout=0)
    for i in (0, 2, 3):
        assert futs[i].result(timeout=0).segments == 4
