"""The botocore way to a token: ECR clients, AssumeRole for ``role_arn``, and reading the answer.

botocore (never boto3) is imported only here, in ``aws_errors`` and in
``instance_region``, and only when a token is really needed: a run with nothing
due loads none of it. The clients are made at their first call, in the deadline
runner's (``deadline``) workers, since resolving credentials can take as long as
a call; a botocore session is not safe to share across threads, so each is used
under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from . import __version__
from .aws_errors import Route, classify_botocore_error
from .awscli_source import Children
from .config import env_endpoint
from .errors import ConfigError, MalformedAnswerError
from .instance_region import metadata_url, no_credentials
from .logs import redact, register_secret
from .tokens import Identity, Token, decode_token


class BotoFetcher:
    """Fetch with botocore: the credential chain (env, profiles, credential_process,
    role_arn/source_profile, IMDS).

    Resolving credentials can take as long as a call (a ``credential_process``, an SSO or
    AssumeRole profile, a busy instance metadata service), so it happens in the worker,
    under the deadline, not here in the main thread: ``client`` only describes the client,
    and its first call makes it. A botocore session is not safe to share across threads, so
    each profile's session is used under its own lock. ``children`` tracks the
    ``credential_process`` programs botocore starts, so that one still running when the
    run stops waiting is killed.
    """

    def __init__(self, environ: Mapping[str, str], children: Children) -> None:
        import botocore.session

        self._botocore_session = botocore.session
        self._sessions: dict[str | None, tuple[Any, threading.Lock]] = {}
        self._guard = threading.Lock()
        self._environ = environ
        self._children = children

    def session(self, profile: str | None, own: bool = False) -> tuple[Any, threading.Lock]:
        """One botocore session per profile, shared by its regions' clients (a session costs
        its handler registrations and a credential lookup), with the lock its users hold;
        ``own``: a session no other identity shares (a ``role_arn`` identity's)."""
        with self._guard:
            if own or profile not in self._sessions:
                session = self._botocore_session.Session(profile=profile)
                self._track_processes(session, profile)
                made = (session, threading.Lock())
                if own:
                    return made
                self._sessions[profile] = made
            return self._sessions[profile]

    def _track_processes(self, session: Any, profile: str | None) -> None:
        """Have the session's ``credential_process`` provider start its program through ``children``."""
        from botocore.credentials import ProcessProvider
        from botocore.exceptions import UnknownCredentialError

        try:
            resolver = session.get_component("credential_provider")
            resolver.get_provider("custom-process")
        except (ValueError, UnknownCredentialError):
            return  # a bad setting (AWS_METADATA_SERVICE_TIMEOUT=banana): credentials() names it
        name = profile or session.get_config_variable("profile") or "default"
        tracked = ProcessProvider(profile_name=name, load_config=lambda: session.full_config, popen=self._children.popen)
        resolver.insert_after("custom-process", tracked)
        resolver.remove("custom-process")  # the first of that name: botocore's own

    def client(self, identity: Identity, remaining: float) -> LazyClient:
        from botocore.config import Config

        config = Config(
            connect_timeout=max(1.0, min(5.0, remaining)),
            read_timeout=max(1.0, min(15.0, remaining)),
            # no botocore retries (ours are in deadline); "standard" mode, unlike "legacy", loads no _retry.json model
            retries={"total_max_attempts": 1, "mode": "standard"},
            user_agent_extra=f"ecr-login/{__version__}",
        )
        return LazyClient(self, identity, config)

    def make(self, identity: Identity, config: Any, lazy: LazyClient) -> tuple[Any, Route]:
        """The client ``identity``'s calls go through, and their route (in a worker thread);
        ``lazy.waiting_for`` says what it waits for meanwhile."""
        from botocore.exceptions import ProfileNotFound

        service = "ecr-public" if identity.public else "ecr"
        try:
            session, lock = self.session(identity.profile, own=bool(identity.role_arn))
            with lock:
                process = _credential_process(session)
                profile = session.get_config_variable("profile") or "default"
                lazy.waiting_for = (f"the credential_process of AWS profile '{profile}' ({process})" if process
                                    else _credential_chain(self._environ))
                credentials(session, identity, self._environ)
                lazy.waiting_for = None
                if identity.role_arn:
                    client: Any = RoleClient(session, identity, service, config, self._environ)
                else:
                    client = _create(session, identity, service, config)
                return client, route_of(session, client, self._environ)
        except ProfileNotFound as exc:  # the profile may come from AWS_PROFILE: botocore's exception names it
            name = identity.profile or getattr(exc, "kwargs", {}).get("profile") or self._environ.get("AWS_PROFILE")
            raise ConfigError(
                f"AWS profile '{name}' not found in the AWS config files (check AWS_PROFILE, --profile or 'profile')"
            ) from None

    def fetch(self, identity: Identity, client: LazyClient) -> Token:
        what = f"GetAuthorizationToken ({identity.describe()})"
        try:
            answer = client.get_authorization_token()
        except Exception as exc:
            error = classify_botocore_error(exc, what, client.route)
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


class LazyClient:
    """An identity's ECR client, made at its first call, in the worker, under the deadline."""

    def __init__(self, fetcher: BotoFetcher, identity: Identity, config: Any) -> None:
        self._fetcher = fetcher
        self._identity = identity
        self._config = config
        self._client: Any = None
        self.route: Route | None = None
        self.waiting_for: str | None = None  # what resolving the credentials waits for, while it does

    def made(self) -> Any:
        """The botocore client (or RoleClient), made now if not yet."""
        if self._client is None:
            self._client, self.route = self._fetcher.make(self._identity, self._config, self)
        return self._client

    def get_authorization_token(self) -> Any:
        return self.made().get_authorization_token()

    def close(self) -> None:
        """Close the connections botocore keeps (urllib3 1.x warns of unclosed sockets at exit)."""
        if self._client is not None:
            self._client.close()


def _create(session: Any, identity: Identity, service: str, config: Any, **keys: str) -> Any:
    """``session.create_client`` for ``identity``; a ValueError is the endpoint URL botocore rejected."""
    from botocore.exceptions import BotoCoreError

    try:
        return session.create_client(
            service, region_name=identity.region, endpoint_url=identity.endpoint_url, config=config, **keys
        )
    except BotoCoreError as exc:
        raise ConfigError(redact(f"{identity.describe()}: {exc}")) from None
    except ValueError:  # botocore: "Invalid endpoint: ...", or ipaddress on a bad [literal]
        variable = "AWS_ENDPOINT_URL_ECR_PUBLIC" if identity.public else "AWS_ENDPOINT_URL_ECR"
        raise ConfigError(redact(
            f"{identity.describe()}: the endpoint URL '{identity.endpoint_url}' is not valid "
            f"(check endpoint_url, --endpoint-url, {variable}/AWS_ENDPOINT_URL)"
        )) from None


def credentials(session: Any, identity: Identity, environ: Mapping[str, str]) -> None:
    """Resolve the session's credentials now, so that what goes wrong is named for what it is:
    a ``credential_process`` that cannot run, prints no JSON or a non-string value, a bad
    metadata setting, no credentials at all (or, on EC2, not yet)."""
    from botocore.exceptions import ProfileNotFound

    what = f"GetAuthorizationToken ({identity.describe()})"
    profile = session.get_config_variable("profile") or "default"
    process = _credential_process(session)
    try:
        found = session.get_credentials()
        frozen = found.get_frozen_credentials() if found is not None else None
    except ProfileNotFound:
        raise
    except ValueError:
        bad = _bad_metadata_setting(session, environ)
        if bad:
            raise ConfigError(f"{what}: {bad}") from None
        if process:
            raise ConfigError(
                f"{what}: the credential_process of AWS profile '{profile}' ({process}) printed no JSON credentials "
                "(it must print {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ...})"
            ) from None
        raise ConfigError(f"{what}: a value in the AWS configuration of profile '{profile}' is not valid") from None
    except OSError as exc:
        if process:
            raise ConfigError(
                f"{what}: the credential_process of AWS profile '{profile}' cannot be run: {process}: "
                f"{exc.strerror or type(exc).__name__} (install it, or fix credential_process in the AWS config file)"
            ) from None
        raise
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(exc, (ClientError, BotoConnectionError, HTTPClientError)):  # an STS or SSO call on the way
            error = classify_botocore_error(exc, what)
            if error is not None:
                raise error from None
        if process and "custom-process" in str(exc):
            raise ConfigError(redact(
                f"{what}: the credential_process of AWS profile '{profile}' ({process}) failed: {exc}"
            )) from None
        if isinstance(exc, BotoCoreError):  # an SSO token to renew, a profile botocore cannot use
            raise ConfigError(redact(f"{identity.describe()}: {exc}")) from None
        raise
    if frozen is None:
        raise no_credentials(what, environ)
    for secret in (frozen.token, frozen.secret_key):
        if isinstance(secret, str):
            register_secret(secret)
    for field, value in (("AccessKeyId", frozen.access_key), ("SecretAccessKey", frozen.secret_key),
                         ("SessionToken", frozen.token)):
        if not isinstance(value, str) and not (field == "SessionToken" and value is None):
            source = f"the credential_process of AWS profile '{profile}' ({process})" if process else "the credentials"
            raise ConfigError(f"{what}: {source} gave a {field} that is not a string ({type(value).__name__})")


def _credential_chain(environ: Mapping[str, str]) -> str:
    """What botocore's credential chain may be waiting for, as a deadline message names it."""
    from .readiness import on_ec2

    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() != "true" and on_ec2(environ):
        return f"AWS credentials (the instance metadata service at {metadata_url(environ)}, busy or throttled?)"
    return "AWS credentials (the profile's credential chain)"


def _credential_process(session: Any) -> str | None:
    """The program the session's profile runs for credentials (its first word only: the rest
    of the command line may carry secrets), or None."""
    try:
        command = session.get_scoped_config().get("credential_process")
    except Exception:  # a missing profile is reported by get_credentials
        return None
    if not isinstance(command, str) or not command.strip():
        return None
    return command.split()[0]


def _bad_metadata_setting(session: Any, environ: Mapping[str, str]) -> str | None:
    """The instance metadata setting botocore could not read as a number, named, or None."""
    for variable, key in (("AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout"),
                          ("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts")):
        value = environ.get(variable)
        where = variable
        if value is None:
            try:
                value = session.get_scoped_config().get(key)
            except Exception:
                value = None
            where = f"{key} in the AWS config file"
        if value is not None:
            try:
                int(value)
            except (TypeError, ValueError):
                return f"{where} is {str(value)[:40]!r}, not a whole number of seconds (or attempts): fix or unset it"
    return None


def route_of(session: Any, client: Any, environ: Mapping[str, str]) -> Route:
    """Where ``client``'s calls go: its endpoint, the proxy for it, the CA bundle botocore trusts
    (``AWS_CA_BUNDLE`` or the profile's ``ca_bundle``, then ``REQUESTS_CA_BUNDLE``)."""
    import urllib.request
    from urllib.parse import urlsplit

    endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    scheme = urlsplit(endpoint).scheme or "https"
    proxy = urllib.request.getproxies_environment().get(scheme)
    shown = None
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    bundle, source = None, None
    if environ.get("AWS_CA_BUNDLE"):
        bundle, source = environ["AWS_CA_BUNDLE"], "AWS_CA_BUNDLE"
    elif session.get_config_variable("ca_bundle"):
        bundle, source = session.get_config_variable("ca_bundle"), "ca_bundle in the AWS profile"
    elif environ.get("REQUESTS_CA_BUNDLE"):
        bundle, source = environ["REQUESTS_CA_BUNDLE"], "REQUESTS_CA_BUNDLE"
    return Route(endpoint=endpoint, proxy=shown, proxy_variable=f"{scheme.upper()}_PROXY" if proxy else None,
                 proxy_credentials=bool(proxy and "@" in proxy), ca_bundle=bundle, ca_source=source)


class RoleClient:
    """An ECR client for a ``role_arn`` identity that assumes the role at its first call.

    It gets a botocore session of its own that no other identity shares, and is
    made in the worker at the identity's first call; the AssumeRole call runs inside ``fetch``, in a worker thread
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
        self.meta = self._sts.meta  # the first call goes to STS: its route is the one to name

    def close(self) -> None:
        self._sts.close()
        if self._client is not None:
            self._client.close()

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
