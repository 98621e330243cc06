"""The state file and the run lock in the places an admin's host puts them: a FIFO where
state.json belongs, a file system remounted read-only (issue 18, points 9 and 10).

Real processes (``python -m ecr_login_pkg``, and Debian's /usr/bin/python3) against the
stand-in ECR; a real tmpfs, remounted read-only as ext4's ``errors=remount-ro`` does.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, child_env, file_store_config, no_traceback, require_tool, run_ecr_login, stored_auths

from ecr_login_pkg.errors import ConfigError
from ecr_login_pkg.state import State

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DEBIAN_PYTHON = "/usr/bin/python3"
PYTHONS = ["venv", DEBIAN_PYTHON]


def file_config(ecr_url: str, extra: str = "") -> str:
    return f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\nlock_timeout = 3\n{extra}[{HOST}]\n"


def run(python: str, *args: str, env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """One real ecr-login process; a hang fails the test (TimeoutExpired) instead of stalling it."""
    import sys

    interpreter = sys.executable if python == "venv" else require_tool(python)
    environment = dict(env, PYTHONPATH=str(REPO_ROOT))
    environment.pop("JOURNAL_STREAM", None)
    environment.pop("INVOCATION_ID", None)
    return subprocess.run([interpreter, "-m", "ecr_login_pkg", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def config_for(write_config, ecr, metrics: str = "") -> str:  # type: ignore[no-untyped-def]
    extra = f"metrics_file = {metrics}\n" if metrics else ""
    return write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\n{extra}[{HOST}]\n")


# --- #18.10 a FIFO as state.json -------------------------------------------------------------


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("args", [(), ("--dry-run",), ("status",), ("logout",)], ids=["login", "dry-run", "status", "logout"])
def test_a_fifo_as_the_state_file_is_refused_at_once(ecr, aws_env, write_config, tmp_path, python, args) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    fifo = state_dir / "state.json"
    os.mkfifo(fifo, 0o600)
    config = config_for(write_config, ecr)
    started = time.monotonic()
    done = run(python, *args, "--config", config, env=dict(os.environ, STATE_DIRECTORY=str(state_dir)))
    took = time.monotonic() - started
    assert done.returncode == 78, done
    assert str(fifo) in done.stderr and "not a regular file" in done.stderr, done.stderr
    assert took < 10
    assert fifo.is_fifo(), "the FIFO was replaced"
    assert ecr.call_count == 0
    assert not Path(aws_env["DOCKER_CONFIG"], "config.json").exists()


@pytest.mark.parametrize("python", PYTHONS)
def test_a_fifo_as_the_metrics_file_is_left_alone_with_a_warning(ecr, aws_env, write_config, tmp_path, python) -> None:  # type: ignore[no-untyped-def]
    metrics = tmp_path / "ecr-login.prom"
    os.mkfifo(metrics, 0o644)
    config = config_for(write_config, ecr, metrics=str(metrics))
    done = run(python, "--config", config, env=dict(os.environ, STATE_DIRECTORY=str(tmp_path / "state")))
    assert done.returncode == 0, done
    assert f"metrics not written: {metrics}" in done.stderr and "not a regular file" in done.stderr, done.stderr
    assert metrics.is_fifo(), "the FIFO was replaced"
    assert HOST in json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]


# --- #18.9 a read-only file system ------------------------------------------------------------


@pytest.fixture
def remountable(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own (root only), to be remounted read-only by the test."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    point = tmp_path / "mnt"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.root
def test_a_read_only_file_system_is_named_and_a_run_with_nothing_due_succeeds(  # type: ignore[no-untyped-def]
    ecr, aws_env, write_config, remountable, python
) -> None:
    state_dir, docker_dir = remountable / "state", remountable / "docker"
    env = dict(os.environ, STATE_DIRECTORY=str(state_dir), DOCKER_CONFIG=str(docker_dir))
    config = config_for(write_config, ecr)
    first = run(python, "--config", config, env=env)
    assert first.returncode == 0, first
    before = {path: path.read_bytes() for path in (state_dir / "state.json", docker_dir / "config.json")}
    subprocess.run(["mount", "-o", "remount,ro", str(remountable)], check=True)

    quiet = run(python, "--config", config, env=env)
    assert quiet.returncode == 0, quiet  # was 78 "cannot open the run lock file; remove it"
    assert "error" not in quiet.stderr
    assert run(python, "status", "--config", config, env=env).returncode == 0

    forced = run(python, "--config", config, "--force", env=env)
    assert forced.returncode == 78, forced
    assert "read-only" in forced.stderr and "remove it" not in forced.stderr, forced.stderr
    assert {path: path.read_bytes() for path in before} == before
    assert ecr.call_count == 2  # the first run's and the forced one's: nothing due costs no call


# --- the state directory and file --------------------------------------------------------------------


def test_state_round_trip_and_corrupt_state_is_rebuilt(tmp_path: Path) -> None:
    state = State(str(tmp_path / "state"))
    state.entry(HOST, "file", "/x/config.json").expires_at = 123.0
    state.default_hosts["us-east-1||"] = HOST
    state.save()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    loaded = State(str(tmp_path / "state")).load()
    assert loaded.find(HOST, "file", "/x/config.json").expires_at == 123.0
    assert loaded.default_hosts == {"us-east-1||": HOST}
    (tmp_path / "state" / "state.json").write_text('{"entries": [1')
    rebuilt = State(str(tmp_path / "state")).load()
    assert rebuilt.entries == {} and "corrupt" in (rebuilt.problem or "")


def test_planted_state_dir_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "target")
    with pytest.raises(ConfigError, match="symlink"):
        State(str(tmp_path / "state")).save()
    assert os.listdir(tmp_path / "target") == []


# --- a state directory or file that is not one (from test_robustness) --------------------------------


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


# --- state of the wrong shape or types ---------------------------------------------------------------


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
@pytest.mark.slow
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
    assert HOST in stored_auths(Path(aws_env["DOCKER_CONFIG"]))
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
    assert list(stored_auths(docker_dir)) == [HOST]
    assert "None" not in stored_auths(docker_dir)


# --- a state file nested 1200 deep (from test_hostile, #11.4) ----------------------------------------


def test_a_deeply_nested_state_file_is_rebuilt_with_a_warning(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    nested = '{"version": 1, "entries": ' + "[" * 1200 + "]" * 1200 + "}"
    config = file_store_config(write_config, ecr)
    env = child_env(STATE_DIRECTORY=str(state_dir))
    for command in (["status"], ["logout"]):  # no crash (was exit 70, RecursionError, on every run)
        (state_dir / "state.json").write_text(nested)
        result = run_ecr_login(*command, "--config", config, env=env)
        assert result.code != 70 and "RecursionError" not in result.stderr, result
    (state_dir / "state.json").write_text(nested)
    login = run_ecr_login("--config", config, env=env)
    assert login.code == 0, login
    assert "state file is corrupt; starting afresh" in login.stderr
    assert json.loads((state_dir / "state.json").read_text())["entries"]
    again = run_ecr_login("--config", config, env=env)
    assert again.code == 0 and "corrupt" not in again.stderr and ecr.call_count == 1
