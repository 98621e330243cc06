"""The standard AWS variables and the whole credential chain, through the real command.

Each test runs ``python -m ecr_login_pkg`` as a process against the stand-in
AWS (tests/standin_ecr.py: ECR, STS AssumeRole and instance metadata with real
SigV4 checks) and asserts on what the stand-in saw: which access key signed
the call, which role its temporary credentials came from, which region and
endpoint were used, and that a proxy carried the request. Where ecr-login
itself, not botocore, is responsible for a variable (endpoints, region,
role_arn) the test also runs under Debian's /usr/bin/python3 with
python3-boto3 1.26 (botocore 1.29), which predates AWS_ENDPOINT_URL*.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import REPO_ROOT, CliResult, child_env, errors_of, file_store_config, require_tool, run_ecr_login
from standin_ecr import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, StandinECR, self_signed_certificate

DEBIAN_PYTHON = "/usr/bin/python3"
ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PULLER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-puller"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-deploy"
INSTANCE_ROLE = "ecr-node"
# Long-term keys the stand-in accepts, one per identity the tests use.
KEYS = {
    DEFAULT_ACCESS_KEY_ID: DEFAULT_SECRET_ACCESS_KEY,
    "AKIDENVIRONMENT": "environment-secret",
    "AKIDDEFAULTPROFILE": "default-profile-secret",
    "AKIDTEAMA": "team-a-secret",
    "AKIDTEAMB": "team-b-secret",
    "AKIDBASE": "base-secret",
}

# The interpreters that must honour what ecr-login handles itself.
PYTHONS = [
    pytest.param(sys.executable, id="python3-pyenv"),
    pytest.param(DEBIAN_PYTHON, id="debian-botocore-1.29"),
]


@pytest.fixture
def aws(token_password: str) -> Iterator[StandinECR]:
    """The stand-in with several identities, two assumable roles and an instance profile."""
    with StandinECR(token_password, credentials=KEYS, roles=[PULLER_ROLE, DEPLOY_ROLE], instance_role=INSTANCE_ROLE) as standin:
        yield standin


def run(python: str, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """``PYTHON -m ecr_login_pkg ARGS`` as a real process (conftest's run_ecr_login, any interpreter)."""
    if python != sys.executable:
        require_tool(python)
        probe = subprocess.run([python, "-c", "import botocore"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"{python} has no botocore (apt install python3-boto3)")
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    for name in ("JOURNAL_STREAM", "INVOCATION_ID"):
        environment.pop(name, None)
    done = subprocess.run(
        [python, "-m", "ecr_login_pkg", *args],
        capture_output=True, text=True, env=environment, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def auths(env: dict[str, str]) -> dict[str, object]:
    return json.loads(Path(env["DOCKER_CONFIG"], "config.json").read_text())["auths"]


def without_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave only the shared files (or IMDS) as a credential source."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def write_shared_files(env: dict[str, str], credentials: str, config: str = "") -> None:
    Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(credentials)
    Path(env["AWS_CONFIG_FILE"]).write_text(config)


SHARED_CREDENTIALS = """\
[default]
aws_access_key_id = AKIDDEFAULTPROFILE
aws_secret_access_key = default-profile-secret

[team-a]
aws_access_key_id = AKIDTEAMA
aws_secret_access_key = team-a-secret

[team-b]
aws_access_key_id = AKIDTEAMB
aws_secret_access_key = team-b-secret

[base]
aws_access_key_id = AKIDBASE
aws_secret_access_key = base-secret
"""


def one_registry_config(write_config, endpoint: str, extra: str = "") -> str:
    return write_config(f"[defaults]\nendpoint_url = {endpoint}\nstores = file\n\n[{HOST}]\n{extra}")


# --- (a) environment variables ------------------------------------------------


@pytest.mark.parametrize("python", PYTHONS)
def test_environment_keys_win_over_the_shared_files(python, aws, aws_env, write_config, monkeypatch) -> None:
    write_shared_files(aws_env, SHARED_CREDENTIALS)  # a [default] profile that must not be used
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    result = run(python, "--config", one_registry_config(write_config, aws.url))
    assert result.code == 0, result
    (call,) = aws.calls
    assert (call.access_key, call.status, call.session_token) == ("AKIDENVIRONMENT", 200, False)
    assert HOST in auths(aws_env)


def test_environment_temporary_keys_need_their_session_token(aws, aws_env, write_config, monkeypatch) -> None:
    key, secret, session_token, _ = aws.issue_credentials(DEPLOY_ROLE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    config = one_registry_config(write_config, aws.url)
    # without AWS_SESSION_TOKEN the stand-in (like AWS) refuses the temporary key: exit 77
    refused = run(sys.executable, "--config", config)
    assert refused.code == 77, refused
    assert aws.calls[0].error_type == "UnrecognizedClientException"
    monkeypatch.setenv("AWS_SESSION_TOKEN", session_token)
    result = run(sys.executable, "--config", config)
    assert result.code == 0, result
    assert (aws.calls[1].access_key, aws.calls[1].session_token, aws.calls[1].assumed_role) == (key, True, DEPLOY_ROLE)
    assert session_token not in result.output and secret not in result.output


# --- (b) shared credentials file, AWS_PROFILE, --profile, per-registry profile --


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.slow
def test_shared_credentials_file_default_profile_and_aws_profile(python, aws, aws_env, write_config, monkeypatch) -> None:
    without_env_keys(monkeypatch)
    write_shared_files(aws_env, SHARED_CREDENTIALS)
    config = one_registry_config(write_config, aws.url)
    assert run(python, "--config", config).code == 0
    assert aws.calls[-1].access_key == "AKIDDEFAULTPROFILE"
    monkeypatch.setenv("AWS_PROFILE", "team-a")
    result = run(python, "--config", config, "--force")
    assert result.code == 0, result
    assert aws.calls[-1].access_key == "AKIDTEAMA"
    # --profile wins over AWS_PROFILE
    result = run(python, "--config", config, "--force", "--profile", "team-b")
    assert result.code == 0, result
    assert [call.access_key for call in aws.calls] == ["AKIDDEFAULTPROFILE", "AKIDTEAMA", "AKIDTEAMB"]


def test_unknown_profile_is_a_configuration_error(aws, aws_env, write_config, monkeypatch) -> None:
    without_env_keys(monkeypatch)
    write_shared_files(aws_env, SHARED_CREDENTIALS)
    result = run(sys.executable, "--config", one_registry_config(write_config, aws.url), "--profile", "team-c")
    assert result.code == 78, result
    assert "team-c" in result.stderr
    assert aws.call_count == 0


def test_per_registry_profiles_make_one_call_per_identity(aws, aws_env, write_config, monkeypatch) -> None:
    without_env_keys(monkeypatch)
    write_shared_files(aws_env, SHARED_CREDENTIALS)
    monkeypatch.setenv("AWS_PROFILE", "team-b")  # a registry's own profile wins over it
    config = write_config(f"""
[defaults]
endpoint_url = {aws.url}
stores = file

[team-a-images]
host = 111111111111.dkr.ecr.us-east-1.amazonaws.com
profile = team-a

[team-a-charts]
host = 333333333333.dkr.ecr.us-east-1.amazonaws.com
profile = team-a

[team-b-images]
host = 222222222222.dkr.ecr.us-east-1.amazonaws.com
profile = team-b
""")
    result = run(sys.executable, "--config", config)
    assert result.code == 0, result
    # same region, two identities: two calls, each signed with its own key
    assert sorted((call.access_key, call.region) for call in aws.calls) == [("AKIDTEAMA", "us-east-1"), ("AKIDTEAMB", "us-east-1")]
    assert all(call.status == 200 for call in aws.calls)
    accounts = ("111111111111", "222222222222", "333333333333")
    assert set(auths(aws_env)) == {f"{account}.dkr.ecr.us-east-1.amazonaws.com" for account in accounts}


# --- (c) role_arn in ecr-login.conf: ecr-login calls STS AssumeRole itself -----


@pytest.mark.parametrize("python", PYTHONS)
def test_role_arn_assumes_the_role_then_signs_with_its_temporary_key(python, aws, aws_env, write_config, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)  # ecr-login passes it itself: old botocore works too
    result = run(python, "--config", one_registry_config(write_config, aws.url, f"role_arn = {PULLER_ROLE}\n"), "-v")
    assert result.code == 0, result
    (assume,) = aws.sts_calls()
    assert (assume.role_arn, assume.access_key, assume.service, assume.status) == (PULLER_ROLE, DEFAULT_ACCESS_KEY_ID, "sts", 200)
    (ecr_call,) = aws.ecr_calls()
    assert ecr_call.assumed_role == PULLER_ROLE and ecr_call.issued_by == "sts" and ecr_call.session_token
    assert ecr_call.access_key is not None and ecr_call.access_key.startswith("ASIA")
    assert assume.started_wall <= ecr_call.started_wall
    assert HOST in auths(aws_env)


def test_generic_endpoint_variable_also_serves_sts(aws, aws_env, write_config, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    config = write_config(f"[defaults]\nstores = file\nrole_arn = {DEPLOY_ROLE}\n[{HOST}]\n")
    result = run(DEBIAN_PYTHON, "--config", config)
    assert result.code == 0, result
    assert [call.role_arn for call in aws.sts_calls()] == [DEPLOY_ROLE]
    assert [call.assumed_role for call in aws.ecr_calls()] == [DEPLOY_ROLE]


def test_two_roles_in_one_region_are_two_identities(aws, aws_env, write_config, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    config = write_config(f"""
[defaults]
endpoint_url = {aws.url}
stores = file
role_arn = {PULLER_ROLE}

[111111111111.dkr.ecr.eu-west-1.amazonaws.com]

[222222222222.dkr.ecr.eu-west-1.amazonaws.com]
role_arn = {DEPLOY_ROLE}
""")
    result = run(sys.executable, "--config", config)
    assert result.code == 0, result
    assert sorted(call.role_arn or "" for call in aws.sts_calls()) == [DEPLOY_ROLE, PULLER_ROLE]
    assert sorted(call.assumed_role or "" for call in aws.ecr_calls()) == [DEPLOY_ROLE, PULLER_ROLE]
    assert {call.region for call in aws.calls} == {"eu-west-1"}


def test_a_role_sts_refuses_is_denied_not_a_crash(aws, aws_env, write_config, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    stranger = f"arn:aws:iam::{ACCOUNT}:role/not-allowed"
    result = run(sys.executable, "--config", one_registry_config(write_config, aws.url, f"role_arn = {stranger}\n"))
    assert result.code == 77, result  # AWS denied: not 70 (internal error), not 78
    assert "AccessDenied" in result.stderr and stranger in result.stderr
    assert [call.error_type for call in aws.calls] == ["AccessDenied"]
    assert not Path(aws_env["DOCKER_CONFIG"], "config.json").exists()


@pytest.mark.slow
def test_sts_out_of_reach_is_temporary(aws, aws_env, write_config, monkeypatch) -> None:
    with socket.socket() as unused:  # a loopback port nobody listens on
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", dead)
    config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\ntimeout = 3\n[{HOST}]\nrole_arn = {PULLER_ROLE}\n")
    result = run(sys.executable, "--config", config)
    assert result.code == 75, result  # the network: systemd's next tick retries
    assert aws.call_count == 0


# --- (d) an AWS CLI profile with role_arn + source_profile (botocore's own provider) --


def _botocore_version() -> tuple[int, int]:
    """(major, minor) of the botocore the command runs with (this interpreter's)."""
    from importlib.metadata import version

    major, minor = version("botocore").split(".")[:2]
    return int(major), int(minor)


@pytest.mark.skipif(
    _botocore_version() < (1, 31),
    reason=f"botocore {'.'.join(map(str, _botocore_version()))} < 1.31 ignores AWS_ENDPOINT_URL_STS (see the comment)",
)
def test_cli_profile_with_role_arn_and_source_profile(aws, aws_env, write_config, monkeypatch) -> None:
    # botocore's assume-role provider creates its own STS client, so only botocore
    # itself can point it at the stand-in: AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL),
    # honoured from botocore 1.31. Debian 12's botocore 1.29 ignores both and asks
    # the real https://sts.amazonaws.com/: here (loopback only) that is "Could not
    # connect to the endpoint URL", retried until the timeout, exit 75; on a host
    # with network it reaches real AWS, which is what such a profile means there.
    # So this test runs on the pyenv python only. ecr-login's own `role_arn` key
    # (tests above) passes the STS endpoint itself and works on 1.29 too.
    without_env_keys(monkeypatch)
    write_shared_files(
        aws_env,
        SHARED_CREDENTIALS,
        f"[profile deploy]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = base\nregion = eu-central-1\n",
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws.url)
    monkeypatch.setenv("AWS_PROFILE", "deploy")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region, as in the AWS CLI
    config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\n")  # default registry, profile's region
    result = run(sys.executable, "--config", config)
    assert result.code == 0, result
    (assume,) = aws.sts_calls()
    assert (assume.role_arn, assume.access_key) == (DEPLOY_ROLE, "AKIDBASE")  # signed by the source profile
    (ecr_call,) = aws.ecr_calls()
    assert (ecr_call.assumed_role, ecr_call.region) == (DEPLOY_ROLE, "eu-central-1")
    assert f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com" in auths(aws_env)


# --- (e) the instance profile, from an IMDSv2 stand-in -------------------------


@pytest.mark.parametrize("python", PYTHONS)
def test_instance_profile_credentials_from_instance_metadata(python, aws, aws_env, write_config, monkeypatch) -> None:
    without_env_keys(monkeypatch)  # empty shared files, no keys: the chain ends at IMDS
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws.url + "/")
    result = run(python, "--config", one_registry_config(write_config, aws.url))
    assert result.code == 0, result
    (call,) = aws.ecr_calls()
    assert (call.issued_by, call.assumed_role) == ("imds", f"arn:aws:iam::{ACCOUNT}:role/{INSTANCE_ROLE}")
    assert aws.metadata_requests[0] == "PUT /latest/api/token"  # IMDSv2: a session token first
    assert f"GET /latest/meta-data/iam/security-credentials/{INSTANCE_ROLE}+token" in aws.metadata_requests


def test_no_credentials_anywhere_is_set_up_not_denied(aws, aws_env, write_config, monkeypatch) -> None:
    without_env_keys(monkeypatch)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    with StandinECR("unused") as bare:  # an instance without an instance profile
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", bare.url)
        result = run(sys.executable, "--config", one_registry_config(write_config, aws.url))
        assert bare.metadata_requests  # the chain did ask the metadata service
    # 78, not 77 (#9.4): nothing refused anything; the host lacks credentials and retrying cannot help
    assert result.code == 78, result
    assert "no AWS credentials" in result.stderr
    assert aws.call_count == 0


# --- (f) proxies -----------------------------------------------------------------


class ForwardingProxy:
    """A tiny loopback HTTP proxy: absolute-URI requests (HTTP_PROXY) and CONNECT tunnels (HTTPS_PROXY).

    ``requests`` records "METHOD TARGET" for each request it carried. It only
    forwards to 127.0.0.1, so nothing can leave the machine.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                proxy.requests.append(f"CONNECT {self.path}")
                host, _, port = self.path.rpartition(":")
                if host != "127.0.0.1":
                    self.send_error(403)
                    return
                with socket.create_connection((host, int(port)), timeout=10) as upstream:
                    self.send_response(200, "Connection established")
                    self.end_headers()
                    self.wfile.flush()
                    sockets = [self.connection, upstream]
                    while True:
                        readable, _, _ = select.select(sockets, [], [], 10)
                        if not readable:
                            break
                        for source in readable:
                            data = source.recv(65536)
                            if not data:
                                self.close_connection = True
                                return
                            (upstream if source is self.connection else self.connection).sendall(data)
                self.close_connection = True

            def forward(self) -> None:
                proxy.requests.append(f"{self.command} {self.path}")
                target = urlsplit(self.path)
                if target.scheme != "http" or target.hostname != "127.0.0.1":
                    self.send_error(403)
                    return
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ForwardingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def clear_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("python", PYTHONS)
def test_http_proxy_carries_calls_to_an_http_endpoint(python, aws, aws_env, write_config, monkeypatch) -> None:
    # botocore picks the proxy by the endpoint's scheme (urllib's getproxies):
    # an http:// endpoint goes through HTTP_PROXY, and HTTPS_PROXY is never
    # consulted for it. Real ECR endpoints are https://, so HTTPS_PROXY is the
    # variable that matters in production; the next test proves it over TLS.
    clear_proxy_variables(monkeypatch)
    config = one_registry_config(write_config, aws.url)
    with ForwardingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = run(python, "--config", config)
        assert result.code == 0, result
        assert proxy.requests == [f"POST {aws.url}/"]
        assert aws.calls[0].status == 200 and aws.calls[0].access_key == DEFAULT_ACCESS_KEY_ID
        # control: NO_PROXY for the endpoint bypasses the proxy, so the count above is real
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert run(python, "--config", config, "--force").code == 0
        assert len(proxy.requests) == 1 and aws.call_count == 2


@pytest.mark.parametrize("python", PYTHONS)
def test_https_proxy_tunnels_calls_to_an_https_endpoint(
    python, aws_env, write_config, monkeypatch, tmp_path, token_password
) -> None:
    require_tool("openssl")
    clear_proxy_variables(monkeypatch)
    cert, key = self_signed_certificate(str(tmp_path))
    monkeypatch.setenv("AWS_CA_BUNDLE", cert)  # botocore trusts the stand-in's certificate
    with StandinECR(token_password, tls=(cert, key)) as tls_aws, ForwardingProxy() as proxy:
        assert tls_aws.url.startswith("https://")
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with socket.socket() as unused:  # an HTTP_PROXY that would fail if it were used
            unused.bind(("127.0.0.1", 0))
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused.getsockname()[1]}")
        result = run(python, "--config", one_registry_config(write_config, tls_aws.url))
        assert result.code == 0, result
        assert proxy.requests == [f"CONNECT 127.0.0.1:{tls_aws.port}"]
        assert tls_aws.call_count == 1 and tls_aws.calls[0].status == 200
    assert HOST in auths(aws_env)


# --- (g) endpoint variables, also on botocore older than them -------------------


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.slow
def test_ecr_endpoint_variable_wins_over_the_generic_one(python, aws_env, write_config, monkeypatch, token_password) -> None:
    config = write_config(f"[defaults]\nstores = file\n[{HOST}]\n[public.ecr.aws]\n")
    with StandinECR(token_password) as generic, StandinECR(token_password) as specific:
        monkeypatch.setenv("AWS_ENDPOINT_URL", generic.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", specific.url)
        result = run(python, "--config", config)
        assert result.code == 0, result
        # private ECR takes AWS_ENDPOINT_URL_ECR; ECR Public is another service and falls back to the generic one
        assert [(call.service, call.region) for call in specific.calls] == [("ecr", "us-east-1")]
        assert [(call.service, call.region) for call in generic.calls] == [("ecr-public", "us-east-1")]

        monkeypatch.delenv("AWS_ENDPOINT_URL_ECR")
        result = run(python, "--config", config, "--force", HOST)
        assert result.code == 0, result
        assert len(specific.calls) == 1 and [call.service for call in generic.calls] == ["ecr-public", "ecr"]

        # --endpoint-url wins over both variables
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", generic.url)
        result = run(python, "--config", config, "--force", "--endpoint-url", specific.url, HOST)
        assert result.code == 0, result
        assert len(specific.calls) == 2 and len(generic.calls) == 2
    assert {HOST, "public.ecr.aws"} <= set(auths(aws_env))


def test_ecr_public_endpoint_variable(aws_env, write_config, monkeypatch, token_password) -> None:
    with StandinECR(token_password) as generic, StandinECR(token_password) as public:
        monkeypatch.setenv("AWS_ENDPOINT_URL", generic.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR_PUBLIC", public.url)
        result = run(DEBIAN_PYTHON, "--config", write_config("[defaults]\nstores = file\n[public.ecr.aws]\n"))
        assert result.code == 0, result
        assert [call.service for call in public.calls] == ["ecr-public"] and generic.call_count == 0


# --- (h) region variables ---------------------------------------------------------


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.slow
def test_aws_region_wins_over_aws_default_region(python, aws, aws_env, write_config, monkeypatch) -> None:
    config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\n")  # the caller's default registry
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert run(python, "--config", config).code == 0
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    result = run(python, "--config", config)
    assert result.code == 0, result
    assert run(python, "--config", config, "--region", "ap-southeast-2").code == 0  # the flag wins over both
    assert [call.region for call in aws.calls] == ["us-west-2", "eu-west-1", "ap-southeast-2"]
    regions = ("us-west-2", "eu-west-1", "ap-southeast-2")
    assert {f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com" for region in regions} <= set(auths(aws_env))


@pytest.mark.slow
def test_profile_region_is_used_when_no_variable_sets_one(aws, aws_env, write_config, monkeypatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    write_shared_files(aws_env, "", "[default]\nregion = sa-east-1\n[profile team-a]\nregion = ca-central-1\n")
    config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\n")
    assert run(sys.executable, "--config", config).code == 0
    monkeypatch.setenv("AWS_PROFILE", "team-a")
    assert run(sys.executable, "--config", config).code == 0
    assert [call.region for call in aws.calls] == ["sa-east-1", "ca-central-1"]


# --- a missing profile named by AWS_PROFILE (from test_hostile) --------------------------------------


def test_aws_profile_from_the_environment_is_named_when_missing(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    result = run_ecr_login("--config", file_store_config(write_config, ecr), "--force", env=child_env(AWS_PROFILE="nosuch"))
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and "'nosuch'" in errors[0] and "None" not in errors[0], result.stderr
    assert ecr.call_count == 0
