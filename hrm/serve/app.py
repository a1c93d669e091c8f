"""The Ray Serve application behind ``hrm-serve``: an HTTP ingress in front of solver replicas.

Two deployments, because a replica that dies cannot retry its own requests:

* ``solver`` (N replicas, or autoscaled): :class:`hrm.serve.replica.SolverReplica`: one Session and
  one continuous-batching Scheduler each, shared by every request routed to it. Serve checks its
  health (a hung backend fails it and the replica is replaced) and exports our metrics next to its
  own: ``hrm_segments_per_answer``, ``hrm_queue_ms``, ``hrm_slot_use``, ``hrm_slots_active``,
  ``hrm_queue_depth``.
* ``ingress`` (``Scaling.ingress_replicas``, default 1; reserves no CPU): parses request bodies through
  the task parser, one item per record (a bad record is answered with 422 and named; the others are
  solved), splits large requests into chunks of ``CHUNK_SLOTS`` x slots puzzles spread over the
  replicas, and sends a chunk again, once, when its replica died or shut down before answering; a
  second loss is answered with 503. So every puzzle of every request gets exactly one answer or one
  explicit error.

HTTP (under the route prefix): ``POST /solve`` with ``{"inputs": [text, ...]}`` (each text in any
format ``hrm-run`` accepts: puzzle strings, file contents, CSV, ARC JSON) or a ``text/plain`` body;
the reply is ``{"status", "answers": [...]}``, one answer per record in input order (the objects
``hrm-run --json`` prints; errors carry ``status``), with HTTP status 200, 422 (some record was
malformed), 503/500 (some puzzle was not answered by the server), 400 (the body itself is unusable)
or 413 (too many puzzles). ``GET /healthz``: the ingress is up. ``GET /readyz``: a solver replica
answers (200) or not (503). In-cluster Python callers use the ingress handle's ``solve`` method
(:meth:`Served.handle`), which returns the same dict as the HTTP body.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.exceptions import RayActorError

from hrm.errors import HRMError, ParseError
from hrm.runtime.backends.options import options_for
from hrm.serve.replica import RETRY, SolverReplica, error_item
from hrm.serve.spec import Scaling, SessionSpec
from hrm.tasks.inputs import input_parser, parse_records

#: puzzles one request may carry (a bigger one is refused with 413: split it).
MAX_PUZZLES = 4096
#: a large request goes to the solvers in chunks of this many slots' worth of puzzles: enough to keep a
#: replica's slots refilled, few enough calls that Serve's per-call cost stays small, spread over replicas.
CHUNK_SLOTS = 4
#: requests in flight per replica before Serve queues them in its router (our Scheduler queues anyway).
MAX_ONGOING = 1024

api = FastAPI(title="hrm-serve", description="Solve puzzles with an exported HRM.")


class ServeMetrics:
    """Our per-replica metrics as Ray Serve metrics (Prometheus, tagged with deployment and replica)."""

    def __init__(self, max_segments: int) -> None:
        from ray.serve import metrics

        self.segments = metrics.Histogram("hrm_segments_per_answer", "segments a puzzle ran before its answer",
                                          boundaries=list(range(1, 2 * max_segments + 1)))
        self.queue_ms = metrics.Histogram("hrm_queue_ms", "ms from arrival at the replica to a free slot",
                                          boundaries=[0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])
        self.slot_use = metrics.Gauge("hrm_slot_use", "share of computed slot-segments that held a puzzle")
        self.slots_active = metrics.Gauge("hrm_slots_active", "slots holding a puzzle")
        self.queue_depth = metrics.Gauge("hrm_queue_depth", "puzzles waiting for a slot")

    def answered(self, segments: int, queue_ms: float) -> None:
        self.segments.observe(segments)
        self.queue_ms.observe(queue_ms)

    def occupancy(self, active: int, pending: int, slot_use: float | None) -> None:
        self.slots_active.set(active)
        self.queue_depth.set(pending)
        if slot_use is not None:
            self.slot_use.set(slot_use)


class Solver(SolverReplica):
    """The ``solver`` deployment: a SolverReplica with Serve's metrics, health check and shutdown."""

    def __init__(self, spec: SessionSpec, drain_s: float) -> None:
        self.drain_s = drain_s
        super().__init__(spec)
        self.metrics = ServeMetrics(self.session.policy.max_segments)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.stats()}

    def check_health(self) -> None:
        problem = self.healthy()
        if problem:
            raise RuntimeError(problem)

    async def __del__(self) -> None:
        if hasattr(self, "scheduler"):  # Serve calls this after a failed constructor too
            await asyncio.to_thread(self.close, self.drain_s)


