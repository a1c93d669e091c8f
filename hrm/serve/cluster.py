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

#: environment of a local cluster's processes: loopback node address, no usage report.
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


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
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
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
