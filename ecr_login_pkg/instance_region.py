"""The AWS region from EC2 instance metadata, for a host where nothing else names one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .errors import NotSetUpError, TemporaryError
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
    how = "set 'region' in [defaults] of the configuration, AWS_REGION, or pass --region"
    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        raise NotSetUpError(f"no AWS region: {how} (instance metadata is off: AWS_EC2_METADATA_DISABLED=true)")
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
        raise NotSetUpError(f"no AWS region: this host is not on EC2 (no instance metadata): {how}")
    return replace(identity, region=region)
