"""A login at boot, before the CI agent (issue #10.1), on a real systemd.

An autoscaled runner boots and takes its first job at once: its CI agent's
unit, ordered ``After=ecr-login.service`` and changed in no other way, must
find a login stored when it starts. With the ECR API unreachable, boot must
wait 60 s at most for it, then the agent starts and the timer takes over.

The test builds the runner image as an image builder does: the .deb is
installed with apt into the guest's tree while no systemd runs (systemd-nspawn
without --boot, so the maintainer scripts only enable what they would start),
the AWS settings and a stand-in agent unit are written, and then the same tree
boots twice: once with the stand-in ECR API on loopback, once with an API
that accepts connections and never answers.

The agent stand-in is a oneshot that copies the login it finds when it starts
(the service user's ~/.docker/config.json) and is ordered only
``After=ecr-login.service``; systemd's own timestamps say when each unit
started and ended.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest import Guest, require_guest_support
from local_registry import basic_token
from test_lifecycle import (  # noqa: F401  (backends is a fixture)
    APT,
    APT_ENV,
    REPO,
    SERVICE_AUTH,
    SERVICE_HOME,
    Backends,
    Steps,
    _build,
    _print_timing,
    assert_login_works,
    assert_no_secret,
    backends,
    stored_auth,
)

pytestmark = [pytest.mark.guest, pytest.mark.slow]

BOOT_BOUND = 60.0  # seconds boot may wait for the login (JobTimeoutSec=)

AGENT_UNIT = """\
# A CI agent stand-in (tests/test_boot.py): ordered after the boot login and
# changed in no other way, as `systemctl edit` leaves a real agent's unit.
[Unit]
Description=CI agent stand-in
After=ecr-login.service

