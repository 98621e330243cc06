"""``ecr-login doctor`` finds each fault with its fix: real boto3 to the stand-in ECR and STS,
Debian's docker-registry refusing or accepting the token, a closed port, a clock that is off.

The checks run in-process (``run_doctor`` on settings from ``config.load``) so each case
costs no interpreter start; the command line itself is exercised in test_cli.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_ecr_login, use_helper
from local_registry import DOCKER_REGISTRY, LocalRegistry
from standin_ecr import (
    DEFAULT_ACCOUNT,
    PRIVATE_TARGET,
    STS_GET_CALLER_IDENTITY_TARGET,
    StandinECR,
    self_signed_certificate,
)

from ecr_login_pkg import doctor, v2probe
from ecr_login_pkg.config import Overrides, load
from ecr_login_pkg.errors import ConfigError, DeniedError, TemporaryError

HOST = f"{DEFAULT_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
ORDER = ["configuration", "credentials", "region", "token", "registry", "clock", "store", "state", "timer"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_for(write_config: Any, endpoint: str, address: str, store: str = "file") -> str:
    return write_config(f"[defaults]\nendpoint_url = {endpoint}\nstores = {store}\n[app]\nhost = {HOST}\nstore_as = {address}\n")


def diagnose(config: str | None = None, text_too: bool = True, **overrides: Any) -> tuple[int, list[dict[str, Any]], str]:
    """Run doctor as ``ecr-login doctor --json`` would, and once more as text; (code, checks, text)."""
    try:
        loaded: Any = load(Overrides(config_path=config, **overrides), os.environ)
    except ConfigError as exc:
        loaded = exc
    code, out = doctor.run_doctor(loaded, os.environ, as_json=True)
    report = json.loads(out)
    assert report["exit_code"] == code
    text = ""
    if text_too:
        text_code, text = doctor.run_doctor(loaded, os.environ, as_json=False)
        assert text_code == code
    return code, report["checks"], text


def by_name(checks: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    (found,) = [check for check in checks if check["check"].startswith(prefix)]
    return found


def statuses(checks: list[dict[str, Any]]) -> dict[str, str]:
    return {check["check"].split(" ")[0]: check["status"] for check in checks}


@pytest.fixture
def sts(ecr: StandinECR, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> StandinECR:
    """The stand-in answers STS too (GetCallerIdentity)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", ecr.url)
    return ecr


def assert_nothing_stored(aws_env: dict[str, str]) -> None:
    assert not Path(aws_env["DOCKER_CONFIG"]).exists()
    assert not Path(aws_env["XDG_STATE_HOME"]).exists()


