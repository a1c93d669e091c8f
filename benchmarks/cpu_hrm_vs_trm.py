"""Latency per solve of HRM vs TRM deployments through ONNX Runtime on the CPU, side by side in one run.

    python benchmarks/cpu_hrm_vs_trm.py --pair sudoku4 DEPLOY_HRM DEPLOY_TRM models/compare/sudoku4_test1000.npz \\
        --pair maze7 DEPLOY_HRM DEPLOY_TRM models/proxies/maze7_test1000.npz --json benchmarks/cpu-hrm-vs-trm.json

For each pair both deployments are opened (ORT, CPU, fp32, batch 1, one intra-op thread, step graphs) and the
same held-out puzzles are solved one at a time, alternating HRM and TRM puzzle by puzzle (so a busy
neighbour on a shared machine slows both alike), under fixed halting (every puzzle ``halt_max_steps``
segments) and ACT. Reported: p50 / p90 ms per solve, mean segments, and the TRM / HRM ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _measure(sessions: dict, tokens: np.ndarray, halting: str, n: int) -> dict:
    times = {k: [] for k in sessions}
    segments = {k: [] for k in sessions}
    for i in range(min(n, len(tokens))):
        for name, s in sessions.items():
            t = time.perf_counter()
            (r,) = s.solve(tokens[i:i + 1], halting=halting)
            times[name].append((time.perf_counter() - t) * 1e3)
            segments[name].append(r.segments)
    out = {name: {"p50_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90)),
                  "mean_segments": float(np.mean(segments[name])), "solves": len(v)} for name, v in times.items()}
    out["ratio_trm_hrm_p50"] = out["trm"]["p50_ms"] / out["hrm"]["p50_ms"]
    return out


def main() -> None:
    from hrm.runtime import OrtOptions, Session

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", nargs=4, action="append", metavar=("NAME", "HRM_DIR", "TRM_DIR", "DATASET_NPZ"),
                    required=True)
    ap.add_argument("--n", type=int, default=200, help="puzzles per halting mode")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = {"command": "python benchmarks/cpu_hrm_vs_trm.py " + " ".join(
                  f"--pair {' '.join(p)}" for p in args.pair) + f" --n {args.n}",
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_start": os.getloadavg()},
              "pairs": {}}
    for name, hrm_dir, trm_dir, dataset in args.pair:
        tokens = np.load(dataset)["inputs"].astype(np.int32)
        sessions = {k: Session(d, backend="ort", device="cpu", precision="fp32", batch=1, options=OrtOptions(threads=1)).activate()
                    for k, d in (("hrm", hrm_dir), ("trm", trm_dir))}
        try:
            for s in sessions.values():
                s.solve(tokens[:args.warmup], halting="fixed")
            result["pairs"][name] = {"hrm": hrm_dir, "trm": trm_dir, "dataset": dataset,
                                     **{h: _measure(sessions, tokens, h, args.n) for h in ("fixed", "act")}}
        finally:
            for s in sessions.values():
                s.close()
        print(json.dumps({name: result["pairs"][name]}, indent=1))
    result["machine"]["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
