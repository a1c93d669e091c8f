"""What serving on Ray costs and what a second replica buys: ``python benchmarks/serve_bench.py``.

Side by side in one run, on the same puzzles and the same load shape (``--clients`` concurrent clients,
each sending its next request as soon as the previous one is answered, ``--puzzles`` per request):

* ``inproc``  the engine alone: one Session + continuous-batching Scheduler in this process, clients as
  threads submitting pre-parsed puzzles (no parsing, no HTTP);
* ``inproc-2`` the engine twice: two processes, each one Session + Scheduler with half the clients, and
  no serving layer: what two replicas could do on this machine (the ceiling ``serve-2`` is held to);
* ``serve-1`` hrm-serve with 1 solver replica, over HTTP on 127.0.0.1 (clients: ``hrm.serve.load``);
* ``serve-2`` the same with 2 replicas.

Every replica and every in-process session have the same slots and 1 ORT thread. Phases are
interleaved (``--rounds`` rounds of inproc, inproc-2, serve-1, serve-2; medians over rounds). A serve
phase deploys its application anew, warms it up (2 x ``--clients`` requests), measures and deletes
it, so only the measured replicas exist while they are measured; the Ray cluster itself runs through
every phase, in-process ones included (its background CPU is part of what the machine has left). Also
recorded per phase: CPU seconds each process group used per puzzle (/proc, per process: solver
replicas, ingress, HTTP proxy, the client in this process, the two engine processes, the rest of Ray),
which says where the time goes. Ratios: the Serve overhead at equal replicas, ``serve_overhead_1`` =
1 - serve-1 / inproc and ``serve_overhead_2`` = 1 - serve-2 / inproc-2 (puzzles/s); ``scaling_2_vs_1`` =
serve-2 / serve-1; ``ceiling_2_vs_1`` = inproc-2 / inproc (what a second process gives the engine alone).

On a shared box the wall-clock numbers measure the neighbours too, so each phase also gets
``idle_bound_puzzles_per_s``: what its measured CPU cost per puzzle allows on ``--cores`` idle cores
(each single-threaded process, and each replica, at most one core; everything together at most all
cores). It is an estimate from CPU accounting, reported next to, not instead of, the measurement.
Writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from hrm.serve.load import load_summary

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds (user + system) of every process, by (pid, start time): (command line, seconds).

    Keyed by the process, not by its command line: Ray renames a worker's title while it runs a task
    (``ray::ServeReplica:r1:ingress`` -> ``...ingress.handle_request_with_rejection``), and a key that
    changed between two snapshots would count the process's whole lifetime as used in between."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            out[(int(proc.name), int(fields[19]))] = (cmd, (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue
    return out


#: the process groups CPU time is reported in (``engine processes``: the two of the ``inproc-2`` phase)
GROUPS = ("solver", "ingress", "proxy", "client (this process)", "engine processes", "ray other")


def cpu_by_group(before: dict, after: dict, ray_pids: set[int],
                 engine_pids: set[int] = frozenset()) -> dict[str, float]:
    """CPU seconds per process group between two snapshots (only this run's processes)."""
    groups = dict.fromkeys(GROUPS, 0.0)
    for key, (cmd, t) in after.items():
        pid = key[0]
        used = t - before.get(key, (cmd, 0.0))[1]
        if pid == os.getpid():
            groups["client (this process)"] += used
        elif pid in engine_pids:
            groups["engine processes"] += used
        elif pid not in ray_pids:
            continue
        elif ":solver" in cmd:
            groups["solver"] += used
        elif ":ingress" in cmd:
            groups["ingress"] += used
        elif "ProxyActor" in cmd:
            groups["proxy"] += used
        else:
            groups["ray other"] += used
    return groups


def inproc_load(session, slots: int, requests: list[list], clients: int, latencies: bool = False):
    """The in-process phase: ``clients`` threads, each submitting its next request's puzzles to one
    Scheduler and waiting for all of them. Returns the phase summary (or, with ``latencies``, the
    request latencies in ms)."""
    from hrm.runtime import Scheduler

    latency = [0.0] * len(requests)
    order = iter(range(len(requests)))
    lock = threading.Lock()

    with Scheduler(session, slots) as sched:
        def client() -> None:
            while True:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                futures = [sched.submit(p) for p in requests[i]]
                for f in futures:
                    f.result()
                latency[i] = (time.perf_counter() - t0) * 1e3

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
    if latencies:
        return latency
    return load_summary(len(requests), latency, sum(len(r) for r in requests), seconds)


class EnginePair:
    """The ``inproc-2`` phase: two processes, each the in-process engine (one Session + Scheduler, as the
    ``inproc`` phase), each with half the clients and every other request. What two replicas could do on
    this machine with no serving layer at all: the ceiling that ``serve-2`` is compared with.

    The processes start once (imports and session warm-up are not measured) and then run one phase per
    :meth:`run`, started together behind a barrier."""

    def __init__(self, spec, slots: int, clients: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork of a process holding Ray and ORT threads
        self.barrier = ctx.Barrier(3)
        self.jobs = [ctx.Queue() for _ in range(2)]
        self.results = ctx.Queue()
        self.procs = [ctx.Process(target=_engine_process, daemon=True,
                                  args=(spec, slots, max(1, clients // 2), self.jobs[k], self.barrier, self.results))
                      for k in range(2)]
        for p in self.procs:
            p.start()

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.procs}

    def run(self, requests: list[list]) -> dict:
        for k in range(2):
            self.jobs[k].put(requests[k::2])
        self.barrier.wait()
        t0 = time.perf_counter()
        parts = [self.results.get(timeout=3600) for _ in range(2)]
        seconds = time.perf_counter() - t0
        return load_summary(len(requests), [x for part in parts for x in part], sum(len(r) for r in requests),
                            seconds)

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)


def _engine_process(spec, slots: int, clients: int, jobs, barrier, results) -> None:
    """One process of :class:`EnginePair`: for each job (a list of requests), wait for the other, then
    run the in-process load and report the request latencies."""
    session = spec.open()
    while (requests := jobs.get()) is not None:
        barrier.wait()
        results.put(inproc_load(session, slots, requests, clients, latencies=True))
    session.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "sudoku4.safetensors")
    ap.add_argument("--requests", type=int, default=400, help="requests per phase and round")
    ap.add_argument("--puzzles", type=int, default=16, help="puzzles per request")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--halting", default="act")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores of the idle-machine bound")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from hrm.serve.cluster import use_local_env

    use_local_env()  # before anything imports ray
    from hrm.bench import env as benv
    from hrm.export import export_deployment
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.app import run_app
    from hrm.serve.cluster import connect
    from hrm.serve.load import run_load
    from hrm.serve.spec import Scaling, SessionSpec

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    doc = {"command": " ".join(["python", "benchmarks/serve_bench.py", *sys.argv[1:]]), "config": vars(args) | {
        "checkpoint": str(args.checkpoint), "json": str(args.json)}, "environment": benv.environment(["cpu"], 1)}
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    deploy = tmp / "deploy"
    export_deployment(args.checkpoint, deploy, precisions="fp32", validate=False)
    # the one description of the session: the in-process phase opens it here, every replica opens it there
    spec = SessionSpec(str(deploy), batch=args.slots, halting=args.halting, options=OrtOptions(threads=1))
    session = spec.open()
    task = session.task
    puzzles = task.generate(args.requests * args.puzzles, np.random.default_rng(0))
    texts = [task.render(p.tokens) for p in puzzles]
    assert all(np.array_equal(task.parse(t, "<x>")[0].tokens, p.tokens) for t, p in zip(texts[:50], puzzles)), \
        "the task's render does not parse back to the same tokens"
    parsed = [[puzzles[i * args.puzzles + j] for j in range(args.puzzles)] for i in range(args.requests)]
    bodies = [["\n\n".join(texts[i * args.puzzles + j] for j in range(args.puzzles))] for i in range(args.requests)]
    pair = EnginePair(spec, args.slots, args.clients)

    # logical CPUs: the 2 single-CPU replicas of serve-2 are placed however many cores there are
    connect(None, num_cpus=max(2, os.cpu_count() or 1))
    import ray

    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": 8311},
                logging_config={"log_level": "WARNING", "enable_access_log": False})

    def serve_phase(n: int) -> dict:
        """Deploy the application with ``n`` replicas, warm it up, measure, delete it: only the measured
        replicas exist while they are measured (an idle application beside them would take CPU too)."""
        app = run_app(spec, Scaling(replicas=n), name="bench", route_prefix="/bench", port=8311)
        try:
            asyncio.run(run_load(app.url, bodies[:2 * args.clients], clients=args.clients, deadline_s=600))
            return measured(lambda: _answered(f"serve-{n}", asyncio.run(
                run_load(app.url, bodies, clients=args.clients, deadline_s=600))))
        finally:
            app.shutdown()

    def measured(run) -> dict:
        before = cpu_seconds()
        result = run()
        used = cpu_by_group(before, cpu_seconds(), ray_processes(), pair.pids)
        return result | {"cpu_ms_per_puzzle": {k: round(v * 1e3 / total, 3) for k, v in used.items()}}

    total = args.requests * args.puzzles
    phases = {"inproc": lambda: measured(lambda: inproc_load(session, args.slots, parsed, args.clients)),
              "inproc-2": lambda: measured(lambda: pair.run(parsed)),
              "serve-1": lambda: serve_phase(1), "serve-2": lambda: serve_phase(2)}
    log("warm-up")  # the engines' arenas (a serve phase warms up its own fresh replicas)
    inproc_load(session, args.slots, parsed[:2 * args.clients], args.clients)
    pair.run(parsed[:2 * args.clients])
    rounds: dict[str, list] = {name: [] for name in phases}
    for r in range(args.rounds):
        for name, phase in phases.items():
            rounds[name].append(phase())
            log(f"round {r + 1} {name}: {rounds[name][-1]}")
    doc["rounds"] = rounds
    med = {name: {k: float(np.median([x[k] for x in runs])) for k in ("puzzles_per_s", "requests_per_s", "p50_ms",
                                                                        "p99_ms")} for name, runs in rounds.items()}
    for name, runs in rounds.items():
        cpu = {k: float(np.median([x["cpu_ms_per_puzzle"][k] for x in runs])) for k in runs[0]["cpu_ms_per_puzzle"]}
        med[name]["cpu_ms_per_puzzle"] = cpu
        med[name]["idle_bound_puzzles_per_s"] = round(idle_bound(name, cpu, args.cores), 1)
    doc["medians"] = med
    doc["ratios"] = {"serve_overhead_1": ratio(med, "serve-1", "inproc", "puzzles_per_s", overhead=True),
                     "scaling_2_vs_1": ratio(med, "serve-2", "serve-1", "puzzles_per_s"),
                     "idle_bound_serve_overhead_1": ratio(med, "serve-1", "inproc", "idle_bound_puzzles_per_s",
                                                          overhead=True),
                     "idle_bound_scaling_2_vs_1": ratio(med, "serve-2", "serve-1", "idle_bound_puzzles_per_s"),
                     "serve_overhead_2": ratio(med, "serve-2", "inproc-2", "puzzles_per_s", overhead=True),
                     "ceiling_2_vs_1": ratio(med, "inproc-2", "inproc", "puzzles_per_s")}
    doc["environment"]["load_average_end"] = benv.load_average()
    serve.shutdown()
    ray.shutdown()
    session.close()
    pair.close()
    text = json.dumps(doc, indent=2)
    if args.json:
        from hrm.io import write_text_atomic

        write_text_atomic(args.json, text + "\n")
    print(json.dumps({"medians": med, "ratios": doc["ratios"]}, indent=2))


