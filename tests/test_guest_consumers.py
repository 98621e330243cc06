"""The build users logged in, on a booted Debian 12 (and 13) guest with the .deb installed.

The story of #17: a Jenkins node whose builds run as ``builder`` (in the docker group,
with a ``ghcr.io`` login of its own). The admin installs the package, names builder in
``users =``, puts the AWS keys in /etc/default/ecr-login, and builder's ``docker pull``
works: through a real Docker daemon (Debian's docker.io, run on the host in a temporary
directory, its socket bound into the guest) and through skopeo with builder's own
config. Also: a named user who does not exist, per-user timers of missing users, a host
served only by per-user instances, and the configuration-management sequence (install,
write the configuration, ``systemctl start``) ten times in a row on Debian 12 and 13.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_tool
from guest import Guest, pristine_tarball
from local_registry import basic_token
from test_boot import deb  # noqa: F401  (a fixture: this tree's .deb)
from test_lifecycle import (  # noqa: F401  (backends is a fixture)
    APT,
    APT_ENV,
    HOST_DOCKER,
    SERVICE_AUTH,
    Backends,
    Steps,
    _is_static_elf,
    _print_timing,
    assert_no_secret,
    backends,
    start_service,
)

pytestmark = [pytest.mark.guest, pytest.mark.slow, pytest.mark.docker]

BUILDER_HOME = "/home/builder"
BUILDER_AUTH = f"{BUILDER_HOME}/.docker/config.json"
GHCR = {"auth": "Z2hjcjp0b2tlbg=="}  # builder's own login elsewhere, which must stay


@pytest.fixture
def docker_daemon(tmp_path: Path) -> Iterator[Path]:
    """Debian's dockerd, fully in a temporary directory; yields the directory of its socket."""
    dockerd = require_tool("dockerd")
    base = Path("/var/tmp") / f"ecr-login-dockerd-{os.urandom(3).hex()}"
    sock_dir = base / "sock"
    sock_dir.mkdir(parents=True)
    log = open(base / "log", "wb")  # noqa: SIM115 -- open for the daemon's whole life, closed below
    process = subprocess.Popen(
        [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
         f"--data-root={base / 'data'}", f"--exec-root={base / 'exec'}", f"-H=unix://{sock_dir / 'd.sock'}",
         f"--pidfile={base / 'pid'}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (sock_dir / "d.sock").exists():
            assert process.poll() is None, (base / "log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dockerd did not come up"
            time.sleep(0.2)
        os.chmod(sock_dir, 0o755)
        os.chmod(sock_dir / "d.sock", 0o666)  # the guest's builder has another uid than any host user
        yield sock_dir
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        subprocess.run(["umount", "-R", str(base / "exec")], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _static_docker() -> str:
    docker = shutil.which("docker") or HOST_DOCKER
    if not _is_static_elf(docker):
        docker = HOST_DOCKER
    if not _is_static_elf(docker):
        require_tool("a statically linked docker CLI (bound into the guest)")
    return str(Path(docker).resolve())


def _conf(users: str) -> str:
    """The quick start's one line (the default registry is the stand-in's: the local registry)."""
    return f"[defaults]\nusers = {users}\n"


def _builder_with_a_login_of_its_own(guest: Guest) -> None:
    guest.run(["groupadd", "--force", "docker"])
    guest.run(["useradd", "--create-home", "--groups", "docker", "builder"])
    guest.run(["install", "-d", "-o", "builder", "-g", "builder", "-m", "0700", f"{BUILDER_HOME}/.docker"])
    guest.write_file(BUILDER_AUTH, json.dumps({"auths": {"ghcr.io": GHCR}}), mode=0o600, owner="builder:builder")


def _builder_auth(guest: Guest) -> dict[str, object]:
    return json.loads(guest.read_file(BUILDER_AUTH))["auths"]


def test_the_jenkins_quick_start_gets_builder_pulling(
    deb: Path, backends: Backends, docker_daemon: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    step = Steps()
    binds = {deb.parent: "/srv/current", _static_docker(): HOST_DOCKER}
    with Guest(bind_ro=binds, bind={docker_daemon: "/srv/docker"}) as guest:
        with step("install the package; builder, in the docker group, has a ghcr.io login"):
            guest.run(["apt-get", "-q", "update"], timeout=300)
            guest.run([*APT, "install", f"/srv/current/{deb.name}"], env=APT_ENV, timeout=600)
            _builder_with_a_login_of_its_own(guest)

        with step("only per-user instances: the system service does not fail every 15 minutes"):
            guest.write_file("/etc/default/ecr-login@builder", backends.environment_file(), mode=0o600)
            guest.run(["systemctl", "enable", "ecr-login@builder.timer"])
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert "ecr-login@builder.timer" in journal, journal
            guest.run(["systemctl", "disable", "--now", "ecr-login@builder.timer"])
            guest.run(["rm", "/etc/default/ecr-login@builder"])
            guest.run(["rm", "-rf", f"{BUILDER_HOME}/.local"])
            guest.write_file(BUILDER_AUTH, json.dumps({"auths": {"ghcr.io": GHCR}}), mode=0o600, owner="builder:builder")

        with step("the quick start's two edits, then systemctl start"):
            guest.write_file("/etc/ecr-login/ecr-login.conf", _conf("builder"))
            guest.write_file("/etc/default/ecr-login", backends.environment_file(), mode=0o600)
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"

        with step("builder's own file: the login, the ghcr.io entry kept, builder's 0600"):
            auths = _builder_auth(guest)
            assert auths[backends.registry.address] == {"auth": basic_token(backends.password)}, auths
            assert auths["ghcr.io"] == GHCR
            assert guest.run(["stat", "-c", "%a %U %G", BUILDER_AUTH]).stdout.split() == ["600", "builder", "builder"]
            assert guest.run(["stat", "-c", "%U", f"{BUILDER_HOME}/.docker"]).stdout.strip() == "builder"
            assert backends.secret_key not in guest.read_file(BUILDER_AUTH)

        with step("builder's docker pull through a real Docker daemon"):
            env = {"DOCKER_HOST": "unix:///srv/docker/d.sock"}
            pulled = guest.run(["docker", "pull", backends.image], user="builder", env=env, check=False, timeout=180)
            assert pulled.returncode == 0, f"{pulled.stdout}\n{pulled.stderr}"
            assert backends.image_digest in pulled.stdout
            guest.run(["docker", "rmi", backends.image], user="builder", env=env, check=False)

        with step("skopeo as builder, with builder's config only"):
            inspected = guest.run(["skopeo", "inspect", "--tls-verify=false", "--authfile", BUILDER_AUTH,
                                   f"docker://{backends.image}"], user="builder")
            assert json.loads(inspected.stdout)["Digest"] == backends.image_digest

        with step("status as builder, and every user's as root"):
            status = guest.run(["ecr-login", "status"], user="builder")
            assert re.search(rf"{re.escape(backends.registry.address)}\s+docker\s+ok", status.stdout), status.stdout
            assert "kept by ecr-login.timer" in status.stdout, status.stdout
            every = json.loads(guest.run(["ecr-login", "status", "--all", "--json"]).stdout)
            assert {(row["user"], row["status"]) for row in every["registries"]} == {("ecr-login", "ok"), ("builder", "ok")}
            assert every["exit_code"] == 0

        with step("a named user who does not exist: one line, builder still served, 78"):
            guest.run(["ecr-login", "logout"], user="builder")  # builder's login gone: the next run must serve it
            assert backends.registry.address not in _builder_auth(guest)
            guest.write_file("/etc/ecr-login/ecr-login.conf", _conf("builder, ghost"))
            invocation = guest.systemctl_show("ecr-login.service", "InvocationID")["InvocationID"]
            shown = start_service(guest, "ecr-login.service")
            assert shown["InvocationID"] != invocation
            journal = guest.run(["journalctl", "--no-pager", "-o", "cat", f"_SYSTEMD_INVOCATION_ID={shown['InvocationID']}"]).stdout
            assert shown["Result"] == "exit-code", f"{shown}\n{journal}"
            ghost_lines = [line for line in journal.splitlines() if "'ghost'" in line]
            assert len(ghost_lines) == 1 and "/etc/ecr-login/ecr-login.conf:2: [defaults] users" in ghost_lines[0], journal
            assert "status=78" in guest.journal("ecr-login.service")
            assert _builder_auth(guest)[backends.registry.address] == {"auth": basic_token(backends.password)}
            every = guest.run(["ecr-login", "status", "--all"], check=False)
            assert every.returncode == 2 and sum("'ghost'" in line for line in every.stdout.splitlines()) == 1, every.stdout
            doctor = json.loads(guest.run(["ecr-login", "doctor", "--json"], check=False).stdout)
            assert any(check["check"] == "user ghost" and check["status"] == "failed" for check in doctor["checks"])

        with step("a per-user timer for a user that does not exist is reported by root's status and doctor"):
            guest.write_file("/etc/ecr-login/ecr-login.conf", _conf("builder"))
            guest.run(["systemctl", "enable", "ecr-login@jenkins.timer"])
            status = guest.run(["ecr-login", "status", "--all"], check=False)
            assert status.returncode == 2 and "ecr-login@jenkins.timer is enabled, but user 'jenkins' does not exist" \
                in status.stdout, status.stdout
            doctor = guest.run(["ecr-login", "doctor"], check=False)
            assert "FAIL  per-user timer: ecr-login@jenkins.timer" in doctor.stdout, doctor.stdout
            guest.run(["systemctl", "disable", "ecr-login@jenkins.timer"])

        with step("no secret in the journal, nor the host's keys in a user's file"):
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
            assert backends.access_key not in guest.read_file(BUILDER_AUTH)
            assert guest.run(["stat", "-c", "%a %U", SERVICE_AUTH]).stdout.split() == ["600", "ecr-login"]
    _print_timing(capsys, step.report("the build users' quick start"))
    step.check_soft()


def _configuration_management(guest: Guest, package: Path, standins: Backends, rounds: int) -> list[str]:
    """Install, write the configuration, systemctl start: ``rounds`` times; what failed, per round."""
    failures = []
    _builder_with_a_login_of_its_own(guest)
    for number in range(1, rounds + 1):
        guest.run([*APT, "purge", "ecr-login"], env=APT_ENV, timeout=300, check=False)
        guest.run(["rm", "-rf", f"{BUILDER_HOME}/.local"])
        guest.write_file(BUILDER_AUTH, json.dumps({"auths": {"ghcr.io": GHCR}}), mode=0o600, owner="builder:builder")
        # What an Ansible play or a provisioning script does, as fast as it can.
        guest.run([*APT, "install", f"/srv/current/{package.name}"], env=APT_ENV, timeout=600)
        guest.write_file("/etc/ecr-login/ecr-login.conf", _conf("builder"))
        guest.write_file("/etc/default/ecr-login", standins.environment_file(), mode=0o600)
        guest.run(["systemctl", "start", "ecr-login.service"], check=False, timeout=180)
        # When that command has returned, builder's login is there.
        auths = _builder_auth(guest)
        if auths.get(standins.registry.address) != {"auth": basic_token(standins.password)}:
            failures.append(f"round {number}: no login for builder: {sorted(auths)}\n"
                            + guest.journal("ecr-login.service")[-2000:])
    return failures


def test_configuration_management_ends_with_a_login_every_time_debian12(
    deb: Path, backends: Backends, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    started = time.monotonic()
    with Guest(bind_ro={deb.parent: "/srv/current"}) as guest:
        guest.run(["apt-get", "-q", "update"], timeout=300)
        failures = _configuration_management(guest, deb, backends, rounds=10)
    _print_timing(capsys, f"configuration management x10 on Debian 12: {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)


def test_configuration_management_ends_with_a_login_every_time_debian13(
    deb: Path, backends: Backends, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    # Debian 13's systemd runs on cgroup v2 only (NOTES-real-systemd.md): a unified hierarchy for nspawn.
    monkeypatch.setenv("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
    tarball = pristine_tarball(suite="trixie")
    started = time.monotonic()
    with Guest(bind_ro={deb.parent: "/srv/current"}, tarball=tarball) as guest:
        guest.run(["apt-get", "-q", "update"], timeout=300)
        failures = _configuration_management(guest, deb, backends, rounds=10)
    _print_timing(capsys, f"configuration management x10 on Debian 13: {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)
