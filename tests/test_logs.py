"""logs.py: one line per event, a long value shortened to both its ends, secrets masked first."""

from __future__ import annotations

from conftest import errors_of, run_ecr_login

# --- a huge value is quoted short (from test_hostile, #11.7) -----------------------------------------


def test_a_huge_value_is_quoted_short(write_config, aws_env) -> None:  # type: ignore[no-untyped-def]
    config = write_config("[defaults]\nregion = " + "x" * 5_000_000 + "\n")
    result = run_ecr_login("--config", config, "--dry-run")
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and "region" in errors[0], result.stderr[:2000]
    assert len(result.stderr) < 2000, f"{len(result.stderr)} characters of stderr"


def test_shorten_keeps_both_ends_of_a_long_value_and_redacts_first() -> None:
    from ecr_login_pkg.logs import LONGEST_LINE, redact, register_secret, shorten

    path = "/var/lib/" + "d" * 400 + "/config.json"
    line = shorten(f"{path}: cannot write")
    assert line.startswith("/var/lib/ddd") and line.endswith("/config.json: cannot write") and "characters cut" in line
    assert shorten("short words stay as they are") == "short words stay as they are"
    assert len(shorten(" ".join(["word"] * 5000))) < LONGEST_LINE + 100  # many short words: the line is cut
    secret = "s" * 150 + "-secret-" + "t" * 150
    register_secret(secret)
    assert secret[100:200] not in shorten(redact(f"token {secret} leaked"))  # masked whole, before any cut
