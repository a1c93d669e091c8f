"""Training tests run torch on 2 CPU threads. On a machine where other processes also want the cores,
libgomp's default busy-waiting makes each step 10-30x slower (measured: 0.35 s -> 10 s per step);
passive waiting avoids that. libgomp reads the variable when torch is first imported, so this only
helps when this folder is collected before anything imports torch (e.g. ``pytest tests/train``)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
