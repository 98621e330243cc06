"""Faults: AWS, the network, the docker CLI, the registry and the disk misbehave; no stored login is lost.

Every test drives the real command (real boto3 over HTTP to the stand-in ECR,
the real docker CLI and docker-registry where a store needs them) against a
docker ``config.json`` seeded with foreign entries and an older ecr-login login.
A failure must leave that file byte-for-byte as it was; a success must keep
every foreign entry. Times are measured only to prove the total deadline holds
(``timeout = 5s``); the bounds are generous, this is behaviour not speed.

Network faults stay on this machine: a closed loopback port, and a private
network namespace (``unshare --net``) for "no network yet" and DNS failure, so
not even a DNS query leaves the host.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, CliResult, require_tool, run_ecr_login, use_helper
from standin_ecr import StandinECR
from test_secrets import no_password_in_any_process  # noqa: F401  (a fixture, used by pytestmark)

from ecr_login_pkg.fsutil import lock_file_path

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EU_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
AP_HOST = "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com"
OLD_AUTH = base64.b64encode(b"AWS:old-password-from-yesterday").decode()
DEADLINE = 5.0  # the `timeout` of every configuration here
SLACK = 15.0  # interpreter start-up and boto3 import on a loaded 2-core CI machine


def foreign_config(*our_addresses: str) -> dict:  # type: ignore[type-arg]
    """A docker config.json as a build host has it: other tools' logins and settings, and our older logins."""
    auths: dict[str, dict[str, str]] = {
        "ghcr.io": {"auth": base64.b64encode(b"bot:ghp_foreign").decode()},
        "registry.example.org:5000": {"auth": base64.b64encode(b"ci:foreign").decode(), "email": "ci@example.org"},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:foreign").decode()},
    }
    for address in our_addresses:
        auths[address] = {"auth": OLD_AUTH}
    return {
        "auths": auths,
        "credHelpers": {"gcr.io": "gcloud", "123456789012.dkr.ecr.sa-east-1.amazonaws.com": "ecr-login"},
        "psFormat": "table {{.ID}}\\t{{.Names}}",
        "HttpHeaders": {"User-Agent": "build-host"},
        "experimental": "enabled",
    }


@dataclass
class World:
    env: dict[str, str]
    docker_dir: Path
    config: str
    seeded: bytes = b""
    facts: list[str] = field(default_factory=list)  # what the run showed, for docs/reliability.md (junit property)

    def note(self, result: CliResult, elapsed: float | None = None, calls: int | None = None) -> None:
        parts = [f"exit {result.code}"]
        if elapsed is not None:
            parts.append(f"{elapsed:.1f}s")
        if calls is not None:
            parts.append(f"{calls} AWS call(s)")
        retries = result.stderr.count("retrying in")
        if retries:
            parts.append(f"{retries} retries")
        errors = error_lines(result.stderr)
        if errors:
            message = errors[0].split(": error: ", 1)[1]
            parts.append(f"error: {re.sub(r'/tmp/[^ ,)]*/', '.../', message)}")
        self.facts.append("; ".join(parts))

    @property
    def config_json(self) -> Path:
        return self.docker_dir / "config.json"

    def seed(self, *our_addresses: str) -> bytes:
        self.docker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # indent and key order unlike ours, so any rewrite shows in a byte comparison
        self.seeded = json.dumps(foreign_config(*our_addresses), indent=4).encode() + b"\n"
        self.config_json.write_bytes(self.seeded)
        self.config_json.chmod(0o600)
        return self.seeded

    def temp_files(self) -> list[str]:
        return sorted(name for name in os.listdir(self.docker_dir) if name.startswith(".ecr-login-"))

    def assert_untouched(self) -> None:
        assert self.config_json.read_bytes() == self.seeded, "a failed run changed config.json"
        assert self.temp_files() == []
        self.facts.append("config.json byte-identical, no temp file")

    def auths(self) -> dict[str, dict[str, str]]:
        return json.loads(self.config_json.read_text())["auths"]  # type: ignore[no-any-return]

    def assert_foreign_kept(self, *our_addresses: str) -> None:
        """Every foreign login kept, and every other key of the file."""
        now = json.loads(self.config_json.read_text())
        before = json.loads(self.seeded)
        for address, entry in before["auths"].items():
            if address not in our_addresses:
                assert now["auths"][address] == entry
        assert {k: v for k, v in now.items() if k != "auths"} == {k: v for k, v in before.items() if k != "auths"}
        self.facts.append("foreign entries kept")


