"""The device floor: what a segment must cost at best, from counted FLOPs and bytes vs measured peaks.

A segment runs N*T l_steps over the L stack and N h_steps over the H stack, then the heads. Each block
reads all its weights once (at small batch this read, not arithmetic, bounds the time) and does
``2 * tokens * params`` FLOPs in its projections plus ``4 * B * S^2 * D`` in attention. The floor of a
segment is max(FLOPs / peak_flops, weight_bytes / peak_bandwidth); peaks are measured in the same run.

What is counted (matmul work only; norms, RoPE, softmax and the SwiGLU gate are elementwise and left
out, so the count is a lower bound), with S = total_seq_len (grid + puzzle positions), D = hidden,
I = SwiGLU width, V = vocab, B = batch:

* per block: projections ``2*B*S*(3D^2 + D^2 + 2ID + ID)`` (qkv, o, gate_up, down) and attention
  ``4*B*S^2*D`` (QK^T and PV); a TRM ``mlp_t`` block has ``2*B*D*3*S*I_t`` (the sequence-axis SwiGLU)
  instead of qkv, o and attention; a segment runs ``N*T*L_layers + N*H_layers`` blocks (TRM:
  ``N*(T+1)*L_layers``, its one network serves both updates);
* heads: ``2*B*seq_len*D*V`` (lm_head over the grid positions only, as the exported graph slices
  before the projection) + ``2*B*D*2`` (q head on position 0).

``weight_bytes`` is the weight *traffic* of a segment (every block call reads its block's weights,
plus the heads), ``unique_weight_bytes`` the resident weights (each block once): the first bounds a
device whose cache cannot hold the model, the second one whose cache can. ``state_bytes`` counts each
block reading and writing its [B, S, D] state once (activations, a lower bound).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from hrm.config import HRMConfig
from hrm.manifest import segment_schedule

BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass
class SegmentCost:
    """Work of one segment at a given batch size."""

    batch: int
    flops: float
    weight_bytes: float
    state_bytes: float
    unique_weight_bytes: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def segment_cost(config: HRMConfig, batch: int, precision: str = "fp32") -> SegmentCost:
    """Count FLOPs and bytes of one segment (the steps of :func:`hrm.manifest.segment_schedule`)."""
    c = config
    S, D, I, V = c.total_seq_len, c.hidden_size, c.intermediate_size, c.vocab_size
    block_params = _block_params(c)
    if c.mlp_t:
        mixer = 3 * S * c.mlp_t_intermediate_size
        block_flops = 2 * batch * D * mixer + 2 * batch * S * (block_params - mixer)
    else:
        block_flops = 2 * batch * S * block_params + 4 * batch * S * S * D
    steps = segment_schedule(c)
    blocks = steps.count("l_step") * c.L_layers + steps.count("h_step") * c.layers_of(c.h_step_level)
    head_flops = 2 * batch * c.seq_len * D * V + 2 * batch * D * 2
    b = BYTES[precision]
    head_params = V * D + 2 * D
    weight_bytes = b * (blocks * block_params + head_params)
    unique_bytes = b * (_stack_layers(c) * block_params + head_params)
    # Each stack call reads and writes [B, S, D] states once per block (activations, a lower bound).
    state_bytes = b * blocks * 2 * batch * S * D
    return SegmentCost(batch, float(blocks * block_flops + head_flops), float(weight_bytes), float(state_bytes),
                       float(unique_bytes))


def _block_params(c: HRMConfig) -> int:
    """One block's weights: token mixing (attention 4D^2, or TRM's mlp_t 3*(S+P)*I_t) + the SwiGLU 3ID."""
    mixer = 3 * c.total_seq_len * c.mlp_t_intermediate_size if c.mlp_t else 4 * c.hidden_size ** 2
    return mixer + 3 * c.intermediate_size * c.hidden_size


def _stack_layers(c: HRMConfig) -> int:
    """Blocks with weights of their own (HRM: H + L stacks; TRM: its one network)."""
    return sum(c.layers_of(level) for level in c.stack_levels)
@dataclass
class DevicePeaks:
    """Measured in this run, not taken from a datasheet: what this device actually delivers."""

    device: str
    matmul_tflops: float
    matmul_dtype: str
    copy_gbps: float
    threads: int | None = None  # CPU: torch intra-op threads used for the measurement

    def to_dict(self) -> dict:
        return asdict(self)


def measure_peaks(device: str = "cpu", precision: str = "fp32", n: int | None = None) -> DevicePeaks:
    """Measure matmul throughput and copy bandwidth with torch (numpy on CPU when torch is absent)."""
    try:
        import torch
    except ImportError:
        return _numpy_peaks()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 1024)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    big = torch.empty((1 << 28) if dev.type == "cuda" else (1 << 25), device=dev, dtype=torch.uint8)
    out = torch.empty_like(big)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def best(fn, reps):
        fn(); sync()
        times = []
        for _ in range(reps):
            t = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t)
        return min(times)

    t_mm = best(lambda: torch.mm(a, b), 10)
    t_cp = best(lambda: out.copy_(big), 10)
    from hrm.runtime.gpu import probe

    name = (probe().name or "cuda") if dev.type == "cuda" else "cpu"
    threads = None if dev.type == "cuda" else torch.get_num_threads()
    return DevicePeaks(name, 2 * n**3 / t_mm / 1e12, precision, 2 * big.numel() / t_cp / 1e9, threads)


def _numpy_peaks() -> DevicePeaks:
    import numpy as np

    n = 1024
    a = np.random.rand(n, n).astype(np.float32)
    t = time.perf_counter(); a @ a; t_mm = time.perf_counter() - t
    big = np.empty(1 << 25, np.uint8); out = np.empty_like(big)
    t = time.perf_counter(); np.copyto(out, big); t_cp = time.perf_counter() - t
    return DevicePeaks("cpu", 2 * n**3 / t_mm / 1e12, "fp32", 2 * big.size / t_cp / 1e9)


def floor_seconds(cost: SegmentCost, peaks: DevicePeaks) -> dict[str, float]:
    """Compute-bound and memory-bound floors of one segment, and the binding one."""
    compute = cost.flops / (peaks.matmul_tflops * 1e12)
    memory = (cost.weight_bytes + cost.state_bytes) / (peaks.copy_gbps * 1e9)
    return {"compute_s": compute, "memory_s": memory, "floor_s": max(compute, memory),
            "bound": "compute" if compute >= memory else "memory"}


def floor_report(config: HRMConfig, batches: "list[int] | tuple[int, ...]", precision: str,
                 peaks: DevicePeaks) -> dict[str, dict]:
    """Per batch size: the segment's work and its floor on ``peaks`` (JSON-able, keys are str(batch))."""
    out: dict[str, dict] = {}
    for batch in batches:
        cost = segment_cost(config, int(batch), precision)
        out[str(batch)] = {**cost.to_dict(), **floor_seconds(cost, peaks)}
    return out
