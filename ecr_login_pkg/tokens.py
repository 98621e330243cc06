"""What a token is and who asks for it: ``Identity`` (the key one ECR call serves) and ``Token``.

An ECR token is valid for every registry its principal can reach in that region,
so the refresh engine groups targets by ``Identity`` and asks once per group.
Getting the tokens is ``deadline.fetch_tokens``; the two ways to ask are
``aws_clients`` (botocore) and ``awscli_source`` (the AWS CLI); what their
failures mean is ``aws_errors``. Nothing here imports botocore.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from .config import TOKEN_LIFETIME, Target
from .errors import MalformedAnswerError
from .logs import Log, register_secret
from .registry import PUBLIC_REGION, strip_url

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


def check_clock(token: Token, identity: Identity, log: Log) -> None:
    """Say so when a fresh token's lifetime by this host's clock is far off ECR's 12 h: a clock
    hours fast makes every token look nearly expired, so every run would spend an API call
    without a word; hours slow, every token looks longer-lived than it is, so logins are
    refreshed later than needed and may expire before ``status`` says they will."""
    if identity.source != "boto3":
        return  # the AWS CLI prints no expiry: ours is computed from this clock
    left = token.expires_at - time.time()
    if abs(left - TOKEN_LIFETIME) <= CLOCK_TOLERANCE:
        return
    off = TOKEN_LIFETIME - left
    fast = off > 0
    effect = ("logins are refreshed more often than needed" if fast else
              "logins are refreshed later than needed and expire earlier than this host thinks")
    log.warning(
        f"{call_name(identity)}: a fresh token expires in {_hours(left)} by this host's clock, but ECR tokens "
        f"last 12h: the clock looks {'fast' if fast else 'slow'} by about {_hours(abs(off))} "
        f"(check NTP: timedatectl status); until it is right, {effect}"
    )


def _hours(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"
