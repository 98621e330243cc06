"""How a run is bounded (deadline.py): ``timeout`` ends the whole run whatever the server
does, SIGINT and SIGTERM end it at once, retries back off with jitter and a cap.

The real command as a process against a misbehaving server on loopback (silent, slow
headers, a body dripping a byte at a time), through boto3 and the AWS CLI alike.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import child_env, errors_of, require_tool, run_ecr_login

from ecr_login_pkg.deadline import BACKOFF_BASE, BACKOFF_CAP, backoff_delay

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
FOREIGN = {
    "auths": {"ghcr.io": {"auth": base64.b64encode(b"bot:ghp_foreign").decode()}},
    "credHelpers": {"gcr.io": "gcloud"},
}


# --- #11.1 timeout bounds the whole run; #11.2 SIGINT and SIGTERM end it at once (from test_hostile) ---


class MisbehavingServer:
    """A loopback HTTP server that reads each request and then misbehaves, for ever if need be:
    ``silent`` (never answers, never closes), ``slow_headers`` (the status line and headers one
    byte a second), ``drip`` (headers at once, then a long body one byte every 1.5 s)."""

    def __init__(self, mode: str) -> None:
        import socket
        import threading

        self.mode = mode
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.requests = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        import threading

        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:  # type: ignore[no-untyped-def]
        try:
            conn.recv(65536)
            self.requests += 1
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100000\r\n\r\n"
            if self.mode == "slow_headers":
                for byte in head:
                    conn.sendall(bytes([byte]))
                    if self.stopping.wait(1):
                        return
            elif self.mode == "drip":
                conn.sendall(head)
                while not self.stopping.wait(1.5):
                    conn.sendall(b" ")
            self.stopping.wait(600)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def misbehaving(request) -> Iterator[MisbehavingServer]:  # type: ignore[no-untyped-def]
    server = MisbehavingServer(request.param)
    yield server
    server.close()


def seeded_docker_dir(aws_env: dict[str, str]) -> Path:
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    (docker_dir / "config.json").write_text(json.dumps(FOREIGN, indent=2))
    return docker_dir


def assert_nothing_half_written(docker_dir: Path, state_dir: Path) -> None:
    assert json.loads((docker_dir / "config.json").read_text()) == FOREIGN
    for directory in (docker_dir, state_dir):
        if directory.exists():
            assert [name for name in os.listdir(directory) if name.endswith(".tmp")] == []
    if (state_dir / "state.json").exists():
        json.loads((state_dir / "state.json").read_text())


TIMEOUT = 5.0


GRACE = 8.0  # interpreter start-up, the boto3 import and a loaded CI machine: a correctness bound


@pytest.mark.parametrize("misbehaving", ["silent", "slow_headers", "drip"], indirect=True)
@pytest.mark.parametrize("source", ["boto3", "awscli"])
@pytest.mark.slow
def test_timeout_bounds_the_run_whatever_the_server_does(misbehaving, source, aws_env, write_config, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    if source == "awscli":
        require_tool("aws")
    docker_dir = seeded_docker_dir(aws_env)
    config = write_config(
        f"[defaults]\nendpoint_url = {misbehaving.url}\nstores = file\ntimeout = {TIMEOUT:g}s\ntoken_source = {source}\n[{HOST}]\n"
    )
    state_dir = tmp_path / "state"
    started = time.monotonic()
    result = run_ecr_login("--config", config, "--force", env=child_env(STATE_DIRECTORY=str(state_dir)), timeout=300)
    took = time.monotonic() - started
    assert took < TIMEOUT + GRACE, f"timeout = {TIMEOUT:g}s, the run took {took:.0f}s"
    assert result.code == 75, result
    errors = errors_of(result)
    call = "GetAuthorizationToken" if source == "boto3" else "get-login-password"
    assert errors and call in errors[0] and f"{TIMEOUT:g}s" in errors[0], result.stderr
    assert misbehaving.requests >= 1
    assert_nothing_half_written(docker_dir, state_dir)
    request.node.user_properties.append(("observed", f"exit 75 in {took:.1f}s: {errors[0].split(': error: ', 1)[1]}"))


def processes_naming(text: str) -> list[str]:
    """The command lines of the processes on this machine that mention ``text``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("misbehaving", ["silent"], indirect=True)
@pytest.mark.parametrize(("signal_name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("source", ["boto3", "awscli"])
@pytest.mark.slow
def test_a_signal_ends_a_multi_region_run_at_once(  # type: ignore[no-untyped-def]
    misbehaving, signal_name, code, source, aws_env, write_config, tmp_path, request
) -> None:
    import signal

    if source == "awscli":
        require_tool("aws")
    docker_dir = seeded_docker_dir(aws_env)
    regions = ("us-east-1", "eu-west-1", "ap-southeast-2")
    sections = "".join(f"[123456789012.dkr.ecr.{region}.amazonaws.com]\n" for region in regions)
    config = write_config(
        f"[defaults]\nendpoint_url = {misbehaving.url}\nstores = file\ntimeout = 2m\ntoken_source = {source}\n{sections}"
    )
    state_dir = tmp_path / "state"
    # SIGINT default in the child, as a terminal's foreground run has it: started in the background
    # (`make test &`, a CI runner's job) pytest has SIGINT ignored, and an exec'd child keeps an
    # ignore (ecr-login rightly keeps it, as nohup relies on) but resets a handler to the default.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "ecr_login_pkg", "--config", config, "--force"],
            env=child_env(STATE_DIRECTORY=str(state_dir)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    deadline = time.monotonic() + 30
    while misbehaving.requests < len(regions) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert misbehaving.requests == len(regions), "the regions' calls did not all start"
    sent = time.monotonic()
    run.send_signal(getattr(signal, signal_name))
    try:
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    took = time.monotonic() - sent
    assert run.returncode == code, (run.returncode, stderr)
    assert took < 3, f"{signal_name} took {took:.1f}s to end the run"
    assert "Traceback" not in stderr
    assert_nothing_half_written(docker_dir, state_dir)
    time.sleep(0.5)
    assert processes_naming(misbehaving.url) == [], "an AWS CLI outlived the run"
    request.node.user_properties.append(("observed", f"exit {run.returncode} {took:.2f}s after {signal_name}"))


# --- retries back off (from test_faults) -------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    for attempt in range(8):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        low = backoff_delay(attempt, rng=lambda a, b: a)
        high = backoff_delay(attempt, rng=lambda a, b: b)
        assert low == pytest.approx(ceiling / 2) and high == pytest.approx(ceiling)
        samples = [backoff_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= sample <= ceiling for sample in samples)
        assert len(set(samples)) > 150, "no jitter: a fleet would retry in lock-step"
    assert backoff_delay(2, rng=lambda a, b: a) > backoff_delay(1, rng=lambda a, b: b) * 0.99  # grows
    assert backoff_delay(50) <= BACKOFF_CAP
