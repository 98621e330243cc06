"""Deploy hooks: hand each fresh login to whatever else needs it, as certbot's renewal hooks do.

After a run refreshed logins, every executable in ``hooks_dir`` runs, in name order, once
per refreshed (registry, store, user), as the user whose store got the login (the named users'
logins: as that user, from ``ecr-login deliver``). A hook learns the login from its
environment -- ``ECR_LOGIN_USER`` (whose store), ``ECR_LOGIN_REGISTRY`` (the address stored), ``ECR_LOGIN_USERNAME``,
``ECR_LOGIN_EXPIRES_AT`` (Unix seconds), ``ECR_LOGIN_STORE`` (docker, file, containers,
helm) -- and the password on standard input only (never in argv or the environment, where
``ps`` and /proc would show it). ``AWS_*`` variables are not passed on.

A hook that fails, or outlives ``hook_timeout`` (its process group is killed), never undoes
the login: the failure is logged, recorded in the state (``status`` and the metrics show
it) and makes the run exit 75; the next run logs in again and reruns the hooks until they
succeed. Names like run-parts skips (hidden, ``~``, ``.dpkg-*``, ``.rpm*``) and files that
are not executable are not hooks; a hook another user could modify is refused, not run.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .logs import Log

_SKIPPED_SUFFIXES = ("~", ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-tmp", ".rpmnew", ".rpmsave", ".rpmorig")
_OUTPUT_LIMIT = 4000  # characters of a hook's output put in the log


@dataclass(frozen=True)
class Login:
    """One refreshed login, as a hook is told about it. ``repr`` never shows the password."""

    registry: str
    store: str
    location: str
    username: str
    password: str
    expires_at: float

    def __repr__(self) -> str:
        return f"Login(registry={self.registry!r}, store={self.store!r}, expires_at={self.expires_at!r})"

    @property
    def key(self) -> str:
        return hook_key(self.registry, self.store, self.location)


def hook_key(registry: str, store: str, location: str) -> str:
    """How a refreshed login is named in the failures ``run_hooks`` returns."""
    return f"{registry} {store} {location}"


def hooks_in(directory: str) -> list[str]:
    """The hooks of ``directory``, in name order; none when it does not exist."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise ConfigError(f"{directory}: hooks_dir is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot list the hooks directory: {exc.strerror}") from None
    found = []
    for name in names:
        if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # a dangling symlink: nothing to run
        if stat.S_ISREG(mode) and os.access(path, os.X_OK):
            found.append(path)
    return found


def _unsafe(path: str) -> str | None:
    """Why a hook must not run: writable by someone other than root and the user of the run."""
    status = os.stat(path)
    if status.st_uid not in (0, os.geteuid()):
        return f"owned by uid {status.st_uid}, neither root nor this user"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others (chmod go-w)"
    return None


def _environment(environ: Mapping[str, str], login: Login) -> dict[str, str]:
    env = {name: value for name, value in environ.items() if not name.startswith("AWS_")}
    env.update({
        "ECR_LOGIN_USER": environ.get("ECR_LOGIN_USER") or _running_user(),
        "ECR_LOGIN_REGISTRY": login.registry,
        "ECR_LOGIN_USERNAME": login.username,
        "ECR_LOGIN_EXPIRES_AT": str(int(login.expires_at)),
        "ECR_LOGIN_STORE": login.store,
    })
    return env


def _running_user() -> str:
    from .hints import running_user

    return running_user()


def _run_one(path: str, login: Login, timeout: float, environ: Mapping[str, str], log: Log) -> str | None:
    """Run one hook for one login; return why it failed, or None."""
    name = os.path.basename(path)
    failure: str | None
    try:
        process = subprocess.Popen(
            [path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_environment(environ, login),
            start_new_session=True,  # its own process group: a timeout kills the hook and its children
        )
    except OSError as exc:  # no #! line, a missing interpreter, ...
        return f"{name} could not be started: {exc.strerror}"
    try:
        output, _ = process.communicate(login.password.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        output, _ = process.communicate()
        failure = f"timed out after {timeout:g} s (hook_timeout)"
    except BaseException:  # SIGINT/SIGTERM while it runs: no hook is left behind
        _kill(process)
        process.wait()
        raise
    else:
        failure = None if process.returncode == 0 else f"exited {process.returncode}"
    text = output.decode("utf-8", "replace").strip()
    if len(text) > _OUTPUT_LIMIT:
        text = text[:_OUTPUT_LIMIT] + " [...]"
    for line in text.splitlines():
        (log.warning if failure else log.info)(f"hook {name} ({login.registry}): {line}")
    return f"{name} {failure}" if failure else None


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_hooks(directory: str, timeout: float, logins: list[Login], environ: Mapping[str, str], log: Log) -> dict[str, str]:
    """Run every hook for each login; return {registry store location: what failed} for the failed ones."""
    if not logins:
        return {}
    failures: dict[str, str] = {}
    try:
        hooks = hooks_in(directory)
    except ConfigError as exc:  # the logins are stored all the same: say so, and retry with the next run
        log.error(f"deploy hooks not run: {exc}; the logins stay, the next run retries")
        return {login.key: str(exc) for login in logins}
    for login in logins:
        problems = []
        for path in hooks:
            refused = _unsafe(path)
            problem = f"{os.path.basename(path)} not run: {refused}" if refused else _run_one(path, login, timeout, environ, log)
            if problem:
                problems.append(problem)
                log.error(f"deploy hook {problem} for {login.registry} ({login.store}); the login stays, the next run retries")
            else:
                log.info(f"deploy hook {os.path.basename(path)} done for {login.registry} ({login.store})")
        if problems:
            failures[login.key] = "; ".join(problems)
    return failures
