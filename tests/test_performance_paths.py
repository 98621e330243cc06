"""The lean paths keep their behaviour: what a run with nothing due does not do, and the
shortcuts taken for speed (plain argument reading, light records) act as what they replace.

Time itself is measured by bench/bench.py, not here. Already covered in test_login.py:
one token call per region and identity, no botocore import on a no-op run, parallel fetches.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError, asdict, dataclass, replace
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool, run_ecr_login
from standin_ecr import StandinECR, self_signed_certificate

from ecr_login_pkg import plainargs, records
from ecr_login_pkg.cli import build_parser, with_default_command
from ecr_login_pkg.errors import UsageError

# --- a run with nothing due -------------------------------------------------

# Run main() in a fresh interpreter with an audit hook that records every process
# start and network use, and report which heavy modules main() imported.
PROBE = """
import sys
at_start = set(sys.modules)  # what the interpreter's own start-up loaded (site, .pth files) does not count
events = []
WATCHED = ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "os.system",
           "socket.__new__", "socket.connect", "socket.getaddrinfo")
sys.addaudithook(lambda event, args: events.append(event) if event in WATCHED else None)
from ecr_login_pkg.cli import main
code = main(sys.argv[1:])
HEAVY = ("argparse", "dataclasses", "inspect", "typing", "subprocess", "socket", "threading", "shutil",
         "hashlib", "base64", "botocore", "boto3", "urllib3", "concurrent.futures")
loaded = set(sys.modules) - at_start
print(code, "events:" + ",".join(events), "heavy:" + ",".join(name for name in HEAVY if name in loaded))
"""


def probe_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], list[str]]:
    environment = dict(os.environ if env is None else env, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=environment,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    code, events, heavy = done.stdout.split()
    return int(code), [e for e in events.split(":", 1)[1].split(",") if e], [m for m in heavy.split(":", 1)[1].split(",") if m]


def fake_docker(directory: Path) -> Path:
    """A ``docker`` that only records being called (and fails, so a real login cannot pass for it)."""
    directory.mkdir()
    record = directory / "calls"
    script = directory / "docker"
    script.write_text(f'#!/bin/sh\necho "$*" >> {record}\nexit 1\n')
    script.chmod(0o755)
    return record


def test_docker_store_without_a_helper_starts_no_process(ecr, registry, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No credential helper applies: the forced login writes config.json itself, and a no-op run only reads it."""
    config = write_config(f"""
[defaults]
endpoint_url = {ecr.url}
stores = docker
[123456789012.dkr.ecr.us-east-1.amazonaws.com]
store_as = {registry.address}
""")
    calls = fake_docker(tmp_path / "fake-bin")
    env = dict(os.environ, PATH=f"{tmp_path / 'fake-bin'}{os.pathsep}{os.environ['PATH']}")
    code, events, _heavy = probe_run("login", "--force", "--config", config, env=env)
    assert code == 0
    assert not [event for event in events if not event.startswith("socket.")]  # the token request only
    assert registry.address in json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]
    code, events, heavy = probe_run("--config", config, env=env)
    assert code == 0
    assert events == []  # no process, no socket
    assert heavy == []
    assert not calls.exists()  # `docker` was never run
    assert ecr.call_count == 1


def test_no_op_run_with_the_file_store_writes_nothing(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    sections = "".join(f"[{account}.dkr.ecr.{region}.amazonaws.com]\n"
                       for account in ("111111111111", "222222222222") for region in ("us-east-1", "eu-west-1"))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file, containers\n{sections}")
    assert run_ecr_login("--config", config).code == 0
    written = [Path(aws_env["DOCKER_CONFIG"], "config.json"), Path(aws_env["XDG_CONFIG_HOME"], "containers", "auth.json"),
               Path(aws_env["XDG_STATE_HOME"], "ecr-login", "state.json")]
    before = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in written]
    code, events, heavy = probe_run("--config", config)
    assert (code, events, heavy) == (0, [], [])
    assert [(path.stat().st_ino, path.stat().st_mtime_ns) for path in written] == before  # not even rewritten
    assert ecr.call_count == 2  # one per region, from the first run only


