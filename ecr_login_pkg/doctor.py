"""``ecr-login doctor``: why this host can or cannot log in, one check per line, each failure with its fix.

For the admin at 3 a.m.: the checks run in the order a login needs them
(configuration, credentials, region, token, registries, clock, stores, state,
timer); a check whose input failed is skipped, not failed again. The token is
asked for once per AWS identity, as a login would, shown to a registry and
forgotten: nothing is stored and no secret is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from . import __version__, paths
from .config import DEFAULT_CONFIG, Settings, Target, env_endpoint
from .deadline import fetch_tokens
from .errors import (
    EX_CONFIG,
    EX_OK,
    EX_TEMPFAIL,
    ConfigError,
    DeniedError,
    EcrLoginError,
    MissingHelperError,
    NotSetUpError,
    TemporaryError,
    most_severe,
)
from .hints import Service, credentials_fix, region_fix, serving
from .instance_region import with_instance_region
from .logs import WARNING, Log, redact
from .plan import address_of, pairs_for
from .state import State
from .stores import Store
from .tokens import Identity, Token, identity_of

MAX_CLOCK_SKEW = 5 * 60.0  # AWS refuses signatures 15 minutes off; warn well before
TOKEN_TIMEOUT = 6.0  # a doctor answers in seconds, not after a login's retries
SYSTEMD_RUNNING = "/run/systemd/system"  # sd_booted(): systemd is PID 1


@dataclass
class Check:
    """One line of the report. ``status`` is ok, failed or skipped; ``fix`` only when failed."""

    check: str
    status: str
    detail: str
    fix: str | None = None
    exit_code: int = EX_OK


@dataclass
class _Who:
    """What the credentials check learnt about one AWS profile."""

    ok: bool
    arn: str | None = None
    aws_date: float | None = None  # AWS's Date header, epoch
    local_date: float | None = None  # this host's clock when that answer arrived


class _Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def ok(self, check: str, detail: str) -> None:
        self.checks.append(Check(check, "ok", redact(detail)))

    def failed(self, check: str, detail: str, fix: str, code: int) -> None:
        self.checks.append(Check(check, "failed", redact(detail), redact(fix), code))

    def skipped(self, check: str, detail: str) -> None:
        self.checks.append(Check(check, "skipped", detail))

    def error(self, check: str, exc: EcrLoginError, fix: str) -> None:
        self.failed(check, str(exc), fix, exc.exit_code)

    @property
    def exit_code(self) -> int:
        codes = [check.exit_code for check in self.checks if check.status == "failed"]
        return most_severe(codes) if codes else EX_OK


def run_doctor(loaded: Settings | EcrLoginError, environ: Mapping[str, str], as_json: bool = False) -> tuple[int, str]:
    """Run every check; return the exit code (0 when all passed, else the most severe) and the report.

    ``loaded`` is the settings, or the error loading them raised (then the configuration
    check fails with it and the checks that need settings are skipped).
    """
    report = _Report()
    if isinstance(loaded, EcrLoginError):
        served = serving()
        report.error("configuration", loaded, "correct what the message names, then run doctor again")
        for name in ("credentials", "region", "token", "registry", "clock", "store", "state"):
            report.skipped(name, "needs a configuration that parses")
    else:
        served = serving(loaded.users)
        _diagnose(loaded, environ, report, served)
        if served.user in ("root", paths.SERVICE_USER):
            _check_users(loaded, environ, report)
    _check_timer(report, served)
    return report.exit_code, _render(report, as_json)


def _diagnose(settings: Settings, environ: Mapping[str, str], report: _Report, served: Service) -> None:
    _check_configuration(settings, environ, report)
    if served.named_consumer and served.user not in ("root", paths.SERVICE_USER):
        # The login is the host's, handed to this user: the AWS side is the service's to check.
        for name in ("credentials", "region", "token", "registry", "clock"):
            report.skipped(name, f"{served.user} gets the host's login from {served.unit}: its AWS side is checked "
                           f"by 'sudo -u {paths.SERVICE_USER} ecr-login doctor' and 'journalctl -u ecr-login'")
        _check_stores(settings, environ, {}, {}, report)
        _check_state(settings, report)
        return
    who = _check_credentials(settings, environ, report, served)
    identities = _check_region(settings, environ, report, served)
    tokens = _check_tokens(identities, who, settings, environ, report)
    _check_registries(settings.targets, identities, tokens, report)
    _check_clock(who, report)
    _check_stores(settings, environ, identities, tokens, report)
    _check_state(settings, report)


def _check_users(settings: Settings, environ: Mapping[str, str], report: _Report) -> None:
    """The users named in ``users`` exist and have a home, and (as root, reading each user's
    record as that user) none has a store file the login cannot be written to; no per-user
    timer names a missing user."""
    import os

    from .consumers import resolve
    from .hints import user_timer_problems
    from .status import rows_of_users

    consumers, problems = resolve(settings.users, settings.users_line)
    for problem in problems:
        report.failed(f"user {problem.user}", problem.fact, problem.fix, EX_CONFIG)
    for line in user_timer_problems():
        report.failed("per-user timer", line, "create the user, or disable the timer", EX_CONFIG)
    rows, unread = rows_of_users(consumers, settings, environ) if os.geteuid() == 0 else ([], {})
    for name, why in unread.items():
        report.failed(f"user {name}", f"{name}: {why}", "see the message; 'sudo ecr-login status --all' shows the same",
                      EX_CONFIG)
    unusable = [row for row in rows if row["status"] == "store-error"]
    for row in unusable:
        report.failed(f"user {row['user']}", f"{row['registry']} ({row['store']}): {row['last_error']}",
                      f"as {row['user']}, do what the message says; the next run writes the login", EX_CONFIG)
    failing = {row["user"] for row in unusable} | set(unread)
    served = [consumer.name for consumer in consumers if consumer.name not in failing]
    if served:
        report.ok("users", "logins handed to " + ", ".join(served) + f" ({settings.users_line.split(': ')[0]})")


def _check_configuration(settings: Settings, environ: Mapping[str, str], report: _Report) -> None:
    named = sum(target.registry is not None for target in settings.targets)
    what = f"{named} registr{'y' if named == 1 else 'ies'}" if named else "the caller's own default registry"
    if settings.config_path is None:
        path = environ.get("ECR_LOGIN_CONFIG") or DEFAULT_CONFIG
        report.ok("configuration", f"no {path}: logging in to {what} (zero configuration)")
    else:
        report.ok("configuration", f"{settings.config_path} parses: {what}")


def _sts_region(settings: Settings, profile: str | None) -> str:
    return next((t.region for t in settings.targets if t.profile == profile and t.region and not t.public), "us-east-1")


def _check_credentials(settings: Settings, environ: Mapping[str, str], report: _Report,
                       served: Service) -> dict[str | None, _Who]:
    """Per AWS profile in use: are there credentials, and whose are they (STS GetCallerIdentity)?"""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    found: dict[str | None, _Who] = {}
    for profile in dict.fromkeys(target.profile for target in settings.targets if target.token_source == "boto3"):
        name = "credentials" + (f" (profile {profile})" if profile else "")
        found[profile] = _Who(ok=False)
        try:
            session = botocore.session.Session(profile=profile)
            credentials = session.get_credentials()
        except ProfileNotFound:
            report.failed(name, f"AWS profile '{profile}' not found in the AWS config files",
                          f"add [profile {profile}] to ~/.aws/config, or remove 'profile' from the configuration", EX_CONFIG)
            continue
        except BotoCoreError as exc:  # a credential_process or source_profile that fails, a broken file
            report.failed(name, f"the AWS credential chain failed: {exc}", "repair the AWS profile it names", EX_CONFIG)
            continue
        if credentials is None:
            report.failed(name, "no AWS credentials found", credentials_fix(served), EX_CONFIG)
            continue
        endpoint = env_endpoint(environ, "AWS_ENDPOINT_URL_STS")
        config = Config(connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 1, "mode": "standard"},
                        user_agent_extra=f"ecr-login/{__version__}")
        try:
            sts = session.create_client("sts", region_name=_sts_region(settings, profile), endpoint_url=endpoint,
                                        config=config)
            answer = sts.get_caller_identity()
        except ClientError as exc:
            found[profile] = _who_from(exc.response, ok=False)
            error = exc.response.get("Error", {})
            message = f"STS refused the {credentials.method} credentials: {error.get('Code')}: {error.get('Message')}"
            if "Signature expired" in str(error.get("Message")) or "Skew" in str(error.get("Code")):
                report.failed(name, message, "set this host's clock right (see the clock check)", EX_CONFIG)
            else:
                report.failed(name, message, "replace or renew these credentials (they are unknown, wrong or expired)",
                              DeniedError.exit_code)
            continue
        except (BotoCoreError, ValueError) as exc:
            report.failed(name, f"STS could not be asked: {exc}",
                          "check the network path to STS (proxy: HTTPS_PROXY, NO_PROXY; AWS_ENDPOINT_URL_STS)",
                          EX_TEMPFAIL)
            continue
        found[profile] = _who_from(answer, ok=True, arn=str(answer.get("Arn")))
        report.ok(name, f"{answer.get('Arn')} (account {answer.get('Account')}), from {credentials.method}")
    return found


def _who_from(answer: Mapping[str, Any], ok: bool, arn: str | None = None) -> _Who:
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        aws_date = parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        aws_date = None
    return _Who(ok=ok, arn=arn, aws_date=aws_date, local_date=time.time())


def _check_region(settings: Settings, environ: Mapping[str, str], report: _Report,
                  served: Service) -> dict[Target, Identity]:
    """Who asks for each target's token, with the region filled in (from instance metadata
    when nothing named one); a target without a region is left out."""
    identities: dict[Target, Identity] = {}
    regions: dict[str, str] = {}
    for target in settings.targets:
        planned = identity_of(target)
        try:
            identity = with_instance_region(planned, environ)
        except EcrLoginError as exc:  # the fix is said once, as the reader's
            fact = exc.fact if isinstance(exc, NotSetUpError) else str(exc)
            report.failed("region", f"{target.name}: {fact}", region_fix(served), exc.exit_code)
            continue
        identities[target] = identity
        regions.setdefault(identity.region, identity.region if planned.region else f"{identity.region} (from instance metadata)")
    if regions:
        report.ok("region", ", ".join(regions.values()))
    return identities


def _check_tokens(identities: dict[Target, Identity], who: dict[str | None, _Who], settings: Settings,
                  environ: Mapping[str, str], report: _Report) -> dict[Identity, Token | EcrLoginError]:
    """GetAuthorizationToken, once per identity; the tokens stay in memory for the registry check."""
    wanted: list[Identity] = []
    skipped: list[str | None] = []
    for identity in identities.values():
        if identity.source == "boto3" and not who.get(identity.profile, _Who(ok=False)).ok:
            if identity.profile not in skipped:
                skipped.append(identity.profile)
                report.skipped("token" + (f" (profile {identity.profile})" if identity.profile else ""),
                               "needs working credentials")
        elif identity not in wanted:
            wanted.append(identity)
    quiet = Log(threshold=WARNING - 1)  # the report says it all; no retry chatter on stderr
    outcomes = fetch_tokens(wanted, min(settings.timeout, TOKEN_TIMEOUT), quiet, environ) if wanted else {}
    for identity in wanted:
        outcome = outcomes[identity]
        name = f"token ({identity.describe()})"
        if isinstance(outcome, EcrLoginError):
            report.error(name, outcome, _token_fix(outcome, identity, who))
        else:
            left = outcome.expires_at - time.time()
            report.ok(name, f"GetAuthorizationToken allowed; the token is good for {left / 3600:.1f}h (not stored)")
    return outcomes


def _token_fix(error: EcrLoginError, identity: Identity, who: dict[str | None, _Who]) -> str:
    arn = (who.get(identity.profile) or _Who(False)).arn or "this identity"
    if isinstance(error, DeniedError):
        if identity.role_arn and "AssumeRole" in str(error):
            return f"let {arn} assume {identity.role_arn} (the role's trust policy and sts:AssumeRole)"
        return f"allow ecr:GetAuthorizationToken to {arn} (e.g. the AmazonEC2ContainerRegistryReadOnly policy)"
    if isinstance(error, TemporaryError):
        return "check the network path to the ECR API (proxy: HTTPS_PROXY, NO_PROXY; endpoint_url, AWS_ENDPOINT_URL_ECR)"
    if isinstance(error, ConfigError):
        return "correct the setting the message names"
    return "something answers in the ECR API's place: check endpoint_url and any proxy in between"


def _token_for(target: Target, identities: dict[Target, Identity],
               tokens: dict[Identity, Token | EcrLoginError]) -> Token | None:
    identity = identities.get(target)
    token = tokens.get(identity) if identity is not None else None
    return token if isinstance(token, Token) else None


def _check_registries(configured: tuple[Target, ...], identities: dict[Target, Identity],
                      tokens: dict[Identity, Token | EcrLoginError], report: _Report) -> None:
    from .v2probe import check_login

    seen: set[str] = set()
    for target in configured:
        token = _token_for(target, identities, tokens)
        address = address_of(target, token.proxy_host if token else None)
        name = "registry " + (address or "(the caller's default)")
        if token is None or address is None:
            report.skipped(name, "needs a token")
            continue
        if address in seen:
            continue
        seen.add(address)
        try:
            report.ok(name, check_login(address, token.username, token.password))
        except DeniedError as exc:
            report.failed(name, f"{exc}: the token of {identities[target].describe()} is not good there",
                          f"make [{target.name}] name the registry this token is for (host, store_as), and let "
                          "the identity pull from it (the repository's and the identity's policies)", exc.exit_code)
        except TemporaryError as exc:
            report.error(name, exc, f"check that {address} is up and reachable from here (proxy: HTTPS_PROXY, NO_PROXY)")
        except EcrLoginError as exc:
            report.error(name, exc, f"check that {address} is the registry's address, and trust its certificate")


def _check_clock(who: dict[str | None, _Who], report: _Report) -> None:
    answered = [w for w in who.values() if w.aws_date is not None and w.local_date is not None]
    if not answered:
        report.skipped("clock", "needs an answer from AWS")
        return
    skew = answered[0].local_date - answered[0].aws_date  # type: ignore[operator]
    direction = "ahead of" if skew > 0 else "behind"
    detail = f"this host's clock is {abs(skew):.0f}s {direction} AWS's (its Date header)"
    if abs(skew) > MAX_CLOCK_SKEW:
        report.failed("clock", detail, "synchronise the clock: timedatectl set-ntp true (or chrony/ntpd); "
                      "AWS refuses requests signed 15 minutes off", EX_CONFIG)
    else:
        report.ok("clock", detail)


def _writable_place(path: str) -> str | None:
    """Why ``path`` could not be written by an atomic rename in its directory, or None when it could."""
    directory = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(directory):  # created on first write: its nearest parent must allow that
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    if not os.path.isdir(directory):
        return f"{directory} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory} is not writable by this user"
    return None


def _check_stores(settings: Settings, environ: Mapping[str, str], identities: dict[Target, Identity],
                  tokens: dict[Identity, Token | EcrLoginError], report: _Report) -> None:
    """Each store the run would write, asked as a login asks it (plan's pairs, the store's own
    checks: its file parses, its credential helper is installed), then whether it can be written."""
    stores: dict[str, tuple[Store, list[str]]] = {}
    for pair in pairs_for(settings, environ, State(settings.state_dir).load()):
        token = _token_for(pair.target, identities, tokens)
        address = pair.address or address_of(pair.target, token.proxy_host if token else None)
        store, wanted = stores.setdefault(pair.store.kind, (pair.store, []))
        if address and address not in wanted:
            wanted.append(address)
    for kind, (store, wanted) in stores.items():
        name = f"store {kind}"
        try:
            for address in wanted or [""]:
                store.held(address)  # reads and parses the file, as a login would before writing
        except MissingHelperError as exc:
            report.error(name, exc, f"install docker-credential-{exc.helper}, or remove it from {store.location}")
            continue
        except EcrLoginError as exc:
            report.error(name, exc, "repair or remove the file the message names")
            continue
        problem = _writable_place(store.location)
        if problem:
            report.failed(name, f"{store.location}: {problem}", "run as the user who owns it, or point the store "
                          "elsewhere (DOCKER_CONFIG, REGISTRY_AUTH_FILE, docker_config)", EX_CONFIG)
            continue
        helpers = store.helpers(wanted or [""])
        if helpers and not paths.which("docker", environ):
            report.failed(name, f"{store.location} names the credential helper {', '.join(helpers)}, which only "
                          "docker login can write to, and docker is not on PATH", "install the docker CLI", EX_CONFIG)
            continue
        note = f"; credential helper {', '.join(helpers)} present" if helpers else ""
        if kind == "docker" and not helpers:
            note = "; no credential helper (written directly)"
        report.ok(name, f"{store.location} writable{note}")


def _check_state(settings: Settings, report: _Report) -> None:
    state = State(settings.state_dir).load()
    if state.problem:
        report.failed("state", state.problem, f"fix the permissions of {settings.state_dir} (the next login rebuilds "
                      "the state)", EX_CONFIG)
        return
    problem = _writable_place(state.path)
    if problem:
        report.failed("state", f"{state.path}: {problem}", "run as the user that owns the state (the service's: "
                      "sudo -u ecr-login), or fix its permissions", EX_CONFIG)
        return
    count = len(state.entries)
    report.ok("state", f"{state.path} readable: {count} login(s) recorded" if count or os.path.exists(state.path)
              else f"{state.path}: no login recorded yet")


def _check_timer(report: _Report, served: Service) -> None:
    """The timer that serves the reader (ecr-login.timer, or ecr-login@USER.timer) is enabled and active."""
    timer = served.timer
    if not os.path.isdir(SYSTEMD_RUNNING):
        report.skipped("timer", "systemd is not running here")
        return
    try:
        done = subprocess.run(
            ["systemctl", "show", timer, "--property=LoadState,UnitFileState,ActiveState,NextElapseUSecRealtime"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.failed("timer", f"systemctl show {timer} failed: {exc}", "check systemd (systemctl status)", EX_TEMPFAIL)
        return
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if values.get("LoadState") != "loaded":
        report.failed("timer", f"{timer} is not installed ({values.get('LoadState') or done.stderr.strip()})",
                      "install the ecr-login package (it ships the timer)", EX_CONFIG)
        return
    state, active = values.get("UnitFileState", "?"), values.get("ActiveState", "?")
    if state != "enabled" or active != "active":
        report.failed("timer", f"{timer} is {state} and {active}", f"systemctl enable --now {timer}", EX_CONFIG)
        return
    next_run = values.get("NextElapseUSecRealtime") or "not scheduled"
    report.ok("timer", f"{timer} enabled; next run {next_run}")


def _render(report: _Report, as_json: bool) -> str:
    if as_json:
        return json.dumps({"checks": [asdict(check) for check in report.checks], "exit_code": report.exit_code},
                          indent=2) + "\n"
    labels = {"ok": "ok  ", "failed": "FAIL", "skipped": "skip"}
    lines = []
    for check in report.checks:
        line = f"{labels[check.status]}  {check.check}: {check.detail}"
        if check.fix:
            line += f"; fix: {check.fix}"
        lines.append(line.replace("\n", " "))
    failed = sum(check.status == "failed" for check in report.checks)
    lines.append(f"{failed} check(s) failed" if failed else "all checks passed")
    return "\n".join(lines) + "\n"