def test_all_pass_against_the_standin_and_a_registry_that_accepts_the_token(
        sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str], write_config: Any) -> None:
    code, checks, text = diagnose(config_for(write_config, sts.url, registry.address))
    assert code == 0, text
    assert [check["check"].split(" ")[0] for check in checks] == ORDER
    assert [check["status"] for check in checks] == ["ok"] * 8 + ["skipped"]  # no systemd here
    assert by_name(checks, "credentials")["detail"].startswith(f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/standin")
    assert "from env" in by_name(checks, "credentials")["detail"]
    assert by_name(checks, "registry")["check"] == f"registry {registry.address}"
    assert by_name(checks, "region")["detail"] == "us-east-1"
    # twice (JSON, text): one GetCallerIdentity and one GetAuthorizationToken each time
    assert [call.target for call in sts.calls] == [STS_GET_CALLER_IDENTITY_TARGET, PRIVATE_TARGET] * 2
    assert len(text.splitlines()) == len(ORDER) + 1 and text.endswith("all checks passed\n")
    assert_nothing_stored(aws_env)
    token = sts.token()
    for secret in (sts.password, token, base64.b64encode(f"AWS:{sts.password}".encode()).decode()):
        assert secret not in text and secret not in json.dumps(checks)


@pytest.mark.slow
def test_a_registry_that_refuses_the_token_is_named(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any, tmp_path: Path) -> None:
    require_tool(DOCKER_REGISTRY)
    require_tool("htpasswd")
    with LocalRegistry("not-the-token-password", workdir=tmp_path / "other") as refusing:
        code, checks, text = diagnose(config_for(write_config, sts.url, refusing.address))
    registry = by_name(checks, "registry")
    assert code == 77, text
    assert registry["status"] == "failed" and registry["exit_code"] == 77
    assert f"{refusing.address} refused the login (HTTP 401" in registry["detail"]
    assert "[app]" in registry["fix"]
    assert statuses(checks)["token"] == "ok" and statuses(checks)["store"] == "ok"
    assert f"FAIL  registry {refusing.address}: " in text
    assert_nothing_stored(aws_env)


@pytest.mark.slow
def test_a_registry_on_a_closed_port_is_temporary(sts: StandinECR, aws_env: dict[str, str], write_config: Any) -> None:
    address = f"127.0.0.1:{closed_port()}"
    code, checks, _ = diagnose(config_for(write_config, sts.url, address))
    registry = by_name(checks, "registry")
    assert (code, registry["status"], registry["exit_code"]) == (75, "failed", 75)
    assert registry["detail"].startswith(f"{address}: no answer from the registry")
    assert "reachable" in registry["fix"]


@pytest.mark.slow
def test_an_ecr_api_on_a_closed_port_fails_the_token_and_skips_the_registry(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any) -> None:
    code, checks, _ = diagnose(config_for(write_config, f"http://127.0.0.1:{closed_port()}", "127.0.0.1:5000"), False)
    token = by_name(checks, "token")
    assert (code, token["status"], token["exit_code"]) == (75, "failed", 75)
    assert "HTTPS_PROXY" in token["fix"] and "endpoint_url" in token["fix"]
    assert by_name(checks, "registry")["status"] == "skipped"
    assert statuses(checks)["credentials"] == "ok" and statuses(checks)["clock"] == "ok"


def test_a_clock_ten_minutes_off_fails_the_clock_check_only(
        sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str], write_config: Any) -> None:
    sts.clock_offset = 600  # AWS ten minutes ahead: signatures still pass (15 minutes), the clock does not
    code, checks, text = diagnose(config_for(write_config, sts.url, registry.address))
    clock = by_name(checks, "clock")
    assert (code, clock["status"], clock["exit_code"]) == (78, "failed", 78), text
    seconds = re.search(r"clock is (\d+)s behind AWS's", clock["detail"])
    assert seconds is not None and 595 <= int(seconds[1]) <= 605, clock["detail"]
    assert "timedatectl set-ntp true" in clock["fix"]
    assert [c["check"].split(" ")[0] for c in checks if c["status"] == "failed"] == ["clock"]


def test_a_clock_too_far_off_to_sign_points_at_the_clock(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any) -> None:
    sts.clock_offset = -20 * 60  # AWS twenty minutes behind: it refuses the signature
    code, checks, _ = diagnose(config_for(write_config, sts.url, "127.0.0.1:5000"))
    credentials, clock = by_name(checks, "credentials"), by_name(checks, "clock")
    assert code == 78
    assert credentials["status"] == "failed" and "Signature expired" in credentials["detail"]
    assert "clock" in credentials["fix"]
    assert clock["status"] == "failed" and "ahead of AWS's" in clock["detail"]
    assert by_name(checks, "token")["status"] == "skipped"


