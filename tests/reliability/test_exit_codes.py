"""Exit codes of the hrm-* commands: 0 all answered, 1 some input rejected, 2 usage or deployment
error, 70 internal error (traceback only with --debug), 141 quietly on a closed pipe."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hrm.cli.run import main as run_main

pytest.importorskip("onnxruntime")


def run(*args):
    return CliRunner().invoke(run_main, [str(a) for a in args])


def test_all_answered_is_0_rejected_is_1(rel_deploy):
    assert run(rel_deploy, "1... .... .... ....").exit_code == 0
    r = run(rel_deploy, "1... .... .... ....", "1x.. .... .... ....")
    assert r.exit_code == 1 and "<arg 2>:1: bad character 'x'" in r.stderr


def test_usage_and_deployment_errors_are_2(rel_deploy, tmp_path):
    assert run(rel_deploy, "--batch", "0", "1... .... .... ....").exit_code == 2  # click usage error
    r = run(tmp_path / "nowhere", "1... .... .... ....")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_internal_error_is_70_with_traceback_only_under_debug(rel_deploy, monkeypatch):
    from hrm.runtime import session

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(session.Session, "iter_solve", bug)
    r = run(rel_deploy, "1... .... .... ....")
    assert r.exit_code == 70 and "Traceback" not in r.output
    assert r.stderr.strip() == ("error: internal error: ZeroDivisionError: a bug (a bug in hrm-deploy; rerun with "
                                "--debug for the traceback)")
    r = run(rel_deploy, "--debug", "1... .... .... ....")
    assert r.exit_code == 70 and "Traceback (most recent call last)" in r.stderr


def test_every_command_has_one_debug():
    """Every console script (subcommands of the groups included) goes through handle_errors once: the
    shared option group wraps commands that already do, and hands --debug down instead of adding another."""
    import importlib
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"hrm-run", "hrm-doctor", "hrm-data", "hrm-ckpt", "hrm-bench"} <= set(scripts)
    for name, target in scripts.items():
        module, attr = target.split(":")
        main = getattr(importlib.import_module(module), attr)
        for command in [*getattr(main, "commands", {}).values()] or [main]:
            debug = [o for p in command.params for o in getattr(p, "opts", []) if o == "--debug"]
            assert debug == ["--debug"], f"{name} {command.name}: {debug}"


def test_a_bad_shared_option_is_one_line_and_2(rel_deploy):
    r = run(rel_deploy, "--precision", "fp99", "1... .... .... ....")
    assert r.exit_code == 2 and r.stderr.startswith("error: --precision 'fp99': expected")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_closed_pipe_ends_quietly(rel_deploy, tmp_path):
    """hrm-run ... | head -1: no error line, no traceback, not exit 1 (no input was rejected)."""
    rng = np.random.default_rng(0)
    lines = ["".join(".1234"[v] for v in rng.integers(0, 5, 16)) for _ in range(3000)]
    f = tmp_path / "many.txt"
    f.write_text("\n".join(f"{line[:1]}..." + "." * 12 for line in lines) + "\n")  # 3000 valid puzzles
    proc = subprocess.Popen([sys.executable, "-m", "hrm.cli.run", str(rel_deploy), str(f), "--batch", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, like `head -1`
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"error" not in err.lower(), err
