"""``manifest.json``: the one contract between export and runtime.

The runtime loads a deployment only through this file: model config, task, recurrence, and for each
precision variant the graphs (file, sha256, I/O names/shapes/dtypes) and optional TensorRT engines.
Graph kinds are open-ended keys (the four step graphs ``embed``, ``l_step``, ``h_step``, ``heads``, and
the optional fused ``segment``): readers ignore kinds they do not know. How the step graphs compose into
a segment is :func:`segment_schedule`, the one definition the exporter's fused graph, its validation and
every backend follow. A graph kind may be an *alias* of another (TRM's ``h_step`` runs its ``l_step``
graph, :data:`GRAPH_ALIASES`): readers older than aliases refuse such a manifest (the entry has no
``file``), which is right, they could not run it. Which backend and device may run a variant is one
table here too (:func:`run_refusal`, applied by :meth:`Manifest.resolve`). Each variant records its graph
ops (``ops``: ``standard`` | ``ort-contrib``); manifests written before the field existed are
``standard``, so the format version stays 1. Torch-free; numpy only through the task check (hrm.tasks,
lazily).

What a reader can trust (checked by :func:`load_manifest`):

* every field has the type the schema says; a wrong one is a one-line :class:`ManifestError` naming
  the key (``[variants.fp16.graphs.embed.file]``);
* ``digest`` is the sha256 of the canonical JSON of everything else (:func:`digest_of`), so the
  config, recurrence counts, task, vocabulary, source and puzzle identifiers cannot be edited apart
  from the graphs: a changed value is refused (re-export; tools that rewrite a manifest on purpose
  call :func:`seal`);
* every file path (graphs, engines, initial states, puzzle identifiers) is relative and resolves
  inside the deployment directory (no absolute paths, no ``..``, no symlink leading out), and every
  file's sha256 matches. The ``source`` block is provenance, not a deployment file: the ``torch``
  backend reads ``source.path`` only after checking its sha256 against ``source.sha256``.

An exporter writes its files into a fresh version folder (``v<N>/``) and replaces ``manifest.json``
last, in one rename (:mod:`hrm.export.publish`): a reader that read a manifest finds exactly the files
it names. If verifying fails because a newer export replaced the manifest meanwhile, the load is
retried on the new one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Callable

from hrm.config import HRMConfig
from hrm.errors import ManifestError
from hrm.halting import DEFAULT_HALT_RULE, HALT_RULES, HALTING_MODES, HaltingPolicy
from hrm.io import sha256_file, write_text_atomic

FORMAT = "hrm-deploy-manifest"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
STEP_GRAPHS = ("embed", "l_step", "h_step", "heads")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: ``int8`` keeps an fp32 state and fp32 I/O: only the weight MatMuls of the stack graphs are quantized
#: (int8 weights, activations quantized per call; :mod:`hrm.export.quantize`), an ONNX Runtime CPU path.
STATE_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "float32"}
#: Variants whose weights are quantized: no PyTorch twin, no TensorRT engines.
QUANTIZED = ("int8",)
#: The variants whose state dtype is their compute dtype (the exporter's default set).
FLOAT_PRECISIONS = tuple(p for p in PRECISIONS if p not in QUANTIZED)
#: Graph ops, recorded per variant as ``ops``: ``standard`` graphs use only opset-17 primitives
#: (TensorRT parses them); ``ort-contrib`` graphs use ONNX Runtime's fused ``com.microsoft`` ops
#: (ONNX Runtime only, no TensorRT engines). A variant without the field is ``standard``.
STANDARD, ORT_CONTRIB = "standard", "ort-contrib"
GRAPH_OPS = (STANDARD, ORT_CONTRIB)
DEFAULT_OPS = STANDARD

#: The devices the runtime targets, and where each runtime backend runs (the PyTorch reference: any torch device).
DEVICES = ("cpu", "cuda")
BACKEND_DEVICES = {"ort": DEVICES, "trt": ("cuda",)}


class RefusedVariant(ManifestError, ValueError):
    """This backend / device may not run this variant (:func:`run_refusal` says why)."""


def run_refusal(precision: str, ops: str, backend: str, device: str) -> str | None:
    """Why ``backend`` on ``device`` may not run a variant of ``precision`` with ``ops`` graphs; None when it may.

    The one table of these rules: the runtime (:meth:`Manifest.resolve`, once per ``Session``), the bench
    planner and the exporter's ``--engine`` (TensorRT builds for ``trt`` on ``cuda``) all ask here."""
    if precision in QUANTIZED and (backend, device) != ("ort", "cpu"):
        return (f"the {precision} variant is ONNX Runtime's dynamic quantization (DynamicQuantizeLinear + "
                "MatMulInteger), an ort-on-CPU path only: built and measured for the CPU execution provider only "
                "(on a GPU fp16/bf16 is the faster path), no TensorRT engines (TensorRT's int8 needs Q/DQ and "
                "calibration), no PyTorch twin (its reference is fp32: hrm-parity DEPLOYMENT --precision "
                f"{precision} compares the two). Use --backend ort --device cpu, or fp16/bf16 elsewhere")
    devices = BACKEND_DEVICES.get(backend)
    if devices is not None and device not in devices:
        runtime = {"ort": "ONNX Runtime", "trt": "TensorRT"}[backend]
        return f"{runtime} runs on {' or '.join(d.upper() for d in devices)} only, not {device!r}"
    if backend == "trt" and ops != STANDARD:
        return (f"TensorRT engines are built from --ops standard graphs only; the {precision} variant has {ops} graphs "
                "(ONNX Runtime's com.microsoft ops; TensorRT-RTX 1.7.1's parser fails on their RotaryEmbedding): "
                "use --backend ort, or export --ops standard for TensorRT")
    return None

