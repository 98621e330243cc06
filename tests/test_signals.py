"""Signals that end a run: what is left behind (nothing) and the exit code.

Not in test_cli.py, which the package builds run (tests/serverless_tests.txt): these need a
stand-in server and strace, and pybuild's http_proxy=127.0.0.1:9 would block the first.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("python", ["venv", "/usr/bin/python3"])
@pytest.mark.slow
def test_sighup_during_a_write_is_handled_as_sigterm(ecr, aws_env, write_config, tmp_path, python) -> None:  # type: ignore[no-untyped-def]
    """#18.11: a closed ssh session (SIGHUP) while the token's temp file is being synced: the run
    unwinds as for SIGTERM, exit 129, and no 0600 temp file holding the token is left (was: killed
    by the signal, the temp file left until a run 5 minutes later)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from conftest import REPO_ROOT, require_tool

    strace = require_tool("strace")
    interpreter = sys.executable if python == "venv" else require_tool(python)
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\n[{host}]\n")
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    (docker_dir / "config.json").write_text('{"auths": {}}')
    traced = subprocess.Popen(
        [strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_enter=2000000",
         interpreter, "-m", "ecr_login_pkg", "--config", config, "--force"],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not [name for name in os.listdir(docker_dir) if name.endswith(".tmp")]:
            if traced.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the run never started its write: {traced.returncode} {traced.stderr.read() if traced.stderr else ''}")
            time.sleep(0.01)
        children = Path(f"/proc/{traced.pid}/task/{traced.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGHUP)
        _, stderr = traced.communicate(timeout=30)
    finally:
        traced.kill()
    assert traced.returncode == 129, (traced.returncode, stderr)  # strace exits with its child's code
    assert "Traceback" not in stderr
    assert [name for name in os.listdir(docker_dir) if name.startswith(".ecr-login-") and name.endswith(".tmp")] == []
    assert (docker_dir / "config.json").read_text() == '{"auths": {}}'
    assert ecr.password not in stderr
