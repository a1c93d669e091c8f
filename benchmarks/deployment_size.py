"""Deployment size, disk and loaded memory: full-size HRM vs TRM, and what TRM's shared network saves.

    python benchmarks/deployment_size.py            # -> benchmarks/deployment-size.json (~3 min on 2 cores)

Models (random weights; sizes do not depend on the values), Sudoku shape (seq 81, vocab 11, one puzzle id):
``hrm``: the official HRM (hidden 512, 4+4 layers, 27.3M parameters); ``trm-mlp_t``: the official TRM
Sudoku-Extreme model (hidden 512, one net of 2 mlp_t layers, puzzle_emb_len 16); ``trm-attention``: TRM
with attention + RoPE (the Maze-Hard / ARC architecture at the Sudoku sequence length).

For each precision: the bytes of the variant's step-graph files (embed, l_step, h_step, heads; no fused
segment) and the resident memory an ONNX Runtime CPU session set adds to a fresh process (VmRSS after
``Session(..., batch=1)`` minus before, measured in a subprocess per deployment). TRM's ``h_step`` runs
the ``l_step`` graph (:data:`hrm.manifest.GRAPH_ALIASES`); the counterfactual row ``(+ own h_step)``
adds what a separate h_step graph with its own copy of the network would cost: its file, and one more
InferenceSession of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "deployment-size.json"
PRECISIONS = ("fp32", "fp16")
BASE = dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, hidden_size=512, num_heads=8, expansion=4.0,
            puzzle_emb_ndim=512, halt_max_steps=16, forward_dtype="bfloat16")
MODELS = {
    "hrm": dict(BASE, H_cycles=2, L_cycles=2, H_layers=4, L_layers=4),
    "trm-mlp_t": dict(BASE, arch="trm", H_cycles=3, L_cycles=6, H_layers=0, L_layers=2, mlp_t=True,
                      pos_encodings="none", puzzle_emb_len=16, no_ACT_continue=True),
    "trm-attention": dict(BASE, arch="trm", H_cycles=3, L_cycles=4, H_layers=0, L_layers=2, pos_encodings="rope",
                          puzzle_emb_len=16, no_ACT_continue=True),
}

_MEASURE = r"""
import json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
import numpy as np, onnxruntime
from hrm.runtime import OrtOptions, Session
before = rss()
if sys.argv[2] == "session":
    s = Session(sys.argv[1], backend="ort", device="cpu", precision=sys.argv[3], batch=1, options=OrtOptions(threads=1)).activate()
    s.solve(np.ones((1, s.deployment.config.seq_len), np.int32), halting="fixed", max_segments=1)
else:  # one extra InferenceSession of a graph file
    so = onnxruntime.SessionOptions(); so.intra_op_num_threads = 1
    s = onnxruntime.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
print(json.dumps({"rss_bytes": rss() - before}))
"""


def _rss(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return int(json.loads(out.stdout.strip().splitlines()[-1])["rss_bytes"])


def measure(models: dict[str, dict], workdir: Path, precisions: tuple[str, ...] = PRECISIONS) -> list[dict]:
    """One row per (model, precision): graph files and their bytes, ORT CPU resident bytes, and for a TRM
    what its own h_step graph would add (``own_h_step``)."""
    from hrm.checkpoint import save_checkpoint
    from hrm.config import HRMConfig
    from hrm.export import export_deployment
    from hrm.export.graphs import build_graph, graph_io
    from hrm.export.precision import get_precision
    from hrm.export.writer import save_graph
    from hrm.model import build_model
    from hrm.tasks import get_task

    rows = []
    for name, fields in models.items():
        config = HRMConfig(**fields).validate()
        tensors = build_model(config).numpy_tensors()
        params = sum(v.size for k, v in tensors.items() if k not in ("H_init", "L_init"))
        ckpt = save_checkpoint(workdir / f"{name}.safetensors", config, tensors,
                               task=get_task("sudoku", size=round(config.seq_len ** 0.5)).metadata())  # Sudoku-shaped
        out = workdir / name
        export_deployment(ckpt, out, precisions=",".join(precisions), validate=False)
        manifest = json.loads((out / "manifest.json").read_text())
        for precision in precisions:
            graphs = manifest["variants"][precision]["graphs"]
            files = {k: (out / g["file"]).stat().st_size for k, g in graphs.items() if "file" in g}
            row = {"model": name, "family": config.arch, "precision": precision, "parameters": int(params),
                   "graph_files": files, "disk_bytes": sum(files.values()),
                   "h_step": "alias of l_step" if "alias" in graphs["h_step"] else "own graph",
                   "ort_cpu_rss_bytes": _rss(str(out), "session", precision)}
            if config.arch == "trm":  # what a separate h_step graph (its own copy of the network) would add
                p = get_precision(precision)
                ins, outs = graph_io("h_step", config, p)
                entry = save_graph(build_graph("h_step", config, tensors, p), workdir, f"{name}-{precision}-h.onnx",
                                   "h_step", ins, outs)
                extra = workdir / entry.file
                row["own_h_step"] = {"disk_bytes": extra.stat().st_size, "ort_cpu_rss_bytes": _rss(str(extra), "graph")}
            rows.append(row)
            print(json.dumps(row))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(MODELS, Path(tmp))
    OUT.write_text(json.dumps({"command": "python benchmarks/deployment_size.py", "rows": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