def test_no_credentials_at_all_says_what_is_missing(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, checks, text = diagnose(config_for(write_config, sts.url, "127.0.0.1:5000"))
    credentials = by_name(checks, "credentials")
    assert (code, credentials["status"], credentials["detail"]) == (78, "failed", "no AWS credentials found")
    assert "instance profile" in credentials["fix"] and "/etc/default/ecr-login" in credentials["fix"]
    # root is served by the system unit; anyone else by their own instance (hints.serving).
    user = pwd.getpwuid(os.geteuid()).pw_name
    unit = "ecr-login.service" if user == "root" else f"ecr-login@{user}.service"
    whose = f"this host AWS credentials for {unit}" if user == "root" else f"{user} AWS credentials for {unit}"
    assert f"FAIL  credentials: no AWS credentials found; fix: give {whose}" in text
    assert by_name(checks, "token")["status"] == "skipped" and by_name(checks, "clock")["status"] == "skipped"
    assert sts.calls == []


def test_denied_token_names_the_permission_and_the_identity(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any) -> None:
    sts.script(["denied", "denied"])
    code, checks, _ = diagnose(config_for(write_config, sts.url, "127.0.0.1:5000"))
    token = by_name(checks, "token")
    assert (code, token["status"], token["exit_code"]) == (77, "failed", 77)
    assert "AccessDeniedException" in token["detail"]
    assert token["fix"].startswith(f"allow ecr:GetAuthorizationToken to arn:aws:iam::{DEFAULT_ACCOUNT}:user/standin")


def test_no_region_off_ec2_fails_the_region_check(
        sts: StandinECR, aws_env: dict[str, str], write_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    config = write_config(f"[defaults]\nendpoint_url = {sts.url}\n")  # the zero-config default registry
    code, checks, _ = diagnose(config)
    region = by_name(checks, "region")
    assert region["status"] == "failed" and code == region["exit_code"] == 78
    assert "--region" in region["fix"] and "--region" not in region["detail"]  # the fix said once
    assert region["detail"] == "default: no AWS region (instance metadata is off: AWS_EC2_METADATA_DISABLED=true)"
    assert by_name(checks, "configuration")["detail"] == f"{config} parses: the caller's own default registry"
    assert by_name(checks, "registry")["check"] == "registry (the caller's default)"
    assert by_name(checks, "registry")["status"] == "skipped"


def test_configuration_that_does_not_parse_skips_the_rest(aws_env: dict[str, str], write_config: Any) -> None:
    code, checks, text = diagnose(write_config("[defaults]\nrefresh_margn = 1h\n"))
    configuration = by_name(checks, "configuration")
    assert (code, configuration["status"]) == (78, "failed")
    assert "refresh_margn" in configuration["detail"] and "refresh_margin" in configuration["detail"]
    assert {c["status"] for c in checks[1:]} == {"skipped"}
    assert text.splitlines()[-1] == "1 check(s) failed"


@pytest.mark.slow
def test_broken_store_file_and_missing_credential_helper(
        sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str], write_config: Any) -> None:
    docker = Path(aws_env["DOCKER_CONFIG"])
    docker.mkdir()
    (docker / "config.json").write_text("{not json")
    config = config_for(write_config, sts.url, registry.address)
    code, checks, _ = diagnose(config)
    store = by_name(checks, "store")
    assert (code, store["status"]) == (78, "failed") and "is not valid JSON" in store["detail"]
    (docker / "config.json").write_text(json.dumps({"credsStore": "nosuchhelper"}))
    code, checks, _ = diagnose(config, store="docker")
    store = by_name(checks, "store docker")
    assert (code, store["status"]) == (78, "failed")
    assert "docker-credential-nosuchhelper" in store["detail"]
    assert store["fix"].startswith("install docker-credential-nosuchhelper")
    assert json.loads((docker / "config.json").read_text()) == {"credsStore": "nosuchhelper"}  # untouched


def test_corrupt_state_is_reported(sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str],
                                   write_config: Any) -> None:
    state_dir = Path(aws_env["XDG_STATE_HOME"], "ecr-login")
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text("[1, 2")
    code, checks, _ = diagnose(config_for(write_config, sts.url, registry.address))
    state = by_name(checks, "state")
    assert (code, state["status"]) == (78, "failed") and "corrupt" in state["detail"]
    assert (state_dir / "state.json").read_text() == "[1, 2"  # doctor repairs nothing


def test_the_timer_check_without_systemd_is_skipped_with_its_reason(aws_env: dict[str, str]) -> None:
    code, out = doctor.run_doctor(ConfigError("x.conf:1: broken"), os.environ)
    assert code == 78 and out.startswith("FAIL  configuration: x.conf:1: broken; fix: ")
    assert "skip  timer: systemd is not running here" in out or Path("/run/systemd/system").is_dir()


# --- v2probe: docker login's handshake, without docker ------------------------------------


class BearerRegistry:
    """A loopback registry front that answers /v2/ with a Bearer challenge, as public.ecr.aws does,
    and issues a token at its realm only for the right Basic credentials. Records each request."""

    def __init__(self, password: str) -> None:
        self.requests: list[str] = []
        front = self
        expected = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization")
                front.requests.append(f"{self.path} {'with' if authorization else 'without'} credentials")
                if self.path == "/v2/":
                    status, headers = 401, {"WWW-Authenticate": f'Bearer realm="{front.url}/token",service="bearer.test"'}
                elif self.path.startswith("/token?"):
                    status, headers = (200, {}) if authorization == expected else (401, {})
                else:
                    status, headers = 404, {}
                body = b'{"token": "opaque"}' if status == 200 else b"{}"
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def __enter__(self) -> BearerRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_probe_follows_a_bearer_challenge_to_its_realm() -> None:
    with BearerRegistry("right") as front:
        assert "bearer authentication" in v2probe.check_login(front.address, "AWS", "right", timeout=5)
        with pytest.raises(DeniedError, match=rf"{front.address} refused the login \(HTTP 401 from {front.url}/token\)"):
            v2probe.check_login(front.address, "AWS", "wrong", timeout=5)
    # HTTPS first (refused: plain HTTP here), then HTTP as docker does for loopback; the token request carries
    # the credentials, the first /v2/ does not
    assert front.requests[:2] == ["/v2/ without credentials", "/token?account=AWS&service=bearer.test with credentials"]


