"""What limits ONNX Runtime on the CPU, and which levers move it: ``python benchmarks/ort_cpu_levers.py``.

Measures one segment at batch 1 (N*(T l_steps + 1 h_step) + heads, read back like the solve loop) on
the full-size random Sudoku HRM (or ``--deploy DIR``), **interleaved** across variants (round robin, a
few segments each, repeated; medians), for each thread count:

* ``torch-eager``            the PyTorch reference backend (the yardstick)
* ``ort``                    the runtime's ORT backend as shipped (step graphs, IO binding, ORT_ENABLE_ALL)
* ``ort-basic`` / ``ort-none``   graph optimisation level basic / disabled
* ``ort-fused``              the fused ``segment`` graph (one run per segment)
* ``ort-no-iobinding``       the step graphs through plain ``session.run`` with numpy feeds (what IO
                             binding saves)
* ``ort-no-spin``            ``session.intra_op.allow_spinning = 0`` (matters with >1 thread on a busy box)
* ``ort-int8``               ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per channel;
                             dynamic int8 activations) of l_step / h_step: a numerics change, reported
                             with its error after one segment

plus an ORT per-operator profile of ``l_step`` (what fraction is MatMul, and at what FLOP rate), the
torch profile of the same step, and what ``onnxruntime.transformers.optimizer`` fuses in our graphs.
Writes ``benchmarks/cpu-ort-levers.json`` (``--out``).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deploy", type=Path, default=None, help="deployment dir (default: random full-size sudoku)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=4, help="segments per variant per round")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cpu-ort-levers.json")
    args = ap.parse_args()

    from hrm.bench import env as benv
    from hrm.bench.models import random_deployment

    deploy = args.deploy or random_deployment("sudoku", ["fp32"], log=lambda m: print(m, file=sys.stderr))
    doc = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "deployment": str(deploy),
           "environment": benv.environment(["cpu"], max(args.threads)), "results": {}}
    doc["l_step_profile"] = ort_profile(deploy, threads=1)
    doc["torch_l_step_profile"] = torch_profile(deploy, threads=1)
    doc["transformers_optimizer"] = transformers_optimizer(deploy)
    for threads in args.threads:
        benv.pin_threads(threads)
        import torch

        torch.set_num_threads(threads)
        doc["results"][str(threads)] = measure(deploy, threads, args.rounds, args.reps)
        print(json.dumps({k: v["p50_ms"] for k, v in doc["results"][str(threads)]["variants"].items()}),
              file=sys.stderr)
    doc["environment"]["load_average_end"] = benv.load_average()
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


# ---- variants --------------------------------------------------------------------------------------------

class PlainOrt:
    """The step graphs through ``session.run`` with numpy feeds (no IO binding), same recurrence."""

    def __init__(self, deploy: Path, threads: int, files: dict[str, Path] | None = None, spin: bool = True) -> None:
        import onnxruntime as ort

        from hrm.runtime import load_deployment

        self.dep = load_deployment(deploy)
        c = self.dep.config
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        files = files or {}
        var = self.dep.variant("fp32")
        self.s = {k: ort.InferenceSession(os.fspath(files.get(k) or self.dep.manifest.path(var.graphs[k].file)), so,
                                          providers=["CPUExecutionProvider"]) for k in ("embed", "l_step", "h_step",
                                                                                         "heads")}
        self.N, self.T = c.H_cycles, c.L_cycles
        tokens = np.ones((1, c.seq_len), np.int32)
        self.x = self.s["embed"].run(None, {"tokens": tokens, "puzzle_ids": np.zeros(1, np.int32)})[0]
        H, L = self.dep.init_rows("fp32")
        self.z_H, self.z_L = H[None].copy(), L[None].copy()

    def segment(self):
        for _ in range(self.N):
            for _ in range(self.T):
                self.z_L = self.s["l_step"].run(None, {"z_L": self.z_L, "z_H": self.z_H, "x": self.x})[0]
            self.z_H = self.s["h_step"].run(None, {"z_H": self.z_H, "z_L": self.z_L})[0]
        logits, qh, qc = self.s["heads"].run(None, {"z_H": self.z_H})
        return qh


class RuntimeVariant:
    """A runtime backend (ort/torch) at batch 1 with its options object; one ``SegmentLoop.run_segment`` per call."""

    def __init__(self, deploy: Path, backend: str, **options) -> None:
        from hrm.runtime import Request, Session
        from hrm.runtime.backends.options import options_for

        self.sess = Session(deploy, backend=backend, batch=1, options=options_for(backend, **options)).activate()
        self.loop = self.sess.new_loop(1)
        self.loop.admit([Request.of(np.ones(self.sess.config.seq_len, np.int32))])

    def segment(self):
        return self.loop.run_segment().q_halt


def no_spin_backend(deploy: Path, threads: int):
    """The runtime OrtBackend with its idle threads not spinning (now ``OrtOptions(spin=False)``)."""
    return RuntimeVariant(deploy, "ort", threads=threads, spin=False)


def int8_files(deploy: Path, workdir: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from hrm.runtime import load_deployment

    dep = load_deployment(deploy)
    out = {}
    for kind in ("l_step", "h_step"):
        src = dep.manifest.path(dep.variant("fp32").graphs[kind].file)
        dst = workdir / f"{kind}.int8.onnx"
        quantize_dynamic(os.fspath(src), os.fspath(dst), weight_type=QuantType.QInt8, per_channel=True)
        out[kind] = dst
    return out


def measure(deploy: Path, threads: int, rounds: int, reps: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="hrm-levers-"))
    variants = {
        "torch-eager": RuntimeVariant(deploy, "torch"),
        "ort": RuntimeVariant(deploy, "ort", threads=threads),
        "ort-basic": RuntimeVariant(deploy, "ort", threads=threads, optimization="basic"),
        "ort-none": RuntimeVariant(deploy, "ort", threads=threads, optimization="none"),
        "ort-fused": RuntimeVariant(deploy, "ort", threads=threads, fused=True),
        "ort-no-iobinding": PlainOrt(deploy, threads),
        "ort-no-spin": no_spin_backend(deploy, threads),
        "ort-int8": PlainOrt(deploy, threads, files=int8_files(deploy, workdir)),
    }
    # numerics of int8 after one segment from the same state, vs the fp32 step graphs
    ref, q8 = PlainOrt(deploy, threads), variants["ort-int8"]
    q8_state = (q8.z_H.copy(), q8.z_L.copy())
    ref.segment()
    q8.segment()
    err = {"z_H_max_abs": float(np.abs(ref.z_H - q8.z_H).max()), "z_H_mean_abs": float(np.abs(ref.z_H - q8.z_H).mean()),
           "z_H_rms": float(np.sqrt((ref.z_H ** 2).mean()))}
    q8.z_H, q8.z_L = q8_state
    for v in variants.values():  # warm-up
        for _ in range(2):
            v.segment()
    samples = collections.defaultdict(list)
    for _ in range(rounds):
        for name, v in variants.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                v.segment()
                samples[name].append(time.perf_counter() - t0)
    ref_ms = float(np.median(samples["torch-eager"])) * 1e3
    out = {}
    for name, s in samples.items():
        p50 = float(np.median(s)) * 1e3
        out[name] = {"n": len(s), "p50_ms": round(p50, 3), "p90_ms": round(float(np.percentile(s, 90)) * 1e3, 3),
                     "vs_torch_eager": round(p50 / ref_ms, 3)}
    return {"threads": threads, "variants": out, "int8_error_after_one_segment": err,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


# ---- profiles ------------------------------------------------------------------------------------------

def ort_profile(deploy: Path, threads: int = 1, reps: int = 10) -> dict:
    import onnxruntime as ort

    from hrm.bench.floor import measure_peaks
    from hrm.runtime import load_deployment

    dep = load_deployment(deploy)
    c = dep.config
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = os.fspath(Path(tempfile.mkdtemp()) / "ort")
    so.log_severity_level = 3
    sess = ort.InferenceSession(os.fspath(dep.manifest.path(dep.variant("fp32").graphs["l_step"].file)), so,
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal((1, c.total_seq_len, c.hidden_size)).astype(np.float32)
             for i in sess.get_inputs()}
    for _ in range(3):
        sess.run(None, feeds)
    t0 = time.perf_counter()
    for _ in range(reps):
        sess.run(None, feeds)
    wall = (time.perf_counter() - t0) / reps
    events = json.load(open(sess.end_profiling()))
    per_op = collections.defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / 1e3 / (reps + 3)
    total = sum(per_op.values())
    S, D, I = c.total_seq_len, c.hidden_size, c.intermediate_size
    mm_flops = c.L_layers * 2 * S * (4 * D * D + 3 * I * D)
    mm_ms = per_op.get("MatMul", 0.0) + per_op.get("FusedMatMul", 0.0)
    import torch

    torch.set_num_threads(threads)
    peak = measure_peaks("cpu", "fp32")
    return {"threads": threads, "wall_ms": round(wall * 1e3, 3), "kernels_ms": round(total, 3),
            "per_op_ms": {k: round(v, 3) for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])},
            "matmul_fraction": round(mm_ms / total, 3), "projection_gflop": round(mm_flops / 1e9, 3),
            "matmul_gflops": round(mm_flops / (mm_ms / 1e3) / 1e9, 1),
            "peak_gflops_measured": round(peak.matmul_tflops * 1e3, 1)}


def torch_profile(deploy: Path, threads: int = 1, reps: int = 5) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from hrm.checkpoint import load_checkpoint
    from hrm.model import HRM
    from hrm.runtime import load_deployment

    torch.set_num_threads(threads)
    dep = load_deployment(deploy)
    c = dep.config
    model = HRM.from_checkpoint(load_checkpoint(dep.manifest.source["path"]), forward_dtype="float32").eval()
    z = [torch.randn(1, c.total_seq_len, c.hidden_size) for _ in range(3)]
    with torch.no_grad():
        for _ in range(3):
            model.l_step(*z)
        t0 = time.perf_counter()
        for _ in range(reps):
            model.l_step(*z)
        wall = (time.perf_counter() - t0) / reps
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(reps):
                model.l_step(*z)
    per_op = {e.key: e.self_cpu_time_total / 1e3 / reps for e in prof.key_averages()}
    total = sum(per_op.values())
    top = dict(sorted(per_op.items(), key=lambda kv: -kv[1])[:8])
    S, D, I = c.total_seq_len, c.hidden_size, c.intermediate_size
    mm_flops = c.L_layers * 2 * S * (4 * D * D + 3 * I * D)
    mm_ms = per_op.get("aten::mm", 0.0) + per_op.get("aten::addmm", 0.0)
    return {"threads": threads, "wall_ms": round(wall * 1e3, 3), "self_cpu_ms": round(total, 3),
            "top_ops_ms": {k: round(v, 3) for k, v in top.items()}, "mm_fraction": round(mm_ms / total, 3),
            "mm_gflops": round(mm_flops / (mm_ms / 1e3) / 1e9, 1)}


def transformers_optimizer(deploy: Path) -> dict:
    """What ORT's transformer optimizer (BERT/GPT fusions) finds in our l_step graph."""
    import onnx

    from hrm.runtime import load_deployment

    dep = load_deployment(deploy)
    src = dep.manifest.path(dep.variant("fp32").graphs["l_step"].file)
    before = collections.Counter(n.op_type for n in onnx.load(os.fspath(src), load_external_data=False).graph.node)
    out: dict = {"before": dict(before)}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        c = dep.config
        for model_type in ("bert", "gpt2"):
            m = optimize_model(os.fspath(src), model_type=model_type, num_heads=c.num_heads,
                               hidden_size=c.hidden_size, opt_level=0)
            after = collections.Counter(n.op_type for n in m.model.graph.node)
            out[model_type] = {"after": dict(after), "fused": m.get_fused_operator_statistics()}
    except Exception as exc:  # the optimizer's API moves between releases
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    main()
