"""A stand-in Amazon ECR API for tests: real AWS JSON 1.1, real SigV4 checks.

Why a server and not a mock: the program must be exercised through the same
code paths it uses against AWS (boto3 or the AWS CLI, an endpoint URL, signed
HTTP requests, retries on real status codes). This server answers
``GetAuthorizationToken`` for private ECR and ECR Public on 127.0.0.1, refuses
requests whose SigV4 signature does not verify, records every call, and can
be scripted to misbehave the way AWS and the network do.

Beyond ECR it plays the two other places credentials come from, so the whole
credential chain can be proved without AWS: STS ``AssumeRole`` and
``GetCallerIdentity`` (AWS query protocol, XML answers, SigV4 service ``sts``)
and an IMDSv2-style instance
metadata service (``AWS_EC2_METADATA_SERVICE_ENDPOINT`` = :attr:`StandinECR.url`).
Both issue temporary credentials that the server then accepts, with their
session token, for ECR calls; :class:`Call` records which role signed each
call. With ``tls=(certfile, keyfile)`` it serves HTTPS instead of HTTP. Its
clock can be set off by ``clock_offset`` seconds, as a host's clock drifts
from AWS's: the ``Date`` header, the SigV4 time check and the token expiry
follow it.

Only the standard library is used so it also runs under Debian's
``/usr/bin/python3`` and inside guests. Run as a script it serves until
SIGTERM and prints its URL on one line; the password comes from a file or
the environment variable ``STANDIN_PASSWORD``, never the command line.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote
from xml.sax.saxutils import escape

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCOUNT",
    "DEFAULT_PROXY_ENDPOINT_TEMPLATE",
    "DEFAULT_SECRET_ACCESS_KEY",
    "PRIVATE_TARGET",
    "PUBLIC_TARGET",
    "STS_ASSUME_ROLE_TARGET",
    "STS_GET_CALLER_IDENTITY_TARGET",
    "Call",
    "StandinECR",
    "main",
    "self_signed_certificate",
]

log = logging.getLogger("standin_ecr")

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_ACCESS_KEY_ID = "AKIDSTANDIN"
DEFAULT_SECRET_ACCESS_KEY = "standin-secret"
DEFAULT_PROXY_ENDPOINT_TEMPLATE = "https://{account}.dkr.ecr.{region}.amazonaws.com"
PRIVATE_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
PUBLIC_TARGET = "SpencerFrontendService.GetAuthorizationToken"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# What Call.target says for STS calls (query protocol has no X-Amz-Target header).
STS_TARGET_PREFIX = "AWSSecurityTokenServiceV20110615."
STS_ASSUME_ROLE_TARGET = STS_TARGET_PREFIX + "AssumeRole"
STS_GET_CALLER_IDENTITY_TARGET = STS_TARGET_PREFIX + "GetCallerIdentity"
# The instance id an instance profile's role session is named after, as on EC2.
INSTANCE_ID = "i-0123456789abcdef0"
STS_VERSION = "2011-06-15"
_STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
# The error codes STS (query protocol) uses where ECR (JSON) uses another name.
_QUERY_ERROR_CODES = {
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "ExpiredTokenException": "ExpiredToken",
}
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,128}$")
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_IMDS_TOKEN_HEADER = "X-aws-ec2-metadata-token"
_IMDS_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
_IMDS_CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
_IMDS_REGION_PATH = "/latest/meta-data/placement/region"
_IMDS_ZONE_PATH = "/latest/meta-data/placement/availability-zone"

# Which SigV4 signing name each operation must be signed for (as AWS checks).
_SERVICE_FOR_TARGET = {PRIVATE_TARGET: "ecr", PUBLIC_TARGET: "ecr-public"}

#: Behaviours accepted by :meth:`StandinECR.script`, besides ``delay:SECONDS``.
BEHAVIOURS = frozenset(
    {
        "ok",
        "500",
        "503",
        "throttle",
        "denied",
        "expired_creds",
        "not_json",
        "html",
        "bad_base64",
        "no_aws_prefix",
        "expired",
        "empty",
        "hang",
        "close",
    }
)

# Canned AWS-style errors: behaviour -> (HTTP status, __type, message).
_ERRORS: dict[str, tuple[int, str, str]] = {
    "500": (500, "ServerException", "Internal service error (stand-in)"),
    "503": (503, "ServiceUnavailableException", "Service unavailable (stand-in)"),
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "denied": (
        400,
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/standin is not authorized to perform:"
        " ecr:GetAuthorizationToken on resource: * (stand-in)",
    ),
    "expired_creds": (
        403,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    ),
}

_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Proxy Authentication Required</title>"
    b"</head><body><h1>Please log in to the corporate proxy</h1></body></html>\n"
)
# A 200 cut short mid-body, as a dying proxy delivers it (valid UTF-8 on
# purpose: botocore raises a bare UnicodeDecodeError on non-UTF-8 bodies).
_GARBAGE = b'{"authorizationData": [{"authorizationTok'

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
_MAX_SKEW_SECONDS = 15 * 60  # what AWS allows between X-Amz-Date and its clock


@dataclass
class Call:
    """One request the stand-in received, so tests can assert on traffic.

    ``service``, ``region`` and ``access_key`` come from the SigV4 credential
    scope and are None when the request carried none. ``status`` is None while
    the call is in progress and for ``hang``/``close``, which never answer.
    ``assumed_role`` is the role ARN whose temporary credentials signed the
    call (None for long-term keys) and ``issued_by`` where those came from
    (``"sts"`` or ``"imds"``). ``role_arn`` is what an AssumeRole call asked for.
    """

    target: str
    started_monotonic: float
    started_wall: float
    service: str | None = None
    region: str | None = None
    access_key: str | None = None
    session_token: bool = False
    assumed_role: str | None = None
    issued_by: str | None = None
    role_arn: str | None = None
    registry_ids: list[str] = field(default_factory=list)
    behaviour: str | None = None
    status: int | None = None
    error_type: str | None = None
    ended_monotonic: float | None = None
    ended_wall: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the server spent on the call (None until it ended)."""
        if self.ended_monotonic is None:
            return None
        return self.ended_monotonic - self.started_monotonic


