"""What users copy from the docs must work: the README's example and the shipped configuration load."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO_ROOT, run_ecr_login

from ecr_login_pkg.config import DEFAULTS_KEYS, REGISTRY_KEYS, Overrides, load

ENV = {"HOME": "/nonexistent", "PATH": "", "AWS_REGION": "eu-west-1"}


def test_readme_configuration_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```ini\n(\[defaults\].*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    assert block is not None
    text = block.group(1)
    if "users" not in DEFAULTS_KEYS:  # until #17 adds the key: the rest of the example must load meanwhile
        text = re.sub(r"^users = .*\n", "", text, flags=re.M)
    path = tmp_path / "readme.conf"
    path.write_text(text)
    targets = load(Overrides(config_path=str(path)), ENV).targets
    assert [t.registry.host for t in targets if t.registry] == [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "210987654321.dkr.ecr.us-east-1.amazonaws.com", "public.ecr.aws"]


def test_shipped_configuration_loads_and_its_commented_examples_too(tmp_path: Path) -> None:
    shipped = (REPO_ROOT / "etc" / "ecr-login.conf").read_text()
    path = tmp_path / "shipped.conf"
    path.write_text(shipped)
    (default,) = load(Overrides(config_path=str(path)), ENV).targets
    assert default.registry is None  # as installed: the zero-config default
    uncommented = re.sub(r"^#(?=\[|[a-z_]+ = )", "", shipped, flags=re.M)
    path.write_text(uncommented)
    settings = load(Overrides(config_path=str(path)), ENV)
    assert len(settings.targets) == 3
    mentioned = set(re.findall(r"^#?([a-z_]+) = ", shipped, flags=re.M))
    assert mentioned <= DEFAULTS_KEYS | REGISTRY_KEYS
    assert mentioned >= DEFAULTS_KEYS  # every [defaults] key is shown in the example


# --- README's synopsis, ecr-login(8) and --help name the same options (#20.4) -----------------

OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")
GLOBAL = "(global)"
# Named by README and ecr-login(8) for #17 before the code has them: tolerated only while
# --help lacks them (once the code has one, README, the man page and --help must agree on it).
PENDING = {("status", "--all")}
PENDING_COMMANDS = {"deliver"}


# One source's synopsis: for each command, the options it names and whether it takes REGISTRY.
Synopsis = dict[str, tuple[set[str], bool]]


def _readme_synopsis() -> Synopsis:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"^## Command line\n+```\n(.*?)```", text, re.S | re.M)
    assert block is not None, "README has no synopsis block under '## Command line'"
    lines = block.group(1).splitlines()
    common = next((set(OPTION.findall(line)) for line in lines if line.startswith("OPTIONS:")), set())
    synopsis: Synopsis = {}
    for line in lines:
        if not line.startswith("ecr-login"):
            continue
        words = line.split()
        command = "login" if words[1] == "[login]" else words[1] if not words[1].startswith("-") else GLOBAL
        options = set(OPTION.findall(line)) | (common if "[OPTIONS]" in line else set())
        synopsis[command] = (options, "REGISTRY" in line)
    return synopsis


def _man_synopsis() -> Synopsis:
    text = (REPO_ROOT / "man" / "ecr-login.8").read_text()
    section = text[text.index(".SH SYNOPSIS"):text.index(".SH DESCRIPTION")].replace("\\-", "-").replace("\\&", "")
    blocks = re.findall(r"^\.SY ecr-login\n(.*?)^\.YS\n", section, re.S | re.M)
    where = section[section.rindex(".YS"):]
    assert "where" in where and "options" in where, "ecr-login(8)'s SYNOPSIS lost its 'where options are'"
    common = set(OPTION.findall(where))
    synopsis: Synopsis = {}
    for block in blocks:
        first = block.splitlines()[0]
        named = re.match(r"\.B (\w+)$", first)
        command = "login" if first == ".RB [ login ]" else named.group(1) if named else GLOBAL
        options = set(OPTION.findall(block)) | (common if ".RI [ options ]" in block else set())
        synopsis[command] = (options, "REGISTRY" in block)
    return synopsis


def _help_synopsis() -> Synopsis:
    top = run_ecr_login("--help")
    assert top.code == 0, top
    usage = top.stdout.split("\n\n")[0]
    commands = re.findall(r"^ {4}(\w+) {2,}", top.stdout.split("positional arguments:")[1], re.M)
    assert "login" in commands and "status" in commands, top.stdout
    synopsis: Synopsis = {GLOBAL: (set(OPTION.findall(usage)), False)}
    for command in commands:
        done = run_ecr_login(command, "--help")
        assert done.code == 0, done
        usage = done.stdout.split("\n\n")[0]  # the usage lines, as a user sees them
        synopsis[command] = (set(OPTION.findall(usage)) - synopsis[GLOBAL][0], "REGISTRY" in usage)
    return synopsis


def test_readme_synopsis_man_page_and_help_name_the_same_options() -> None:
    helped = _help_synopsis()
    for name, written in (("README.md", _readme_synopsis()), ("ecr-login(8)", _man_synopsis())):
        for command, option in PENDING:
            if option not in helped.get(command, (set(), False))[0] and command in written:
                written[command][0].discard(option)
        for command in PENDING_COMMANDS - set(helped):
            written.pop(command, None)
        assert sorted(written) == sorted(helped), f"{name}'s synopsis names the commands {sorted(written)}, --help {sorted(helped)}"
        for command, (options, registry) in helped.items():
            assert written[command][0] == options, (
                f"{name}'s synopsis of {command}: {sorted(written[command][0])}; --help: {sorted(options)}")
            assert written[command][1] == registry, (
                f"{name}'s synopsis of {command}: REGISTRY {written[command][1]}, --help {registry}")


def test_the_synopsis_check_sees_a_missing_option() -> None:
    """The parsers above really read the options: --no-hooks and status's REGISTRY, missing before #20."""
    readme, man, helped = _readme_synopsis(), _man_synopsis(), _help_synopsis()
    for synopsis in (readme, man, helped):
        assert {"--force", "--no-hooks", "--config", "-v", "-q"} <= synopsis["login"][0]
        assert synopsis["status"][1] and "--json" in synopsis["status"][0] and "--force" not in synopsis["status"][0]
        assert {"--version", "-h"} <= synopsis[GLOBAL][0]


