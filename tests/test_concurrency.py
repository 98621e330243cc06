"""Concurrency and crashes: many runs at once, kill -9 at random moments, the timer and a person at the same time.

The invariants, whatever the interleaving:

- ``config.json`` is always complete, valid JSON: the previous file or the new
  one, never a torn or truncated mix (writes go to a temp file and are renamed);
- every foreign entry survives, and no run's login is lost to another run's write
  (writers of one file take its directory lock, the docker CLI's runs included);
- temp files a killed run leaves are removed by a later run once stale;
- a run that finds the lock held waits for it, or after ``lock_timeout`` gives up
  with exit 75 and a message saying so.

Each process is the real command with real boto3 talking to the stand-in ECR.
The kill -9 runs go several at a time (each worker in its own home) so 200 of
them fit in well under a minute or two on a 2-core machine.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool, run_ecr_login
from local_registry import build_oci_layout, skopeo_copy
from standin_ecr import StandinECR
from test_secrets import no_password_in_any_process  # noqa: F401  (a fixture, used by pytestmark)

from ecr_login_pkg.fsutil import lock_file_path

SHARED_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
CONCURRENT_RUNS = 50
KILL_RUNS = 200
KILL_WORKERS = 6
TEMP_PREFIX = ".ecr-login-"


def account_host(index: int) -> str:
    return f"{210000000000 + index}.dkr.ecr.us-east-1.amazonaws.com"


def foreign_config(extra_entries: int = 0) -> dict:  # type: ignore[type-arg]
    """Other tools' logins and the settings docker itself keeps (so the docker store can be compared too)."""
    auths = {
        "ghcr.io": {"auth": base64.b64encode(b"bot:ghp_foreign").decode()},
        "registry.example.org:5000": {"auth": base64.b64encode(b"ci:foreign").decode()},
    }
    for index in range(extra_entries):  # a large file widens the window in which a write can be interrupted
        auths[f"mirror-{index:05d}.example.org"] = {"auth": base64.b64encode(f"user{index}:{'x' * 40}".encode()).decode()}
    return {"auths": auths, "credHelpers": {"gcr.io": "gcloud"}, "psFormat": "table {{.ID}}"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecr_login_pkg", *args]


def child_env(base: dict[str, str], **changes: str) -> dict[str, str]:
    env = dict(base, PYTHONPATH=str(REPO_ROOT), **changes)
    env.pop("JOURNAL_STREAM", None)
    env.pop("INVOCATION_ID", None)
    return env


def temp_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(TEMP_PREFIX)) if directory.exists() else []


class JsonWatcher:
    """Reads a file over and over while runs write it: every read must be complete JSON keeping ``must_keep``."""

    def __init__(self, path: Path, must_keep: dict[str, object]) -> None:
        self.path = path
        self.must_keep = must_keep
        self.reads = 0
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                continue
            try:
                auths = json.loads(text)["auths"]
            except (ValueError, KeyError) as exc:
                self.problems.append(f"torn read ({len(text)} bytes): {exc}")
                continue
            self.reads += 1
            for address, entry in self.must_keep.items():
                if auths.get(address) != entry:
                    self.problems.append(f"foreign entry {address} missing or changed")
            time.sleep(0.002)

    def __enter__(self) -> JsonWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# The /proc sampler from the secrets suite watches every test here.
pytestmark = pytest.mark.usefixtures("no_password_in_any_process")


# --- 50 concurrent `login --force` ---------------------------------------------------------


