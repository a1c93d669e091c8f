"""ORT per-operator profile of ``l_step``, standard vs ``ort-contrib`` graphs, random HRM, 1 thread.

What share of the kernel time is MatMul once RMSNorm, RoPE and attention are ORT's fused contrib ops
(the question ``cpu-ort-levers.json``'s ``l_step_profile`` answered for the standard graphs). Both op
sets are exported from the same random weights (``hrm.bench.models``, cached) and profiled in the same
run, alternating, with the same feeds. Writes ``benchmarks/cpu-contrib-profile.json`` (``--out``)::

    python benchmarks/ort_contrib_profile.py            # full-size Sudoku shape: ~1 min on the 2-core box

``--shape tiny`` profiles the tests' tiny model in seconds (``tests/bench/test_benchmark_scripts.py``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def profile(graph: Path, config, threads: int, reps: int) -> dict:
    """Per-op kernel time (ms per l_step) from ORT's profiler, plus the wall time per run."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.fspath(Path(tmp) / "ort")
        sess = ort.InferenceSession(os.fspath(graph), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        shape = (1, config.total_seq_len, config.hidden_size)
        feeds = {i.name: rng.standard_normal(shape).astype(np.float32) for i in sess.get_inputs()}
        warm = 3
        for _ in range(warm):
            sess.run(None, feeds)
        t0 = time.perf_counter()
        for _ in range(reps):
            sess.run(None, feeds)
        wall = (time.perf_counter() - t0) / reps
        per_op: dict[str, float] = collections.defaultdict(float)
        for e in json.loads(Path(sess.end_profiling()).read_text()):
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                per_op[e["args"]["op_name"]] += e["dur"] / 1e3 / (reps + warm)
    total = sum(per_op.values())
    c = config
    S, D, I = c.total_seq_len, c.hidden_size, c.intermediate_size
    proj_flops = c.L_layers * 2 * S * (4 * D * D + 3 * I * D)  # qkv, o_proj, gate_up, down
    # MatMul / FusedMatMul: the projections (+ in the standard graph the two attention batch matmuls);
    # in the contrib graph attention's matmuls run inside MultiHeadAttention.
    mm = per_op.get("MatMul", 0.0) + per_op.get("FusedMatMul", 0.0)
    mm_attn = mm + per_op.get("MultiHeadAttention", 0.0) + per_op.get("Softmax", 0.0)
    return {"wall_ms": round(wall * 1e3, 3), "kernels_ms": round(total, 3),
            "per_op_ms": {k: round(v, 3) for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])},
            "matmul_fraction": round(mm / total, 3),
            "matmul_and_attention_fraction": round(mm_attn / total, 3),
            "non_matmul_ms": round(total - mm_attn, 3),
            "projection_gflop": round(proj_flops / 1e9, 3),
            "matmul_gflops": round(proj_flops / (per_op.get("MatMul", 0.0) / 1e3) / 1e9, 1)}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=("sudoku", "maze", "tiny"), default="sudoku", help="random model shape")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20, help="profiled l_step runs per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (standard, contrib, ...)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cpu-contrib-profile.json")
    args = ap.parse_args(argv)

    from hrm.bench import env as benv
    from hrm.bench.models import export_ops_deployments, random_checkpoint
    from hrm.runtime import load_deployment

    benv.pin_threads(args.threads)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    ckpt = random_checkpoint(args.shape, log=say)
    std_dir, others = export_ops_deployments(ckpt, ["fp32"], ["standard", "ort-contrib"], ckpt.parent, log=say)
    dirs = {"standard": std_dir, "ort-contrib": others["ort-contrib"]}
    argv = sys.argv[1:] if argv is None else list(argv)
    doc = {"command": " ".join(["python", "benchmarks/ort_contrib_profile.py", *argv]),
           "deployments": {k: str(v) for k, v in dirs.items()},
           "environment": benv.environment(["cpu"], args.threads), "rounds": {}}
    runs: dict[str, list[dict]] = {k: [] for k in dirs}
    for _ in range(args.rounds):
        for ops, d in dirs.items():
            dep = load_deployment(d)
            graph = dep.manifest.path(dep.variant("fp32").graphs["l_step"].file)
            runs[ops].append(profile(graph, dep.config, args.threads, args.reps))
            say(f"{ops}: l_step {runs[ops][-1]['wall_ms']:.1f} ms, MatMul {runs[ops][-1]['matmul_fraction']:.1%}")
    for ops, rs in runs.items():  # the median round by wall time
        doc["rounds"][ops] = [r["wall_ms"] for r in rs]
        doc[ops] = sorted(rs, key=lambda r: r["wall_ms"])[len(rs) // 2]
    doc["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
