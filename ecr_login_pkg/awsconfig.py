"""The region an AWS profile names in the shared AWS files, found as botocore finds it.

The default registry's state key holds its region, so every run needs it, and a
run with nothing due imports no botocore. This reads the files with configparser
and botocore's documented rules (``botocore.configloader``): sections
``[default]`` and ``[profile NAME]`` (NAME shell-quoted or not, any spacing), the
credentials file's ``[NAME]`` sections merged over them, the profile chosen by the
argument, ``AWS_DEFAULT_PROFILE`` or ``AWS_PROFILE``. tests/test_awsconfig.py holds
the answer to botocore's own for generated files.
"""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Mapping

from . import paths


def profile_region(environ: Mapping[str, str], profile: str | None) -> str | None:
    """The ``region`` of the profile botocore would use, or None (no such profile or key,
    or a file botocore could not read either)."""
    name = profile or environ.get("AWS_DEFAULT_PROFILE") or environ.get("AWS_PROFILE")
    home = paths.home(environ)
    config_file = environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")
    credentials_file = environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials")
    try:
        profiles = _profiles(_sections(config_file))
        for section, values in _sections(credentials_file).items():
            profiles.setdefault(section, {}).update(values)
    except (configparser.Error, UnicodeDecodeError):
        return None
    region = profiles.get(name or "default", {}).get("region")
    return region or None


def _sections(path: str) -> dict[str, dict[str, str]]:
    """Every section of an INI file, as botocore's ``raw_config_parse`` reads it ({} when absent)."""
    path = os.path.expanduser(os.path.expandvars(path))
    if not os.path.isfile(path):
        return {}
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError:  # unreadable: botocore's ``read`` skips it too
        return {}
    return {section: dict(parser.items(section)) for section in parser.sections()}


def _profiles(sections: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The profiles among the config file's sections (``build_profile_map``): later sections win."""
    profiles: dict[str, dict[str, str]] = {}
    for section, values in sections.items():
        if section.startswith("profile"):
            try:
                parts = shlex.split(section)
            except ValueError:
                continue
            if len(parts) == 2:
                profiles[parts[1]] = values
        elif section == "default":
            profiles[section] = values
    return profiles
