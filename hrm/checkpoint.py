"""Checkpoints: ours (one safetensors file) and the official ``step_N`` pickles.

Both load into one torch-free :class:`Checkpoint` whose tensors are numpy arrays keyed by the official
names, so export can run without torch on our format. Every mismatch names the tensor, the expected
shape (from the config) and the shape found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hrm.config import HRMConfig, load_official_config
from hrm.errors import CheckpointError, ConfigError
from hrm.io import atomic_path, sha256_file

FORMAT = "hrm-deploy-checkpoint"
FORMAT_VERSION = "1"
OFFICIAL_PREFIXES = ("_orig_mod.", "model.", "inner.")
_STEP_RE = re.compile(r"^step_\d+$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: config, fp32/fp16 numpy tensors with official names, task metadata."""

    config: HRMConfig
    tensors: dict[str, np.ndarray]
    task: dict[str, Any] | None
    source: Path
    sha256: str
    format: str  # "hrm" | "official"

    @property
    def num_parameters(self) -> int:
        return int(sum(v.size for k, v in self.tensors.items() if k not in ("H_init", "L_init")))


def expected_shapes(config: HRMConfig) -> dict[str, tuple[int, ...]]:
    """The one list of tensors a model has, with shapes derived from its config.

    HRM: ``H_level`` and ``L_level`` stacks of attention blocks. TRM: one ``L_level`` (the shared
    ``net``), whose blocks carry ``mlp_t`` (a SwiGLU over the S + P sequence axis) instead of
    ``self_attn`` when ``mlp_t`` is set."""
    c = config
    D, V, I = c.hidden_size, c.vocab_size, c.intermediate_size
    L, It = c.total_seq_len, c.mlp_t_intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "H_init": (D,), "L_init": (D,),
        "embed_tokens.embedding_weight": (V, D),
        "lm_head.weight": (V, D),
        "q_head.weight": (2, D), "q_head.bias": (2,),
    }
    if c.puzzle_emb_ndim > 0:
        shapes["puzzle_emb.weights"] = (c.num_puzzle_identifiers, c.puzzle_emb_ndim)
    if c.pos_encodings == "learned":
        shapes["embed_pos.embedding_weight"] = (c.total_seq_len, D)
    for level in c.stack_levels:
        for i in range(c.layers_of(level)):
            p = f"{level}.layers.{i}."
            if c.mlp_t:
                shapes[p + "mlp_t.gate_up_proj.weight"] = (2 * It, L)
                shapes[p + "mlp_t.down_proj.weight"] = (L, It)
            else:
                shapes[p + "self_attn.qkv_proj.weight"] = (3 * D, D)
                shapes[p + "self_attn.o_proj.weight"] = (D, D)
            shapes[p + "mlp.gate_up_proj.weight"] = (2 * I, D)
            shapes[p + "mlp.down_proj.weight"] = (D, I)
    return shapes


def check_tensors(config: HRMConfig, tensors: Mapping[str, Any], source: str | Path) -> None:
    """Raise CheckpointError on a missing, unexpected or mis-shaped tensor (all named at once)."""
    from hrm.config import family_from_tensor_names

    found_family = family_from_tensor_names(tensors)
    if found_family is not None and found_family != config.arch:
        raise CheckpointError(f"{source}: the tensors are a {found_family.upper()} model's "
                              f"({'H_level and L_level' if found_family == 'hrm' else 'L_level only, no H_level'}) "
                              f"but the config says arch {config.arch!r}")
    want = expected_shapes(config)
    problems = []
    for name in sorted(set(want) - set(tensors)):
        problems.append(f"missing tensor '{name}' (expected shape {list(want[name])})")
    for name in sorted(set(tensors) - set(want)):
        problems.append(f"unexpected tensor '{name}' (shape {list(tensors[name].shape)})")
    for name in sorted(set(want) & set(tensors)):
        found = tuple(tensors[name].shape)
        if found != want[name]:
            problems.append(f"tensor '{name}': expected shape {list(want[name])} from the config, found {list(found)}")
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not match its config: " + "; ".join(problems))


def strip_official_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """``_orig_mod.model.inner.H_init`` -> ``H_init`` (torch.compile + loss-head + ACT wrappers)."""
    out = {}
    for key, value in state.items():
        name = key
        changed = True
        while changed:
            changed = False
            for prefix in OFFICIAL_PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
        if name in out:
            raise CheckpointError(f"two tensors map to '{name}' after removing prefixes (one is '{key}')")
        out[name] = value
    return out


