"""Transformer pieces of HRM and TRM, numerically identical to the official ``models/layers.py``.

Weights are stored fp32 and cast to the activation dtype at use (the official ``Casted*`` modules),
so one set of weights serves fp32, bf16 and fp16 forward passes. RMSNorm statistics and RoPE are
computed in fp32 whatever the forward dtype, as upstream does. Attention uses PyTorch SDPA instead of
flash-attn (same math: no mask, not causal, scale 1/sqrt(head_dim)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hrm.config import HRMConfig


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """JAX-style truncated normal (the official init): the *resulting* std is ``std``."""
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        sqrt2 = math.sqrt(2)
        a, b = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
        z = (b - a) / 2
        c = (2 * math.pi) ** -0.5
        pdf_u, pdf_l = c * math.exp(-0.5 * lower**2), c * math.exp(-0.5 * upper**2)
        comp_std = std / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)
        tensor.uniform_(a, b).erfinv_().mul_(sqrt2 * comp_std).clip_(lower * comp_std, upper * comp_std)
    return tensor


def rms_norm(h: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless RMSNorm in fp32, returned in the input dtype."""
    dtype = h.dtype
    h = h.float()
    h = h * torch.rsqrt(h.square().mean(-1, keepdim=True) + eps)
    return h.to(dtype)


def rope_tables(head_dim: int, positions: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """NeoX-style cos/sin tables [positions, head_dim] in fp32 (``cat(freqs, freqs)``)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    t = torch.arange(positions, dtype=torch.float32, device=device)
    emb = torch.cat([torch.outer(t, inv_freq)] * 2, dim=-1)
    return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, S, H, D]; rotation computed in fp32 then cast back, as upstream."""
    dtype = x.dtype
    x = x.float()
    out = x * cos.unsqueeze(-2) + _rotate_half(x) * sin.unsqueeze(-2)
    return out.to(dtype)


class CastedLinear(nn.Module):
    """Linear with fp32 master weights cast to the input dtype (official ``CastedLinear``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    """Embedding table with fp32 master weights (key: ``embedding_weight``, as upstream)."""

    def __init__(self, num: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.embedding_weight = nn.Parameter(trunc_normal_(torch.empty(num, dim), std=init_std))

    def forward(self, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(idx, self.embedding_weight.to(dtype))


class PuzzleEmbedding(nn.Module):
    """Per-puzzle learned vector (official ``CastedSparseEmbedding``; key ``weights``, a buffer there).

    Kept as a parameter here so our trainer can learn it with plain AdamW; zero-initialised as upstream.
    """

    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num, dim))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.weights[ids].to(dtype)


class Attention(nn.Module):
    """Non-causal multi-head attention with a fused qkv projection (rows Q, K, V) and RoPE."""

    def __init__(self, config: HRMConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv_proj = CastedLinear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = CastedLinear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, h: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, s, _ = h.shape
        qkv = self.qkv_proj(h).view(b, s, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.split(self.num_heads, dim=2)
        if cos_sin is not None:
            q, k = apply_rope(q, *cos_sin), apply_rope(k, *cos_sin)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class SwiGLU(nn.Module):
    """``down(silu(gate) * up)`` with one fused gate_up projection (gate rows first) over the last axis
    of width ``width`` (the hidden size; for TRM's ``mlp_t`` the sequence length S + P)."""

    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.gate_up_proj = CastedLinear(width, 2 * inner, bias=False)
        self.down_proj = CastedLinear(inner, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    """Post-norm block: ``h = rms(h + attn(h)); h = rms(h + mlp(h))``.

    TRM's ``mlp_t`` replaces the attention half by a SwiGLU across the sequence axis, normalised over
    that axis too (upstream transposes to [B, D, S+P], applies ``rms(h + mlp_t(h))``, transposes back).
    """

    def __init__(self, config: HRMConfig) -> None:
        super().__init__()
        self.mixes_tokens_by_mlp = config.mlp_t
        if config.mlp_t:
            self.mlp_t = SwiGLU(config.total_seq_len, config.mlp_t_intermediate_size)
        else:
            self.self_attn = Attention(config)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)
        self.eps = config.rms_norm_eps

    def forward(self, h: torch.Tensor, cos_sin) -> torch.Tensor:
        if self.mixes_tokens_by_mlp:
            t = h.transpose(1, 2)
            h = rms_norm(t + self.mlp_t(t), self.eps).transpose(1, 2)
        else:
            h = rms_norm(h + self.self_attn(h, cos_sin), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


class ReasoningModule(nn.Module):
    """One level (HRM's L or H; TRM's one ``net``): add the injection, then the layers; no final norm."""

    def __init__(self, config: HRMConfig, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(config) for _ in range(num_layers))

    def forward(self, h: torch.Tensor, injection: torch.Tensor, cos_sin) -> torch.Tensor:
        h = h + injection
        for layer in self.layers:
            h = layer(h, cos_sin)
        return h
