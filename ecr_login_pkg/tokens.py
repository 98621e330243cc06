"""Get ECR authorization tokens: one call per (region, AWS identity), in parallel, with retries.

An ECR token is valid for every registry its principal can reach in that region,
so the refresh engine groups targets by ``Identity`` and asks once per group.
boto3/botocore is imported only here, and only when a token is really needed.

``timeout`` bounds the whole fetch whatever the server does (slow headers, a body
dripping a byte at a time, a connection that never closes): botocore's own timeouts
are per read, so each identity is fetched in a daemon worker thread and the caller
stops waiting at the deadline; an AWS CLI still running then is killed. A daemon
thread left in a socket read cannot hold the process, and a signal (SIGINT, SIGTERM)
reaches the main thread at once, wherever the workers are.
"""

from __future__ import annotations

import base64
import binascii
import queue
import random
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import TOKEN_LIFETIME, Target, env_endpoint
from .errors import ConfigError, DeniedError, EcrLoginError, MalformedAnswerError, NotSetUpError, TemporaryError
from .logs import Log, redact, register_secret
from .registry import PUBLIC_REGION, strip_url

if TYPE_CHECKING:
    from botocore.client import BaseClient

THROTTLING_CODES = {
    "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "RequestThrottled", "SlowDown", "ProvisionedThroughputExceededException",
}
TRANSIENT_CODES = {"ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
                   "ServerException", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
DENIED_CODES = {
    "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "MissingAuthenticationToken", "IncompleteSignature", "AuthFailure", "UnauthorizedOperation",
    "RequestExpired", "InvalidToken",
}
MAX_WORKERS = 8
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
LATE_GRACE = 0.5  # after the deadline, how long a worker's own (more telling) error is awaited
CLOCK_TOLERANCE = 15 * 60.0  # a fresh token lasting further off TOKEN_LIFETIME than this: the clock is off


@dataclass(frozen=True)
class Identity:
    """Who asks for a token, and where: the key one API call serves."""

    region: str
    public: bool = False
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    source: str = "boto3"

    def describe(self) -> str:
        service = "ecr-public" if self.public else "ecr"
        parts = [f"{service} {self.region or '(instance region)'}"]
        if self.profile:
            parts.append(f"profile {self.profile}")
        if self.role_arn:
            parts.append(f"role {self.role_arn}")
        if self.source != "boto3":
            parts.append(f"via {self.source}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Token:
    """A registry credential. ``repr`` never shows the password."""

    username: str
    password: str
    expires_at: float
    proxy_host: str | None = None  # the caller's own registry, from the answer

    def __repr__(self) -> str:
        return f"Token(username={self.username!r}, expires_at={self.expires_at!r}, proxy_host={self.proxy_host!r})"


def call_name(identity: Identity) -> str:
    """The call that asks for ``identity``'s token, as messages name it."""
    if identity.source == "awscli":
        return f"aws {'ecr-public' if identity.public else 'ecr'} get-login-password ({identity.describe()})"
    return f"GetAuthorizationToken ({identity.describe()})"


def identity_of(target: Target) -> Identity:
    return Identity(
        region=PUBLIC_REGION if target.public else target.region,
        public=target.public,
        profile=target.profile,
        role_arn=target.role_arn,
        endpoint_url=target.endpoint_url,
        source=target.token_source,
    )


def decode_token(encoded: Any, expires_at: float, proxy_endpoint: Any, what: str) -> Token:
    """Validate an authorizationData entry; raise MalformedAnswerError on anything unusable."""
    if not isinstance(encoded, str) or not encoded:
        raise MalformedAnswerError(f"{what}: the answer has no authorizationToken")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedAnswerError(f"{what}: the authorizationToken is not base64 'AWS:<password>'") from None
    username, sep, password = decoded.partition(":")
    register_secret(password if sep else decoded)  # before any check can fail: no message may carry it
    if not sep or username != "AWS" or not password:
        raise MalformedAnswerError(f"{what}: the authorizationToken lacks the 'AWS:' user prefix")
    register_secret(encoded)
    register_secret(base64.b64encode(f"AWS:{password}".encode()).decode())  # the docker "auth" form, canonical
    if expires_at <= time.time():
        raise MalformedAnswerError(f"{what}: the token's expiresAt is already in the past (check the clock)")
    proxy_host = strip_url(proxy_endpoint) if isinstance(proxy_endpoint, str) and proxy_endpoint else None
    return Token(username=username, password=password, expires_at=expires_at, proxy_host=proxy_host)


def _timestamp(value: Any, what: str) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise MalformedAnswerError(f"{what}: the answer has no usable expiresAt")


def classify_client_error(code: str, status: int, message: str, what: str) -> EcrLoginError:
    """Map an AWS error code to the outcome an operator acts on.

    Denied (77) and what time can cure (throttling, 408, 429, 5xx: 75, retried)
    first; any other 4xx is a request retrying cannot fix (a wrong
    ``endpoint_url`` answering 404, a region or parameter the service rejects),
    so it fails at once as a configuration error (78) instead of being retried
    for the whole deadline and reported as temporary.
    """
    message = " ".join(message.split())
    if len(message) > 200:  # e.g. a whole HTML page from whatever answers at a wrong endpoint
        message = message[:200] + "..."
    text = redact(f"{what}: {code}: {message}" if message else f"{what}: {code}")
    if code in DENIED_CODES or status in (401, 403):
        return DeniedError(text)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500 or status in (408, 429):
        return TemporaryError(text)
    if 400 <= status < 500:
        return ConfigError(f"{text} (HTTP {status}: retrying will not help; check endpoint_url and region)")
    return MalformedAnswerError(text) if status == 200 else TemporaryError(text)


class _BotoFetcher:
    """Fetch with botocore: the credential chain (env, profiles, role_arn/source_profile, IMDS)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        import botocore.session

        self._botocore_session = botocore.session
        self._sessions: dict[str | None, Any] = {}
        self._environ = environ

    def _session(self, profile: str | None) -> Any:
        """One botocore session per profile, shared by its regions' clients (a session costs
        its handler registrations and a credential lookup). Only the main thread uses these:
        every client is made here, before the workers start."""
        if profile not in self._sessions:
            self._sessions[profile] = self._botocore_session.Session(profile=profile)
        return self._sessions[profile]

    def client(self, identity: Identity, remaining: float) -> BaseClient:
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        config = Config(
            connect_timeout=max(1.0, min(5.0, remaining)),
            read_timeout=max(1.0, min(15.0, remaining)),
            # no botocore retries (ours are above); "standard" mode, unlike "legacy", loads no _retry.json model
            retries={"total_max_attempts": 1, "mode": "standard"},
            user_agent_extra=f"ecr-login/{__version__}",
        )
        service = "ecr-public" if identity.public else "ecr"
        try:
            if identity.role_arn:
                # its own session: the worker thread makes this identity's ECR client after
                # AssumeRole, and a botocore session is not safe to share across threads
                session = self._botocore_session.Session(profile=identity.profile)
                return _RoleClient(session, identity, service, config, self._environ)
            return self._session(identity.profile).create_client(
                service, region_name=identity.region, endpoint_url=identity.endpoint_url, config=config
            )
        except ProfileNotFound as exc:  # the profile may come from AWS_PROFILE: botocore's exception names it
            name = identity.profile or getattr(exc, "kwargs", {}).get("profile") or self._environ.get("AWS_PROFILE")
            raise ConfigError(
                f"AWS profile '{name}' not found in the AWS config files (check AWS_PROFILE, --profile or 'profile')"
            ) from None
        except BotoCoreError as exc:
            raise ConfigError(redact(f"{identity.describe()}: {exc}")) from None
        except ValueError:  # botocore: "Invalid endpoint: ...", or ipaddress on a bad [literal]
            variable = "AWS_ENDPOINT_URL_ECR_PUBLIC" if identity.public else "AWS_ENDPOINT_URL_ECR"
            raise ConfigError(redact(
                f"{identity.describe()}: the endpoint URL '{identity.endpoint_url}' is not valid "
                f"(check endpoint_url, --endpoint-url, {variable}/AWS_ENDPOINT_URL)"
            )) from None

    def fetch(self, identity: Identity, client: BaseClient) -> Token:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )

        what = f"GetAuthorizationToken ({identity.describe()})"
        try:
            answer = client.get_authorization_token()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            raise classify_client_error(str(error.get("Code", "Unknown")), status, str(error.get("Message", "")), what) from None
        except NoCredentialsError:  # the whole chain searched, instance metadata included: set-up, not a refusal
            raise NotSetUpError(
                f"{what}: no AWS credentials found (give this host an instance profile, AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws)"
            ) from None
        except PartialCredentialsError as exc:
            raise ConfigError(redact(f"{what}: incomplete AWS credentials: {exc}")) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise TemporaryError(redact(f"{what}: {exc}")) from None
        except ValueError as exc:  # e.g. a body that is not UTF-8: botocore lets UnicodeDecodeError through
            raise MalformedAnswerError(f"{what}: the answer could not be decoded ({type(exc).__name__})") from None
        except BotoCoreError as exc:
            name = type(exc).__name__
            if "Parser" in name or "Parse" in name:
                raise MalformedAnswerError(f"{what}: the answer could not be parsed ({name})") from None
            raise TemporaryError(redact(f"{what}: {exc}")) from None
        data = answer.get("authorizationData")
        if identity.public:
            entry = data if isinstance(data, dict) else None
        else:
            entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        if not entry:
            raise MalformedAnswerError(f"{what}: the answer has no authorizationData{_what_came(answer, data)}")
        expires_at = _timestamp(entry.get("expiresAt"), what)
        return decode_token(entry.get("authorizationToken"), expires_at, entry.get("proxyEndpoint"), what)


class _RoleClient:
    """An ECR client for a ``role_arn`` identity that assumes the role at its first call.

    It gets a botocore session of its own, created in the main thread, that no
    other identity shares. The STS client is made from it up front with the
    other clients; the AssumeRole call runs inside ``fetch``, in a worker thread
    and under its retries, so an STS refusal, throttling or outage is classified
    (77, 75) and retried exactly like an ECR one instead of escaping as an
    internal error. The ECR client is then made in that worker from this
    identity's own session, which no other thread touches.
    """

    def __init__(self, session: Any, identity: Identity, service: str, config: Any, environ: Mapping[str, str]) -> None:
        self._session = session
        self._identity = identity
        self._service = service
        self._config = config
        endpoint = env_endpoint(environ, "AWS_ENDPOINT_URL_STS")
        try:
            self._sts = session.create_client("sts", region_name=identity.region, endpoint_url=endpoint, config=config)
        except ValueError:
            raise ConfigError(redact(
                f"{identity.describe()}: the STS endpoint URL '{endpoint}' is not valid "
                "(check AWS_ENDPOINT_URL_STS/AWS_ENDPOINT_URL)"
            )) from None
        self._client: Any = None

    def get_authorization_token(self) -> Any:
        if self._client is None:
            answer = self._sts.assume_role(RoleArn=self._identity.role_arn, RoleSessionName="ecr-login")
            creds = answer.get("Credentials") if isinstance(answer, dict) else None
            fields = ("AccessKeyId", "SecretAccessKey", "SessionToken")
            if isinstance(creds, dict):
                for name in fields[1:]:
                    if isinstance(creds.get(name), str):
                        register_secret(creds[name])
            if not isinstance(creds, dict) or not all(isinstance(creds.get(name), str) and creds[name] for name in fields):
                raise MalformedAnswerError(
                    f"AssumeRole {self._identity.role_arn}: the STS answer has no usable Credentials"
                    " (AccessKeyId, SecretAccessKey, SessionToken)"
                )
            self._client = self._session.create_client(
                self._service,
                region_name=self._identity.region,
                endpoint_url=self._identity.endpoint_url,
                config=self._config,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return self._client.get_authorization_token()


def _what_came(answer: Any, data: Any) -> str:
    """Say what arrived instead of a token: a proxy's page, or a body that is not the API's JSON."""
    if data is not None:
        return ""
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(answer, dict) else {}
    kind = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if kind and "json" not in kind:
        return f" (the body is {kind}, not the ECR API's JSON: a proxy or captive portal in the way?)"
    return " (the body is not a GetAuthorizationToken answer: not JSON, or cut short)"


class _Children:
    """The AWS CLI processes of one fetch, killed when the fetch stops waiting (deadline or signal)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopped = False

    def start(self, command: list[str], environ: Mapping[str, str], what: str) -> subprocess.Popen[bytes]:
        with self._guard:
            if self.stopped:
                raise TemporaryError(f"{what}: not started: the run is ending")
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(environ)
            )
            self._running.add(process)
            return process

    def done(self, process: subprocess.Popen[bytes]) -> None:
        with self._guard:
            self._running.discard(process)

    def stop(self) -> None:
        """Kill every AWS CLI still running; start no more."""
        with self._guard:
            self.stopped = True
            for process in self._running:
                try:
                    process.kill()
                except OSError:
                    pass