# ---- our format --------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, config: HRMConfig, tensors: Mapping[str, np.ndarray],
                    task: Mapping[str, Any] | None = None, dtype: str = "fp32") -> Path:
    """Write our format atomically: one safetensors file with config + task JSON in its header.

    ``dtype="fp16"`` halves the file (the shipped demo models); H_init/L_init stay fp32 because they
    are the official bf16 values, which fp16 would round.
    """
    from safetensors.numpy import save_file

    if dtype not in ("fp32", "fp16"):
        raise ValueError(f"dtype must be fp32 or fp16, got {dtype!r}")
    config.validate()
    check_tensors(config, tensors, path)
    store = np.float16 if dtype == "fp16" else np.float32
    arrays = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32 if k in ("H_init", "L_init") else store))
              for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
            "task": json.dumps(dict(task) if task is not None else None)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)
    return path


def _load_ours(path: Path) -> Checkpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{path}: safetensors file is not an hrm-deploy checkpoint "
                                      f"(header 'format' is {meta.get('format')!r}, expected {FORMAT!r})")
            if meta.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(f"{path}: checkpoint format_version {meta.get('format_version')!r} "
                                      f"is not supported (this hrm-deploy reads {FORMAT_VERSION!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        config = HRMConfig.from_dict(json.loads(meta["config"]), source=f"{path} [config]")
        task = json.loads(meta.get("task", "null"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: header config/task is missing or not JSON ({exc})") from None
    check_tensors(config, tensors, path)
    return Checkpoint(config, tensors, task, path, sha256_file(path), "hrm")


# ---- official format ---------------------------------------------------------------------------

def find_official_config(step_file: Path) -> Path:
    for cand in (step_file.parent / "all_config.yaml", step_file.parent.parent / "all_config.yaml"):
        if cand.is_file():
            return cand
    raise CheckpointError(f"{step_file}: official checkpoint needs all_config.yaml beside it; none found in "
                          f"{step_file.parent}")


def _torch_load(path: Path) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path}: reading official (pickled) checkpoints needs torch: "
                              "pip install 'hrm-deploy[export]'") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (mapping of tensors), found {type(state).__name__}")
    return dict(state)


def load_official_checkpoint(path: str | Path, config_path: str | Path | None = None,
                             dataset_json: str | Path | None = None, seq_len: int | None = None) -> Checkpoint:
    """Load an official ``step_N`` file: strip prefixes, bf16 -> fp32, sizes from dataset.json or shapes."""
    path = Path(path)
    state = strip_official_prefixes(_torch_load(path))
    tensors = {k: v.detach().float().cpu().numpy() for k, v in state.items()}
    cfg_path = Path(config_path) if config_path else find_official_config(path)
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if dataset_json is None and seq_len is None:
        import yaml
        try:
            data_path = (yaml.safe_load(cfg_path.read_text()) or {}).get("data_path")
        except yaml.YAMLError:
            data_path = None
        if data_path:
            cand = Path(data_path) / "test" / "dataset.json"
            cand = cand if cand.is_absolute() else cfg_path.parent / cand
            dataset_json = cand if cand.is_file() else None
    try:
        config = load_official_config(cfg_path, dataset_json=dataset_json, shapes=shapes,
                                      overrides={"seq_len": seq_len} if seq_len is not None else None)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    check_tensors(config, tensors, path)
    return Checkpoint(config, tensors, None, path, sha256_file(path), "official")


def is_official_checkpoint(path: Path) -> bool:
    return path.is_file() and (_STEP_RE.match(path.name) is not None or path.suffix in (".pt", ".pth", ".bin"))


def load_checkpoint(path: str | Path, **official_kwargs: Any) -> Checkpoint:
    """Load ours (``*.safetensors``) or an official ``step_N`` (a directory picks its latest step)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_dir():
        steps = sorted((p for p in path.iterdir() if _STEP_RE.match(p.name)), key=lambda p: int(p.name[5:]))
        if not steps:
            raise CheckpointError(f"{path}: directory holds no official step_N checkpoint")
        path = steps[-1]
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors":
        return _load_ours(path)
    if head[:2] == b"PK" or head[:1] == b"\x80" or is_official_checkpoint(path):
        return load_official_checkpoint(path, **official_kwargs)
    raise CheckpointError(f"{path}: unknown checkpoint format (expected our .safetensors file or an official "
                          "step_N state dict with all_config.yaml beside it)")


def convert_official(src: str | Path, dst: str | Path, task: Mapping[str, Any] | None = None,
                     dtype: str = "fp32", **official_kwargs: Any) -> Path:
    """Write our format from an official checkpoint (the ``hrm-ckpt convert`` command)."""
    ckpt = load_official_checkpoint(src, **official_kwargs) if Path(src).is_file() else load_checkpoint(src, **official_kwargs)
    return save_checkpoint(dst, ckpt.config, ckpt.tensors, task=task if task is not None else ckpt.task, dtype=dtype)
