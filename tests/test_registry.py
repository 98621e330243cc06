"""Every ECR hostname form parses to the right region/account/partition; malformed ones are refused."""

from __future__ import annotations

import pytest

from ecr_login_pkg.errors import ConfigError
from ecr_login_pkg.registry import host_for, parse_host

VALID = [
    # host, region, account, partition, fips, dualstack
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", "123456789012", "aws", False, False),
    ("123456789012.dkr.ecr.eu-central-2.amazonaws.com", "eu-central-2", "123456789012", "aws", False, False),
    ("123456789012.dkr.ecr-fips.us-east-2.amazonaws.com", "us-east-2", "123456789012", "aws", True, False),
    ("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", "us-gov-west-1", "123456789012", "aws-us-gov", False, False),
    ("123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com", "us-gov-east-1", "123456789012", "aws-us-gov", True, False),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", "123456789012", "aws-cn", False, False),
    ("123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1", "123456789012", "aws-cn", False, False),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", "123456789012", "aws-iso", False, False),
    ("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1", "123456789012", "aws-iso-b", False, False),
    ("123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1", "123456789012", "aws-iso-e", False, False),
    ("123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1", "123456789012", "aws-iso-f", False, False),
    ("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", "123456789012", "aws-eusc", False, False),
    ("123456789012.dkr-ecr.us-west-2.on.aws", "us-west-2", "123456789012", "aws", False, True),
    ("123456789012.dkr-ecr-fips.us-west-2.on.aws", "us-west-2", "123456789012", "aws", True, True),
    ("123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", "cn-north-1", "123456789012", "aws-cn", False, True),
    ("public.ecr.aws", "us-east-1", None, "aws", False, False),
]


@pytest.mark.parametrize(("host", "region", "account", "partition", "fips", "dualstack"), VALID)
def test_every_hostname_form_parses(host, region, account, partition, fips, dualstack) -> None:  # type: ignore[no-untyped-def]
    registry = parse_host(host)
    assert (registry.host, registry.region, registry.account, registry.partition) == (host, region, account, partition)
    assert (registry.fips, registry.dualstack) == (fips, dualstack)
    assert registry.public == (host == "public.ecr.aws")


@pytest.mark.parametrize(
    "pasted",
    [
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/app",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:latest",
        "HTTPS://123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM",
        "http://123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
        "  123456789012.dkr.ecr.us-east-1.amazonaws.com  ",
    ],
)
def test_urls_and_paths_are_tolerated(pasted: str) -> None:
    assert parse_host(pasted).host == "123456789012.dkr.ecr.us-east-1.amazonaws.com"


MALFORMED = [
    ("", "empty"),
    ("docker.io", "not an ECR registry hostname"),
    ("ghcr.io/owner/image", "not an ECR registry hostname"),
    ("12345678901.dkr.ecr.us-east-1.amazonaws.com", "12 digits"),
    ("1234567890123.dkr.ecr.us-east-1.amazonaws.com", "12 digits"),
    ("12345678901a.dkr.ecr.us-east-1.amazonaws.com", "12 digits"),
    ("123456789012.dkr.ecr.useast1.amazonaws.com", "region"),
    ("123456789012.dkr.ecr.us-east.amazonaws.com", "region"),
    ("123456789012.dkr.ecr.US_EAST_1.amazonaws.com", "region"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.org", "unknown domain"),
    ("123456789012.dkr.ecr.us-east-1.example.com", "unknown domain"),
    ("123456789012.ecr.us-east-1.amazonaws.com", "not an ECR registry hostname"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com", "does not belong"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.cn", "does not belong"),
    ("123456789012.dkr-ecr.us-west-2.on.example", "unknown domain"),
    ("123456789012.dkr.ecr.us-iso-east-1.amazonaws.com", "does not belong"),
    ("public.ecr.aws.evil.example", "not an ECR registry hostname"),
    ("dkr.ecr.us-east-1.amazonaws.com", "not an ECR registry hostname"),
    ("123456789012.dkr.ecr..amazonaws.com", "not an ECR registry hostname"),
]


@pytest.mark.parametrize(("host", "problem"), MALFORMED)
def test_malformed_hostnames_are_refused_with_the_reason(host: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_host(host)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_account_and_region_build_the_partitions_hostname() -> None:
    assert host_for("123456789012", "eu-west-1").host == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert host_for("123456789012", "cn-north-1").host == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    assert host_for("123456789012", "us-isob-east-1").host == "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov"
    with pytest.raises(ConfigError):
        host_for("42", "eu-west-1")
