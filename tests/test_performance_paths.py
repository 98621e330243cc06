"""What a run with nothing due does not do, and what every run still does right.

A run with nothing due imports no boto3/botocore, starts no process, opens no
connection and writes no file. Time itself is measured by bench/bench.py, not
here. Already covered in test_login.py: one token call per region and identity,
parallel fetches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool, run_ecr_login
from standin_ecr import StandinECR, self_signed_certificate

# --- a run with nothing due -------------------------------------------------

# Run main() in a fresh interpreter with an audit hook that records every process
# start and network use, and report whether main() imported the AWS SDK.
PROBE = """
import sys
events = []
WATCHED = ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "os.system",
           "socket.__new__", "socket.connect", "socket.getaddrinfo")
sys.addaudithook(lambda event, args: events.append(event) if event in WATCHED else None)
from ecr_login_pkg.cli import main
code = main(sys.argv[1:])
SDK = ("boto3", "botocore", "urllib3")
print(code, "events:" + ",".join(events), "sdk:" + ",".join(name for name in SDK if name in sys.modules))
"""


def probe_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], list[str]]:
    environment = dict(os.environ if env is None else env, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=environment,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    code, events, sdk = done.stdout.split()
    return int(code), [e for e in events.split(":", 1)[1].split(",") if e], [m for m in sdk.split(":", 1)[1].split(",") if m]


def fake_docker(directory: Path) -> Path:
    """A ``docker`` that only records being called (and fails, so a real login cannot pass for it)."""
    directory.mkdir()
    record = directory / "calls"
    script = directory / "docker"
    script.write_text(f'#!/bin/sh\necho "$*" >> {record}\nexit 1\n')
    script.chmod(0o755)
    return record


def test_docker_store_without_a_helper_starts_no_process(ecr, registry, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No credential helper applies: the forced login writes config.json itself, and a no-op run only reads it."""
    config = write_config(f"""
[defaults]
endpoint_url = {ecr.url}
stores = docker
[123456789012.dkr.ecr.us-east-1.amazonaws.com]
store_as = {registry.address}
""")
    calls = fake_docker(tmp_path / "fake-bin")
    env = dict(os.environ, PATH=f"{tmp_path / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    code, events, _sdk = probe_run("login", "--force", "--config", config, env=env)
    assert code == 0
    assert not [event for event in events if not event.startswith("socket.")]  # the token request only
    assert registry.address in json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]
    code, events, sdk = probe_run("--config", config, env=env)
    assert code == 0
    assert events == []  # no process, no socket
    assert sdk == []
    assert not calls.exists()  # `docker` was never run
    assert ecr.call_count == 1


