"""Robustness of the file primitives, the state, the metrics, logout and the auth-file writer.

Each test here pins down a bug a code review found (and that once made a run hang
until the lock timeout, or crash with exit 70 and a traceback):

- the run lock and the credential-file lock on one directory (the store file kept in
  the state directory) deadlocked the run against itself;
- unusable paths (a parent that is a file, no permission, a directory where
  ``state.json`` belongs) raised raw OSErrors;
- a state file of valid JSON but wrong types crashed refresh, status and metrics, and a
  ``null`` default registry stored a password under ``auths["None"]``;
- the metrics repeated a series per location, and kept stale ``default:`` placeholders;
- logout removed logins ecr-login never wrote;
- the auth file was checked twice per update.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import run_ecr_login

from ecr_login_pkg import fsutil
from ecr_login_pkg.authfile import AuthFile, encode_auth, fingerprint
from ecr_login_pkg.errors import ConfigError, TemporaryError
from ecr_login_pkg.fsutil import DirLock, ensure_private_dir, read_text_nofollow
from ecr_login_pkg.metrics import render, write_metrics
from ecr_login_pkg.state import State

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOBODY = 65534

ME = pwd.getpwuid(os.geteuid()).pw_name  # the user label of the metrics


def file_config(ecr_url: str, extra: str = "") -> str:
    return f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\nlock_timeout = 3\n{extra}[{HOST}]\n"


def auths(docker_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((docker_dir / "config.json").read_text())["auths"]  # type: ignore[no-any-return]


def no_traceback(result) -> None:  # type: ignore[no-untyped-def]
    assert result.code != 70 and "Traceback" not in result.stderr, result


# --- 1. the run lock and the credential-file lock on one directory ---------------------------------


def test_store_file_in_the_state_directory_does_not_deadlock(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "var-lib-ecr-login"
    env = dict(os.environ, STATE_DIRECTORY=str(shared), DOCKER_CONFIG=str(shared))
    config = write_config(file_config(ecr.url))
    started = time.monotonic()
    result = run_ecr_login("--config", config, env=env)
    assert result.code == 0, result
    assert time.monotonic() - started < 3, "waited for its own lock"
    assert HOST in auths(shared) and (shared / "state.json").exists()
    assert "waiting" not in result.stderr


def test_docker_config_setting_pointing_at_the_state_directory_does_not_deadlock(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "state"
    env = dict(os.environ, STATE_DIRECTORY=str(shared))
    config = write_config(file_config(ecr.url, f"docker_config = {shared}\n"))
    result = run_ecr_login("--config", config, "--force", env=env)
    assert result.code == 0, result
    assert HOST in auths(shared)
    logout = run_ecr_login("logout", "--config", config, env=env)
    assert logout.code == 0, logout
    assert HOST not in auths(shared)


def other_process_can_lock(directory: Path) -> bool:
    """Another process of this user tries the directory's lock (this user's lock file in it)."""
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, fsutil.lock_file_path(str(directory))], check=False).returncode == 0


def test_dir_lock_is_reentrant_in_the_process_and_exclusive_across_processes(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(directory)  # another path to the same directory: the same lock
    outer = DirLock(str(directory), 1, "run")
    with outer:
        assert not other_process_can_lock(directory)
        started = time.monotonic()
        with DirLock(str(alias), 1, "credential file"), DirLock(str(directory) + "/", 1, "credential file"):
            assert not other_process_can_lock(directory)
        assert time.monotonic() - started < 0.5
        assert not other_process_can_lock(directory), "an inner exit released the outer hold"
    assert other_process_can_lock(directory)
    assert fsutil._HELD == {}


def test_dir_lock_still_waits_for_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\ntime.sleep(30)\n", fsutil.lock_file_path(str(tmp_path))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waits: list[str] = []
        with pytest.raises(TemporaryError, match="another ecr-login run has held the run lock"), \
                DirLock(str(tmp_path), 0.3, "run", waits.append):
            pass
        assert len(waits) == 1
        assert fsutil._HELD == {}
    finally:
        holder.kill()
        holder.wait()
    with DirLock(str(tmp_path), 1, "run"):
        pass


def test_dir_lock_is_shared_by_the_threads_of_one_process(tmp_path: Path) -> None:
    import threading

    entered = threading.Event()
    with DirLock(str(tmp_path), 1, "run"):
        def worker() -> None:
            with DirLock(str(tmp_path), 1, "credential file"):
                entered.set()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(5)
        assert entered.is_set()
        assert not other_process_can_lock(tmp_path)
    assert other_process_can_lock(tmp_path)


# --- 2. unusable paths: a ConfigError naming the path, never a traceback -------------------------------


def test_docker_config_under_a_regular_file_is_a_config_error(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = dict(os.environ, DOCKER_CONFIG=str(blocker / "docker"))
    result = run_ecr_login("--config", write_config(file_config(ecr.url)), env=env)
    no_traceback(result)
    assert result.code == 78, result
    assert str(blocker / "docker") in result.stderr and "not a directory" in result.stderr
    assert blocker.read_text() == "x"


def test_state_directory_under_a_regular_file_is_a_config_error(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = dict(os.environ, STATE_DIRECTORY=str(blocker / "state"))
    result = run_ecr_login("--config", write_config(file_config(ecr.url)), env=env)
    no_traceback(result)
    assert result.code == 78, result
    assert str(blocker / "state") in result.stderr and "point the setting at a directory" in result.stderr


def test_state_json_that_is_a_directory_is_rebuilt(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "state"
    (state_dir / "state.json" / "junk").mkdir(parents=True, mode=0o700)
    state_dir.chmod(0o700)
    env = dict(os.environ, STATE_DIRECTORY=str(state_dir))
    config = write_config(file_config(ecr.url))
    result = run_ecr_login("--config", config, env=env)
    no_traceback(result)
    assert result.code == 0, result
    assert "state.json" in result.stderr and "starting afresh" in result.stderr
    assert (state_dir / "state.json").is_file()
    assert [name for name in os.listdir(state_dir) if name.startswith("state.json.broken-")]
    assert run_ecr_login("--config", config, env=env).code == 0
    assert ecr.call_count == 1  # the rebuilt state works: the second run had nothing to do
    status = run_ecr_login("status", "--config", config, env=env)
    assert status.code == 0, status


def test_empty_directory_in_place_of_state_json_is_removed(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    state = State(str(tmp_path)).load()
    assert state.problem and "starting afresh" in state.problem
    state.save()
    assert (tmp_path / "state.json").is_file()


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with user nobody's effective uid (root bypasses file permissions)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become user nobody")
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.root
def test_permission_denied_paths_are_config_errors(tmp_path: Path) -> None:
    private = tmp_path / "root-only"
    (private / "docker").mkdir(parents=True)
    (private / "docker" / "config.json").write_text("{}")
    (private / "state.json").write_text("{}")
    private.chmod(0o700)
    tmp_path.chmod(0o755)
    with as_nobody():
        with pytest.raises(ConfigError, match="permission denied"):
            ensure_private_dir(str(private / "docker"))
        with pytest.raises(ConfigError, match="permission denied"):
            ensure_private_dir(str(private / "new" / "deeper"))
        with pytest.raises(ConfigError, match="permission denied"):
            AuthFile(str(private / "docker" / "config.json")).held(HOST)
        with pytest.raises(ConfigError, match="permission denied"):
            read_text_nofollow(str(private / "state.json"))
        denied = f"{private}: cannot open the directory for the run lock: permission denied"
        with pytest.raises(ConfigError, match=denied), DirLock(str(private), 1, "run"):
            pass
        state = State(str(private)).load()  # unreadable state: rebuilt, not fatal
        assert state.problem and "starting afresh" in state.problem
    assert fsutil._HELD == {}


def test_paths_under_a_file_are_config_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        ensure_private_dir(str(blocker / "sub"))
    with pytest.raises(ConfigError, match=f"{blocker}: exists and is not a directory"):
        AuthFile(str(blocker / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        read_text_nofollow(str(blocker / "state.json"))
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        AuthFile(str(blocker / "config.json")).held(HOST)
    with pytest.raises(ConfigError, match="it is a directory where a file belongs"):
        read_text_nofollow(str(tmp_path))
    with pytest.raises(ConfigError, match="cannot open the directory"), DirLock(str(blocker), 1, "run"):
        pass


# --- 3. state of the wrong shape or types ------------------------------------------------------------


def good_entry(location: str) -> dict[str, object]:
    return {"address": HOST, "store": "file", "location": location, "expires_at": time.time() + 12 * 3600,
            "fingerprint": "0123456789abcdef", "last_success": time.time(), "last_attempt": time.time(),
            "last_error": None, "last_exit": 0, "failures": 0}


BAD_ENTRIES = {
    "expires-at-text": {"expires_at": "soon"},
    "failures-null": {"failures": None},
    "last-exit-float": {"last_exit": 1.5},
    "last-success-text": {"last_success": "yesterday"},
    "fingerprint-number": {"fingerprint": 7},
    "last-error-list": {"last_error": ["x"]},
    "expires-at-bool": {"expires_at": True},
    "expires-at-huge": {"expires_at": 10**400},
    "address-null": {"address": None},
    "store-number": {"store": 1},
}


@pytest.mark.parametrize("change", BAD_ENTRIES.values(), ids=list(BAD_ENTRIES))
def test_state_field_of_the_wrong_type_is_corruption(ecr, aws_env, write_config, tmp_path, change) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    location = str(Path(aws_env["DOCKER_CONFIG"], "config.json"))
    entry = {**good_entry(location), **change}
    (state_dir / "state.json").write_text(json.dumps({"version": 1, "entries": {"k": entry}, "default_hosts": {}}))
    env = dict(os.environ, STATE_DIRECTORY=str(state_dir))
    config = write_config(file_config(ecr.url))
    for command in (("status",), ("status", "--json"), ("login", "--dry-run")):
        checked = run_ecr_login(*command, "--config", config, env=env)
        no_traceback(checked)
    metrics = tmp_path / "metrics.prom"
    result = run_ecr_login("--config", config, "--metrics-file", str(metrics), env=env)
    no_traceback(result)
    assert result.code == 0, result
    assert "state file is corrupt; starting afresh" in result.stderr
    assert HOST in auths(Path(aws_env["DOCKER_CONFIG"]))
    assert "ecr_login_expiry_timestamp_seconds{" in metrics.read_text()
    assert run_ecr_login("status", "--config", config, env=env).code == 0


@pytest.mark.parametrize("text", [
    '{"version": 1, "entries": {"k": "not an object"}}',
    '{"version": 1, "entries": ["a list"]}',
    '{"version": 1, "entries": {"k": {"store": "file"}}}',
    '{"version": 1, "entries": {}, "default_hosts": ["x"]}',
    '{"version": 1, "entries": {"k": {"address": "h", "store": "file", "location": "/l", "expires_at": NaN}}}',
    '{"version": 1, "entries": {"k": {"address": "h", "store": "file", "location": "/l", "last_success": Infinity}}}',
    '[]',
    '"text"',
])
def test_state_of_the_wrong_shape_is_rebuilt(tmp_path: Path, text: str) -> None:
    (tmp_path / "state.json").write_text(text)
    state = State(str(tmp_path)).load()
    assert state.entries == {} and state.default_hosts == {}
    assert "state file is corrupt; starting afresh" in (state.problem or "")


def test_invalid_default_hosts_are_dropped(tmp_path: Path) -> None:
    entry = good_entry("/x/config.json")
    hosts = {"us-east-1|||": HOST, "eu-west-1|||": None, "eu-north-1|||": 5, "ap-south-1|||": "not a host!"}
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "entries": {"k": entry}, "default_hosts": hosts}))
    state = State(str(tmp_path)).load()
    assert state.default_hosts == {"us-east-1|||": HOST}
    assert state.find(HOST, "file", "/x/config.json") is not None  # the valid part is kept
    assert "corrupt" in (state.problem or "") and "3 default registry" in (state.problem or "")


def test_null_default_host_never_stores_a_login_under_none(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n")  # zero-config: the default registry
    state_file = Path(aws_env["XDG_STATE_HOME"], "ecr-login", "state.json")
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    assert run_ecr_login("--config", config).code == 0
    data = json.loads(state_file.read_text())
    assert data["default_hosts"], data
    data["default_hosts"] = {key: None for key in data["default_hosts"]}
    state_file.write_text(json.dumps(data))
    (docker_dir / "config.json").write_text('{"auths": {}}')
    result = run_ecr_login("--config", config)
    assert result.code == 0, result
    assert "corrupt" in result.stderr
    assert list(auths(docker_dir)) == [HOST]
    assert "None" not in auths(docker_dir)


# --- 4. metrics -----------------------------------------------------------------------------------------


def series(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]


def test_metrics_have_one_series_per_registry_and_store_the_newest(tmp_path: Path) -> None:
    state = State(str(tmp_path))
    old = state.entry(HOST, "file", "/home/a/.docker/config.json")  # DOCKER_CONFIG used to point here
    old.expires_at, old.last_success, old.last_attempt, old.failures = 1.0e9, 0.9e9, 1.5e9, 9
    new = state.entry(HOST, "file", "/home/b/.docker/config.json")
    new.expires_at, new.last_success, new.last_attempt = 2e9, 1.9e9, 1.9e9
    state.entry(HOST, "containers", "/home/b/.config/containers/auth.json").expires_at = 3e9
    text = render(state, 1.95e9)
    names = series(text)
    assert len(names) == len(set(names)), text
    expiry = f'ecr_login_expiry_timestamp_seconds{{registry="{HOST}",store="file",user="{ME}"}}'
    assert f"{expiry} 2000000000" in text.splitlines()
    assert f'ecr_login_consecutive_failures{{registry="{HOST}",store="file",user="{ME}"}} 0' in text.splitlines()
    assert f'ecr_login_expiry_timestamp_seconds{{registry="{HOST}",store="containers",user="{ME}"}} 3000000000' in text.splitlines()


def test_superseded_default_placeholders_are_not_rendered_and_can_be_forgotten(tmp_path: Path) -> None:
    state = State(str(tmp_path))
    failed = state.entry("default:us-east-1", "file", "/c.json")
    failed.last_attempt, failed.failures, failed.last_exit = 100.0, 2, 75
    other = state.entry("default:eu-west-1", "file", "/c.json")  # its registry is still unknown: kept
    other.last_attempt, other.failures = 100.0, 1
    real = state.entry(HOST, "file", "/c.json")
    real.last_success, real.expires_at = 200.0, 5000.0
    state.default_hosts["us-east-1|||"] = HOST
    text = render(state, 300.0)
    assert "default:us-east-1" not in text and "default:eu-west-1" in text and HOST in text
    state.forget_default_placeholders()
    assert state.find("default:us-east-1", "file", "/c.json") is None
    assert state.find("default:eu-west-1", "file", "/c.json") is not None
    later = state.entry("default:us-east-1", "file", "/c.json")  # failed again after that success: shown
    later.last_attempt = 400.0
    assert "default:us-east-1" in render(state, 500.0)


def test_write_metrics_is_one_atomic_write_without_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecr_login_pkg.logs import Log

    state = State(str(tmp_path))
    state.entry(HOST, "file", "/c.json").expires_at = 2e9
    fsyncs: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd))
    path = tmp_path / "ecr_login.prom"
    write_metrics(str(path), state, Log())
    assert fsyncs == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert 'registry="' + HOST in path.read_text()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []


# --- 5. logout removes only what ecr-login wrote ---------------------------------------------------------


def test_logout_leaves_a_login_ecr_login_never_wrote(aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    mine = {"auths": {HOST: {"auth": encode_auth("AWS", "the-users-own")}, "ghcr.io": {"auth": "eDp5"}}}
    (docker_dir / "config.json").write_text(json.dumps(mine))
    result = run_ecr_login("logout", "--config", write_config(file_config("http://127.0.0.1:9")))
    assert result.code == 0, result
    assert "not stored by ecr-login; left alone" in result.stderr
    assert json.loads((docker_dir / "config.json").read_text()) == mine


def test_logout_removes_its_own_login_and_leaves_a_replaced_one(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    config = write_config(file_config(ecr.url))
    assert run_ecr_login("--config", config).code == 0
    logout = run_ecr_login("logout", "--config", config)
    assert logout.code == 0 and HOST not in auths(docker_dir), logout
    # logged in again, then the user logs in by hand over it: theirs is left alone
    assert run_ecr_login("--config", config).code == 0
    AuthFile(str(docker_dir / "config.json")).update({HOST: encode_auth("AWS", "typed-by-hand")})
    replaced = run_ecr_login("logout", "--config", config)
    assert replaced.code == 0, replaced
    assert "did not write; left alone" in replaced.stderr
    assert auths(docker_dir)[HOST]["auth"] == encode_auth("AWS", "typed-by-hand")
    # and the state entry is gone: a second logout leaves it alone too
    again = run_ecr_login("logout", "--config", config)
    assert "not stored by ecr-login" in again.stderr and HOST in auths(docker_dir)


# --- 6. the auth file is checked once per update ----------------------------------------------------------


def test_update_checks_the_target_once_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "eDp5"}}}))
    path.chmod(0o644)
    auth_file = AuthFile(str(path))
    checks: list[bool] = []
    original = AuthFile._check_target

    def counted(self: AuthFile) -> os.stat_result | None:
        checks.append(bool(fsutil._HELD))  # was the lock held?
        return original(self)

    monkeypatch.setattr(AuthFile, "_check_target", counted)
    stored = auth_file.update({HOST: encode_auth("AWS", "pw")})
    # once under the lock (what is read is what is replaced); the check before it only refuses a bad
    # file before its directory gets a lock file
    assert checks == [False, True]
    assert stored == {HOST: fingerprint(encode_auth("AWS", "pw"))}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a group-readable file is rewritten 0600
    assert json.loads(path.read_text())["auths"]["ghcr.io"] == {"auth": "eDp5"}


# --- 7. what the fsutil docstring promises is what happens ------------------------------------------------


def test_only_credential_files_are_fsynced_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "durable=False" in (fsutil.__doc__ or "") and "Every write goes to" in (fsutil.__doc__ or "")
    assert "is fsynced, then renamed" not in (fsutil.__doc__ or "")
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    state = State(str(tmp_path / "state"))
    state.entry(HOST, "file", "/c.json")
    state.save()
    assert fsyncs == []
    AuthFile(str(tmp_path / "docker" / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    assert len(fsyncs) == 2  # the file and its directory
