"""The RPM: built with rpm/build.sh (rpmbuild on Debian with rpm/macros.*)
for both targets (Fedora 42, the default; RHEL 9 + EPEL 9), then checked
with rpmlint, rpm queries, its unpacked payload (run with an interpreter of
the target's Python version and nothing from Debian's paths), its scriptlets
run against recording stand-ins for the system tools, and an install and
removal into a Debian tree with `rpm --root` (systemd not running there, as in
an image build). tests/test_debian13.py runs the Fedora payload with Debian
13's python3.13.

The booted-systemd lifecycle of the RPM (timer active, service run) belongs
to the guest tests; here everything runs without booting anything.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool

NAME = "ecr-login"
_VERSION_MATCH = re.search(r'__version__ = "([^"]+)"', (REPO_ROOT / "ecr_login_pkg" / "__init__.py").read_text())
assert _VERSION_MATCH
VERSION = _VERSION_MATCH.group(1)
TIMER = f"{NAME}.timer"
STATE_DIR = f"/var/lib/{NAME}"
UNIT_DIR = "/usr/lib/systemd/system"
SCRIPTLET_TAGS = {"pre": "PREIN", "post": "POSTIN", "preun": "PREUN", "postun": "POSTUN"}
# A "%" followed by a macro name, "{", "(", "!" or "?": what rpm leaves of a
# macro it could not expand.
UNEXPANDED_MACRO = re.compile(r"%[{(!?A-Za-z_]")
#: target -> (dist tag, Python version) (rpm/target-*.macros).
TARGETS = {"fedora": (".fc42", "3.13"), "el9": (".el9", "3.9")}
#: Without python3.X on the host, rpm/build.sh runs the build's python steps
#: with the python3 of a Debian release that has 3.X, in a chroot of
#: tests/guest.py's cached tarball (its suite and packages, as in build.sh).
CHROOT_SUITES = {"3.13": "trixie", "3.9": "bullseye"}
CHROOT_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: importlib.util.MAGIC_NUMBER of each version (first two bytes of a .pyc).
PYC_MAGIC = {"3.13": 3571, "3.9": 3425}


def _rpm_adds_sysusers_provides() -> bool:
    """rpm >= 4.19 (%add_sysuser) builds user()/group() provides its install acts on."""
    done = subprocess.run(["rpm", "--eval", "%{defined add_sysuser}"], capture_output=True, text=True, check=False)
    return done.stdout.strip() == "1"


def compat_pre(target: str) -> bool:
    """Whether the build's %pre creates the user (%sysusers_create_compat): RHEL 9,
    and Fedora 42 built by an rpm older than 4.19 (this Debian's 4.18)."""
    return target == "el9" or not _rpm_adds_sysusers_provides()


@dataclass(frozen=True)
class RpmBuild:
    binary: Path
    source: Path
    log: str
    target: str = "fedora"

    @property
    def python_version(self) -> str:
        return TARGETS[self.target][1]

    @property
    def sitelib(self) -> str:
        """%{python3_sitelib} of the target: Fedora's and RHEL's, not Debian's."""
        return f"/usr/lib/python{self.python_version}/site-packages"


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, env=env, cwd=cwd)


