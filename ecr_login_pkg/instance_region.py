"""What EC2 instance metadata says: the region, for a host where nothing else names one, and
whether an instance profile that gave no credentials in time may still give them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace

from .errors import EcrLoginError, NotSetUpError, TemporaryError
from .tokens import Identity


def with_instance_region(identity: Identity, environ: Mapping[str, str]) -> Identity:
    """Fill in the region from EC2 instance metadata when nothing else named one.

    The zero-config default must work on an EC2 build host that has an instance
    profile and no AWS configuration at all, as the AWS CLI v2 does there. The
    state keys the default registry by the identity *as planned* (region left
    empty), so a run with nothing due never asks the metadata service.

    With metadata switched off (``AWS_EC2_METADATA_DISABLED=true``) nothing can
    name a region: a set-up error (78). When the metadata service did not
    answer, an EC2 host (``readiness.on_ec2``) may just not have its network up
    yet at boot: temporary (75), the timer's next tick tries again. Any other
    host has no metadata service to wait for: 78, with how to set a region.
    """
    if identity.region:
        return identity
    from .hints import region_fix, serving

    how = region_fix(serving())
    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        off = "instance metadata is off: AWS_EC2_METADATA_DISABLED=true"
        raise NotSetUpError(f"no AWS region ({off})", how, f"no AWS region: {how} ({off})")
    from botocore.utils import InstanceMetadataRegionFetcher

    endpoint = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
    fetcher = InstanceMetadataRegionFetcher(
        timeout=1, num_attempts=2, config={"ec2_metadata_service_endpoint": endpoint} if endpoint else {}
    )
    try:
        region = fetcher.retrieve_region()
    except Exception:  # botocore logs and swallows most IMDS errors itself; be as lenient
        region = None
    if not region:
        from .readiness import on_ec2

        if on_ec2(environ):
            raise TemporaryError(f"no AWS region: instance metadata did not answer (the network may not be up yet); {how}")
        raise NotSetUpError("no AWS region: this host is not on EC2 (no instance metadata)", how)
    return replace(identity, region=region)


def metadata_url(environ: Mapping[str, str]) -> str:
    """The instance metadata service botocore asks (``AWS_EC2_METADATA_SERVICE_ENDPOINT``, the IPv6
    mode, or the link-local default)."""
    endpoint = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip()
    if endpoint:
        return endpoint.rstrip("/")
    if environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").strip().lower() == "ipv6":
        return "http://[fd00:ec2::254]"
    return "http://169.254.169.254"


def no_credentials(what: str, environ: Mapping[str, str], timeout: float = 2.0) -> EcrLoginError:
    """Why botocore's whole credential chain found nothing: set-up (78), or, on EC2, a metadata
    service that did not give the instance profile's credentials in time (75, the next try may).

    botocore waits ``AWS_METADATA_SERVICE_TIMEOUT`` (1 s) for the metadata service and then moves
    on as if there were no instance profile; a service busy at boot, or throttled, looks the
    same. So ask it once more, with a little longer: an answer that this instance has no role
    (404) is set-up; silence, an error or a role name that came too late is temporary.
    """
    from .hints import credentials_fix, serving
    from .readiness import on_ec2

    missing = NotSetUpError(f"{what}: no AWS credentials found", credentials_fix(serving()))

    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true" or not on_ec2(environ):
        return missing
    base = metadata_url(environ)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy, as botocore
    try:
        ask = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        with opener.open(ask, timeout=timeout) as answer:
            token = answer.read(4096).decode("ascii", "replace").strip()
        ask = urllib.request.Request(f"{base}/latest/meta-data/iam/security-credentials/",
                                     headers={"X-aws-ec2-metadata-token": token})
        with opener.open(ask, timeout=timeout) as answer:
            answer.read(4096)
        late = "gave the instance profile's credentials too late"
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return missing  # it answered: this instance has no instance profile
        late = f"answered HTTP {exc.code} for the instance profile's credentials"
    except (OSError, ValueError) as exc:  # a timeout, a refused or reset connection
        late = f"gave no instance profile credentials in time ({type(exc).__name__})"
    return TemporaryError(
        f"{what}: no AWS credentials yet: the instance metadata service at {base} {late} "
        "(busy at boot, or throttled?); the next try may get them"
    )
