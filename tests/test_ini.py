"""The INI reader that replaced configparser on the no-op path.

Its dialect is the one configparser had as ecr-login configured it, so the
reference here is configparser itself: on generated documents of that dialect
(comments, continuation lines, ``:`` and ``=``, odd spacing, mixed-case keys,
CRLF) both give the same sections, keys and values, and both refuse the same
broken ones. The cases below pin the line numbers and the messages.
"""

from __future__ import annotations

import configparser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_login_pkg.config import aws_profile_region
from ecr_login_pkg.ini import IniError, parse

PROFILE = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def reference(text: str, strict: bool = True) -> dict[str, dict[str, str]]:
    """configparser as ecr-login.conf was read (strict), or with its defaults as botocore reads
    the AWS CLI's files (lenient); a [DEFAULT] section stays a section, as in ours."""
    if strict:
        parser = configparser.ConfigParser(
            default_section="\0none", interpolation=None, strict=True, empty_lines_in_values=False
        )
    else:
        parser = configparser.ConfigParser(default_section="\0none", interpolation=None, strict=False)
    parser.read_string(text)
    return {name: dict(parser.items(name)) for name in parser.sections()}


def ours(text: str, strict: bool = True) -> dict[str, dict[str, str]]:
    return {name: section.values for name, section in parse(text, strict=strict).items()}


NAMES = st.text(alphabet="abcdefgh_-.0123456789", min_size=1, max_size=8)
KEYS = st.builds(lambda name, upper: name.upper() if upper else name, NAMES, st.booleans())
VALUES = st.text(alphabet="abc xyz,/:=.-_0123456789", max_size=12)
SPACE = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """INI text of the shared dialect: every line kind, in any order, under a first section."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [f"[{draw(NAMES | st.just('DEFAULT'))}]"]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["key", "key", "key", "section", "comment", "blank", "continuation"]))
        if kind == "key":
            lines.append(f"{draw(KEYS)}{draw(SPACE)}{draw(st.sampled_from(['=', ':']))}{draw(SPACE)}{draw(VALUES)}")
        elif kind == "section":
            lines.append(f"[{draw(NAMES | st.just('DEFAULT'))}]")
        elif kind == "comment":
            lines.append(f"{draw(SPACE)}{draw(st.sampled_from(['#', ';']))} {draw(VALUES)}")
        elif kind == "blank":
            lines.append(draw(SPACE))
        else:
            lines.append(f"{draw(st.sampled_from([' ', '    ', chr(9)]))}{draw(VALUES)}x")
    return newline.join(lines) + newline


@PROFILE
@given(documents(), st.booleans())
def test_reads_what_configparser_reads(text: str, strict: bool) -> None:
    try:
        expected = reference(text, strict)
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError) as refused:
        with pytest.raises(IniError) as caught:
            parse(text, strict=strict)
        # configparser raises a repeat at once but keeps syntax errors for the end: ours is the first problem
        assert caught.value.line <= refused.lineno
        return
    except configparser.ParsingError as refused:
        with pytest.raises(IniError) as caught:
            parse(text, strict=strict)
        assert caught.value.line == refused.errors[0][0]
        return
    assert ours(text, strict) == expected


def test_values_keys_and_lines() -> None:
    text = (
        "# ecr-login\n"
        "[defaults]\n"
        "Region = eu-west-1\n"
        "stores: docker,\n"
        "  file\n"
        "\n"
        "; a registry\n"
        "[prod]\n"
        "host=1.dkr.ecr.eu-west-1.amazonaws.com  \n"
        "empty =\n"
    )
    sections = parse(text)
    assert list(sections) == ["defaults", "prod"]
    assert sections["defaults"].values == {"region": "eu-west-1", "stores": "docker,\nfile"}
    assert sections["defaults"].line == 2
    assert sections["defaults"].lines == {"region": 3, "stores": 4}
    assert sections["prod"].values == {"host": "1.dkr.ecr.eu-west-1.amazonaws.com", "empty": ""}
    assert sections["prod"].lines == {"host": 9, "empty": 10}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("region = x\n", 1, "a key appears before any [section] (start with [defaults])"),
        ("[a]\n\n[b]\n[a]\n", 4, "[a] appears twice (merge the two sections)"),
        ("[a]\nk = 1\n# c\nK: 2\n", 4, "[a] k is set twice (keep one)"),
        ("[a]\njust words\n", 2, "not 'key = value' or '[section]' syntax"),
        ("[a]\n= value\n", 2, "not 'key = value' or '[section]' syntax"),
        ("[]\n", 1, "not 'key = value' or '[section]' syntax"),
        ("[a\n", 1, "not 'key = value' or '[section]' syntax"),
        ("[a] trailing\n", 1, "not 'key = value' or '[section]' syntax"),
    ],
)
def test_errors_name_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(IniError) as caught:
        parse(text)
    assert (caught.value.line, caught.value.problem) == (line, problem)


def test_lines_end_at_newlines_only() -> None:
    """A form feed or a pasted line separator stays inside its line, as configparser had it."""
    sections = parse("[a]\n# note\u2028more note\x0c\nk = v\x0c w\n\n[b]\nk = 1\n")
    assert sections["a"].values == {"k": "v\x0c w"} and sections["b"].lines == {"k": 6}


def test_section_names_are_trimmed_and_may_carry_a_comment() -> None:
    assert list(parse("[ defaults ] # the first\nregion = us-east-1\n")) == ["defaults"]


def test_lenient_mode_merges_sections_and_keeps_the_last_value() -> None:
    sections = parse("[default]\nregion = a\n[default]\nregion = b\noutput = json\n", strict=False)
    assert sections["default"].values == {"region": "b", "output": "json"}


def test_aws_profile_region_reads_the_cli_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-east-1\n"
        "[profile build]\nregion = eu-central-1\ns3 =\n  max_concurrent_requests = 4\n"
        "[profile build]\noutput = json\n"  # repeated: the AWS CLI tolerates it, so do we
        "[sso-session corp]\nsso_region = us-west-2\n"
    )
    environ = {"AWS_CONFIG_FILE": str(config), "HOME": str(tmp_path)}
    assert aws_profile_region(environ, None) == "us-east-1"
    assert aws_profile_region(environ, "build") == "eu-central-1"
    assert aws_profile_region({**environ, "AWS_PROFILE": "build"}, None) == "eu-central-1"
    assert aws_profile_region(environ, "corp") is None
    assert aws_profile_region(environ, "missing") is None
    config.write_text("region = x\n")  # not INI: no region, never an exception
    assert aws_profile_region(environ, None) is None
    # as botocore reads it: [DEFAULT] shows through in the sections that exist, and a comment or
    # a blank line inside a nested value does not end it
    config.write_text(
        "[DEFAULT]\nregion = eu-west-1\n[profile dev]\noutput = json\n"
        "[profile nested]\nregion = us-west-2\ns3 =\n  a = 1\n  # note\n\n  region = not-this\n"
        "[profile dev] # trailing\n"
    )
    assert aws_profile_region(environ, "dev") == "eu-west-1"
    assert aws_profile_region(environ, "nested") == "us-west-2"
    assert aws_profile_region(environ, "absent") is None
