"""What a host still lacks before its first login, found locally: no AWS call, no botocore.

A laptop or a host off EC2 with the package installed and nothing set up (no
registry, no AWS credentials; the packaged configuration file names none) must not
show a failed unit every 15 minutes, yet must be told what is missing: ``login``
then says so in one notice and exits 0 (issue #13.3), ``status`` says it under
its table, and the token layer asks ``on_ec2`` whether instance metadata that
does not answer may answer later (the network at boot: temporary) or never will.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import paths

if TYPE_CHECKING:
    from .config import Settings

# What EC2 puts where any process can read it (Nitro: DMI; Xen: the hypervisor's uuid).
EC2_MARKERS = (
    ("/sys/devices/virtual/dmi/id/sys_vendor", "amazon ec2"),
    ("/sys/devices/virtual/dmi/id/board_asset_tag", "i-"),
    ("/sys/hypervisor/uuid", "ec2"),
)
# Variables through which botocore finds credentials, besides the shared files.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
)
# Keys of ~/.aws/config that give a profile credentials of its own.
CREDENTIAL_KEYS = ("aws_access_key_id", "role_arn", "credential_process", "sso_session", "sso_start_url",
                   "web_identity_token_file", "credential_source")


def on_ec2(environ: Mapping[str, str]) -> bool:
    """This host is an EC2 instance, or someone named an instance metadata service for it."""
    if environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        return True
    for path, prefix in EC2_MARKERS:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                if handle.read(64).strip().lower().startswith(prefix):
                    return True
        except OSError:
            continue
    return False


def credential_sources(environ: Mapping[str, str], profiles: Sequence[str | None] = ()) -> list[str]:
    """Where AWS credentials could come from without instance metadata: variables, a profile, the files."""
    found = [name for name in CREDENTIAL_VARIABLES if environ.get(name)]
    found += [f"profile {profile}" for profile in profiles if profile]
    aws_dir = os.path.join(paths.home(environ), ".aws")
    for variable, default, keys in (
        ("AWS_SHARED_CREDENTIALS_FILE", os.path.join(aws_dir, "credentials"), ("aws_access_key_id",)),
        ("AWS_CONFIG_FILE", os.path.join(aws_dir, "config"), CREDENTIAL_KEYS),
    ):
        path = environ.get(variable) or default
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(1 << 20).lower()
        except OSError:
            continue
        if any(key in text for key in keys):
            found.append(path)
    return found


def missing(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What this host lacks for its first login, each with the next step; [] when nothing visibly does.
    The steps name the environment file and unit that serve the reader (hints.py)."""
    from .hints import credentials_fix, region_fix, serving

    lines = []
    ec2 = on_ec2(environ)
    served = serving(settings.users)
    if any(target.registry is None and not target.region for target in settings.targets) and not ec2:
        lines.append(f"no AWS region (this host is not on EC2): {region_fix(served)}")
    if not ec2 and not credential_sources(environ, [target.profile for target in settings.targets]):
        lines.append("no AWS credentials in this environment or ~/.aws (and this host is not on EC2, so no instance "
                     f"profile): {credentials_fix(served)}")
    config = settings.config_path or environ.get("ECR_LOGIN_CONFIG") or "/etc/ecr-login/ecr-login.conf"
    if lines and all(target.registry is None for target in settings.targets):
        where = config if settings.config_path else f"{config} (absent)"
        lines.append(f"no registry configured in {where}: ecr-login logs in to the caller's own default "
                     "registry; name your registries there")
    return lines


def nothing_set_up(settings: Settings, environ: Mapping[str, str], named: Sequence[str] = ()) -> bool:
    """No registry configured or named, no role to assume, and no AWS credentials anywhere visible:
    the host was never set up (the packaged configuration, all comments, sets nothing), so a login
    that fails for want of credentials or a region is not a failure."""
    return (
        not named
        and all(target.registry is None and not target.role_arn for target in settings.targets)
        and not credential_sources(environ, [target.profile for target in settings.targets])
    )
