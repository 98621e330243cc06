"""What an AWS failure means to the operator: every error of a token call mapped to an exit code.

The one place to read "why was this 75": denied (77), what time can cure
(throttling, 408, 429, 5xx, a dropped connection: 75, retried), a request
retrying cannot fix (78), an answer that is not one (65). botocore's exceptions
are imported only when one has been raised, so by then botocore is loaded.
"""

from __future__ import annotations

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


def classify_botocore_error(exc: Exception, what: str) -> EcrLoginError | None:
    """What a botocore call's exception means, or None for one botocore does not raise (the
    caller re-raises it: a bug of ours, reported by ``unexpected``)."""
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

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return classify_client_error(str(error.get("Code", "Unknown")), status, str(error.get("Message", "")), what)
    if isinstance(exc, NoCredentialsError):  # the whole chain searched, instance metadata included: set-up, not a refusal
        return NotSetUpError(
            f"{what}: no AWS credentials found (give this host an instance profile, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws)"
        )
    if isinstance(exc, PartialCredentialsError):
        return ConfigError(redact(f"{what}: incomplete AWS credentials: {exc}"))
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
        return NotSetUpError(f"{what}: no AWS credentials found")
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