def _awscli_fetch(identity: Identity, remaining: float, environ: Mapping[str, str], children: _Children) -> Token:
    """``aws ecr get-login-password``: the password comes on stdout and is never echoed."""
    service = "ecr-public" if identity.public else "ecr"
    command = ["aws", service, "get-login-password"]
    if identity.region:  # else the AWS CLI finds it (v2 also asks instance metadata)
        command += ["--region", identity.region]
    if identity.profile:
        command += ["--profile", identity.profile]
    if identity.endpoint_url:
        command += ["--endpoint-url", identity.endpoint_url]
    what = call_name(identity)
    started = time.time()
    try:
        process = children.start(command, environ, what)
    except FileNotFoundError:
        raise ConfigError(f"{what}: the AWS CLI 'aws' is not on PATH (install awscli or use token_source = boto3)") from None
    try:
        out, err = process.communicate(timeout=max(0.1, remaining))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise TemporaryError(f"{what}: no answer within {remaining:.0f}s") from None
    finally:
        children.done(process)
    password = out.decode("utf-8", "replace").strip()
    if process.returncode != 0:
        register_secret(password)
        if children.stopped:
            raise TemporaryError(f"{what}: stopped: the run ran out of time or was interrupted")
        stderr = redact(err.decode("utf-8", "replace").strip().splitlines()[-1:][0] if err.strip() else "")
        for code in DENIED_CODES:
            if f"({code})" in stderr:
                raise DeniedError(f"{what}: {stderr}")
        if "Unable to locate credentials" in stderr:
            raise NotSetUpError(f"{what}: no AWS credentials found")
        if "could not be found" in stderr and "profile" in stderr:
            raise ConfigError(f"{what}: {stderr}")
        raise TemporaryError(f"{what}: exit {process.returncode}: {stderr}")
    if not password or "\n" in password or " " in password:
        raise MalformedAnswerError(f"{what}: printed no usable password")
    register_secret(password)
    encoded = base64.b64encode(f"AWS:{password}".encode()).decode()
    return decode_token(encoded, started + TOKEN_LIFETIME, None, what)