#: Marks an alias input fed with zeros (see :class:`GraphAlias`).
ZEROS = "zeros"

# Tensor names shared by the exporter and every backend.
IO_NAMES = {
    "embed": (("tokens", "puzzle_ids"), ("x",)),
    "l_step": (("z_L", "z_H", "x"), ("z_L_new",)),
    "h_step": (("z_H", "z_L"), ("z_H_new",)),
    "heads": (("z_H",), ("logits", "q_halt", "q_continue")),
    "segment": (("z_H", "z_L", "x"), ("z_H_new", "z_L_new", "logits", "q_halt", "q_continue")),
}


def segment_schedule(config: HRMConfig) -> tuple[str, ...]:
    """The step kinds of one segment, in order: N x (T ``l_step`` + ``h_step``), then ``heads``
    (N = ``H_cycles``, T = ``L_cycles``). A schedule of step kinds, not of weights: which network runs a
    step is the step's business (TRM runs this schedule with one shared network)."""
    return (("l_step",) * config.L_cycles + ("h_step",)) * config.H_cycles + ("heads",)


def run_segment(config: HRMConfig, l_step: Callable, h_step: Callable, heads: Callable,
                z_H: Any, z_L: Any, x: Any) -> tuple[Any, ...]:
    """:func:`segment_schedule` over values, with step functions taking their ``IO_NAMES`` inputs in
    order (``l_step(z_L, z_H, x) -> z_L``, ``h_step(z_H, z_L) -> z_H``, ``heads(z_H) -> (logits, q_halt,
    q_continue)``); returns the fused ``segment`` graph's outputs ``(z_H, z_L, logits, q_halt, q_continue)``.
    Values may be ONNX graph names, arrays or tensors: the exporter builds, and the parity runner and the
    benchmark's static torch segment run, the one schedule."""
    for kind in segment_schedule(config):
        if kind == "l_step":
            z_L = l_step(z_L, z_H, x)
        elif kind == "h_step":
            z_H = h_step(z_H, z_L)
        else:
            out = heads(z_H)
    return (z_H, z_L, *out)
