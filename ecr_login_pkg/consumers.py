"""The named consumers: the build users of ``users =``, found in the user database.

``users = builder, gitlab-runner, @ci`` names the users whose own docker (podman,
helm) configuration gets the host's logins. A name that does not resolve (a typo, a
user created later, a home that does not exist) is a problem of that user alone,
reported with the configuration line and the fix; every other user is still served.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, replace

from . import paths
from .config import Settings
from .errors import ConfigError


@dataclass(frozen=True)
class Consumer:
    """A build user who gets the host's logins in their own files."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class Problem:
    """Why a named user cannot be served: one ``status``/``doctor`` line, the fact and its fix."""

    user: str
    fact: str
    fix: str

    @property
    def message(self) -> str:
        return f"{self.fact} ({self.fix})"


def resolve(users: tuple[str, ...], where: str) -> tuple[list[Consumer], list[Problem]]:
    """The users ``users`` names (groups expanded, each user once), and what is wrong with the rest.

    ``where`` is ``FILE:LINE: [defaults] users``, for the messages.
    """
    found: dict[str, Consumer] = {}
    problems: list[Problem] = []
    for entry in users:
        if entry.startswith("@"):
            members, problem = _group_members(entry[1:], where)
            if problem:
                problems.append(problem)
            names = members
        else:
            names = [entry]
        for name in names:
            if name in found or any(p.user == name for p in problems):
                continue
            consumer, problem = _user(name, where, entry)
            if consumer:
                found[name] = consumer
            elif problem:
                problems.append(problem)
    return list(found.values()), problems


def _group_members(group: str, where: str) -> tuple[list[str], Problem | None]:
    """The group's members: its listed members and the users whose primary group it is."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return [], Problem(f"@{group}", f"{where}: group '{group}' does not exist",
                           "create it with groupadd, or correct the name")
    names = list(entry.gr_mem)
    names += sorted(user.pw_name for user in pwd.getpwall() if user.pw_gid == entry.gr_gid and user.pw_name not in names)
    if not names:
        return [], Problem(f"@{group}", f"{where}: group '{group}' has no members",
                           "add the build users to it, or name them")
    return names, None


def _user(name: str, where: str, entry: str) -> tuple[Consumer | None, Problem | None]:
    through = f" (member of {entry})" if entry != name else ""
    try:
        record = pwd.getpwnam(name)
    except KeyError:
        return None, Problem(name, f"{where}: user '{name}'{through} does not exist",
                             "create it with useradd, or correct the name")
    home = record.pw_dir
    if not home or not os.path.isabs(home) or not os.path.isdir(home):
        return None, Problem(name, f"{where}: user '{name}'{through} has no home directory {home or 'set'}",
                             f"create it: mkhomedir_helper {name}")
    return Consumer(name, record.pw_uid, record.pw_gid, home), None


def service_account(environ: Mapping[str, str]) -> tuple[Consumer, str]:
    """The service user, who owns the service's state directory (``$STATE_DIRECTORY`` of the unit,
    else the ``ecr-login`` user's home) and so the logins handed on in it; and that directory."""
    import stat

    state_dir = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if not state_dir:
        try:
            state_dir = pwd.getpwnam(paths.SERVICE_USER).pw_dir or paths.SERVICE_STATE_DIR
        except KeyError:
            raise ConfigError(f"the system user {paths.SERVICE_USER} does not exist (reinstall the package: its "
                              "sysusers.d entry creates it)") from None
    try:
        info = os.lstat(state_dir)
    except OSError as exc:
        raise ConfigError(f"{state_dir}: the service's state directory: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid == 0 or info.st_mode & 0o022:
        raise ConfigError(f"{state_dir}: the service's state directory must be a directory of the service user, "
                          "writable by it alone (systemd-tmpfiles --create ecr-login.conf repairs it)")
    try:
        record = pwd.getpwuid(info.st_uid)
    except KeyError:
        raise ConfigError(f"{state_dir}: owned by uid {info.st_uid}, which no user has") from None
    return Consumer(record.pw_name, record.pw_uid, record.pw_gid, record.pw_dir or state_dir), state_dir


def user_settings(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """The settings as the user runs them: their own state and docker config under their $HOME
    (``docker_config`` of [defaults] is the service's own directory, not theirs)."""
    return replace(settings, state_dir=paths.state_dir(environ), docker_config_file=paths.docker_config_file(environ))
