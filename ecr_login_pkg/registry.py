"""Parse and validate Amazon ECR registry hostnames.

One place knows every hostname form, so config errors name the exact problem and
the token layer can trust ``Registry.region`` and ``Registry.public``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

PUBLIC_HOST = "public.ecr.aws"
PUBLIC_REGION = "us-east-1"  # ecr-public's only API region

# DNS suffix -> partition, for the classic "<acct>.dkr.ecr[-fips].<region>.<suffix>" form.
PARTITION_SUFFIXES = {
    "amazonaws.com": "aws",  # also aws-us-gov (us-gov-* regions)
    "amazonaws.com.cn": "aws-cn",
    "c2s.ic.gov": "aws-iso",
    "sc2s.sgov.gov": "aws-iso-b",
    "cloud.adc-e.uk": "aws-iso-e",
    "csp.hci.ic.gov": "aws-iso-f",
    "amazonaws.eu": "aws-eusc",
}
# Dual-stack endpoints: "<acct>.dkr-ecr[-fips].<region>.on.<suffix>".
DUALSTACK_SUFFIXES = {
    "aws": "aws",
    "amazonwebservices.com.cn": "aws-cn",
}

# [0-9] and \Z, not \d and $: \d also matches non-ASCII digits, $ also a trailing newline.
REGION_RE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}\Z")
ACCOUNT_RE = re.compile(r"^[0-9]{12}\Z")
_CLASSIC_RE = re.compile(r"^(?P<account>[^.]+)\.dkr\.ecr(?P<fips>-fips)?\.(?P<region>[^.]+)\.(?P<suffix>.+)$")
_DUALSTACK_RE = re.compile(r"^(?P<account>[^.]+)\.dkr-ecr(?P<fips>-fips)?\.(?P<region>[^.]+)\.on\.(?P<suffix>.+)$")
_REGION_PARTITION_PREFIX = {
    "aws-cn": "cn-",
    "aws-iso": "us-iso-",
    "aws-iso-b": "us-isob-",
    "aws-iso-e": "eu-isoe-",
    "aws-iso-f": "us-isof-",
    "aws-eusc": "eusc-",
}


@dataclass(frozen=True)
class Registry:
    """A parsed ECR registry: where to log in, and which API region issues its token."""

    host: str
    region: str
    account: str | None  # None for public.ecr.aws
    partition: str
    fips: bool = False
    dualstack: bool = False

    @property
    def public(self) -> bool:
        return self.host == PUBLIC_HOST


def validate_region(region: str) -> str:
    """Return ``region`` if it looks like an AWS region name, else raise ConfigError."""
    if not REGION_RE.match(region):
        raise ConfigError(f"'{region}' is not an AWS region name (expected something like us-east-1)")
    return region


def validate_account(account: str) -> str:
    if not ACCOUNT_RE.match(account):
        raise ConfigError(f"account id '{account}' must be exactly 12 digits")
    return account


def strip_url(text: str) -> str:
    """Reduce 'https://HOST[:443]/path' (as people paste it) to the bare lowercase host."""
    host = text.strip()
    lowered = host.lower()
    for scheme in ("https://", "http://"):
        if lowered.startswith(scheme):
            host = host[len(scheme):]
            break
    host = host.split("/", 1)[0].lower()
    if host.endswith(":443"):
        host = host[:-4]
    return host


def parse_host(text: str) -> Registry:
    """Parse any ECR hostname form; raise ConfigError saying what is wrong with it."""
    host = strip_url(text)
    if not host:
        raise ConfigError("empty registry hostname")
    if host == PUBLIC_HOST:
        return Registry(host=host, region=PUBLIC_REGION, account=None, partition="aws")
    match = _DUALSTACK_RE.match(host)
    dualstack = match is not None
    suffixes = DUALSTACK_SUFFIXES if dualstack else PARTITION_SUFFIXES
    if match is None:
        match = _CLASSIC_RE.match(host)
    if match is None:
        raise ConfigError(
            f"'{text}' is not an ECR registry hostname "
            "(expected ACCOUNT.dkr.ecr.REGION.amazonaws.com or public.ecr.aws)"
        )
    account, region, suffix = match["account"], match["region"], match["suffix"]
    partition = suffixes.get(suffix)
    if partition is None:
        known = ", ".join(sorted(suffixes))
        raise ConfigError(f"'{text}' ends in unknown domain '{suffix}' (known: {known})")
    validate_account(account)
    validate_region(region)
    if region.startswith("us-gov-") and partition == "aws":
        partition = "aws-us-gov"
    expected_prefix = _REGION_PARTITION_PREFIX.get(partition)
    if expected_prefix and not region.startswith(expected_prefix):
        raise ConfigError(f"'{text}': region {region} does not belong to domain {suffix}")
    if not expected_prefix and any(region.startswith(p) for p in _REGION_PARTITION_PREFIX.values()):
        raise ConfigError(f"'{text}': region {region} does not belong to domain {suffix}")
    return Registry(
        host=host,
        region=region,
        account=account,
        partition=partition,
        fips=bool(match["fips"]),
        dualstack=dualstack,
    )


def host_for(account: str, region: str) -> Registry:
    """The standard private registry of ``account`` in ``region`` (config: account + region)."""
    validate_account(account)
    validate_region(region)
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    for candidate_suffix, partition in PARTITION_SUFFIXES.items():
        prefix = _REGION_PARTITION_PREFIX.get(partition)
        if prefix and region.startswith(prefix):
            suffix = candidate_suffix
    return parse_host(f"{account}.dkr.ecr.{region}.{suffix}")


_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def is_login_address(text: str) -> bool:
    """True for a plausible 'host[:port]' a login can be stored under (``store_as``): lowercase
    letters, digits, dots and dashes, neither first nor last, and an optional port of 1-5 digits.
    Plain string tests: a pattern would be compiled anew by every run with nothing due."""
    host, colon, port = text.partition(":")
    if colon and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return False
    return bool(host) and set(host) <= _HOST_CHARACTERS and host[0] not in ".-" and host[-1] not in ".-"
