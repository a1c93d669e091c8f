"""``hrm-serve``: serve an exported HRM over HTTP on Ray Serve until interrupted.

Thin: the flags become a :class:`hrm.serve.spec.SessionSpec` and a :class:`hrm.serve.spec.Scaling`,
and :func:`hrm.serve.app.run_app` deploys them (read its module for the HTTP API). Needs the
``serve`` extra. Exit status 0 after a clean shutdown (Ctrl-C or SIGTERM: replicas drain first),
2 on unusable options or deployment.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from hrm.cli.common import handle_errors, stderr_console
from hrm.manifest import PRECISIONS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--backend", type=click.Choice(["ort", "trt", "torch"]), default="ort", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True)
@click.option("--halting", type=click.Choice(["act", "fixed"]), default=None,
              help="halting of every request [default: the manifest's default_halting]")
@click.option("--max-segments", type=click.IntRange(min=1), default=None, help="segment cap (default halt_max_steps)")
@click.option("--slots", type=click.IntRange(min=1), default=16, show_default=True,
              help="continuous-batching slots per replica (the backend's batch size)")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="--backend ort on the CPU: intra-op threads per replica (also its CPU reservation)")
@click.option("--fused", is_flag=True, help="--backend ort/trt: the fused 'segment' graph (export with --segment)")
@click.option("--spin/--no-spin", default=None, help="--backend ort: let idle ORT threads spin [default: as hrm-run]")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="--backend torch: the checkpoint (default: the manifest's source)")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True, help="fixed replica count")
@click.option("--min-replicas", type=click.IntRange(min=0), default=None,
              help="autoscale between --min-replicas and --max-replicas (instead of --replicas)")
@click.option("--max-replicas", type=click.IntRange(min=1), default=None, help="autoscaling upper bound")
@click.option("--cpus-per-replica", type=click.FloatRange(min=0), default=None,
              help="Ray CPUs each replica reserves [default: --threads, or 1]")
@click.option("--gpus-per-replica", type=click.FloatRange(min=0), default=None,
              help="Ray GPUs each replica reserves; a fraction shares a GPU [default: 1 on cuda, 0 on cpu]")
@click.option("--ingress-replicas", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP ingress replicas (they parse every request; no CPU reserved)")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address (0.0.0.0: every interface)")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--route-prefix", default="/", show_default=True, help="URL prefix of the endpoints")
@click.option("--name", default="hrm", show_default=True, help="Serve application name (handle lookup)")
@click.option("--address", default=None,
              help="Ray cluster to join ('auto', HOST:PORT, ray://HOST:10001) "
                   "[default: start a local one on 127.0.0.1]")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="local cluster: serve Prometheus metrics (Ray's, Serve's, hrm_*) at http://127.0.0.1:PORT/metrics")
@click.option("--drain", "drain_s", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="seconds a stopping replica keeps solving what it holds before failing the rest with 503")
@handle_errors
def main(deployment: Path, backend: str, device: str, precision: str, halting: str | None, max_segments: int | None,
         slots: int, threads: int | None, fused: bool, spin: bool | None, checkpoint: Path | None, replicas: int,
         min_replicas: int | None, max_replicas: int | None, cpus_per_replica: float | None,
         gpus_per_replica: float | None, ingress_replicas: int, host: str, port: int, route_prefix: str, name: str,
         address: str | None, metrics_port: int | None, drain_s: float) -> None:
    """Serve the model exported to DEPLOYMENT: POST puzzles to http://HOST:PORT/solve."""
    from hrm.serve.spec import Scaling, SessionSpec, session_options

    err = stderr_console()
    try:
        options = session_options(backend, device, threads=threads, fused=fused, spin=spin, checkpoint=checkpoint)
        scaling = Scaling(replicas=replicas, min_replicas=min_replicas, max_replicas=max_replicas,
                          cpus=cpus_per_replica if cpus_per_replica is not None else float(threads or 1),
                          gpus=gpus_per_replica if gpus_per_replica is not None else float(device == "cuda"),
                          ingress_replicas=ingress_replicas)
        spec = SessionSpec(str(deployment), backend, device, precision, slots, halting, max_segments, options)
        spec.open(activate=False)  # a broken deployment or option fails here, not in every replica
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    from hrm.serve.app import run_app

    served = run_app(spec, scaling, name=name, route_prefix=route_prefix, host=host, port=port, address=address,
                     drain_s=drain_s, metrics_port=metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    count = f"{scaling.min_replicas}..{scaling.max_replicas}" if scaling.autoscaling else str(scaling.replicas)
    err.print(f"serving {deployment} ({backend} {precision} on {device}, {slots} slots x {count} replicas): "
              f"POST {served.url}/solve; GET {served.url}/readyz; Ctrl-C stops", highlight=False, soft_wrap=True)
    while not stop.wait(0.5):
        pass
    err.print("draining and stopping ...", highlight=False)
    served.shutdown()


if __name__ == "__main__":
    main()
