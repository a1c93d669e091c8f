"""What travels from a command line (or a caller) to every Ray replica and actor: value objects.

A replica or actor runs in its own process, often on another machine, and opens its own
:class:`hrm.runtime.Session` there. So it receives a *description* of the session
(:class:`SessionSpec`: picklable, frozen, no handles), never a session, and the same description
serves ``hrm-serve`` replicas and ``hrm-eval --ray`` actors. Its backend options are the backend's
options object (:mod:`hrm.runtime.backends.options`, frozen dataclasses: they pickle), built where the
command runs by the shared option group (:meth:`hrm.cli.options.RuntimeArgs.options`) or, for a Serve
config's ``args``, by :func:`~hrm.runtime.backends.options.options_for`. :class:`Scaling` says how many
replicas and what each one reserves from the cluster; Ray enforces it (a replica with ``gpus=0.5``
shares a GPU with one other, ``cpus=1`` keeps two single-threaded replicas off each other's core).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrm.runtime.backends.options import BackendOptions, options_for


@dataclass(frozen=True)
class SessionSpec:
    """How to open one Session: deployment directory, backend, precision, halting, batch/slots, options.

    ``batch`` is the Scheduler's slot count in a serve replica and the chunk size in an evaluation
    actor. ``deployment`` must be a path every node of the cluster can read (shared storage, or the
    same image on every node). ``options``: the backend's options object (None: its defaults).
    """

    deployment: str
    backend: str = "ort"
    device: str = "cpu"
    precision: str = "fp32"
    batch: int = 16
    halting: str | None = None
    max_segments: int | None = None
    options: BackendOptions | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "deployment", str(Path(self.deployment).resolve()))
        if self.options is not None:  # an options object of another backend is refused here, not in a replica
            options_for(self.backend, self.options)
        if int(self.batch) < 1:
            raise ValueError(f"batch (slots) must be >= 1, got {self.batch}")

    def open(self, activate: bool = True) -> Any:
        """A new Session (activated unless asked not to: call in the process that will use it). Opening one
        unactivated where the command runs checks the spec (deployment, variant, halting, backend options)
        before any replica is started."""
        from hrm.runtime import Session

        session = Session(self.deployment, backend=self.backend, device=self.device, precision=self.precision,
                          batch=self.batch, halting=self.halting, max_segments=self.max_segments,
                          options=self.options)
        return session.activate() if activate else session

    @property
    def threads(self) -> int | None:
        """The backend's CPU threads (ort), which is also what a replica or actor reserves by default."""
        return getattr(self.options, "threads", None)


@dataclass(frozen=True)
class Scaling:
    """Replica count (fixed, or autoscaling bounds) and what each replica reserves.

    ``cpus`` / ``gpus`` are Ray resources per replica: ``gpus=1`` gives a replica a whole GPU (Ray sets
    its ``CUDA_VISIBLE_DEVICES``), a fraction packs several replicas on one GPU, ``0`` runs on CPUs.
    With ``min_replicas``/``max_replicas`` Serve's autoscaler keeps about ``target_ongoing_requests``
    requests per replica (default: one per slot).
    """

    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    target_ongoing_requests: float | None = None
    ingress_replicas: int = 1  # the HTTP ingress parses every request: more of them on a larger cluster

    def __post_init__(self) -> None:
        if self.autoscaling:
            lo, hi = self.min_replicas or 0, self.max_replicas or max(1, self.min_replicas or 1)
            if lo < 0 or hi < max(lo, 1):
                raise ValueError(f"autoscaling bounds must satisfy 0 <= min <= max, max >= 1; got {lo}..{hi}")
            object.__setattr__(self, "min_replicas", lo)
            object.__setattr__(self, "max_replicas", hi)
        elif self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if self.ingress_replicas < 1:
            raise ValueError(f"ingress replicas must be >= 1, got {self.ingress_replicas}")
        if self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"cpus and gpus per replica must be >= 0, got {self.cpus} / {self.gpus}")

    @classmethod
    def for_spec(cls, spec: SessionSpec, cpus: float | None = None, gpus: float | None = None,
                 **counts: Any) -> "Scaling":
        """Scaling with the per-replica defaults every door uses: a replica (or actor) reserves its
        backend's ``threads`` CPUs (else 1) and, on CUDA, one whole GPU."""
        return cls(cpus=float(spec.threads or 1) if cpus is None else float(cpus),
                   gpus=float(spec.device == "cuda") if gpus is None else float(gpus), **counts)

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    def deployment_options(self, slots: int) -> dict[str, Any]:
        """Keyword arguments of the solver deployment's ``serve.deployment(...).options``."""
        opts: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.cpus, "num_gpus": self.gpus}}
        if self.autoscaling:
            opts["autoscaling_config"] = {
                "min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                "initial_replicas": max(self.min_replicas, 1),
                "target_ongoing_requests": self.target_ongoing_requests or slots}
        else:
            opts["num_replicas"] = self.replicas
        return opts
