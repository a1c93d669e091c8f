"""What HRM and TRM share in PyTorch: embeddings, initial states, heads, the segment loop, loading.

Both families expose the same pieces, which is all that export, the runtime's torch backend, training
and :func:`hrm.model.solve` use::

    x   = embed(tokens, puzzle_ids)                  # once per puzzle
    for each segment:
        for N (H_cycles):  T x (z_L = l_step(z_L, z_H, x));  z_H = h_step(z_H, z_L)
        logits, q_halt, q_continue = heads(z_H)

A family only says which stacks it has and what ``l_step`` / ``h_step`` run (:mod:`hrm.model.hrm`,
:mod:`hrm.model.trm`), and how far back the training gradient reaches (:attr:`grad_l_steps`).
``state_dict()`` keys are the official ones, so an official checkpoint with its prefixes stripped
loads as is.
"""

from __future__ import annotations

import contextlib
import math
from typing import ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from hrm.config import HRMConfig, normalize_dtype
from hrm.errors import ConfigError
from hrm.model.layers import CastedEmbedding, CastedLinear, PuzzleEmbedding, rope_tables, trunc_normal_

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class RecursiveModel(nn.Module):
    """The shared part of the official ``*_ACTV1_Inner`` modules; subclasses add the stacks.

    ``RecursiveModel.from_checkpoint`` / ``from_tensors`` / :func:`build_model` pick the family from
    ``config.arch``; called on a family class they refuse a config of the other family.
    """

    #: ``HRMConfig.arch`` value this class implements (set by subclasses).
    arch: ClassVar[str] = ""

    def __init__(self, config: HRMConfig) -> None:
        super().__init__()
        if type(self) is RecursiveModel:
            raise TypeError("RecursiveModel is abstract; use build_model(config) or a family class (HRM, TRM)")
        _check_family(type(self), config)
        self.config = config.validate()
        c = config
        self.forward_dtype = TORCH_DTYPES[c.forward_dtype]
        self.embed_scale = math.sqrt(c.hidden_size)
        init_std = 1.0 / self.embed_scale

        self.embed_tokens = CastedEmbedding(c.vocab_size, c.hidden_size, init_std)
        self.lm_head = CastedLinear(c.hidden_size, c.vocab_size, bias=False)
        self.q_head = CastedLinear(c.hidden_size, 2, bias=True)
        if c.puzzle_emb_ndim > 0:
            self.puzzle_emb = PuzzleEmbedding(c.num_puzzle_identifiers, c.puzzle_emb_ndim)
        if c.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(c.total_seq_len, c.hidden_size, init_std)
        self.build_stacks(c)
        # Fixed initial states (buffers, persistent: they are part of the checkpoint). fp32 here holds
        # the official bf16 values exactly; they are cast to the forward dtype at use.
        self.register_buffer("H_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))
        self.register_buffer("L_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))
        if c.pos_encodings == "rope":
            cos, sin = rope_tables(c.head_dim, c.total_seq_len, c.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        with torch.no_grad():  # Q head starts at "never halt" (official: weight 0, bias -5)
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    # ---- what a family provides -----------------------------------------------------------------
    def build_stacks(self, config: HRMConfig) -> None:
        """Create the transformer stacks (``H_level``/``L_level`` modules)."""
        raise NotImplementedError

    def l_step(self, z_L: torch.Tensor, z_H: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One low-level update: z_L = L(z_L + (z_H + x~))."""
        raise NotImplementedError

    def h_step(self, z_H: torch.Tensor, z_L: torch.Tensor) -> torch.Tensor:
        """One high-level update: z_H = H(z_H + z_L)."""
        raise NotImplementedError

    @property
    def grad_l_steps(self) -> int:
        """How many trailing l_steps of a segment (before its last h_step) carry gradient in training."""
        raise NotImplementedError

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_tensors(cls, config: HRMConfig, tensors: Mapping[str, np.ndarray | torch.Tensor],
                     forward_dtype: str | None = None) -> "RecursiveModel":
        """Build from a name -> array mapping with official key names (see hrm.checkpoint)."""
        if forward_dtype is not None:
            config = config.replace(forward_dtype=normalize_dtype(forward_dtype))
        model = build_model(config, family=None if cls is RecursiveModel else cls)
        state = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v).float()
                 for k, v in tensors.items()}
        model.load_state_dict(state, strict=True)
        return model.eval()

    @classmethod
    def from_checkpoint(cls, ckpt, forward_dtype: str | None = None) -> "RecursiveModel":
        """Build from a :class:`hrm.checkpoint.Checkpoint` (ours or official)."""
        return cls.from_tensors(ckpt.config, ckpt.tensors, forward_dtype)

    def numpy_tensors(self) -> dict[str, np.ndarray]:
        """fp32 numpy copy of the persistent state, keyed by official names (for saving/export)."""
        return {k: v.detach().float().cpu().numpy() for k, v in self.state_dict().items()}

    def set_forward_dtype(self, dtype: str) -> "RecursiveModel":
        """Switch activations between fp32 / bf16 / fp16 without touching the fp32 weights."""
        name = normalize_dtype(dtype)
        self.config = self.config.replace(forward_dtype=name)
        self.forward_dtype = TORCH_DTYPES[name]
        return self

    # ---- the shared pieces ------------------------------------------------------------------
    @property
    def _cos_sin(self):
        return (self.rope_cos, self.rope_sin) if self.config.pos_encodings == "rope" else None

    def embed(self, tokens: torch.Tensor, puzzle_ids: torch.Tensor) -> torch.Tensor:
        """x~ = sqrt(D) * [puzzle_emb(puzzle_id); embed(tokens)] (+ learned positions): [B, S+P, D]."""
        c, dtype = self.config, self.forward_dtype
        x = self.embed_tokens(tokens.to(torch.int32).long(), dtype)
        if c.puzzle_emb_ndim > 0:
            p = self.puzzle_emb(puzzle_ids.long(), dtype)
            pad = c.puzzle_len * c.hidden_size - p.shape[-1]
            if pad > 0:
                p = nn.functional.pad(p, (0, pad))
            x = torch.cat((p.view(-1, c.puzzle_len, c.hidden_size), x), dim=-2)
        if c.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.embedding_weight.to(dtype))
        return self.embed_scale * x

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_H, z_L) = H_init / L_init broadcast to [B, S+P, D] in the forward dtype."""
        shape = (batch, self.config.total_seq_len, self.config.hidden_size)
        device = device or self.H_init.device
        z_H = self.H_init.to(device=device, dtype=self.forward_dtype).expand(shape).clone()
        z_L = self.L_init.to(device=device, dtype=self.forward_dtype).expand(shape).clone()
        return z_H, z_L

    def heads(self, z_H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """logits [B, S, V] over grid positions; (q_halt, q_continue) [B] in fp32 from position 0."""
        logits = self.lm_head(z_H)[:, self.config.puzzle_len:]
        q = self.q_head(z_H[:, 0]).float()
        return logits, q[..., 0], q[..., 1]

    def segment(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, truncated_grad: bool = False):
        """One segment: N cycles of (T l_steps, 1 h_step), then the heads.

        ``truncated_grad=True`` is the training form: only the last :attr:`grad_l_steps` l_steps and the
        last h_step run with autograd (HRM: the 1-step gradient; TRM: the whole last H cycle). The
        values are identical either way.
        """
        N, T = self.config.H_cycles, self.config.L_cycles
        tail = self.grad_l_steps if truncated_grad else 0
        with torch.no_grad() if truncated_grad else contextlib.nullcontext():
            for n in range(N):
                last = truncated_grad and n == N - 1
                for _ in range(T - tail if last else T):
                    z_L = self.l_step(z_L, z_H, x)
                if last:
                    break
                z_H = self.h_step(z_H, z_L)
        if truncated_grad:
            for _ in range(tail):
                z_L = self.l_step(z_L, z_H, x)
            z_H = self.h_step(z_H, z_L)
        logits, q_halt, q_continue = self.heads(z_H)
        return z_H, z_L, logits, q_halt, q_continue

    def forward(self, tokens: torch.Tensor, puzzle_ids: torch.Tensor):
        """One segment from the initial state (handy for tracing and smoke use)."""
        z_H, z_L = self.initial_state(tokens.shape[0], tokens.device)
        return self.segment(z_H, z_L, self.embed(tokens, puzzle_ids))


def model_classes() -> dict[str, type[RecursiveModel]]:
    """``HRMConfig.arch`` -> model class (the one registry of families)."""
    from hrm.model.hrm import HRM
    from hrm.model.trm import TRM

    return {HRM.arch: HRM, TRM.arch: TRM}


def _check_family(cls: type[RecursiveModel], config: HRMConfig) -> None:
    if cls.arch != config.arch:
        raise ConfigError(f"config field 'arch' is {config.arch!r} but {cls.__name__} implements {cls.arch!r}; "
                          "build it with hrm.model.build_model(config) (or RecursiveModel.from_checkpoint)")


def build_model(config: HRMConfig, family: type[RecursiveModel] | None = None) -> RecursiveModel:
    """A randomly initialised model of ``config``'s family (``family``, when given, must match it)."""
    cls = family or model_classes()[config.arch]
    _check_family(cls, config)
    return cls(config)