@dataclass(frozen=True)
class GraphAlias:
    """A graph kind served by another kind's graph with its inputs rebound (no file of its own).

    TRM updates both states with one network: h_step(z_H, z_L) = net(z_H + z_L), and its l_step graph
    computes net(z_L' + (z_H' + x')). Run on z_L' = z_H, z_H' = z_L, x' = 0 it gives net(z_H + (z_L + 0))
    = net(z_H + z_L) bit for bit (adding +0 is exact; addition commutes), so one ONNX file, one ORT
    session and one TensorRT engine serve both updates and the ``net`` weights exist once.
    """

    runs: str  # the graph kind whose file serves this kind
    inputs: tuple[tuple[str, str], ...]  # (target input, this kind's input or ZEROS)
    outputs: tuple[tuple[str, str], ...]  # (target output, this kind's output)

    def feed(self, values: dict[str, Any], zeros: Any) -> list[Any]:
        """The target graph's inputs in ``IO_NAMES`` order from this kind's named ``values``."""
        bound = dict(self.inputs)
        return [zeros if bound[n] == ZEROS else values[bound[n]] for n in IO_NAMES[self.runs][0]]

    def rename(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """The target graph's named outputs under this kind's names."""
        return {mine: outputs[theirs] for theirs, mine in self.outputs}

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "inputs": dict(self.inputs), "outputs": dict(self.outputs)}


#: The aliases a manifest may use (one definition; readers refuse any other binding).
GRAPH_ALIASES = {
    "h_step": GraphAlias("l_step", (("z_L", "z_H"), ("z_H", "z_L"), ("x", ZEROS)), (("z_L_new", "z_H_new"),)),
}


@dataclass
class GraphEntry:
    """One graph kind of a variant: an ONNX file, or (``alias``) another kind's graph rebound."""

    kind: str
    file: str | None
    sha256: str | None
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    external_data: dict[str, str] | None = None
    alias: GraphAlias | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.alias is not None:
            return {"alias": self.alias.to_dict(), "inputs": self.inputs, "outputs": self.outputs}
        return {"file": self.file, "sha256": self.sha256, "external_data": self.external_data,
                "inputs": self.inputs, "outputs": self.outputs}


@dataclass
class EngineEntry:
    """A TensorRT engine built from one graph, with what it was built for (checked before use)."""

    kind: str
    file: str
    sha256: str
    flavour: str  # "tensorrt" | "tensorrt_rtx"
    trt_version: str
    device: str
    compute_capability: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "flavour": self.flavour, "trt_version": self.trt_version,
                "device": self.device, "compute_capability": self.compute_capability, "options": self.options}


@dataclass
class Variant:
    """All graphs (and engines) of one precision; ``ops`` is the op set every graph of it uses."""

    precision: str
    graphs: dict[str, GraphEntry]
    engines: dict[str, EngineEntry] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    ops: str = DEFAULT_OPS

    @property
    def state_dtype(self) -> str:
        return STATE_DTYPES[self.precision]

    @property
    def files(self) -> dict[str, GraphEntry]:
        """The graph kinds with a file of their own (what gets loaded, validated, built into engines)."""
        return {k: g for k, g in self.graphs.items() if g.alias is None}

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "state_dtype": self.state_dtype, "ops": self.ops,
                "graphs": {k: g.to_dict() for k, g in self.graphs.items()},
                "engines": {k: e.to_dict() for k, e in self.engines.items()},
                "validation": self.validation}