# --- README's quick starts (#20.1): marked blocks that a booted-guest test can run --------------

QUICKSTART = re.compile(r"^<!-- quickstart: ([a-z0-9-]+) -->\n```sh\n(.*?)^```$", re.S | re.M)
HEREDOC = re.compile(r"^cat >>?(\S+) <<'EOF'\n(.*?)^EOF$", re.S | re.M)


def quickstarts() -> dict[str, str]:
    """README's quick starts by name: each the ``sh`` block right after ``<!-- quickstart: NAME -->``."""
    text = (REPO_ROOT / "README.md").read_text()
    found = dict(QUICKSTART.findall(text))
    assert len(found) == text.count("<!-- quickstart:"), "a quickstart marker without its ```sh block right after it"
    return found


def _shipped(path: str) -> bool:
    """Whether an ecr-login path a quick start names is one the packages ship or the docs define."""
    from ecr_login_pkg.config import DEFAULT_CONFIG, DEFAULT_HOOKS_DIR

    man = (REPO_ROOT / "man" / "ecr-login.8").read_text().replace("\\-", "-")
    examples = (REPO_ROOT / "debian" / "ecr-login.examples").read_text().split()
    doc = "/usr/share/doc/ecr-login/examples/"
    if path.startswith(doc):
        rest = path[len(doc):]
        if rest.startswith("hooks/"):
            return "examples/hooks" in examples and (REPO_ROOT / "examples" / rest).is_file()
        return any(Path(entry).name == rest and (REPO_ROOT / entry).is_file() for entry in examples)
    if path == DEFAULT_CONFIG:
        return (REPO_ROOT / "etc" / "ecr-login.conf").is_file()
    if path == "/etc/default/ecr-login":
        return (REPO_ROOT / "etc" / "default" / "ecr-login").is_file()
    if re.fullmatch(r"/etc/default/ecr-login@[a-z_][a-z0-9_-]*", path):
        return "/etc/default/ecr-login@USER" in man
    if path == DEFAULT_HOOKS_DIR or path.startswith(DEFAULT_HOOKS_DIR + "/"):
        return True
    return path == "/var/lib/ecr-login" or path.startswith("/var/lib/ecr-login/")


def test_readme_quickstarts_parse_and_name_only_what_exists(tmp_path: Path) -> None:
    import configparser
    import shlex
    import subprocess

    found = quickstarts()
    assert {"access-keys", "jenkins", "gitlab-runner-shell", "gitlab-runner-docker", "github-actions", "buildkite",
            "kubernetes-secret", "own-identity"} <= set(found)
    helped = _help_synopsis()
    man = (REPO_ROOT / "man" / "ecr-login.8").read_text().replace("\\-", "-").replace("\\(em", "")
    environment_file = (REPO_ROOT / "etc" / "default" / "ecr-login").read_text()
    for name, script in found.items():
        done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"quickstart {name}: {done.stderr}"
        for target, body in HEREDOC.findall(script):
            assert _shipped(target), f"quickstart {name} writes {target}, which no package ships or documents"
            if target.endswith("ecr-login.conf"):
                parser = configparser.ConfigParser(interpolation=None)
                parser.read_string(body)
                for section in parser.sections():
                    known = DEFAULTS_KEYS | {"users"} if section == "defaults" else REGISTRY_KEYS  # users: #17
                    for key in parser[section]:
                        assert key in known, f"quickstart {name}: no key {key} in [{section}]"
                        if key in DEFAULTS_KEYS | REGISTRY_KEYS:
                            assert re.search(rf"\b{key}\b", man), f"ecr-login(8) lacks {key}"
            else:
                for line in body.splitlines():
                    variable = line.split("=", 1)[0]
                    assert re.fullmatch(r"[A-Z_]+", variable) and variable in environment_file + man, (
                        f"quickstart {name}: {variable} is named by neither etc/default/ecr-login nor ecr-login(8)")
        commands = HEREDOC.sub("", script)
        for path in re.findall(r"(?<![\w.~-])(/(?:etc|usr/share/doc|var/lib)/ecr-login[^\s'\"]*)", commands):
            assert _shipped(path), f"quickstart {name} names {path}, which no package ships or documents"
        for unit in re.findall(r"\becr-login(?:@[\w.-]*)?\.(?:service|timer)\b", commands):
            source = re.sub(r"@[\w.-]+\.", "@.", unit)
            assert (REPO_ROOT / "systemd" / source).is_file(), f"quickstart {name}: no unit {unit}"
        for line in commands.splitlines():
            words = shlex.split(line, comments=True)
            while words[:1] == ["sudo"]:
                words = words[3:] if words[1:2] == ["-u"] else words[1:]
            if words[:1] != ["ecr-login"]:
                continue
            command = words[1] if len(words) > 1 and not words[1].startswith("-") else "login"
            assert command in helped, f"quickstart {name}: no command ecr-login {command}"
            pending = {option for cmd, option in PENDING if cmd == command}
            for option in OPTION.findall(" ".join(words[1:])):
                assert option in helped[command][0] | helped[GLOBAL][0] | pending, (
                    f"quickstart {name}: ecr-login {command} has no {option}")