def test_probe_uses_the_proxy_for_remote_registries_and_never_for_loopback(
        registry: LocalRegistry, token_password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_credentials import ForwardingProxy, clear_proxy_variables

    clear_proxy_variables(monkeypatch)
    with ForwardingProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert "basic authentication" in v2probe.check_login(registry.address, "AWS", token_password, timeout=5)
        assert proxy.requests == []  # Go's client (docker's) never proxies loopback
        with pytest.raises(TemporaryError, match=r"registry\.example\.com: no answer from the registry"):
            v2probe.check_login("registry.example.com", "AWS", token_password, timeout=5)
        assert proxy.requests == ["CONNECT registry.example.com:443"]  # the proxy refused to tunnel (403)


def test_probe_says_what_answered_when_it_is_not_a_registry(ecr: StandinECR) -> None:
    with pytest.raises(ConfigError, match=r"answered HTTP 404, not what a registry answers"):
        v2probe.check_login(f"127.0.0.1:{ecr.port}", "AWS", "x", timeout=5)


# --- the command line ---------------------------------------------------------------------


def test_doctor_command_line_text_json_and_flags(
        sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str], write_config: Any) -> None:
    config = config_for(write_config, "http://127.0.0.1:9", registry.address)  # --endpoint-url wins over the file
    result = run_ecr_login("doctor", "--config", config, "--endpoint-url", sts.url, "--region", "eu-west-1", "app")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok    configuration: {config} parses: 1 registry"
    assert lines[3].startswith("ok    token (ecr us-east-1): GetAuthorizationToken allowed")  # the registry's own region
    assert lines[-1] == "all checks passed" and result.stderr == ""
    as_json = run_ecr_login("--json", "doctor", "--config", config, "--endpoint-url", sts.url, "--profile", "nosuch")
    report = json.loads(as_json.stdout)
    assert as_json.code == report["exit_code"] == 78
    assert report["checks"][1]["check"] == "credentials (profile nosuch)"
    assert report["checks"][1]["detail"] == "AWS profile 'nosuch' not found in the AWS config files"
    assert_nothing_stored(aws_env)


def test_doctor_command_line_reports_a_bad_configuration_as_its_first_check(
        aws_env: dict[str, str], write_config: Any) -> None:
    result = run_ecr_login("doctor", "--config", write_config("[defaults]\nstores = ftp\n"))
    assert result.code == 78, result
    assert result.stdout.startswith("FAIL  configuration: ") and "unknown store 'ftp'" in result.stdout
    bad_flag = run_ecr_login("doctor", "--region", "moon-1")
    assert bad_flag.code == 64 and bad_flag.stdout == ""


def test_docker_store_with_its_credential_helper_present(
        sts: StandinECR, registry: LocalRegistry, aws_env: dict[str, str], write_config: Any,
        credential_helper: Path) -> None:
    docker = Path(aws_env["DOCKER_CONFIG"])
    use_helper(docker, registry.address)
    before = (docker / "config.json").read_text()
    code, checks, _ = diagnose(config_for(write_config, sts.url, registry.address, store="docker"))
    store = by_name(checks, "store docker")
    assert (code, store["status"]) == (0, "ok"), checks
    assert store["detail"].endswith("writable; credential helper teststore present")
    assert (docker / "config.json").read_text() == before  # nothing stored, in the file or the helper:
    assert not credential_helper.exists() or json.loads(credential_helper.read_text()) == {}


def test_probe_refuses_an_untrusted_certificate_and_takes_a_trusted_one(
        token_password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("openssl")
    cert, key = self_signed_certificate(str(tmp_path))
    with StandinECR(token_password, tls=(cert, key)) as tls:  # HTTPS, but no registry behind it
        address = f"127.0.0.1:{tls.port}"
        with pytest.raises(ConfigError, match=r"TLS certificate is not trusted here"):
            v2probe.check_login(address, "AWS", token_password, timeout=5)
        monkeypatch.setenv("SSL_CERT_FILE", cert)  # trusted: the answer is judged, not the certificate
        with pytest.raises(ConfigError, match=rf"https://{address}/v2/ answered HTTP 404"):
            v2probe.check_login(address, "AWS", token_password, timeout=5)
