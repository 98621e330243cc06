"""The default registry's region from the shared AWS files is the one botocore itself would use.

ecr-login reads the files with configparser (awsconfig.py) so that a run with
nothing due imports no botocore; here botocore answers the same question for
generated files, profile spellings and environments, on this interpreter's
botocore and on Debian's (what the .deb runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from conftest import REPO_ROOT, require_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from ecr_login_pkg.awsconfig import profile_region

NAMES = ["default", "build", "ci", "Build"]
HEADERS = [
    "default", "DEFAULT", "profile default", "profile build", "profile  build", 'profile "build"', "profile 'build'",
    "build", "profile ci", "profile\tci", "profilebuild", "profile build extra", 'profile "build', "profile",
    "profile Build", "sso-session build", "ci",
]
REGIONS = ["eu-north-1", "us-east-1", "ap-south-1", ""]

section = st.tuples(st.sampled_from(HEADERS), st.sampled_from(REGIONS), st.booleans())
files = st.lists(section, max_size=6)


def render(sections: list[tuple[str, str, bool]]) -> str:
    """An INI text; a section may carry its region or only another key."""
    text = ""
    for header, region, with_region in sections:
        text += f"[{header}]\n" + (f"region = {region}\n" if with_region else "output = json\n")
    return text


def botocore_region(environ: dict[str, str], profile: str | None) -> str | None:
    import botocore.session
    from botocore.exceptions import ConfigParseError, ProfileNotFound

    with mock.patch.dict(os.environ, environ, clear=True):
        try:
            return botocore.session.Session(profile=profile).get_config_variable("region") or None
        except (ProfileNotFound, ConfigParseError):  # no such profile, or a file that is not INI: no region
            return None


def environment(directory: str, config: str, credentials: str, env_profile: str | None, variable: str) -> dict[str, str]:
    Path(directory, "config").write_text(config)
    Path(directory, "credentials").write_text(credentials)
    environ = {"HOME": directory, "AWS_CONFIG_FILE": str(Path(directory, "config")),
               "AWS_SHARED_CREDENTIALS_FILE": str(Path(directory, "credentials"))}
    if env_profile:
        environ[variable] = env_profile
    return environ


@settings(max_examples=300, deadline=None)
@given(
    config=files,
    credentials=files,
    profile=st.none() | st.sampled_from(NAMES),
    env_profile=st.none() | st.sampled_from(NAMES),
    variable=st.sampled_from(["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]),
)
@pytest.mark.slow
def test_the_region_is_botocores(config, credentials, profile, env_profile, variable) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as directory:
        environ = environment(directory, render(config), render(credentials), env_profile, variable)
        assert profile_region(environ, profile) == botocore_region(environ, profile)


SPELLINGS = [
    ("[profile default]\nregion = eu-north-1\n", None, "eu-north-1"),
    ("[profile  build]\nregion = eu-north-1\n", "build", "eu-north-1"),
    ('[profile "build"]\nregion = eu-north-1\n', "build", "eu-north-1"),
    ("[build]\nregion = eu-north-1\n", "build", None),  # not a profile in the config file
    ("[default]\nregion = us-east-1\n[profile default]\nregion = eu-north-1\n", None, "eu-north-1"),
    ("[profile default]\nregion = eu-north-1\n[default]\nregion = us-east-1\n", None, "us-east-1"),
    ("[DEFAULT]\nregion = ap-south-1\n[profile build]\noutput = json\n", "build", "ap-south-1"),
    ("[DEFAULT]\nregion = ap-south-1\n", None, None),
    ("[profile build]\nregion=eu-north-1\n", "build", "eu-north-1"),
    ("[profile build]\nregion: eu-north-1\n", "build", "eu-north-1"),
    ("[profile build]\n  region = eu-north-1\n", "build", "eu-north-1"),  # an indented first key is still a key
    ("[profile build]\noutput = json\n  region = eu-north-1\n", "build", None),  # but this one continues 'output'
    ("[profile build]\nregion = eu-north-1\n[profile build]\noutput = json\n", "build", None),  # a section twice
    ("[profile build]\nREGION = eu-north-1\n", "build", "eu-north-1"),
    ("[profile build]\nregion = eu-north-1\nregion = us-east-1\n", "build", None),  # a repeated key: not INI either
    ("[profile build]\ns3 =\n  region = x\nregion = eu-north-1\n", "build", "eu-north-1"),
]


@pytest.mark.parametrize(("config", "profile", "expected"), SPELLINGS)
def test_profile_spellings(tmp_path: Path, config: str, profile: str | None, expected: str | None) -> None:
    environ = environment(str(tmp_path), config, "", profile, "AWS_PROFILE")
    assert profile_region(environ, None) == expected
    assert botocore_region(environ, None) == expected


DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PROBE = """
import json, os, sys
import botocore.session
from botocore.exceptions import ConfigParseError, ProfileNotFound
from ecr_login_pkg.awsconfig import profile_region
answers = []
for case in json.loads(sys.argv[1]):
    os.environ.clear(); os.environ.update(case)
    try:
        theirs = botocore.session.Session().get_config_variable("region") or None
    except (ProfileNotFound, ConfigParseError):
        theirs = None
    answers.append([profile_region(dict(os.environ), None), theirs])
print(json.dumps(answers))
"""


def test_the_region_is_debians_botocores_too(tmp_path: Path) -> None:
    """The same spellings on Debian's python and botocore 1.29, what the .deb runs."""
    require_tool(DEBIAN_PYTHON)
    cases = []
    for index, (config, profile, _expected) in enumerate(SPELLINGS):
        directory = tmp_path / str(index)
        directory.mkdir()
        cases.append(environment(str(directory), config, "[build]\noutput = text\n", profile, "AWS_PROFILE"))
    done = subprocess.run([DEBIAN_PYTHON, "-c", DEBIAN_PROBE, json.dumps(cases)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert len(answers) == len(SPELLINGS)
    for (config, _profile, _expected), (ours, theirs) in zip(SPELLINGS, answers):
        assert ours == theirs, config


def test_an_explicit_profile_wins_over_the_environment(tmp_path: Path) -> None:
    config = "[profile build]\nregion = eu-north-1\n[profile ci]\nregion = ap-south-1\n"
    environ = environment(str(tmp_path), config, "", "ci", "AWS_PROFILE")
    assert profile_region(environ, "build") == "eu-north-1" == botocore_region(environ, "build")
    assert sys.modules.get("ecr_login_pkg.awsconfig") is not None
