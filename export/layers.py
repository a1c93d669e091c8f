"""HRM / TRM layers as ONNX subgraphs: small functions over a :class:`GraphBuilder`, one per official module.

Each function mirrors its PyTorch twin in ``hrm.model.layers`` (same op order, same casts), using only
opset-17 primitives whose patterns TensorRT 10.3+ fuses:

* RMSNorm: ``Cast(fp32) -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div -> Cast(state)`` (statistics in
  fp32 as upstream; no opset-23 RMSNormalization).
* RoPE: ``Cast(fp32) -> x*cos + rotate_half(x)*sin -> Cast(state)`` with cos/sin fp32 initializers.
* Attention: ``MatMul(qkv) -> Reshape -> Transpose -> Split``, ``q * scale -> MatMul(k^T) -> Softmax ->
  MatMul(v)`` (TensorRT's MHA fusion wants the scale on Q before the first batched matmul), all in the
  state dtype (fused kernels accumulate in fp32 internally).
* SwiGLU: one fused gate_up MatMul, ``Split``, ``gate * Sigmoid(gate) * up``, down MatMul.
* TRM ``mlp_t``: ``Transpose`` to [B, D, S+P], the same SwiGLU and RMSNorm over the sequence axis,
  ``Transpose`` back, in place of attention.

Weights are looked up by their official checkpoint names and added once per graph, so calling
:func:`block` twice with the same prefix shares the weights (the fused segment graph does this).

``Ctx.ops`` picks the graph ops: ``standard`` (the above) or ``ort-contrib``, whose blocks use
ONNX Runtime's fused contrib ops instead (:mod:`hrm.export.contrib`); embedding, injection adds and
heads are the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from hrm.config import HRMConfig
from hrm.export.onnx_builder import FLOAT, INT64, GraphBuilder
from hrm.export.precision import Precision
from hrm.manifest import DEFAULT_OPS, ORT_CONTRIB


@dataclass
class Ctx:
    """What every layer function needs: the builder, the model config, the precision and the weights."""

    b: GraphBuilder
    config: HRMConfig
    precision: Precision
    tensors: Mapping[str, np.ndarray]
    ops: str = DEFAULT_OPS
    _rope: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def T(self) -> int:
        """ONNX element type of the state."""
        return self.precision.onnx_type

    def fp32(self, name: str) -> np.ndarray:
        return np.asarray(self.tensors[name], dtype=np.float32)

    def linear(self, name: str) -> str:
        """A ``[out, in]`` linear weight as a ``[in, out]`` MatMul operand in the state dtype."""
        return self.b.initializer(name, lambda: self.precision.round(np.ascontiguousarray(self.fp32(name).T)))

    def scalar(self, value: float, elem_type: int | None = None) -> str:
        return self.b.const(np.float32(value), self.T if elem_type is None else elem_type)

    def rope_tables(self) -> tuple[str, str]:
        """cos/sin [S+P, head_dim] fp32, computed like ``hrm.model.layers.rope_tables`` (not in checkpoints)."""
        if self._rope is None:
            angles = rope_angles(self.config)
            emb = np.concatenate([angles] * 2, axis=-1).astype(np.float32)
            cos = self.b.initializer("rope_cos", lambda: np.cos(emb).astype(np.float32))
            sin = self.b.initializer("rope_sin", lambda: np.sin(emb).astype(np.float32))
            self._rope = (cos, sin)
        return self._rope


def rope_angles(config: HRMConfig) -> np.ndarray:
    """RoPE angles [S+P, head_dim/2] fp32 (position x inverse frequency), as ``hrm.model.layers.rope_tables``
    computes them; its cos/sin tables repeat these twice along the last axis."""
    hd = config.head_dim
    inv_freq = (1.0 / (np.float32(config.rope_theta) ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))
                ).astype(np.float32)
    return np.outer(np.arange(config.total_seq_len, dtype=np.float32), inv_freq).astype(np.float32)


def rms_norm(ctx: Ctx, x: str) -> str:
    """Weightless RMSNorm; statistics in fp32, result cast back to the state dtype."""
    b = ctx.b
    with b.scope("rms_norm"):
        x32 = b.cast(x, FLOAT)
        sq = b.op("Pow", [x32, ctx.scalar(2.0, FLOAT)], hint="sq")
        ms = b.reduce_mean_last(sq)
        rms = b.op("Sqrt", [b.op("Add", [ms, ctx.scalar(ctx.config.rms_norm_eps, FLOAT)], hint="add_eps")], hint="rms")
        y = b.op("Div", [x32, rms], hint="normed")
        return b.cast(y, ctx.T)


def rope(ctx: Ctx, x: str) -> str:
    """NeoX RoPE on ``x`` [B, H, S+P, hd]: ``x*cos + rotate_half(x)*sin`` in fp32, cast back."""
    b = ctx.b
    cos, sin = ctx.rope_tables()
    half = ctx.config.head_dim // 2
    with b.scope("rope"):
        x32 = b.cast(x, FLOAT)
        x1, x2 = b.split(x32, -1, [half, half])
        rotated = b.op("Concat", [b.op("Neg", [x2]), x1], hint="rotate_half", axis=-1)
        out = b.op("Add", [b.op("Mul", [x32, cos]), b.op("Mul", [rotated, sin])], hint="roped")
        return b.cast(out, ctx.T)


def attention(ctx: Ctx, h: str, prefix: str) -> str:
    """Non-causal MHA with fused qkv (rows Q, K, V), RoPE on Q and K, scale 1/sqrt(head_dim)."""
    b, c = ctx.b, ctx.config
    L, H, hd = c.total_seq_len, c.num_heads, c.head_dim
    with b.scope("attn"):
        qkv = b.op("MatMul", [h, ctx.linear(prefix + "self_attn.qkv_proj.weight")], hint="qkv")
        qkv = b.op("Transpose", [b.reshape(qkv, [0, L, 3 * H, hd])], hint="bhsd", perm=[0, 2, 1, 3])
        q, k, v = b.split(qkv, 1, [H, H, H])
        if c.pos_encodings == "rope":
            q, k = rope(ctx, q), rope(ctx, k)
        q = b.op("Mul", [q, ctx.scalar(1.0 / np.sqrt(hd))], hint="q_scaled")
        scores = b.op("MatMul", [q, b.op("Transpose", [k], hint="k_t", perm=[0, 1, 3, 2])], hint="scores")
        probs = b.op("Softmax", [scores], hint="probs", axis=-1)
        out = b.op("MatMul", [probs, v], hint="context")
        out = b.reshape(b.op("Transpose", [out], hint="bshd", perm=[0, 2, 1, 3]), [0, L, c.hidden_size])
        return b.op("MatMul", [out, ctx.linear(prefix + "self_attn.o_proj.weight")], hint="o_proj")


def swiglu(ctx: Ctx, h: str, prefix: str, module: str = "mlp") -> str:
    """``down(silu(gate) * up)`` with one gate_up projection (gate rows first) over the last axis:
    ``module`` "mlp" (width D) or TRM's "mlp_t" (width S+P, on the transposed state)."""
    b = ctx.b
    inter = ctx.config.intermediate_size if module == "mlp" else ctx.config.mlp_t_intermediate_size
    with b.scope(module):
        gate_up = b.op("MatMul", [h, ctx.linear(f"{prefix}{module}.gate_up_proj.weight")], hint="gate_up")
        gate, up = b.split(gate_up, -1, [inter, inter])
        silu = b.op("Mul", [gate, b.op("Sigmoid", [gate])], hint="silu")
        return b.op("MatMul", [b.op("Mul", [silu, up], hint="gated"), ctx.linear(f"{prefix}{module}.down_proj.weight")],
                    hint="down")


