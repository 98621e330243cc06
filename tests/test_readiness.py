"""readiness: what an unconfigured host lacks, found from the environment and the files alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecr_login_pkg import readiness
from ecr_login_pkg.config import Overrides, load


def on_this_ec2() -> bool:
    return readiness.on_ec2({})


@pytest.fixture
def bare(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A host with no AWS credentials and no region anywhere (the files exist, empty)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    if on_this_ec2():
        pytest.skip("this host is an EC2 instance: an instance profile may give it credentials")
    return dict(os.environ)


def test_a_named_metadata_service_counts_as_ec2() -> None:
    assert readiness.on_ec2({"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1"})


def test_credential_sources_variables_profiles_and_files(bare: dict[str, str]) -> None:
    assert readiness.credential_sources(bare) == []
    assert readiness.credential_sources({**bare, "AWS_ACCESS_KEY_ID": "AKID"}) == ["AWS_ACCESS_KEY_ID"]
    assert readiness.credential_sources(bare, [None, "ci"]) == ["profile ci"]
    Path(bare["AWS_SHARED_CREDENTIALS_FILE"]).write_text("[default]\naws_access_key_id = AKID\n")
    assert readiness.credential_sources(bare) == [bare["AWS_SHARED_CREDENTIALS_FILE"]]
    Path(bare["AWS_CONFIG_FILE"]).write_text("[default]\nregion = eu-west-1\n")  # a region is no credential
    assert readiness.credential_sources({**bare, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}) == []


def test_an_unconfigured_host_is_told_what_is_missing(bare: dict[str, str], tmp_path: Path) -> None:
    settings = load(Overrides(), {**bare, "ECR_LOGIN_CONFIG": ""})
    if settings.config_path is not None:
        pytest.skip(f"this host has {settings.config_path}")
    lines = readiness.missing(settings, bare)
    assert [line.split(" (")[0].split(":")[0] for line in lines] == [
        "no AWS region", "no AWS credentials in this environment or ~/.aws",
        "no registry configured in /etc/ecr-login/ecr-login.conf"]
    assert "/etc/default/ecr-login" in lines[1] and "AWS_REGION" in lines[0]
    assert readiness.nothing_set_up(settings, bare)
    assert not readiness.nothing_set_up(settings, bare, named=["123456789012.dkr.ecr.us-east-1.amazonaws.com"])
    assert not readiness.nothing_set_up(settings, {**bare, "AWS_ACCESS_KEY_ID": "AKID"})


def test_a_configured_host_lacks_nothing_visible(aws_env: dict[str, str], write_config) -> None:  # type: ignore[no-untyped-def]
    settings = load(Overrides(config_path=write_config("[app]\nhost = 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n")),
                    os.environ)
    assert readiness.missing(settings, os.environ) == []
    assert not readiness.nothing_set_up(settings, os.environ)
