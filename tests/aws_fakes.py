"""Real servers and programs for the AWS-side hostile cases (issue 18): no mocks.

A slow instance metadata service, a private certificate authority made with the
``openssl`` CLI, a proxy that wants credentials, and a runner for
``python -m ecr_login_pkg`` under any interpreter (this one, or Debian's
``/usr/bin/python3`` with python3-boto3 1.26 and urllib3 1.x).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO_ROOT, CliResult, require_tool

DEBIAN_PYTHON = "/usr/bin/python3"
ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PYTHONS = [
    pytest.param(sys.executable, id="python3"),
    pytest.param(DEBIAN_PYTHON, id="debian-botocore-1.29"),
]


def run(python: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
        options: tuple[str, ...] = ()) -> tuple[CliResult, float]:
    """``PYTHON [OPTIONS] -m ecr_login_pkg ARGS`` as a real process; the result and how long it took."""
    if python != sys.executable:
        require_tool(python)
        if subprocess.run([python, "-c", "import botocore"], capture_output=True, check=False).returncode:
            pytest.skip(f"{python} has no botocore (apt install python3-boto3)")
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    for name in ("JOURNAL_STREAM", "INVOCATION_ID"):
        environment.pop(name, None)
    started = time.monotonic()
    done = subprocess.run(
        [python, *options, "-m", "ecr_login_pkg", *args],
        capture_output=True, text=True, env=environment, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr), time.monotonic() - started


def errors_of(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": error: " in line]


def without_aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave the shared files, a profile or instance metadata as the only credential source."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


class _Loopback:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``handler`` from a daemon thread while entered."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowMetadata(_Loopback):
    """An IMDSv2 instance metadata service on loopback that is busy: the token and the placement
    answer at once, ``iam/security-credentials/`` only after ``credentials_delay`` seconds (or
    404 when ``role`` is None: an instance without an instance profile)."""

    def __init__(self, credentials_delay: float = 30.0, region: str = "us-east-1", role: str | None = "ecr-node") -> None:
        self.requests: list[str] = []
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def answer(self, status: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                fake.requests.append(f"PUT {self.path}")
                self.answer(200, secrets.token_urlsafe(16)) if self.path == "/latest/api/token" else self.answer(404)

            def do_GET(self) -> None:
                fake.requests.append(f"GET {self.path}")
                if self.path.startswith("/latest/meta-data/placement/availability-zone"):
                    return self.answer(200, region + "a")
                if self.path.startswith("/latest/meta-data/placement/region"):
                    return self.answer(200, region)
                if self.path.startswith("/latest/meta-data/iam/security-credentials"):
                    if fake.stopping.wait(credentials_delay):
                        return
                    return self.answer(200, role) if role else self.answer(404)
                self.answer(404)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://{self.address}/"

    def __enter__(self) -> SlowMetadata:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.stop()


def private_ca(directory: Path) -> tuple[str, str, str]:
    """A private CA and a server certificate it signed for 127.0.0.1, made with the ``openssl`` CLI:
    (CA certificate, server certificate, server key) paths."""
    openssl = require_tool("openssl")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert, ext = directory / "server.key", directory / "server.csr", directory / "server.pem", directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    steps = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert, "-days", "2",
         "-subj", "/CN=ecr-login test private CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ]
    for step in steps:
        subprocess.run([str(part) for part in step], capture_output=True, check=True)
    return str(ca_cert), str(cert), str(key)


class ProxyWantingCredentials(_Loopback):
    """A loopback proxy that answers every request and every CONNECT with 407."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def refuse(self) -> None:
                fake.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length", "0") or 0)
                if length:
                    self.rfile.read(length)
                body = b"<html><body>Proxy Authentication Required</body></html>"
                self.send_response(407, "Proxy Authentication Required")
                self.send_header("Proxy-Authenticate", 'Basic realm="corporate proxy"')
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_CONNECT = do_POST = do_GET = do_PUT = refuse

        super().__init__(Handler)

    def __enter__(self) -> ProxyWantingCredentials:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
