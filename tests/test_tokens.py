"""Getting tokens when AWS, the network or the configuration answer something unexpected.

Through the real command where a server can play the part (the stand-in ECR,
or a tiny fixed-answer server below for what the stand-in cannot say: a
wrong endpoint's 404, an STS answer without credentials), and by calling
ecr_login_pkg's token modules (tokens, aws_errors, aws_clients, awscli_source,
deadline) and ecr_login_pkg.logs directly where only a function can
be made to misbehave. Each test here failed before the fix it covers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run_ecr_login

from ecr_login_pkg import aws_clients, awscli_source
from ecr_login_pkg.aws_errors import ThrottledError, classify_client_error
from ecr_login_pkg.awscli_source import Children
from ecr_login_pkg.deadline import fetch_tokens
from ecr_login_pkg.errors import ConfigError, DeniedError, MalformedAnswerError, TemporaryError
from ecr_login_pkg.logs import redact
from ecr_login_pkg.tokens import Identity, Token, decode_token

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


# --- 1. a surprise inside one token worker is that identity's error, not exit 70 for all ---------

STS_WITHOUT_CREDENTIALS = (
    b'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
    b"</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
)


def test_sts_answer_without_credentials_is_malformed_and_the_other_region_is_stored(
    ecr, aws_env, write_config, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with FixedServer(200, STS_WITHOUT_CREDENTIALS, "text/xml") as sts:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
        config = write_config(
            f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = {DEADLINE:g}\n"
            f"[{HOST}]\nrole_arn = {ROLE}\n[{OTHER_HOST}]\n"
        )
        result = run_ecr_login("--config", config)
    assert result.code == 65, result  # malformed answer, not 70 (internal error) for every region
    assert "Credentials" in result.stderr and "Traceback" not in result.stderr
    assert sts.count == 1  # a malformed answer is not retried
    assert set(auths(aws_env)) == {OTHER_HOST}  # the region that worked is stored
    assert [call.region for call in ecr.calls] == ["eu-west-1"]


def test_unexpected_exception_in_one_worker_is_a_temporary_error_named_by_type(monkeypatch) -> None:
    good = Identity(region="us-east-1", source="awscli")
    bad = Identity(region="eu-west-1", source="awscli")
    token = Token(username="AWS", password="pw-not-shown", expires_at=time.time() + 3600)

    def fake(identity: Identity, remaining: float, environ: object, *children: object) -> Token:
        if identity == bad:
            raise ValueError("leaked-detail-Zm9vYmFyYmF6cXV4")
        return token

    monkeypatch.setattr(awscli_source, "fetch", fake)
    from ecr_login_pkg.logs import Log

    results = fetch_tokens([good, bad], 5, Log(), os.environ)
    assert results[good] is token
    error = results[bad]
    assert isinstance(error, TemporaryError)
    assert "ValueError" in str(error) and "leaked-detail" not in str(error)
    # alone (no thread pool) as well
    alone = fetch_tokens([bad], 5, Log(), os.environ)[bad]
    assert isinstance(alone, TemporaryError) and "ValueError" in str(alone)


def test_key_error_in_a_worker_is_a_malformed_answer(monkeypatch) -> None:
    identity = Identity(region="us-east-1", source="awscli")

    def fake(identity: Identity, remaining: float, environ: object, *children: object) -> Token:
        return {}["Credentials"]  # type: ignore[no-any-return]

    monkeypatch.setattr(awscli_source, "fetch", fake)
    from ecr_login_pkg.logs import Log

    assert isinstance(fetch_tokens([identity], 5, Log(), os.environ)[identity], MalformedAnswerError)


# --- 2. an endpoint URL botocore refuses is a configuration error naming it ----------------------


def test_invalid_endpoint_url_is_a_configuration_error(aws_env) -> None:  # type: ignore[no-untyped-def]
    fetcher = aws_clients.BotoFetcher(os.environ, Children())
    for url in ("http://a b", "http://a..b", "http://[1:2:3]"):
        with pytest.raises(ConfigError) as caught:
            fetcher.client(Identity(region="us-east-1", endpoint_url=url), 5).made()
        assert url in str(caught.value)


def test_invalid_endpoint_url_through_the_command(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = http://a..b\nstores = file\n[{HOST}]\n")
    result = run_ecr_login("--config", config)
    assert result.code == 78, result
    assert "http://a..b" in result.stderr and "Traceback" not in result.stderr


def test_invalid_sts_endpoint_is_a_configuration_error(ecr, aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://a..b")
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[{HOST}]\nrole_arn = {ROLE}\n")
    result = run_ecr_login("--config", config)
    assert result.code == 78, result
    assert "http://a..b" in result.stderr and "AWS_ENDPOINT_URL_STS" in result.stderr
    assert ecr.call_count == 0


# --- 3. a 4xx retrying cannot fix fails at once -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        pytest.param(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html", id="wrong-endpoint-404"),
        pytest.param(
            400, b'{"__type":"InvalidParameterException","message":"bad parameter"}',
            "application/x-amz-json-1.1", id="invalid-parameter-400",
        ),
    ],
)
def test_a_4xx_retrying_cannot_fix_fails_at_once_as_configuration(
    aws_env, write_config, status, body, content_type
) -> None:  # type: ignore[no-untyped-def]
    with FixedServer(status, body, content_type) as wrong:
        config = write_config(f"[defaults]\nendpoint_url = {wrong.url}\nstores = file\ntimeout = {DEADLINE:g}\n[{HOST}]\n")
        started = time.monotonic()
        result = run_ecr_login("--config", config)
        elapsed = time.monotonic() - started
    assert result.code == 78, result
    assert wrong.count == 1, "no retries for what retrying cannot fix"
    assert "check endpoint_url and region" in result.stderr
    assert elapsed < DEADLINE, elapsed
    assert not Path(aws_env["DOCKER_CONFIG"], "config.json").exists()


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
def test_a_408_is_still_temporary_and_retried(aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    with FixedServer(408, b"", "text/plain") as slow:
        config = write_config(f"[defaults]\nendpoint_url = {slow.url}\nstores = file\ntimeout = 2\n[{HOST}]\n")
        result = run_ecr_login("--config", config)
    assert result.code == 75, result
    assert slow.count >= 2


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, ThrottledError),
        ("TooManyRequestsException", 429, ThrottledError),
        ("429", 429, ThrottledError),
        ("408", 408, TemporaryError),
        ("ServerException", 500, TemporaryError),
        ("503", 503, TemporaryError),
        ("AccessDeniedException", 400, DeniedError),
        ("ExpiredTokenException", 403, DeniedError),
        ("401", 401, DeniedError),
        ("InvalidParameterException", 400, ConfigError),
        ("ValidationError", 400, ConfigError),
        ("404", 404, ConfigError),
        ("UnknownOperationException", 400, ConfigError),
        ("Weird", 200, MalformedAnswerError),
        ("Unknown", 0, TemporaryError),
    ],
)
def test_classify_client_error(code: str, status: int, expected: type) -> None:
    error = classify_client_error(code, status, "some message", "GetAuthorizationToken (ecr us-east-1)")
    assert type(error) is expected
    if expected is ConfigError:
        assert "check endpoint_url and region" in str(error)


def test_classify_client_error_shortens_a_page_of_html() -> None:
    page = "<html>" + "x " * 2000 + "</html>"
    error = classify_client_error("404", 404, page, "GetAuthorizationToken (ecr us-east-1)")
    assert len(str(error)) < 400


# --- 4. the user name in a token must be exactly AWS ---------------------------------------------


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("username", ["bob", "aws", "AWSX", " AWS"])
def test_token_with_another_user_name_is_malformed(username: str) -> None:
    with pytest.raises(MalformedAnswerError):
        decode_token(encode(f"{username}:Zm9vYmFyYmF6cXV4cXV1eA"), time.time() + 3600, None, "test")


def test_token_with_user_aws_is_accepted_and_its_forms_are_masked() -> None:
    password = "cGFzc3dvcmQtZm9yLXRoZS10ZXN0LW9ubHk"
    token = decode_token(encode(f"AWS:{password}"), time.time() + 3600, "https://x.example", "test")
    assert (token.username, token.password, token.proxy_host) == ("AWS", password, "x.example")
    assert redact(f"a {password} b {encode('AWS:' + password)}") == "a *** b ***"


# --- 5. no region from instance metadata: silent on EC2 is temporary, anything else is set-up (#9.4) ---


def test_instance_metadata_not_answering_on_ec2_is_temporary(aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    # a metadata service named for this host: it is there, maybe not yet reachable at boot
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{closed_port()}/")
    config = write_config("[defaults]\nstores = file\n")
    result = run_ecr_login("--config", config)
    assert result.code == 75, result  # the network may come up: the next timer tick tries again
    assert "did not answer" in result.stderr and "network" in result.stderr
    assert "AWS_REGION" in result.stderr and "--region" in result.stderr


def test_no_region_off_ec2_is_set_up_not_temporary(aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ecr_login_pkg.readiness import on_ec2

    if on_ec2({}):
        pytest.skip("this host is an EC2 instance: its instance metadata names a region")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    config = write_config("[defaults]\nstores = file\n")
    result = run_ecr_login("--config", config)
    # Before #9.4 this was 75 ("the next tick retries"), though no tick ever could: no metadata exists here.
    assert result.code == 78, result
    assert "no AWS region: this host is not on EC2" in result.stderr and "--region" in result.stderr


def test_instance_metadata_switched_off_is_configuration(aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    config = write_config("[defaults]\nstores = file\n")
    result = run_ecr_login("--config", config)
    assert result.code == 78, result
    assert "no AWS region" in result.stderr and "AWS_EC2_METADATA_DISABLED" in result.stderr


# --- 6. role identities: a session of their own; STS endpoint variables can be ignored ------------


def test_each_role_identity_has_its_own_session(aws_env) -> None:  # type: ignore[no-untyped-def]
    fetcher = aws_clients.BotoFetcher(os.environ, Children())
    first = fetcher.client(Identity(region="us-east-1", role_arn=ROLE), 5).made()
    second = fetcher.client(Identity(region="eu-west-1", role_arn=ROLE + "-2"), 5).made()
    plain = fetcher.client(Identity(region="us-east-1"), 5).made()
    assert isinstance(first, aws_clients.RoleClient) and isinstance(second, aws_clients.RoleClient)
    assert first._session is not second._session
    assert fetcher.session(None)[0] not in (first._session, second._session)
    assert plain is not None


def test_sts_endpoint_variables_are_ignored_when_told(aws_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", dead)
    fetcher = aws_clients.BotoFetcher(os.environ, Children())
    honoured = fetcher.client(Identity(region="us-east-1", role_arn=ROLE), 5).made()
    assert honoured.meta.endpoint_url == dead
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    ignored = fetcher.client(Identity(region="us-east-1", role_arn=ROLE), 5).made()
    assert "127.0.0.1" not in ignored.meta.endpoint_url
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS")
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    assert "127.0.0.1" not in fetcher.client(Identity(region="us-east-1", role_arn=ROLE), 5).made().meta.endpoint_url


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
        ("PASSWORD=QVdTOmV4YW1wbGUtcGFzc3dvcmQ", "PASSWORD=***"),  # the cheap word check ignores case too
        ("Secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Secret: ***"),
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
