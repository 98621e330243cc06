"""What the botocore clients leave behind (#18.11): no unclosed sockets, and a clock warning that
says which way a wrong clock errs.

Real runs against the stand-in ECR API. Debian's /usr/bin/python3 has urllib3
1.x, whose pooled connections warn ``ResourceWarning: unclosed socket`` when a
client is dropped without ``close()``; ``-X dev`` shows every such warning.
"""

from __future__ import annotations

import os

import pytest
from aws_fakes import HOST, PYTHONS, run
from standin_ecr import StandinECR


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("role", [False, True])
def test_no_unclosed_sockets_after_a_login(python, role, aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    """Was, on Debian's python3: ``ResourceWarning: unclosed <socket.socket … raddr=('127.0.0.1', PORT)>``."""
    extra = "role_arn = arn:aws:iam::123456789012:role/ecr-puller\n" if role else ""
    with StandinECR(password=token_password) as ecr:
        env = dict(os.environ, AWS_ENDPOINT_URL_STS=ecr.url)
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n\n[{HOST}]\n{extra}")
        result, _ = run(python, "--config", config, env=env, options=("-X", "dev", "-W", "error::ResourceWarning"))
    assert result.code == 0, result
    assert "ResourceWarning" not in result.stderr and "unclosed <socket" not in result.stderr, result.stderr


def test_a_slow_clock_says_logins_are_refreshed_late(aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    """The host's clock 7 h behind AWS's: a fresh token seems to last 19 h. Was: "until it is right,
    logins are refreshed more often than needed", the opposite of what a slow clock does."""
    with StandinECR(password=token_password, validity_seconds=19 * 3600) as ecr:
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n\n[{HOST}]\n")
        result, _ = run(PYTHONS[0].values[0], "--config", config, "--force")
    assert result.code == 0, result
    (warning,) = [line for line in result.stderr.splitlines() if ": warning: " in line and "clock" in line]
    assert "slow by about 7h00m" in warning, warning
    assert "later than needed" in warning and "expire earlier" in warning, warning
    assert "more often" not in warning, warning
