"""The ``ort-contrib`` graph ops: the HRM block built from ONNX Runtime's fused contrib ops.

The standard graphs (:mod:`hrm.export.layers`) spells RMSNorm, RoPE and attention as chains of
opset-17 primitives so TensorRT can parse them; ONNX Runtime fuses none of those chains (its
transformer optimizer anchors on patterns our weightless post-norm block does not have), so on its
CUDA EP every element-wise step is one memory-bound kernel. These graphs use ORT's fused ops
(domain ``com.microsoft``) directly, one per job:

* residual add + RMSNorm -> ``SkipSimplifiedLayerNormalization(input=h, skip=f(h), gamma=1)``
  (the reference's RMSNorm has no weight: ``gamma`` is a ones vector in the state dtype, exact);
* RoPE -> ``RotaryEmbedding`` on Q and K in the ``[B, S, hidden]`` layout (``interleaved=0`` is the
  rotate-half convention of ``hrm.model.layers``; ``position_ids=[0]`` = positions 0..S+P-1;
  cos/sin caches ``[S+P, head_dim/2]`` in the state dtype, as the op requires);
* attention -> ``MultiHeadAttention`` on separate Q, K, V ``[B, S, hidden]`` (no mask, not causal,
  default scale 1/sqrt(head_dim)), so the CUDA EP can pick its flash / memory-efficient kernels;
* the QKV projection stays one MatMul + Split; SwiGLU is the standard one (ORT fuses
  ``x * Sigmoid(x)`` itself, as ``QuickGelu``).

Numerics against the PyTorch reference (which computes RMSNorm statistics and RoPE in fp32):

* fp32: the same math; differences are summation order (~1e-6 of the state RMS).
* fp16 / bf16: RoPE runs in the state dtype with cos/sin rounded to it (no fp32 RoPE here), and
  the norm's statistics are fp32 on the CPU kernel but the state dtype on the CUDA kernel unless the
  CUDA EP's ``enable_skip_layer_norm_strict_mode`` is on (the runtime's ORT backend turns it on for
  these graphs). Both stay within the exporter's fp16/bf16 tolerances (measured in the tests).

Kernels: ONNX Runtime 1.32's CPU EP (queried) has ``SkipSimplifiedLayerNormalization`` for
fp32/fp16/bf16, ``RotaryEmbedding`` for fp32/fp16 and ``MultiHeadAttention`` for fp32 only (ORT runs an
fp16 graph's MHA through inserted fp32 casts); the CUDA EP lists all three for fp32/fp16/bf16 in ORT's
OperatorKernels.md (not run here; older releases register the CUDA norm for fp32/fp16 only). bf16
graphs therefore need the CUDA EP, like the standard bf16 graphs (whose MatMuls have no CPU bf16 kernel
either); on the CPU they are validated through :func:`hrm.export.bf16.emulate_bf16`, which models each
op as fp32 compute rounded once to bf16 (the contrib CUDA kernels' internal bf16 arithmetic, e.g. RoPE,
is not modelled).
"""

from __future__ import annotations

import numpy as np

from hrm.export.onnx_builder import INT64, MS_DOMAIN
from hrm.export.layers import Ctx, rope_angles, swiglu, transpose_tokens

#: Ops these graphs use in the com.microsoft domain (tests check they are present, and nothing else).
CONTRIB_OPS = ("SkipSimplifiedLayerNormalization", "RotaryEmbedding", "MultiHeadAttention")


def rope_caches(ctx: Ctx) -> tuple[str, str]:
    """cos/sin caches ``[S+P, head_dim/2]`` in the state dtype (``RotaryEmbedding`` wants them in T).

    The angles are those of ``hrm.model.layers.rope_tables`` (fp32), whose two halves are equal;
    the op reads one half per position."""
    def table(fn) -> np.ndarray:
        return ctx.precision.round(fn(rope_angles(ctx.config)).astype(np.float32))

    return (ctx.b.initializer("rope_cos_cache", lambda: table(np.cos)),
            ctx.b.initializer("rope_sin_cache", lambda: table(np.sin)))


def rope(ctx: Ctx, x: str) -> str:
    """``RotaryEmbedding`` on ``x`` [B, S+P, hidden] (heads contiguous, as the QKV split gives them)."""
    b = ctx.b
    cos, sin = rope_caches(ctx)
    start = b.const([0], INT64)  # 1-D position_ids: every row starts at position 0
    return b.op("RotaryEmbedding", [x, start, cos, sin], hint="rope", domain=MS_DOMAIN, interleaved=0,
                num_heads=ctx.config.num_heads, rotary_embedding_dim=ctx.config.head_dim)


def attention(ctx: Ctx, h: str, prefix: str) -> str:
    """qkv MatMul -> Split(Q, K, V) -> RoPE(Q), RoPE(K) -> MultiHeadAttention -> o_proj."""
    b, c = ctx.b, ctx.config
    D = c.hidden_size
    with b.scope("attn"):
        qkv = b.op("MatMul", [h, ctx.linear(prefix + "self_attn.qkv_proj.weight")], hint="qkv")
        q, k, v = b.split(qkv, -1, [D, D, D])
        if c.pos_encodings == "rope":
            q, k = rope(ctx, q), rope(ctx, k)
        out = b.op("MultiHeadAttention", [q, k, v], hint="mha", domain=MS_DOMAIN, num_heads=c.num_heads)
        return b.op("MatMul", [out, ctx.linear(prefix + "self_attn.o_proj.weight")], hint="o_proj")


def skip_rms_norm(ctx: Ctx, h: str, skip: str, hint: str, width: int | None = None) -> str:
    """``rms_norm(h + skip)`` over the last axis (``width``: hidden size unless given) as one
    ``SkipSimplifiedLayerNormalization`` with a ones gamma."""
    b = ctx.b
    width = width or ctx.config.hidden_size
    name = f"rms_norm_gamma_{ctx.precision.name}" + ("" if width == ctx.config.hidden_size else f"_w{width}")
    gamma = b.initializer(name,
                          lambda: ctx.precision.round(np.ones(width, np.float32)))
    return b.op("SkipSimplifiedLayerNormalization", [h, skip, gamma], hint=hint, domain=MS_DOMAIN,
                epsilon=float(ctx.config.rms_norm_eps))


def block(ctx: Ctx, h: str, prefix: str) -> str:
    """Post-norm block: ``h = rms(h + attn(h)); h = rms(h + mlp(h))`` with fused residual norms. TRM's
    ``mlp_t`` block has no attention: its sequence-axis half gets the fused norm over S+P (on the
    transposed state), so only ``SkipSimplifiedLayerNormalization`` is a contrib op there."""
    b = ctx.b
    with b.scope(prefix.rstrip(".")):
        if ctx.config.mlp_t:
            t = transpose_tokens(ctx, h)
            t = skip_rms_norm(ctx, t, swiglu(ctx, t, prefix, "mlp_t"), "resid_mlp_t_norm", ctx.config.total_seq_len)
            h = transpose_tokens(ctx, t)
        else:
            h = skip_rms_norm(ctx, h, attention(ctx, h, prefix), "resid_attn_norm")
        return skip_rms_norm(ctx, h, swiglu(ctx, h, prefix), "resid_mlp_norm")
