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
from hrm.cli.options import OptionError, RuntimeArgs, runtime_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path, exists=True, file_okay=False))
@runtime_options(batch=16)
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
def main(deployment: Path, runtime: RuntimeArgs, replicas: int, min_replicas: int | None, max_replicas: int | None,
         cpus_per_replica: float | None, gpus_per_replica: float | None, ingress_replicas: int, host: str, port: int,
         route_prefix: str, name: str, address: str | None, metrics_port: int | None, drain_s: float) -> None:
    """Serve the model exported to DEPLOYMENT: POST puzzles to http://HOST:PORT/solve. --batch is each
    replica's number of continuous-batching slots (the backend's batch size)."""
    from hrm.serve.spec import Scaling

    err = stderr_console()
    spec = runtime.spec(deployment)
    try:
        scaling = Scaling.for_spec(spec, cpus_per_replica, gpus_per_replica, replicas=replicas,
                                   min_replicas=min_replicas, max_replicas=max_replicas,
                                   ingress_replicas=ingress_replicas)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    spec.open(activate=False)  # a broken deployment or option fails here (exit 2), not in every replica

    from hrm.serve.app import run_app

    served = run_app(spec, scaling, name=name, route_prefix=route_prefix, host=host, port=port, address=address,
                     drain_s=drain_s, metrics_port=metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    count = f"{scaling.min_replicas}..{scaling.max_replicas}" if scaling.autoscaling else str(scaling.replicas)
    err.print(f"serving {deployment} ({spec.backend} {spec.precision} on {spec.device}, {spec.batch} slots x {count} "
              f"replicas): POST {served.url}/solve; GET {served.url}/readyz; Ctrl-C stops", highlight=False,
              soft_wrap=True)
    while not stop.wait(0.5):
        pass
    err.print("draining and stopping ...", highlight=False)
    served.shutdown()


if __name__ == "__main__":
    main()
