"""hrm.serve: serve and evaluate exported HRMs on a Ray cluster (``pip install 'hrm-deploy[serve]'``).

* :mod:`.spec`: what travels to replicas and actors (``SessionSpec``, ``Scaling``);
* :mod:`.replica`: one replica's Session + continuous-batching Scheduler (plain Python);
* :mod:`.app`: the Ray Serve application (HTTP ingress + solver replicas), ``run_app``;
* :mod:`.evaluate`: ``hrm-eval --ray``: a dataset split over actors, scored like a local run;
* :mod:`.client`: sync and async HTTP clients (needs only ``httpx``);
* :mod:`.cluster`: join a cluster or start a local one on 127.0.0.1.

Importing this package imports neither Ray nor torch; :mod:`.app` and :mod:`.evaluate` import Ray.
"""

from hrm.serve.spec import Scaling, SessionSpec

__all__ = ["Scaling", "SessionSpec"]
