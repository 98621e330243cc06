"""The configuration loader: what it accepts, what wins over what, and how it refuses bad input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import errors_of, run_ecr_login

from ecr_login_pkg.config import Overrides, load, parse_duration
from ecr_login_pkg.errors import ConfigError, UsageError

BASE_ENV = {"HOME": "/nonexistent-home", "PATH": "/nonexistent-bin"}


def settings_for(text: str, tmp_path: Path, env: dict[str, str] | None = None, **overrides):  # type: ignore[no-untyped-def]
    path = tmp_path / "ecr-login.conf"
    path.write_text(text)
    return load(Overrides(config_path=str(path), **overrides), dict(BASE_ENV, **(env or {})))


def test_full_configuration(tmp_path: Path) -> None:
    settings = settings_for(
        """
[defaults]
region = eu-west-1
refresh_margin = 4h30m
stores = file, containers
profile = ci
timeout = 90s

[123456789012.dkr.ecr.us-east-1.amazonaws.com]

[prod]
account = 210987654321
role_arn = arn:aws:iam::210987654321:role/ecr-pull
stores = helm

[mirror]
host = https://123456789012.dkr.ecr.eu-central-1.amazonaws.com/
store_as = 127.0.0.1:5000
profile = other
""",
        tmp_path,
    )
    assert settings.refresh_margin == 4.5 * 3600 and settings.timeout == 90
    first, prod, mirror = settings.targets
    assert (first.registry.host, first.region, first.stores, first.profile) == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", ("file", "containers"), "ci")
    assert prod.registry.host == "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    assert prod.role_arn.endswith("role/ecr-pull") and prod.stores == ("helm",)
    assert (mirror.store_as, mirror.profile, mirror.region) == ("127.0.0.1:5000", "other", "eu-central-1")
    assert settings.docker_config_file == "/nonexistent-home/.docker/config.json"


def test_flags_win_over_file_and_environment(tmp_path: Path) -> None:
    settings = settings_for(
        "[defaults]\nstores = file\nprofile = a\n[public.ecr.aws]\n",
        tmp_path,
        env={"AWS_ENDPOINT_URL_ECR_PUBLIC": "http://127.0.0.1:1"},
        profile="b",
        store="containers",
    )
    (target,) = settings.targets
    assert (target.profile, target.stores, target.endpoint_url) == ("b", ("containers",), "http://127.0.0.1:1")


def test_endpoint_variables_for_old_botocore(tmp_path: Path) -> None:
    (target,) = settings_for("[defaults]\nregion = eu-west-1\n", tmp_path, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:2"}).targets
    assert target.endpoint_url == "http://127.0.0.1:2" and target.registry is None
    (target,) = settings_for(
        "[defaults]\nregion = eu-west-1\n", tmp_path,
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:2", "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:3"},
    ).targets
    assert target.endpoint_url == "http://127.0.0.1:3"


def test_zero_config_region_sources(tmp_path: Path) -> None:
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile build]\nregion = ap-south-1\n")
    env = {"AWS_CONFIG_FILE": str(aws_config), "AWS_PROFILE": "build"}
    assert settings_for("", tmp_path, env=env).targets[0].region == "ap-south-1"
    assert settings_for("", tmp_path, env=dict(env, AWS_DEFAULT_REGION="us-west-1")).targets[0].region == "us-west-1"
    both = dict(env, AWS_REGION="eu-north-1", AWS_DEFAULT_REGION="x")
    assert settings_for("", tmp_path, env=both).targets[0].region == "eu-north-1"
    assert settings_for("", tmp_path, env=env, region="ca-central-1").targets[0].region == "ca-central-1"
    # nothing names a region: left empty for EC2 instance metadata, asked only when a token is due
    assert settings_for("", tmp_path).targets[0].region == ""


def test_default_store_follows_the_docker_cli(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert settings_for("[defaults]\nregion = eu-west-1\n", tmp_path).targets[0].stores == ("file",)
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\n")
    docker.chmod(0o755)
    assert settings_for("[defaults]\nregion = eu-west-1\n", tmp_path, env={"PATH": str(bin_dir)}).targets[0].stores == ("docker",)


def test_registry_arguments_select_or_add(tmp_path: Path) -> None:
    text = "[defaults]\nstores = file\n[prod]\naccount = 123456789012\nregion = us-east-1\n[public.ecr.aws]\n"
    chosen = settings_for(text, tmp_path, registries=("prod", "https://222222222222.dkr.ecr.eu-west-1.amazonaws.com")).targets
    assert [t.name for t in chosen] == ["prod", "222222222222.dkr.ecr.eu-west-1.amazonaws.com"]
    with pytest.raises(UsageError, match=r"docker\.io"):
        settings_for(text, tmp_path, registries=("docker.io",))


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[defaults]\nregoin = eu-west-1\n", ": [defaults] regoin", "did you mean 'region'?"),
        ("[defaults]\nstores = dokcer\n", ": [defaults] stores", "did you mean 'docker'?"),
        ("[defaults]\nstore_as = x\n", ": [defaults] store_as", "belongs in a registry section"),
        ("[defaults]\nrefresh_margin = 13h\n", ": [defaults] refresh_margin", "between"),
        ("[defaults]\nrefresh_margin = soon\n", ": [defaults] refresh_margin", "not a duration"),
        ("[defaults]\nregion = europe\n", ": [defaults] region", "not an AWS region"),
        ("[defaults]\nendpoint_url = localhost:4566\n", ": [defaults] endpoint_url", "not a URL"),
        ("[defaults]\ntoken_source = curl\n", ": [defaults] token_source", "must be one of"),
        ("region = x\n", ":1:", "before any [section]"),
        ("[a.b]\n[a.b]\n", ":2:", "appears twice"),
        ("[defaults]\nregion = a\nregion = b\n", ":3:", "set twice"),
        ("[docker.io]\n", ": [docker.io]", "not an ECR registry hostname"),
        ("[x]\naccount = 12345\nregion = us-east-1\n", ": [x] account", "12 digits"),
        ("[x]\nhost = 123456789012.dkr.ecr.us-east-1.amazonaws.com\naccount = 123456789012\n", ": [x] account", "conflicts"),
        ("[x]\nhost = 123456789012.dkr.ecr.us-east-1.amazonaws.com\nregion = eu-west-1\n", ": [x] region", "conflicts"),
        ("[x]\naccount = 123456789012\n", ": [x] region", "is needed"),
        ("[x]\nhost = public.ecr.aws\nrole_arn = admin\n", ": [x] role_arn", "not an IAM role ARN"),
        ("[x]\nhost = public.ecr.aws\nstore_as = http://a b\n", ": [x] store_as", "HOST[:PORT]"),
        ("[x]\nhost = public.ecr.aws\n[y]\nhost = https://public.ecr.aws/\n", ": [y]", "as [x] already does"),
        ("[x]\nhost = public.ecr.aws\nprofle = a\n", ": [x] profle", "did you mean 'profile'?"),
        ("[x]\nhost = public.ecr.aws\nmetrics_file = /x\n", ": [x] metrics_file", "belongs in [defaults]"),
        ("[defaults]\nmetrics_file = relative.prom\n", ": [defaults] metrics_file", "absolute"),
        ("[defaults\n", ":1", "section"),
    ],
)
def test_bad_configuration_is_one_line_with_file_line_key_and_hint(tmp_path: Path, text: str, where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(text, tmp_path, env={"AWS_REGION": "us-east-1"})
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "ecr-login.conf") + where), message
    assert problem in message
    assert "\n" not in message


def test_missing_or_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(Overrides(config_path=str(tmp_path / "nope.conf")), BASE_ENV)
    with pytest.raises(ConfigError, match="is a directory"):
        load(Overrides(config_path=str(tmp_path)), BASE_ENV)
    # the default path may be absent: that is the zero-config case, not an error
    env = dict(BASE_ENV, ECR_LOGIN_CONFIG="", AWS_REGION="us-east-1")
    settings = load(Overrides(), env)
    assert len(settings.targets) == 1


@pytest.mark.parametrize(("text", "seconds"), [("6h", 21600), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("3600", 3600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_endpoint_flag_wins_over_a_sections_own(tmp_path: Path) -> None:
    text = "[defaults]\nstores = file\n[x]\nhost = public.ecr.aws\nendpoint_url = http://127.0.0.1:7\n"
    assert settings_for(text, tmp_path).targets[0].endpoint_url == "http://127.0.0.1:7"
    assert settings_for(text, tmp_path, endpoint_url="http://127.0.0.1:8").targets[0].endpoint_url == "http://127.0.0.1:8"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[defaults]\ntoken_source = awscli\nrole_arn = arn:aws:iam::123456789012:role/r\n",
         ": [defaults] role_arn", "not used by"),
        ("[defaults]\ntoken_source = awscli\n[x]\nhost = public.ecr.aws\nrole_arn = arn:aws:iam::123456789012:role/r\n",
         ": [x] role_arn", "not used by"),
        ("[defaults]\ntoken_source = awscli\nregion = eu-west-1\n", ": [defaults] token_source", "name the registries"),
        ("[defaults]\nendpoint_url = http://a b\n", ": [defaults] endpoint_url", "not a URL"),
        ("[defaults]\nendpoint_url = http://127.0.0.1:99999999\n", ": [defaults] endpoint_url", "not a URL"),
    ],
)
def test_combinations_that_cannot_work_are_refused(tmp_path: Path, text: str, where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(text, tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "ecr-login.conf") + where), caught.value
    assert problem in str(caught.value)


def test_bad_endpoint_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL_ECR \(environment\): .*not a URL"):
        settings_for("[defaults]\nregion = eu-west-1\n", tmp_path, env={"AWS_ENDPOINT_URL_ECR": "http://a b"})
    ok = settings_for("[defaults]\nregion = eu-west-1\n", tmp_path, env={"AWS_ENDPOINT_URL_ECR": "https://[::1]:8443/"})
    assert ok.targets[0].endpoint_url == "https://[::1]:8443/"


def test_relative_metrics_file_flag_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--metrics-file"):
        settings_for("[defaults]\nregion = eu-west-1\n", tmp_path, metrics_file="relative.prom")


def test_lock_timeout_outlasts_a_slow_run_by_default(tmp_path: Path) -> None:
    settings = settings_for("[defaults]\nregion = eu-west-1\n", tmp_path)
    assert settings.lock_timeout > settings.timeout + 60


# --- a FIFO (from test_hostile) ---------------------------------------------------------------------


def test_a_configuration_file_that_is_a_fifo_is_refused_at_once(aws_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fifo = tmp_path / "ecr-login.conf"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = run_ecr_login("--config", str(fifo), "--dry-run", timeout=60)
    assert time.monotonic() - started < 10
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and str(fifo) in errors[0] and "not a regular file" in errors[0], result.stderr
