"""Property tests (hypothesis) for the two parsers that take text from people: hostnames and the configuration.

- ``parse_host`` raises nothing but ConfigError on any text, accepts only plain
  ASCII DNS names, and round-trips every valid hostname form (private, FIPS,
  dual-stack, every partition, public.ecr.aws) however it is decorated
  (scheme, case, ``:443``, a repository path).
- The configuration loader, fed generated INI text (valid keys and values, near
  misses, junk lines, duplicates, odd sections), raises nothing but
  ConfigError/UsageError; generated *valid* configurations always load, one
  target per section.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ecr_login_pkg.config import DEFAULTS_KEYS, REGISTRY_KEYS, Overrides, load
from ecr_login_pkg.errors import ConfigError, UsageError
from ecr_login_pkg.registry import PUBLIC_HOST, is_login_address, parse_host

PROFILE = settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")

# (partition, classic DNS suffix, dual-stack DNS suffix or None, region strategy)
DIRECTIONS = st.sampled_from(["east", "west", "north", "south", "central", "northeast", "southeast", "northwest"])
PARTITIONS = [
    ("aws", "amazonaws.com", "aws",
     st.builds("{}-{}-{}".format, st.sampled_from(["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"]), DIRECTIONS,
               st.integers(1, 9))),
    ("aws-us-gov", "amazonaws.com", "aws", st.builds("us-gov-{}-1".format, st.sampled_from(["east", "west"]))),
    ("aws-cn", "amazonaws.com.cn", "amazonwebservices.com.cn", st.sampled_from(["cn-north-1", "cn-northwest-1"])),
    ("aws-iso", "c2s.ic.gov", None, st.sampled_from(["us-iso-east-1", "us-iso-west-1"])),
    ("aws-iso-b", "sc2s.sgov.gov", None, st.just("us-isob-east-1")),
    ("aws-iso-e", "cloud.adc-e.uk", None, st.just("eu-isoe-west-1")),
    ("aws-iso-f", "csp.hci.ic.gov", None, st.sampled_from(["us-isof-south-1", "us-isof-east-1"])),
    ("aws-eusc", "amazonaws.eu", None, st.just("eusc-de-east-1")),
]
ACCOUNTS = st.text(alphabet="0123456789", min_size=12, max_size=12)


@st.composite
def valid_hosts(draw):  # type: ignore[no-untyped-def]
    """(what a person might type, expected host, region, account, partition, fips, dualstack)."""
    if draw(st.integers(0, 9)) == 0:
        host, region, account, partition, fips, dualstack = PUBLIC_HOST, "us-east-1", None, "aws", False, False
    else:
        partition, suffix, dual_suffix, regions = draw(st.sampled_from(PARTITIONS))
        region, account, fips = draw(regions), draw(ACCOUNTS), draw(st.booleans())
        dualstack = dual_suffix is not None and draw(st.booleans())
        fips_part = "-fips" if fips else ""
        if dualstack:
            host = f"{account}.dkr-ecr{fips_part}.{region}.on.{dual_suffix}"
        else:
            host = f"{account}.dkr.ecr{fips_part}.{region}.{suffix}"
    typed = host
    if draw(st.booleans()):
        typed = typed.upper() if draw(st.booleans()) else typed.capitalize()
    if draw(st.booleans()):
        typed += ":443"
    if draw(st.booleans()):
        typed += draw(st.sampled_from(["/", "/team/app", "/team/app:v1", "/a/b/c@sha256:00"]))
    if draw(st.booleans()):
        typed = draw(st.sampled_from(["https://", "http://", "HTTPS://"])) + typed
    if draw(st.booleans()):
        typed = draw(st.sampled_from([" ", "\t", "  "])) + typed + draw(st.sampled_from(["", " ", "\n"]))
    return typed, host, region, account, partition, fips, dualstack


def near_misses() -> st.SearchStrategy[str]:
    """Valid hostnames with one thing broken: the inputs that reach the deepest checks."""
    def mutate(args: tuple[str, str, int, str]) -> str:
        host, operation, position, text = args
        position %= len(host) + 1
        if operation == "insert":
            return host[:position] + text + host[position:]
        if operation == "delete":
            return host[:position] + host[position + len(text):]
        return host[:position] + text + host[position + 1:]

    return st.tuples(
        valid_hosts().map(lambda v: v[1]),
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(0, 80),
        st.text(min_size=1, max_size=3),
    ).map(mutate)


@PROFILE
@given(st.one_of(st.text(max_size=120), near_misses(), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))))
@example("\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662.dkr.ecr.us-east-1.amazonaws.com")
@example("123456789012.dkr.ecr.us-east-\u0661.amazonaws.com")  # digits, but not ASCII ones
@example("123456789012\n.dkr.ecr.us-east-1.amazonaws.com")
@example("123456789012.dkr.ecr..amazonaws.com")
@example("https://")
@example("123456789012.dkr.ecr.us-east-1.amazonaws.com:444")
def test_parse_host_raises_only_config_error_and_accepts_only_dns_names(text: str) -> None:
    try:
        registry = parse_host(text)
    except ConfigError as exc:
        assert str(exc)
        event("refused")
        return
    event("accepted")
    assert registry.host.isascii() and DNS_NAME.match(registry.host), registry.host
    assert registry.host == registry.host.lower()
    assert parse_host(registry.host) == registry  # what was accepted parses again to the same thing


@PROFILE
@given(valid_hosts())
def test_parse_host_round_trips_every_valid_form(case) -> None:  # type: ignore[no-untyped-def]
    typed, host, region, account, partition, fips, dualstack = case
    registry = parse_host(typed)
    assert registry.host == host
    assert (registry.region, registry.account, registry.partition) == (region, account, partition)
    assert (registry.fips, registry.dualstack, registry.public) == (fips, dualstack, host == PUBLIC_HOST)
    assert parse_host(registry.host) == registry
    assert parse_host(f"https://{registry.host}/x") == registry


# --- the configuration loader --------------------------------------------------------------------

CONFIG_DIR = Path(tempfile.mkdtemp(prefix="ecr-login-properties-"))
ENVIRON = {
    "HOME": str(CONFIG_DIR / "home"),
    "PATH": "/nonexistent-bin",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
GOOD_VALUES = {
    "region": st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"]),
    "profile": st.sampled_from(["default", "ci", "prod-pull"]),
    "role_arn": st.just("arn:aws:iam::123456789012:role/ecr-pull"),
    "endpoint_url": st.sampled_from(["http://127.0.0.1:9", "https://ecr.example.org"]),
    "refresh_margin": st.sampled_from(["6h", "90m", "1h30m", "3600", "0"]),
    "stores": st.sampled_from(["file", "docker", "file, containers", "helm containers"]),
    "token_source": st.sampled_from(["boto3", "awscli"]),
    "docker_config": st.just("/var/lib/ecr-login/.docker"),
    "metrics_file": st.just("/var/lib/prometheus/node-exporter/ecr-login.prom"),
    "timeout": st.sampled_from(["5s", "2m", "120"]),
    "lock_timeout": st.sampled_from(["0", "1s", "60"]),
    "hooks_dir": st.sampled_from(["/etc/ecr-login/hooks.d", "/srv/hooks"]),
    "hook_timeout": st.sampled_from(["1", "30s", "1h"]),
    "users": st.sampled_from(["builder", "builder, gitlab-runner", "@ci jenkins", "root"]),
    "host": valid_hosts().map(lambda v: v[1]),
    "account": ACCOUNTS,
    "store_as": st.sampled_from(["127.0.0.1:5000", "mirror.example.org", "localhost:5001"]),
}
ANY_KEY = st.one_of(
    st.sampled_from(sorted(DEFAULTS_KEYS | REGISTRY_KEYS)),
    st.sampled_from(["regoin", "stroes", "Host", "REGION", "endpoint-url", "timeout ", "x"]),
    st.text(alphabet=st.characters(blacklist_characters="=:[]\n\r"), min_size=1, max_size=12),
)
ANY_VALUE = st.one_of(
    st.one_of(*GOOD_VALUES.values()),
    st.text(max_size=30).map(lambda s: s.replace("\n", " ").replace("\r", " ")),
    st.sampled_from(["", "  ", "%(x)s", "${HOME}", "-1", "99999999999999999999h", "1e9", "6 h", "nan"]),
)
SECTION = st.one_of(
    st.just("defaults"),
    valid_hosts().map(lambda v: v[1]),
    near_misses(),
    st.sampled_from(["app", "prod", "DEFAULTS", "Defaults", "", " ", "public.ecr.aws"]),
    st.text(alphabet=st.characters(blacklist_characters="]\n\r"), max_size=20),
)
LINE = st.one_of(
    SECTION.map(lambda name: f"[{name}]"),
    st.tuples(ANY_KEY, st.sampled_from([" = ", "=", ": ", " : "]), ANY_VALUE).map("".join),
    st.sampled_from(["# a comment", "; another", "", "   continued value", "[unterminated", "key without value", "= value"]),
    st.text(max_size=40).map(lambda s: s.replace("\r", "")),
)


def load_text(text: str | bytes, **overrides: object):  # type: ignore[no-untyped-def]
    path = CONFIG_DIR / "ecr-login.conf"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    return load(Overrides(config_path=str(path), **overrides), ENVIRON)  # type: ignore[arg-type]


@PROFILE
@given(st.lists(LINE, max_size=25).map("\n".join))
@example("[defaults]\nregion = us-east-1\n[defaults]\n")
@example("[app]\naccount = 123456789012\n")
@example("[x]\n  continued\n")
@example("[defaults]\nrefresh_margin = 99999999999999999999999h\n")
@example("\ufeff[defaults]\n")
def test_config_loader_raises_only_config_or_usage_errors(text: str) -> None:
    try:
        load_text(text)
    except (ConfigError, UsageError) as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        event(f"refused: {type(exc).__name__}")
    else:
        event("loaded")


@PROFILE
@given(st.binary(max_size=200))
def test_config_loader_survives_any_bytes(data: bytes) -> None:
    try:
        load_text(data)
    except (ConfigError, UsageError) as exc:
        assert "\n" not in str(exc)


@st.composite
def valid_configs(draw):  # type: ignore[no-untyped-def]
    """A configuration every key and value of which is valid, with distinct registries."""
    lines = ["[defaults]"]
    keys = draw(st.lists(st.sampled_from(sorted(DEFAULTS_KEYS)), unique=True, max_size=6))
    values = {key: draw(GOOD_VALUES[key]) for key in keys}
    awscli = values.get("token_source") == "awscli"
    if awscli:  # the AWS CLI neither assumes role_arn nor names the default registry: valid only without both
        values.pop("role_arn", None)
    lines += [f"{key} = {value}" for key, value in values.items()]
    hosts = draw(st.lists(valid_hosts().map(lambda v: v[1]), unique=True, min_size=1 if awscli else 0, max_size=5))
    for index, host in enumerate(hosts):
        style = draw(st.sampled_from(["section", "host", "account"]))
        match = re.match(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$", host)
        if style == "account" and match and not match[2].startswith(("us-iso", "eu-isoe", "eusc")):
            lines += [f"[registry-{index}]", f"account = {match[1]}", f"region = {match[2]}"]
        elif style == "host":
            lines += [f"[registry-{index}]", f"host = {host}"]
        else:
            lines.append(f"[{host}]")
        if draw(st.booleans()):
            lines.append(f"stores = {draw(GOOD_VALUES['stores'])}")
        if draw(st.booleans()):
            lines.append(f"profile = {draw(GOOD_VALUES['profile'])}")
    return "\n".join(lines) + "\n", len(hosts)


@PROFILE
@given(valid_configs())
def test_valid_configurations_always_load(case) -> None:  # type: ignore[no-untyped-def]
    text, registries = case
    settings_ = load_text(text)
    assert len(settings_.targets) == max(registries, 1)
    assert all(target.region for target in settings_.targets)
    assert all(target.stores for target in settings_.targets)


# store_as: what a login may be stored under; the pattern the check replaced, anchored to the whole
# text with ASCII digits (it used \d and $, which also let non-ASCII digits and a final newline in)
LOGIN_ADDRESS = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?")


@PROFILE
@given(st.text(alphabet="az09.-:Z_ \n\u0661/", max_size=12))
@example("127.0.0.1:5000")
@example("registry.local")
@example("host:")
@example("host:123456")
@example("-host")
@example("host.\n")
def test_login_address_check_matches_the_anchored_pattern(text: str) -> None:
    assert is_login_address(text) == (LOGIN_ADDRESS.fullmatch(text) is not None)
