"""One line per event on stderr, journald-aware, with every known secret masked.

Under systemd (``JOURNAL_STREAM``/``INVOCATION_ID`` set) each line starts with a
``<N>`` syslog priority so ``journalctl -p warning`` filters it, and carries no
timestamp of its own (journald adds one). Everything printed passes ``redact``, then
``shorten`` (a huge value is quoted by its ends only).
The stdlib ``logging`` module is not used: the whole job is a line per event with
journald's priority prefix and every secret masked, which a handler, a formatter and a
filter of our own around ``logging`` would only spread over three classes.
"""

from __future__ import annotations

import os
import re
import sys
import time

DEBUG, INFO, NOTICE, WARNING, ERR = 7, 6, 5, 4, 3
_NAMES = {DEBUG: "debug", INFO: "info", NOTICE: "notice", WARNING: "warning", ERR: "error"}

_secrets: set[str] = set()
# Shapes of secrets we may not have registered: ECR tokens, AWS secret keys, session tokens.
# Only a value that looks like one (16 or more characters of the base64/base64url/hex
# alphabets) after such a name is masked, so ordinary text keeps its words:
# "requesting a token: ecr eu-west-1", "ExpiredToken: The security token ...".
# A pattern string, compiled (and cached by ``re``) by the first line that names one of
# _SECRET_WORDS: most lines name none, and compiling it is a tenth of a no-op run's work.
_SECRET_SHAPES = (
    r"(?i)(aws_secret_access_key|aws_session_token|password|secret|token|authorization)"
    r"(\s*[=:]\s*|\"\s*:\s*\")[A-Za-z0-9+/=_-]{16,}"
)
_SECRET_WORDS = ("password", "secret", "token", "authorization")  # each name above contains one


def register_secret(value: str) -> None:
    """Remember a secret so that its exact text is masked wherever printed.

    Only that text: a caller that may print another form registers it too
    (``tokens.decode_token`` registers the password, the token as received and
    base64 of ``AWS:<password>``, the form docker's ``auth`` field holds).
    """
    if value and len(value) >= 4:
        _secrets.add(value)


def register_environment_secrets(environ: os._Environ[str] | dict[str, str]) -> None:
    """AWS credentials given in the environment: an error message that echoes one shows ``***`` instead."""
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        register_secret(environ.get(name, ""))


def redact(text: str) -> str:
    """Mask every registered secret and anything shaped like ``secret=...``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    lowered = text.lower()
    if not any(word in lowered for word in _SECRET_WORDS):
        return text
    return re.sub(_SECRET_SHAPES, lambda m: m.group(1) + m.group(2) + "***", text)


LONGEST_WORD = 300  # characters of one value (a run without blanks) quoted in a log line
LONGEST_LINE = 2000


def _cut(text: str, head: int, tail: int) -> str:
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[-tail:]}"


def shorten(line: str) -> str:
    """``line`` with each value longer than LONGEST_WORD cut in its middle, and the whole line
    at most about LONGEST_LINE characters: a 5 MB value in a file must not become a 5 MB
    journal line. Both ends of a value stay (a path's file name is at its end)."""
    if len(line) <= LONGEST_WORD:
        return line
    words = [_cut(word, 200, 60) if len(word) > LONGEST_WORD else word for word in line.split(" ")]
    line = " ".join(words)
    return _cut(line, 1400, 500) if len(line) > LONGEST_LINE else line


def under_systemd(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    return bool(environ.get("JOURNAL_STREAM") or environ.get("INVOCATION_ID"))


class Log:
    """Leveled stderr writer. ``threshold`` is the least important priority shown."""

    def __init__(self, threshold: int = INFO, journal: bool | None = None) -> None:
        self.threshold = threshold
        self.journal = under_systemd() if journal is None else journal
        self.stream = sys.stderr

    def emit(self, priority: int, message: str) -> None:
        if priority > self.threshold or self.stream is None:  # None: started with stderr closed
            return
        line = shorten(redact(message).replace("\n", " "))  # redacted whole: a cut could split a secret
        if self.journal:
            text = f"<{priority}>{line}"
        elif self.stream.isatty():
            text = f"ecr-login: {_NAMES[priority]}: {line}" if priority <= WARNING else line
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            text = f"{stamp} ecr-login[{os.getpid()}]: {_NAMES[priority]}: {line}"
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, OSError):
            pass

    def debug(self, message: str) -> None:
        self.emit(DEBUG, message)

    def info(self, message: str) -> None:
        self.emit(INFO, message)

    def notice(self, message: str) -> None:
        self.emit(NOTICE, message)

    def warning(self, message: str) -> None:
        self.emit(WARNING, message)

    def error(self, message: str) -> None:
        self.emit(ERR, message)
