"""Command line: parse arguments, run the command, map outcomes to exit codes. No logic of its own."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from . import __version__
from .config import DEFAULT_CONFIG, STORE_NAMES, Overrides, Settings, load
from .errors import ConfigError, EcrLoginError, UsageError
from .logs import DEBUG, INFO, WARNING, Log, redact, register_environment_secrets

# The options that take a value (so the word after them is no command); tests/test_cli.py
# checks this against the parser.
VALUE_OPTIONS = {"--config", "--region", "--profile", "--endpoint-url", "--store", "--metrics-file"}
EX_SOFTWARE = 70
EX_OUTPUT = 120  # what Python itself exits with when stdout cannot be flushed
EX_SIGINT = 130  # 128 + the signal's number, as a shell reports a command a signal ended
EX_SIGTERM = 143
EX_SIGHUP = 129

EPILOG = """exit codes: 0 ok, 64 usage, 65 malformed AWS answer, 75 temporary failure
(network, throttling, 5xx, lock held, instance metadata not up yet: retried on the
next run), 77 denied by AWS or the registry, 78 local set-up or configuration (no
credentials, no region off EC2, a bad value or store file: retrying cannot help);
status: 0 ok, 1 warning, 2 critical. See ecr-login(8)."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help=f"configuration file (default {DEFAULT_CONFIG})")
    parser.add_argument("--region", help="AWS region for the default registry")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE or the default chain)")
    parser.add_argument("--endpoint-url", metavar="URL", help="ECR API endpoint (default: AWS_ENDPOINT_URL_ECR)")
    parser.add_argument("--store", choices=STORE_NAMES, help="where to store logins (default: docker if on PATH, else file)")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    level.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")
    parser.add_argument("--version", action="version", version=f"ecr-login {__version__}")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error reported like every other error (one line, exit 64)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _login_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="refresh even when not due")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    parser.add_argument("--metrics-file", metavar="PATH", help="write Prometheus textfile metrics here")
    parser.add_argument("--no-hooks", action="store_true", help="run no deploy hooks (hooks_dir) after this run's logins")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _status_options(parser: argparse.ArgumentParser) -> None:
    _json_option(parser)
    parser.add_argument("--all", action="store_true",
                        help="as root: every user's logins (the service user's and each user named in 'users')")


# name: (the line in `ecr-login --help`, the registries' help, the command's own options)
_COMMAND_PARSERS: dict[str, tuple[str, str | None, Callable[[argparse.ArgumentParser], None] | None]] = {
    "login": ("log in where due (the default command)", "registry hostnames or config section names", _login_options),
    "status": ("show each login's expiry; non-zero when any is bad", None, _status_options),
    "logout": ("remove the logins ecr-login stored", None, None),
    "doctor": ("check, one line each, why this host can or cannot log in", None, _json_option),
    "deliver": ("as root, after a login: hand the fresh logins to the users named in 'users' "
                "(ecr-login.service runs it)", None, None),
}
COMMANDS = tuple(_COMMAND_PARSERS)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. Given ``command``, only that command's parser is built under the top
    level, which is all a run parses (three argparse parsers fewer for every timer run);
    without it, all of them, for ``ecr-login --help``."""
    parser = _Parser(
        prog="ecr-login",
        description="Keep Amazon ECR registry logins fresh for docker, podman, skopeo and helm.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ecr-login {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (summary, registries_help, own_options) in _COMMAND_PARSERS.items():
        if command not in (None, name):
            continue
        sub = commands.add_parser(name, help=summary, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("registries", nargs="*", metavar="REGISTRY", help=registries_help)
        _common(sub)
        if own_options is not None:
            own_options(sub)
    return parser


def with_default_command(argv: list[str]) -> list[str]:
    """Put the command first: ``ecr-login [opts] [REGISTRY...]`` means ``ecr-login login ...``,
    and ``ecr-login -v status`` means ``ecr-login status -v``."""
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in ("-h", "--help", "--version") and index == 0:
            return argv
        elif arg in VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            if arg in COMMANDS:
                return [arg, *argv[:index], *argv[index + 1:]]
            break
    return ["login", *argv]


class Terminated(BaseException):
    """SIGTERM (or SIGHUP: a closed terminal or ssh session), raised in the main thread as Python
    raises KeyboardInterrupt for SIGINT: the run unwinds at once (locks let go, a temp file
    holding a token removed, the state not saved half-way) and exits 143 (129 for SIGHUP).
    A BaseException, so no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.exit_code = EX_SIGHUP if signum == 1 else EX_SIGTERM


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated(signum)


