"""Who serves the reader: the unit, timer and environment file behind the user who runs ecr-login.

Every hint the program prints (no credentials, no region, the next step) names the
file and the timer that serve the person reading it, so an admin is never sent to a
file that their unit does not read. Three cases, from the user database and the
configuration only (no systemd call, so this is cheap and works in a chroot):

- the ``ecr-login`` service user, root, and the build users named in ``users =``:
  served by ``ecr-login.service`` (``ecr-login.timer``), whose AWS credentials are
  in ``/etc/default/ecr-login`` (``/etc/sysconfig/ecr-login`` on RPM systems);
- any other user: their own instance, ``ecr-login@USER.timer``, reading
  ``/etc/default/ecr-login@USER`` (and the user's own ``~/.aws``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from . import paths

SYSTEM_TIMER = "ecr-login.timer"
SYSTEM_SERVICE = "ecr-login.service"
# Where `systemctl enable` links the timers it enables (the admin's choices).
TIMERS_WANTS = "/etc/systemd/system/timers.target.wants"
DEFAULT_CONFIG_PATH = "/etc/ecr-login/ecr-login.conf"
SEE_DOCTOR = "see 'ecr-login doctor' for each check and its fix"


def environment_dir() -> str:
    """/etc/default on Debian, /etc/sysconfig on Fedora and RHEL (the packages install the file there)."""
    if not os.path.exists("/etc/default/ecr-login") and os.path.exists("/etc/sysconfig/ecr-login"):
        return "/etc/sysconfig"
    return "/etc/default"


def running_user() -> str:
    """The name of the user running this process (uid N when the user database does not know it)."""
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def enabled_user_timers() -> list[str]:
    """The users whose ecr-login@USER.timer the admin enabled (``systemctl enable`` made the link)."""
    try:
        names = os.listdir(TIMERS_WANTS)
    except OSError:
        return []
    return sorted(name[len("ecr-login@"):-len(".timer")] for name in names
                  if name.startswith("ecr-login@") and name.endswith(".timer") and len(name) > len("ecr-login@.timer"))


@dataclass(frozen=True)
class Service:
    """What serves one user: the unit, its timer, its environment file, and whether it is enabled."""

    user: str
    unit: str
    timer: str
    environment_file: str
    named_consumer: bool = False
    enabled: bool = True

    @property
    def system(self) -> bool:
        return self.unit == SYSTEM_SERVICE

    def describe(self) -> str:
        """One line for ``status``: who runs this user's refresh, and how the login gets here."""
        if self.named_consumer:
            return (f"{self.user}'s logins are kept by {self.timer} ({self.unit}, the host's AWS identity) "
                    f"as a user named in 'users'")
        if self.user == "root":
            return (f"root is not named in 'users', so no timer keeps root's own logins; 'ecr-login status --all' "
                    f"shows those {self.timer} keeps")
        if self.system:
            return f"{self.user}'s logins are kept by {self.timer} ({self.unit})"
        if self.enabled:
            return f"{self.user}'s logins are kept by {self.timer} ({self.user}'s own AWS identity)"
        return (f"no timer keeps {self.user}'s logins: add {self.user} to 'users' in [defaults] of "
                f"{DEFAULT_CONFIG_PATH} (the host's login), or 'systemctl enable --now {self.timer}' "
                f"({self.user}'s own AWS identity, in {self.environment_file})")

    @property
    def scheduled(self) -> bool:
        """A timer runs this user's refresh (root's own logins have none unless root is named)."""
        return self.enabled and not (self.user == "root" and not self.named_consumer)

    def first_run(self) -> str:
        """The command that makes the reader's first login now."""
        return f"systemctl start {self.unit}" if self.scheduled else "ecr-login"

    def every(self) -> str:
        """How the refresh is scheduled, for "next:" hints."""
        if not self.scheduled:
            return f"no timer runs it for {self.user}"
        return f"{self.timer} runs it every 15 minutes"


def serving(users: Sequence[str] = (), user: str | None = None) -> Service:
    """What serves ``user`` (default: the running user), given the configuration's ``users``."""
    name = user or running_user()
    directory = environment_dir()
    if name in (paths.SERVICE_USER, "root") or _named(name, users):
        return Service(name, SYSTEM_SERVICE, SYSTEM_TIMER, f"{directory}/ecr-login", named_consumer=_named(name, users))
    return Service(name, f"ecr-login@{name}.service", f"ecr-login@{name}.timer", f"{directory}/ecr-login@{name}",
                   enabled=name in enabled_user_timers())


def _named(name: str, users: Sequence[str]) -> bool:
    """``name`` is in ``users``, by name or through an ``@group`` (member, or the group is the user's primary)."""
    if name in users:
        return True
    groups = [entry[1:] for entry in users if entry.startswith("@")]
    if not groups:
        return False
    import grp
    import pwd

    try:
        primary = pwd.getpwnam(name).pw_gid
    except KeyError:
        return False
    for group in groups:
        try:
            found = grp.getgrnam(group)
        except KeyError:
            continue
        if name in found.gr_mem or found.gr_gid == primary:
            return True
    return False


def credentials_fix(service: Service) -> str:
    """How to give the reader's refresh AWS credentials."""
    if service.named_consumer and service.user not in (paths.SERVICE_USER, "root"):
        return (f"{service.user} gets the host's login: give the host AWS credentials (an instance profile on EC2, "
                f"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in {service.environment_file}), then "
                f"'systemctl start {service.unit}'")
    whose = "this host" if service.system else service.user
    return (f"give {whose} AWS credentials for {service.unit}: an instance profile (on EC2), AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY in {service.environment_file}, or a profile in ~{service.user}/.aws "
            "(then 'profile' in the configuration)")


def region_fix(service: Service) -> str:
    """How to name the region of the default registry."""
    return (f"set 'region' in [defaults] of the configuration, or AWS_REGION in {service.environment_file} "
            "(or pass --region)")


def user_timer_problems() -> list[str]:
    """Enabled ecr-login@USER.timer of users that do not exist: they fail with 217/USER every 15 minutes."""
    import pwd

    lines = []
    for user in enabled_user_timers():
        try:
            pwd.getpwnam(user)
        except KeyError:
            lines.append(f"ecr-login@{user}.timer is enabled, but user '{user}' does not exist: it fails (217/USER) "
                         f"every 15 minutes (create the user, or: systemctl disable --now ecr-login@{user}.timer)")
    return lines
