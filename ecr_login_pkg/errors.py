"""Outcomes as exceptions, each carrying the sysexits code a unit file or monitor acts on.

Only ``cli`` turns them into exit codes; every other module raises them with a
message that is safe to print (no secret ever goes into one).
"""

from __future__ import annotations

EX_OK = 0
EX_USAGE = 64  # bad command line
EX_DATAERR = 65  # AWS (or the AWS CLI) answered something we cannot use
EX_TEMPFAIL = 75  # network, throttling, 5xx, a held lock: the next timer tick retries
EX_NOPERM = 77  # AWS or the registry refused: unknown or expired credentials, no permission
EX_CONFIG = 78  # local set-up (configuration, a store's file, no credentials, no region): retrying will not help

# `ecr-login status` uses the monitoring-plugin convention.
STATUS_OK = 0
STATUS_WARNING = 1  # still logged in, but the last refresh failed or the login expires soon
STATUS_CRITICAL = 2  # a login is expired or missing

# When several registries fail differently, the run exits with the most severe.
SEVERITY = (EX_CONFIG, EX_NOPERM, EX_DATAERR, EX_TEMPFAIL)


class EcrLoginError(Exception):
    """Base class: ``str(err)`` is one line, safe for logs and terminals."""

    exit_code = EX_TEMPFAIL


class UsageError(EcrLoginError):
    exit_code = EX_USAGE


class ConfigError(EcrLoginError):
    exit_code = EX_CONFIG


class NotSetUpError(ConfigError):
    """Nothing to log in with: no AWS credentials found, or no region on a host off EC2.

    ``fact`` says what is missing, ``fix`` how to give it, naming the file and unit that
    serve the reader (hints.py); ``str()`` is both, and doctor shows them apart.

    Retrying cannot help (78). On a host never set up at all (no registry, no
    credentials: readiness.nothing_set_up) ``login`` says so once and exits 0.
    """

    def __init__(self, fact: str, fix: str = "", message: str | None = None) -> None:
        super().__init__(message or (f"{fact} ({fix})" if fix else fact))
        self.fact = fact
        self.fix = fix


class MissingHelperError(ConfigError):
    """A docker credential helper that config.json names and that is not installed."""

    def __init__(self, message: str, helper: str) -> None:
        super().__init__(message)
        self.helper = helper


class TemporaryError(EcrLoginError):
    exit_code = EX_TEMPFAIL


class DeniedError(EcrLoginError):
    exit_code = EX_NOPERM


class MalformedAnswerError(EcrLoginError):
    exit_code = EX_DATAERR


def most_severe(codes: list[int]) -> int:
    """The exit code that matters most to an operator among several failures."""
    for code in SEVERITY:
        if code in codes:
            return code
    return max(codes, default=EX_OK)