[Service]
Type=oneshot
RemainAfterExit=yes
StateDirectory=ci-agent
ExecStart=/bin/sh -c 'cp /var/lib/ecr-login/.docker/config.json /var/lib/ci-agent/login-at-start.json \
    || echo none > /var/lib/ci-agent/no-login-at-start'

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree's .deb (``make deb``), or the one ECR_LOGIN_DEB names."""
    require_guest_support()
    prebuilt = os.environ.get("ECR_LOGIN_DEB")
    if prebuilt:
        return Path(prebuilt).resolve()
    out = tmp_path_factory.mktemp("deb")
    _build(["make", "deb", f"OUT={out}"], REPO, "building the .deb")
    found = sorted(out.glob("ecr-login_*_all.deb"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An 'ECR API' that accepts TCP connections and never answers (a black hole)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def _monotonic(guest: Guest, unit: str, prop: str) -> float:
    """A systemd timestamp property (…Monotonic, µs) in seconds; 0 when unset."""
    argv = ["systemctl", "show", "-p", prop, "--value"] + ([unit] if unit else [])
    return int(guest.run(argv).stdout.strip() or 0) / 1e6


def _since_boot(guest: Guest, unit: str, prop: str) -> float:
    """Seconds from the start of the guest's systemd to a unit's timestamp."""
    return _monotonic(guest, unit, prop) - _monotonic(guest, "", "UserspaceTimestampMonotonic")


def _wait_active(guest: Guest, unit: str, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if guest.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active":
            return
        time.sleep(0.5)
    raise AssertionError(f"{unit} not active after {timeout:.0f} s:\n{guest.journal()[-4000:]}")


def test_login_at_boot_before_the_agent(
    deb: Path,
    backends: Backends,  # noqa: F811  (the fixture imported above)
    silent_api: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Image build (no systemd) → boot with the API: the agent finds the login → boot without it: ≤ 60 s."""
    step = Steps()
    guest = Guest(bind_ro={deb.parent: "/srv/current"}, boot_timeout=BOOT_BOUND + 60)
    try:
        with step("unpack a pristine tree"):
            guest.start()
            guest.power_off()

        with step("image build: apt-get install with no systemd running"):
            guest.run_unbooted(["apt-get", "-q", "update"], timeout=300)
            guest.run_unbooted([*APT, "install", f"/srv/current/{deb.name}"], env=APT_ENV)
            guest.run_unbooted(["sh", "-c", "umask 077 && cat > /etc/default/ecr-login"], input=backends.environment_file())
            guest.run_unbooted(["sh", "-c", "cat > /etc/systemd/system/ci-agent.service"], input=AGENT_UNIT)
            guest.run_unbooted(["systemctl", "enable", "ci-agent.service"])
            listed = guest.run_unbooted(["ls", "/etc/systemd/system/timers.target.wants"]).stdout.split()
            assert "ecr-login.timer" in listed, f"the package did not enable the timer in the image: {listed}"
            assert guest.run_unbooted(["test", "!", "-e", SERVICE_AUTH], timeout=30).returncode == 0

        with step("boot 1, API reachable: the agent starts with the login stored"):
            calls_before = backends.ecr.call_count
            guest.boot()
            _wait_active(guest, "ci-agent.service", 30)
            journal = guest.journal("ecr-login.service")
            shown = guest.systemctl_show("ecr-login.service", "Result", "ExecMainStatus")
            assert shown == {"Result": "success", "ExecMainStatus": "0"}, f"{shown}\n{journal}"
            assert backends.ecr.call_count == calls_before + 1, "the boot run did not ask the API for a token"
            seen = json.loads(guest.read_file("/var/lib/ci-agent/login-at-start.json"))
            assert seen["auths"][backends.registry.address]["auth"] == basic_token(backends.password)
            # systemd's clocks: the login ended before the agent started, soon after boot (no randomized delay).
            login_end = _since_boot(guest, "ecr-login.service", "ExecMainExitTimestampMonotonic")
            agent_start = _since_boot(guest, "ci-agent.service", "ExecMainStartTimestampMonotonic")
            assert 0 < login_end <= agent_start, (login_end, agent_start)
            assert agent_start < 30, f"the agent started {agent_start:.1f} s after boot"
            assert stored_auth(guest, SERVICE_AUTH, backends.registry.address) == basic_token(backends.password)
            assert_login_works(guest, backends, "ecr-login", SERVICE_AUTH)
            assert guest.run(["systemctl", "is-active", "ecr-login.timer"]).stdout.strip() == "active"
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
            step_one = f"boot 1: login stored {login_end:.1f} s, agent started {agent_start:.1f} s after boot"

        with step("reconfigure: API unreachable, no login stored"):
            unreachable = backends.environment_file().replace(backends.ecr.url, silent_api)
            guest.write_file("/etc/default/ecr-login", unreachable, mode=0o600)
            guest.run(["sh", "-c", f"rm -rf {SERVICE_HOME}/.docker {SERVICE_HOME}/*.json /var/lib/ci-agent/*"])
            guest.power_off()

        with step("boot 2, API unreachable: the agent starts after 60 s at most"):
            guest.boot()
            _wait_active(guest, "ci-agent.service", BOOT_BOUND + 30)
            agent_start = _since_boot(guest, "ci-agent.service", "ExecMainStartTimestampMonotonic")
            state = guest.systemctl_show("ecr-login.service", "ActiveState", "Result")
            journal = guest.journal()
            assert agent_start <= BOOT_BOUND + 5, f"the agent waited {agent_start:.1f} s for the login\n{journal[-4000:]}"
            # It did wait for the login (the ordering holds) until the bound ended the wait:
            assert agent_start >= BOOT_BOUND - 5, f"the agent started after {agent_start:.1f} s: it did not wait\n{journal[-4000:]}"
            assert "ecr-login.service/start timed out" in journal or "Timed out starting" in journal, journal[-4000:]
            assert guest.read_file("/var/lib/ci-agent/no-login-at-start").strip() == "none"
            # The bound cancelled the wait, not the run: still going, nothing "failed" by the bound.
            assert state == {"ActiveState": "activating", "Result": "success"}, state
            assert guest.run(["systemctl", "is-active", "ecr-login.timer"]).stdout.strip() == "active"
            timers = guest.run(["systemctl", "list-timers", "--no-pager", "--no-legend", "ecr-login.timer"]).stdout
            assert "ecr-login.timer" in timers and not timers.startswith("-"), f"no next run scheduled:\n{timers}"
            step_two = f"boot 2: agent started {agent_start:.1f} s after boot, login still being tried"
        with step("power off"):
            guest.stop()
    finally:
        guest.stop()
    _print_timing(capsys, step.report("login at boot") + f"\n  {step_one}\n  {step_two}")
    step.check_soft()


# --- the provisioning example (docs/cloud-init-runner.yaml) ------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "cloud-init-runner.yaml"


def test_cloud_init_example_passes_the_schema(tmp_path: Path) -> None:
    """cloud-init's own schema check accepts the user-data README shows."""
    import subprocess

    from conftest import require_tool

    cloud_init = require_tool("cloud-init")
    done = subprocess.run([cloud_init, "schema", "--config-file", str(EXAMPLE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Valid cloud-config" in done.stdout, done
    # The check really checks the modules' keys: a value of the wrong type is refused.
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("    defer: true", "    defer: later", 1))
    refused = subprocess.run([cloud_init, "schema", "--config-file", str(broken)], capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "defer" in refused.stderr + refused.stdout, refused