@pytest.fixture
def world(aws_env: dict[str, str], request) -> Iterator[World]:  # type: ignore[no-untyped-def]
    made = World(env=dict(os.environ), docker_dir=Path(aws_env["DOCKER_CONFIG"]), config="")
    yield made
    request.node.user_properties.append(("observed", " | ".join(made.facts)))  # in --junitxml output


def configure(world: World, write_config, endpoint: str, body: str, stores: str = "file") -> str:  # type: ignore[no-untyped-def]
    world.config = write_config(f"[defaults]\nendpoint_url = {endpoint}\nstores = {stores}\ntimeout = {DEADLINE:g}s\n{body}")
    return world.config


def timed(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> tuple[CliResult, float]:
    started = time.monotonic()
    if prefix:
        environment = dict(os.environ if env is None else env, PYTHONPATH=str(REPO_ROOT))
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "ecr_login_pkg", *args],
            capture_output=True, text=True, env=environment, timeout=120, stdin=subprocess.DEVNULL, check=False,
        )
        result = CliResult(done.returncode, done.stdout, done.stderr)
    else:
        result = run_ecr_login(*args, env=env)
    return result, time.monotonic() - started


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line]


def closed_port() -> int:
    """A loopback port nobody listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def netns_prefix() -> tuple[str, ...]:
    """Run in a fresh network namespace: only a down loopback, nothing reaches out."""
    require_tool("unshare")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        reason = f"cannot create a network namespace: {probe.stderr.decode().strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return ("unshare", "--net", "--")


# The /proc sampler from the secrets suite watches every test here.
pytestmark = pytest.mark.usefixtures("no_password_in_any_process")


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["503", "throttle", "500", "close"])
@pytest.mark.slow
def test_transient_failures_are_retried_in_the_same_run(ecr, world, write_config, fault) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST)
    ecr.script([fault, fault, "ok"])
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force")
    world.note(result, elapsed, calls=ecr.call_count)
    assert result.code == 0, result
    assert ecr.call_count == 3
    assert [call.behaviour for call in ecr.calls] == [fault, fault, "ok"]
    assert result.stderr.count("retrying in") == 2
    assert world.auths()[HOST]["auth"] == ecr.token()
    world.assert_foreign_kept(HOST)
    assert world.temp_files() == []
    assert elapsed < DEADLINE + SLACK


@pytest.mark.slow
def test_persistent_5xx_gives_up_at_the_deadline(ecr, world, write_config) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST)
    ecr.script(["503"] * 100)
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force")
    world.note(result, elapsed, calls=ecr.call_count)
    assert result.code == 75, result
    assert 2 <= ecr.call_count < 20, "bounded retries, not a storm"
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "ServiceUnavailableException" in errors[0] and "gave up after" in errors[0]
    assert elapsed < DEADLINE + SLACK
    world.assert_untouched()


# --- the network -------------------------------------------------------------------------------


@pytest.mark.slow
def test_connection_refused_is_temporary(world, write_config) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST)
    configure(world, write_config, f"http://127.0.0.1:{closed_port()}", f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force")
    world.note(result, elapsed)
    assert result.code == 75, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "Could not connect" in errors[0] and "gave up after" in errors[0]
    assert elapsed < DEADLINE + SLACK
    world.assert_untouched()


@pytest.mark.netns
def test_dns_failure_is_temporary(world, write_config) -> None:  # type: ignore[no-untyped-def]
    prefix = netns_prefix()  # the resolver is unreachable in here: resolution fails locally
    world.seed(HOST)
    configure(world, write_config, "http://does-not-exist.invalid:9", f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force", prefix=prefix)
    world.note(result, elapsed)
    assert result.code == 75, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "does-not-exist.invalid" in errors[0]
    assert elapsed < DEADLINE + SLACK
    world.assert_untouched()


@pytest.mark.netns
def test_network_not_up_yet_at_boot_is_temporary(ecr, world, write_config) -> None:  # type: ignore[no-untyped-def]
    prefix = netns_prefix()  # not even loopback is up, as early in boot
    world.seed(HOST)
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force", prefix=prefix)
    world.note(result, elapsed, calls=ecr.call_count)
    assert result.code == 75, result
    assert ecr.call_count == 0
    assert len(error_lines(result.stderr)) == 1 and "Could not connect" in result.stderr
    assert elapsed < DEADLINE + SLACK
    world.assert_untouched()
    # the network comes up: the next timer tick succeeds
    again = run_ecr_login("--config", world.config)
    assert again.code == 0, again
    assert world.auths()[HOST]["auth"] == ecr.token()


@pytest.mark.slow
def test_read_timeout_from_a_server_that_never_answers(ecr, world, write_config) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST)
    ecr.script(["hang"] * 10)
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force")
    world.note(result, elapsed, calls=ecr.call_count)
    assert result.code == 75, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "timeout" in errors[0].lower()
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + SLACK, elapsed
    world.assert_untouched()


# --- AWS says no ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "code_name"), [("denied", "AccessDeniedException"), ("expired_creds", "ExpiredTokenException")])
@pytest.mark.slow
def test_denied_fails_at_once_without_retries(ecr, world, write_config, fault, code_name) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST)
    ecr.script([fault] * 5)
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    result = run_ecr_login("--config", world.config, "--force", "-v")
    world.note(result, calls=ecr.call_count)
    assert result.code == 77, result
    assert ecr.call_count == 1, "no retry storm on a refusal"
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and code_name in errors[0] and HOST in errors[0]
    assert "retrying" not in result.stderr
    world.assert_untouched()


MALFORMED = {
    "not_json": "not JSON, or cut short",
    "html": "text/html, not the ECR API's JSON",
    "bad_base64": "not base64",
    "no_aws_prefix": "lacks the 'AWS:' user prefix",
    "expired": "already in the past",
    "empty": "no authorizationData",
}


@pytest.mark.parametrize("fault", sorted(MALFORMED))
@pytest.mark.slow
def test_malformed_answers_write_nothing(ecr, world, write_config, fault) -> None:  # type: ignore[no-untyped-def]
    ecr.script([fault] * 4)
    configure(world, write_config, ecr.url, f"[{HOST}]\n")
    # a fresh user: not even the docker directory appears
    fresh = run_ecr_login("--config", world.config)
    assert fresh.code == 65, fresh
    assert not world.docker_dir.exists()
    # a user with logins: config.json stays byte-for-byte
    world.seed(HOST)
    result = run_ecr_login("--config", world.config, "--force")
    world.note(result, calls=ecr.call_count)
    assert result.code == 65, result
    assert ecr.call_count == 2, "a malformed answer is not retried"
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and MALFORMED[fault] in errors[0] and "GetAuthorizationToken" in errors[0]
    world.assert_untouched()


@pytest.mark.parametrize(("fault", "code"), [("denied", 77), ("503", 75), ("bad_base64", 65), ("hang", 75)])
@pytest.mark.slow
def test_one_failing_region_does_not_stop_the_others(ecr, world, write_config, fault, code) -> None:  # type: ignore[no-untyped-def]
    world.seed(HOST, EU_HOST, AP_HOST)
    old_eu = world.auths()[EU_HOST]
    ecr.script([fault] * 100, region="eu-west-1")
    configure(world, write_config, ecr.url, f"[{HOST}]\n[{EU_HOST}]\n[{AP_HOST}]\n")
    result, elapsed = timed("--config", world.config, "--force")
    world.note(result, elapsed, calls=ecr.call_count)
    assert result.code == code, result
    auths = world.auths()
    assert auths[HOST]["auth"] == ecr.token() and auths[AP_HOST]["auth"] == ecr.token()
    assert auths[EU_HOST] == old_eu, "the failing region's stored login must survive"
    world.assert_foreign_kept(HOST, AP_HOST)
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and EU_HOST in errors[0]
    assert "2 login(s) refreshed" in result.stderr and "1 failed" in result.stderr
    assert elapsed < DEADLINE + SLACK
    status = run_ecr_login("status", "--config", world.config, "--json")
    rows = {row["registry"]: row for row in json.loads(status.stdout)["registries"]}
    assert rows[EU_HOST]["last_error"] and not rows[HOST]["last_error"]


# --- stores: the docker CLI, the registry, the disk -----------------------------------------------------


def docker_world(world: World, write_config, ecr_url: str, address: str, through_cli: bool = True) -> None:  # type: ignore[no-untyped-def]
    """The docker store for ``address``; ``through_cli``: with a credential helper named for it in
    config.json, so that `docker login` runs (without one, ecr-login writes config.json itself).
    The helper must be installed (the ``credential_helper`` fixture, set up before ``world``): a
    helper named but missing is refused before `docker login`. It is never reached in these
    tests: each fails in `docker login` before it stores."""
    world.seed(address)
    if through_cli:
        use_helper(world.docker_dir, address)
        world.seeded = world.config_json.read_bytes()
    configure(world, write_config, ecr_url, f"[{HOST}]\nstore_as = {address}\n", stores="docker")


def test_docker_cli_missing_mid_run(ecr, credential_helper, world, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    docker_world(world, write_config, ecr.url, "127.0.0.1:5999")
    bin_dir = tmp_path / "bin-without-docker"
    bin_dir.mkdir()
    env = dict(world.env, PATH=f"{bin_dir}:{tmp_path / 'helper-bin'}")  # its own PATH: a docker in /usr/bin stays out
    for candidate in env["PATH"].split(":"):
        assert not Path(candidate, "docker").exists(), "this test needs a PATH without docker"
    result = run_ecr_login("--config", world.config, "--force", env=env)
    world.note(result, calls=ecr.call_count)
    assert result.code == 78, result
    assert ecr.call_count == 1  # the token came; storing it is what failed
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "docker CLI is not on PATH" in errors[0]
    world.assert_untouched()


@pytest.mark.docker
def test_docker_cli_failing_to_reach_the_registry(ecr, credential_helper, world, write_config) -> None:  # type: ignore[no-untyped-def]
    require_tool("docker")
    docker_world(world, write_config, ecr.url, f"127.0.0.1:{closed_port()}")
    result = run_ecr_login("--config", world.config, "--force")
    world.note(result, calls=ecr.call_count)
    assert result.code == 75, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "docker login" in errors[0]
    assert ecr.password not in result.output
    world.assert_untouched()


@pytest.mark.docker
def test_registry_refusing_the_login(credential_helper, world, write_config, registry) -> None:  # type: ignore[no-untyped-def]
    require_tool("docker")
    with StandinECR(password="a-password-the-registry-does-not-know") as wrong:
        docker_world(world, write_config, wrong.url, registry.address)
        result = run_ecr_login("--config", world.config, "--force")
        world.note(result)
    assert result.code == 77, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "refused" in errors[0] and registry.address in errors[0]
    assert "a-password-the-registry-does-not-know" not in result.output
    world.assert_untouched()


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A 64 KiB tmpfs, filled to the last byte."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = Path(tempfile.mkdtemp(prefix="ecr-login-full-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        shutil.rmtree(mountpoint, ignore_errors=True)
        reason = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        shutil.rmtree(mountpoint, ignore_errors=True)


def fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("store", ["file", "docker"])
@pytest.mark.docker
def test_full_disk_while_writing(ecr, world, write_config, full_disk, store, request) -> None:  # type: ignore[no-untyped-def]
    world.docker_dir = full_disk / "docker"
    env = dict(world.env, DOCKER_CONFIG=str(world.docker_dir))
    if store == "docker":
        require_tool("docker")
        address = request.getfixturevalue("registry").address
        docker_world(world, write_config, ecr.url, address, through_cli=False)
    else:
        world.seed(HOST)
        configure(world, write_config, ecr.url, f"[{HOST}]\n")
    fill(full_disk)
    result = run_ecr_login("--config", world.config, "--force", env=env)
    world.note(result, calls=ecr.call_count)
    assert result.code == 75, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "no space left" in errors[0].lower()
    assert ecr.password not in result.output
    world.assert_untouched()
    lock_file = os.path.basename(lock_file_path(str(world.docker_dir)))  # ecr-login's lock: kept, empty
    left = sorted(name for name in os.listdir(world.docker_dir) if name != lock_file)
    assert left == ["config.json"], "no temp file of ours or docker's is left"
    # space comes back: the next run stores the login
    (full_disk / "filler").unlink()
    again = run_ecr_login("--config", world.config, env=env)
    assert again.code == 0, again
    if store == "file":
        world.assert_foreign_kept(HOST)
    else:  # written by ecr-login itself (no helper): every foreign key kept, as with the file store
        world.assert_foreign_kept(address)
