"""The architecture config of the recursive reasoning models: one dataclass, official field names, torch-free.

Two families share it (``arch``): HRM (sapientinc/HRM: an H and an L transformer stack) and TRM
(SamsungSAILMontreal/TinyRecursiveModels: one network ``net`` = ``L_level`` updating both states, with
``mlp_t`` and ``no_ACT_continue``). Everything downstream (checkpoints, export, manifest, runtime) reads
the family and its recurrence from here, so no layer needs its own switch.

The official code splits the config between ``all_config.yaml`` (architecture) and the dataset's
``dataset.json`` (seq_len, vocab_size, num_puzzle_identifiers). Deployment needs all of them in one
place, so :class:`HRMConfig` carries both, and the loaders below fill the dataset fields from a
``dataset.json`` or, failing that, from the checkpoint's tensor shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hrm.errors import ConfigError

FORWARD_DTYPES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {
    "fp32": "float32", "float": "float32", "float32": "float32",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "half": "float16", "float16": "float16",
}
POS_ENCODINGS = ("rope", "learned", "none")
#: Architecture families (``HRMConfig.arch``); the first is the default of configs that do not say.
ARCHS = ("hrm", "trm")
#: Official ``arch.name`` values (all_config.yaml) -> family. Anything else is refused by name: the
#: TRM repo's ablations (``trm_singlez``, ``trm_hier6``, ``transformers_baseline``) compute other things.
OFFICIAL_ARCH_NAMES = {
    "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1": "hrm",
    "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1": "hrm",
    "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1": "trm",
}
#: TRM's official defaults (``TinyRecursiveReasoningModel_ACTV1Config``) where they differ from HRM's.
TRM_DEFAULTS = {"mlp_t": False, "puzzle_emb_len": 16, "no_ACT_continue": True, "H_layers": 0}


def normalize_dtype(name: str, field: str = "forward_dtype", source: str = "<config>") -> str:
    """Map 'fp16'/'bf16'/'fp32' and torch-style names onto one spelling ('float16', ...)."""
    key = str(name).lower().replace("torch.", "")
    if key not in _DTYPE_ALIASES:
        raise ConfigError(f"{source}: field '{field}' is {name!r}; expected one of fp32, bf16, fp16")
    return _DTYPE_ALIASES[key]


def _find_multiple(a: int, b: int) -> int:
    return -(a // -b) * b


@dataclass(frozen=True)
class HRMConfig:
    """Everything needed to rebuild an HRM or a TRM and drive its recurrence.

    Field names are the official ones so configs and papers read the same. ``arch`` is the family:
    ``"hrm"`` (H_level + L_level) or ``"trm"`` (one ``L_level`` network for both updates; ``H_layers`` is
    ignored, as upstream). ``puzzle_emb_len`` 0 or ``None`` means ceil(puzzle_emb_ndim / hidden_size)
    prefix positions (the official rule); TRM models set it (16 upstream). TRM only: ``mlp_t`` replaces
    attention by a SwiGLU across the sequence axis; ``no_ACT_continue`` makes ACT halt on ``q_halt > 0``
    (no Q-continue target in training).
    """

    seq_len: int
    vocab_size: int
    num_puzzle_identifiers: int = 1
    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    puzzle_emb_ndim: int = 512
    pos_encodings: str = "rope"
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    forward_dtype: str = "bfloat16"
    puzzle_emb_len: int | None = None
    arch: str = "hrm"
    mlp_t: bool = False
    no_ACT_continue: bool = False

    # ---- derived -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def intermediate_size(self) -> int:
        """SwiGLU width, exactly as the official ``_find_multiple(round(e * h * 2 / 3), 256)``."""
        return _find_multiple(round(self.expansion * self.hidden_size * 2 / 3), 256)

    @property
    def puzzle_len(self) -> int:
        """P: prefix positions holding the puzzle embedding (0 when there is none).

        ``puzzle_emb_len`` 0 and None both mean the official ceil(puzzle_emb_ndim / hidden_size)."""
        if self.puzzle_emb_len:
            return self.puzzle_emb_len
        return -(self.puzzle_emb_ndim // -self.hidden_size) if self.puzzle_emb_ndim > 0 else 0

    @property
    def mlp_t_intermediate_size(self) -> int:
        """Width of TRM's sequence-axis SwiGLU (``mlp_t``): the official rule applied to S + P."""
        return _find_multiple(round(self.expansion * self.total_seq_len * 2 / 3), 256)

    @property
    def stack_levels(self) -> tuple[str, ...]:
        """The transformer stacks in the checkpoint: HRM has ``H_level`` and ``L_level``, TRM only ``L_level``."""
        return ("H_level", "L_level") if self.arch == "hrm" else ("L_level",)

    def layers_of(self, level: str) -> int:
        return self.H_layers if level == "H_level" else self.L_layers

    @property
    def h_step_level(self) -> str:
        """The stack z_H's update runs: HRM's ``H_level``; TRM's one network ``L_level``."""
        return "H_level" if self.arch == "hrm" else "L_level"

    @property
    def halt_rule(self) -> str:
        """How ACT halts (:data:`hrm.halting.HALT_RULES`): HRM compares its two Q logits; TRM with
        ``no_ACT_continue`` (its official default) trains no q_continue and halts on ``q_halt > 0``."""
        from hrm.halting import DEFAULT_HALT_RULE

        return "q_halt > 0" if self.no_ACT_continue else DEFAULT_HALT_RULE

    @property
    def total_seq_len(self) -> int:
        """S + P: the sequence length the transformer stacks see."""
        return self.seq_len + self.puzzle_len

    # ---- validation / (de)serialisation ----------------------------------------------------
    def validate(self, source: str = "<config>") -> "HRMConfig":
        """Raise :class:`ConfigError` naming the first invalid field; return self for chaining."""
        if self.arch not in ARCHS:
            raise ConfigError(f"{source}: field 'arch' is {self.arch!r}; expected one of {ARCHS}")
        positive = ("seq_len", "vocab_size", "num_puzzle_identifiers", "H_cycles", "L_cycles",
                    "H_layers", "L_layers", "hidden_size", "num_heads", "halt_max_steps")
        if self.arch == "trm":  # TRM ignores H_layers (0 in its official config)
            positive = tuple(n for n in positive if n != "H_layers")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{source}: field '{name}' must be a positive integer, found {value!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"{source}: field 'hidden_size' ({self.hidden_size}) must be divisible by "
                              f"'num_heads' ({self.num_heads})")
        if self.head_dim % 2:
            raise ConfigError(f"{source}: head_dim = hidden_size / num_heads = {self.head_dim} must be even for RoPE")
        if not isinstance(self.puzzle_emb_ndim, int) or self.puzzle_emb_ndim < 0:
            raise ConfigError(f"{source}: field 'puzzle_emb_ndim' must be an integer >= 0, found {self.puzzle_emb_ndim!r}")
        if self.pos_encodings not in POS_ENCODINGS:
            raise ConfigError(f"{source}: field 'pos_encodings' is {self.pos_encodings!r}; expected one of {POS_ENCODINGS}")
        if self.forward_dtype not in FORWARD_DTYPES:
            raise ConfigError(f"{source}: field 'forward_dtype' is {self.forward_dtype!r}; expected one of {FORWARD_DTYPES}")
        if not (isinstance(self.expansion, (int, float)) and self.expansion > 0):
            raise ConfigError(f"{source}: field 'expansion' must be > 0, found {self.expansion!r}")
        if not (0.0 <= float(self.halt_exploration_prob) <= 1.0):
            raise ConfigError(f"{source}: field 'halt_exploration_prob' must be in [0, 1], found {self.halt_exploration_prob!r}")
        if not float(self.rms_norm_eps) > 0:
            raise ConfigError(f"{source}: field 'rms_norm_eps' must be > 0, found {self.rms_norm_eps!r}")
        if self.puzzle_emb_len is not None and (not isinstance(self.puzzle_emb_len, int) or self.puzzle_emb_len < 0):
            raise ConfigError(f"{source}: field 'puzzle_emb_len' must be null or an integer >= 0, found {self.puzzle_emb_len!r}")
        if self.puzzle_emb_ndim > self.puzzle_len * self.hidden_size:
            raise ConfigError(f"{source}: puzzle_emb_ndim {self.puzzle_emb_ndim} does not fit in puzzle_emb_len "
                              f"{self.puzzle_len} x hidden_size {self.hidden_size}")
        if self.puzzle_emb_ndim == 0 and self.puzzle_len > 0:
            raise ConfigError(f"{source}: field 'puzzle_emb_len' is {self.puzzle_emb_len} but puzzle_emb_ndim is 0 "
                              "(no puzzle embedding to place there); set puzzle_emb_len to 0")
        if self.arch == "trm" and self.H_layers < 0:
            raise ConfigError(f"{source}: field 'H_layers' must be >= 0 (TRM ignores it), found {self.H_layers!r}")
        for name in ("mlp_t", "no_ACT_continue"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: field '{name}' must be true or false, found {value!r}")
            if value and self.arch != "trm":
                raise ConfigError(f"{source}: field '{name}' is true but arch is {self.arch!r}; it is a TRM "
                                  "field (set arch: trm)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> "HRMConfig":
        return dataclasses.replace(self, **changes).validate()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> "HRMConfig":
        """Build from a mapping; unknown keys are ignored (official configs carry many), missing
        required keys and wrong types raise :class:`ConfigError` naming the field and source."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping of config fields, found {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if f.default is dataclasses.MISSING:
                    raise ConfigError(f"{source}: required field '{f.name}' is missing")
                continue
            value = data[f.name]
            kwargs[f.name] = _coerce(f.name, value, source)
        return cls(**kwargs).validate(source)


_INT_FIELDS = {"seq_len", "vocab_size", "num_puzzle_identifiers", "H_cycles", "L_cycles", "H_layers",
               "L_layers", "hidden_size", "num_heads", "puzzle_emb_ndim", "halt_max_steps"}
_FLOAT_FIELDS = {"expansion", "rope_theta", "rms_norm_eps", "halt_exploration_prob"}
_BOOL_FIELDS = {"mlp_t", "no_ACT_continue"}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Accept ints written as floats/strings (YAML does this) but nothing lossy."""
    try:
        if name in _INT_FIELDS:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if name == "puzzle_emb_len":
            return None if value is None else int(value)
        if name in _FLOAT_FIELDS:
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if name == "forward_dtype":
            return normalize_dtype(value, name, source)
        if name in ("pos_encodings", "arch"):
            return str(value)
        if name in _BOOL_FIELDS:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: field '{name}' has invalid value {value!r}") from None
    return value


# ---- official configs ------------------------------------------------------------------------

def _resolve_interpolation(arch: dict[str, Any], key: str, source: str) -> Any:
    """The official yaml writes ``puzzle_emb_ndim: ${.hidden_size}``; resolve that one idiom."""
    value = arch[key]
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        ref = value[2:-1].lstrip(".")
        if ref not in arch:
            raise ConfigError(f"{source}: field '{key}' refers to '{ref}', which is not in the arch block")
        return arch[ref]
    return value


def load_official_config(
    yaml_path: str | Path,
    dataset_json: str | Path | None = None,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HRMConfig:
    """Read an official ``all_config.yaml`` (the ``arch:`` block) into an :class:`HRMConfig`.

    seq_len / vocab_size / num_puzzle_identifiers are not in that file: they come from
    ``dataset_json`` when given (the official ``<data_path>/test/dataset.json``), else from the
    checkpoint's tensor ``shapes`` (embedding rows, puzzle_emb rows, RoPE-free seq from learned pos).
    ``overrides`` (e.g. ``{"seq_len": 81}``) win over everything else.
    """
    import yaml  # base dependency, imported here to keep `import hrm.config` instant

    yaml_path = Path(yaml_path)
    source = str(yaml_path)
    try:
        raw = yaml.safe_load(yaml_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("arch"), dict):
        raise ConfigError(f"{source}: expected an official all_config.yaml with an 'arch:' block")
    arch = dict(raw["arch"])
    for key in list(arch):
        arch[key] = _resolve_interpolation(arch, key, source)
    family = official_family(arch.get("name"), shapes, source)
    arch["arch"] = family
    if family == "trm":
        for key, value in TRM_DEFAULTS.items():
            arch.setdefault(key, value)
    arch.update(overrides or {})

    sizes: dict[str, Any] = {}
    if dataset_json is not None:
        ds_path = Path(dataset_json)
        try:
            meta = json.loads(ds_path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{ds_path}: file not found") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{ds_path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        for key in ("seq_len", "vocab_size", "num_puzzle_identifiers"):
            if key not in meta:
                raise ConfigError(f"{ds_path}: field '{key}' is missing")
            sizes[key] = meta[key]
    elif shapes is not None:
        sizes = sizes_from_shapes(shapes, arch, source)
    for key, value in sizes.items():
        arch.setdefault(key, value)
    return HRMConfig.from_dict(arch, source=source)


def official_family(name: Any, shapes: Mapping[str, tuple[int, ...]] | None, source: str) -> str:
    """The family of an official checkpoint: from ``arch.name`` when the yaml has one (unknown names are
    refused, naming the field and value), else from the tensor names (``H_level.*`` only exists in HRM)."""
    if name is not None:
        if name not in OFFICIAL_ARCH_NAMES:
            raise ConfigError(f"{source}: field 'arch.name' is {name!r}; supported: {sorted(OFFICIAL_ARCH_NAMES)} "
                              "(TRM variants such as trm_singlez / trm_hier6 compute a different recurrence)")
        return OFFICIAL_ARCH_NAMES[name]
    return family_from_tensor_names(shapes or {}) or ARCHS[0]


def family_from_tensor_names(names: Any) -> str | None:
    """``hrm`` when an ``H_level`` tensor is present, ``trm`` when only ``L_level`` ones are, else None."""
    names = list(names)
    if any(n.startswith("H_level.") for n in names):
        return "hrm"
    if any(n.startswith("L_level.") for n in names):
        return "trm"
    return None


def sizes_from_shapes(shapes: Mapping[str, tuple[int, ...]], arch: Mapping[str, Any], source: str) -> dict[str, int]:
    """Recover the dataset-derived sizes from weight shapes when no dataset.json is at hand.

    vocab_size: rows of ``embed_tokens.embedding_weight``; num_puzzle_identifiers: rows of
    ``puzzle_emb.weights``; seq_len: only recoverable with learned positions or TRM's ``mlp_t`` (rows - P).
    With RoPE the sequence length is not in the weights: the caller must pass a dataset.json or --seq-len.
    """
    out: dict[str, int] = {}
    if "embed_tokens.embedding_weight" in shapes:
        out["vocab_size"] = int(shapes["embed_tokens.embedding_weight"][0])
    if "puzzle_emb.weights" in shapes:
        out["num_puzzle_identifiers"] = int(shapes["puzzle_emb.weights"][0])
    positions = shapes.get("embed_pos.embedding_weight") or shapes.get("L_level.layers.0.mlp_t.down_proj.weight")
    if positions is not None:
        hidden = int(arch.get("hidden_size", 512))
        ndim = int(arch.get("puzzle_emb_ndim", hidden) or 0)
        plen = arch.get("puzzle_emb_len") or (-(ndim // -hidden) if ndim > 0 else 0)
        out["seq_len"] = int(positions[0]) - int(plen)
    if "seq_len" not in out and "seq_len" not in arch:
        raise ConfigError(
            f"{source}: seq_len is not in all_config.yaml, its data path names no known dataset and RoPE "
            "weights do not hold it; pass the dataset's dataset.json (--dataset-json), --seq-len or --task")
    return out
