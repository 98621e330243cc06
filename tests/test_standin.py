"""Proof that the test infrastructure behaves like the real thing.

Every other integration test trusts the stand-in ECR API and the local
registry; these tests hold them to real clients (boto3, the AWS CLI, the
docker CLI, skopeo) so a green run elsewhere means something.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from conftest import require_tool
from local_registry import (
    LocalRegistry,
    SkopeoError,
    basic_token,
    build_oci_layout,
    skopeo_copy,
    write_auth_file,
)
from standin_ecr import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCOUNT,
    DEFAULT_SECRET_ACCESS_KEY,
    JSON_CONTENT_TYPE,
    PRIVATE_TARGET,
    PUBLIC_TARGET,
    STS_GET_CALLER_IDENTITY_TARGET,
    StandinECR,
)

STANDIN_SCRIPT = Path(__file__).resolve().parent / "standin_ecr.py"


def client(
    standin: StandinECR,
    service: str = "ecr",
    region: str = "us-east-1",
    *,
    secret: str = DEFAULT_SECRET_ACCESS_KEY,
    access_key: str = DEFAULT_ACCESS_KEY_ID,
    session_token: str | None = None,
    attempts: int = 1,
    **config: Any,
) -> Any:
    """A real boto3 client for the stand-in; no retries unless asked."""
    return boto3.client(
        service,
        endpoint_url=standin.url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, **config),
    )


def signed(
    standin: StandinECR,
    body: bytes = b"{}",
    target: str = PRIVATE_TARGET,
    service: str = "ecr",
    region: str = "us-east-1",
) -> AWSRequest:
    """A request signed by botocore's own SigV4 signer, to send by hand."""
    request = AWSRequest(
        method="POST",
        url=standin.url + "/",
        data=body,
        headers={"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target},
    )
    credentials = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    SigV4Auth(credentials, service, region).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """POST a (possibly tampered) request; return status, content type, body."""
    all_headers = {k: str(v) for k, v in request.headers.items()}
    all_headers.update(headers or {})
    raw = urllib.request.Request(
        request.url,
        data=request.body if body is None else body,
        headers=all_headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(raw, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def error_code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def decode(token: str) -> str:
    return base64.b64decode(token, validate=True).decode("utf-8")


# --- good answers to real boto3 --------------------------------------------


def test_private_token_for_default_registry(ecr: StandinECR, token_password: str) -> None:
    before = time.time()
    data = client(ecr, region="eu-central-1").get_authorization_token()["authorizationData"]
    assert len(data) == 1
    assert decode(data[0]["authorizationToken"]) == f"AWS:{token_password}"
    assert data[0]["proxyEndpoint"] == "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    expires = data[0]["expiresAt"].timestamp()
    assert before + 43200 - 5 <= expires <= time.time() + 43200 + 5
    (call,) = ecr.calls
    assert (call.target, call.service, call.region) == (PRIVATE_TARGET, "ecr", "eu-central-1")
    assert (call.access_key, call.registry_ids, call.status) == (DEFAULT_ACCESS_KEY_ID, [], 200)
    assert call.duration is not None and call.duration >= 0
    assert call.ended_wall is not None and call.started_wall <= call.ended_wall


def test_one_entry_per_requested_registry(ecr: StandinECR) -> None:
    ids = ["111111111111", "222222222222"]
    data = client(ecr).get_authorization_token(registryIds=ids)["authorizationData"]
    assert [d["proxyEndpoint"] for d in data] == [f"https://{i}.dkr.ecr.us-east-1.amazonaws.com" for i in ids]
    assert ecr.calls[0].registry_ids == ids


def test_malformed_registry_id_is_rejected(ecr: StandinECR) -> None:
    with pytest.raises(ClientError) as err:
        client(ecr).get_authorization_token(registryIds=["not-an-account"])
    assert error_code(err) == ("InvalidParameterException", 400)


def test_ecr_public_token(ecr: StandinECR, token_password: str) -> None:
    data = client(ecr, "ecr-public").get_authorization_token()["authorizationData"]
    assert decode(data["authorizationToken"]) == f"AWS:{token_password}"
    assert "proxyEndpoint" not in data
    assert data["expiresAt"].timestamp() > time.time() + 43000
    assert (ecr.calls[0].target, ecr.calls[0].service) == (PUBLIC_TARGET, "ecr-public")


def test_options_validity_proxy_endpoint_accounts() -> None:
    with StandinECR(
        "pw",
        validity_seconds=60,
        accounts=["999999999999"],
        proxy_endpoint_template="http://127.0.0.1:5000",
    ) as standin:
        (data,) = client(standin).get_authorization_token()["authorizationData"]
        assert data["proxyEndpoint"] == "http://127.0.0.1:5000"
        assert time.time() < data["expiresAt"].timestamp() <= time.time() + 61
    with StandinECR("pw", accounts=["999999999999"]) as standin:
        (data,) = client(standin, region="ap-south-1").get_authorization_token()["authorizationData"]
        assert data["proxyEndpoint"] == "https://999999999999.dkr.ecr.ap-south-1.amazonaws.com"


def test_session_token_is_accepted_and_recorded(ecr: StandinECR) -> None:
    client(ecr, session_token="FwoGZXIvYXdzEXAMPLE").get_authorization_token()
    client(ecr).get_authorization_token()
    assert [c.session_token for c in ecr.calls] == [True, False]


def test_second_identity_from_credentials_map(token_password: str) -> None:
    with StandinECR(token_password, credentials={"AKIDOTHER": "other-secret"}) as standin:
        client(standin, access_key="AKIDOTHER", secret="other-secret").get_authorization_token()
        with pytest.raises(ClientError) as err:
            client(standin).get_authorization_token()
        assert error_code(err) == ("UnrecognizedClientException", 403)
        assert [c.access_key for c in standin.calls] == ["AKIDOTHER", None]


# --- the SigV4 check is real -------------------------------------------------


def test_wrong_secret_is_an_invalid_signature(ecr: StandinECR) -> None:
    with pytest.raises(ClientError) as err:
        client(ecr, secret="not-the-secret").get_authorization_token()
    assert error_code(err) == ("InvalidSignatureException", 403)
    assert (ecr.calls[0].status, ecr.calls[0].error_type) == (403, "InvalidSignatureException")


def test_unknown_access_key_is_unrecognized(ecr: StandinECR) -> None:
    with pytest.raises(ClientError) as err:
        client(ecr, access_key="AKIDNOBODY").get_authorization_token()
    assert error_code(err) == ("UnrecognizedClientException", 403)


def test_hand_sent_signed_request_passes_untampered(ecr: StandinECR) -> None:
    status, content_type, body = send(signed(ecr))
    assert (status, content_type) == (200, JSON_CONTENT_TYPE)
    assert json.loads(body)["authorizationData"][0]["authorizationToken"] == ecr.token()


def test_tampered_body_is_rejected(ecr: StandinECR) -> None:
    status, _, body = send(signed(ecr), body=b'{"registryIds": ["999999999999"]}')
    assert status == 403
    assert json.loads(body)["__type"] == "InvalidSignatureException"


def test_tampered_signed_header_is_rejected(ecr: StandinECR) -> None:
    status, _, body = send(signed(ecr), headers={"X-Amz-Target": PUBLIC_TARGET})
    assert status == 403
    assert json.loads(body)["__type"] == "InvalidSignatureException"


def test_signature_scoped_to_wrong_service_is_rejected(ecr: StandinECR) -> None:
    status, _, body = send(signed(ecr, service="ecr-public"))
    assert status == 403
    assert "'ecr'" in json.loads(body)["message"]


def test_unsigned_request_is_rejected(ecr: StandinECR) -> None:
    request = signed(ecr)
    del request.headers["Authorization"]
    status, _, body = send(request)
    assert status == 400
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"


def test_stale_signature_is_rejected(ecr: StandinECR, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    stale -= datetime.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: stale)
    with pytest.raises(ClientError) as err:
        client(ecr).get_authorization_token()
    assert error_code(err) == ("InvalidSignatureException", 403)
    assert "Signature expired" in str(err.value)


# --- STS GetCallerIdentity and the stand-in's clock --------------------------


def test_caller_identity_of_a_long_term_key(token_password: str) -> None:
    users = {"AKIDOTHER": "builder"}
    credentials = {DEFAULT_ACCESS_KEY_ID: DEFAULT_SECRET_ACCESS_KEY, "AKIDOTHER": "other-secret"}
    with StandinECR(token_password, credentials=credentials, users=users) as standin:
        first = client(standin, "sts").get_caller_identity()
        second = client(standin, "sts", access_key="AKIDOTHER", secret="other-secret").get_caller_identity()
        again = client(standin, "sts").get_caller_identity()
        assert (first["Account"], first["Arn"]) == (DEFAULT_ACCOUNT, f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/standin")
        assert second["Arn"] == f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/builder"
        assert first["UserId"].startswith("AIDA") and first["UserId"] == again["UserId"] != second["UserId"]
        calls = standin.sts_calls()
        assert [c.target for c in calls] == [STS_GET_CALLER_IDENTITY_TARGET] * 3
        assert [(c.access_key, c.service, c.status) for c in calls][:2] == [
            (DEFAULT_ACCESS_KEY_ID, "sts", 200), ("AKIDOTHER", "sts", 200)]
        assert standin.ecr_calls() == []


def test_caller_identity_of_assumed_role_and_instance_credentials(token_password: str) -> None:
    role = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/puller"
    with StandinECR(token_password, instance_role="builder-instance") as standin:
        assumed = client(standin, "sts").assume_role(RoleArn=role, RoleSessionName="ecr-login")
        creds = assumed["Credentials"]
        who = client(standin, "sts", access_key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                     session_token=creds["SessionToken"]).get_caller_identity()
        assert who["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/puller/ecr-login"
        assert who["UserId"] == assumed["AssumedRoleUser"]["AssumedRoleId"]
        assert who["UserId"].startswith("AROA") and who["UserId"].endswith(":ecr-login")
        key, secret, session, _ = standin.issue_credentials(
            f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/builder-instance", "imds", "i-0123456789abcdef0")
        who = client(standin, "sts", access_key=key, secret=secret, session_token=session).get_caller_identity()
        assert who["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/builder-instance/i-0123456789abcdef0"
        assert standin.sts_calls()[-1].assumed_role == f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/builder-instance"


def test_caller_identity_checks_the_signature(ecr: StandinECR) -> None:
    with pytest.raises(ClientError) as err:
        client(ecr, "sts", secret="not-the-secret").get_caller_identity()
    assert error_code(err) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as err:
        client(ecr, "sts", access_key="AKIDNOBODY").get_caller_identity()
    assert error_code(err) == ("InvalidClientTokenId", 403)
    request = AWSRequest(method="POST", url=ecr.url + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY), "ecr", "us-east-1").add_auth(request)
    status, _, body = send(request)  # signed for ECR, sent to STS
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body and b"'sts'" in body
    assert [c.status for c in ecr.sts_calls()] == [403, 403, 403]


def test_offset_clock_moves_the_date_header_and_the_signature_window(ecr: StandinECR) -> None:
    ecr.clock_offset = 10 * 60  # ten minutes ahead: a signature from here is still inside AWS's 15
    answer = client(ecr, "sts").get_caller_identity()
    sent = email.utils.parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"]).timestamp()
    assert 9 * 60 < sent - time.time() < 11 * 60
    expires = client(ecr).get_authorization_token()["authorizationData"][0]["expiresAt"].timestamp()
    assert expires - time.time() > 43200 + 9 * 60  # tokens expire by the stand-in's clock
    ecr.clock_offset = -20 * 60  # twenty minutes behind: the signature is too far from its clock
    with pytest.raises(ClientError) as err:
        client(ecr, "sts").get_caller_identity()
    assert error_code(err) == ("SignatureDoesNotMatch", 403)
    assert "Signature expired" in str(err.value)
    date = err.value.response["ResponseMetadata"]["HTTPHeaders"]["date"]
    assert 19 * 60 < time.time() - email.utils.parsedate_to_datetime(date).timestamp() < 21 * 60


# --- the real AWS CLI --------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "region", "service"),
    [("ecr", "eu-west-1", "ecr"), ("ecr-public", "us-east-1", "ecr-public")],
)
@pytest.mark.slow
def test_aws_cli_get_login_password(
    ecr: StandinECR,
    aws_env: dict[str, str],
    token_password: str,
    command: str,
    region: str,
    service: str,
) -> None:
    aws = require_tool("aws")
    argv = [aws, command, "get-login-password", "--endpoint-url", ecr.url, "--region", region]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == token_password + "\n"
    assert (ecr.calls[0].service, ecr.calls[0].region) == (service, region)

    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="wrong-secret")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert "InvalidSignatureException" in result.stderr
    assert token_password not in result.stdout + result.stderr


def test_aws_env_isolates_from_host(aws_env: dict[str, str], tmp_path: Path) -> None:
    assert os.environ["HOME"] == str(tmp_path / "home")
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert Path(os.environ["AWS_CONFIG_FILE"]).read_text() == ""
    stray = {n for n in os.environ if n.startswith("AWS_")} - set(aws_env)
    assert stray == set()


# --- fault injection ---------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "code", "status"),
    [
        ("500", "ServerException", 500),
        ("503", "ServiceUnavailableException", 503),
        ("throttle", "ThrottlingException", 400),
        ("denied", "AccessDeniedException", 400),
        ("expired_creds", "ExpiredTokenException", 403),
    ],
)
def test_error_behaviours(ecr: StandinECR, behaviour: str, code: str, status: int) -> None:
    ecr.script([behaviour])
    ecr_client = client(ecr)
    with pytest.raises(ClientError) as err:
        ecr_client.get_authorization_token()
    assert error_code(err) == (code, status)
    assert ecr_client.get_authorization_token()["authorizationData"]  # queue drained
    assert [(c.behaviour, c.status) for c in ecr.calls] == [(behaviour, status), ("ok", 200)]


def test_retrying_client_gets_through_after_scripted_failure(ecr: StandinECR) -> None:
    ecr.script(["503"])
    assert client(ecr, attempts=2).get_authorization_token()["authorizationData"]
    assert [c.status for c in ecr.calls] == [503, 200]


def test_not_json_answer(ecr: StandinECR) -> None:
    ecr.script(["not_json", "not_json"])
    status, content_type, body = send(signed(ecr))
    assert (status, content_type) == (200, JSON_CONTENT_TYPE)
    with pytest.raises(ValueError):
        json.loads(body)
    # botocore does not raise on a 200 it cannot parse: the data is just absent.
    assert "authorizationData" not in client(ecr).get_authorization_token()


def test_html_answer(ecr: StandinECR) -> None:
    ecr.script(["html", "html"])
    status, content_type, body = send(signed(ecr))
    assert (status, content_type) == (200, "text/html")
    assert body.startswith(b"<!DOCTYPE html>")
    assert "authorizationData" not in client(ecr).get_authorization_token()


@pytest.mark.parametrize("service", ["ecr", "ecr-public"])
def test_token_shape_behaviours(ecr: StandinECR, token_password: str, service: str) -> None:
    ecr.script(["bad_base64", "no_aws_prefix", "expired", "empty"])
    ecr_client = client(ecr, service)

    def first() -> Any:
        data = ecr_client.get_authorization_token()["authorizationData"]
        return data[0] if isinstance(data, list) else data

    with pytest.raises(binascii.Error):
        decode(first()["authorizationToken"])
    assert decode(first()["authorizationToken"]) == token_password
    expired = first()
    assert expired["expiresAt"].timestamp() < time.time()
    assert decode(expired["authorizationToken"]) == f"AWS:{token_password}"
    assert not ecr_client.get_authorization_token()["authorizationData"]
    assert decode(first()["authorizationToken"]) == f"AWS:{token_password}"


def test_delay_behaviour_and_default_delay(ecr: StandinECR) -> None:
    ecr.script(["delay:0.3"])
    ecr_client = client(ecr)
    started = time.monotonic()
    assert ecr_client.get_authorization_token()["authorizationData"]
    assert time.monotonic() - started >= 0.3
    ecr.default_delay = 0.2
    assert ecr_client.get_authorization_token()["authorizationData"]
    durations = [c.duration or 0.0 for c in ecr.calls]
    assert durations[0] >= 0.3 and 0.2 <= durations[1] < 0.3


def test_calls_are_served_concurrently(token_password: str) -> None:
    with StandinECR(token_password, default_delay=0.5) as standin:
        clients = [client(standin) for _ in range(8)]
        results: list[object] = []
        threads = [threading.Thread(target=lambda c=c: results.append(c.get_authorization_token())) for c in clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert time.monotonic() - started < 2.0  # 8 x 0.5 s would be 4 s serially
        assert len(results) == 8 and standin.call_count == 8
        assert {c.status for c in standin.calls} == {200}


def test_hang_times_out_and_does_not_block_stop(ecr: StandinECR) -> None:
    ecr.script(["hang"])
    with pytest.raises(ReadTimeoutError):
        client(ecr, read_timeout=0.5, connect_timeout=1).get_authorization_token()
    assert ecr.calls[0].behaviour == "hang" and ecr.calls[0].status is None
    started = time.monotonic()
    ecr.stop()
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 2
    while ecr.calls[0].ended_monotonic is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ecr.calls[0].ended_monotonic is not None  # the hanging call was released


def test_close_drops_the_connection(ecr: StandinECR) -> None:
    ecr.script(["close"])
    with pytest.raises(ConnectionClosedError):
        client(ecr).get_authorization_token()
    assert (ecr.calls[0].behaviour, ecr.calls[0].status) == ("close", None)


def test_script_per_region_before_global(ecr: StandinECR) -> None:
    ecr.script(["throttle"])
    ecr.script(["denied"], region="eu-west-1")
    eu, us = client(ecr, region="eu-west-1"), client(ecr, region="us-east-1")
    with pytest.raises(ClientError) as err:
        eu.get_authorization_token()
    assert error_code(err)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as err:
        eu.get_authorization_token()
    assert error_code(err)[0] == "ThrottlingException"
    assert us.get_authorization_token()["authorizationData"]
    assert eu.get_authorization_token()["authorizationData"]
    assert [(c.region, c.behaviour) for c in ecr.calls] == [
        ("eu-west-1", "denied"),
        ("eu-west-1", "throttle"),
        ("us-east-1", "ok"),
        ("eu-west-1", "ok"),
    ]


def test_region_queue_is_not_used_by_other_regions(ecr: StandinECR) -> None:
    ecr.script(["denied"], region="eu-west-1")
    assert client(ecr, region="us-east-1").get_authorization_token()["authorizationData"]
    with pytest.raises(ClientError):
        client(ecr, region="eu-west-1").get_authorization_token()


@pytest.mark.parametrize("bad", ["teapot", "delay:", "delay:soon", "delay:-1", "OK"])
def test_script_rejects_unknown_behaviours(ecr: StandinECR, bad: str) -> None:
    with pytest.raises(ValueError, match="behaviour"):
        ecr.script(["ok", bad])
    assert client(ecr).get_authorization_token()["authorizationData"]  # nothing queued


def test_reset_forgets_calls_and_script(ecr: StandinECR) -> None:
    ecr.script(["denied"])
    with pytest.raises(ClientError):  # refused before it could consume "denied"
        client(ecr, secret="wrong").get_authorization_token()
    assert ecr.call_count == 1
    ecr.reset()
    assert ecr.call_count == 0
    assert client(ecr).get_authorization_token()["authorizationData"]
    assert ecr.calls[0].behaviour == "ok"


# --- run as a script (demos, systemd guests) ---------------------------------


def _interpreters() -> list[str]:
    found = [sys.executable]
    if os.access("/usr/bin/python3", os.X_OK):
        found.append("/usr/bin/python3")
    return found


@pytest.mark.parametrize("python", _interpreters())
@pytest.mark.parametrize("source", ["file", "env"])
def test_script_mode(tmp_path: Path, python: str, source: str) -> None:
    password = "script-mode-" + base64.b32encode(os.urandom(10)).decode()
    argv = [python, str(STANDIN_SCRIPT), "--port", "0", "--proxy-endpoint", "http://127.0.0.1:5000"]
    env = {k: v for k, v in os.environ.items() if k != "STANDIN_PASSWORD"}
    if source == "file":
        (tmp_path / "pw").write_text(password + "\n")
        argv += ["--password-file", str(tmp_path / "pw")]
    else:
        env["STANDIN_PASSWORD"] = password
    assert password not in " ".join(argv)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    killer = threading.Timer(20, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        data = boto3.client(
            "ecr",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
            aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        ).get_authorization_token()["authorizationData"][0]
        assert decode(data["authorizationToken"]) == f"AWS:{password}"
        assert data["proxyEndpoint"] == "http://127.0.0.1:5000"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        killer.cancel()
        proc.kill()
        proc.wait()


def test_script_mode_refuses_to_run_without_password() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STANDIN_PASSWORD"}
    result = subprocess.run(
        [sys.executable, str(STANDIN_SCRIPT), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )
    assert result.returncode != 0
    assert "STANDIN_PASSWORD" in result.stderr


# --- local registry and real registry clients --------------------------------


def _get_v2(registry: LocalRegistry, token: str | None) -> int:
    headers = {"Authorization": f"Basic {token}"} if token else {}
    request = urllib.request.Request(f"{registry.url}/v2/", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_registry_requires_the_token_password(registry: LocalRegistry, token_password: str) -> None:
    assert registry.address.startswith("127.0.0.1:")
    assert _get_v2(registry, None) == 401
    assert _get_v2(registry, basic_token("wrong")) == 401
    assert _get_v2(registry, basic_token(token_password)) == 200
    assert _get_v2(registry, basic_token(token_password, username="root")) == 401
    assert "GET /v2/" in registry.log_text()
    assert token_password not in (registry.workdir / "htpasswd").read_text()


def test_registry_stops_cleanly(token_password: str, tmp_path: Path) -> None:
    require_tool("/usr/bin/docker-registry")
    with LocalRegistry(token_password, workdir=tmp_path / "r") as local:
        url = local.url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/v2/", timeout=2)
    assert (tmp_path / "r" / "registry.log").exists()  # a given workdir is kept


def _ecr_password(ecr: StandinECR) -> str:
    token = client(ecr).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = decode(token).partition(":")
    assert user == "AWS"
    return password


@pytest.mark.docker
def test_docker_login_with_token(ecr: StandinECR, registry: LocalRegistry, aws_env: dict[str, str]) -> None:
    docker = require_tool("docker")
    argv = [docker, "login", "--username", "AWS", "--password-stdin", registry.address]
    result = subprocess.run(argv, input=_ecr_password(ecr) + "\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Login Succeeded" in result.stdout
    config = json.loads((Path(aws_env["DOCKER_CONFIG"]) / "config.json").read_text())
    assert config["auths"][registry.address]["auth"] == ecr.token()


@pytest.mark.docker
def test_docker_login_refuses_wrong_password(registry: LocalRegistry, aws_env: dict[str, str]) -> None:
    docker = require_tool("docker")
    argv = [docker, "login", "--username", "AWS", "--password-stdin", registry.address]
    result = subprocess.run(argv, input="wrong-password\n", capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "401" in result.stderr
    config = Path(aws_env["DOCKER_CONFIG"]) / "config.json"
    assert not config.exists() or registry.address not in config.read_text()


def _layer_file(layout: Path, name: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_bytes())
    layer_digest = manifest["layers"][0]["digest"].split(":", 1)[1]
    blob = gzip.decompress((layout / "blobs" / "sha256" / layer_digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read().decode()


def test_oci_layout_is_deterministic(tmp_path: Path) -> None:
    first = build_oci_layout(tmp_path / "a", "v1", content="same\n")
    assert build_oci_layout(tmp_path / "b", "v1", content="same\n") == first
    assert build_oci_layout(tmp_path / "c", "v1", content="other\n") != first
    assert _layer_file(tmp_path / "c", "hello.txt") == "other\n"


def test_skopeo_round_trip_with_token_auth_file(ecr: StandinECR, registry: LocalRegistry, tmp_path: Path) -> None:
    require_tool("skopeo")
    digest = build_oci_layout(tmp_path / "in", "v1", content="round trip\n")
    token = client(ecr).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    authfile = write_auth_file(tmp_path / "auth.json", registry.address, token)
    assert authfile.stat().st_mode & 0o777 == 0o600
    remote = f"docker://{registry.address}/ecr-login/test:v1"

    skopeo_copy(f"oci:{tmp_path / 'in'}:v1", remote, dest_authfile=authfile)
    skopeo_copy(remote, f"oci:{tmp_path / 'out'}:v1", authfile=authfile)

    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert _layer_file(tmp_path / "out", "hello.txt") == "round trip\n"


def test_skopeo_uses_only_the_given_auth_file(registry: LocalRegistry, token_password: str, tmp_path: Path) -> None:
    require_tool("skopeo")
    build_oci_layout(tmp_path / "in", "v1")
    # Good credentials where containers/image would also look...
    docker_config = tmp_path / "docker"
    write_auth_file(docker_config / "config.json", registry.address, basic_token(token_password))
    env = dict(os.environ, DOCKER_CONFIG=str(docker_config))
    # ...but the auth file handed over has a wrong password: the push must fail.
    wrong = write_auth_file(tmp_path / "wrong.json", registry.address, basic_token("nope"))
    with pytest.raises(SkopeoError) as err:
        skopeo_copy(
            f"oci:{tmp_path / 'in'}:v1",
            f"docker://{registry.address}/ecr-login/test:v1",
            dest_authfile=wrong,
            env=env,
        )
    assert "unauthorized" in str(err.value).lower()
    assert "nope" not in " ".join(err.value.cmd)
