"""Instance credentials that come late (#18.1): on EC2, a busy metadata service is temporary.

A real IMDSv2 server on loopback (tests/aws_fakes.SlowMetadata) answers the
token and the placement at once but ``iam/security-credentials/`` only after
30 s, as a metadata service busy at boot or throttled does. Naming it in
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` makes the host count as EC2
(``readiness.on_ec2``). botocore waits 1 s for it and then finds no
credentials; that must be 75 naming the metadata service, not "not set up"
(exit 0 on an unconfigured host, 78 with a registry).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_fakes import HOST, PYTHONS, SlowMetadata, errors_of, run, without_aws_keys


@pytest.fixture
def on_ec2(aws_env, monkeypatch):  # type: ignore[no-untyped-def]
    without_aws_keys(monkeypatch)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    return aws_env


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
@pytest.mark.parametrize("python", PYTHONS)
def test_slow_instance_credentials_on_an_unconfigured_ec2_host_are_temporary(  # type: ignore[no-untyped-def]
        python, on_ec2, ecr, write_config, monkeypatch) -> None:
    """Zero-config (no registry): was exit 0 "ecr-login is not set up on this host" after 2 s."""
    with SlowMetadata(credentials_delay=30) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\n")
        result, took = run(python, "--config", config)
        assert any("security-credentials" in line for line in imds.requests), imds.requests
    assert result.code == 75, result
    (line,) = errors_of(result)
    assert "instance metadata" in line and imds.url.rstrip("/") in line, line
    assert "not set up" not in result.output
    assert took < 15, took
    assert ecr.call_count == 0
    assert not Path(on_ec2["DOCKER_CONFIG"], "config.json").exists()


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
@pytest.mark.parametrize("python", PYTHONS)
def test_slow_instance_credentials_with_a_registry_configured_are_temporary(python, on_ec2, ecr, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A registry configured: was 78 "no AWS credentials found (give this host an instance profile ...)"."""
    with SlowMetadata(credentials_delay=30) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\n\n[{HOST}]\n")
        result, took = run(python, "--config", config)
    assert result.code == 75, result
    (line,) = errors_of(result)
    assert "instance metadata" in line and "give this host an instance profile" not in line, line
    assert took < 15, took


def test_an_instance_without_an_instance_profile_stays_not_set_up(on_ec2, ecr, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The metadata service answers at once that there is no role (404): retrying cannot help, 78."""
    with SlowMetadata(credentials_delay=0, role=None) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\n\n[{HOST}]\n")
        result, took = run(PYTHONS[0].values[0], "--config", config)
    assert result.code == 78, result
    assert "no AWS credentials" in result.stderr
    assert took < 15, took
