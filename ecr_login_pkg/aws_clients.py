"""The botocore way to a token: ECR clients, AssumeRole for ``role_arn``, and reading the answer.

botocore (never boto3) is imported only here, in ``aws_errors`` and in
``instance_region``, and only when a token is really needed: a run with nothing
due loads none of it. The clients are made in the main thread before the
deadline runner (``deadline``) starts its workers; a botocore session is not
safe to share across threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import __version__
from .aws_errors import classify_botocore_error
from .config import env_endpoint
from .errors import ConfigError, MalformedAnswerError
from .logs import redact, register_secret
from .tokens import Identity, Token, decode_token

if TYPE_CHECKING:
    from botocore.client import BaseClient


class BotoFetcher:
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
            # no botocore retries (ours are in deadline); "standard" mode, unlike "legacy", loads no _retry.json model
            retries={"total_max_attempts": 1, "mode": "standard"},
            user_agent_extra=f"ecr-login/{__version__}",
        )
        service = "ecr-public" if identity.public else "ecr"
        try:
            if identity.role_arn:
                # its own session: the worker thread makes this identity's ECR client after
                # AssumeRole, and a botocore session is not safe to share across threads
                session = self._botocore_session.Session(profile=identity.profile)
                return RoleClient(session, identity, service, config, self._environ)
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
        what = f"GetAuthorizationToken ({identity.describe()})"
        try:
            answer = client.get_authorization_token()
        except Exception as exc:
            error = classify_botocore_error(exc, what)
            if error is None:
                raise
            raise error from None
        data = answer.get("authorizationData")
        if identity.public:
            entry = data if isinstance(data, dict) else None
        else:
            entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        if not entry:
            raise MalformedAnswerError(f"{what}: the answer has no authorizationData{_what_came(answer, data)}")
        expires_at = _timestamp(entry.get("expiresAt"), what)
        return decode_token(entry.get("authorizationToken"), expires_at, entry.get("proxyEndpoint"), what)


class RoleClient:
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


def _timestamp(value: Any, what: str) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise MalformedAnswerError(f"{what}: the answer has no usable expiresAt")


def _what_came(answer: Any, data: Any) -> str:
    """Say what arrived instead of a token: a proxy's page, or a body that is not the API's JSON."""
    if data is not None:
        return ""
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(answer, dict) else {}
    kind = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if kind and "json" not in kind:
        return f" (the body is {kind}, not the ECR API's JSON: a proxy or captive portal in the way?)"
    return " (the body is not a GetAuthorizationToken answer: not JSON, or cut short)"
