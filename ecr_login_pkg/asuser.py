"""Do one piece of work as another user: fork, drop to the user, run, hand the result back.

Root (the ``+`` step of ecr-login.service, ``status --all``) never touches a user's
files itself: a child process takes the user's groups, gid and uid first, so every
open, rename and lock runs with exactly the user's own permissions (never a root-owned
file in a home, never through a link or into a directory the user could not write).
The result comes back as JSON through a pipe; the child's exceptions come back as the
one-line error and exit code they carry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .consumers import Consumer
from .errors import EX_CONFIG, EcrLoginError

EX_SOFTWARE = 70


class ChildError(EcrLoginError):
    """What went wrong in the child, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def user_environment(consumer: Consumer, path: str) -> dict[str, str]:
    """The environment a login session of the user would have, nothing of the caller's
    (no STATE_DIRECTORY, DOCKER_CONFIG or AWS_* of the unit)."""
    return {"HOME": consumer.home, "USER": consumer.name, "LOGNAME": consumer.name, "PATH": path,
            "LANG": "C.UTF-8"}


def _become(consumer: Consumer) -> None:
    if os.geteuid() == consumer.uid:
        return
    os.initgroups(consumer.name, consumer.gid)
    os.setgid(consumer.gid)
    os.setuid(consumer.uid)
    if os.geteuid() != consumer.uid or os.getuid() != consumer.uid:  # paranoia: never work on as root
        raise OSError("could not drop to the user")


def run_as(consumer: Consumer, work: Callable[[], Any]) -> Any:
    """``work()`` run as ``consumer`` in a child; its JSON-able result, or ChildError."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(reader)
        code = 0
        try:
            _become(consumer)
            os.chdir(consumer.home)
            payload: dict[str, Any] = {"result": work()}
        except EcrLoginError as exc:
            payload = {"error": str(exc), "code": exc.exit_code}
        except OSError as exc:
            payload = {"error": f"as {consumer.name}: {exc.strerror or exc}", "code": EX_CONFIG}
        except BaseException as exc:  # a bug or a signal: say what, never the details
            payload = {"error": f"as {consumer.name}: internal error: {type(exc).__name__}", "code": EX_SOFTWARE}
        try:
            with os.fdopen(writer, "wb") as out:
                out.write(json.dumps(payload).encode("utf-8"))
        except BaseException:
            code = EX_SOFTWARE
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        answer = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ChildError(f"as {consumer.name}: the work ended without an answer", EX_SOFTWARE) from None
    if "error" in answer:
        raise ChildError(str(answer["error"]), int(answer.get("code", EX_SOFTWARE)))
    return answer["result"]