def idle_bound(phase: str, cpu_ms: dict[str, float], cores: int) -> float:
    """Puzzles/s the measured CPU cost allows on ``cores`` idle cores (see the module docstring)."""
    if phase == "inproc":  # this process only (the idle Ray cluster beside it is not the engine's cost)
        return 1e3 / cpu_ms["client (this process)"]
    if phase == "inproc-2":  # the two engine processes, each at most one core
        return min(2, cores) * 1e3 / cpu_ms["engine processes"]
    replicas = int(phase.split("-")[1])
    limits = [replicas * 1e3 / cpu_ms["solver"], cores * 1e3 / sum(cpu_ms.values())]
    limits += [1e3 / cpu_ms[k] for k in ("ingress", "proxy", "client (this process)") if cpu_ms.get(k, 0) > 0]
    return min(limits)


def ratio(med: dict, a: str, b: str, key: str, overhead: bool = False) -> float:
    r = med[a][key] / med[b][key]
    return round(1 - r if overhead else r, 3)


def _answered(phase: str, run) -> dict:
    """A load run's summary; a run with any request failed or unanswered is no measurement."""
    bad = run.unanswered + [i for i, r in enumerate(run.outcomes) if i not in run.unanswered and r.status != 200]
    if bad:
        raise SystemExit(f"{phase}: {len(bad)} requests failed, first {run.outcomes[bad[0]]!r}")
    return run.summary()


def ray_processes() -> set[int]:
    """Pids of this machine's Ray processes (ours: started from this checkout's environment)."""
    return {int(p.name) for p in Path("/proc").glob("[0-9]*") if _is_ray(p)}


def _is_ray(proc: Path) -> bool:
    try:
        cmd = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return b"ray::" in cmd or (b"/site-packages/ray/" in cmd and bytes(ROOT) in cmd)


if __name__ == "__main__":
    main()