def test_fingerprints_are_sha256_whichever_module_computes_them() -> None:
    import hashlib

    from ecr_login_pkg.authfile import fingerprint, sha256_hex

    for data in (b"", b"AWS:secret", bytes(range(256)) * 40):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert fingerprint("QVdTOnNlY3JldA==") == hashlib.sha256(b"QVdTOnNlY3JldA==").hexdigest()[:16]


def test_forced_file_store_login_starts_no_process(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    sections = "".join(f"[111111111111.dkr.ecr.{region}.amazonaws.com]\n" for region in ("us-east-1", "eu-west-1"))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file, containers, helm\n{sections}")
    code, events, _heavy = probe_run("login", "--force", "--config", config)
    assert code == 0
    assert "socket.connect" in events  # the probe sees the token requests...
    assert not [event for event in events if not event.startswith("socket.")]  # ...and no process started
    assert ecr.call_count == 2
    assert len(json.loads(Path(aws_env["DOCKER_CONFIG"], "config.json").read_text())["auths"]) == 2


def test_the_quick_exit_delivers_buffered_output_and_the_exit_code(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """cli.run ends with os._exit: what sits in stdout's buffer (a file is block-buffered) must be flushed first."""
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n"
                          "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n[210987654321.dkr.ecr.eu-west-1.amazonaws.com]\n")
    assert run_ecr_login("--config", config, "login", "--force").code == 0
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # buffered, as in service
    env["PYTHONPATH"] = str(REPO_ROOT)
    with open(tmp_path / "out.json", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config, "status", "--json"],
                              stdout=out, stderr=err, env=env, timeout=60, check=False)
    assert done.returncode == 0
    rows = json.loads((tmp_path / "out.json").read_text())["registries"]
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    ecr.script(["denied"], region="eu-west-1")
    with open(tmp_path / "err.txt", "wb") as err:
        done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config, "login", "--force"],
                              stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60, check=False)
    assert done.returncode == 77  # the worst outcome's code, through os._exit
    assert "AccessDenied" in (tmp_path / "err.txt").read_text() and "1 failed" in (tmp_path / "err.txt").read_text()


def test_the_quick_exit_still_fails_when_the_output_is_lost(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    """stdout into a full disk: exit 120 and a line on stderr, as Python's own exit would;
    stdout closed: the run's own exit code, no traceback."""
    assert Path("/dev/full").exists(), "this test writes into /dev/full"
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n"
                          "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    assert run_ecr_login("--config", config, "login").code == 0
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "ecr_login_pkg", "--config", config]
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*command, "status", "--json"], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=60, check=False)
    assert done.returncode == 120, done.stderr
    assert "cannot write the output: No space left on device" in done.stderr and "Traceback" not in done.stderr
    closed = subprocess.run(["bash", "-c", 'exec >&-; exec "$@"', "run", *command, "login", "--force"],
                            capture_output=False, stderr=subprocess.PIPE, text=True, env=env, timeout=60, check=False)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr


# --- a forced run on Debian's python, whose urllib3 would load pyOpenSSL --------

DEBIAN_PYTHON = "/usr/bin/python3"
TLS_PROBE = """
import sys
from ecr_login_pkg.cli import main
code = main(sys.argv[1:])
print(code, ",".join(sorted(name for name in sys.modules if name.split(".")[0] in ("OpenSSL", "cryptography"))))
"""