def with_instance_region(identity: Identity, environ: Mapping[str, str]) -> Identity:
    """Fill in the region from EC2 instance metadata when nothing else named one.

    The zero-config default must work on an EC2 build host that has an instance
    profile and no AWS configuration at all, as the AWS CLI v2 does there. The
    state keys the default registry by the identity *as planned* (region left
    empty), so a run with nothing due never asks the metadata service.

    With metadata switched off (``AWS_EC2_METADATA_DISABLED=true``) nothing can
    name a region: a set-up error (78). When the metadata service did not
    answer, an EC2 host (``readiness.on_ec2``) may just not have its network up
    yet at boot: temporary (75), the timer's next tick tries again. Any other
    host has no metadata service to wait for: 78, with how to set a region.
    """
    if identity.region:
        return identity
    how = "set 'region' in [defaults] of the configuration, AWS_REGION, or pass --region"
    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        raise NotSetUpError(f"no AWS region: {how} (instance metadata is off: AWS_EC2_METADATA_DISABLED=true)")
    from botocore.utils import InstanceMetadataRegionFetcher

    endpoint = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
    fetcher = InstanceMetadataRegionFetcher(
        timeout=1, num_attempts=2, config={"ec2_metadata_service_endpoint": endpoint} if endpoint else {}
    )
    try:
        region = fetcher.retrieve_region()
    except Exception:  # botocore logs and swallows most IMDS errors itself; be as lenient
        region = None
    if not region:
        from .readiness import on_ec2

        if on_ec2(environ):
            raise TemporaryError(f"no AWS region: instance metadata did not answer (the network may not be up yet); {how}")
        raise NotSetUpError(f"no AWS region: this host is not on EC2 (no instance metadata): {how}")
    return replace(identity, region=region)