@dataclass
class Manifest:
    """In-memory manifest. ``root`` is the deployment directory the relative file paths are under."""

    config: HRMConfig
    task: dict[str, Any] | None
    variants: dict[str, Variant]
    init: dict[str, dict[str, str]]
    source: dict[str, Any] = field(default_factory=dict)
    exporter: dict[str, Any] = field(default_factory=dict)
    default_halting: str = "act"
    root: Path = Path(".")
    halt_rule: str = DEFAULT_HALT_RULE
    #: ``puzzle_identifiers`` block (``hrm.identifiers``): the names of the puzzle-embedding rows, or None
    identifiers: dict[str, Any] | None = None

    # ---- access ------------------------------------------------------------------------------
    @property
    def recurrence(self) -> dict[str, Any]:
        c = self.config
        return {"H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "halt_max_steps": c.halt_max_steps,
                "default_halting": self.default_halting, "halt_rule": self.halt_rule}

    def halting_policy(self, mode: str | None = None, max_segments: int | None = None) -> HaltingPolicy:
        """How this deployment's rows stop: ``mode`` (default ``default_halting``), the cap (default
        ``halt_max_steps``) and the recorded halt rule, validated once here."""
        return HaltingPolicy(mode or self.default_halting,
                             self.config.halt_max_steps if max_segments is None else int(max_segments), self.halt_rule)

    def resolve(self, precision: str, backend: str, device: str, *, fused: bool = False) -> Variant:
        """The variant ``backend`` on ``device`` will run (with the fused ``segment`` graph when ``fused``),
        or :class:`RefusedVariant` naming this manifest and why not (:func:`run_refusal`)."""
        var = self.variant(precision)
        why = run_refusal(precision, var.ops, backend, device)
        if why is None and fused and "segment" not in var.graphs:
            why = f"variant {precision} has no fused 'segment' graph; re-export with --segment or run without fused"
        if why is not None:
            raise RefusedVariant(f"{self.root / MANIFEST_NAME}: {why}")
        return var

    def variant(self, precision: str) -> Variant:
        if precision not in self.variants:
            raise ManifestError(f"{self.root / MANIFEST_NAME}: no '{precision}' variant; this deployment has "
                                f"{sorted(self.variants)} (re-export with --precision {precision})")
        return self.variants[precision]

    def path(self, relative: str) -> Path:
        """``relative`` under the deployment directory; refuses a path that would leave it."""
        return inside(self.root, relative, self.root / MANIFEST_NAME)

    def files(self, precision: str | None = None, engines: bool = True) -> list[tuple[str, str]]:
        """(relative path, sha256) of every file the manifest names (of ``precision`` only, if given)."""
        files: list[tuple[str, str]] = [(e["file"], e["sha256"]) for e in self.init.values()]
        if self.identifiers:
            files += [(e["file"], e["sha256"]) for e in (self.identifiers, self.identifiers.get("rows")) if e]
        for name, var in self.variants.items():
            if precision is not None and name != precision:
                continue
            for g in var.files.values():
                files.append((g.file, g.sha256))
                if g.external_data:
                    files.append((g.external_data["file"], g.external_data["sha256"]))
            if engines:
                files.extend((e.file, e.sha256) for e in var.engines.values())
        return files

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document, sealed with its ``digest``."""
        return seal({"format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                     "task": self.task, "recurrence": self.recurrence, "source": self.source,
                     "exporter": self.exporter, "init": self.init,
                     **({"puzzle_identifiers": self.identifiers} if self.identifiers else {}),
                     "variants": {k: v.to_dict() for k, v in self.variants.items()}})

    def save(self, root: str | Path | None = None) -> Path:
        """Write ``manifest.json`` atomically (the last file an export writes: its presence means done)."""
        root = Path(root) if root is not None else self.root
        path = root / MANIFEST_NAME
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def verify_files(self, precision: str | None = None, engines: bool = False) -> None:
        """Re-hash the files the runtime will read; a changed byte raises ManifestError naming the file."""
        for rel, want in self.files(precision, engines):
            path = self.path(rel)
            if not path.is_file():
                raise ManifestError(f"{path}: listed in {self.root / MANIFEST_NAME} but missing")
            got = sha256_file(path)
            if got != want:
                raise ManifestError(f"{path}: sha256 {got[:16]}... does not match the manifest's {want[:16]}... "
                                    "(file changed after export; re-export)")


DIGEST_KEY = "digest"


def digest_of(document: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON (sorted keys, no spaces) of everything but ``digest``."""
    body = {k: v for k, v in document.items() if k != DIGEST_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def seal(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its ``digest`` (re)computed: what :meth:`Manifest.save` writes. Only for tools
    that rewrite a manifest on purpose; an edit by hand is exactly what the digest is there to catch."""
    out = {k: v for k, v in document.items() if k != DIGEST_KEY}
    out[DIGEST_KEY] = digest_of(out)
    return out


def inside(root: Path, relative: Any, where: Any) -> Path:
    """``root / relative`` when ``relative`` is a relative path that stays inside ``root`` once
    symlinks are resolved; otherwise a ManifestError naming the path (a manifest must not make the
    runtime read, hash or run files outside its deployment directory)."""
    if not isinstance(relative, str) or not relative:
        raise ManifestError(f"{where}: file path {relative!r} is not a non-empty string")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise ManifestError(f"{where}: file path {relative!r} is absolute; a deployment names its files "
                            "relative to its directory")
    if ".." in posix.parts or ".." in windows.parts:
        raise ManifestError(f"{where}: file path {relative!r} contains '..'; a deployment's files stay "
                            "inside its directory")
    path = root / relative
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise ManifestError(f"{where}: file path {relative!r} leads outside the deployment directory "
                            f"{real_root} (through a symlink)")
    return path


_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


class _Reader:
    """Typed access to the raw JSON: each wrong value is one ManifestError naming its key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> ManifestError:
        return ManifestError(f"{self.path} [{key}]: {message}" if key else f"{self.path}: {message}")

    def get(self, obj: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...],
            required: bool = True, default: Any = None) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if required:
                raise self.error(where, f"required key '{key}' is missing")
            return default
        return self.check(obj[key], where, kind)

    def check(self, value: Any, where: str, kind: type | tuple[type, ...]) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            want = " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds)
            found = _JSON_TYPES.get(type(value), type(value).__name__)
            raise self.error(where, f"expected {want}, found {found}")
        return value

    def known(self, obj: dict[str, Any], key: str, path: str, known: tuple[str, ...], default: str) -> str:
        """A value from a closed list (a key absent from older manifests is read with its old default)."""
        value = self.get(obj, key, path, str, required=False, default=default)
        if value not in known:
            raise self.error(path, f"'{key}' is {value!r}; this hrm-deploy knows {list(known)} "
                                   "(exported by a newer hrm-deploy? upgrade, or re-export)")
        return value

    def sha(self, obj: dict[str, Any], key: str, path: str) -> str:
        value = self.get(obj, key, path, str)
        if not _HEX64.match(value):
            raise self.error(f"{path}.{key}", f"expected a sha256 (64 hex digits), found {value[:20]!r}")
        return value

    def file(self, obj: dict[str, Any], path: str, root: Path) -> tuple[str, str]:
        rel = self.get(obj, "file", path, str)
        inside(root, rel, f"{self.path} [{path}.file]")
        return rel, self.sha(obj, "sha256", path)

    def tensors(self, obj: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        out = self.get(obj, key, path, list)
        for i, t in enumerate(out):
            where = f"{path}.{key}[{i}]"
            self.check(t, where, dict)
            self.get(t, "name", where, str)
            self.get(t, "dtype", where, str)
            for j, d in enumerate(self.get(t, "shape", where, list)):
                self.check(d, f"{where}.shape[{j}]", (int, str))
        return out


def read_manifest_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_manifest(root: str | Path, verify: bool = True, precision: str | None = None) -> Manifest:
    """Read ``DIR/manifest.json`` (schema, digest, paths; see the module doc); with ``verify`` re-hash
    the files of ``precision`` (all if None). A verification that fails because a concurrent export
    replaced the manifest is retried on the new manifest."""
    root = Path(root)
    path = root / MANIFEST_NAME if root.is_dir() else root
    if not path.is_file():
        raise ManifestError(f"{path}: not found; is {path.parent} a deployment directory written by hrm-export?")
    for attempt in range(3):
        data = read_manifest_bytes(path)
        manifest = parse_manifest(data, path)
        if not verify:
            return manifest
        try:
            manifest.verify_files(precision)
            return manifest
        except ManifestError:
            if attempt == 2 or read_manifest_bytes(path) == data:
                raise  # the files really do not match this manifest
    raise AssertionError("unreachable")


def parse_manifest(data: bytes, path: Path) -> Manifest:
    """A Manifest from the bytes of ``path`` (its directory is the root the file paths are under)."""
    root = path.parent
    r = _Reader(path)
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ManifestError(f"{path}: JSON nested too deeply") from None
    r.check(raw, "", dict)
    if raw.get("format") != FORMAT:
        raise r.error("format", f"is {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise r.error("format_version", f"{raw.get('format_version')!r} is not supported "
                                        f"(this hrm-deploy reads {FORMAT_VERSION})")
    digest = r.get(raw, DIGEST_KEY, "", str, required=False)
    if digest is None:
        raise r.error(DIGEST_KEY, "missing: written by an older hrm-deploy or assembled by hand, so nothing "
                                  "binds its config to its graphs; re-export (hrm-export ... --force)")
    if digest != digest_of(raw):
        raise r.error(DIGEST_KEY, "the manifest's content does not match its digest: it was edited after export "
                                  "(config, recurrence, task, files?); re-export instead of editing it")
    from hrm.errors import ConfigError
    try:
        config = HRMConfig.from_dict(r.get(raw, "config", "", dict), source=f"{path} [config]")
    except ConfigError as exc:
        raise ManifestError(str(exc)) from None
    task = r.get(raw, "task", "", (dict, type(None)), required=False)
    if task is not None:
        from hrm.tasks import check_task_fits
        try:
            check_task_fits(task, config, f"{path} [task]")
        except ConfigError as exc:
            raise ManifestError(str(exc)) from None
    rec = r.get(raw, "recurrence", "", dict, required=False, default={})
    for key in ("H_cycles", "L_cycles", "halt_max_steps"):
        if key in rec and rec[key] != getattr(config, key):
            raise r.error(f"recurrence.{key}", f"is {rec[key]!r} but config.{key} is {getattr(config, key)!r}")
    default_halting = r.get(rec, "default_halting", "recurrence", str, required=False, default="act")
    if default_halting not in HALTING_MODES:
        raise r.error("recurrence.default_halting", f"is {default_halting!r}; expected one of {list(HALTING_MODES)}")
    variants: dict[str, Variant] = {}
    for vname, v in r.get(raw, "variants", "", dict).items():
        vpath = f"variants.{vname}"
        r.check(v, vpath, dict)
        if vname not in PRECISIONS:
            raise r.error(vpath, f"unknown precision; expected one of {PRECISIONS}")
        if v.get("precision", vname) != vname:
            raise r.error(f"{vpath}.precision", f"is {v.get('precision')!r}, but the variant is {vname!r}")
        graphs = {}
        for kind, g in r.get(v, "graphs", vpath, dict).items():
            gpath = f"{vpath}.graphs.{kind}"
            r.check(g, gpath, dict)
            if "alias" in g:
                graphs[kind] = GraphEntry(kind, None, None, r.tensors(g, "inputs", gpath),
                                          r.tensors(g, "outputs", gpath), alias=_alias(r, kind, g["alias"], gpath))
                continue
            rel, sha = r.file(g, gpath, root)
            ext = r.get(g, "external_data", gpath, (dict, type(None)), required=False)
            if ext is not None:
                r.file(ext, f"{gpath}.external_data", root)
            graphs[kind] = GraphEntry(kind, rel, sha, r.tensors(g, "inputs", gpath), r.tensors(g, "outputs", gpath),
                                      ext)
        missing = [k for k in STEP_GRAPHS if k not in graphs]
        if missing:
            raise r.error(f"{vpath}.graphs", f"graphs {missing} are missing (need {list(STEP_GRAPHS)})")
        for kind, g in graphs.items():
            if g.alias is not None and (g.alias.runs not in graphs or graphs[g.alias.runs].alias is not None):
                raise r.error(f"{vpath}.graphs.{kind}.alias", f"runs '{g.alias.runs}', which is not a graph "
                                                              "with a file in this variant")
        engines = {}
        for kind, e in (r.get(v, "engines", vpath, (dict, type(None)), required=False) or {}).items():
            epath = f"{vpath}.engines.{kind}"
            r.check(e, epath, dict)
            if kind not in graphs or graphs[kind].alias is not None:
                raise r.error(epath, f"an engine for '{kind}', which has no graph file of its own in this variant")
            rel, sha = r.file(e, epath, root)
            engines[kind] = EngineEntry(kind, rel, sha, r.get(e, "flavour", epath, str),
                                        str(r.get(e, "trt_version", epath, (str, int, float))),
                                        str(e.get("device", "")),
                                        str(r.get(e, "compute_capability", epath, (str, int, float))),
                                        dict(r.get(e, "options", epath, (dict, type(None)), required=False) or {}))
        ops = r.known(v, "ops", vpath, GRAPH_OPS, DEFAULT_OPS)
        if ops != STANDARD and engines:
            raise r.error(vpath, f"lists TensorRT engines for {ops} graphs; engines are built from standard "
                                 "graphs only (re-export)")
        variants[vname] = Variant(vname, graphs, engines, r.get(v, "validation", vpath, (dict, type(None)),
                                                                required=False), ops)
    if not variants:
        raise r.error("variants", "no variants")
    init = r.get(raw, "init", "", dict)
    for key in ("H_init", "L_init"):
        r.file(r.get(init, key, "init", dict), f"init.{key}", root)
    return Manifest(config=config, task=task, variants=variants, init=init, source=_source(r, raw),
                    exporter=r.get(raw, "exporter", "", (dict, type(None)), required=False) or {},
                    default_halting=default_halting, root=root,
                    halt_rule=r.known(rec, "halt_rule", "recurrence", HALT_RULES, DEFAULT_HALT_RULE),
                    identifiers=_identifiers(r, raw, root))


def _identifiers(r: _Reader, raw: dict[str, Any], root: Path) -> dict[str, Any] | None:
    """``puzzle_identifiers`` (optional): the file naming each puzzle-embedding row, and for a pruned
    table the file mapping each row to the source checkpoint's row (see ``hrm.identifiers``); both are
    deployment files, inside the directory and hashed like the graphs."""
    entry = r.get(raw, "puzzle_identifiers", "", (dict, type(None)), required=False)
    if entry is None:
        return None
    r.file(entry, "puzzle_identifiers", root)
    r.get(entry, "count", "puzzle_identifiers", int, required=False)
    rows = r.get(entry, "rows", "puzzle_identifiers", (dict, type(None)), required=False)
    if rows is not None:
        r.file(rows, "puzzle_identifiers.rows", root)
    return entry


def _source(r: _Reader, raw: dict[str, Any]) -> dict[str, Any]:
    """``source``: provenance, not a deployment file. The ``torch`` backend reads the checkpoint at
    ``path`` (outside the deployment on purpose) only when its sha256 matches ``sha256``."""
    source = r.get(raw, "source", "", (dict, type(None)), required=False) or {}
    for key in ("path", "format", "given", "found"):
        r.get(source, key, "source", str, required=False)
    if source.get("sha256") is not None:
        r.sha(source, "sha256", "source")
    return source


def _alias(r: _Reader, kind: str, raw: Any, where: str) -> GraphAlias:
    """The alias a manifest entry declares; only the bindings of :data:`GRAPH_ALIASES` are accepted."""
    known = GRAPH_ALIASES.get(kind)
    if known is None or raw != known.to_dict():
        want = known.to_dict() if known else "none (this kind cannot be an alias)"
        raise r.error(f"{where}.alias", f"{raw!r} is not an alias this hrm-deploy knows; expected {want} "
                                        "(exported by a newer hrm-deploy? upgrade, or re-export)")
    return known