class _BadRequest(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class IngressBase:
    """The ``ingress`` deployment (see the module docstring). Decorated below rather than with ``@``: the
    undecorated class stays importable by name, so Ray pickles it by reference (Serve's wrapper class is
    pickled by value and would lose this module's globals)."""

    def __init__(self, solver: Any, spec: SessionSpec, max_puzzles: int = MAX_PUZZLES) -> None:
        from hrm.runtime import load_deployment

        dep = load_deployment(spec.deployment, verify=False, precision=spec.precision)
        self.parser = input_parser(dep)
        self.solver = solver
        self.chunk = CHUNK_SLOTS * spec.batch
        self.max_puzzles = max_puzzles
        self.retried = 0  # puzzles sent again because their replica went away (this ingress replica)
        self.lost = 0  # of those, puzzles whose second replica went away too (answered with 503)
        self.about = {"deployment": spec.deployment, "task": getattr(self.parser, "name", None),
                      "backend": spec.backend, "device": spec.device, "precision": spec.precision,
                      **dep.manifest.halting_policy(spec.halting, spec.max_segments).describe(), "slots": spec.batch}

    # ---- HTTP -----------------------------------------------------------------------------------------
    @api.post("/solve")
    async def http_solve(self, request: Request) -> JSONResponse:
        try:
            inputs = _inputs_of(request.headers.get("content-type", ""), await request.body())
            body = await self.solve(inputs)
        except _BadRequest as exc:
            return JSONResponse({"status": exc.status, "error": str(exc)}, status_code=exc.status)
        return JSONResponse(body, status_code=body["status"])

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self) -> JSONResponse:
        try:
            replica = await asyncio.wait_for(self.solver.info.remote(), timeout=10)
        except Exception as exc:  # no replica running yet, or it cannot answer
            return JSONResponse({"ready": False, "error": f"{type(exc).__name__}: {exc}"}, status_code=503)
        return JSONResponse({"ready": True, **self.about, "replica": replica, "retried": self.retried,
                             "lost": self.lost})

    # ---- the handle API (and what HTTP calls) --------------------------------------------------------
    async def solve(self, inputs: Sequence[Any]) -> dict[str, Any]:
        """Answer every record of ``inputs`` (texts in any hrm-run format, or ``Puzzle`` objects):
        ``{"status": <overall HTTP status>, "answers": [one item per record, in input order]}``."""
        items: list[Any] = []
        for n, text in enumerate(inputs, start=1):
            items.extend(parse_records(self.parser, text, f"<input {n}>") if isinstance(text, str) else [text])
        puzzles = [p for p in items if not isinstance(p, ParseError)]
        if not items:
            raise _BadRequest("no puzzles in the request")
        if len(puzzles) > self.max_puzzles:
            raise _BadRequest(f"{len(puzzles)} puzzles in one request; at most {self.max_puzzles}: split it", 413)
        solved = iter(await self._answer(puzzles))
        answers = [error_item(p.source, p.line, p.message, 422) if isinstance(p, ParseError) else next(solved)
                   for p in items]
        return {"status": overall_status(answers), "answers": answers}

    async def _answer(self, puzzles: list[Any]) -> list[dict[str, Any]]:
        chunks = [range(s, min(s + self.chunk, len(puzzles))) for s in range(0, len(puzzles), self.chunk)]
        parts = await asyncio.gather(*(self._chunk(puzzles, list(c)) for c in chunks))
        return [item for part in parts for item in part]

    async def _chunk(self, puzzles: list[Any], ids: list[int]) -> list[dict[str, Any]]:
        """Solve puzzles ``ids``; those whose replica went away are sent once more (any replica)."""
        out = await self._call(puzzles, ids)
        lost = [k for k, item in enumerate(out) if item.get("status") == RETRY]
        if lost:
            self.retried += len(lost)
            again = await self._call(puzzles, [ids[k] for k in lost])
            for k, item in zip(lost, again):
                if item.get("status") == RETRY:
                    self.lost += 1
                    item = {**item, "error": f"not answered after one retry on another replica: {item['error']}"}
                out[k] = item
        return out

    async def _call(self, puzzles: list[Any], ids: list[int]) -> list[dict[str, Any]]:
        chunk = [puzzles[i] for i in ids]
        try:
            return await self.solver.solve.remote(chunk, ids)
        except RayActorError as exc:  # the replica process died (or became unreachable) mid-request
            reason = f"replica lost while solving ({type(exc).__name__})"
            return [error_item(p.source, None, reason, RETRY) for p in chunk]
        except Exception as exc:
            return [error_item(p.source, None, f"{type(exc).__name__}: {exc}", 500) for p in chunk]


