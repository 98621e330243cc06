"""A host never set up (#9.3, #13.3): login says what is missing once and exits 0; status says it
and the next step; the moment a registry or credentials exist, failures are failures again.

A laptop or a host off EC2 with the package installed shows no failed unit every 15 minutes,
and no message carries an empty placeholder.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from conftest import run_ecr_login

from ecr_login_pkg.config import DEFAULT_CONFIG
from ecr_login_pkg.readiness import on_ec2

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture
def bare_host(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No configuration file, no AWS credentials, no region; instance metadata off (as off EC2)."""
    if os.path.exists(DEFAULT_CONFIG):
        pytest.skip(f"this host has {DEFAULT_CONFIG}: it is not unconfigured")
    if on_ec2({}):
        pytest.skip("this host is an EC2 instance")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "ECR_LOGIN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return aws_env


def state_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_STATE_HOME"], "ecr-login")


def test_login_on_a_host_never_set_up_is_one_notice_and_exit_0(bare_host: dict[str, str]) -> None:
    result = run_ecr_login("--store", "file")
    assert result.code == 0, result
    (line,) = result.stderr.splitlines()
    assert "notice: ecr-login is not set up on this host, nothing to log in with: no AWS region" in line
    assert "no AWS credentials" in line and f"no registry configured in {DEFAULT_CONFIG} (absent)" in line
    assert "ecr-login doctor" in line and result.stdout == ""
    assert not (state_dir(bare_host) / "state.json").exists()  # nothing recorded: there was nothing to do
    assert not Path(bare_host["DOCKER_CONFIG"]).exists()


def test_with_a_region_but_no_credentials_it_is_still_a_notice(bare_host: dict[str, str]) -> None:
    result = run_ecr_login("--store", "file", "--region", "eu-west-1")
    assert result.code == 0, result
    assert "not set up on this host" in result.stderr and "no AWS region" not in result.stderr


def test_the_packaged_configuration_as_installed_is_still_not_set_up(bare_host: dict[str, str]) -> None:
    shipped = str(Path(__file__).resolve().parent.parent / "etc" / "ecr-login.conf")  # all comments
    result = run_ecr_login("--store", "file", "--config", shipped)
    assert result.code == 0, result
    assert f"no registry configured in {shipped}: " in result.stderr and "not set up on this host" in result.stderr
    profiled = run_ecr_login("--store", "file", "--config", shipped, "--region", "eu-west-1", env={
        **os.environ, "AWS_PROFILE": "ci"})  # a profile named: someone set this host up
    assert profiled.code == 78, profiled


def test_credentials_make_failures_failures_again(bare_host: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "standin-secret")
    result = run_ecr_login("--store", "file")
    assert result.code == 78, result  # no region off EC2: set-up, not temporary (#9.4)
    assert "no AWS region: " in result.stderr and "AWS_EC2_METADATA_DISABLED" in result.stderr
    assert "not set up on this host" not in result.stderr


def test_a_registry_makes_failures_failures_again(bare_host: dict[str, str], write_config) -> None:  # type: ignore[no-untyped-def]
    named = run_ecr_login("--store", "file", HOST)
    assert named.code == 78 and "no AWS credentials found" in named.stderr, named
    configured = run_ecr_login("--store", "file", "--config", write_config(f"[{HOST}]\n"))
    assert configured.code == 78 and "no AWS credentials found" in configured.stderr, configured


def test_status_says_what_is_missing_and_the_next_step(bare_host: dict[str, str]) -> None:
    result = run_ecr_login("status", "--store", "file")
    assert result.code == 2, result  # no login: critical for a monitor, as before
    lines = result.stdout.splitlines()
    assert lines[1].startswith("default:instance-region") and " missing " in lines[1]
    assert [line.split(":")[0] for line in lines[2:]] == ["missing", "missing", "missing", "served by", "next"]
    assert lines[2].startswith("missing: no AWS region (this host is not on EC2): set 'region' in [defaults]")
    assert lines[3].startswith("missing: no AWS credentials") and "/etc/default/ecr-login" in lines[3]
    assert lines[4].startswith(f"missing: no registry configured in {DEFAULT_CONFIG} (absent)")
    # Nothing serves this user (root unnamed, or a user without a timer): the next step says so (#17.4).
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert lines[5].startswith("served by: ") and me in lines[5]
    assert lines[6] == (f"next: fix what is missing, then run 'ecr-login' (no timer runs it for {me}); "
                        "see 'ecr-login doctor' for each check and its fix")
    report = json.loads(run_ecr_login("status", "--json", "--store", "file").stdout)
    assert [what.split(" (")[0] for what in report["missing"]][:1] == ["no AWS region"] and len(report["missing"]) == 3


def test_doctor_says_what_is_missing(bare_host: dict[str, str]) -> None:
    result = run_ecr_login("doctor", "--store", "file", "--json")
    checks = {check["check"]: check for check in json.loads(result.stdout)["checks"]}
    assert result.code == 78, result
    assert checks["configuration"]["detail"].startswith(f"no {DEFAULT_CONFIG}: logging in to the caller's own default")
    assert checks["credentials"]["detail"] == "no AWS credentials found"
    assert checks["region"]["status"] == "failed" and "--region" in checks["region"]["fix"]


def test_no_empty_placeholders_in_messages(bare_host: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
    dry = run_ecr_login("--store", "file", "--dry-run")
    assert dry.code == 78, dry
    assert "would fail for the default registry (no region known yet) (file, " in dry.stderr
    logout = run_ecr_login("logout", "--store", "file", "-v")
    assert logout.code == 0, logout
    assert "the default registry (no region known yet): never logged in, nothing to remove" in logout.stderr
    for text in (dry.stderr, logout.stderr):
        assert "()" not in text and " in :" not in text


@pytest.mark.parametrize(("key", "value", "documented"), [
    ("refresh_margin", "13h", "0 to 11h59m"), ("timeout", "2h", "1s to 1h"), ("lock_timeout", "90m", "0 to 1h")])
def test_out_of_range_durations_are_answered_in_the_documentations_units(
        aws_env: dict[str, str], write_config, key: str, value: str, documented: str) -> None:  # type: ignore[no-untyped-def]
    result = run_ecr_login("--config", write_config(f"[defaults]\n{key} = {value}\n"))
    low, high = documented.split(" to ")
    assert result.code == 78, result
    assert result.stderr.rstrip().endswith(f"[defaults] {key}: must be between {low} and {high}"), result
    man = (Path(__file__).resolve().parent.parent / "man" / "ecr-login.8").read_text()
    assert f"{documented})" in man  # the same words as the man page
