"""Read ``ecr-login.conf``, the environment and the flags into validated, plain settings.

Every bad value is rejected here, as one line naming the file, the line, the key
and a fix, so nothing downstream ever sees a half-valid configuration.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import paths
from .awsconfig import profile_region
from .errors import ConfigError, UsageError
from .registry import Registry, host_for, is_login_address, parse_host, validate_account, validate_region

DEFAULT_CONFIG = "/etc/ecr-login/ecr-login.conf"
DEFAULTS_SECTION = "defaults"
STORE_NAMES = ("docker", "file", "containers", "helm")
TOKEN_SOURCES = ("boto3", "awscli")
TOKEN_LIFETIME = 12 * 3600.0
DEFAULT_HOOKS_DIR = "/etc/ecr-login/hooks.d"

DEFAULTS_KEYS = {
    "region", "profile", "role_arn", "endpoint_url", "refresh_margin", "stores", "token_source",
    "docker_config", "metrics_file", "timeout", "lock_timeout", "hooks_dir", "hook_timeout", "users",
}
REGISTRY_KEYS = {"host", "account", "region", "profile", "role_arn", "endpoint_url", "stores", "store_as", "token_source"}


@dataclass(frozen=True)
class Target:
    """One registry to keep logged in, with everything needed to fetch and store its login.

    ``registry`` is None for the zero-config default: the caller's own registry,
    learnt from the token answer (as ``aws ecr get-login-password`` does).
    """

    name: str
    registry: Registry | None
    region: str
    stores: tuple[str, ...]
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    token_source: str = "boto3"
    store_as: str | None = None

    @property
    def public(self) -> bool:
        return self.registry is not None and self.registry.public


@dataclass(frozen=True)
class Settings:
    config_path: str | None
    state_dir: str
    docker_config_file: str
    refresh_margin: float = 6 * 3600.0
    timeout: float = 120.0
    lock_timeout: float = 300.0  # longer than a slow run (timeout + docker logins): a manual run waits, not fails
    metrics_file: str | None = None
    targets: tuple[Target, ...] = ()
    hooks_dir: str | None = DEFAULT_HOOKS_DIR  # None: --no-hooks
    hook_timeout: float = 60.0
    docker_config_dir: str | None = None  # [defaults] docker_config: the service user's own, not the named users'
    users: tuple[str, ...] = ()  # the named consumers: user names and @groups (consumers.py)
    users_line: str = ""  # where ``users`` is set, for messages: "FILE:LINE: [defaults] users"


@dataclass(frozen=True)
class Overrides:
    """What the command line says; None means 'not given'."""

    config_path: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    store: str | None = None
    metrics_file: str | None = None
    registries: tuple[str, ...] = ()
    no_hooks: bool = False


class _Source:
    """The parsed file, and how to name a place in it in an error message."""

    def __init__(self, path: str, parser: configparser.ConfigParser | None) -> None:
        self.path = path
        self.sections: dict[str, dict[str, str]] = (
            {name: dict(parser[name]) for name in parser.sections()} if parser else {}
        )

    def fail(self, section: str, key: str | None, problem: str) -> ConfigError:
        where = f"[{section}] {key}" if key else f"[{section}]"
        return ConfigError(f"{self.path}: {where}: {problem}")


def parse_duration(text: str) -> float:
    """'6h', '90m', '1h30m', '45s' or plain seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", value)
    if not value or parts is None or not any(parts.groups()):
        raise ValueError(f"'{text}' is not a duration (use e.g. 6h, 90m, 1h30m or seconds)")
    hours, minutes, seconds = (int(group or 0) for group in parts.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _hint(key: str, known: set[str], what: str = "keys") -> str:
    import difflib  # only a misspelt key needs it

    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"did you mean '{close[0]}'?" if close else f"known {what}: {', '.join(sorted(known))}"


def _read_file(path: str, explicit: bool) -> str | None:
    """The file's text; refused at once when it is not a regular file (a FIFO would block the run)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens without a writer
        with open(fd, encoding="utf-8-sig") as handle:  # -sig: a byte order mark some editors write
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{path}: is not a regular file (a FIFO, socket or device?); "
                                  "point --config at a configuration file")
            return handle.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: configuration file not found (check --config)") from None
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read configuration file: permission denied (it must be readable by this user)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: configuration file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from None


def _parse(path: str, text: str) -> configparser.ConfigParser:
    """configparser, strict: a section or key given twice is an error, not a silent override.

    No ``[DEFAULT]`` magic (``default_section`` is a name no header can have): every
    section stands alone, and ``[defaults]`` is read as ecr-login's own section.
    """
    parser = configparser.ConfigParser(
        strict=True, interpolation=None, empty_lines_in_values=False, default_section="\n"
    )
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: a key appears before any [section] (start with [defaults])") from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: [{exc.section}] appears twice (merge the two sections)") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: [{exc.section}] {exc.option} is set twice (keep one)") from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else 0
        raise ConfigError(f"{path}:{line}: not 'key = value' or '[section]' syntax") from None
    return parser


def _stores(source: _Source, section: str, value: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in value.replace(",", " ").split())
    if not names:
        raise source.fail(section, "stores", f"is empty (use one or more of: {', '.join(STORE_NAMES)})")
    for name in names:
        if name not in STORE_NAMES:
            raise source.fail(section, "stores", f"unknown store '{name}' ({_hint(name, set(STORE_NAMES), 'stores')})")
    if len(set(names)) != len(names):
        raise source.fail(section, "stores", "names a store twice")
    return names


_URL_RE = re.compile(r"https?://([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?(/\S*)?")


def _endpoint(value: str | None, source: _Source | None = None, section: str = "") -> str | None:
    """An endpoint URL, checked; None when not set. From a file (``source``) the error names the
    file, section and key; from a flag or the environment, the caller names where it came from."""
    if not value:
        return None
    if not _URL_RE.fullmatch(value):
        problem = f"'{value}' is not a URL (expected http(s)://HOST[:PORT])"
        raise source.fail(section, "endpoint_url", problem) if source else ConfigError(f"endpoint URL {problem}")
    return value


def env_endpoint(environ: Mapping[str, str], service_variable: str) -> str | None:
    """``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL``, done here so old botocore honours them too;
    none when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` says to ignore them (as botocore does)."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for variable in (service_variable, "AWS_ENDPOINT_URL"):
        value = environ.get(variable)
        if value:
            try:
                return _endpoint(value)
            except ConfigError as exc:
                raise ConfigError(f"{variable} (environment): {exc}") from None
    return None


def default_stores(environ: Mapping[str, str]) -> tuple[str, ...]:
    return ("docker",) if paths.which("docker", environ) else ("file",)


def load(overrides: Overrides, environ: Mapping[str, str] = os.environ) -> Settings:
    """Build the settings for one run: file, then environment, then flags."""
    path = overrides.config_path or environ.get("ECR_LOGIN_CONFIG") or DEFAULT_CONFIG
    text = _read_file(path, explicit=bool(overrides.config_path or environ.get("ECR_LOGIN_CONFIG")))
    source = _Source(path, _parse(path, text) if text is not None else None)
    defaults = _defaults_section(source)
    _check_overrides(overrides)
    template = _template(source, defaults, overrides, environ)
    configured = [
        _registry_target(source, name, values, template)
        for name, values in source.sections.items()
        if name != DEFAULTS_SECTION
    ]
    _check_unique(source, configured)
    targets = _select(configured, template, overrides.registries)
    if any(target.registry is None and target.token_source == "awscli" for target in targets):
        raise source.fail(
            DEFAULTS_SECTION, "token_source",
            "awscli cannot find the caller's default registry (the AWS CLI does not say which it is): "
            "name the registries in their own sections, or use token_source = boto3",
        )
    docker_dir = defaults.get("docker_config") or None
    return Settings(
        config_path=path if text is not None else None,
        state_dir=paths.state_dir(environ),
        docker_config_file=paths.docker_config_file(environ, docker_dir),
        refresh_margin=_duration(source, defaults, "refresh_margin", 6 * 3600.0, 0, TOKEN_LIFETIME - 60),
        timeout=_duration(source, defaults, "timeout", 120.0, 1, 3600),
        lock_timeout=_duration(source, defaults, "lock_timeout", 300.0, 0, 3600),
        metrics_file=overrides.metrics_file or defaults.get("metrics_file") or None,
        targets=tuple(_finish(target, overrides, environ) for target in targets),
        hooks_dir=None if overrides.no_hooks else _hooks_dir(source, defaults, environ),
        hook_timeout=_duration(source, defaults, "hook_timeout", 60.0, 1, 3600),
        docker_config_dir=docker_dir,
        users=_users(source, defaults),
        users_line=_key_line(path, text or "", DEFAULTS_SECTION, "users"),
    )


# A user name as useradd(8) accepts it by default (Debian's NAME_REGEX, Fedora's), or @group.
_USER_RE = re.compile(r"@?[a-z_][a-z0-9_.-]*\$?", re.IGNORECASE)


def _users(source: _Source, defaults: dict[str, str]) -> tuple[str, ...]:
    """``users``: the build users who get the host's logins, names or ``@group``, checked for
    syntax only (whether they exist is asked at delivery, so one missing user stops no other)."""
    names = tuple(dict.fromkeys(defaults.get("users", "").replace(",", " ").split()))
    for name in names:
        if not _USER_RE.fullmatch(name) or len(name) > 33:
            raise source.fail(DEFAULTS_SECTION, "users",
                              f"'{name}' is not a user name or @group (list them: users = builder, gitlab-runner, @ci)")
    return names


def _key_line(path: str, text: str, section: str, key: str) -> str:
    """``FILE:LINE: [section] key``: where a key is set, for messages about its value."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.fullmatch(r"\s*\[([^\]]+)\]\s*", line)
        if header:
            current = header.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(key)}\s*[=:]", line):
            return f"{path}:{number}: [{section}] {key}"
    return f"{path}: [{section}] {key}"


def _hooks_dir(source: _Source, defaults: dict[str, str], environ: Mapping[str, str]) -> str:
    """ECR_LOGIN_HOOKS_DIR (an ecr-login@USER unit sets its own), else ``hooks_dir``, else the default."""
    value = environ.get("ECR_LOGIN_HOOKS_DIR")
    if value:
        if not os.path.isabs(value):
            raise ConfigError(f"ECR_LOGIN_HOOKS_DIR (environment): '{value}' must be an absolute directory path")
        return value
    value = defaults.get("hooks_dir") or DEFAULT_HOOKS_DIR
    if not os.path.isabs(value):
        raise source.fail(DEFAULTS_SECTION, "hooks_dir", "must be an absolute directory path")
    return value


def _defaults_section(source: _Source) -> dict[str, str]:
    """``[defaults]``, its keys known and its paths absolute."""
    defaults = source.sections.get(DEFAULTS_SECTION, {})
    for key in defaults:
        if key not in DEFAULTS_KEYS:
            hint = "it belongs in a registry section" if key in REGISTRY_KEYS else _hint(key, DEFAULTS_KEYS)
            raise source.fail(DEFAULTS_SECTION, key, f"unknown key ({hint})")
    if defaults.get("docker_config") and not os.path.isabs(defaults["docker_config"]):
        raise source.fail(DEFAULTS_SECTION, "docker_config", "must be an absolute directory path")
    if defaults.get("metrics_file") and not os.path.isabs(defaults["metrics_file"]):
        raise source.fail(DEFAULTS_SECTION, "metrics_file", "must be an absolute path")
    return defaults


def _check_overrides(overrides: Overrides) -> None:
    """The flags' values, checked before anything is read on their strength (exit 64)."""
    checks: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--region", overrides.region, validate_region), ("--endpoint-url", overrides.endpoint_url, _endpoint)
    ]
    for flag, value, check in checks:
        if value:
            try:
                check(value)
            except ConfigError as exc:
                raise UsageError(f"{flag}: {exc}") from None
    if overrides.metrics_file and not os.path.isabs(overrides.metrics_file):
        raise UsageError(f"--metrics-file: '{overrides.metrics_file}' must be an absolute path")


def _duration(source: _Source, defaults: dict[str, str], key: str, default: float, low: float, high: float) -> float:
    if key not in defaults:
        return default
    try:
        value = parse_duration(defaults[key])
    except ValueError as exc:
        raise source.fail(DEFAULTS_SECTION, key, str(exc)) from None
    if not low <= value <= high:
        raise source.fail(DEFAULTS_SECTION, key, f"must be between {format_setting(low)} and {format_setting(high)}")
    return value


def format_setting(seconds: float) -> str:
    """A duration as the man page writes it: 0, 45s, 90m, 11h59m."""
    whole = int(seconds)
    hours, minutes, rest = whole // 3600, whole % 3600 // 60, whole % 60
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{rest}s" if rest else "")
    return text or "0"


def _template(source: _Source, defaults: dict[str, str], overrides: Overrides, environ: Mapping[str, str]) -> Target:
    """What every registry inherits: ``[defaults]`` with the flags over it."""
    region = overrides.region or defaults.get("region") or ""
    if region and not overrides.region:
        try:
            validate_region(region)
        except ConfigError as exc:
            raise source.fail(DEFAULTS_SECTION, "region", str(exc)) from None
    token_source = defaults.get("token_source", "boto3").strip().lower()
    if token_source not in TOKEN_SOURCES:
        raise source.fail(DEFAULTS_SECTION, "token_source", f"must be one of {', '.join(TOKEN_SOURCES)}")
    template = Target(
        name="",
        registry=None,
        region=region,
        stores=_stores(source, DEFAULTS_SECTION, defaults["stores"]) if "stores" in defaults else default_stores(environ),
        profile=overrides.profile or defaults.get("profile") or None,
        role_arn=defaults.get("role_arn") or None,
        endpoint_url=overrides.endpoint_url or _endpoint(defaults.get("endpoint_url"), source, DEFAULTS_SECTION),
        token_source=token_source,
    )
    if template.role_arn:
        _check_role_arn(source, DEFAULTS_SECTION, template.role_arn)
        _check_role_source(source, DEFAULTS_SECTION, template.token_source)
    return template


def _check_role_source(source: _Source, section: str, token_source: str) -> None:
    if token_source == "awscli":
        raise source.fail(
            section, "role_arn",
            "is not used by token_source = awscli: put role_arn in an AWS CLI profile and set 'profile', or use boto3",
        )


def _check_role_arn(source: _Source, section: str, value: str) -> None:
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise source.fail(section, "role_arn", f"'{value}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")


def _registry_target(source: _Source, section: str, values: dict[str, str], template: Target) -> Target:
    for key in values:
        if key not in REGISTRY_KEYS:
            hint = "it belongs in [defaults]" if key in DEFAULTS_KEYS else _hint(key, REGISTRY_KEYS)
            raise source.fail(section, key, f"unknown key ({hint})")
    if "host" in values and "account" in values:
        raise source.fail(section, "account", "conflicts with 'host' (give either host, or account and region)")
    region_value = values.get("region")
    try:
        if region_value:
            validate_region(region_value)
    except ConfigError as exc:
        raise source.fail(section, "region", str(exc)) from None
    try:
        if "host" in values:
            registry = parse_host(values["host"])
        elif "account" in values:
            region = region_value or template.region
            if not region:
                raise source.fail(section, "region", "is needed with 'account' (or set region in [defaults])")
            validate_account(values["account"].strip())
            registry = host_for(values["account"].strip(), region)
        else:
            registry = parse_host(section)
    except ConfigError as exc:
        if str(exc).startswith(source.path):
            raise
        failed_key = "host" if "host" in values else "account" if "account" in values else None
        raise source.fail(section, failed_key, str(exc)) from None
    if region_value and region_value != registry.region:
        raise source.fail(
            section, "region", f"{region_value} conflicts with the registry's own region {registry.region} (remove 'region')"
        )
    store_as = values.get("store_as", "").strip().lower() or None
    if store_as and not is_login_address(store_as):
        raise source.fail(section, "store_as", f"'{store_as}' is not a HOST[:PORT] address")
    token_source = values.get("token_source", template.token_source).strip().lower()
    if token_source not in TOKEN_SOURCES:
        raise source.fail(section, "token_source", f"must be one of {', '.join(TOKEN_SOURCES)}")
    if values.get("role_arn") or (template.role_arn and token_source == "awscli"):
        _check_role_arn(source, section, values.get("role_arn") or template.role_arn or "")
        _check_role_source(source, section if values.get("role_arn") else DEFAULTS_SECTION, token_source)
    return replace(
        template,
        name=section,
        registry=registry,
        region=registry.region,
        stores=_stores(source, section, values["stores"]) if "stores" in values else template.stores,
        profile=values.get("profile") or template.profile,
        role_arn=values.get("role_arn") or template.role_arn,
        endpoint_url=_endpoint(values.get("endpoint_url"), source, section) or template.endpoint_url,
        token_source=token_source,
        store_as=store_as,
    )


def _check_unique(source: _Source, targets: list[Target]) -> None:
    seen: dict[str, str] = {}
    for target in targets:
        address = target.store_as or (target.registry.host if target.registry else "")
        if address in seen:
            raise source.fail(target.name, None, f"logs in to {address}, as [{seen[address]}] already does (remove one)")
        seen[address] = target.name


def _select(configured: list[Target], template: Target, wanted: tuple[str, ...]) -> list[Target]:
    """Registries named on the command line, else the configured ones, else the caller's default."""
    if not wanted:
        return configured or [replace(template, name="default")]
    chosen: list[Target] = []
    for text in wanted:
        match = next(
            (t for t in configured if text in (t.name, t.store_as) or (t.registry and t.registry.host == text.lower())),
            None,
        )
        if match is None:
            try:
                registry = parse_host(text)
            except ConfigError as exc:
                raise UsageError(f"registry argument {exc}") from None
            match = next((t for t in configured if t.registry and t.registry.host == registry.host), None)
            if match is None:
                match = replace(template, name=registry.host, registry=registry, region=registry.region)
        if match not in chosen:
            chosen.append(match)
    return chosen


def _finish(target: Target, overrides: Overrides, environ: Mapping[str, str]) -> Target:
    """Apply flags and environment last, so they win over the file."""
    changes: dict[str, object] = {}
    if overrides.store:
        changes["stores"] = (overrides.store,)
    if overrides.profile:
        changes["profile"] = overrides.profile
    if target.registry is None:
        region = target.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
        region = region or profile_region(environ, target.profile) or ""
        try:
            # empty: the token layer asks EC2 instance metadata, only when a token is due
            changes["region"] = validate_region(region) if region else ""
        except ConfigError as exc:
            raise ConfigError(f"region from the environment: {exc}") from None
    if overrides.endpoint_url:
        changes["endpoint_url"] = overrides.endpoint_url
    elif not target.endpoint_url:
        changes["endpoint_url"] = env_endpoint(environ, "AWS_ENDPOINT_URL_ECR_PUBLIC" if target.public else "AWS_ENDPOINT_URL_ECR")
    return replace(target, **changes) if changes else target  # type: ignore[arg-type]