@pytest.mark.parametrize("shared_store", ["file", "docker"])
@pytest.mark.slow
@pytest.mark.docker
def test_fifty_concurrent_forced_logins(ecr, registry, aws_env, write_config, tmp_path, shared_store, request) -> None:  # type: ignore[no-untyped-def]
    """50 runs at once, each with its own state (so nothing but the file lock orders them).

    Every run logs in to one shared registry (the local registry, through the
    ``shared_store``) and to one registry of its own (file store) in the same
    config.json: a lost update would drop some run's own entry.
    """
    require_tool("skopeo")
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    seeded = foreign_config()
    if shared_store == "docker":
        # a credential helper for the shared registry, so that 50 `docker login` runs rewrite
        # config.json (docker takes no lock of its own) while the others write it directly
        require_tool("docker")
        helper_store = request.getfixturevalue("credential_helper")
        seeded["credHelpers"][registry.address] = "teststore"
    (docker_dir / "config.json").write_text(json.dumps(seeded, indent=2))
    sections = "".join(f"[{account_host(index)}]\n" for index in range(CONCURRENT_RUNS))
    config = write_config(
        f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 60s\nlock_timeout = 120s\n"
        f"[shared]\nhost = {SHARED_HOST}\nstore_as = {registry.address}\nstores = {shared_store}\n" + sections
    )
    processes = []
    with JsonWatcher(docker_dir / "config.json", seeded["auths"]) as watcher:
        for index in range(CONCURRENT_RUNS):
            env = child_env(dict(os.environ), STATE_DIRECTORY=str(tmp_path / "state" / str(index)))
            processes.append(subprocess.Popen(
                command("login", "--force", "--config", config, account_host(index), "shared"),
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        outcomes = [(process.wait(timeout=300), process.stderr.read() if process.stderr else "") for process in processes]
    for process in processes:
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    failed = [(code, err) for code, err in outcomes if code != 0]
    assert not failed, failed[:3]
    assert watcher.problems == [], watcher.problems[:5]
    assert watcher.reads > 0
    request.node.user_properties.append(
        ("observed", f"{CONCURRENT_RUNS} runs exit 0; {watcher.reads} reads during the runs, none torn; {ecr.call_count} AWS calls")
    )
    assert ecr.call_count == CONCURRENT_RUNS

    final = json.loads((docker_dir / "config.json").read_text())
    for address, entry in seeded["auths"].items():
        assert final["auths"][address] == entry
    assert final["credHelpers"] == seeded["credHelpers"] and final["psFormat"] == seeded["psFormat"]
    missing = [account_host(index) for index in range(CONCURRENT_RUNS) if account_host(index) not in final["auths"]]
    assert missing == [], f"lost updates: {len(missing)} runs' logins vanished"
    if shared_store == "docker":
        assert json.loads(helper_store.read_text())[registry.address]["Secret"] == ecr.password
    else:
        assert final["auths"][registry.address]["auth"] == ecr.token()
    assert temp_files(docker_dir) == []
    assert oct((docker_dir / "config.json").stat().st_mode & 0o777) == oct(0o600)

    # the final login works for a real client that reads config.json
    build_oci_layout(tmp_path / "layout", "v1")
    skopeo_copy(f"oci:{tmp_path / 'layout'}:v1", f"docker://{registry.address}/team/app:v1", env=os.environ)


# --- kill -9 at random moments ------------------------------------------------------------------


@dataclass
class KillStats:
    runs: int = 0
    old: int = 0  # killed before the rename: the previous file
    new: int = 0  # the write had completed
    temps_left: int = 0  # killed between creating the temp file and renaming it
    problems: list[str] = field(default_factory=list)


def kill_worker(worker: int, rounds: int, ecr_url: str, base: Path, stats: KillStats, lock: threading.Lock) -> None:
    rng = random.Random(1000 + worker)
    home = base / f"worker{worker}"
    docker_dir = home / ".docker"
    state_dir = home / "state"
    docker_dir.mkdir(parents=True, mode=0o700)
    config = home / "ecr-login.conf"
    config.write_text(f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\n[{SHARED_HOST}]\n")
    old_data = foreign_config(extra_entries=3000)
    old_data["auths"][SHARED_HOST] = {"auth": base64.b64encode(b"AWS:previous-password").decode()}
    old_bytes = json.dumps(old_data, indent=1).encode()
    env = child_env(dict(os.environ), HOME=str(home), DOCKER_CONFIG=str(docker_dir), STATE_DIRECTORY=str(state_dir))
    argv = command("login", "--force", "--config", str(config))

    def reset() -> None:
        staging = docker_dir / "reset.partial"
        staging.write_bytes(old_bytes)
        os.replace(staging, docker_dir / "config.json")

    # calibrate: how long an undisturbed run takes on this machine right now (the first also compiles bytecode)
    durations = []
    for _ in range(2):
        reset()
        started = time.monotonic()
        calibration = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        durations.append(time.monotonic() - started)
        if calibration.returncode != 0:
            stats.problems.append(f"calibration run failed: {calibration.stderr[-500:]}")
            return
    duration = min(durations)
    new_data = json.loads((docker_dir / "config.json").read_text())
    expected_new = json.loads(old_bytes)
    expected_new["auths"][SHARED_HOST] = new_data["auths"][SHARED_HOST]
    if new_data != expected_new or new_data["auths"][SHARED_HOST] == old_data["auths"][SHARED_HOST]:
        stats.problems.append("calibration run wrote something unexpected")
        return

    known_temps: set[str] = set()
    for _ in range(rounds):
        reset()
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # most kills land late in the run, where the token is being stored; some anywhere
        delay = rng.uniform(0.0, duration * 1.15) if rng.random() < 0.35 else rng.uniform(duration * 0.6, duration * 1.1)
        time.sleep(delay)
        finished_first = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        # follow the machine's load: runs that finish before the kill mean the estimate is too long
        duration = max(0.2, duration * 0.9) if finished_first else min(5.0, duration * 1.04)
        raw = (docker_dir / "config.json").read_bytes()
        leftovers = temp_files(docker_dir)
        with lock:
            stats.runs += 1
            if raw == old_bytes:
                stats.old += 1
            else:
                try:
                    if json.loads(raw) == expected_new:
                        stats.new += 1
                    else:
                        stats.problems.append(f"worker {worker}: config.json is valid JSON but neither old nor new")
                except ValueError:
                    stats.problems.append(f"worker {worker}: config.json torn after kill at {delay:.3f}s ({len(raw)} bytes)")
            stats.temps_left += len(set(leftovers) - known_temps)
        known_temps.update(leftovers)

    # temp files a killed run left behind are removed by a later run once stale (5 minutes): age them and run once
    for directory in (docker_dir, state_dir):
        for name in temp_files(directory):
            os.utime(directory / name, (time.time() - 3600, time.time() - 3600))
    reset()
    final = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    with lock:
        if final.returncode != 0:
            stats.problems.append(f"worker {worker}: the run after the kills failed: {final.stderr[-500:]}")
        for directory in (docker_dir, state_dir):
            if temp_files(directory):
                stats.problems.append(f"worker {worker}: temp files left in {directory}: {temp_files(directory)}")
        if json.loads((docker_dir / "config.json").read_text()) != expected_new:
            stats.problems.append(f"worker {worker}: the run after the kills did not store the login")
        try:
            json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError) as exc:
            stats.problems.append(f"worker {worker}: state.json unusable after the kills: {exc}")


@pytest.mark.slow
def test_kill_minus_9_at_random_moments_never_tears_config_json(aws_env, tmp_path, token_password, request) -> None:  # type: ignore[no-untyped-def]
    stats = KillStats()
    lock = threading.Lock()
    # a little server latency widens the window in which a run is waiting, then writes
    with StandinECR(password=token_password, default_delay=0.05) as ecr:
        per_worker = [KILL_RUNS // KILL_WORKERS + (1 if w < KILL_RUNS % KILL_WORKERS else 0) for w in range(KILL_WORKERS)]
        with ThreadPoolExecutor(max_workers=KILL_WORKERS) as pool:
            futures = [pool.submit(kill_worker, w, per_worker[w], ecr.url, tmp_path, stats, lock) for w in range(KILL_WORKERS)]
            for future in futures:
                future.result()
    summary = (f"kill -9 runs: {stats.runs}, old file: {stats.old}, new file: {stats.new}, "
               f"temp files left by kills: {stats.temps_left}")
    print(summary)
    request.node.user_properties.append(("observed", summary))
    assert stats.problems == [], stats.problems[:5]
    assert stats.runs == KILL_RUNS
    assert stats.old + stats.new == KILL_RUNS
    assert stats.old > 0 and stats.new > 0, "kill times should cover both sides of the write"


# --- the timer's run and a manual run at the same moment ------------------------------------------


@pytest.mark.slow
def test_timer_run_and_manual_run_take_turns(ecr, aws_env, write_config, request) -> None:  # type: ignore[no-untyped-def]
    ecr.script(["delay:2"])
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[{SHARED_HOST}]\n")
    timer_env = child_env(dict(os.environ))
    timer_env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"  # as systemd starts the service
    timer = subprocess.Popen(command("--config", config), env=timer_env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while ecr.call_count == 0 and time.monotonic() < deadline:  # the timer's run holds the lock, mid-request
        time.sleep(0.02)
    assert ecr.call_count == 1
    manual_started = time.monotonic()
    manual = run_ecr_login("--config", config)
    manual_took = time.monotonic() - manual_started
    _, timer_err = timer.communicate(timeout=60)
    assert timer.returncode == 0, timer_err
    assert manual.code == 0, manual
    assert manual_took > 0.8, "the manual run must have waited for the timer's run"
    assert ecr.call_count == 1, "the manual run found the fresh login the timer's run stored: no second AWS call"
    assert "nothing to do" in manual.stderr
    request.node.user_properties.append(
        ("observed", f"timer run exit 0; manual run waited, exit 0 after {manual_took:.1f}s, 'nothing to do'; 1 AWS call in all")
    )
    assert "error" not in timer_err and "error" not in manual.stderr
    auths = json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]
    assert auths[SHARED_HOST]["auth"] == ecr.token()


@pytest.mark.slow
def test_service_and_user_state_sharing_one_config_json_take_turns(ecr, aws_env, write_config, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    """Two runs with different state directories (service and person) meet at the credential-file lock."""
    ecr.script(["delay:1.5", "ok"])
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[{SHARED_HOST}]\n")
    runs = [
        subprocess.Popen(
            command("--config", config, "--force"), env=child_env(dict(os.environ), STATE_DIRECTORY=str(tmp_path / name)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("service-state", "user-state")
    ]
    results = [(run.wait(timeout=60), run.communicate()[1]) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    assert ecr.call_count == 2
    json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())
    request.node.user_properties.append(("observed", "both exit 0; 2 AWS calls; config.json valid"))


@pytest.mark.parametrize("which", ["run", "credential file"])
@pytest.mark.slow
def test_held_lock_gives_up_after_lock_timeout_with_a_clear_message(ecr, aws_env, write_config, tmp_path, which, request) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\nlock_timeout = 1s\n[{SHARED_HOST}]\n")
    state_dir = tmp_path / "state"
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    for directory in (state_dir, docker_dir):
        directory.mkdir(mode=0o700, parents=True)
    seeded = json.dumps(foreign_config(), indent=3).encode()
    (docker_dir / "config.json").write_bytes(seeded)
    held = os.open(lock_file_path(str(state_dir if which == "run" else docker_dir)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another ecr-login run would hold it
        started = time.monotonic()
        result = run_ecr_login("--config", config, "--force", env=child_env(dict(os.environ), STATE_DIRECTORY=str(state_dir)))
        took = time.monotonic() - started
    finally:
        os.close(held)
    assert result.code == 75, result
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr
    assert f"another ecr-login run has held the {which} lock for 1s" in errors[0] and "next run will retry" in errors[0]
    assert took < 1 + 15
    if which == "run":  # a run that has to wait says so while it waits, not only when it gives up
        assert f"{state_dir}: another ecr-login run holds the run lock; waiting up to 1s" in result.stderr
    message = errors[0].split(": error: ", 1)[1]
    request.node.user_properties.append(("observed", f"exit 75 after {took:.1f}s: {re.sub(r'/tmp/[^ :]*/', '.../', message)}"))
    assert (docker_dir / "config.json").read_bytes() == seeded
    if which == "run":
        assert ecr.call_count == 0 and not (state_dir / "state.json").exists()
    # the lock is free again: the next run goes through
    again = run_ecr_login("--config", config, env=child_env(dict(os.environ), STATE_DIRECTORY=str(state_dir)))
    assert again.code == 0, again
