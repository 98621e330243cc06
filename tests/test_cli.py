"""The command line contract: default command, option placement, help, version, usage errors."""

from __future__ import annotations

import re

import pytest
from conftest import run_ecr_login

from ecr_login_pkg import __version__
from ecr_login_pkg.cli import COMMANDS, VALUE_OPTIONS, with_default_command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["login"]),
        (["--force"], ["login", "--force"]),
        (["123456789012.dkr.ecr.us-east-1.amazonaws.com"], ["login", "123456789012.dkr.ecr.us-east-1.amazonaws.com"]),
        (["status", "--json"], ["status", "--json"]),
        (["-v", "status"], ["status", "-v"]),
        (["--config", "status", "logout"], ["logout", "--config", "status"]),
        (["--help"], ["--help"]),
        (["--region", "eu-west-1", "public.ecr.aws"], ["login", "--region", "eu-west-1", "public.ecr.aws"]),
    ],
)
def test_default_command_and_option_placement(argv: list[str], expected: list[str]) -> None:
    assert with_default_command(argv) == expected


@pytest.mark.parametrize("command", ["login", "status", "logout", "doctor"])
def test_every_command_has_help_and_version(command: str) -> None:
    help_result = run_ecr_login(command, "--help")
    assert help_result.code == 0 and "--config" in help_result.stdout and "exit codes" in help_result.stdout
    version = run_ecr_login(command, "--version")
    assert version.code == 0 and version.stdout.strip() == f"ecr-login {__version__}"


def test_login_options_match_the_contract() -> None:
    """The options as a user reads them: ``ecr-login login --help``."""
    result = run_ecr_login("login", "--help")
    assert result.code == 0, result
    login_help = result.stdout
    for option in ("--region", "--profile", "--endpoint-url", "--force", "--dry-run", "--store", "--config",
                   "--verbose", "--quiet", "--metrics-file"):
        assert option in login_help


@pytest.mark.parametrize(
    "argv",
    [["--bogus"], ["status", "--force"], ["--store", "ftp"], ["-v", "-q"], ["login", "not a host"], ["--region"]],
)
def test_usage_errors_exit_64_with_one_line(argv: list[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "empty.conf"
    config.write_text("[defaults]\nregion = us-east-1\n")
    result = run_ecr_login(*argv, "--config", str(config)) if argv != ["--region"] else run_ecr_login(*argv)
    assert result.code == 64, result
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


# --- the command line ---------------------------------------------------------


def test_value_options_are_exactly_the_parsers() -> None:
    """with_default_command skips the word after an option that takes a value: its table must
    name every such option of every command, and nothing else, as ``--help`` shows them."""
    assert commands_in_help() == set(COMMANDS)
    taking_values = {option for command in COMMANDS for option in options_taking_values(command)}
    assert taking_values == VALUE_OPTIONS


def commands_in_help() -> set[str]:
    """The commands ``ecr-login --help`` lists (``    login     log in where due ...``)."""
    result = run_ecr_login("--help")
    assert result.code == 0, result
    return {match.group(1) for line in result.stdout.splitlines() if (match := re.match(r"    (\w+)  ", line))}


def options_taking_values(command: str) -> set[str]:
    """The options ``ecr-login COMMAND --help`` shows with a value (``--region REGION``, not ``-v, --verbose``)."""
    result = run_ecr_login(command, "--help")
    assert result.code == 0, result
    found: set[str] = set()
    for line in result.stdout.splitlines():
        match = re.match(r"  (-\S.*?)(?:\s{2,}|$)", line)
        if match:
            words = match.group(1).replace(",", " ").split()
            if any(not word.startswith("-") for word in words):
                found.update(word for word in words if word.startswith("-"))
    return found


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["login"]),
        (["--force"], ["login", "--force"]),
        (["-v", "status"], ["status", "-v"]),
        (["--config", "status", "logout"], ["logout", "--config", "status"]),  # 'status' is the file's name
        (["--store=file", "status", "--json"], ["status", "--store=file", "--json"]),
        (["app", "status"], ["login", "app", "status"]),  # a registry first: login, with 'status' as a registry
        (["--help"], ["--help"]),
    ],
)
def test_the_command_is_put_first(argv: list[str], expected: list[str]) -> None:
    assert with_default_command(argv) == expected