def target_python(version: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """An interpreter of ``version`` on this host, found as rpm/build.sh finds it
    ($PYTHON3_X, else python3.X on PATH but not a pyenv shim, else pyenv's
    newest); None when there is none (build.sh then uses a Debian chroot)."""
    explicit = environ.get(f"PYTHON{version.replace('.', '_')}")
    if explicit:
        return explicit
    found = shutil.which(f"python{version}", path=environ.get("PATH", os.defpath))
    if found and "/shims/" not in found:
        return found
    pyenv = environ.get("PYENV_ROOT") or os.path.join(environ.get("HOME", os.path.expanduser("~")), ".pyenv")
    candidates = sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"), key=_version_key)
    return candidates[-1] if candidates else None


def _version_key(path: str) -> list[int]:
    """sort -V for .../versions/3.9.18/...: 3.9.18 after 3.9.9."""
    return [int(part) for part in re.findall(r"\d+", path.split("/versions/")[-1].split("/")[0])]


def require_chroot_support(version: str) -> None:
    """What rpm/build.sh's Debian chroot for python``version`` needs (skips, or fails in CI)."""
    for tool in ("debootstrap", "unshare", "chroot", "mount"):
        require_tool(tool)
    if os.geteuid() != 0:
        reason = f"no python{version} on this host, and rpm/build.sh's Debian chroot for it needs root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def build(outdir: Path, *extra: str, target: str = "fedora", env: Mapping[str, str] | None = None) -> RpmBuild:
    for tool in ("make", "rpmbuild", "rpm", "/usr/bin/python3"):
        require_tool(tool)
    environ = dict(os.environ if env is None else env)
    if target_python(TARGETS[target][1], environ) is None:
        require_chroot_support(TARGETS[target][1])
    # No git: the source tarball is `make dist` of the tree.
    result = run(
        [str(REPO_ROOT / "rpm" / "build.sh"), "--target", target, "--outdir", str(outdir), "--no-lint", *extra],
        env={**environ, "GIT_DIR": "/nonexistent"},
    )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"rpm/build.sh failed with exit {result.returncode}:\n{log[-6000:]}")
    dist = TARGETS[target][0]
    return RpmBuild(
        binary=outdir / f"{NAME}-{VERSION}-1{dist}.noarch.rpm",
        source=outdir / f"{NAME}-{VERSION}-1{dist}.src.rpm",
        log=log,
        target=target,
    )


@pytest.fixture(scope="session")
def rpm_build(tmp_path_factory: pytest.TempPathFactory) -> RpmBuild:
    """The default target: Fedora 42."""
    return build(tmp_path_factory.mktemp("rpm"))


@pytest.fixture(scope="session")
def rpm_build_el9(tmp_path_factory: pytest.TempPathFactory) -> RpmBuild:
    """RHEL 9 + EPEL 9: rpm < 4.19, so %pre creates the user (as on Debian's rpm 4.18)."""
    return build(tmp_path_factory.mktemp("rpm-el9"), target="el9")


