"""hrm-eval --ray: the dataset split over Ray actors gives exactly the single-process report."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")
from click.testing import CliRunner  # noqa: E402


def _report(args):
    from hrm.cli.eval import main

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.cluster
def test_distributed_eval_equals_local_report(ray_cluster, s4_deploy, tmp_path):
    """300 generated puzzles, batch 16 (a short last chunk), both halting modes, grouped by bucket:
    the same JSON report, whether one Session solves them or two actors do."""
    common = [str(s4_deploy), "--n", "300", "--batch", "16", "--threads", "1", "--seed", "3", "--json", "-"]
    local = _report(common)
    distributed = _report(common + ["--ray", "--workers", "2"])
    assert distributed == local
    assert local["meta"]["n"] == 300 and set(local["scores"]["all"]) == {"fixed", "act"}
    assert list(local["scores"]) == ["all", "0"]  # 4x4 puzzles need no guesses: one bucket


@pytest.mark.cluster
def test_evaluate_on_ray_reports_progress_and_keeps_order(ray_cluster, s4_deploy, s4_task):
    """The library call: progress per chunk as results arrive (in any order), the merge back in puzzle order."""
    import numpy as np

    from hrm.evaluation.accuracy import evaluate
    from hrm.runtime import Session
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.evaluate import evaluate_on_ray
    from hrm.serve.spec import SessionSpec

    puzzles = s4_task.generate(40, np.random.default_rng(5))
    spec = SessionSpec(str(s4_deploy), batch=4, options=OrtOptions(threads=1))
    seen = []
    report = evaluate_on_ray(spec, puzzles, haltings=("act",), group_key=None, workers=3, on_chunk=seen.append)
    assert seen == [4] * 10
    with Session(s4_deploy, batch=4, options=OrtOptions(threads=1)) as s:
        assert report.to_dict() == evaluate(s, puzzles, haltings=("act",), group_key=None).to_dict()
    with pytest.raises(ValueError, match="no puzzles"):
        evaluate_on_ray(spec, [])


def test_workers_without_ray_is_refused(s4_deploy):
    from hrm.cli.eval import main

    result = CliRunner().invoke(main, [str(s4_deploy), "--n", "4", "--workers", "2"])
    assert result.exit_code == 2 and "--workers is for --ray" in result.output
