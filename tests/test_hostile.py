"""Hostile conditions (issue 11): other local users' locks and files, missing and slow credential helpers.

Every test drives the real command as a process. Other users are real: ``setpriv`` runs a
process as ``nobody`` (uid 65534), or a file is handed to ``nobody`` with chown, as if that
user had created it. Runs need root (as CI runs them), to switch users.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import child_env, errors_of, file_snapshot, file_store_config, require_tool, run_ecr_login, use_helper

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOBODY = 65534
FOREIGN = {
    "auths": {"ghcr.io": {"auth": base64.b64encode(b"bot:ghp_foreign").decode()}},
    "credHelpers": {"gcr.io": "gcloud"},
}


def needs_root() -> None:
    require_tool("setpriv")
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user (setpriv, chown)")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="ecr-login-hostile-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- #11.3 locks only this user (or root) can take ----------------------------------------


HOLD_EVERYTHING = r"""
import fcntl, os, sys, time
held = []
for directory in sys.argv[1:]:
    for path in [directory] + [os.path.join(directory, name) for name in os.listdir(directory)]:
        try:
            fd = os.open(path, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue
        held.append(path)
print(len(held), flush=True)
time.sleep(120)
"""


@pytest.mark.root
def test_another_user_cannot_hold_the_locks(ecr, aws_env, write_config, public_dir, request) -> None:  # type: ignore[no-untyped-def]
    """nobody flocks every directory and file it can open in the state and credential directories
    (both 0755, as a shared or service directory may be): the refresh must still go through."""
    needs_root()
    state_dir, docker_dir = public_dir / "state", public_dir / "docker"
    for directory in (state_dir, docker_dir):
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
    config = file_store_config(write_config, ecr, "lock_timeout = 1s\n")
    env = child_env(STATE_DIRECTORY=str(state_dir), DOCKER_CONFIG=str(docker_dir))
    first = run_ecr_login("--config", config, env=env)  # creates whatever lock files ecr-login uses
    assert first.code == 0, first
    holder = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3", "-c", HOLD_EVERYTHING,
         str(state_dir), str(docker_dir)],
        stdout=subprocess.PIPE, text=True, cwd="/",
    )
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        assert held >= 2, "nobody could not even open the directories: the test proves nothing"
        started = time.monotonic()
        result = run_ecr_login("--config", config, "--force", env=env)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 0, result
    assert "lock" not in result.stderr
    request.node.user_properties.append(("observed", f"nobody held {held} flocks; the run exit 0 in {took:.1f}s"))


@pytest.mark.root
@pytest.mark.slow
def test_a_held_run_lock_names_the_holder(ecr, aws_env, write_config, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    ecr.script(["delay:4", "ok"])
    config = file_store_config(write_config, ecr, "lock_timeout = 1s\n")
    env = child_env(STATE_DIRECTORY=str(tmp_path / "state"))
    first = subprocess.Popen(
        [sys.executable, "-m", "ecr_login_pkg", "--config", config, "--force"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while ecr.call_count == 0 and time.monotonic() < deadline:  # the first run holds the lock by now
            time.sleep(0.05)
        second = run_ecr_login("--config", config, "--force", env=env)
    finally:
        first.wait(timeout=60)
    assert second.code == 75, second
    errors = errors_of(second)
    assert len(errors) == 1, second.stderr
    user = "root" if os.geteuid() == 0 else str(os.geteuid())
    assert f"PID {first.pid}" in errors[0] and f"user {user}" in errors[0], errors[0]
    request.node.user_properties.append(("observed", errors[0].split(": error: ", 1)[1]))


# --- #11.5 files another user owns ------------------------------------------------------------


@pytest.mark.root
def test_root_refuses_an_auth_file_another_user_created(ecr, aws_env, write_config, public_dir, request) -> None:  # type: ignore[no-untyped-def]
    """REGISTRY_AUTH_FILE in a sticky world-writable directory, created there by nobody."""
    needs_root()
    shared = public_dir / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    auth_file = shared / "auth.json"
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sh", "-c",
                    f"umask 022 && printf '%s' '{json.dumps(FOREIGN)}' > {auth_file}"], check=True, cwd="/")
    assert auth_file.stat().st_uid == NOBODY
    before = file_snapshot(auth_file)
    config = file_store_config(write_config, ecr, stores="containers")
    result = run_ecr_login("--config", config, "--force", env=child_env(REGISTRY_AUTH_FILE=str(auth_file)))
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and str(auth_file) in errors[0] and f"owned by uid {NOBODY}" in errors[0], result.stderr
    assert file_snapshot(auth_file) == before
    assert ecr.password not in auth_file.read_text()
    request.node.user_properties.append(("observed", f"exit 78; {errors[0].split(': error: ', 1)[1]}"))


@pytest.mark.root
def test_a_state_file_another_user_owns_is_refused_untouched(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    needs_root()
    state_dir = tmp_path / "state"
    config = file_store_config(write_config, ecr)
    env = child_env(STATE_DIRECTORY=str(state_dir))
    assert run_ecr_login("--config", config, env=env).code == 0
    state_file = state_dir / "state.json"
    os.chown(state_file, NOBODY, NOBODY)
    before = file_snapshot(state_file)
    result = run_ecr_login("--config", config, "--force", env=env)
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and str(state_file) in errors[0] and f"owned by uid {NOBODY}" in errors[0], result.stderr
    assert file_snapshot(state_file) == before
    assert ecr.call_count == 1  # refused before any AWS call: only the first run's


@pytest.mark.root
def test_metrics_file_another_user_owns_is_refused_in_a_directory_that_stays_usable(  # type: ignore[no-untyped-def]
    ecr, aws_env, write_config, tmp_path, request
) -> None:
    """node_exporter's textfile directory belongs to another user and lets this one write: usable;
    a metrics file in it that the other user owns is not ours to replace."""
    needs_root()
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    os.chown(textfile_dir, NOBODY, NOBODY)
    textfile_dir.chmod(0o777)
    ours = textfile_dir / "ecr-login.prom"
    config = file_store_config(write_config, ecr)
    env = child_env(STATE_DIRECTORY=str(tmp_path / "state"))
    created = run_ecr_login("--config", config, "--metrics-file", str(ours), env=env)
    assert created.code == 0, created
    assert ours.stat().st_uid == os.geteuid() and "ecr_login_last_run_timestamp_seconds" in ours.read_text()
    theirs = textfile_dir / "other.prom"
    theirs.write_text("# node_exporter's own\n")
    os.chown(theirs, NOBODY, NOBODY)
    before = file_snapshot(theirs)
    refused = run_ecr_login("--config", config, "--metrics-file", str(theirs), env=env)
    assert refused.code == 78, refused
    errors = errors_of(refused)
    assert len(errors) == 1 and str(theirs) in errors[0] and f"owned by uid {NOBODY}" in errors[0], refused.stderr
    assert file_snapshot(theirs) == before
    request.node.user_properties.append(("observed", f"own file created (uid {os.geteuid()}); other's: exit 78"))


# --- #11.6 a credential helper that is not installed ----------------------------------------


def test_missing_credential_helper_is_a_configuration_error_before_any_aws_call(ecr, aws_env, write_config, request) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    config_json = docker_dir / "config.json"
    config_json.write_text(json.dumps({"auths": {}, "credsStore": "desktop"}))
    before = file_snapshot(config_json)
    result = run_ecr_login("--config", file_store_config(write_config, ecr, stores="docker"))
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and "docker-credential-desktop" in errors[0] and "credsStore" in errors[0], result.stderr
    assert ecr.call_count == 0  # plan asks the store before anything is fetched
    forced = run_ecr_login("--config", file_store_config(write_config, ecr, stores="docker"), "--force")
    assert forced.code == 78 and ecr.call_count == 0, forced
    assert file_snapshot(config_json) == before
    request.node.user_properties.append(("observed", f"exit 78, {ecr.call_count} calls: {errors[0].split(': error: ', 1)[1]}"))


def test_a_helper_gone_missing_after_a_login_stops_the_run_before_any_aws_call(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = file_store_config(write_config, ecr, stores="docker")
    assert run_ecr_login("--config", config).code == 0  # no helper: config.json written directly
    config_json = Path(aws_env["DOCKER_CONFIG"]) / "config.json"
    data = json.loads(config_json.read_text())
    data["credsStore"] = "desktop"  # copied from Docker Desktop
    config_json.write_text(json.dumps(data))
    before, calls = file_snapshot(config_json), ecr.call_count
    result = run_ecr_login("--config", config)
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and "docker-credential-desktop" in errors[0], result.stderr
    assert ecr.call_count == calls
    assert file_snapshot(config_json) == before


# --- #11.7 a slow credential helper ---------------------------------------------------------

SLOW_LIST = """
import os, sys, time
if sys.argv[1] == "list":
    time.sleep(90)
os.execv(sys.executable, [sys.executable, os.environ["REAL_HELPER"], *sys.argv[1:]])
"""


@pytest.mark.docker
def test_a_slow_credential_helper_list_is_bounded(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, credential_helper, tmp_path, request
) -> None:
    require_tool("docker")
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    alias = registry.address.replace("127.0.0.1", "localhost")
    use_helper(docker_dir, registry.address, alias)
    config = write_config(
        f"[defaults]\nendpoint_url = {ecr.url}\nstores = docker\n"
        f"[one]\nhost = {HOST}\nstore_as = {registry.address}\n[two]\nhost = {HOST}\nstore_as = {alias}\n"
    )
    first = run_ecr_login("--config", config)
    assert first.code == 0, first
    helper = Path(shutil.which("docker-credential-teststore") or "")
    real = tmp_path / "real-helper.py"
    helper.rename(real)
    helper.write_text(f"#!{sys.executable}" + SLOW_LIST)
    helper.chmod(0o755)
    calls = ecr.call_count
    started = time.monotonic()
    result = run_ecr_login("--config", config, env=child_env(REAL_HELPER=str(real)), timeout=300)
    took = time.monotonic() - started
    assert took < 10 + 8, f"a slow `list` held a run with nothing due for {took:.0f}s"
    assert result.code == 75, result
    assert ecr.call_count == calls
    assert "docker-credential-teststore list" in result.stderr
    request.node.user_properties.append(("observed", f"exit 75 in {took:.1f}s, 0 calls"))


# --- #11.7 a clock far off --------------------------------------------------------------------


def test_a_clock_far_off_is_reported_when_a_fresh_token_seems_short_lived(aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    """The host's clock 7 h ahead of AWS's: a fresh 12 h token seems to last 5 h, below the 6 h
    margin, so every run would spend an API call. Emulated from the other side: the stand-in's
    tokens last 5 h by the host's clock."""
    from standin_ecr import StandinECR

    with StandinECR(password=token_password, validity_seconds=5 * 3600) as ecr:
        result = run_ecr_login("--config", file_store_config(write_config, ecr), "--force")
    assert result.code == 0, result
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line and "clock" in line]
    assert len(warnings) == 1, result.stderr
    assert "5h" in warnings[0] and "12h" in warnings[0], warnings[0]


# A configuration file saved by an editor that writes a byte order mark (in test_hostile, not
# test_config: it needs the stand-in ECR and botocore, which the package builds' %check lacks).
def test_a_configuration_file_with_a_byte_order_mark_is_read(ecr, aws_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "ecr-login.conf"
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    config.write_bytes(f"\ufeff[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[{host}]\n".encode())
    result = run_ecr_login("--config", str(config), "--force")
    assert result.code == 0, result
    assert ecr.call_count == 1
