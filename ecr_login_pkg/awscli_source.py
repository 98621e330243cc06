"""The AWS CLI way to a token (``token_source = awscli``), and the killer of its child processes.

``aws ecr get-login-password`` prints the password on stdout; it is never echoed
or logged. Every AWS CLI a fetch starts is tracked in ``Children``, so that when
the deadline runner stops waiting (deadline or signal) none outlives the run.
"""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

from .aws_errors import classify_awscli_failure
from .config import TOKEN_LIFETIME
from .errors import ConfigError, MalformedAnswerError, TemporaryError
from .logs import register_secret
from .tokens import Identity, Token, call_name, decode_token


class Children:
    """The AWS CLI and ``credential_process`` programs of one fetch, killed when the fetch stops waiting (deadline or signal)."""

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

    def popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` for botocore's ``credential_process`` provider: the program it runs
        is tracked like an AWS CLI, so one that hangs is killed when the run stops waiting."""
        process: subprocess.Popen[bytes] = subprocess.Popen(*args, **kwargs)
        with self._guard:
            if self.stopped:
                process.kill()
            else:
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


def fetch(identity: Identity, remaining: float, environ: Mapping[str, str], children: Children) -> Token:
    """``aws ecr get-login-password`` within ``remaining`` seconds: the password comes on stdout and is never echoed."""
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
        raise classify_awscli_failure(process.returncode, err, what)
    if not password or "\n" in password or " " in password:
        raise MalformedAnswerError(f"{what}: printed no usable password")
    register_secret(password)
    encoded = base64.b64encode(f"AWS:{password}".encode()).decode()
    return decode_token(encoded, started + TOKEN_LIFETIME, None, what)
