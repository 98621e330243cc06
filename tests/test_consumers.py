"""Named consumers (``users =``) on this host, with real users: the login step as an unprivileged
service user, the delivery step as root dropping to each build user, status and doctor as each.

Real users are made with useradd for the test (and removed after it), their homes under
/var/tmp, so every permission the kernel checks is real: that is why these tests need root.
They run the program with Debian's /usr/bin/python3 and python3-boto3, as the package does
(the test venv's interpreter lives under /root, which other users cannot read).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool
from local_registry import LocalRegistry, basic_token, build_oci_layout, skopeo_copy, write_auth_file
from standin_ecr import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, StandinECR

pytestmark = [pytest.mark.root]

PYTHON = "/usr/bin/python3"
ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@dataclass
class World:
    """A service user, build users, their homes, a stand-in ECR API and a registry."""

    base: Path
    suffix: str
    ecr: StandinECR
    registry: LocalRegistry
    password: str

    def user(self, role: str) -> str:
        return f"{role}{self.suffix}"

    def home(self, role: str) -> Path:
        return self.base / "home" / self.user(role)

    @property
    def state_dir(self) -> Path:
        return self.base / "service-state"

    @property
    def config(self) -> Path:
        return self.base / "ecr-login.conf"

    def write_config(self, users: str, extra: str = "") -> None:
        self.config.write_text(
            f"[defaults]\nendpoint_url = {self.ecr.url}\nstores = file\nusers = {users}\n"
            f"hooks_dir = {self.base / 'hooks'}\n{extra}"
            f"[app]\nhost = {ECR_HOST}\nstore_as = {self.registry.address}\n"
        )
        self.config.chmod(0o644)

    def run(self, *args: str, user: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``ecr-login ARGS`` as ``user`` (root when None), with a login session's environment."""
        environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(self.base / "src"),
                       "LANG": "C.UTF-8", "ECR_LOGIN_CONFIG": str(self.config), **(env or {})}
        if user is not None:
            environment["HOME"] = str(pwd.getpwnam(user).pw_dir)
            command = ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        else:
            environment["HOME"] = "/root"
            command = ["env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        return subprocess.run([*command, PYTHON, "-m", "ecr_login_pkg", *args], capture_output=True, text=True,
                              timeout=120, check=False, stdin=subprocess.DEVNULL)

    def login_as_service(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("login", *args, user=self.user("svc"), env={
            "STATE_DIRECTORY": str(self.state_dir), "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY, "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"})

    def deliver(self) -> subprocess.CompletedProcess[str]:
        return self.run("deliver", env={"STATE_DIRECTORY": str(self.state_dir)})

    def docker_config(self, role: str) -> Path:
        return self.home(role) / ".docker" / "config.json"


def _useradd(name: str, home: Path, *extra: str) -> None:
    subprocess.run(["useradd", "--home-dir", str(home), "--shell", "/bin/sh", *extra, name], check=True,
                   capture_output=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("needs root (real users are created)")
        pytest.skip("needs root: real users are created (useradd)")
    for tool in ("useradd", "userdel", "runuser", "skopeo"):
        require_tool(tool)
    require_tool(PYTHON)
    suffix = secrets.token_hex(3)
    base = Path("/var/tmp") / f"ecr-login-consumers-{suffix}"
    base.mkdir(mode=0o755)
    (base / "home").mkdir(mode=0o755)
    # The program, where every user can read it (the checkout may live under /root).
    shutil.copytree(REPO_ROOT / "ecr_login_pkg", base / "src" / "ecr_login_pkg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(base / "src", 0o755)
    (base / "hooks").mkdir(mode=0o755)
    made = []
    try:
        for role in ("svc", "builder", "runner"):
            name = f"{role}{suffix}"
            _useradd(name, base / "home" / name, "--create-home", "--user-group")
            made.append(name)
        state = base / "service-state"
        state.mkdir(mode=0o700)
        os.chown(state, pwd.getpwnam(f"svc{suffix}").pw_uid, pwd.getpwnam(f"svc{suffix}").pw_gid)
        password = secrets.token_urlsafe(24)
        with LocalRegistry(password, workdir=tmp_path / "registry") as registry, \
                StandinECR(password=password) as ecr:
            yield World(base, suffix, ecr, registry, password)
    finally:
        for name in made:
            subprocess.run(["userdel", "--force", name], capture_output=True, check=False)
        subprocess.run(["groupdel", f"ci{suffix}"], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _auths(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())["auths"]


def test_the_named_users_get_the_hosts_login_in_their_own_files(world: World, tmp_path: Path) -> None:
    builder, runner = world.user("builder"), world.user("runner")
    # builder already has a login of their own, which must stay.
    world.docker_config("builder").parent.mkdir(mode=0o700)
    world.docker_config("builder").write_text(json.dumps({"auths": {"ghcr.io": {"auth": "Z2hjcjp4"}},
                                                          "psFormat": "table {{.ID}}"}))
    subprocess.run(["chown", "-R", f"{builder}:{builder}", str(world.docker_config("builder").parent)], check=True)
    world.write_config(f"{builder}, {runner}")

    login = world.login_as_service()
    assert login.returncode == 0, login
    assert world.ecr.call_count == 1
    handoff = world.state_dir / "handoff.json"
    assert stat.S_IMODE(handoff.stat().st_mode) == 0o600
    assert handoff.stat().st_uid == pwd.getpwnam(world.user("svc")).pw_uid

    delivered = world.deliver()
    assert delivered.returncode == 0, delivered
    assert world.ecr.call_count == 1, "the delivery step must not ask AWS"
    for role in ("builder", "runner"):
        path = world.docker_config(role)
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (pwd.getpwnam(world.user(role)).pw_uid, 0o600)
        assert path.parent.stat().st_uid == info.st_uid
        auths = _auths(path)
        assert auths[world.registry.address] == {"auth": basic_token(world.password)}
    kept = json.loads(world.docker_config("builder").read_text())
    assert kept["auths"]["ghcr.io"] == {"auth": "Z2hjcjp4"} and kept["psFormat"] == "table {{.ID}}"
    # Nothing of the host's AWS keys reaches a user's file or the journal lines.
    for role in ("builder", "runner"):
        assert DEFAULT_SECRET_ACCESS_KEY not in world.docker_config(role).read_text()
    assert world.password not in delivered.stderr and world.password not in login.stderr

    # The registry takes builder's login: skopeo as builder, with builder's own config only.
    layout = tmp_path / "image"
    build_oci_layout(layout, "v1")
    push_auth = write_auth_file(tmp_path / "push.json", world.registry.address, basic_token(world.password))
    skopeo_copy(f"oci:{layout}:v1", f"docker://{world.registry.address}/team/app:v1", push_auth)
    inspect = subprocess.run(
        ["runuser", "-u", builder, "--", "skopeo", "inspect", "--tls-verify=false", "--authfile",
         str(world.docker_config("builder")), f"docker://{world.registry.address}/team/app:v1"],
        capture_output=True, text=True, check=False, timeout=60)
    assert inspect.returncode == 0, inspect.stderr

    # A second delivery with nothing new writes nothing.
    before = world.docker_config("builder").stat().st_mtime_ns
    again = world.deliver()
    assert again.returncode == 0, again
    assert world.docker_config("builder").stat().st_mtime_ns == before

    # status as builder: builder's logins, and what serves them.
    status = world.run("status", user=builder)
    assert status.returncode == 0, status
    assert world.registry.address in status.stdout and " ok " in status.stdout
    assert "ecr-login.timer" in status.stdout and "'users'" in status.stdout
    # status --all as root: every user's, each row naming its user.
    every = world.run("status", "--all", "--json", env={"STATE_DIRECTORY": str(world.state_dir)})
    assert every.returncode == 0, every.stdout + every.stderr
    rows = json.loads(every.stdout)["registries"]
    assert {(row["user"], row["status"]) for row in rows} == {
        (world.user("svc"), "ok"), (builder, "ok"), (runner, "ok")}


def test_a_missing_user_is_one_line_and_the_others_are_served(world: World) -> None:
    builder, ghost = world.user("builder"), world.user("ghost")
    world.write_config(f"{builder}, {ghost}")
    assert world.login_as_service().returncode == 0
    delivered = world.deliver()
    assert delivered.returncode == 78, delivered
    errors = [line for line in delivered.stderr.splitlines() if ghost in line]
    assert len(errors) == 1, delivered.stderr
    assert f"{world.config}:4: [defaults] users" in errors[0] and "useradd" in errors[0]
    assert world.registry.address in _auths(world.docker_config("builder"))

    every = world.run("status", "--all", env={"STATE_DIRECTORY": str(world.state_dir)})
    assert every.returncode == 2, every
    assert sum(ghost in line for line in every.stdout.splitlines()) == 1
    doctor = world.run("doctor", "--json")
    checks = {check["check"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks[f"user {ghost}"]["status"] == "failed" and "does not exist" in checks[f"user {ghost}"]["detail"]
    assert "useradd" in checks[f"user {ghost}"]["fix"], "doctor gives the fix as its fix, not inside the fact"


def test_a_group_names_its_members(world: World) -> None:
    runner = world.user("runner")
    group = f"ci{world.suffix}"
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["usermod", "-aG", group, runner], check=True)
    world.write_config(f"@{group}")
    assert world.login_as_service().returncode == 0
    assert world.deliver().returncode == 0
    assert world.registry.address in _auths(world.docker_config("runner"))
    assert not world.docker_config("builder").exists()


def test_files_are_written_as_the_user_never_through_a_link_to_elsewhere(world: World) -> None:
    builder = world.user("builder")
    elsewhere = world.base / "root-owned"
    elsewhere.mkdir(mode=0o755)
    (elsewhere / "config.json").write_text('{"auths": {}}')
    os.symlink(elsewhere, world.home("builder") / ".docker")
    world.write_config(builder)
    assert world.login_as_service().returncode == 0
    delivered = world.deliver()
    assert delivered.returncode == 78, delivered
    assert builder in delivered.stderr
    assert (elsewhere / "config.json").read_text() == '{"auths": {}}'
    assert sorted(os.listdir(elsewhere)) == ["config.json"]


def test_hooks_run_once_per_user_as_that_user(world: World) -> None:
    builder, runner = world.user("builder"), world.user("runner")
    record = world.base / "hook-record"
    record.mkdir()
    record.chmod(0o1777)
    hook = world.base / "hooks" / "10-record"
    hook.write_text(f'#!/bin/sh\necho "$(id -un) $ECR_LOGIN_USER $ECR_LOGIN_REGISTRY" >> {record}/$(id -un)\n')
    hook.chmod(0o755)
    world.write_config(f"{builder}, {runner}")
    assert world.login_as_service().returncode == 0
    assert world.deliver().returncode == 0
    for user in (builder, runner):
        assert (record / user).read_text().splitlines() == [f"{user} {user} {world.registry.address}"]
    service = world.user("svc")
    assert (record / service).read_text().splitlines() == [f"{service} {service} {world.registry.address}"]
    # Nothing new: no hook runs again.
    assert world.deliver().returncode == 0
    assert len((record / builder).read_text().splitlines()) == 1


def test_users_added_to_a_running_host_get_the_login_at_the_next_start(world: World) -> None:
    builder, runner = world.user("builder"), world.user("runner")
    world.write_config(builder)
    assert world.login_as_service().returncode == 0 and world.deliver().returncode == 0
    world.write_config(f"{builder}, {runner}")
    # Nothing is due for the service's own store, and the handed login is fresh: no AWS call,
    # the new user gets the same login.
    assert world.login_as_service().returncode == 0
    assert world.ecr.call_count == 1
    assert world.deliver().returncode == 0
    assert world.registry.address in _auths(world.docker_config("runner"))


def test_a_handoff_file_of_another_owner_is_refused(world: World) -> None:
    builder = world.user("builder")
    world.write_config(builder)
    assert world.login_as_service().returncode == 0
    handoff = world.state_dir / "handoff.json"
    os.chown(handoff, pwd.getpwnam(builder).pw_uid, -1)
    delivered = world.deliver()
    assert delivered.returncode == 78, delivered
    assert "handoff.json" in delivered.stderr and "owned by" in delivered.stderr
    assert not world.docker_config("builder").exists()


def test_with_no_users_no_login_is_handed_on(world: World) -> None:
    world.write_config(world.user("builder"))
    assert world.login_as_service().returncode == 0
    assert (world.state_dir / "handoff.json").exists()
    world.config.write_text(world.config.read_text().replace(f"users = {world.user('builder')}\n", ""))
    assert world.login_as_service().returncode == 0
    assert not (world.state_dir / "handoff.json").exists(), "a copy of the login lingered for nobody"
    delivered = world.deliver()
    assert delivered.returncode == 0 and delivered.stderr == ""
    assert not world.docker_config("builder").exists()


def test_deliver_needs_root(world: World) -> None:
    world.write_config(world.user("builder"))
    done = world.run("deliver", user=world.user("builder"))
    assert done.returncode == 64 and "root" in done.stderr


HELPER = """#!/usr/bin/python3
# docker-credential-teststore: the credential-helper protocol, entries in ~/.teststore.json
# (or failing as a keyring without a login session does, when ~/.teststore-locked exists).
import json, os, sys
home = os.path.expanduser("~")
if os.path.exists(os.path.join(home, ".teststore-locked")):
    print("Cannot autolaunch D-Bus without X11 $DISPLAY")
    sys.exit(1)
path = os.path.join(home, ".teststore.json")
entries = json.load(open(path)) if os.path.exists(path) else {}
action, data = sys.argv[1], sys.stdin.read()
if action == "store":
    item = json.loads(data)
    entries[item["ServerURL"]] = {"Username": item["Username"], "Secret": item["Secret"]}
elif action == "get":
    item = entries.get(data.strip())
    if item is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({"ServerURL": data.strip(), **item}))
elif action == "erase":
    entries.pop(data.strip(), None)
elif action == "list":
    print(json.dumps({url: item["Username"] for url, item in entries.items()}))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(entries).encode())
"""


def _builder_uses_a_credential_helper(world: World) -> Path:
    bin_dir = world.base / "bin"
    bin_dir.mkdir(mode=0o755)
    helper = bin_dir / "docker-credential-teststore"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    builder = world.user("builder")
    world.docker_config("builder").parent.mkdir(mode=0o700)
    world.docker_config("builder").write_text(json.dumps({"credsStore": "teststore"}))
    subprocess.run(["chown", "-R", f"{builder}:{builder}", str(world.docker_config("builder").parent)], check=True)
    world.write_config(builder)
    world.config.write_text(world.config.read_text().replace("stores = file", "stores = docker"))
    return bin_dir


def test_a_users_credential_helper_gets_the_login_as_that_user(world: World) -> None:
    require_tool("docker")
    bin_dir = _builder_uses_a_credential_helper(world)
    path = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert world.login_as_service().returncode == 0
    delivered = world.run("deliver", env={"STATE_DIRECTORY": str(world.state_dir), **path})
    assert delivered.returncode == 0, delivered
    kept = world.home("builder") / ".teststore.json"
    assert kept.stat().st_uid == pwd.getpwnam(world.user("builder")).pw_uid
    entries = json.loads(kept.read_text())
    assert entries[world.registry.address]["Secret"] == world.password
    in_file = json.loads(world.docker_config("builder").read_text())
    assert not in_file.get("auths", {}).get(world.registry.address), "the secret went into the file, not the helper"
    status = world.run("status", user=world.user("builder"), env=path)
    assert status.returncode == 0 and " ok " in status.stdout, status


def test_a_credential_helper_that_needs_a_login_session_is_one_clear_status_line(world: World) -> None:
    require_tool("docker")
    bin_dir = _builder_uses_a_credential_helper(world)
    locked = world.home("builder") / ".teststore-locked"
    locked.touch()
    path = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert world.login_as_service().returncode == 0
    delivered = world.run("deliver", env={"STATE_DIRECTORY": str(world.state_dir), **path})
    assert delivered.returncode != 0, delivered
    failed = [line for line in delivered.stderr.splitlines() if world.user("builder") in line and "error" in line]
    assert failed and "teststore" in " ".join(failed), delivered.stderr
    status = world.run("status", user=world.user("builder"), env=path)
    assert status.returncode == 2, status
    row = [line for line in status.stdout.splitlines() if world.registry.address in line]
    assert row and "D-Bus" in row[0], status.stdout


def test_the_metrics_have_a_series_per_user(world: World) -> None:
    builder = world.user("builder")
    metrics = world.base / "metrics"
    metrics.mkdir(mode=0o777)
    metrics.chmod(0o777)
    world.write_config(builder, extra=f"metrics_file = {metrics / 'ecr-login.prom'}\n")
    assert world.login_as_service().returncode == 0
    assert world.deliver().returncode == 0
    text = (metrics / "ecr-login.prom").read_text()
    for user in (world.user("svc"), builder):
        assert re.search(rf'ecr_login_expiry_timestamp_seconds{{registry="{re.escape(world.registry.address)}",'
                         rf'store="file",user="{user}"}} \d+', text), text
    # The login step's own write (nothing due) keeps the users' series.
    assert world.login_as_service().returncode == 0
    assert f'user="{builder}"' in (metrics / "ecr-login.prom").read_text()


def test_a_user_without_a_home_or_with_an_unusable_store_file_is_one_line_each(world: World) -> None:
    builder, runner, homeless = world.user("builder"), world.user("runner"), world.user("homeless")
    _useradd(homeless, world.base / "home" / homeless)  # no --create-home: the home does not exist
    try:
        world.docker_config("builder").parent.mkdir(mode=0o700)
        world.docker_config("builder").write_text("{not json")
        subprocess.run(["chown", "-R", f"{builder}:{builder}", str(world.docker_config("builder").parent)], check=True)
        world.write_config(f"{builder}, {runner}, {homeless}")
        assert world.login_as_service().returncode == 0

        delivered = world.deliver()
        assert delivered.returncode == 78, delivered
        errors = [line for line in delivered.stderr.splitlines() if ": error: " in line]
        assert len(errors) == 2, delivered.stderr
        assert any(f"{world.config}:4: [defaults] users" in e and homeless in e and "mkhomedir_helper" in e
                   for e in errors), errors
        assert any(builder in e and "not valid JSON" in e for e in errors), errors
        assert world.docker_config("builder").read_text() == "{not json", "an unusable file must stay as it was"
        assert world.registry.address in _auths(world.docker_config("runner")), "the other users are still served"

        every = world.run("status", "--all", env={"STATE_DIRECTORY": str(world.state_dir)})
        assert every.returncode == 2, every
        assert sum(homeless in line for line in every.stdout.splitlines()) == 1, every.stdout
        assert [line.split()[3] for line in every.stdout.splitlines() if line.startswith(builder)] == ["store-error"]

        doctor = world.run("doctor", "--json")
        assert doctor.returncode == 78, doctor
        checks = {check["check"]: check for check in json.loads(doctor.stdout)["checks"]}
        assert checks[f"user {homeless}"]["status"] == "failed"
        assert "mkhomedir_helper" in checks[f"user {homeless}"]["fix"], checks[f"user {homeless}"]
        assert checks[f"user {builder}"]["status"] == "failed"
        assert "not valid JSON" in checks[f"user {builder}"]["detail"], checks[f"user {builder}"]
        assert checks["users"]["status"] == "ok" and checks["users"]["detail"].startswith(f"logins handed to {runner} ")
    finally:
        subprocess.run(["userdel", "--force", homeless], capture_output=True, check=False)


def test_a_user_whose_record_cannot_be_read_is_a_doctor_failure_not_ok(world: World) -> None:
    builder, runner = world.user("builder"), world.user("runner")
    world.write_config(f"{builder}, {runner}")
    assert world.login_as_service().returncode == 0 and world.deliver().returncode == 0
    state = world.home("builder") / ".local" / "state" / "ecr-login" / "state.json"
    state.unlink()
    os.mkfifo(state)
    os.chown(state, pwd.getpwnam(builder).pw_uid, pwd.getpwnam(builder).pw_gid)
    doctor = world.run("doctor", "--json")
    assert doctor.returncode == 78, doctor
    checks = {check["check"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks[f"user {builder}"]["status"] == "failed" and "not a regular file" in checks[f"user {builder}"]["detail"]
    assert checks["users"]["detail"].startswith(f"logins handed to {runner} "), checks["users"]
    assert stat.S_ISFIFO(state.lstat().st_mode), "doctor leaves the FIFO as it is"
