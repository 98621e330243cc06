"""The command line contract: default command, option placement, help, version, usage errors."""

from __future__ import annotations

import pytest
from conftest import run_ecr_login

from ecr_login_pkg import __version__
from ecr_login_pkg.cli import with_default_command


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