def tree_snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and directory under ``root``: (inode, size, mtime) — what any write changes."""
    return {str(path): (path.lstat().st_ino, path.lstat().st_size, path.lstat().st_mtime_ns)
            for path in [root, *root.rglob("*")]}


def test_no_op_run_with_the_file_store_writes_nothing(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    sections = "".join(f"[{account}.dkr.ecr.{region}.amazonaws.com]\n"
                       for account in ("111111111111", "222222222222") for region in ("us-east-1", "eu-west-1"))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file, containers, helm\n{sections}")
    assert run_ecr_login("--config", config).code == 0
    home = Path(aws_env["HOME"])
    assert {"config.json", "auth.json", "state.json"} <= {path.name for path in home.rglob("*")}
    before = tree_snapshot(home)
    code, events, sdk = probe_run("--config", config)
    assert (code, events, sdk) == (0, [], [])
    assert tree_snapshot(home) == before  # no file written, replaced, created or removed
    assert ecr.call_count == 2  # one per region, from the first run only


def test_forced_file_store_login_starts_no_process(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    sections = "".join(f"[111111111111.dkr.ecr.{region}.amazonaws.com]\n" for region in ("us-east-1", "eu-west-1"))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file, containers, helm\n{sections}")
    code, events, _sdk = probe_run("login", "--force", "--config", config)
    assert code == 0
    assert "socket.connect" in events  # the probe sees the token requests...
    assert not [event for event in events if not event.startswith("socket.")]  # ...and no process started
    assert ecr.call_count == 2
    assert len(json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]) == 2


def test_buffered_output_and_the_exit_code_reach_the_caller(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What sits in stdout's buffer (a file is block-buffered) reaches the file, and the worst outcome's code the caller."""
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n"
                          "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n[210987654321.dkr.ecr.eu-west-1.amazonaws.com]\n")
    assert run_ecr_login("--config", config, "login", "--force").code == 0
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # buffered, as in service
    env["PYTHONPATH"] = str(REPO_ROOT)
    with open(tmp_path / "out.json", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config, "status", "--json"],
                              stdout=out, stderr=err, env=env, timeout=60, check=False)
    assert done.returncode == 0
    rows = json.loads((tmp_path / "out.json").read_text())["registries"]
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    ecr.script(["denied"], region="eu-west-1")
    with open(tmp_path / "err.txt", "wb") as err:
        done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config, "login", "--force"],
                              stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60, check=False)
    assert done.returncode == 77  # the worst outcome's code
    assert "AccessDenied" in (tmp_path / "err.txt").read_text() and "1 failed" in (tmp_path / "err.txt").read_text()


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_output_that_cannot_be_written_fails_the_run(ecr, aws_env, write_config, unbuffered: bool) -> None:  # type: ignore[no-untyped-def]
    """stdout into a full disk: exit 120 and a line on stderr, buffered or not (PYTHONUNBUFFERED=1
    once made it an internal error, 70); stdout closed: 120 for a report, the run's own code for a login."""
    assert Path("/dev/full").exists(), "this test writes into /dev/full"
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n"
                          "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    assert run_ecr_login("--config", config, "login").code == 0
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "ecr_login_pkg", "--config", config]
    for report in (["status", "--json"], ["status"]):
        with open("/dev/full", "wb") as full:
            done = subprocess.run([*command, *report], stdout=full, stderr=subprocess.PIPE, text=True,
                                  env=env, timeout=60, check=False)
        assert done.returncode == 120, done.stderr
        assert "cannot write the output: No space left on device" in done.stderr and "Traceback" not in done.stderr
    closed_status = subprocess.run(["bash", "-c", 'exec >&-; exec "$@"', "run", *command, "status"],
                                   stderr=subprocess.PIPE, text=True, env=env, timeout=60, check=False)
    assert closed_status.returncode == 120 and "Traceback" not in closed_status.stderr, closed_status.stderr
    closed = subprocess.run(["bash", "-c", 'exec >&-; exec "$@"', "run", *command, "login", "--force"],
                            stderr=subprocess.PIPE, text=True, env=env, timeout=60, check=False)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr


# --- a forced run on Debian's python checks the registry API's certificate ----

DEBIAN_PYTHON = "/usr/bin/python3"


@pytest.mark.slow
def test_forced_run_checks_the_certificate_on_debians_python(aws_env, write_config, tmp_path, token_password) -> None:  # type: ignore[no-untyped-def]
    """The .deb runs on Debian's python and botocore: a forced run over TLS logs in with the
    right CA bundle and is refused, before any request, with another CA's."""
    require_tool(DEBIAN_PYTHON)
    require_tool("openssl")
    (tmp_path / "other").mkdir()
    cert, key = self_signed_certificate(str(tmp_path))
    other_cert, _ = self_signed_certificate(str(tmp_path / "other"))

    def run(ca_bundle: str) -> int:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AWS_CA_BUNDLE=ca_bundle)
        done = subprocess.run([DEBIAN_PYTHON, "-m", "ecr_login_pkg", "login", "--force", "--config", config],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        return done.returncode

    with StandinECR(token_password, tls=(cert, key)) as aws:
        config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\ntimeout = 3\n"
                              "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
        assert run(cert) == 0  # logged in over TLS
        assert aws.call_count == 1 and aws.calls[0].status == 200
        # a certificate from another CA: refused before any request, at once, as local set-up (#18.8)
        assert run(other_cert) == 78  # an untrusted certificate is local set-up, named at once (#18.8)
        assert aws.call_count == 1
