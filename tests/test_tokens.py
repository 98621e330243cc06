"""Getting tokens when AWS, the network or the configuration answer something unexpected.

Through the real command where a server can play the part (the stand-in ECR,
or a tiny fixed-answer server below for what the stand-in cannot say: a
wrong endpoint's 404, an STS answer without credentials), and by calling
ecr_login_pkg.tokens / ecr_login_pkg.logs directly where only a function can
be made to misbehave. Each test here failed before the fix it covers.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run_ecr_login

from ecr_login_pkg.logs import redact

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
OTHER_HOST = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-puller"
DEADLINE = 6.0


class FixedServer:
    """HTTP on loopback that gives every POST the same answer and counts them."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                outer.count += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FixedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def auths(env: dict[str, str]) -> dict[str, object]:
    path = Path(env["DOCKER_CONFIG"], "config.json")
    return json.loads(path.read_text())["auths"] if path.exists() else {}


def closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


# --- 7. masking keeps ordinary words ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "requesting a token: ecr eu-west-1 (attempt 1)",
        "requesting a token: ecr-public us-east-1, role arn:aws:iam::123456789012:role/x",
        "ExpiredToken: The security token included in the request is expired",
        "password: refused by the registry",
        "secret = none configured",
    ],
)
def test_redact_keeps_ordinary_text(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = ***"),
        ('{"authorizationToken": "QVdTOmV4YW1wbGUtcGFzc3dvcmQ="}', '{"authorizationToken": "***"}'),
        ("aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVz rest", "aws_session_token=*** rest"),
        ("Authorization: QVdTOmV4YW1wbGUtcGFzc3dvcmQ", "Authorization: ***"),
    ],
)
def test_redact_masks_what_looks_like_a_secret(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_verbose_run_logs_the_request_line_unmangled(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[{HOST}]\n")
    result = run_ecr_login("--config", config, "-v")
    assert result.code == 0, result
    assert "requesting a token: ecr us-east-1" in result.stderr
    assert ecr.password not in result.output
