"""Unit tests of the docker store (dockercli): which logins go through a credential helper,
how a helper's ``list`` is asked (once, bounded), and what ecr-login writes itself.
Helpers are real executables on a PATH of the test's own; no docker process is needed."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from ecr_login_pkg import dockercli
from ecr_login_pkg.authfile import encode_auth, fingerprint
from ecr_login_pkg.dockercli import DockerCliStore, _final_message
from ecr_login_pkg.errors import EX_CONFIG, ConfigError, EcrLoginError, TemporaryError

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"

HELPER = """
import json, os, sys, time
with open(os.environ["HELPER_LOG"], "a") as log:
    log.write(sys.argv[1] + "\\n")
if sys.argv[1] == "list":
    time.sleep(float(os.environ.get("HELPER_LIST_DELAY", "0")))
    print(json.dumps({"https://%s/" % HOST_A: "AWS", "plain.example": "u"}))
"""


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker_dir = tmp_path / ".docker"
    docker_dir.mkdir(mode=0o700)
    return {"bin": bin_dir, "config": docker_dir / "config.json", "log": tmp_path / "helper.log"}


def install_helper(world: dict[str, Path], name: str) -> Path:
    helper = world["bin"] / f"docker-credential-{name}"
    helper.write_text(f"#!{sys.executable}\nHOST_A = {HOST!r}\n" + HELPER)
    helper.chmod(0o755)
    return helper


def store_for(world: dict[str, Path], config: dict[str, object] | None = None, **environ: str) -> DockerCliStore:
    if config is not None:
        world["config"].write_text(json.dumps(config))
        world["config"].chmod(0o600)
    env = {"PATH": str(world["bin"]), "HELPER_LOG": str(world["log"]), "AWS_SECRET_ACCESS_KEY": "s3cr3t", **environ}
    return DockerCliStore(str(world["config"]), env, lock_timeout=5)


def helper_calls(world: dict[str, Path]) -> list[str]:
    return world["log"].read_text().split() if world["log"].exists() else []


def test_final_message_skips_docker_progress_lines() -> None:
    stderr = 'time="2026" level=info msg="x"\nError response from daemon: Get "http://h/v2/":   unauthorized\n'
    assert _final_message(stderr) == 'Error response from daemon: Get "http://h/v2/": unauthorized'
    assert _final_message("") == "no message"


def test_the_docker_cli_gets_no_aws_credentials_and_this_config_dir(world: dict[str, Path]) -> None:
    store = store_for(world)
    assert "AWS_SECRET_ACCESS_KEY" not in store.environ
    assert store.environ["DOCKER_CONFIG"] == str(world["config"].parent)


def test_without_any_helper_logins_are_written_into_config_json_directly(world: dict[str, Path]) -> None:
    store = store_for(world, {"auths": {"ghcr.io": {"auth": "eA=="}}, "psFormat": "x"})
    assert store._direct([HOST, OTHER]) == [HOST, OTHER]
    result = store.save({HOST: ("AWS", "pw")})  # PATH has no docker: a docker process would fail
    assert result == {HOST: fingerprint(encode_auth("AWS", "pw"))}
    data = json.loads(world["config"].read_text())
    assert data["auths"][HOST] == {"auth": encode_auth("AWS", "pw")} and data["psFormat"] == "x"
    assert store.held(HOST) == result[HOST]
    assert store.remove([HOST, OTHER]) == [HOST]
    assert store.held(HOST) is None


def test_a_helper_docker_would_pick_from_path_sends_every_login_through_docker(world: dict[str, Path]) -> None:
    install_helper(world, "pass")
    assert store_for(world, {"auths": {}})._direct([HOST]) == []


def test_cred_helpers_entry_wins_over_creds_store(world: dict[str, Path]) -> None:
    install_helper(world, "teststore")
    install_helper(world, "other")
    store = store_for(world, {"credsStore": "other", "credHelpers": {HOST: "teststore"}})
    assert store.helper_for(HOST) == "teststore"
    assert store.helper_for(OTHER) == "other"


def test_held_asks_the_helper_list_once_per_run_and_matches_its_urls(world: dict[str, Path]) -> None:
    install_helper(world, "teststore")
    store = store_for(world, {"credsStore": "teststore"})
    assert store.held(HOST) == "helper:teststore"  # listed as https://HOST/
    assert store.held(OTHER) is None
    assert store.held(HOST) == "helper:teststore"
    assert helper_calls(world) == ["list"]


def test_a_slow_helper_list_is_a_temporary_error_within_its_bound(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dockercli, "LIST_TIMEOUT", 0.5)
    install_helper(world, "teststore")
    store = store_for(world, {"credsStore": "teststore"}, HELPER_LIST_DELAY="30")
    started = time.monotonic()
    for address in (HOST, OTHER):
        with pytest.raises(TemporaryError, match=r"docker-credential-teststore list: no answer within 0.5s"):
            store.held(address)
    assert time.monotonic() - started < 5  # asked once for both, and not waited for
    assert helper_calls(world) == ["list"]


def test_a_helper_named_but_not_installed_is_a_configuration_error(world: dict[str, Path]) -> None:
    store = store_for(world, {"auths": {}, "credsStore": "desktop"})
    with pytest.raises(ConfigError) as caught:
        store.held(HOST)
    message = str(caught.value)
    assert caught.value.exit_code == EX_CONFIG
    assert "docker-credential-desktop" in message and '"credsStore"' in message and str(world["config"]) in message
    assert "install it, or remove" in message


def test_a_missing_helper_fails_its_own_registry_only(world: dict[str, Path]) -> None:
    store = store_for(world, {"auths": {}, "credHelpers": {OTHER: "desktop"}})
    result = store.save({HOST: ("AWS", "pw"), OTHER: ("AWS", "pw")})
    assert result[HOST] == fingerprint(encode_auth("AWS", "pw"))
    failure = result[OTHER]
    assert isinstance(failure, EcrLoginError) and failure.exit_code == EX_CONFIG
    assert f'"credHelpers" entry for {OTHER}' in str(failure) and "docker-credential-desktop" in str(failure)
    assert OTHER not in json.loads(world["config"].read_text())["auths"]


# --- a direct write failing beside docker login ------------------------------------------------------


@pytest.mark.docker
def test_a_failed_direct_write_does_not_stop_the_logins_docker_makes(  # type: ignore[no-untyped-def]
    registry, token_password, credential_helper, tmp_path, monkeypatch
) -> None:
    """One docker store, two registries: one behind a credential helper (real `docker login`),
    one written directly. The direct write failing fails that registry only."""
    from conftest import require_tool, use_helper

    from ecr_login_pkg.dockercli import DockerCliStore

    require_tool("docker")
    docker_dir = tmp_path / "docker"
    use_helper(docker_dir, registry.address)
    store = DockerCliStore(str(docker_dir / "config.json"), dict(os.environ), lock_timeout=10)

    def broken_update(logins: dict[str, str | None]) -> dict[str, str]:
        raise ConfigError(f"{docker_dir / 'config.json'}: cannot write: No space left on device")

    monkeypatch.setattr(store.file, "update", broken_update)
    direct = "127.0.0.1:1"  # never contacted: written directly (here: failing to be)
    result = store.save({direct: ("AWS", "direct-password"), registry.address: ("AWS", token_password)})
    assert isinstance(result[direct], ConfigError) and "No space left" in str(result[direct])
    assert result[registry.address] == "helper:teststore"  # docker login ran, the helper holds it
    assert json.loads(credential_helper.read_text())[registry.address]["Secret"] == token_password