def _catch_sigterm() -> None:
    """Turn SIGTERM and SIGHUP into Terminated, where a handler can be set (the main thread)."""
    import signal

    try:
        signal.signal(signal.SIGTERM, _terminate)
        if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL:  # nohup's SIG_IGN stays
            signal.signal(signal.SIGHUP, _terminate)
    except ValueError:  # main() called from another thread: leave the signal as it is
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code. Output goes through ``_write``."""
    register_environment_secrets(os.environ)
    log = Log()
    _catch_sigterm()
    try:
        words = with_default_command(list(sys.argv[1:] if argv is None else argv))
        args = build_parser(words[0] if words[0] in COMMANDS else None).parse_args(words)
        log.threshold = DEBUG if args.verbose else WARNING if args.quiet else INFO
        overrides = Overrides(
            config_path=args.config,
            region=args.region,
            profile=args.profile,
            endpoint_url=args.endpoint_url,
            store=args.store,
            metrics_file=getattr(args, "metrics_file", None),
            registries=tuple(args.registries),
            no_hooks=getattr(args, "no_hooks", False),
        )
        if args.command == "doctor":
            from .doctor import run_doctor

            try:
                loaded: Settings | ConfigError = load(overrides, os.environ)
            except ConfigError as exc:  # the first check reports it (a bad flag stays a usage error, 64)
                loaded = exc
            code, report = run_doctor(loaded, os.environ, args.json)
            return _write(report, code, log)
        settings = load(overrides, os.environ)
        if args.command == "status":
            from .status import show

            code, report = show(settings, os.environ, args.json, every_user=args.all)
            return _write(report, code, log)
        if args.command == "deliver":
            from .deliver import run_deliver

            return run_deliver(settings, os.environ, log)
        if args.command == "logout":
            from .logout import run_logout

            return run_logout(settings, os.environ, log)
        from .refresh import run_login

        return run_login(settings, os.environ, log, force=args.force, dry_run=args.dry_run)
    except EcrLoginError as exc:
        log.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return EX_SIGINT
    except Terminated as exc:
        log.error("terminated" if exc.exit_code == EX_SIGTERM else "hung up (SIGHUP)")
        return exc.exit_code
    except Exception as exc:  # a bug: say what and where, never the secret-bearing details
        log.error(redact(f"internal error: {type(exc).__name__}: {exc} (please report this)"))
        if os.environ.get("ECR_LOGIN_DEBUG"):
            raise
        return EX_SOFTWARE


def _write(report: str, code: int, log: Log) -> int:
    """Write a command's report to stdout, and fail as Python would (120) when it cannot be:
    a ``status --json`` lost to a full disk must not pass for a report of any kind."""
    if sys.stdout is None:  # started with stdout closed
        log.error("cannot write the output: standard output is closed")
        return EX_OUTPUT
    try:
        sys.stdout.write(report)
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error(f"cannot write the output: {reason}")
        return EX_OUTPUT
    return code


def run() -> NoReturn:
    """The program's entry point (``/usr/bin/ecr-login``, ``python -m ecr_login_pkg``).

    By the time main returns, every file is written and every lock released. What the
    exit still does is the collector's final walk over every object botocore made,
    40-50 ms of a forced run (bench/exits.py); ``gc.freeze`` takes them out of its reach.
    """
    code = main()
    gc.freeze()
    sys.exit(code)
