"""The tool runs on what Debian 12 ships: /usr/bin/python3 with python3-boto3 1.26 (botocore 1.29)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool

DEBIAN_PYTHON = "/usr/bin/python3"


def debian_botocore_version() -> str:
    done = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import botocore; print(botocore.__version__)"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"Debian's python3-boto3 is not installed: {done.stderr}"
    return done.stdout.strip()


def test_login_with_debians_botocore_and_endpoint_variable(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    require_tool(DEBIAN_PYTHON)
    version = debian_botocore_version()
    # botocore < 1.31 knows nothing of AWS_ENDPOINT_URL_ECR: ecr-login must apply it itself
    config = write_config("[defaults]\nstores = file\n[123456789012.dkr.ecr.eu-west-1.amazonaws.com]\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AWS_ENDPOINT_URL_ECR=ecr.url)
    done = subprocess.run(
        [DEBIAN_PYTHON, "-m", "ecr_login_pkg", "--config", config, "-v"],
        capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (version, done.stderr)
    assert ecr.call_count == 1 and ecr.calls[0].region == "eu-west-1"
    auths = json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]
    assert "123456789012.dkr.ecr.eu-west-1.amazonaws.com" in auths
    assert ecr.password not in done.stderr + done.stdout


@pytest.mark.slow
def test_code_is_ruff_and_mypy_clean() -> None:
    ruff = require_tool("ruff")
    mypy = require_tool("mypy")
    lint = subprocess.run([ruff, "check", "."], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout
    types = subprocess.run([mypy, "ecr_login_pkg"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert types.returncode == 0, types.stdout