def query(package: Path, *args: str) -> str:
    result = run(["rpm", "-qp", *args, str(package)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def scriptlets(package: Path) -> dict[str, str]:
    return {name: query(package, "--queryformat", f"%{{{tag}}}") for name, tag in SCRIPTLET_TAGS.items()}


def file_table(package: Path) -> dict[str, tuple[str, str, str, str]]:
    """path -> (fflags, perms, user, group)."""
    text = query(
        package,
        "--queryformat",
        "[%{FILENAMES}\t%{FILEFLAGS:fflags}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\n]",
    )
    table = {}
    for line in text.splitlines():
        path, flags, perms, user, group = line.split("\t")
        table[path] = (flags, perms, user, group)
    return table


def unpack(package: Path, root: Path) -> Path:
    """The binary package's files, unpacked (rpm2cpio | cpio)."""
    require_tool("rpm2cpio")
    require_tool("cpio")
    rpm2cpio = subprocess.Popen(["rpm2cpio", str(package)], stdout=subprocess.PIPE)
    cpio = subprocess.run(["cpio", "-idm", "--quiet"], stdin=rpm2cpio.stdout, cwd=root, capture_output=True, check=False)
    assert rpm2cpio.stdout is not None
    rpm2cpio.stdout.close()
    assert rpm2cpio.wait() == 0 and cpio.returncode == 0, cpio.stderr
    return root


@pytest.fixture(scope="session")
def payload(rpm_build: RpmBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(rpm_build.binary, tmp_path_factory.mktemp("payload"))


# --- rpmlint -----------------------------------------------------------------


def test_rpmlint_reports_no_error_and_no_warning(rpm_build: RpmBuild) -> None:
    rpmlint = require_tool("rpmlint")
    rpmlintrc = REPO_ROOT / "rpm" / f"{NAME}.rpmlintrc"
    result = run([rpmlint, "--rpmlintrc", str(rpmlintrc), str(rpm_build.binary), str(rpm_build.source)])
    output = result.stdout + result.stderr
    summary = re.search(r"(\d+) errors, (\d+) warnings", output)
    assert summary, output
    # Every accepted finding is filtered, with its reason, in the rpmlintrc;
    # a filter that matches nothing would itself be an error.
    assert (summary.group(1), summary.group(2)) == ("0", "0"), output
    assert result.returncode == 0, output


# --- scriptlets ----------------------------------------------------------------


def test_scriptlets_are_fully_expanded(rpm_build: RpmBuild, rpm_build_el9: RpmBuild) -> None:
    # rpm >= 4.19 creates the sysusers.d user itself (Fedora 42 built on
    # Fedora): no %pre. RHEL 9's rpm cannot, nor can rpm 4.18's build add what
    # a Fedora 42 install would act on: %sysusers_create_compat.
    for build in (rpm_build, rpm_build_el9):
        expected = ("pre", "post", "preun", "postun") if compat_pre(build.target) else ("post", "preun", "postun")
        bodies = scriptlets(build.binary)
        present = tuple(name for name, body in bodies.items() if body.strip() and body != "(none)")
        assert present == expected, build.target
        for name in present:
            assert not UNEXPANDED_MACRO.search(bodies[name]), f"unexpanded macro in %{name}:\n{bodies[name]}"
    interpreters = query(rpm_build_el9.binary, "--queryformat", "%{PREINPROG} %{POSTINPROG} %{PREUNPROG} %{POSTUNPROG}")
    assert interpreters.split() == ["/bin/sh"] * 4


def test_pre_creates_the_user_from_the_sysusers_file(rpm_build_el9: RpmBuild) -> None:
    pre = scriptlets(rpm_build_el9.binary)["pre"]
    assert f"# Generated from {NAME}.sysusers" in pre
    assert f"getent group '{NAME}' >/dev/null || groupadd -r '{NAME}'" in pre
    assert f"getent passwd '{NAME}' >/dev/null ||" in pre
    assert f"useradd -r -g '{NAME}' -d '{STATE_DIR}' -s '/usr/sbin/nologin'" in pre


def test_timer_scriptlets_are_systemds_preset_disable_restart(rpm_build: RpmBuild) -> None:
    scripts = scriptlets(rpm_build.binary)
    assert f"systemctl --no-reload preset {TIMER} " in scripts["post"]
    assert "if [ $1 -eq 1 ]" in scripts["post"]
    assert f"systemctl --no-reload disable --now {TIMER} " in scripts["preun"]
    assert "if [ $1 -eq 0 ]" in scripts["preun"]
    # The instances of the templates stop with the package, as on Debian.
    assert f"systemctl stop '{NAME}@*.timer' '{NAME}@*.service'" in scripts["preun"]
    assert f"systemctl try-restart {TIMER} " in scripts["postun"]
    assert "if [ $1 -ge 1 ]" in scripts["postun"]
    # The service is the timer's: no scriptlet enables, stops or restarts it.
    assert not any(f"{NAME}.service" in body for body in scripts.values())
    # No preset file: the administrator enables the timer (Fedora's policy).
    assert "preset" not in query(rpm_build.binary, "--list")


# The scriptlets are run as rpm runs them (/bin/sh -c BODY NAME $1), with a
# PATH holding only recording stand-ins for the tools they may call: anything
# else would fail with "not found" and show up in the assertions.
STAND_INS = ("getent", "groupadd", "useradd", "usermod", "systemctl", "systemd-sysusers")


def run_scriptlet(
    body: str, arg: int, tmp_path: Path, *, exits: dict[str, int] | None = None, shell: str = "/bin/sh"
) -> tuple[int, list[str]]:
    bindir = tmp_path / "bin"
    calls = tmp_path / "calls"
    bindir.mkdir(exist_ok=True)
    calls.write_text("")
    for tool in STAND_INS:
        script = bindir / tool
        code = (exits or {}).get(tool, 0)
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit {code}\n')
        script.chmod(0o755)
    result = run([shell, "-c", body, "scriptlet", str(arg)], env={"PATH": str(bindir)})
    assert "not found" not in result.stderr, result.stderr
    return result.returncode, calls.read_text().splitlines()


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_pre_adds_group_and_user_only_when_missing(rpm_build_el9: RpmBuild, tmp_path: Path, shell: str) -> None:
    pre = scriptlets(rpm_build_el9.binary)["pre"]
    # Fresh system: getent finds nothing (exit 2).
    code, calls = run_scriptlet(pre, 1, tmp_path, exits={"getent": 2}, shell=shell)
    assert code == 0
    assert calls[0] == f"getent group {NAME}"
    assert calls[1] == f"groupadd -r {NAME}"
    assert calls[2] == f"getent passwd {NAME}"
    assert calls[3].startswith(f"useradd -r -g {NAME} -d {STATE_DIR} -s /usr/sbin/nologin -c ")
    assert calls[3].endswith(f" {NAME}")
    assert len(calls) == 4
    # Upgrade, or a user created earlier by systemd-sysusers: nothing to do.
    code, calls = run_scriptlet(pre, 2, tmp_path, shell=shell)
    assert code == 0
    assert calls == [f"getent group {NAME}", f"getent passwd {NAME}"]


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_systemd_scriptlets_act_only_on_their_transaction(rpm_build: RpmBuild, tmp_path: Path, shell: str) -> None:
    scripts = scriptlets(rpm_build.binary)
    # $1: packages of this name left after the transaction (rpm's convention).
    # The instances are stopped only where systemd runs (/run/systemd/system).
    instances = [f"systemctl stop {NAME}@*.timer {NAME}@*.service"] if os.path.isdir("/run/systemd/system") else []
    expected = {
        ("post", 1): [f"systemctl --no-reload preset {TIMER}"],
        ("post", 2): [],
        ("preun", 0): [f"systemctl --no-reload disable --now {TIMER}", *instances],
        ("preun", 1): [],
        ("postun", 1): [f"systemctl try-restart {TIMER}"],
        ("postun", 0): [],
    }
    for (name, arg), calls_expected in expected.items():
        code, calls = run_scriptlet(scripts[name], arg, tmp_path, shell=shell)
        assert (code, calls) == (0, calls_expected), f"%{name} with $1={arg}"


def test_systemd_scriptlets_never_fail_the_transaction(rpm_build: RpmBuild, tmp_path: Path) -> None:
    # No systemd running (a chroot, a container): systemctl fails; rpm must
    # not abort the install or removal for that.
    scripts = scriptlets(rpm_build.binary)
    for name, arg in (("post", 1), ("preun", 0), ("postun", 1)):
        code, calls = run_scriptlet(scripts[name], arg, tmp_path, exits={"systemctl": 1})
        assert code == 0 and len(calls) >= 1, f"%{name}"


def test_current_fedora_macros_give_the_update_helper_scriptlets(rpm_build: RpmBuild, tmp_path: Path) -> None:
    # rpm/macros.systemd-update-helper: the text a systemd >= 249 build has.
    other = build(tmp_path / "out", "--systemd-macros=update-helper")
    scripts = scriptlets(other.binary)
    helper = "/usr/lib/systemd/systemd-update-helper"
    assert f'[ -x "{helper}" ]' in scripts["post"]
    assert f"{helper} install-system-units {TIMER} || :" in scripts["post"]
    assert f"{helper} remove-system-units {TIMER} || :" in scripts["preun"]
    assert f"{helper} mark-restart-system-units {TIMER} || :" in scripts["postun"]
    assert scripts["pre"] == scriptlets(rpm_build.binary)["pre"]
    for body in scripts.values():
        assert not UNEXPANDED_MACRO.search(body), body


# --- metadata and files ---------------------------------------------------------


def _requires(package: Path) -> set[str]:
    return set(query(package, "--queryformat", "[%{REQUIREFLAGS:deptype} %{REQUIRENAME} %{REQUIREVERSION}\n]").splitlines())


@pytest.mark.parametrize("target", ["fedora", "el9"])
def test_name_version_and_dependencies(rpm_build: RpmBuild, rpm_build_el9: RpmBuild, target: str) -> None:
    build = rpm_build if target == "fedora" else rpm_build_el9
    dist, python = TARGETS[target]
    fields = query(build.binary, "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}")
    assert fields == f"{NAME} {VERSION} 1{dist} noarch"
    requires = _requires(build.binary)
    # Generated by rpm from the payload, as on the target: the interpreter's
    # ABI and botocore (the wheel's Requires-Dist); nothing written by hand.
    assert f"auto python(abi) {python}" in requires, requires
    assert f"auto python{python}dist(botocore) " in requires, requires
    assert not [r for r in requires if "boto3" in r or r.startswith("manual ")], requires
    # No %{?systemd_requires} (systemd-rpm-macros is a BuildRequires only).
    assert not [r for r in requires if " systemd " in f"{r} "], requires
    # %{?sysusers_requires_compat} only where %pre creates the user.
    assert ("pre shadow-utils " in requires) == compat_pre(target), requires
    buildrequires = set(query(build.source, "--requires").split("\n"))
    assert {"systemd-rpm-macros", "python3-devel", "python3dist(pytest)"} <= buildrequires, buildrequires


def test_source_package_carries_spec_tarball_and_sysusers(rpm_build: RpmBuild) -> None:
    files = set(query(rpm_build.source, "--list").split())
    assert files == {f"{NAME}.spec", f"{NAME}-{VERSION}.tar.gz", f"{NAME}.sysusers"}
    # Source0 is the release's full URL (debian/watch looks there too).
    spec = query(rpm_build.source, "--queryformat", "[%{SOURCE}\n]").split()
    assert f"{NAME}-{VERSION}.tar.gz" in spec
    source0 = re.search(r"^Source0:\s*(\S+)", (REPO_ROOT / "rpm" / f"{NAME}.spec").read_text(), re.M)
    assert source0 and source0.group(1) == "%{url}/releases/%{name}-%{version}.tar.gz"


def test_files_are_where_fedora_puts_them(rpm_build: RpmBuild) -> None:
    files = set(file_table(rpm_build.binary))
    expected = {
        f"/usr/bin/{NAME}",
        f"{UNIT_DIR}/{NAME}.service",
        f"{UNIT_DIR}/{NAME}.timer",
        f"{UNIT_DIR}/{NAME}@.service",
        f"{UNIT_DIR}/{NAME}@.timer",
        f"/usr/lib/sysusers.d/{NAME}.conf",
        f"/usr/lib/tmpfiles.d/{NAME}.conf",
        f"/usr/share/man/man8/{NAME}.8.gz",
        f"/usr/share/bash-completion/completions/{NAME}",
        f"/usr/share/licenses/{NAME}/LICENSE",
        f"/etc/{NAME}/{NAME}.conf",
        f"/etc/sysconfig/{NAME}",
        STATE_DIR,
    }
    assert expected <= files, sorted(expected - files)
    assert not any(path.startswith("/etc/default") for path in files)
    assert not any("system-preset" in path for path in files)


def test_configuration_files_are_noreplace(rpm_build: RpmBuild) -> None:
    table = file_table(rpm_build.binary)
    configs = set(query(rpm_build.binary, "--configfiles").split())
    assert configs == {f"/etc/{NAME}/{NAME}.conf", f"/etc/sysconfig/{NAME}"}
    for path in configs:
        flags = table[path][0]
        assert "c" in flags and "n" in flags, f"{path} is not %config(noreplace): {flags!r}"
    assert table[f"/etc/{NAME}/{NAME}.conf"][1:] == ("-rw-r--r--", "root", "root")
    # It may hold AWS keys.
    assert table[f"/etc/sysconfig/{NAME}"][1:] == ("-rw-------", "root", "root")


def test_state_directory_is_private_to_the_service_user(rpm_build: RpmBuild) -> None:
    assert file_table(rpm_build.binary)[STATE_DIR][1:] == ("drwx------", NAME, NAME)


@pytest.mark.parametrize("target", ["fedora", "el9"])
def test_python_files_are_in_the_targets_sitelib(rpm_build: RpmBuild, rpm_build_el9: RpmBuild, target: str) -> None:
    build = rpm_build if target == "fedora" else rpm_build_el9
    sitelib = build.sitelib
    files = set(file_table(build.binary))
    modules = sorted(path.name for path in (REPO_ROOT / "ecr_login_pkg").glob("*.py"))
    tag = "cpython-" + build.python_version.replace(".", "")
    for module in modules:
        assert f"{sitelib}/ecr_login_pkg/{module}" in files
        # Byte-code of the target's interpreter, both levels, as Fedora's buildroot policy makes it.
        for suffix in (".pyc", ".opt-1.pyc"):
            assert f"{sitelib}/ecr_login_pkg/__pycache__/{module[:-3]}.{tag}{suffix}" in files, module
    assert f"{sitelib}/ecr_login-{VERSION}.dist-info" in files
    assert f"{sitelib}/ecr_login-{VERSION}.dist-info/LICENSE" in query(build.binary, "--licensefiles")
    python_files = [path for path in files if path.endswith((".py", ".pyc")) or "ecr_login" in path]
    assert python_files and all(path.startswith(f"{sitelib}/") for path in python_files)
    assert not [path for path in files if "dist-packages" in path or "/python3/" in path]


# --- the payload -----------------------------------------------------------------


def test_units_read_the_sysconfig_file(payload: Path) -> None:
    service = (payload / UNIT_DIR.lstrip("/") / f"{NAME}.service").read_text()
    assert f"EnvironmentFile=-/etc/sysconfig/{NAME}" in service.splitlines()
    template = (payload / UNIT_DIR.lstrip("/") / f"{NAME}@.service").read_text()
    assert f"EnvironmentFile=-/etc/sysconfig/{NAME}@%i" in template.splitlines()
    for path in (payload / UNIT_DIR.lstrip("/")).iterdir():
        assert "/etc/default" not in path.read_text(), path.name
    # Apart from the path, the units are the ones in systemd/.
    for unit in ("ecr-login.service", "ecr-login.timer", "ecr-login@.service", "ecr-login@.timer"):
        original = (REPO_ROOT / "systemd" / unit).read_text().replace("/etc/default/", "/etc/sysconfig/")
        assert (payload / UNIT_DIR.lstrip("/") / unit).read_text() == original


def test_sysconfig_file_describes_itself(payload: Path) -> None:
    text = (payload / "etc" / "sysconfig" / NAME).read_text()
    assert f"/etc/sysconfig/{NAME}" in text and "/etc/default/" not in text


def test_sysusers_file(payload: Path) -> None:
    shipped = (payload / "usr/lib/sysusers.d" / f"{NAME}.conf").read_text()
    assert shipped == (REPO_ROOT / "systemd" / f"{NAME}.sysusers").read_text()
    assert re.search(rf"^u {NAME} - .* {STATE_DIR} ", shipped, re.MULTILINE)
    assert not (payload / "usr/lib/systemd/system-preset").exists()


#: Run as the target runs /usr/bin/ecr-login: its shebang's options, its
#: sitelib the only addition to the interpreter's own paths (-S: no site, so
#: nothing from this host's site-packages or Debian's dist-packages).
_SHOW_PATHS = "import sys, ecr_login_pkg; print(ecr_login_pkg.__file__); print(*sys.path, sep='\\n')"


@pytest.mark.parametrize("target", ["fedora", "el9"])
def test_launcher_is_plain_and_runs_with_the_targets_python(
    rpm_build: RpmBuild, rpm_build_el9: RpmBuild, target: str, tmp_path: Path
) -> None:
    build = rpm_build if target == "fedora" else rpm_build_el9
    with interpreter_of(build.python_version, tmp_path) as (python, where, seen_as):
        unpack(build.binary, where)
        launcher_runs_with(python, where, seen_as, build, tmp_path)


@contextlib.contextmanager
def interpreter_of(version: str, tmp_path: Path) -> Iterator[tuple[list[str], Path, Path]]:
    """(argv running python``version``, a directory to unpack a payload into,
    that directory as the interpreter sees it): the host's python3.X, else
    (as rpm/build.sh) the python3 of a Debian release with 3.X, in a chroot."""
    python = target_python(version)
    if python is not None:
        (tmp_path / "payload").mkdir()
        yield [python], tmp_path / "payload", tmp_path / "payload"
        return
    require_chroot_support(version)
    from guest import pristine_tarball, unpack_tarball

    tarball = pristine_tarball(CHROOT_PACKAGES, suite=CHROOT_SUITES[version])
    with tempfile.TemporaryDirectory(prefix="ecr-login-rpm-python-", dir="/var/tmp") as directory:
        tree = Path(directory)
        unpack_tarball(tarball, tree)
        (tree / "srv/payload").mkdir(parents=True)
        yield [require_tool("chroot"), str(tree), f"/usr/bin/python{version}"], tree / "srv/payload", Path("/srv/payload")


def launcher_runs_with(python: list[str], root: Path, seen_as: Path, build: RpmBuild, tmp_path: Path) -> None:
    """The payload unpacked in ``root`` (``seen_as`` by ``python``) runs as the target runs it."""
    launcher = (root / "usr/bin" / NAME).read_text()
    options = "-sP" if build.target == "fedora" else "-s"
    assert launcher.splitlines()[0] == f"#!/usr/bin/python3 {options}"
    # pip's launcher: an import and a call, no importlib.metadata lookup.
    assert "from ecr_login_pkg.cli import run" in launcher and "importlib" not in launcher
    version = run([*python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()
    assert version == build.python_version, python
    sitelib = seen_as / build.sitelib.lstrip("/")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(sitelib), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path)}
    shown = run([*python, "-S", "-s", "-c", _SHOW_PATHS], env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    module, *path = shown.stdout.splitlines()
    assert module.startswith(str(sitelib) + "/ecr_login_pkg/"), module
    assert not [entry for entry in path if "dist-packages" in entry or entry.startswith("/usr/lib/python3/")], path
    for argv, code in ((["--version"], 0), (["--help"], 0), (["--no-such-option"], 64)):
        done = run([*python, "-S", "-s", str(seen_as / "usr/bin" / NAME), *argv], env=env, cwd=tmp_path)
        assert done.returncode == code, (argv, done.stderr)
    assert run([*python, "-S", "-s", str(seen_as / "usr/bin" / NAME), "--version"], env=env, cwd=tmp_path).stdout.strip() == (
        f"{NAME} {VERSION}"
    )


def without_host_pythons() -> dict[str, str]:
    """This environment as a stock Debian 12 sees it: no python3.13 or python3.9
    to find (no $PYTHON3_X, no pyenv, no PATH entry holding either)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON3_", "PYENV"))}
    env["PYENV_ROOT"] = "/nonexistent"
    versions = [version for _, version in TARGETS.values()]
    path = env.get("PATH", os.defpath).split(os.pathsep)
    kept = [d for d in path if "pyenv" not in d and not any(os.access(os.path.join(d, f"python{v}"), os.X_OK) for v in versions)]
    if "/usr/bin" in path and "/usr/bin" not in kept:
        pytest.skip("/usr/bin holds python3.13 or python3.9: this host cannot hide them (not a Debian 12)")
    env["PATH"] = os.pathsep.join(kept)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("target", ["fedora", "el9"])
def test_a_host_without_the_targets_python_builds_the_same_package_in_a_debian_chroot(
    rpm_build: RpmBuild, rpm_build_el9: RpmBuild, target: str, tmp_path: Path
) -> None:
    """A stock Debian 12 (python3 3.11 only) builds both targets: rpm/build.sh runs
    the python steps with trixie's 3.13 or bullseye's 3.9 in a chroot, and the
    package is the one a host python3.X builds.

    Costs about 6 s (fedora) and 8 s (el9) with a warm cache, against about
    4 s with a host python; the first run on a host also debootstraps trixie
    and bullseye (about 40 s and 60 MB of cache each) and fills each chroot's
    venv from PyPI (about 5 s).
    """
    env = without_host_pythons()
    version = TARGETS[target][1]
    assert target_python(version, env) is None, "the host's python is not hidden"
    chrooted = build(tmp_path / "out", target=target, env=env)
    used = re.search(rf"using Debian {CHROOT_SUITES[version]}'s in a chroot of (/var/tmp/\S+)$", chrooted.log, re.MULTILINE)
    assert used, chrooted.log[:3000]
    assert not Path(used.group(1)).exists(), "build.sh left its chroot tree behind"
    assert re.search(rf"Imported \d+ modules with Python {re.escape(version)}\.\d+", chrooted.log), chrooted.log[-3000:]
    assert re.search(r"=+ \d+ passed", chrooted.log), "no %check pytest run in the chroot"
    reference = rpm_build if target == "fedora" else rpm_build_el9
    for what in ("--list", "--requires", "--provides", "--scripts"):
        assert query(chrooted.binary, what) == query(reference.binary, what), what
    assert f"python(abi) = {version}" in query(chrooted.binary, "--requires").splitlines()
    (tmp_path / "payload").mkdir()
    root = unpack(chrooted.binary, tmp_path / "payload")
    compiled = sorted((root / chrooted.sitelib.lstrip("/")).rglob("*.pyc"))
    tag = "cpython-" + version.replace(".", "")
    assert compiled and all(f".{tag}." in path.name for path in compiled), compiled
    assert {int.from_bytes(path.read_bytes()[:2], "little") for path in compiled} == {PYC_MAGIC[version]}


# --- install and remove in a Debian tree (no systemd running) ---------------------


@pytest.fixture
def debian_tree() -> Iterator[Path]:
    """A fresh copy of the guest tests' pristine Debian 12 tree."""
    from guest import pristine_tarball, unpack_tarball, unsupported_reasons

    reasons = unsupported_reasons()
    if reasons:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("; ".join(reasons))
        pytest.skip("; ".join(reasons))
    tarball = pristine_tarball()
    with tempfile.TemporaryDirectory(prefix="ecr-login-rpm-root-", dir="/var/tmp") as directory:
        tree = Path(directory)
        unpack_tarball(tarball, tree)
        yield tree


def in_tree(root: Path, *argv: str) -> str:
    result = run(["chroot", str(root), *argv])
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_rpm_installs_and_removes_in_a_tree_without_running_systemd(rpm_build_el9: RpmBuild, debian_tree: Path) -> None:
    # rpm chroots into the tree for the scriptlets: Debian's getent, groupadd,
    # useradd and systemctl (offline, as in an image build) do the work. The
    # RHEL 9 build: Debian's rpm 4.18, like RHEL 9's, cannot create sysusers.d
    # users itself, so %pre does.
    root = str(debian_tree)
    installed = run(["rpm", "--root", root, "-i", "--nodeps", str(rpm_build_el9.binary)])
    assert installed.returncode == 0, installed.stderr
    assert "scriptlet failed" not in installed.stderr, installed.stderr

    passwd = in_tree(debian_tree, "getent", "passwd", NAME).strip().split(":")
    assert passwd[0] == NAME and passwd[5] == STATE_DIR and passwd[6] == "/usr/sbin/nologin"
    assert int(passwd[2]) < 1000, "not a system user"
    assert in_tree(debian_tree, "stat", "-c", "%U:%G %a", STATE_DIR).strip() == f"{NAME}:{NAME} 700"
    # %systemd_post presets the timer: Debian's preset policy enables it (no
    # "disable *"); on Fedora/RHEL it stays disabled until the administrator
    # runs `systemctl enable --now ecr-login.timer`.
    wants = debian_tree / "etc/systemd/system/timers.target.wants" / TIMER
    assert wants.is_symlink(), "the timer is not enabled for the next boot"
    assert in_tree(debian_tree, "systemctl", "is-enabled", TIMER).strip() == "enabled"
    # The payload is RHEL 9's (python3.9 site-packages): Debian 12's python3
    # cannot run it; test_launcher_is_plain_and_runs_with_the_targets_python does.
    assert (debian_tree / rpm_build_el9.sitelib.lstrip("/") / "ecr_login_pkg" / "cli.py").is_file()

    # An edited configuration and the state survive removal, as do the user.
    config = debian_tree / "etc" / NAME / f"{NAME}.conf"
    config.write_text(config.read_text() + "\n[public.ecr.aws]\n")
    (debian_tree / STATE_DIR.lstrip("/") / "state.json").write_text("{}\n")
    removed = run(["rpm", "--root", root, "-e", NAME])
    assert removed.returncode == 0, removed.stderr
    assert not wants.is_symlink() and not wants.exists(), "the timer stays enabled after removal"
    assert not (debian_tree / UNIT_DIR.lstrip("/") / TIMER).exists()
    assert (debian_tree / "etc" / NAME / f"{NAME}.conf.rpmsave").exists()
    assert (debian_tree / STATE_DIR.lstrip("/") / "state.json").exists()
    assert in_tree(debian_tree, "getent", "passwd", NAME)
