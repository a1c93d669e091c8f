"""``hrm-eval --ray``: a labelled dataset solved by a pool of Ray actors, scored like a local run.

Each actor opens one Session from a :class:`hrm.serve.spec.SessionSpec` (one GPU each, or a CPU
share of ``threads`` cores). The driver cuts the puzzles into chunks of ``batch``, hands chunks to
whichever actor is free (:class:`ray.util.ActorPool`), puts the per-puzzle results back in puzzle
order and scores them with :func:`hrm.evaluation.accuracy.build_report` under
:func:`~hrm.evaluation.accuracy.run_meta`, the functions the local run uses. On the CPU a puzzle's
answer does not depend on its batch (see :mod:`hrm.runtime.session`), so the report equals the
single-process one exactly; GPU libraries may pick other kernels per shape.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from hrm.serve.spec import Scaling, SessionSpec


class EvalWorker:
    """One actor: one Session, solving chunks on request."""

    def __init__(self, spec: SessionSpec) -> None:
        self.session = spec.open()

    def meta(self, max_segments: int | None, haltings: Sequence[str]) -> dict[str, Any]:
        from hrm.evaluation.accuracy import run_meta

        return run_meta(self.session, self.session.policy.with_(max_segments=max_segments), haltings)

    def solve(self, key: tuple[str, int], puzzles: Sequence[Any],
              max_segments: int | None) -> tuple[tuple[str, int], list]:
        """Solve one chunk; ``key`` = (halting, first puzzle index) comes back with the results."""
        policy = self.session.policy.with_(max_segments=max_segments).with_(key[0])
        return key, self.session.solve(puzzles, halting=policy)


def worker_count(spec: SessionSpec, cpus: float, gpus: float) -> int:
    """Actors the cluster can hold: one per ``gpus`` GPUs on CUDA, one per ``cpus`` cores otherwise."""
    import ray

    have = ray.cluster_resources()
    if spec.device == "cuda":
        return max(1, int(have.get("GPU", 0) // max(gpus, 1e-9)))
    return max(1, int(have.get("CPU", 1) // max(cpus, 1e-9)))


def evaluate_on_ray(spec: SessionSpec, puzzles: Sequence[Any], *, haltings: Sequence[str] = ("fixed", "act"),
                    group_key: str | None = "bucket", max_segments: int | None = None, address: str | None = None,
                    workers: int | None = None, cpus: float | None = None, gpus: float | None = None,
                    on_chunk: Callable[[int], None] | None = None) -> Any:
    """The :func:`hrm.evaluation.accuracy.evaluate` report, with the solving spread over Ray actors.

    ``address``: the cluster (None starts a local one for the call). ``cpus``/``gpus`` per actor
    (default, as for a serve replica: :meth:`Scaling.for_spec`); ``workers``: at most as many as the
    cluster can place now (an actor that cannot be placed would hold its chunk forever).
    ``on_chunk(n)`` is called as results arrive (progress). The spec is checked here (an unactivated
    Session) before any actor starts.
    """
    import ray
    from ray.util import ActorPool

    from hrm.evaluation.accuracy import build_report
    from hrm.serve.cluster import connect

    if not puzzles:
        raise ValueError("no puzzles to evaluate")
    spec.open(activate=False)
    scaling = Scaling.for_spec(spec, cpus, gpus)
    starts = range(0, len(puzzles), spec.batch)
    jobs = [((h, start), puzzles[start:start + spec.batch]) for h in haltings for start in starts]
    started = connect(address)
    actors: list[Any] = []
    try:
        actor = ray.remote(num_cpus=scaling.cpus, num_gpus=scaling.gpus)(EvalWorker)
        fit = worker_count(spec, scaling.cpus, scaling.gpus)
        actors = [actor.remote(spec) for _ in range(min(workers or fit, fit, len(jobs)))]
        meta = ray.get(actors[0].meta.remote(max_segments, list(haltings)))
        chunks: dict[tuple[str, int], list] = {}
        pool = ActorPool(actors)
        for key, results in pool.map_unordered(lambda a, job: a.solve.remote(job[0], job[1], max_segments), jobs):
            chunks[key] = results
            if on_chunk is not None:
                on_chunk(len(results))
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
    merged = {h: [r for start in starts for r in chunks[(h, start)]] for h in haltings}
    return build_report(meta, puzzles, merged, group_key)