def transpose_tokens(ctx: Ctx, h: str) -> str:
    """[B, S+P, D] <-> [B, D, S+P] (TRM's mlp_t mixes along the sequence axis)."""
    return ctx.b.op("Transpose", [h], hint="transpose", perm=[0, 2, 1])


def block(ctx: Ctx, h: str, prefix: str) -> str:
    """Post-norm block: ``h = rms(h + attn(h)); h = rms(h + mlp(h))``; with ``mlp_t`` the first half is
    ``h = T(rms(T(h) + mlp_t(T(h))))`` (T: swap the sequence and hidden axes)."""
    if ctx.ops == ORT_CONTRIB:
        from hrm.export import contrib

        return contrib.block(ctx, h, prefix)
    b = ctx.b
    with b.scope(prefix.rstrip(".")):
        if ctx.config.mlp_t:
            t = transpose_tokens(ctx, h)
            h = transpose_tokens(ctx, rms_norm(ctx, b.op("Add", [t, swiglu(ctx, t, prefix, "mlp_t")], hint="resid_mlp_t")))
        else:
            h = rms_norm(ctx, b.op("Add", [h, attention(ctx, h, prefix)], hint="resid_attn"))
        return rms_norm(ctx, b.op("Add", [h, swiglu(ctx, h, prefix)], hint="resid_mlp"))


