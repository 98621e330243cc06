"""Where each file lives, following the conventions of the tools that read them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

SERVICE_USER = "ecr-login"
SERVICE_STATE_DIR = "/var/lib/ecr-login"


def service_account_home() -> str | None:
    """The home of the packaged ``ecr-login`` system user, when that is who runs us.

    The system service keeps its state and docker login in ``/var/lib/ecr-login``
    (its ``StateDirectory=`` and home). Resolving it from the user database, not
    from ``$HOME``, lets ``sudo -u ecr-login ecr-login status`` see the service's
    logins whatever environment sudo or runuser passes on.
    """
    import pwd

    try:
        entry = pwd.getpwuid(os.geteuid())
    except KeyError:
        return None
    return entry.pw_dir if entry.pw_name == SERVICE_USER else None


def home(environ: Mapping[str, str]) -> str:
    return service_account_home() or environ.get("HOME") or os.path.expanduser("~")


def _xdg(environ: Mapping[str, str], variable: str, fallback: str) -> str:
    value = environ.get(variable, "")
    return value if os.path.isabs(value) else os.path.join(home(environ), fallback)


def state_dir(environ: Mapping[str, str]) -> str:
    """systemd's ``StateDirectory=`` wins; else the XDG state home, as the spec says."""
    systemd_dirs = environ.get("STATE_DIRECTORY", "")
    if systemd_dirs:
        return systemd_dirs.split(":")[0]
    if service_account_home() is not None and not environ.get("XDG_STATE_HOME"):
        return SERVICE_STATE_DIR
    return os.path.join(_xdg(environ, "XDG_STATE_HOME", ".local/state"), "ecr-login")


def docker_config_file(environ: Mapping[str, str], override_dir: str | None = None) -> str:
    """docker's rule: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    directory = override_dir or environ.get("DOCKER_CONFIG") or os.path.join(home(environ), ".docker")
    return os.path.join(directory, "config.json")


def containers_auth_file(environ: Mapping[str, str]) -> str:
    """podman/buildah/skopeo: ``$REGISTRY_AUTH_FILE``, else the persistent per-user file.

    containers/image also reads ``$XDG_CONFIG_HOME/containers/auth.json``; unlike the
    ``$XDG_RUNTIME_DIR`` default it survives logout and reboot, which a build host needs.
    """
    explicit = environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return explicit
    return os.path.join(_xdg(environ, "XDG_CONFIG_HOME", ".config"), "containers", "auth.json")


def helm_registry_config(environ: Mapping[str, str]) -> str:
    explicit = environ.get("HELM_REGISTRY_CONFIG")
    if explicit:
        return explicit
    return os.path.join(_xdg(environ, "XDG_CONFIG_HOME", ".config"), "helm", "registry", "config.json")


def which(program: str, environ: Mapping[str, str]) -> str | None:
    """``program`` on the PATH of ``environ`` (the unit's, not necessarily this process's)."""
    return shutil.which(program, path=environ.get("PATH", os.defpath))
