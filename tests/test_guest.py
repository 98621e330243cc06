"""Smoke tests of the nspawn guest harness itself (tests/guest.py).

If these fail, the package lifecycle tests cannot say anything: they tell
a broken harness apart from a broken package.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest import Guest, GuestCommandError, cleanup_leftovers, guests_dir, pristine_tarball, require_guest_support

pytestmark = [pytest.mark.guest, pytest.mark.slow]


@pytest.fixture(scope="module")
def guest() -> Iterator[Guest]:
    require_guest_support()
    with Guest() as booted:
        yield booted


def test_boots_to_running_systemd(guest: Guest) -> None:
    assert guest.state in ("running", "degraded"), guest.console_text()
    assert guest.state == "running", f"degraded, failed units: {guest.failed_units}"
    assert guest.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    # The guest is a separate machine: its own PID 1 and hostname.
    assert guest.run(["hostname"]).stdout.strip() == "ecr-login-guest"


def test_run_has_clean_environment_and_checks_exit(guest: Guest) -> None:
    env = guest.run(["env"]).stdout
    assert "PYENV" not in env and "AWS_" not in env
    assert "HOME=/root" in env.splitlines()
    assert guest.run("exit 3", check=False).returncode == 3
    with pytest.raises(GuestCommandError) as failure:
        guest.run("echo some-output; echo to-stderr >&2; exit 4")
    assert "to-stderr" in str(failure.value)


def test_run_as_user_and_write_file(guest: Guest) -> None:
    guest.run(["useradd", "--create-home", "smoke"])
    assert guest.run(["id", "-un"], user="smoke").stdout.strip() == "smoke"
    assert guest.run("echo $HOME", user="smoke").stdout.strip() == "/home/smoke"
    guest.write_file("/home/smoke/secret", "x=1\n", mode=0o600, owner="smoke:smoke")
    assert guest.run(["stat", "-c", "%a %U", "/home/smoke/secret"]).stdout.split() == ["600", "smoke"]
    assert guest.run(["cat", "/home/smoke/secret"], user="smoke").stdout == "x=1\n"


def test_copy_in(guest: Guest, tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "a.txt").write_text("hello\n")
    guest.copy_in(payload, "/srv/in")
    assert guest.read_file("/srv/in/payload/a.txt") == "hello\n"


def test_journal_and_units(guest: Guest) -> None:
    guest.write_file(
        "/etc/systemd/system/smoke.service",
        "[Service]\nType=oneshot\nExecStart=/bin/echo smoke-unit-ran\n",
    )
    guest.run(["systemctl", "daemon-reload"])
    guest.run(["systemctl", "start", "smoke.service"])
    assert guest.systemctl_show("smoke.service", "Result")["Result"] == "success"
    assert "smoke-unit-ran" in guest.journal("smoke.service")


def test_guest_reaches_host_loopback(guest: Guest) -> None:
    # The tests' servers run on the host's 127.0.0.1; the guest shares the network.
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],  # -u: its first line now
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=guests_dir(),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = line.split("port ")[1].split()[0]
        script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').status)"
        assert guest.run(["python3", "-c", script]).stdout.strip() == "200"
    finally:
        server.terminate()
        server.wait()


def test_apt_reaches_mirror(guest: Guest) -> None:
    guest.run(["apt-get", "update"], timeout=180)


def test_stop_leaves_host_tidy() -> None:
    require_guest_support()
    guest = Guest()
    with guest:
        cgroups = list(guest._cgroups)
        assert cgroups and all(path.exists() for path in cgroups)
    assert not any(path.exists() for path in cgroups)
    assert not guest.workdir.exists()
    assert not Path("/run/systemd/nspawn/propagate", guest.name).exists()


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    require_guest_support()
    pristine_tarball()  # built here, not inside the child's timeout
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                sys.path.insert(0, {str(Path(__file__).parent)!r})
                from guest import Guest
                g = Guest().start()
                open({str(ready)!r}, "w").write(g.name + " " + str(g._process.pid))
                time.sleep(600)
                """
            ),
        ],
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, "the child failed to boot a guest"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    name, nspawn_pid = ready.read_text().split()
    child.kill()  # as a killed pytest: no cleanup ran
    child.wait()
    assert Path(f"/proc/{nspawn_pid}").exists()
    assert name in cleanup_leftovers()
    assert not Path(f"/proc/{nspawn_pid}").exists()
    assert not (guests_dir() / name).exists()
