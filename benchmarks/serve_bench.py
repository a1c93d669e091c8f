"""What serving on Ray costs and what a second replica buys: ``python benchmarks/serve_bench.py``.

Side by side in one run, on the same puzzles and the same load shape (``--clients`` concurrent clients,
each sending its next request as soon as the previous one is answered, ``--puzzles`` per request):

* ``inproc``  the engine alone: one Session + continuous-batching Scheduler in this process, clients as
  threads submitting pre-parsed puzzles (no parsing, no HTTP);
* ``serve-1`` hrm-serve with 1 solver replica, over HTTP on 127.0.0.1 (clients: ``hrm.serve.load``);
* ``serve-2`` the same with 2 replicas.

Every replica and the in-process session have the same slots and 1 ORT thread. Phases are interleaved
(``--rounds`` rounds of inproc, serve-1, serve-2; medians over rounds). Also recorded per phase: CPU
seconds each process group used per puzzle (/proc: solver replicas, ingress, HTTP proxy, the client in
this process, the rest of Ray), which says where the time goes. Ratios: ``serve_overhead_1`` = 1 -
serve-1 / inproc puzzles/s; ``scaling_2_vs_1`` = serve-2 / serve-1.

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

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) of every process of this user, by (pid, command line)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            out[(int(proc.name), cmd)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_by_group(before: dict, after: dict, ray_pids: set[int]) -> dict[str, float]:
    """CPU seconds per process group between two snapshots (only this run's processes)."""
    groups = {"solver": 0.0, "ingress": 0.0, "proxy": 0.0, "client (this process)": 0.0, "ray other": 0.0}
    for key, t in after.items():
        pid, cmd = key
        used = t - before.get(key, 0.0)
        if pid == os.getpid():
            groups["client (this process)"] += used
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


def inproc_load(session, slots: int, requests: list[list], clients: int) -> dict:
    """The in-process phase: ``clients`` threads, each submitting its next request's puzzles to one
    Scheduler and waiting for all of them."""
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
    puzzles = sum(len(r) for r in requests)
    return {"requests": len(requests), "answered": len(requests), "seconds": round(seconds, 3),
            "requests_per_s": round(len(requests) / seconds, 2), "puzzles_per_s": round(puzzles / seconds, 2),
            "p50_ms": round(float(np.percentile(latency, 50)), 2),
            "p99_ms": round(float(np.percentile(latency, 99)), 2)}


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

    from hrm.serve.cluster import LOCAL_ENV

    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
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

    # logical CPUs: both applications' 3 single-CPU replicas are placed at once (idle ones use no CPU)
    connect(None, num_cpus=max(3, os.cpu_count() or 1))
    import ray

    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": 8311},
                logging_config={"log_level": "WARNING", "enable_access_log": False})
    apps = {}
    for n in (1, 2):
        log(f"deploying serve-{n}")
        apps[n] = run_app(spec, Scaling(replicas=n), name=f"r{n}", route_prefix=f"/r{n}", port=8311)
    ray_pids = {int(p.name) for p in Path("/proc").glob("[0-9]*") if p.name.isdigit() and _is_ray(p)}

    def serve_phase(n: int) -> dict:
        run = asyncio.run(run_load(apps[n].url, bodies, clients=args.clients, deadline_s=600))
        bad = run.unanswered + [i for i, r in enumerate(run.outcomes) if i not in run.unanswered and r.status != 200]
        if bad:
            raise SystemExit(f"serve-{n}: {len(bad)} requests failed, first {run.outcomes[bad[0]]!r}")
        return run.summary()

    phases = {"inproc": lambda: inproc_load(session, args.slots, parsed, args.clients),
              "serve-1": lambda: serve_phase(1), "serve-2": lambda: serve_phase(2)}
    for name, phase in phases.items():  # warm-up: arenas, routers, connection pools
        log(f"warm-up {name}")
        phase()
    rounds: dict[str, list] = {name: [] for name in phases}
    total = args.requests * args.puzzles
    for r in range(args.rounds):
        for name, phase in phases.items():
            before = cpu_seconds()
            result = phase()
            used = cpu_by_group(before, cpu_seconds(), ray_pids)
            result["cpu_ms_per_puzzle"] = {k: round(v * 1e3 / total, 3) for k, v in used.items()}
            rounds[name].append(result)
            log(f"round {r + 1} {name}: {result}")
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
                     "idle_bound_scaling_2_vs_1": ratio(med, "serve-2", "serve-1", "idle_bound_puzzles_per_s")}
    doc["environment"]["load_average_end"] = benv.load_average()
    for app in apps.values():
        app.shutdown()
    serve.shutdown()
    ray.shutdown()
    session.close()
    text = json.dumps(doc, indent=2)
    if args.json:
        from hrm.io import write_text_atomic

        write_text_atomic(args.json, text + "\n")
    print(json.dumps({"medians": med, "ratios": doc["ratios"]}, indent=2))


def idle_bound(phase: str, cpu_ms: dict[str, float], cores: int) -> float:
    """Puzzles/s the measured CPU cost allows on ``cores`` idle cores (see the module docstring)."""
    if phase == "inproc":  # this process only (the idle Ray cluster beside it is not the engine's cost)
        return 1e3 / cpu_ms["client (this process)"]
    replicas = int(phase.split("-")[1])
    limits = [replicas * 1e3 / cpu_ms["solver"], cores * 1e3 / sum(cpu_ms.values())]
    limits += [1e3 / cpu_ms[k] for k in ("ingress", "proxy", "client (this process)") if cpu_ms[k] > 0]
    return min(limits)


def ratio(med: dict, a: str, b: str, key: str, overhead: bool = False) -> float:
    r = med[a][key] / med[b][key]
    return round(1 - r if overhead else r, 3)


def _is_ray(proc: Path) -> bool:
    try:
        cmd = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return b"ray::" in cmd or (b"/site-packages/ray/" in cmd and bytes(ROOT) in cmd)


if __name__ == "__main__":
    main()