def test_forced_run_checks_tls_without_loading_pyopenssl(aws_env, write_config, tmp_path, token_password) -> None:  # type: ignore[no-untyped-def]
    """botosetup.load_botocore hides urllib3.contrib.pyopenssl while botocore is imported; the
    certificate must still be checked, with botocore's own fallback SSLContext."""
    require_tool(DEBIAN_PYTHON)
    require_tool("openssl")
    control = subprocess.run([DEBIAN_PYTHON, "-c", "import OpenSSL, cryptography"], capture_output=True, check=False)
    assert control.returncode == 0, "python3-openssl is not installed: this test would prove nothing"
    (tmp_path / "other").mkdir()
    cert, key = self_signed_certificate(str(tmp_path))
    other_cert, _ = self_signed_certificate(str(tmp_path / "other"))

    def run(ca_bundle: str) -> tuple[int, str]:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), AWS_CA_BUNDLE=ca_bundle)
        done = subprocess.run([DEBIAN_PYTHON, "-c", TLS_PROBE, "login", "--force", "--config", config],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        code, _, loaded = done.stdout.strip().partition(" ")
        return int(code), loaded

    with StandinECR(token_password, tls=(cert, key)) as aws:
        config = write_config(f"[defaults]\nendpoint_url = {aws.url}\nstores = file\ntimeout = 3\n"
                              "[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
        assert run(cert) == (0, "")  # logged in over TLS; neither module loaded
        assert aws.call_count == 1 and aws.calls[0].status == 200
        # a certificate from another CA: refused before any request (retried as temporary, for a
        # clock not yet set at boot, until the 3 s deadline)
        assert run(other_cert) == (75, "")
        assert aws.call_count == 1


# The lean loader against botocore's own listing, on every service of the interpreter's botocore,
# for both model types client creation loads, with a custom AWS_DATA_PATH service as well.
LOADER_PROBE = """
import json, os, sys
from ecr_login_pkg.botosetup import lean_loader, load_botocore
load_botocore()
from botocore.loaders import Loader
extra = sys.argv[1]
lean, plain = lean_loader(extra), Loader(extra_search_paths=[extra])
report = {}
for type_name in ("service-2", "endpoint-rule-set-1", "paginators-1"):
    full = plain.list_available_services(type_name)
    names = set(full) | set(os.listdir(os.path.join(os.path.dirname(__import__("botocore").__file__), "data")))
    names |= {"no-such-service", "", "../ecr", ".", "ecr/2015-09-21", "my-service"}
    known = lean.list_available_services(type_name)
    report[type_name] = {
        "count": len(full),
        "disagree": sorted(name for name in names if (name in known) != (name in full)),
        "listing_same": list(known) == list(full),
    }
model = lean.load_service_model("ecr", "service-2")
print(json.dumps({"types": report, "ecr_operations": len(model["operations"]),
                  "custom": lean.load_service_model("my-service", "service-2")["metadata"]["serviceId"]}))
"""


@pytest.mark.parametrize("python", [sys.executable, DEBIAN_PYTHON])
def test_lean_loader_knows_exactly_the_services_botocore_knows(python: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    require_tool(python)
    custom = tmp_path / "data" / "my-service" / "2020-01-01"
    custom.mkdir(parents=True)
    (custom / "service-2.json").write_text(json.dumps({"version": "2.0", "metadata": {"serviceId": "Mine"},
                                                       "operations": {}, "shapes": {}}))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([python, "-c", LOADER_PROBE, str(tmp_path / "data")], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for type_name, report in found["types"].items():
        assert report["count"] > (100 if type_name != "paginators-1" else 50), type_name
        assert report["disagree"] == [], type_name
        assert report["listing_same"], type_name
    assert found["ecr_operations"] > 10 and found["custom"] == "Mine"


# --- plain argument reading agrees with argparse ---------------------------

WORDS = [
    "status", "logout", "login", "--force", "--dry-run", "--json", "-v", "-q", "--verbose", "--quiet",
    "--config", "/etc/x.conf", "--config=/tmp/y.conf", "--store", "file", "--store=helm", "--store=ftp",
    "--region", "eu-west-1", "--metrics-file", "/tmp/m.prom", "--endpoint-url", "http://127.0.0.1:9",
    "--profile", "ci", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "public.ecr.aws", "app",
    "--forc", "-h", "--help", "--version", "--", "-vq", "", "--bogus", "-",
]


def argparse_reading(argv: list[str]) -> dict[str, object] | None:
    try:
        namespace = build_parser().parse_args(argv)
    except (UsageError, SystemExit):
        return None
    return vars(namespace)


def command_lines() -> list[list[str]]:
    lines = [[]] + [[word] for word in WORDS]
    lines += [list(pair) for pair in itertools.product(WORDS, repeat=2)]
    triples = list(itertools.product(WORDS[:26], repeat=3))
    lines += [list(triple) for triple in triples[::7]]  # a deterministic spread of the 17,576
    lines += [
        ["--config", "/etc/ecr-login/ecr-login.conf", "--quiet"],
        ["login", "a", "--force", "b"],
        ["login", "a", "b", "--force"],
        ["--force", "a", "b"],
        ["status", "--json", "--store", "docker", "x", "y"],
        ["-v", "-q"],
        ["--store", "file", "--store", "docker"],
    ]
    return lines


def test_plain_reading_gives_what_argparse_gives(capsys: pytest.CaptureFixture[str]) -> None:
    plain_lines = 0
    for argv in command_lines():
        command_line = with_default_command(argv)
        plain = plainargs.read(command_line)
        if plain is None:
            continue  # left to argparse: nothing to compare
        plain_lines += 1
        assert vars(plain) == argparse_reading(command_line), argv
    capsys.readouterr()  # argparse's own messages for the lines it refused
    assert plain_lines > 1000  # the comparison covered the common shapes, not just a handful


@pytest.mark.parametrize(
    "argv",
    [[], ["--quiet"], ["-v"], ["--force"], ["status"], ["status", "--json"], ["logout"],
     ["--config", "/etc/ecr-login/ecr-login.conf"], ["--store", "file", "app"], ["--metrics-file=/x.prom"]],
)
def test_the_timers_command_lines_are_read_without_argparse(argv: list[str]) -> None:
    assert plainargs.read(with_default_command(argv)) is not None


def test_plain_reading_knows_no_option_argparse_does_not() -> None:
    subparsers = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in plainargs.COMMANDS:
        actions = {option: action for action in subparsers[command]._actions for option in action.option_strings}
        values = {**plainargs.COMMON_VALUES, **plainargs.COMMAND_VALUES[command]}
        flags = {**plainargs.COMMON_FLAGS, **plainargs.COMMAND_FLAGS[command]}
        for option, destination in values.items():
            assert actions[option].dest == destination and actions[option].nargs is None, (command, option)
            assert tuple(actions[option].choices or ()) == tuple(plainargs.CHOICES.get(destination, ())), option
        for option, destination in flags.items():
            assert actions[option].dest == destination and actions[option].const is True, (command, option)


# --- @record behaves as @dataclass ----------------------------------------


def make_classes(decorator):  # type: ignore[no-untyped-def]
    @decorator(frozen=True)
    class Frozen:
        name: str
        size: int = 3
        note: str | None = None

        @property
        def double(self) -> int:
            return self.size * 2

    @decorator
    class Mutable:
        address: str
        count: int = 0

    return Frozen, Mutable


@pytest.mark.parametrize("decorator", [dataclass, records.record], ids=["dataclass", "record"])
def test_record_acts_as_a_dataclass(decorator) -> None:  # type: ignore[no-untyped-def]
    frozen_class, mutable_class = make_classes(decorator)
    item = frozen_class("a", note="n")
    assert (item.name, item.size, item.note, item.double) == ("a", 3, "n", 6)
    assert item == frozen_class(name="a", size=3, note="n") and item != frozen_class("b")
    assert hash(item) == hash(frozen_class("a", 3, "n"))
    assert repr(item) == f"{frozen_class.__qualname__}(name='a', size=3, note='n')"
    with pytest.raises(AttributeError):
        item.name = "b"  # type: ignore[misc]
    for bad in ((), ("a", 1, "n", "extra")):
        with pytest.raises(TypeError):
            frozen_class(*bad)
    with pytest.raises(TypeError):
        frozen_class("a", nme="typo")
    with pytest.raises(TypeError):
        frozen_class("a", name="twice")
    changed = (replace if decorator is dataclass else records.replace)(item, size=5)
    assert (changed.name, changed.size, item.size) == ("a", 5, 3)
    entry = mutable_class("h")
    entry.count += 1
    assert entry == mutable_class("h", 1)
    assert (asdict if decorator is dataclass else records.asdict)(entry) == {"address": "h", "count": 1}
    assert records.field_names(mutable_class) == ("address", "count")
    with pytest.raises(TypeError):
        hash(entry)
    assert issubclass(FrozenInstanceError, AttributeError)  # what callers may catch for either
