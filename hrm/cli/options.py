"""The one option group of every command that runs a model (``hrm-run``, ``-eval``, ``-parity``, ``-bench``,
``-demo``, ``-doctor``).

Shaped like Polygraphy's argument groups: the flags are declared once here, a command picks the parts it
needs with :func:`runtime_options`, and receives one parsed, validated :class:`RuntimeArgs` (``runtime=``)
instead of a dozen loose keywords. So ``--backend``, ``--device``, ``--precision``, ``--halting``,
``--max-segments``, ``--batch`` and the backend options (``--threads``, ``--spin``, ``--fused``,
``--cuda-graph``, ``--checkpoint``) mean the same in every command; lists (``--precision fp32,fp16``,
``--halting fixed,act``) go through the one :func:`parse_list`; a backend option the chosen backend lacks
is refused by :func:`hrm.runtime.backends.options.options_for` (one line, exit 2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import click

from hrm.cli.common import handle_errors
from hrm.errors import HRMError
from hrm.halting import HALTING_MODES
from hrm.manifest import DEVICES, PRECISIONS
from hrm.runtime.backends import BACKENDS


class OptionError(HRMError):
    """A command-line value is unusable: one line naming the flag, exit code 2."""


def parse_list(value: str, allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    """``"fp32, fp16,fp32"`` -> ``("fp32", "fp16")``: comma-separated, each in ``allowed``, duplicates dropped."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise OptionError(f"{flag} {value!r}: expected a comma-separated list of {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class RuntimeArgs:
    """What the group parsed. ``haltings`` empty: the manifest's ``default_halting``; ``option_values``: the
    backend options given on the command line (absent when not given, so each backend's defaults hold)."""

    backend: str | None = None
    devices: tuple[str, ...] = ("cpu",)
    precisions: tuple[str, ...] = ("fp32",)
    haltings: tuple[str, ...] = ()
    max_segments: int | None = None
    batch: int | None = None
    option_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> str:
        return self.devices[0]

    @property
    def precision(self) -> str:
        return self.precisions[0]

    @property
    def halting(self) -> str | None:
        return self.haltings[0] if self.haltings else None

    def options(self, backend: str | None = None, skip: Sequence[str] = ()) -> Any:
        """The backend's options object from the flags given (``skip``: flags the command uses itself)."""
        from hrm.runtime.backends.options import OptionsError, options_for

        values = {k: v for k, v in self.option_values.items() if k not in skip}
        try:
            return options_for(backend or self.backend, **values)
        except OptionsError as exc:  # name the flag, not the field
            flag = f"--{exc.option.replace('_', '-')}: " if exc.option else ""
            raise OptionError(f"{flag}{exc}") from None

    def spec(self, deployment: Any) -> Any:
        """These choices as a :class:`hrm.serve.spec.SessionSpec` (what a Ray replica or actor opens its
        Session from; the ``serve`` extra's doors: ``hrm-serve``, ``hrm-eval --ray``)."""
        from hrm.serve.spec import SessionSpec

        return SessionSpec(str(deployment), self.backend, self.device, self.precision, self.batch or 1, self.halting,
                           self.max_segments, self.options())

    def session(self, deployment: Any, *, precision: str | None = None, batch: int | None = None) -> Any:
        """A ``Session`` on ``deployment`` with these choices (``precision`` / ``batch`` override)."""
        from hrm.runtime import Session

        return Session(deployment, backend=self.backend, device=self.device, precision=precision or self.precision,
                       batch=batch or self.batch or 1, halting=self.halting, max_segments=self.max_segments,
                       options=self.options())


#: backend option flags: name -> click option (declared once; commands pick a subset)
BACKEND_FLAGS: dict[str, Callable] = {
    "threads": click.option("--threads", type=click.IntRange(min=1), default=None,
                            help="CPU threads: ONNX Runtime's intra-op pool (CPU only; hrm-bench pins torch's too) "
                                 "[default: ORT's, one per core]"),
    "spin": click.option("--spin/--no-spin", default=None,
                         help="--backend ort: let idle ORT threads spin [default: only with --fused or on cuda, where "
                              "one session does the work; the step graphs' four thread pools would fight for the "
                              "cores]"),
    "fused": click.option("--fused/--no-fused", default=None,
                          help="--backend ort/trt: run each segment as the one fused 'segment' graph (export with "
                               "--segment); full size on a 2-core CPU: 0.59x PyTorch eager per solve vs 0.66x for the "
                               "step graphs (benchmarks/README.md)"),
    "cuda_graph": click.option("--cuda-graph/--no-cuda-graph", default=None,
                               help="--device cuda: ort: ORT CUDA graphs on the step graphs [default: off]; trt: one "
                                    "CUDA graph per segment [default: on]"),
    # a str, not click.Path: click.Path would turn hf://owner/repo into hf:/owner/repo
    "checkpoint": click.option("--checkpoint", default=None, metavar="SOURCE",
                               help="the PyTorch weights (--backend torch; hrm-parity's reference; hrm-bench's torch "
                                    "rows): any checkpoint source hrm-export takes, hf:// included [default: the "
                                    "manifest's source checkpoint, sha-checked]"),
}


#: the group's own flags a command may leave out (:func:`runtime_options` ``omit``): it runs every backend or
#: device itself (hrm-bench, hrm-doctor), or its halting is fixed by what it proves (hrm-doctor)
OMITTABLE = ("backend", "device", "halting")


def runtime_options(*, precisions: bool = False, haltings: bool = False, devices: bool = False,
                    omit: Sequence[str] = (), batch: int | None = None, default_precisions: str | None = "fp32",
                    flags: Sequence[str] = tuple(BACKEND_FLAGS)) -> Callable:
    """Add the group's flags to a click command; the command gets ``runtime: RuntimeArgs``.

    ``precisions`` / ``haltings``: a comma-separated list instead of one value; ``devices``: ``--device``
    may repeat; ``omit``: flags of :data:`OMITTABLE` the command does not offer; ``batch``: offer ``--batch``
    with that default; ``flags``: which backend option flags (:data:`BACKEND_FLAGS`)."""
    if unknown := set(omit) - set(OMITTABLE):
        raise ValueError(f"omit: {sorted(unknown)} not among {OMITTABLE}")
    many = "comma-separated, several" if precisions else "one"
    group = {  # the names of the click parameters are the keys _parse reads
        "backend": click.option("--backend", type=click.Choice(list(BACKENDS)), default="ort", show_default=True),
        "device": click.option("--device", "devices", type=click.Choice(DEVICES), multiple=devices,
                               default=None if devices else "cpu", show_default=not devices,
                               help="(repeat for several)  [default: cpu]" if devices else None),
        "precision": click.option("--precision", "--precisions", "precisions", default=default_precisions,
                                  show_default=default_precisions is not None,
                                  help=f"variant(s), {many}: {', '.join(PRECISIONS)}"),
        "halting": click.option("--halting", default=",".join(HALTING_MODES) if haltings else None,
                                show_default=haltings,
                                help=f"halting mode(s), {'comma-separated, each run' if haltings else 'one'}: act "
                                     "(stop a puzzle when the model's halt rule fires: q_halt > q_continue for HRM), "
                                     "fixed (every puzzle runs --max-segments)"
                                     + ("" if haltings else " [default: the manifest's default_halting]")),
        "max_segments": click.option("--max-segments", type=click.IntRange(min=1), default=None,
                                     help="segment cap [default: the trained halt_max_steps; may exceed it]")}
    chosen = {name: option for name, option in group.items() if name not in omit}
    if batch is not None:
        chosen["batch"] = click.option("--batch", type=click.IntRange(min=1), default=batch, show_default=True,
                                       help="puzzles per batch")
    chosen.update((name, BACKEND_FLAGS[name]) for name in flags)
    decorators = list(chosen.values())
    # the click parameter names this group owns (only these: a command's own --checkpoint stays its own)
    params = [{"device": "devices", "precision": "precisions"}.get(name, name) for name in chosen]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            raw = {k: kwargs.pop(k) for k in params if k in kwargs}
            return command(*args, runtime=_parse(raw, precisions, haltings), **kwargs)

        wrapped = handle_errors(wrapper)  # a bad list is one line too
        for option in reversed(decorators):
            wrapped = option(wrapped)
        return wrapped

    return decorate


def _parse(raw: dict[str, Any], many_precisions: bool, many_haltings: bool) -> RuntimeArgs:
    precisions = parse_list(raw["precisions"], PRECISIONS, "--precision") if raw.get("precisions") else ()
    haltings = parse_list(raw["halting"], HALTING_MODES, "--halting") if raw.get("halting") else ()
    for flag, values, many in (("--precision", precisions, many_precisions), ("--halting", haltings, many_haltings)):
        if len(values) > 1 and not many:
            raise OptionError(f"{flag} {','.join(values)}: this command takes one")
    devices = raw.get("devices")  # one name, the repeated --device of hrm-bench, or None (omitted)
    devices = (devices,) if isinstance(devices, str) else tuple(dict.fromkeys(devices or ())) or ("cpu",)
    return RuntimeArgs(backend=raw.get("backend"), devices=devices, precisions=precisions, haltings=haltings,
                       max_segments=raw.get("max_segments"), batch=raw.get("batch"),
                       option_values={k: raw[k] for k in BACKEND_FLAGS if raw.get(k) is not None})
