"""``ecr-login logout`` of many registries: one rewrite per file (issue 18, point 11).

Real processes against the stand-in ECR; strace counts the renames onto config.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool

REGISTRIES = 2000


def account_host(index: int) -> str:
    return f"{210000000000 + index}.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize("python", ["venv", "/usr/bin/python3"])
def test_logout_of_2000_registries_rewrites_the_file_once(ecr, aws_env, write_config, tmp_path, python) -> None:  # type: ignore[no-untyped-def]
    strace = require_tool("strace")
    interpreter = sys.executable if python == "venv" else require_tool(python)
    sections = "".join(f"[{account_host(index)}]\n" for index in range(REGISTRIES))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 30s\n{sections}")
    config_json = Path(aws_env["DOCKER_CONFIG"], "config.json")
    config_json.parent.mkdir(mode=0o700)
    config_json.write_text('{"auths": {"ghcr.io": {"auth": "Ym90OmZvcmVpZ24="}}}')
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), STATE_DIRECTORY=str(tmp_path / "state"))
    login = subprocess.run([interpreter, "-m", "ecr_login_pkg", "--config", config, "-q"], env=env,
                           capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert login.returncode == 0, login.stderr[-2000:]
    assert len(json.loads(config_json.read_text())["auths"]) == REGISTRIES + 1

    trace = tmp_path / "renames"
    logout = subprocess.run(
        [strace, "-f", "-qq", "-o", str(trace), "-e", "trace=rename,renameat,renameat2",
         interpreter, "-m", "ecr_login_pkg", "logout", "--config", config, "-q"],
        env=env, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )
    assert logout.returncode == 0, logout.stderr[-2000:]
    rewrites = [line for line in trace.read_text().splitlines() if f'"{config_json}"' in line]
    assert len(rewrites) == 1, f"{len(rewrites)} rewrites of {config_json}"  # was one per registry: 2000
    assert json.loads(config_json.read_text())["auths"] == {"ghcr.io": {"auth": "Ym90OmZvcmVpZ24="}}
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert state["entries"] == {}, "the state kept logins that are gone"