def stack(ctx: Ctx, level: str, h: str, injection: str) -> str:
    """One reasoning module (``H_level``/``L_level``): add the injection, then the blocks; no final norm."""
    b = ctx.b
    h = b.op("Add", [h, injection], hint=f"{level}_in")
    for i in range(ctx.config.layers_of(level)):
        h = block(ctx, h, f"{level}.layers.{i}.")
    return h


def l_step(ctx: Ctx, z_L: str, z_H: str, x: str) -> str:
    """z_L = L(z_L + (z_H + x)); the injection sum first, exactly as the reference adds it."""
    return stack(ctx, "L_level", z_L, ctx.b.op("Add", [z_H, x], hint="injection"))


def h_step(ctx: Ctx, z_H: str, z_L: str) -> str:
    """z_H = H(z_H + z_L); TRM's one network is ``L_level`` (:attr:`HRMConfig.h_step_level`)."""
    return stack(ctx, ctx.config.h_step_level, z_H, z_L)


def embed(ctx: Ctx, tokens: str, puzzle_ids: str) -> str:
    """x = sqrt(D) * [puzzle_emb(id) ; embed(tokens)] (+ learned positions), in the state dtype.

    The constant scales (sqrt(D), and 1/sqrt(2) for learned positions) are folded into the tables at
    export in fp32, then rounded once: one rounding instead of the reference's two or three, so it is
    at least as accurate, and the graph is just Gather (+ Concat, + Add).
    """
    b, c = ctx.b, ctx.config
    scale = float(np.sqrt(c.hidden_size)) * (0.707106781 if c.pos_encodings == "learned" else 1.0)
    with b.scope("embed"):
        table = b.initializer("embed_tokens.embedding_weight",
                              lambda: ctx.precision.round(ctx.fp32("embed_tokens.embedding_weight") * np.float32(scale)))
        x = b.op("Gather", [table, tokens], hint="tok", axis=0)
        if c.puzzle_len > 0:
            table = b.initializer("puzzle_emb.weights", lambda: ctx.precision.round(
                ctx.fp32("puzzle_emb.weights") * np.float32(scale)))
            p = b.op("Gather", [table, puzzle_ids], hint="puzzle", axis=0)
            # The table stays [ids, puzzle_emb_ndim]; only the gathered rows are zero-padded to the prefix
            # (TRM: 16 positions x hidden, 16x the table if padded at rest; ARC has ~1M rows).
            pad = c.puzzle_len * c.hidden_size - c.puzzle_emb_ndim
            if pad > 0:
                p = b.op("Pad", [p, b.const([0, 0, 0, pad], INT64)], hint="puzzle_pad", mode="constant")
            x = b.op("Concat", [b.reshape(p, [0, c.puzzle_len, c.hidden_size]), x], hint="x", axis=1)
        if c.pos_encodings == "learned":
            pos = b.initializer("embed_pos.embedding_weight",
                                lambda: ctx.precision.round(ctx.fp32("embed_pos.embedding_weight") * np.float32(scale)))
            x = b.op("Add", [x, pos], hint="x_pos")
        return x


def heads(ctx: Ctx, z_H: str) -> tuple[str, str, str]:
    """logits over grid positions (state dtype); q_halt, q_continue (fp32) from position 0."""
    b, c = ctx.b, ctx.config
    with b.scope("heads"):
        grid = b.op("Slice", [z_H, b.const([c.puzzle_len], INT64), b.const([c.total_seq_len], INT64),
                              b.const([1], INT64)], hint="grid")
        logits = b.op("MatMul", [grid, ctx.linear("lm_head.weight")], hint="logits")
        first = b.op("Gather", [z_H, b.const(0, INT64)], hint="first", axis=1)
        bias = b.initializer("q_head.bias", lambda: ctx.precision.round(ctx.fp32("q_head.bias")))
        q = b.op("Add", [b.op("MatMul", [first, ctx.linear("q_head.weight")], hint="q_mm"), bias], hint="q")
        q = b.cast(q, FLOAT)
        q_halt = b.op("Gather", [q, b.const(0, INT64)], hint="q_halt", axis=1)
        q_continue = b.op("Gather", [q, b.const(1, INT64)], hint="q_continue", axis=1)
        return logits, q_halt, q_continue
