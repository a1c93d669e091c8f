"""Per-segment latency of a backend, as JSON: ``python -m hrm.runtime.timing DIR [options]``.

A first, honest number for "how long does one HRM segment take here": for each batch size, fill
every slot with random puzzles, run warm-up segments (TensorRT graph capture, ORT arena growth and
cuDNN/cuBLAS autotuning happen there), then time ``repeats`` segments, each ``backend.segment()``
followed by ``read_heads`` — exactly what the solve loop pays per segment, including its one host
synchronisation. Reported per batch size: mean / p50 / p90 / min milliseconds per segment (with q
values only, and with logits read back), the cost of a full-batch row load (embed + state reset), and
puzzle-segments per second. Example::

    python -m hrm.runtime.timing deploy/sudoku --backend ort --device cuda --precision fp16 --batch 1 --batch 64
"""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

import click
import numpy as np

from hrm.manifest import PRECISIONS


def _stats(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"mean": round(float(a.mean()), 4), "p50": round(float(np.percentile(a, 50)), 4),
            "p90": round(float(np.percentile(a, 90)), 4), "min": round(float(a.min()), 4)}


def measure(deployment: Any, backend: str = "ort", device: str = "cpu", precision: str = "fp32",
            batches: Sequence[int] = (1, 64), repeats: int = 20, warmup: int = 3, seed: int = 0,
            options: Any = None) -> dict[str, Any]:
    """Time segments at each batch size; returns a JSON-able dict."""
    from hrm.runtime.session import Session

    sess = Session(deployment, backend=backend, device=device, precision=precision, batch=max(batches),
                   options=options)
    c = sess.config
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"deployment": str(sess.deployment.root), "precision": precision,
                           "config": {"seq_len": c.seq_len, "hidden_size": c.hidden_size, "H_cycles": c.H_cycles,
                                      "L_cycles": c.L_cycles, "H_layers": c.H_layers, "L_layers": c.L_layers},
                           "repeats": repeats, "warmup": warmup, "results": []}
    with sess:
        be = sess.backend
        out["backend"] = be.describe()
        for B in batches:
            be.allocate(B)
            tokens = rng.integers(1, c.vocab_size, (B, c.seq_len)).astype(np.int32)
            ids = rng.integers(0, c.num_puzzle_identifiers, B).astype(np.int32)
            load_ms = []
            for _ in range(3):
                t0 = time.perf_counter()
                be.load_rows(range(B), tokens, ids)
                be.read_heads(logits=False)  # forces completion of the queued load
                load_ms.append((time.perf_counter() - t0) * 1e3)
            for _ in range(warmup):
                be.segment()
                be.read_heads(logits=True)
            q_ms, full_ms = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                be.segment()
                be.read_heads(logits=False)
                q_ms.append((time.perf_counter() - t0) * 1e3)
            for _ in range(repeats):
                t0 = time.perf_counter()
                be.segment()
                be.read_heads(logits=True)
                full_ms.append((time.perf_counter() - t0) * 1e3)
            seg = _stats(q_ms)
            out["results"].append({
                "batch": B,
                "segment_ms": seg,
                "segment_with_logits_ms": _stats(full_ms),
                "load_rows_ms": _stats(load_ms),
                "puzzle_segments_per_s": round(B * 1e3 / seg["p50"], 2),
            })
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(exists=True, file_okay=False))
@click.option("--backend", type=click.Choice(["ort", "trt", "torch"]), default="ort", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True)
@click.option("--batch", "batches", type=int, multiple=True, default=(1, 64), show_default=True,
              help="batch size to time (repeat the option for several)")
@click.option("--repeats", type=int, default=20, show_default=True)
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--cuda-graph/--no-cuda-graph", default=None, help="ort: enable_cuda_graph; trt: segment capture")
@click.option("--fused", is_flag=True, help="run the fused 'segment' graph (export with --segment)")
def main(deployment: str, backend: str, device: str, precision: str, batches: tuple[int, ...], repeats: int,
         warmup: int, cuda_graph: bool | None, fused: bool) -> None:
    """Print per-segment latency of DEPLOYMENT as JSON."""
    from hrm.runtime.backends.options import options_for

    given = {"cuda_graph": cuda_graph, "fused": fused or None}
    options = options_for(backend, **{k: v for k, v in given.items() if v is not None})
    click.echo(json.dumps(measure(deployment, backend, device, precision, batches, repeats, warmup, options=options),
                          indent=2))


if __name__ == "__main__":
    main()
