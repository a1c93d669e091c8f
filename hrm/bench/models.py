"""What to benchmark: random-weight HRMs of the official shapes, and deployments prepared from a path.

``hrm-bench`` measures one deployment directory. It can also start from a checkpoint (exported once
to a cache directory) or from nothing at all: ``--random-full sudoku|maze`` builds the official
27M-parameter architecture with random weights (hidden 512, 4+4 layers, N=T=2, 16 segments; seq
81(+1) for Sudoku, 900(+1) for Maze/ARC-shaped inputs), ``--random-tiny`` the tests' tiny model.
Random weights are fine for speed: every segment costs the same whatever the weights are, and the Q
head is randomised (not the "never halt" init) so ACT rows halt at different segments.

Exports are cached by content (checkpoint sha256 + precisions + exporter version + graph flavour)
under ``$HRM_BENCH_CACHE`` or ``~/.cache/hrm-deploy/bench``, so a second run starts measuring at once.
A checkpoint is exported once per graph flavour asked for (``standard``, ``ort-contrib``): the same
weights, so the two flavours are measured side by side; TensorRT engines only for ``standard``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import hrm
from hrm.config import HRMConfig
from hrm.errors import HRMError
from hrm.manifest import GRAPH_OPS, STANDARD

#: The official HRM architecture (paper, Sudoku-Extreme / Maze-Hard / ARC runs): 27M parameters.
FULL_ARCH = dict(H_cycles=2, L_cycles=2, H_layers=4, L_layers=4, hidden_size=512, num_heads=8, expansion=4.0,
                 puzzle_emb_ndim=512, halt_max_steps=16, forward_dtype="bfloat16")

#: shape name -> (task name, task params); seq_len / vocab come from the task.
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "sudoku": ("sudoku", {}),  # 9x9: seq 81 (+1 puzzle position), vocab 11
    "maze": ("maze", {"size": 30}),  # 30x30: seq 900 (+1), vocab 6 (same sequence length as ARC)
}

#: The tests' tiny model (tests/helpers.py TINY): 4x4 Sudoku, hidden 64, 2+2 layers, 4 segments.
TINY = dict(seq_len=16, vocab_size=6, num_puzzle_identifiers=3, H_cycles=2, L_cycles=2, H_layers=2, L_layers=2,
            hidden_size=64, num_heads=4, expansion=2.0, puzzle_emb_ndim=64, halt_max_steps=4,
            forward_dtype="float32")


class BenchError(HRMError):
    """A benchmark cannot start (bad path, nothing to export with, ...): one line for the user."""


def random_config(shape: str) -> tuple[HRMConfig, dict[str, Any]]:
    """(config, task metadata) of a random model: ``sudoku`` / ``maze`` (full size) or ``tiny``."""
    from hrm.tasks import get_task

    if shape == "tiny":
        return HRMConfig(**TINY).validate(), get_task("sudoku", size=4).metadata()
    if shape not in SHAPES:
        raise BenchError(f"unknown random model shape {shape!r}; expected one of {sorted(SHAPES)} or 'tiny'")
    name, params = SHAPES[shape]
    task = get_task(name, **params)
    config = HRMConfig(seq_len=task.seq_len, vocab_size=task.vocab_size, num_puzzle_identifiers=1, **FULL_ARCH)
    return config.validate(), task.metadata()


def random_tensors(config: HRMConfig, seed: int = 0, q_scale: float = 0.5) -> dict[str, np.ndarray]:
    """Official-named random weights (the model's own init), with a random Q head and puzzle embedding
    so ACT halts rows at different segments and puzzle ids matter (same recipe as tests/helpers.py)."""
    import torch

    from hrm.model import build_model

    torch.manual_seed(seed)
    t = build_model(config).numpy_tensors()
    rng = np.random.default_rng(seed)
    t["q_head.weight"] = (rng.standard_normal(t["q_head.weight"].shape) * q_scale
                          / np.sqrt(config.hidden_size)).astype(np.float32)
    t["q_head.bias"] = np.array([0.0, 0.1], dtype=np.float32)
    if "puzzle_emb.weights" in t:
        t["puzzle_emb.weights"] = (rng.standard_normal(t["puzzle_emb.weights"].shape) * 0.1).astype(np.float32)
    return t


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("HRM_BENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hrm-deploy" / "bench"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _complete(deploy: Path, precisions: Sequence[str]) -> bool:
    """A cached deployment is usable when its manifest lists every wanted precision."""
    man = deploy / "manifest.json"
    if not man.is_file():
        return False
    try:
        variants = json.loads(man.read_text()).get("variants", {})
    except (OSError, ValueError):
        return False
    return all(p in variants for p in precisions)


def export_cached(checkpoint: Path, precisions: Sequence[str], cache_dir: str | Path | None = None,
                  segment: bool = True, engine: Any = None, log=None, ops: str = STANDARD) -> Path:
    """Export ``checkpoint`` (ours or official) once into the cache and return the deployment dir.

    ``ops``: the graph flavour; ``engine`` must be None for ``ort-contrib`` (the exporter refuses)."""
    from hrm.checkpoint import load_checkpoint
    from hrm.export import export_deployment

    ckpt = load_checkpoint(checkpoint)
    parts: list[Any] = [ckpt.sha256, sorted(precisions), segment, hrm.__version__,
                        None if engine is None else engine.record()]
    if ops != STANDARD:  # (standard keys unchanged: existing caches stay valid)
        parts.append(ops)
    key = _key(*parts)
    out = cache_root(cache_dir) / f"{Path(checkpoint).stem}-{key}"
    if _complete(out, precisions):
        return out
    if log:
        log(f"exporting {checkpoint} ({', '.join(precisions)}{', segment graph' if segment else ''}"
            f"{'' if ops == STANDARD else ', ops ' + ops}) to {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    export_deployment(ckpt, out, precisions=list(precisions), validate=False, segment=segment, force=True,
                      engine=engine, ops=ops)
    return out


def export_flavours(checkpoint: Path, precisions: Sequence[str], ops: Sequence[str],
                    cache_dir: str | Path | None = None, engine: Any = None, log=None) -> tuple[Path, dict[str, Path]]:
    """Export ``checkpoint`` once per graph flavour in ``ops`` (engines with the standard one only).

    Returns (the main deployment: standard when asked for, else the first flavour; {other flavour: dir})."""
    flavours = [o for o in GRAPH_OPS if o in ops] or [STANDARD]
    dirs = {o: export_cached(checkpoint, precisions, cache_dir, engine=engine if o == STANDARD else None, log=log,
                             ops=o) for o in flavours}
    main = flavours[0]
    return dirs[main], {o: d for o, d in dirs.items() if o != main}


def random_checkpoint(shape: str, cache_dir: str | Path | None = None, seed: int = 0, log=None) -> Path:
    """Build (or reuse) the random ``shape`` model's checkpoint in the cache; returns its path."""
    from hrm.checkpoint import save_checkpoint

    config, task = random_config(shape)
    base = cache_root(cache_dir) / f"random-{shape}-seed{seed}-{_key(config.to_dict(), hrm.__version__)}"
    ckpt = base / "random.safetensors"
    if not ckpt.is_file():
        if log:
            log(f"building random {shape} model ({_params(config) / 1e6:.1f}M parameters, seed {seed}) in {base}")
        base.mkdir(parents=True, exist_ok=True)
        save_checkpoint(ckpt, config, random_tensors(config, seed=seed), task=task)
    return ckpt


def random_deployment(shape: str, precisions: Sequence[str], cache_dir: str | Path | None = None, seed: int = 0,
                      engine: Any = None, log=None, ops: str = STANDARD) -> Path:
    """Build (or reuse) the random ``shape`` model's checkpoint and its exported deployment (flavour ``ops``)."""
    ckpt = random_checkpoint(shape, cache_dir, seed, log)
    return export_cached(ckpt, precisions, ckpt.parent, engine=engine, log=log, ops=ops)


def _params(config: HRMConfig) -> int:
    from hrm.bench.floor import param_count

    return param_count(config)


def resolve_path(path: Path, precisions: Sequence[str], cache_dir: str | Path | None = None, engine: Any = None,
                 log=None) -> tuple[Path, str]:
    """A deployment directory (or its manifest.json) as is; a checkpoint is exported to the cache first
    (standard graphs). Returns (deployment dir, how it was obtained)."""
    main, how, _ = resolve_flavours(path, precisions, (STANDARD,), cache_dir, engine, log)
    return main, how


def resolve_flavours(path: Path, precisions: Sequence[str], ops: Sequence[str], cache_dir: str | Path | None = None,
                     engine: Any = None, log=None) -> tuple[Path, str, dict[str, Path]]:
    """:func:`resolve_path`, exporting a checkpoint once per graph flavour in ``ops`` (a deployment
    directory is taken as it is). Returns (deployment dir, how it was obtained, {other flavour: dir})."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path}: no such file or directory (expected a deployment directory or a checkpoint)")
    if path.is_file() and path.name == "manifest.json":
        return path.parent, "deployment", {}
    if path.is_dir() and (path / "manifest.json").is_file():
        return path, "deployment", {}
    is_ckpt = path.suffix == ".safetensors" or path.name.startswith("step_") or (
        path.is_dir() and (any(path.glob("step_*")) or (path / "all_config.yaml").exists()))
    if not is_ckpt:
        raise BenchError(f"{path}: neither a deployment directory (no manifest.json) nor a checkpoint "
                         "(.safetensors or an official step_N)")
    main, others = export_flavours(path, precisions, ops, cache_dir, engine=engine, log=log)
    return main, "checkpoint", others


def clear_cache(cache_dir: str | Path | None = None) -> None:
    shutil.rmtree(cache_root(cache_dir), ignore_errors=True)
