"""What an AWS failure means to the operator: every error of a token call mapped to an exit code.

The one place to read "why was this 75": denied (77), what time can cure
(throttling, 408, 429, 5xx, a dropped connection: 75, retried), a request
retrying cannot fix (78), an answer that is not one (65). botocore's exceptions
are imported only when one has been raised, so by then botocore is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, DeniedError, EcrLoginError, MalformedAnswerError, NotSetUpError, TemporaryError
from .logs import redact

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

TRUST_SETTINGS = ("AWS_CA_BUNDLE, ca_bundle in the AWS profile, or REQUESTS_CA_BUNDLE "
                  "(botocore ignores SSL_CERT_FILE and SSL_CERT_DIR)")


class ThrottledError(TemporaryError):
    """AWS said "too many calls" (throttling codes, 429): temporary, and retried later than other
    temporary failures (``deadline.retry_delay``), after the account's bucket has refilled."""


@dataclass(frozen=True)
class Route:
    """Where a call went, for messages about what lies on the way: the endpoint, the proxy
    (without its credentials) and the variable naming it, the CA bundle botocore was told to
    trust and where that came from (None: botocore's own bundle)."""

    endpoint: str
    proxy: str | None = None
    proxy_variable: str | None = None
    proxy_credentials: bool = False
    ca_bundle: str | None = None
    ca_source: str | None = None


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
    if code in THROTTLING_CODES or status == 429:
        return ThrottledError(text)
    if code in TRANSIENT_CODES or status >= 500 or status in (408, 429):
        return TemporaryError(text)
    if 400 <= status < 500:
        return ConfigError(f"{text} (HTTP {status}: retrying will not help; check endpoint_url and region)")
    return MalformedAnswerError(text) if status == 200 else TemporaryError(text)


def proxy_refused(route: Route, what: str) -> ConfigError:
    """A proxy answering 407: its credentials are wanted or wrong, which no retry mends."""
    held = "the credentials in it were refused" if route.proxy_credentials else "it names no credentials"
    return ConfigError(
        f"{what}: the proxy {route.proxy} ({route.proxy_variable}) answered 407 Proxy Authentication Required: "
        f"{held}; put the proxy's user and password in {route.proxy_variable} (http://USER:PASSWORD@HOST:PORT), "
        "or exempt the endpoint in NO_PROXY"
    )


def tls_failure(exc: Exception, route: Route, what: str) -> EcrLoginError:
    """botocore's SSLError: a certificate this host does not trust, or a CA bundle it cannot use,
    is local set-up (78, at once); anything else in the handshake may pass (75)."""
    import ssl

    cause = getattr(exc, "kwargs", {}).get("error")
    while isinstance(cause, Exception) and cause.args and isinstance(cause.args[0], Exception):
        cause = cause.args[0]  # urllib3 wraps the ssl module's error in its own SSLError
    bundle = f"{route.ca_bundle} ({route.ca_source})" if route.ca_bundle else "botocore's default CA bundle"
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or "certificate verify failed"
        return ConfigError(
            f"{what}: the TLS certificate of {route.endpoint} is not trusted here ({reason}; trusted: {bundle}): "
            f"name the CA that signed it in {TRUST_SETTINGS}"
        )
    if route.ca_bundle and isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError):
        problem = "does not exist" if isinstance(cause, FileNotFoundError) else f"cannot be read ({cause.strerror})"
        return ConfigError(
            f"{what}: the CA bundle {bundle} {problem}, so {route.endpoint} cannot be checked: "
            f"fix the path or remove the setting ({TRUST_SETTINGS})"
        )
    text = str(cause or exc)
    if route.ca_bundle and any(mark in text for mark in ("X509", "PEM", "NO_CERTIFICATE", "no certificate")):
        return ConfigError(
            f"{what}: the CA bundle {bundle} holds no PEM certificate, so {route.endpoint} cannot be checked: "
            f"give it the CA's certificate in PEM form ({TRUST_SETTINGS})"
        )
    return TemporaryError(redact(f"{what}: {exc}"))


def classify_botocore_error(exc: Exception, what: str, route: Route | None = None) -> EcrLoginError | None:
    """What a botocore call's exception means, or None for one botocore does not raise (the
    caller re-raises it: a bug of ours, reported by ``unexpected``). ``route``: where the call
    went, so a TLS or proxy failure names the endpoint, the CA bundle or the proxy."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProxyConnectionError,
        SSLError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status == 407 and route is not None and route.proxy:
            return proxy_refused(route, what)
        return classify_client_error(str(error.get("Code", "Unknown")), status, str(error.get("Message", "")), what)
    if isinstance(exc, NoCredentialsError):  # the whole chain searched, instance metadata included: set-up, not a refusal
        from .hints import credentials_fix, serving

        return NotSetUpError(f"{what}: no AWS credentials found", credentials_fix(serving()))
    if isinstance(exc, PartialCredentialsError):
        return ConfigError(redact(f"{what}: incomplete AWS credentials: {exc}"))
    if isinstance(exc, SSLError) and route is not None:
        return tls_failure(exc, route, what)
    if isinstance(exc, ProxyConnectionError) and " 407" in repr(exc.kwargs.get("error")) and route and route.proxy:
        return proxy_refused(route, what)
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return TemporaryError(redact(f"{what}: {exc}"))
    if isinstance(exc, ValueError):  # e.g. a body that is not UTF-8: botocore lets UnicodeDecodeError through
        return MalformedAnswerError(f"{what}: the answer could not be decoded ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        if "Parser" in name or "Parse" in name:
            return MalformedAnswerError(f"{what}: the answer could not be parsed ({name})")
        return TemporaryError(redact(f"{what}: {exc}"))
    return None


def classify_awscli_failure(returncode: int, stderr: bytes, what: str) -> EcrLoginError:
    """What an AWS CLI that exited non-zero meant, from the last line it printed on stderr."""
    last = redact(stderr.decode("utf-8", "replace").strip().splitlines()[-1:][0] if stderr.strip() else "")
    for code in DENIED_CODES:
        if f"({code})" in last:
            return DeniedError(f"{what}: {last}")
    if "Unable to locate credentials" in last:
        from .hints import credentials_fix, serving

        return NotSetUpError(f"{what}: no AWS credentials found", credentials_fix(serving()))
    if "could not be found" in last and "profile" in last:
        return ConfigError(f"{what}: {last}")
    return TemporaryError(f"{what}: exit {returncode}: {last}")


def unexpected(what: str, exc: Exception) -> EcrLoginError:
    """An exception no handler foresaw, as the failure of ``what`` (one identity's call).

    A lookup in an answer that lacks what it should (KeyError, IndexError)
    means a malformed answer; anything else is reported as
    temporary, named by its type only: its message may quote what came over
    the wire, credentials included.
    """
    if isinstance(exc, (KeyError, IndexError)):
        return MalformedAnswerError(f"{what}: the answer lacks an expected part ({type(exc).__name__})")
    return TemporaryError(f"{what}: unexpected {type(exc).__name__} while asking for a token")