Ingress = serve.ingress(api)(IngressBase)


def overall_status(answers: Sequence[dict[str, Any]]) -> int:
    """The request's status: the server's fault first (503 over 500), then the input's (422), else 200."""
    codes = {a.get("status", 200) for a in answers}
    server = [c for c in codes if c >= 500]
    return max(server) if server else max(codes, default=200)


def _inputs_of(content_type: str, body: bytes) -> list[str]:
    """Request body -> input texts: JSON ``{"inputs": [text, ...]}`` / ``{"input": text}``, or plain text."""
    if "json" in content_type:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise _BadRequest(f"body: not JSON ({exc})") from None
        inputs = doc.get("inputs", [doc["input"]] if "input" in doc else None) if isinstance(doc, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            raise _BadRequest('body: expected {"inputs": [text, ...]} (each text in any format hrm-run accepts; '
                              "send an ARC task as a string, or the raw text as text/plain)")
        return inputs
    try:
        return [body.decode("utf-8")]
    except UnicodeDecodeError as exc:
        raise _BadRequest(f"body: not UTF-8 text (byte {exc.start})") from None


def build_app(spec: SessionSpec, scaling: Scaling = Scaling(), *, drain_s: float = 10.0,
              max_puzzles: int = MAX_PUZZLES) -> Any:
    """The Serve application (ingress bound to the solver deployment) for ``serve.run``."""
    solver = serve.deployment(Solver).options(
        name="solver", max_ongoing_requests=MAX_ONGOING, graceful_shutdown_timeout_s=drain_s + 10,
        health_check_period_s=10, health_check_timeout_s=30, **scaling.deployment_options(spec.batch))
    ingress = serve.deployment(Ingress).options(name="ingress", max_ongoing_requests=MAX_ONGOING,
                                                num_replicas=scaling.ingress_replicas,
                                                ray_actor_options={"num_cpus": 0})
    return ingress.bind(solver.bind(spec, drain_s), spec, max_puzzles)


def app_builder(args: dict[str, Any]) -> Any:
    """The application from a Serve config's ``args``: ``serve run hrm.serve.app:app_builder deployment=DIR``,
    or KubeRay's ``serveConfigV2`` (``deploy/kuberay/``). Keys: see :func:`options_from_args`."""
    spec, scaling, drain_s = options_from_args(args)
    return build_app(spec, scaling, drain_s=drain_s)


#: the backend options among the ``app_builder`` keys (hrm-serve's backend option flags), with their types
BACKEND_ARGS = {"threads": int, "spin": bool, "fused": bool, "cuda_graph": bool, "checkpoint": str}
#: ``app_builder`` keys: the hrm-serve options, underscored.
APP_ARGS = ("deployment", "backend", "device", "precision", "batch", "halting", "max_segments", *BACKEND_ARGS,
            "replicas", "min_replicas", "max_replicas", "cpus_per_replica", "gpus_per_replica", "ingress_replicas",
            "drain_s")


def options_from_args(args: dict[str, Any]) -> tuple[SessionSpec, Scaling, float]:
    """``app_builder`` args (values may be strings, as ``serve run key=value`` passes them) -> the value
    objects, with hrm-serve's defaults. Raises ValueError naming unknown or missing keys, or a backend
    option the backend lacks."""
    unknown, missing = sorted(set(args) - set(APP_ARGS)), "deployment" not in args
    if unknown or missing:
        raise ValueError(f"app_builder args: {'unknown ' + str(unknown) if unknown else 'no deployment'}; "
                         f"known: {', '.join(APP_ARGS)}")

    def arg(key: str, kind: type, default: Any = None) -> Any:
        value = args.get(key, default)
        if value is None:
            return None
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return kind(value)

    backend = arg("backend", str, "ort")
    options = options_for(backend, **{k: arg(k, kind) for k, kind in BACKEND_ARGS.items() if k in args})
    spec = SessionSpec(arg("deployment", str), backend, arg("device", str, "cpu"), arg("precision", str, "fp32"),
                       arg("batch", int, 16), arg("halting", str), arg("max_segments", int), options)
    scaling = Scaling.for_spec(spec, arg("cpus_per_replica", float), arg("gpus_per_replica", float),
                               replicas=arg("replicas", int, 1), min_replicas=arg("min_replicas", int),
                               max_replicas=arg("max_replicas", int), ingress_replicas=arg("ingress_replicas", int, 1))
    return spec, scaling, arg("drain_s", float, 10.0)


@dataclass
class Served:
    """A running application: its URL, a handle for in-cluster callers, and how to stop it."""

    name: str
    url: str  # http://host:port/prefix (no trailing slash)
    started_cluster: bool

    def handle(self) -> Any:
        """The ingress handle: ``await served.handle().solve.remote([text, ...])`` (or ``.result()``)."""
        return serve.get_app_handle(self.name)

    def shutdown(self) -> None:
        """Delete the application (replicas drain, then fail what is left with 503); stop a cluster we
        started."""
        serve.delete(self.name)
        if self.started_cluster:
            import ray

            serve.shutdown()
            ray.shutdown()


def _deploy_failure(name: str) -> str | None:
    """The last line of the first failing deployment's status message (the replica's exception)."""
    try:
        deployments = serve.status().applications[name].deployments
    except Exception:
        return None
    for status in deployments.values():
        lines = [ln for ln in str(status.message or "").splitlines() if ln.strip()]
        if str(status.status).endswith("UNHEALTHY") or str(status.status).endswith("DEPLOY_FAILED"):
            return lines[-1].strip() if lines else str(status.status)
    return None


def run_app(spec: SessionSpec, scaling: Scaling = Scaling(), *, name: str = "hrm", route_prefix: str = "/",
            host: str = "127.0.0.1", port: int = 8000, address: str | None = None, drain_s: float = 10.0,
            max_puzzles: int = MAX_PUZZLES, metrics_port: int | None = None) -> Served:
    """Deploy ``spec`` on Ray Serve (starting a local cluster unless ``address``, with its Prometheus
    metrics on ``metrics_port``); returns when every replica is up."""
    from hrm.serve.cluster import connect

    started = connect(address, metrics_port=metrics_port)
    quiet = {"log_level": "WARNING", "enable_access_log": False}
    serve.start(http_options={"host": host, "port": port}, logging_config=quiet)
    try:
        serve.run(build_app(spec, scaling, drain_s=drain_s, max_puzzles=max_puzzles), name=name,
                  route_prefix=route_prefix, logging_config=quiet)
    except RuntimeError as exc:  # a replica's constructor failed (Serve retries, then gives up)
        cause = _deploy_failure(name) or str(exc)
        Served(name, "", started).shutdown()
        raise HRMError(f"{spec.deployment}: deploying on Ray Serve failed: {cause}") from None
    prefix = "" if route_prefix == "/" else route_prefix.rstrip("/")
    return Served(name, f"http://{host}:{port}{prefix}", started)
