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
from conftest import REPO_ROOT, require_tool, run_ecr_login, stored_auths

from ecr_login_pkg.authfile import AuthFile, encode_auth

REGISTRIES = 2000


HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def file_config(ecr_url: str, extra: str = "") -> str:
    return f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\nlock_timeout = 3\n{extra}[{HOST}]\n"


def account_host(index: int) -> str:
    return f"{210000000000 + index}.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize("python", ["venv", "/usr/bin/python3"])
@pytest.mark.slow
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


# --- logout removes only what ecr-login wrote (from test_robustness) ---------------------------------


def test_logout_leaves_a_login_ecr_login_never_wrote(aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    mine = {"auths": {HOST: {"auth": encode_auth("AWS", "the-users-own")}, "ghcr.io": {"auth": "eDp5"}}}
    (docker_dir / "config.json").write_text(json.dumps(mine))
    result = run_ecr_login("logout", "--config", write_config(file_config("http://127.0.0.1:9")))
    assert result.code == 0, result
    assert "not stored by ecr-login; left alone" in result.stderr
    assert json.loads((docker_dir / "config.json").read_text()) == mine


@pytest.mark.slow
def test_logout_removes_its_own_login_and_leaves_a_replaced_one(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    config = write_config(file_config(ecr.url))
    assert run_ecr_login("--config", config).code == 0
    logout = run_ecr_login("logout", "--config", config)
    assert logout.code == 0 and HOST not in stored_auths(docker_dir), logout
    # logged in again, then the user logs in by hand over it: theirs is left alone
    assert run_ecr_login("--config", config).code == 0
    AuthFile(str(docker_dir / "config.json")).update({HOST: encode_auth("AWS", "typed-by-hand")})
    replaced = run_ecr_login("logout", "--config", config)
    assert replaced.code == 0, replaced
    assert "did not write; left alone" in replaced.stderr
    assert stored_auths(docker_dir)[HOST]["auth"] == encode_auth("AWS", "typed-by-hand")
    # and the state entry is gone: a second logout leaves it alone too
    again = run_ecr_login("logout", "--config", config)
    assert "not stored by ecr-login" in again.stderr and HOST in stored_auths(docker_dir)
