"""Helpers of the serve tests (a module of its own: every test folder's ``conftest`` is named alike)."""

from __future__ import annotations

import socket

SLOTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deploy_app(s4_deploy, port: int, name: str, halting: str, replicas: int = 1, drain_s: float = 10.0):
    """Serve the model as application ``name`` under ``/name``; returns the ``Served``."""
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.app import run_app
    from hrm.serve.spec import Scaling, SessionSpec

    spec = SessionSpec(str(s4_deploy), batch=SLOTS, halting=halting, options=OrtOptions(threads=1))
    return run_app(spec, Scaling(replicas=replicas), name=name, route_prefix=f"/{name}", port=port,
                   drain_s=drain_s)


def comparable(answer: dict) -> dict:
    """An answer object without what legitimately differs between runs (timings)."""
    return {k: v for k, v in answer.items() if k != "timings_ms"}
