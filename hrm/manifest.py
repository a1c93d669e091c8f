"""``manifest.json``: the one contract between export and runtime.

The runtime loads a deployment only through this file: model config, task, recurrence, and for each
precision variant the graphs (file, sha256, I/O names/shapes/dtypes) and optional TensorRT engines.
Graph kinds are open-ended keys (``embed``, ``l_step``, ``h_step``, ``heads`` today; a fused
``segment`` later): readers ignore kinds they do not know. Each variant records its graph flavour
(``ops``: ``standard`` | ``ort-contrib``); manifests written before the field existed are ``standard``,
so the format version stays 1. A graph kind may be an *alias* of another (TRM's ``h_step`` runs its
``l_step`` graph, :data:`GRAPH_ALIASES`): readers older than aliases refuse such a manifest (the entry
has no ``file``), which is right, they could not run it. Torch-free and numpy-free on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrm.config import HRMConfig
from hrm.errors import ManifestError
from hrm.halting import DEFAULT_HALT_RULE, HALT_RULES
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
#: Graph flavours, recorded per variant as ``ops``: ``standard`` graphs use only opset-17 primitives
#: (TensorRT parses them); ``ort-contrib`` graphs use ONNX Runtime's fused ``com.microsoft`` ops
#: (ONNX Runtime only, no TensorRT engines). A variant without the field is ``standard``.
STANDARD, ORT_CONTRIB = "standard", "ort-contrib"
GRAPH_OPS = (STANDARD, ORT_CONTRIB)
DEFAULT_OPS = STANDARD

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
    """All graphs (and engines) of one precision; ``ops`` is the flavour every graph of it uses."""

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

    # ---- access ------------------------------------------------------------------------------
    @property
    def recurrence(self) -> dict[str, Any]:
        c = self.config
        return {"H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "halt_max_steps": c.halt_max_steps,
                "default_halting": self.default_halting, "halt_rule": self.halt_rule}

    def variant(self, precision: str) -> Variant:
        if precision not in self.variants:
            raise ManifestError(f"{self.root / MANIFEST_NAME}: no '{precision}' variant; this deployment has "
                                f"{sorted(self.variants)} (re-export with --precision {precision})")
        return self.variants[precision]

    def path(self, relative: str) -> Path:
        return self.root / relative

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                "task": self.task, "recurrence": self.recurrence, "source": self.source,
                "exporter": self.exporter, "init": self.init,
                "variants": {k: v.to_dict() for k, v in self.variants.items()}}

    def save(self, root: str | Path | None = None) -> Path:
        """Write ``manifest.json`` atomically (the last file an export writes: its presence means done)."""
        root = Path(root) if root is not None else self.root
        path = root / MANIFEST_NAME
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def verify_files(self, precision: str | None = None, engines: bool = False) -> None:
        """Re-hash the files the runtime will read; a changed byte raises ManifestError naming the file."""
        files: list[tuple[str, str]] = [(e["file"], e["sha256"]) for e in self.init.values()]
        for name, var in self.variants.items():
            if precision is not None and name != precision:
                continue
            for g in var.files.values():
                files.append((g.file, g.sha256))
                if g.external_data:
                    files.append((g.external_data["file"], g.external_data["sha256"]))
            if engines:
                files.extend((e.file, e.sha256) for e in var.engines.values())
        for rel, want in files:
            path = self.path(rel)
            if not path.is_file():
                raise ManifestError(f"{path}: listed in {self.root / MANIFEST_NAME} but missing")
            got = sha256_file(path)
            if got != want:
                raise ManifestError(f"{path}: sha256 {got[:16]}... does not match the manifest's {want[:16]}... "
                                    "(file changed after export; re-export)")


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ManifestError(f"{where}: required key '{key}' is missing")
    return d[key]


def load_manifest(root: str | Path, verify: bool = True, precision: str | None = None) -> Manifest:
    """Read ``DIR/manifest.json``; with ``verify`` re-hash the files of ``precision`` (all if None)."""
    root = Path(root)
    path = root / MANIFEST_NAME if root.is_dir() else root
    root = path.parent
    if not path.is_file():
        raise ManifestError(f"{path}: not found; is {root} a deployment directory written by hrm-export?")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    where = str(path)
    if raw.get("format") != FORMAT:
        raise ManifestError(f"{where}: 'format' is {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{where}: format_version {raw.get('format_version')!r} is not supported "
                            f"(this hrm-deploy reads {FORMAT_VERSION})")
    from hrm.errors import ConfigError
    try:
        config = HRMConfig.from_dict(_require(raw, "config", where), source=f"{where} [config]")
    except ConfigError as exc:
        raise ManifestError(str(exc)) from None
    variants: dict[str, Variant] = {}
    for vname, v in _require(raw, "variants", where).items():
        vwhere = f"{where} [variants.{vname}]"
        if vname not in PRECISIONS:
            raise ManifestError(f"{vwhere}: unknown precision; expected one of {PRECISIONS}")
        graphs = {}
        for kind, g in _require(v, "graphs", vwhere).items():
            gwhere = f"{vwhere}.graphs.{kind}"
            if isinstance(g, dict) and "alias" in g:
                graphs[kind] = GraphEntry(kind, None, None, _require(g, "inputs", gwhere), _require(g, "outputs", gwhere),
                                          alias=_alias(kind, g["alias"], gwhere))
                continue
            graphs[kind] = GraphEntry(kind, _require(g, "file", gwhere), _require(g, "sha256", gwhere),
                                      _require(g, "inputs", gwhere), _require(g, "outputs", gwhere),
                                      g.get("external_data"))
        missing = [k for k in STEP_GRAPHS if k not in graphs]
        if missing:
            raise ManifestError(f"{vwhere}: graphs {missing} are missing (need {list(STEP_GRAPHS)})")
        for kind, g in graphs.items():
            if g.alias is not None and (g.alias.runs not in graphs or graphs[g.alias.runs].alias is not None):
                raise ManifestError(f"{vwhere}.graphs.{kind}: alias runs '{g.alias.runs}', which is not a graph "
                                    "with a file in this variant")
        engines = {}
        for kind, e in (v.get("engines") or {}).items():
            ewhere = f"{vwhere}.engines.{kind}"
            engines[kind] = EngineEntry(kind, _require(e, "file", ewhere), _require(e, "sha256", ewhere),
                                        _require(e, "flavour", ewhere), str(_require(e, "trt_version", ewhere)),
                                        str(e.get("device", "")), str(_require(e, "compute_capability", ewhere)),
                                        dict(e.get("options") or {}))
        aliased = sorted(set(engines) - set(k for k, g in graphs.items() if g.alias is None))
        if aliased:
            raise ManifestError(f"{vwhere}: lists engines for {aliased}, which have no graph file of their own")
        ops = v.get("ops", DEFAULT_OPS)
        if ops not in GRAPH_OPS:
            raise ManifestError(f"{vwhere}: 'ops' is {ops!r}; this hrm-deploy knows {list(GRAPH_OPS)} "
                                "(exported by a newer hrm-deploy? upgrade, or re-export)")
        if ops != STANDARD and engines:
            raise ManifestError(f"{vwhere}: lists TensorRT engines for {ops} graphs; engines are built from "
                                "standard graphs only (re-export)")
        variants[vname] = Variant(vname, graphs, engines, v.get("validation"), ops)
    if not variants:
        raise ManifestError(f"{where}: no variants")
    rec = raw.get("recurrence") or {}
    manifest = Manifest(config=config, task=raw.get("task"), variants=variants, init=_require(raw, "init", where),
                        source=raw.get("source") or {}, exporter=raw.get("exporter") or {},
                        default_halting=rec.get("default_halting", "act"), root=root,
                        halt_rule=_halt_rule(rec, where))
    for key in ("H_init", "L_init"):
        _require(manifest.init, key, f"{where} [init]")
    if verify:
        manifest.verify_files(precision)
    return manifest


def _alias(kind: str, raw: Any, where: str) -> GraphAlias:
    """The alias a manifest entry declares; only the bindings of :data:`GRAPH_ALIASES` are accepted."""
    known = GRAPH_ALIASES.get(kind)
    if known is None or raw != known.to_dict():
        want = known.to_dict() if known else "none (this kind cannot be an alias)"
        raise ManifestError(f"{where}: alias {raw!r} is not one this hrm-deploy knows; expected {want} "
                            "(exported by a newer hrm-deploy? upgrade, or re-export)")
    return known


def _halt_rule(recurrence: dict[str, Any], where: str) -> str:
    """``recurrence.halt_rule``; manifests written before it existed are HRM's rule."""
    rule = recurrence.get("halt_rule", DEFAULT_HALT_RULE)
    if rule not in HALT_RULES:
        raise ManifestError(f"{where} [recurrence]: 'halt_rule' is {rule!r}; this hrm-deploy knows {list(HALT_RULES)} "
                            "(exported by a newer hrm-deploy? upgrade, or re-export)")
    return rule
