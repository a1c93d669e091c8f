"""Join a Ray cluster, or start a local one that stays on 127.0.0.1.

A local cluster (no address) is for one machine: Ray would otherwise advertise and connect to the
machine's network address and report usage statistics; here every Ray process binds and talks to the
loopback address and usage statistics are off. A real cluster (``ray start --head`` on each node, or
KubeRay) is joined by address (``auto``, ``HOST:6379`` or ``ray://HOST:10001``) and configured by
whoever started it.
"""

from __future__ import annotations

import logging
import os
import sys

#: Ray Serve settings for hrm-serve's shape of work (few requests, each tens to thousands of ms of model
#: work): user code runs on each replica's own event loop instead of a thread of its own (one of what
#: Serve's ``RAY_SERVE_THROUGHPUT_OPTIMIZED`` sets), the controller loop runs every 0.5 s instead of 0.1 s
#: (replacing a replica or autoscaling reacts up to 0.4 s later), and Serve's cached metrics are exported
#: every second. Measured on the 2-core box (benchmarks/README.md): an idle local cluster with a 2-replica
#: application used 76-102 ms of CPU per second (four 20 s windows) instead of 118-146 (three): CPU that
#: solver replicas on the same cores get back. Our replicas never block their event loop (the Scheduler
#: runs in its own thread), which is what running user code on it requires. Not taken:
#: ``RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP=0``, which leaves handles unusable outside an event loop
#: (``handle.solve.remote(...).result()`` from plain Python). A cluster hrm-serve starts gets these; one
#: started elsewhere reads them from its own environment (deploy/kuberay sets them).
SERVE_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
             "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000"}

#: environment of a local cluster's processes: loopback node address, no usage report, SERVE_ENV.
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", **SERVE_ENV}


def use_local_env() -> None:
    """Put LOCAL_ENV into this process's environment (values already set win), where a local cluster's
    processes inherit it. Call before anything imports ``ray`` (see :func:`connect`)."""
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)


def is_local(address: str | None) -> bool:
    return address in (None, "", "local")


def connect(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
            metrics_port: int | None = None) -> bool:
    """Connect this process to Ray; returns True when it started a local cluster (the caller shuts it
    down). ``num_cpus``/``num_gpus`` size a local cluster (default: what the machine has);
    ``metrics_port``: where its Prometheus metrics (Ray's, Serve's, ours) are served (default: a random
    port). A cluster started elsewhere has its own (``ray start --metrics-export-port``)."""
    local = is_local(address)
    if local:
        use_local_env()
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"Ray is not installed ({exc}): pip install 'hrm-deploy[serve]'") from exc
    if ray.is_initialized():
        return False
    if local:
        # The node address is decided from this constant, read when ray was first imported; a process
        # that imported ray before setting LOCAL_ENV would still pick the network address.
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
            constants.ENABLE_RAY_CLUSTER = False
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 logging_level=logging.WARNING, _metrics_export_port=metrics_port)
        return True
    ray.init(address=address, logging_level=logging.WARNING)
    return False