def _unexpected(identity: Identity, exc: Exception) -> EcrLoginError:
    """An exception no handler above foresaw, as this identity's own failure.

    A lookup in an answer that lacks what it should (KeyError, IndexError)
    means a malformed answer; anything else is reported as
    temporary, named by its type only: its message may quote what came over
    the wire, credentials included.
    """
    if isinstance(exc, (KeyError, IndexError)):
        return MalformedAnswerError(f"{identity.describe()}: the answer lacks an expected part ({type(exc).__name__})")
    return TemporaryError(f"{identity.describe()}: unexpected {type(exc).__name__} while asking for a token")


def backoff_delay(attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    return ceiling / 2 + rng(0, ceiling / 2)


def fetch_tokens(
    identities: list[Identity], timeout: float, log: Log, environ: Mapping[str, str]
) -> dict[Identity, Token | EcrLoginError]:
    """Fetch a token for each identity in parallel, retrying transient failures until ``timeout``.

    Returns by the deadline (plus LATE_GRACE) whatever the servers do: an identity whose
    call has not ended by then gets a TemporaryError naming that call.
    """
    deadline = time.monotonic() + timeout
    results: dict[Identity, Token | EcrLoginError] = {}
    boto: _BotoFetcher | None = None
    clients: dict[Identity, Any] = {}
    asked: dict[Identity, Identity] = {}  # as planned -> with the instance's region filled in
    for identity in identities:
        if identity.source != "boto3":
            asked[identity] = identity
            continue
        try:
            if boto is None:
                boto = _BotoFetcher(environ)
            asked[identity] = with_instance_region(identity, environ)
            clients[identity] = boto.client(asked[identity], deadline - time.monotonic())
        except EcrLoginError as exc:
            results[identity] = exc
        except Exception as exc:  # one identity's surprise must not cost the others their logins
            results[identity] = _unexpected(identity, exc)
    children = _Children()

    def attempt(identity: Identity) -> Token:
        remaining = deadline - time.monotonic()
        if identity.source == "awscli":
            return _awscli_fetch(identity, remaining, environ, children)
        assert boto is not None
        return boto.fetch(asked[identity], clients[identity])

    def with_retries(identity: Identity) -> Token | EcrLoginError:
        tries = 0
        while True:
            tries += 1
            log.debug(f"requesting a token: {identity.describe()} (attempt {tries})")
            try:
                token = attempt(identity)
                if not children.stopped:  # a worker the run stopped waiting for writes nothing more
                    _check_clock(token, asked.get(identity, identity), log)
                return token
            except TemporaryError as exc:
                delay = backoff_delay(tries - 1)
                if time.monotonic() + delay >= deadline or children.stopped:
                    return TemporaryError(f"{exc} (gave up after {tries} attempts within {timeout:g}s)")
                log.warning(f"{exc}; retrying in {delay:.1f}s")
                time.sleep(delay)
                if children.stopped:
                    return TemporaryError(f"{exc} (gave up after {tries} attempts within {timeout:g}s)")
            except EcrLoginError as exc:
                return exc
            except Exception as exc:  # a worker's surprise is its identity's failure, not the run's
                return _unexpected(identity, exc)

    pending = [identity for identity in identities if identity not in results]
    try:
        finished = _in_daemon_threads(with_retries, pending, deadline + LATE_GRACE)
    finally:
        children.stop()  # at the deadline, or on SIGINT/SIGTERM: no AWS CLI outlives the run, no worker logs on
    for identity in pending:
        results[identity] = finished.get(identity) or TemporaryError(
            f"{call_name(asked.get(identity, identity))}: no answer within {timeout:g}s, the run's timeout; "
            "gave up waiting (a silent or dripping connection?)"
        )
    return results


def _in_daemon_threads(
    work: Callable[[Identity], Token | EcrLoginError], items: list[Identity], until: float
) -> dict[Identity, Token | EcrLoginError]:
    """``work(item)`` for each item in at most MAX_WORKERS daemon threads; what finished by ``until``
    (a ``time.monotonic`` time).

    Daemon threads, not a ThreadPoolExecutor: Python joins an executor's workers at exit, so
    one stuck in a socket read that no botocore timeout ends would hold the process after the
    run gave up on it. The main thread waits on a condition, which a signal interrupts.
    """
    todo: queue.SimpleQueue[Identity] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    finished: dict[Identity, Token | EcrLoginError] = {}
    changed = threading.Condition()

    def worker() -> None:
        while time.monotonic() < until:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            outcome = work(item)
            with changed:
                finished[item] = outcome
                changed.notify()

    for _ in range(min(MAX_WORKERS, len(items))):
        threading.Thread(target=worker, name="ecr-login-fetch", daemon=True).start()
    with changed:
        while len(finished) < len(items):
            left = until - time.monotonic()
            if left <= 0:
                break
            changed.wait(left)
        return dict(finished)


def _check_clock(token: Token, identity: Identity, log: Log) -> None:
    """Say so when a fresh token's lifetime by this host's clock is far off ECR's 12 h: a clock
    hours fast makes every token look nearly expired, so every run would spend an API call
    without a word (and hours slow, logins would be kept past their real expiry)."""
    if identity.source != "boto3":
        return  # the AWS CLI prints no expiry: ours is computed from this clock
    left = token.expires_at - time.time()
    if abs(left - TOKEN_LIFETIME) <= CLOCK_TOLERANCE:
        return
    off = TOKEN_LIFETIME - left
    log.warning(
        f"{call_name(identity)}: a fresh token expires in {_hours(left)} by this host's clock, but ECR tokens "
        f"last 12h: the clock looks {'fast' if off > 0 else 'slow'} by about {_hours(abs(off))} "
        "(check NTP: timedatectl status); until it is right, logins are refreshed more often than needed"
    )


def _hours(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"
