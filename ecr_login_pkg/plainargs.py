"""Read the everyday command lines without argparse.

The timer runs ``ecr-login`` every few minutes, and nearly every run has nothing
to do; importing argparse and building its parsers costs more than the rest of
such a run. A command line made only of the command, exact option names and
registry names is read here into the same names argparse would give. Anything
else (help, version, abbreviations, ``--``, unknown options, a bad value) is
left to argparse, which then reads it or reports it as usual: ``read`` returns
None rather than guess. tests/test_performance_paths.py checks both agree.
"""

from __future__ import annotations

from types import SimpleNamespace

from .config import STORE_NAMES

COMMANDS = ("login", "status", "logout")
# Options every command takes: name -> destination. Flags are True when given.
COMMON_VALUES = {"--config": "config", "--region": "region", "--profile": "profile",
                 "--endpoint-url": "endpoint_url", "--store": "store"}
COMMON_FLAGS = {"-v": "verbose", "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet"}
COMMAND_VALUES = {"login": {"--metrics-file": "metrics_file"}, "status": {}, "logout": {}}
COMMAND_FLAGS = {"login": {"--force": "force", "--dry-run": "dry_run"}, "status": {"--json": "json"}, "logout": {}}
CHOICES = {"store": STORE_NAMES}


def read(argv: list[str]) -> SimpleNamespace | None:
    """``argv`` with the command first (see ``cli.with_default_command``), or None when it is not plain."""
    if not argv or argv[0] not in COMMANDS:
        return None
    command = argv[0]
    values = {**COMMON_VALUES, **COMMAND_VALUES[command]}
    flags = {**COMMON_FLAGS, **COMMAND_FLAGS[command]}
    result: dict[str, object] = {"command": command, "registries": []}
    result.update(dict.fromkeys(values.values()))
    result.update(dict.fromkeys(flags.values(), False))
    registries: list[str] = []
    positional_runs = 0
    previous_was_positional = False
    rest = argv[1:]
    index = 0
    while index < len(rest):
        arg = rest[index]
        index += 1
        if arg in flags:
            result[flags[arg]] = True
        elif arg.partition("=")[0] in values:
            name, equals, value = arg.partition("=")
            if not equals:
                if index >= len(rest) or rest[index].startswith("-"):
                    return None
                value = rest[index]
                index += 1
            destination = values[name]
            if not value or value not in CHOICES.get(destination, (value,)):
                return None
            result[destination] = value
        elif arg and not arg.startswith("-"):
            positional_runs += not previous_was_positional
            registries.append(arg)
            previous_was_positional = True
            continue
        else:
            return None
        previous_was_positional = False
    if positional_runs > 1 or (result["verbose"] and result["quiet"]):
        return None  # argparse rejects both: registry names split by options, and -v with -q
    result["registries"] = registries
    return SimpleNamespace(**result)
