"""Checkpoints: ours (one safetensors file) and the official ``step_N`` / ``checkpoint`` pickles.

Both load into one torch-free :class:`Checkpoint` whose tensors are numpy arrays keyed by the official
names, so export can run without torch on our format. Every mismatch names the tensor, the expected
shape (from the config) and the shape found. Which file a path, folder or ``hf://`` reference means is
:mod:`hrm.sources`' job; the sizes an official config lacks come from :mod:`hrm.tasks.infer`.
"""

from __future__ import annotations

import json
import math
import re
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hrm.config import HRMConfig, load_official_config
from hrm.errors import CheckpointError, ConfigError
from hrm.io import atomic_path, sha256_file
from hrm.sources import CONFIG_NAME, ResolvedCheckpoint, config_for, resolve_checkpoint

FORMAT = "hrm-deploy-checkpoint"
FORMAT_VERSION = "1"
OFFICIAL_PREFIXES = ("_orig_mod.", "model.", "inner.")


@dataclass
class Checkpoint:
    """A loaded checkpoint: config, fp32/fp16 numpy tensors with official names, task metadata."""

    config: HRMConfig
    tensors: dict[str, np.ndarray]
    task: dict[str, Any] | None
    source: Path
    sha256: str
    format: str  # "hrm" | "official"
    origin: ResolvedCheckpoint | None = None  # how the source was resolved (folder rule, hf://)
    inferred: tuple[str, ...] = ()  # what was inferred while loading ("task sudoku 9x9 inferred from ...")

    @property
    def num_parameters(self) -> int:
        return param_count(self.config)

    def notes(self) -> list[str]:
        """What was found and inferred, as sentences for the user (hrm-ckpt info, hrm-export)."""
        return (self.origin.describe() if self.origin else []) + list(self.inferred)

    def provenance(self) -> dict[str, Any]:
        """The manifest's ``source`` block: the file, its format and sha256, how it was found, what was inferred."""
        out: dict[str, Any] = {"path": str(Path(self.source).absolute()), "format": self.format, "sha256": self.sha256}
        if self.origin is not None:
            out.update(self.origin.to_dict())
        if self.inferred:
            out["inferred"] = list(self.inferred)
        return out


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


def param_count(config: HRMConfig) -> int:
    """Parameters of the model: the tensors of :func:`expected_shapes` except the initial states."""
    return sum(math.prod(shape) for name, shape in expected_shapes(config).items() if name not in ("H_init", "L_init"))


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


def check_task(task: Mapping[str, Any] | None, config: HRMConfig, source: str | Path) -> None:
    """Refuse task metadata that does not fit the model (``hrm.tasks.check_task_fits``), naming both values."""
    if task is None:
        return
    from hrm.tasks import check_task_fits

    try:
        check_task_fits(task, config, str(source))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None


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
    check_task(task, config, path)
    store = np.float16 if dtype == "fp16" else np.float32
    arrays = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32 if k in ("H_init", "L_init") else store))
              for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
            "task": json.dumps(dict(task) if task is not None else None)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)
    return path


def _load_ours(path: Path, given_task: Mapping[str, Any] | None = None) -> Checkpoint:
    from hrm.tasks import describe_task, task_mismatch
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
    inferred: tuple[str, ...] = ()
    if given_task is not None:
        bad = task_mismatch(given_task, config)
        if bad:
            raise CheckpointError(f"{path}: --task {describe_task(given_task)} does not fit this checkpoint "
                                  f"({', '.join(bad)})")
        inferred = (f"task {describe_task(given_task)} (--task)"
                    + (f", replacing the recorded {describe_task(task)}" if task else ""),)
        task = dict(given_task)
    else:
        check_task(task, config, path)
    return Checkpoint(config, tensors, task, path, sha256_file(path), "hrm", inferred=inferred)


# ---- official format ---------------------------------------------------------------------------

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
                             dataset_json: str | Path | None = None, seq_len: int | None = None,
                             task: Mapping[str, Any] | None = None) -> Checkpoint:
    """Load an official state dict: strip prefixes, bf16 -> fp32, sizes as :func:`hrm.tasks.infer.official_sizing`
    orders them (dataset.json, ``seq_len``, ``task`` or the task the config's data path names, shapes)."""
    import yaml

    from hrm.tasks.infer import official_sizing

    path = Path(path)
    cfg_path = Path(config_path) if config_path else config_for(path, lambda p: Path(p).is_file())
    if cfg_path is None:
        raise CheckpointError(f"{path}: official checkpoint needs {CONFIG_NAME} beside it; none found in "
                              f"{path.parent} or {path.parent.parent}")
    state = strip_official_prefixes(_torch_load(path))
    tensors = {k: v.detach().float().cpu().numpy() for k, v in state.items()}
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    try:
        raw = yaml.safe_load(Path(cfg_path).read_text())
    except (OSError, yaml.YAMLError):
        raw = None  # load_official_config below says what is wrong with the file
    try:
        sizing = official_sizing(Path(cfg_path), raw if isinstance(raw, dict) else {}, dataset_json=dataset_json,
                                 seq_len=seq_len, task=task)
        config = load_official_config(cfg_path, dataset_json=sizing.dataset_json, shapes=shapes,
                                      overrides=sizing.overrides)
        recorded, inferred = sizing.settle(config)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    check_tensors(config, tensors, path)
    return Checkpoint(config, tensors, recorded, path, sha256_file(path), "official", inferred=inferred)


def load_checkpoint(source: str | os.PathLike[str] | ResolvedCheckpoint, *, seq_len: int | None = None,
                    dataset_json: str | Path | None = None, task: Mapping[str, Any] | None = None) -> Checkpoint:
    """Load what ``source`` names (:func:`hrm.sources.resolve_checkpoint`: our ``.safetensors``, an official
    state dict, a folder as published, ``hf://owner/repo[@rev][/path]``). ``seq_len`` / ``dataset_json``
    size official checkpoints whose config lacks the sizes; ``task`` (metadata) replaces the recorded or
    inferred task. The weight file is checked against the sha256 its source promises (the Hub's)."""
    origin = resolve_checkpoint(source)
    if origin.format == "hrm":
        ckpt = _load_ours(origin.weights, task)
    else:
        ckpt = load_official_checkpoint(origin.weights, config_path=origin.config, dataset_json=dataset_json,
                                        seq_len=seq_len, task=task)
    if origin.sha256 and ckpt.sha256 != origin.sha256:
        raise CheckpointError(f"{origin.weights}: sha256 {ckpt.sha256[:16]}... differs from the {origin.sha256[:16]}... "
                              f"its source {origin.given} promises (corrupt download? delete it and fetch again)")
    ckpt.origin = origin
    return ckpt


def convert_official(src: str | Path, dst: str | Path, task: Mapping[str, Any] | None = None,
                     dtype: str = "fp32", **load_kwargs: Any) -> Path:
    """Write our format from any checkpoint source (the ``hrm-ckpt convert`` command); ``task`` replaces
    the recorded or inferred task."""
    ckpt = load_checkpoint(src, task=task, **load_kwargs)
    return save_checkpoint(dst, ckpt.config, ckpt.tensors, task=ckpt.task, dtype=dtype)