class _Refusal(Exception):
    """An AWS error answer decided before the operation runs."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class _Identity:
    access_key: str
    region: str
    service: str
    session_token: bool
    assumed_role: str | None = None
    issued_by: str | None = None
    session_name: str | None = None


@dataclass(frozen=True)
class _Temporary:
    """Temporary credentials the stand-in issued (AssumeRole or IMDS)."""

    secret: str
    session_token: str
    role_arn: str
    issued_by: str
    expires: float
    session_name: str = "ecr-login"


def _iso8601(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def self_signed_certificate(directory: str) -> tuple[str, str]:
    """Make a throw-away certificate for 127.0.0.1 with openssl; returns (certfile, keyfile).

    The certificate is its own CA, so it doubles as ``AWS_CA_BUNDLE``.
    """
    cert = os.path.join(directory, "standin-cert.pem")
    key = os.path.join(directory, "standin-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    return cert, key


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 key; independent of botocore so a bug there shows."""
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


def _stable_id(prefix: str, text: str) -> str:
    """An IAM-style unique id (AIDA... for users, AROA... for roles), the same for the same name."""
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:17].upper()


def _canonical_query(query: str) -> str:
    """Sort the already-encoded pairs, as the SigV4 spec and botocore do."""
    if not query:
        return ""
    pairs = sorted((k, v) for k, _, v in (p.partition("=") for p in query.split("&")))
    return "&".join(f"{k}={v}" for k, v in pairs)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not join handler threads on close: a "hang" must not block stop().
    block_on_close = False

    def __init__(self, standin: StandinECR, port: int, tls: tuple[str, str] | None = None) -> None:
        self.standin = standin
        super().__init__(("127.0.0.1", port), _Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            # The handshake runs in the handler thread (setup), not in accept().
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StandinECR/1"

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header by the stand-in's own (possibly offset) clock."""
        return super().date_time_string(self._standin().now() if timestamp is None else timestamp)

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self._standin().track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._standin().track(self.connection, add=False)

    def _standin(self) -> StandinECR:
        server = self.server
        assert isinstance(server, _Server)
        return server.standin

    def do_POST(self) -> None:
        self._standin().handle(self)

    def do_GET(self) -> None:
        if self.path.startswith("/latest/"):
            return self._standin().metadata(self)
        self._standin().respond(self, 404, {"__type": "UnknownOperationException", "message": "POST only"})

    def do_PUT(self) -> None:
        if self.path.startswith("/latest/"):
            return self._standin().metadata(self)
        self._standin().respond(self, 404, {"__type": "UnknownOperationException", "message": "POST only"})

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class StandinECR:
    """The stand-in ECR API server; see the module docstring for why.

    ``password`` is what every token carries (token = base64("AWS:" +
    password)), so a local registry with the same htpasswd password accepts
    it. ``accounts[0]`` is the caller's own registry, answered when a request
    names no ``registryIds``; named ids are answered whether listed or not,
    as AWS does. ``credentials`` maps access key ids to secrets the SigV4
    check accepts. ``default_delay`` seconds are added to every call.

    STS: ``AssumeRole`` is answered for any well-formed role ARN, or, when
    ``roles`` is given, only for those (others: AccessDenied). Instance
    metadata: ``instance_role`` is the role name the IMDS paths under
    ``/latest/`` serve (None: no instance profile, as on a bare instance), and
    ``instance_region`` the region ``placement/region`` answers (None: 404).
    Temporary credentials live ``temporary_validity`` seconds. ``tls`` is
    ``(certfile, keyfile)`` to serve HTTPS (see :func:`self_signed_certificate`).

    ``GetCallerIdentity`` answers who signed: a long-term key is the IAM user
    ``users[access_key]`` (default ``standin``) of ``accounts[0]``; temporary
    credentials are the assumed role's session. ``clock_offset`` seconds are
    added to the stand-in's clock (settable while running).

    ``throttle_bucket=(capacity, refill_per_second)`` throttles GetAuthorizationToken as AWS
    documents it (a token bucket per account and region, full at start): a call that finds
    the bucket empty gets ``ThrottlingException`` (HTTP 400), recorded with behaviour
    ``"throttled"``; scripted behaviours come after the bucket.
    """

    def __init__(
        self,
        password: str,
        *,
        validity_seconds: float = 43200,
        accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
        proxy_endpoint_template: str = DEFAULT_PROXY_ENDPOINT_TEMPLATE,
        credentials: Mapping[str, str] | None = None,
        default_delay: float = 0.0,
        port: int = 0,
        roles: Sequence[str] | None = None,
        instance_role: str | None = None,
        instance_region: str | None = None,
        temporary_validity: float = 3600,
        tls: tuple[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        clock_offset: float = 0.0,
        throttle_bucket: tuple[float, float] | None = None,
    ) -> None:
        if not accounts:
            raise ValueError("accounts must name at least the default account")
        self.password = password
        self.validity_seconds = validity_seconds
        self.accounts = list(accounts)
        self.proxy_endpoint_template = proxy_endpoint_template
        self.credentials = dict(credentials if credentials is not None else {DEFAULT_ACCESS_KEY_ID: DEFAULT_SECRET_ACCESS_KEY})
        self.default_delay = default_delay
        self.roles = None if roles is None else list(roles)
        self.instance_role = instance_role
        self.instance_region = instance_region
        self.temporary_validity = temporary_validity
        self.tls = tls
        self.users = dict(users or {})
        self.clock_offset = clock_offset
        self.throttle_bucket = throttle_bucket
        self._bucket: dict[str, tuple[float, float]] = {}  # region -> (tokens, when counted)
        self.calls: list[Call] = []
        #: Instance-metadata requests as "METHOD PATH" ("+token" when IMDSv2 token sent).
        self.metadata_requests: list[str] = []
        self._temporary: dict[str, _Temporary] = {}
        self._imds_tokens: set[str] = set()
        self._instance_credentials: str | None = None
        self._port = port
        self._lock = threading.Lock()
        self._queues: dict[str | None, collections.deque[str]] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> StandinECR:
        """Bind 127.0.0.1 and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("StandinECR already started")
        self._stopping.clear()
        self._server = _Server(self, self._port, self.tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"standin-ecr-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes hanging calls and drops open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandinECR:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._server is None:
            raise RuntimeError("StandinECR is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Endpoint URL for boto3 ``endpoint_url`` / ``aws --endpoint-url``."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- test controls -----------------------------------------------------

    def script(self, behaviours: Sequence[str], region: str | None = None) -> None:
        """Queue behaviours, one consumed per authenticated call.

        A call in ``region`` takes from that region's queue first, then from
        the global queue (``region=None``); with both empty it answers "ok".
        Unknown names raise ValueError here rather than surprise a test later.
        """
        for behaviour in behaviours:
            _validate_behaviour(behaviour)
        with self._lock:
            self._queues.setdefault(region, collections.deque()).extend(behaviours)

    def reset(self) -> None:
        """Forget recorded calls and queued behaviours (issued credentials stay valid)."""
        with self._lock:
            self.calls.clear()
            self.metadata_requests.clear()
            self._queues.clear()

    def now(self) -> float:
        """The stand-in's clock: the host's, moved by ``clock_offset``."""
        return time.time() + self.clock_offset

    def issue_credentials(
        self, role_arn: str, issued_by: str = "sts", session_name: str = "ecr-login"
    ) -> tuple[str, str, str, float]:
        """Mint temporary credentials for ``role_arn`` that ECR calls will accept.

        Returns (access key id, secret, session token, expiry as epoch seconds).
        """
        access_key = "ASIA" + secrets.token_hex(8).upper()
        temporary = _Temporary(
            secret=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(96),
            role_arn=role_arn,
            issued_by=issued_by,
            expires=time.time() + self.temporary_validity,
            session_name=session_name,
        )
        with self._lock:
            self._temporary[access_key] = temporary
        return access_key, temporary.secret, temporary.session_token, temporary.expires

    def ecr_calls(self) -> list[Call]:
        """The recorded calls that were not STS calls."""
        with self._lock:
            return [call for call in self.calls if not call.target.startswith(STS_TARGET_PREFIX)]

    def sts_calls(self) -> list[Call]:
        """The recorded STS calls."""
        with self._lock:
            return [call for call in self.calls if call.target.startswith(STS_TARGET_PREFIX)]

    @property
    def call_count(self) -> int:
        """Number of requests received (including refused ones)."""
        with self._lock:
            return len(self.calls)

    def token(self) -> str:
        """The token a good call returns, for comparisons in tests."""
        return base64.b64encode(f"AWS:{self.password}".encode()).decode("ascii")

    # -- request handling (runs in handler threads) -------------------------

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Remember open connections so stop() can drop them."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Authenticate, pick the scripted behaviour, answer, record."""
        target = handler.headers.get("X-Amz-Target", "")
        # The AWS query protocol (STS): a form POST naming its Action, no X-Amz-Target.
        query = not target and handler.headers.get("Content-Type", "").split(";")[0].strip() == FORM_CONTENT_TYPE
        call = Call(
            target=STS_TARGET_PREFIX if query else target,
            started_monotonic=time.monotonic(),
            started_wall=time.time(),
        )
        with self._lock:
            self.calls.append(call)
        try:
            length = int(handler.headers.get("Content-Length", "0"))
            body = handler.rfile.read(length) if length > 0 else b""
            if query:
                self._serve_sts(handler, call, body)
            else:
                self._serve(handler, call, body)
        except _Refusal as refusal:
            if query:
                code = _QUERY_ERROR_CODES.get(refusal.error_type, refusal.error_type)
                self._finish(call, refusal.status, code)
                self.respond(handler, refusal.status, _query_error(refusal.status, code, refusal.message), "text/xml")
                return
            self._finish(call, refusal.status, refusal.error_type)
            self.respond(
                handler,
                refusal.status,
                {"__type": refusal.error_type, "message": refusal.message},
            )

    def _record_identity(self, call: Call, identity: _Identity) -> None:
        call.service = identity.service
        call.region = identity.region
        call.access_key = identity.access_key
        call.session_token = identity.session_token
        call.assumed_role = identity.assumed_role
        call.issued_by = identity.issued_by

    def _serve_sts(self, handler: BaseHTTPRequestHandler, call: Call, body: bytes) -> None:
        """STS over the AWS query protocol: AssumeRole and GetCallerIdentity."""
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise _Refusal(400, "MalformedQueryString", "The request body is not a form") from None

        def value(name: str) -> str:
            values = form.get(name, [])
            return values[0] if len(values) == 1 else ""

        action = value("Action")
        call.target = STS_TARGET_PREFIX + action
        identity = self._authenticate(handler, body)
        self._record_identity(call, identity)
        if identity.service != "sts":
            raise _Refusal(403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
        if action not in ("AssumeRole", "GetCallerIdentity"):
            raise _Refusal(400, "InvalidAction", f"Could not find operation {action!r} for version {STS_VERSION}")
        if value("Version") != STS_VERSION:
            raise _Refusal(400, "InvalidAction", f"Unsupported Version {value('Version')!r}")
        if action == "GetCallerIdentity":  # allowed to everyone who signs correctly, as on AWS
            self._finish(call, 200)
            return self.respond(handler, 200, self._caller_identity(identity), "text/xml")
        role_arn, session_name = value("RoleArn"), value("RoleSessionName")
        call.role_arn = role_arn or None
        if not _ROLE_ARN_RE.match(role_arn):
            raise _Refusal(400, "ValidationError", f"{role_arn!r} is invalid for parameter roleArn")
        if not _SESSION_NAME_RE.match(session_name):
            raise _Refusal(400, "ValidationError", "roleSessionName must be 2-64 characters of [\\w+=,.@-]")
        if self.roles is not None and role_arn not in self.roles:
            caller = identity.assumed_role or f"arn:aws:iam::{self.accounts[0]}:user/standin"
            message = f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            raise _Refusal(403, "AccessDenied", message)
        access_key, secret, token, expires = self.issue_credentials(role_arn, "sts", session_name)
        role_name = role_arn.rsplit("/", 1)[1]
        account = role_arn.split(":")[4]
        answer = (
            f'<AssumeRoleResponse xmlns="{_STS_XMLNS}"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>{_stable_id('AROA', role_arn)}:{escape(session_name)}</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{account}:assumed-role/{escape(role_name)}/{escape(session_name)}</Arn></AssumedRoleUser>"
            f"<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{escape(secret)}</SecretAccessKey>"
            f"<SessionToken>{escape(token)}</SessionToken><Expiration>{_iso8601(expires)}</Expiration></Credentials>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</AssumeRoleResponse>"
        )
        self._finish(call, 200)
        self.respond(handler, 200, answer.encode("utf-8"), "text/xml")

    def _caller_identity(self, identity: _Identity) -> bytes:
        """The GetCallerIdentity answer for whoever signed the request."""
        if identity.assumed_role is not None:
            account = identity.assumed_role.split(":")[4]
            role_name = identity.assumed_role.rsplit("/", 1)[1]
            session = identity.session_name or "ecr-login"
            arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
            user_id = f"{_stable_id('AROA', identity.assumed_role)}:{session}"
        else:
            account = self.accounts[0]
            arn = f"arn:aws:iam::{account}:user/{self.users.get(identity.access_key, 'standin')}"
            user_id = _stable_id("AIDA", identity.access_key)
        return (
            f'<GetCallerIdentityResponse xmlns="{_STS_XMLNS}"><GetCallerIdentityResult>'
            f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{account}</Account>"
            f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</GetCallerIdentityResponse>"
        ).encode()

    def metadata(self, handler: BaseHTTPRequestHandler) -> None:
        """An IMDSv2-only instance metadata service: token first, then the instance profile's credentials."""
        token = handler.headers.get(_IMDS_TOKEN_HEADER)
        with self._lock:
            self.metadata_requests.append(f"{handler.command} {handler.path}" + ("+token" if token else ""))
        length = int(handler.headers.get("Content-Length", "0") or 0)
        if length > 0:
            handler.rfile.read(length)
        if handler.command == "PUT":
            if handler.path != "/latest/api/token":
                return self.respond(handler, 405, b"", "text/plain")
            if not handler.headers.get(_IMDS_TTL_HEADER, "").isdigit():
                return self.respond(handler, 400, b"", "text/plain")
            issued = secrets.token_urlsafe(32)
            with self._lock:
                self._imds_tokens.add(issued)
            return self.respond(handler, 200, issued.encode("ascii"), "text/plain")
        with self._lock:
            known = token in self._imds_tokens
        if not known:  # IMDSv2 only: no token, no answer
            return self.respond(handler, 401, b"", "text/plain")
        if handler.path == _IMDS_REGION_PATH and self.instance_region:
            return self.respond(handler, 200, self.instance_region.encode("utf-8"), "text/plain")
        if handler.path.rstrip("/") == _IMDS_ZONE_PATH and self.instance_region:  # what botocore asks
            return self.respond(handler, 200, f"{self.instance_region}a".encode(), "text/plain")
        if self.instance_role is None or not handler.path.startswith(_IMDS_CREDENTIALS_PATH):
            return self.respond(handler, 404, b"", "text/plain")
        name = handler.path[len(_IMDS_CREDENTIALS_PATH):]
        if not name:
            return self.respond(handler, 200, self.instance_role.encode("utf-8"), "text/plain")
        if name != self.instance_role:
            return self.respond(handler, 404, b"", "text/plain")
        with self._lock:
            access_key = self._instance_credentials
            temporary = self._temporary.get(access_key) if access_key else None
        if temporary is None or temporary.expires < time.time() + 60:
            role_arn = f"arn:aws:iam::{self.accounts[0]}:role/{self.instance_role}"
            access_key = self.issue_credentials(role_arn, "imds", INSTANCE_ID)[0]
            with self._lock:
                self._instance_credentials = access_key
                temporary = self._temporary[access_key]
        answer = {
            "Code": "Success",
            "LastUpdated": _iso8601(time.time()),
            "Type": "AWS-HMAC",
            "AccessKeyId": access_key,
            "SecretAccessKey": temporary.secret,
            "Token": temporary.session_token,
            "Expiration": _iso8601(temporary.expires),
        }
        self.respond(handler, 200, json.dumps(answer).encode("utf-8"), "text/plain")

    def _serve(self, handler: BaseHTTPRequestHandler, call: Call, body: bytes) -> None:
        identity = self._authenticate(handler, body)
        self._record_identity(call, identity)
        expected_service = _SERVICE_FOR_TARGET.get(call.target)
        if expected_service is None:
            raise _Refusal(400, "UnknownOperationException", f"Unknown operation {call.target!r}")
        if identity.service != expected_service:
            raise _Refusal(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{expected_service}'.",
            )
        content_type = handler.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip() != JSON_CONTENT_TYPE:
            raise _Refusal(400, "SerializationException", "Unexpected content type")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise _Refusal(400, "SerializationException", "Body is not JSON") from None
        if not isinstance(request, dict):
            raise _Refusal(400, "SerializationException", "Body is not an object")
        public = call.target == PUBLIC_TARGET
        registry_ids = [] if public else request.get("registryIds") or []
        if not isinstance(registry_ids, list) or not all(isinstance(r, str) and _ACCOUNT_RE.match(r) for r in registry_ids):
            raise _Refusal(
                400,
                "InvalidParameterException",
                "registryIds must be a list of 12-digit account ids",
            )
        call.registry_ids = list(registry_ids)
        if not self._take_from_bucket(identity.region):
            call.behaviour = "throttled"
            status, error_type, message = _ERRORS["throttle"]
            raise _Refusal(status, error_type, message)
        behaviour = self._next_behaviour(identity.region)
        call.behaviour = behaviour
        if self.default_delay > 0 and self._stopping.wait(self.default_delay):
            return self._drop(handler, call)
        if behaviour.startswith("delay:"):
            if self._stopping.wait(float(behaviour.split(":", 1)[1])):
                return self._drop(handler, call)
            behaviour = "ok"
        if behaviour == "hang":
            self._stopping.wait()
            return self._drop(handler, call)
        if behaviour == "close":
            return self._drop(handler, call)
        if behaviour in _ERRORS:
            status, error_type, message = _ERRORS[behaviour]
            raise _Refusal(status, error_type, message)
        if behaviour == "not_json":
            self._finish(call, 200)
            return self.respond(handler, 200, _GARBAGE)
        if behaviour == "html":
            self._finish(call, 200)
            return self.respond(handler, 200, _HTML_PAGE, content_type="text/html")
        answer = self._token_answer(behaviour, public, identity.region, registry_ids)
        self._finish(call, 200)
        self.respond(handler, 200, answer)

    def _token_answer(self, behaviour: str, public: bool, region: str, registry_ids: list[str]) -> dict[str, Any]:
        """Build the GetAuthorizationToken result, bent by ``behaviour``."""
        token = self.token()
        if behaviour == "bad_base64":
            token = "%%not*base64%%"
        elif behaviour == "no_aws_prefix":
            token = base64.b64encode(self.password.encode()).decode("ascii")
        now = self.now()
        expires = now - 60 if behaviour == "expired" else now + self.validity_seconds
        if public:
            if behaviour == "empty":
                return {"authorizationData": {}}
            return {"authorizationData": {"authorizationToken": token, "expiresAt": expires}}
        if behaviour == "empty":
            return {"authorizationData": []}
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": expires,
                    "proxyEndpoint": self.proxy_endpoint_template.format(account=account, region=region),
                }
                for account in registry_ids or self.accounts[:1]
            ]
        }

    def _take_from_bucket(self, region: str) -> bool:
        """One call's token from ``region``'s bucket (always, without ``throttle_bucket``)."""
        if self.throttle_bucket is None:
            return True
        capacity, rate = self.throttle_bucket
        now = time.monotonic()
        with self._lock:
            tokens, counted = self._bucket.get(region, (capacity, now))
            tokens = min(capacity, tokens + (now - counted) * rate)
            taken = tokens >= 1
            self._bucket[region] = (tokens - 1 if taken else tokens, now)
        return taken

    def _next_behaviour(self, region: str) -> str:
        with self._lock:
            for key in (region, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        return "ok"

    def _finish(self, call: Call, status: int | None, error_type: str | None = None) -> None:
        with self._lock:
            call.status = status
            call.error_type = error_type
            call.ended_monotonic = time.monotonic()
            call.ended_wall = time.time()

    def _drop(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        """End the call without any answer, as a dead peer or proxy would."""
        self._finish(call, None)
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def respond(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any] | bytes,
        content_type: str = JSON_CONTENT_TYPE,
    ) -> None:
        """Write one complete HTTP answer with the headers AWS sends."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            handler.close_connection = True

    # -- SigV4 ---------------------------------------------------------------

    def _authenticate(self, handler: BaseHTTPRequestHandler, body: bytes) -> _Identity:
        """Verify the SigV4 signature from scratch; raise _Refusal if bad."""
        authorization = handler.headers.get("Authorization")
        if not authorization:
            raise _Refusal(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH_RE.match(authorization.strip())
        if match is None:
            raise _Refusal(400, "IncompleteSignatureException", "Authorization header is malformed")
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise _Refusal(400, "IncompleteSignatureException", "Credential scope is malformed")
        access_key, date, region, service, _ = parts
        secret = self.credentials.get(access_key)
        with self._lock:
            temporary = self._temporary.get(access_key) if secret is None else None
        if temporary is not None:
            secret = temporary.secret
        if secret is None:
            raise _Refusal(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        amz_date = handler.headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _Refusal(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed") from None
        if not amz_date.startswith(date):
            raise _Refusal(403, "InvalidSignatureException", "Credential date does not match X-Amz-Date")
        skew = abs(self.now() - signed_at.timestamp())
        if skew > _MAX_SKEW_SECONDS:
            raise _Refusal(
                403,
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is more than 15 minutes from the server time.",
            )
        signed_headers = match["signed"].split(";")
        if "host" not in signed_headers:
            raise _Refusal(403, "InvalidSignatureException", "Host header must be signed")
        canonical_headers = ""
        for name in signed_headers:
            values = handler.headers.get_all(name)
            if values is None:
                raise _Refusal(403, "InvalidSignatureException", f"Signed header {name!r} is missing")
            value = ",".join(" ".join(v.split()) for v in values)
            canonical_headers += f"{name}:{value}\n"
        path, _, query = handler.path.partition("?")
        canonical_request = "\n".join(
            [
                handler.command,
                quote(path or "/", safe="/~"),
                _canonical_query(query),
                canonical_headers,
                match["signed"],
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{region}/{service}/aws4_request"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            ]
        )
        expected = hmac.new(
            _signing_key(secret, date, region, service),
            string_to_sign.encode("utf-8"),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            raise _Refusal(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you"
                " provided. Check your AWS Secret Access Key and signing method.",
            )
        session_token = handler.headers.get("X-Amz-Security-Token")
        if temporary is not None:
            # Temporary keys are only good with their own session token, and until they expire.
            if session_token is None or not hmac.compare_digest(session_token, temporary.session_token):
                raise _Refusal(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
            if temporary.expires <= time.time():
                raise _Refusal(403, "ExpiredTokenException", "The security token included in the request is expired")
        return _Identity(
            access_key=access_key,
            region=region,
            service=service,
            session_token=bool(session_token),
            assumed_role=temporary.role_arn if temporary else None,
            issued_by=temporary.issued_by if temporary else None,
            session_name=temporary.session_name if temporary else None,
        )


def _query_error(status: int, code: str, message: str) -> bytes:
    """An AWS query-protocol (STS) error document."""
    kind = "Receiver" if status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{_STS_XMLNS}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def _validate_behaviour(behaviour: str) -> None:
    if behaviour in BEHAVIOURS:
        return
    if behaviour.startswith("delay:"):
        try:
            seconds = float(behaviour.split(":", 1)[1])
        except ValueError:
            seconds = -1.0
        if seconds >= 0:
            return
    raise ValueError(f"unknown stand-in behaviour {behaviour!r}")


def _read_password(password_file: str | None) -> str:
    """Password from a file or STANDIN_PASSWORD, so it never shows in ps."""
    if password_file:
        with open(password_file, encoding="utf-8") as handle:
            password = handle.read().rstrip("\r\n")
    else:
        password = os.environ.get("STANDIN_PASSWORD", "")
    if not password:
        raise SystemExit("standin_ecr: give --password-file FILE or set STANDIN_PASSWORD")
    return password


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; print the URL once listening."""
    parser = argparse.ArgumentParser(description="Serve a stand-in Amazon ECR API on 127.0.0.1 until SIGTERM.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    parser.add_argument("--password-file", help="file holding the token password")
    parser.add_argument(
        "--proxy-endpoint",
        default=DEFAULT_PROXY_ENDPOINT_TEMPLATE,
        help="proxyEndpoint template ({account}, {region}) or a fixed URL",
    )
    parser.add_argument("--validity", type=float, default=43200, help="token lifetime, seconds")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin = StandinECR(
        _read_password(args.password_file),
        validity_seconds=args.validity,
        proxy_endpoint_template=args.proxy_endpoint,
        port=args.port,
    )
    with standin:
        print(standin.url, flush=True)
        while not stop.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
