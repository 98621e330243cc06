"""The Debian package: both build routes, lintian, the units, the man page, piuparts.

Builds are real and happen once per session in a temporary directory, from
one snapshot of the working tree (so both routes see the same sources):

- ``dpkg-buildpackage -us -uc`` with ``debian/`` and the release tarball as
  ``.orig.tar.gz`` (the canonical build, source format 3.0 (quilt), as
  ``make deb``);
- ``/usr/bin/python3 setup.py --command-packages=stdeb.command sdist_dsc
  --compat 13 bdist_deb`` (stdeb regenerates control/rules/changelog and
  keeps every other ``debian/`` file).

Then: the two packages carry the same files, units, conffiles and
maintainer scripts; lintian finds no error or warning; ``systemd-analyze
verify`` is clean against the installed file tree; the service's exposure is
at most 2.0 with every relaxation commented; the timer meets its schedule;
the man page renders without warnings and documents every option and
configuration key; piuparts passes install/remove/purge and the upgrade from
a previous build (slow).
"""

from __future__ import annotations

import email.utils
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD_DIR = ROOT / "systemd"
MAN_PAGE = ROOT / "man" / "ecr-login.8"
COMPLETION = ROOT / "completion" / "ecr-login"
DEB_PYTHON = "/usr/bin/python3"  # stdeb is installed for Debian's interpreter only
MAX_EXPOSURE = 2.0

# What a snapshot of the tree leaves out (as the Makefile's copy_tree does).
_SNAPSHOT_EXCLUDES = {
    ".git", "out", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".benchmarks",
    "__pycache__", "build", "dist", "deb_dist",
}


def _version() -> str:
    text = (ROOT / "ecr_login_pkg" / "__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, "no __version__ in ecr_login_pkg/__init__.py"
    return match.group(1)


VERSION = _version()


def _debian_version() -> str:
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    match = re.match(r"ecr-login \(([^)]+)\)", first)
    assert match, first
    return match.group(1)


#: Upstream version plus Debian revision (source format 3.0 (quilt)).
DEB_VERSION = _debian_version()
#: Debian's interpreters first, as `make deb` does: pybuild runs python3.X by
#: name, and a python3.X from pyenv or a venv earlier on PATH has no pybuild
#: plugins' modules (build, installer).
DEB_ENV = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}"
            f"\n--- stderr ---\n{done.stderr[-4000:]}"
        )
    return done


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        reason = f"{what} needs root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _require_stdeb() -> None:
    require_tool(DEB_PYTHON)
    if run([DEB_PYTHON, "-c", "import stdeb"], check=False).returncode != 0:
        reason = "required tool not available: python3-stdeb (for /usr/bin/python3)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _copy_tree(source: Path, target: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SNAPSHOT_EXCLUDES or n.endswith(".egg-info")}

    shutil.copytree(source, target, symlinks=True, ignore=ignore)


# --- the two builds -------------------------------------------------------------


@dataclass(frozen=True)
class Deb:
    path: Path
    changes: Path | None = None
    log: str = ""

    def field(self, name: str) -> str:
        return run(["dpkg-deb", "-f", str(self.path), name]).stdout.strip()

    def entries(self) -> dict[str, str]:
        """``{path: mode string}`` of every entry in the data archive (``./`` stripped)."""
        listing = run(["dpkg-deb", "-c", str(self.path)]).stdout
        result = {}
        for line in listing.splitlines():
            parts = line.split(None, 5)
            name = parts[5].split(" -> ")[0]
            result[name.removeprefix("./").rstrip("/") or "."] = parts[0]
        return result

    def control_file(self, tmp: Path, name: str) -> str | None:
        target = tmp / f"control-{self.path.stem}"
        if not target.exists():
            run(["dpkg-deb", "-e", str(self.path), str(target)])
        path = target / name
        return path.read_text() if path.exists() else None

    def md5sums(self, tmp: Path) -> dict[str, str]:
        text = self.control_file(tmp, "md5sums") or ""
        return {line.split(None, 1)[1]: line.split(None, 1)[0] for line in text.splitlines() if line.strip()}

    def extract(self, target: Path) -> Path:
        run(["dpkg-deb", "-x", str(self.path), str(target)])
        return target


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the working tree both builds start from."""
    target = tmp_path_factory.mktemp("pkg-src") / f"ecr-login-{VERSION}"
    _copy_tree(ROOT, target)
    return target


def _orig_tarball(source: Path, workdir: Path) -> None:
    """ecr-login_VERSION.orig.tar.gz: the tree without debian/, as ``make dist``."""
    with tarfile.open(workdir / f"ecr-login_{VERSION}.orig.tar.gz", "w:gz") as tar:
        tar.add(source, arcname=f"ecr-login-{VERSION}", filter=lambda info: None if info.name.endswith(
            f"ecr-login-{VERSION}/debian") else info)


def _dpkg_buildpackage(source: Path, workdir: Path, *, with_source: bool = True, env: dict[str, str] | None = None) -> Deb:
    require_tool("dpkg-buildpackage")
    tree = workdir / source.name
    _copy_tree(source, tree)
    if with_source:
        _orig_tarball(source, workdir)
    built = run(["dpkg-buildpackage", "-us", "-uc", *(() if with_source else ("-b",))], cwd=tree, env=env or DEB_ENV)
    version = run(["dpkg-parsechangelog", "-S", "Version"], cwd=tree).stdout.strip()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    deb = workdir / f"ecr-login_{version}_all.deb"
    changes = workdir / f"ecr-login_{version}_{arch}.changes"
    assert deb.exists() and changes.exists(), sorted(p.name for p in workdir.iterdir())
    return Deb(deb, changes, built.stdout + built.stderr)


@pytest.fixture(scope="session")
def deb(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Deb:
    """The canonical build: dpkg-buildpackage -us -uc -b with debian/."""
    return _dpkg_buildpackage(snapshot, tmp_path_factory.mktemp("deb-build"))


@pytest.fixture(scope="session")
def stdeb_deb(snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Deb:
    """The stdeb route, as the card gives it."""
    _require_stdeb()
    require_tool("dpkg-buildpackage")
    tree = tmp_path_factory.mktemp("stdeb-build") / "src"
    _copy_tree(snapshot, tree)
    run([DEB_PYTHON, "setup.py", "--command-packages=stdeb.command", "sdist_dsc", "--compat", "13", "bdist_deb"],
        cwd=tree, env=DEB_ENV)
    found = sorted((tree / "deb_dist").glob("ecr-login_*_all.deb"))
    assert len(found) == 1, f"stdeb built {found}"
    return Deb(found[0])


@pytest.fixture(scope="session")
def control_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("control")


# --- the canonical package --------------------------------------------------------


UNITS = ("ecr-login.service", "ecr-login.timer", "ecr-login@.service", "ecr-login@.timer")


def test_control_fields(deb: Deb) -> None:
    assert deb.field("Package") == "ecr-login"
    assert deb.field("Version") == DEB_VERSION == f"{VERSION}-1"  # 3.0 (quilt): a Debian revision
    assert deb.field("Architecture") == "all"
    depends = [d.strip() for d in deb.field("Depends").split(",")]
    # dh_python3's python3:Depends from the wheel's Requires-Dist: botocore,
    # which the code imports; nothing written by hand, no boto3.
    assert "python3-botocore" in depends
    assert not [d for d in depends if "boto3" in d], depends
    assert any(d.startswith("python3:any") or d.startswith("python3 ") for d in depends), depends
    # dh_installsysusers: systemd-sysusers must exist when postinst runs.
    assert "systemd | systemd-standalone-sysusers | systemd-sysusers" in depends
    # A docker client only, never a daemon: Debian 13's docker-cli, or Docker's
    # own docker-ce-cli. Debian 12 has no client-only package (docker.io is
    # dockerd + containerd + runc): there nothing is recommended.
    assert deb.field("Recommends") == "docker-cli | docker-ce-cli"
    assert "docker.io" not in deb.field("Recommends") and "podman" not in deb.field("Recommends")
    assert deb.field("Suggests") == "awscli"


def test_source_package(deb: Deb) -> None:
    """3.0 (quilt) with a Debian revision, current policy, PEP 517 build, watch file, autopkgtest."""
    assert deb.changes is not None
    (dsc,) = deb.changes.parent.glob("ecr-login_*.dsc")
    fields = dsc.read_text()
    assert re.search(r"^Format: 3\.0 \(quilt\)$", fields, re.M), fields
    assert re.search(r"^Standards-Version: 4\.7\.2$", fields, re.M), fields
    assert (deb.changes.parent / f"ecr-login_{VERSION}.orig.tar.gz").exists()
    control = (ROOT / "debian" / "control").read_text()
    assert "X-Python3-Version" not in control and "python3-all" not in control
    for build_dependency in ("pybuild-plugin-pyproject", "dh-sequence-python3", "python3,", "python3-pytest <!nocheck>"):
        assert build_dependency in control, build_dependency
    assert "[build-system]" in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "debian" / "watch").read_text().count("version=4") == 1
    tests = (ROOT / "debian" / "tests" / "control").read_text()
    assert re.search(r"^Restrictions:.*\bisolation-container\b", tests, re.M)


def test_build_runs_the_unit_tests_that_need_no_server(deb: Deb) -> None:
    listed = [line for line in (ROOT / "tests" / "serverless_tests.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert listed
    for module in listed:
        assert module in deb.log, f"{module} did not run in the build"
    assert re.search(r"=+ \d+ passed", deb.log), deb.log[-2000:]


def test_nocheck_skips_the_build_time_tests(snapshot: Path, tmp_path: Path) -> None:
    built = _dpkg_buildpackage(snapshot, tmp_path, with_source=False, env={**DEB_ENV, "DEB_BUILD_OPTIONS": "nocheck"})
    assert built.path.exists()
    assert " -m pytest " not in built.log and not re.search(r"=+ \d+ passed", built.log)


def test_files_and_modes(deb: Deb) -> None:
    entries = deb.entries()
    expected = [
        "usr/bin/ecr-login",
        "usr/share/ecr-login/ecr_login_pkg/cli.py",
        "etc/ecr-login/ecr-login.conf",
        "etc/default/ecr-login",
        "usr/lib/sysusers.d/ecr-login.conf",
        "usr/lib/tmpfiles.d/ecr-login.conf",
        "usr/share/man/man8/ecr-login.8.gz",
        "usr/share/bash-completion/completions/ecr-login",
        "usr/share/doc/ecr-login/copyright",
        "usr/share/doc/ecr-login/README.md.gz",
        *(f"usr/lib/systemd/system/{unit}" for unit in UNITS),
    ]
    missing = [path for path in expected if path not in entries]
    assert not missing, f"missing from the .deb: {missing}"
    # May hold AWS keys; systemd reads it as root.
    assert entries["etc/default/ecr-login"] == "-rw-------"
    assert entries["usr/bin/ecr-login"] == "-rwxr-xr-x"
    # The application's modules in its private directory, none in the public
    # dist-packages (Debian Python policy for programs).
    assert not [path for path in entries if "dist-packages" in path]
    # Units in /usr/lib whatever debhelper's default (Debian 13's lintian:
    # aliased-location for anything in /lib).
    assert not [path for path in entries if path == "lib" or path.startswith("lib/")]
    # Nothing is shipped in the state directory: systemd and tmpfiles create it.
    assert not [path for path in entries if path.startswith("var/")]


def test_conffiles(deb: Deb, control_tmp: Path) -> None:
    conffiles = (deb.control_file(control_tmp, "conffiles") or "").split()
    assert sorted(conffiles) == ["/etc/default/ecr-login", "/etc/ecr-login/ecr-login.conf"]


def test_shipped_files_are_the_repository_files(deb: Deb, tmp_path: Path) -> None:
    root = deb.extract(tmp_path / "root")
    pairs = {
        "etc/ecr-login/ecr-login.conf": "etc/ecr-login.conf",
        "etc/default/ecr-login": "etc/default/ecr-login",
        "usr/lib/sysusers.d/ecr-login.conf": "systemd/ecr-login.sysusers",
        "usr/lib/tmpfiles.d/ecr-login.conf": "systemd/ecr-login.tmpfiles",
        "usr/share/bash-completion/completions/ecr-login": "completion/ecr-login",
        "usr/bin/ecr-login": "debian/bin/ecr-login",
        **{f"usr/lib/systemd/system/{unit}": f"systemd/{unit}" for unit in UNITS},
    }
    for installed, source in pairs.items():
        assert (root / installed).read_bytes() == (ROOT / source).read_bytes(), installed


def test_installed_command_runs(deb: Deb, tmp_path: Path) -> None:
    """/usr/bin/ecr-login of the package, on Debian's interpreter, with the package's modules."""
    require_tool(DEB_PYTHON)
    root = deb.extract(tmp_path / "root")
    env = {**os.environ, "PYTHONPATH": str(root / "usr/share/ecr-login")}
    done = run([DEB_PYTHON, str(root / "usr/bin/ecr-login"), "--version"], env=env, cwd=tmp_path)
    assert done.stdout.strip() == f"ecr-login {VERSION}"
    done = run([DEB_PYTHON, str(root / "usr/bin/ecr-login"), "--no-such-option"], env=env, cwd=tmp_path, check=False)
    assert done.returncode == 64, done.stderr


def test_sysusers_creates_the_service_user() -> None:
    lines = [
        line.split() for line in (SYSTEMD_DIR / "ecr-login.sysusers").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == 1
    kind, name, ident = lines[0][:3]
    assert (kind, name, ident) == ("u", "ecr-login", "-")  # group of the same name, dynamic system ids
    assert "/var/lib/ecr-login" in lines[0]


def _script(deb: Deb, tmp: Path, name: str) -> str:
    return deb.control_file(tmp, name) or ""


def test_maintainer_scripts_intent(deb: Deb, control_tmp: Path) -> None:
    postinst = _script(deb, control_tmp, "postinst")
    prerm = _script(deb, control_tmp, "prerm")
    postrm = _script(deb, control_tmp, "postrm")

    # The user exists before any unit is enabled or started.
    sysusers = postinst.index("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} ecr-login.conf")
    tmpfiles = postinst.index("systemd-tmpfiles ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} --create ecr-login.conf")
    enable = postinst.index("deb-systemd-helper enable 'ecr-login.timer'")
    assert sysusers < tmpfiles < enable
    # Only the timer is enabled; no template and not the service.
    assert re.findall(r"deb-systemd-helper enable '([^']+)'", postinst) == ["ecr-login.timer"]
    assert "ecr-login@" not in postinst.replace("ecr-login@*", "")
    # Start/restart only with a running systemd, never fatal; on upgrade: restart.
    start = re.search(r"if \[ -d /run/systemd/system \]; then(.*?)\n\tfi", postinst, re.S)
    assert start, postinst
    assert "_dh_action=restart" in start.group(1)
    assert "deb-systemd-invoke $_dh_action 'ecr-login.service' 'ecr-login.timer' >/dev/null || true" in start.group(1)
    # ... which cannot start the service: deb-systemd-invoke skips static units
    # ("is a disabled or a static unit, not starting it"), and it is static.
    assert "[Install]" not in (SYSTEMD_DIR / "ecr-login.service").read_text()
    assert "[Install]" in (SYSTEMD_DIR / "ecr-login.timer").read_text()
    # No maintainer script changes a conffile's mode (policy 10.7.3): the .deb
    # ships /etc/default/ecr-login 0600 (test_files_and_modes).
    assert "chmod" not in postinst and "/etc/default/ecr-login" not in postinst
    # dh_python3 byte-compiles the private directory.
    assert "py3compile -p ecr-login /usr/share/ecr-login" in postinst
    # Removal stops the units, the templates' instances too.
    assert "deb-systemd-invoke stop 'ecr-login.service' 'ecr-login.timer'" in prerm
    assert "deb-systemd-invoke stop 'ecr-login@*.timer' 'ecr-login@*.service'" in prerm
    # Purge removes configuration, state and credentials; the user stays.
    purge = postrm[postrm.index('if [ "$1" = purge ]; then'):]
    for path in ('"$root/var/lib/ecr-login"', '"$root/etc/ecr-login"', '"$root/etc/default/ecr-login"'):
        assert path in purge
    assert "deb-systemd-helper purge 'ecr-login.timer'" in postrm
    for script in (postinst, prerm, postrm):
        assert not re.search(r"\b(userdel|deluser|groupdel|delgroup)\b", script)
        assert "#DEBHELPER#" not in script


def test_maintainer_scripts_are_posix_shell(deb: Deb, control_tmp: Path) -> None:
    for name in ("postinst", "prerm", "postrm"):
        text = _script(deb, control_tmp, name)
        assert text.startswith("#!/bin/sh\n")
        path = control_tmp / f"check-{name}"
        path.write_text(text)
        run(["sh", "-n", str(path)])
        if shutil.which("checkbashisms"):
            run(["checkbashisms", str(path)])


# --- lintian ----------------------------------------------------------------------


def test_lintian_clean(deb: Deb) -> None:
    """Debian 12's lintian on the source and binary packages: no tag at all,
    pedantic and info included, beyond the commented overrides in debian/.
    (Debian 13's lintian: tests/test_debian13.py.)"""
    require_tool("lintian")
    assert deb.changes is not None
    done = run(["lintian", "--pedantic", "--display-info", str(deb.changes)], check=False)
    tags = [line for line in done.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert not tags, "lintian tags:\n" + "\n".join(tags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ".dsc" in deb.changes.read_text(), "the source package was not checked"


# --- both routes give the same package -----------------------------------------------

# Differences that are legitimately there, each with its reason; everything
# else must match: the set of paths, every file's mode and content.
CHANGELOG = "usr/share/doc/ecr-login/changelog.Debian.gz"


def _normalise(path: str) -> str | None:
    # stdeb writes its own changelog: not compared.
    if path == CHANGELOG:
        return None
    # Units: stdeb's generated rules leave them where Debian 12's debhelper
    # puts them (/lib/systemd/system); debian/rules moves them to /usr/lib.
    # Same files, same snippets; stdeb.cfg documents the difference.
    if path in ("lib", "lib/systemd", "usr/lib/systemd"):
        return None
    if path.startswith("lib/systemd/system"):
        path = "usr/" + path
    # Byte-code is never shipped (dh_python3 compiles in postinst), but a
    # stray __pycache__ must not make the routes look different.
    if "__pycache__" in path or path.endswith((".pyc", ".pyo")):
        return None
    # Setuptools' metadata directory is named after the version and its
    # normalisation rules (ecr_login-0.1.0.egg-info, or .dist-info with a
    # PEP 517 build); its name is not part of the interface, its presence is.
    return re.sub(r"/ecr[-_]login-[^/]+\.(egg|dist)-info", "/ecr_login-VERSION.METADATA-info", path)


def _normalised(entries: dict[str, str]) -> dict[str, str]:
    result = {}
    for path, mode in entries.items():
        name = _normalise(path)
        if name is not None:
            result[name] = mode
    return result


def test_stdeb_package_has_the_same_files(deb: Deb, stdeb_deb: Deb, control_tmp: Path) -> None:
    ours, theirs = _normalised(deb.entries()), _normalised(stdeb_deb.entries())
    assert sorted(set(ours) - set(theirs)) == [], "only in the dpkg-buildpackage .deb"
    assert sorted(set(theirs) - set(ours)) == [], "only in the stdeb .deb"
    assert CHANGELOG in deb.entries() and CHANGELOG in stdeb_deb.entries()
    assert f"usr/lib/systemd/system/{UNITS[0]}" in deb.entries()
    assert f"lib/systemd/system/{UNITS[0]}" in stdeb_deb.entries()
    # Modes: identical except /etc/default/ecr-login, which debian/rules makes
    # 0600 after dh_fixperms; stdeb's generated rules cannot, so it ships 0644
    # (no maintainer script may change a conffile's mode; stdeb.cfg and
    # README.md tell the administrator to chmod it).
    differing = {path: (ours[path], theirs[path]) for path in ours if ours[path] != theirs[path]}
    assert differing == {"etc/default/ecr-login": ("-rw-------", "-rw-r--r--")}
    # Contents: every file but the generated changelogs is byte-identical
    # (the egg-info's PKG-INFO included: same setup.py).
    ours_md5 = {_normalise(p): h for p, h in deb.md5sums(control_tmp).items() if _normalise(p)}
    theirs_md5 = {_normalise(p): h for p, h in stdeb_deb.md5sums(control_tmp).items() if _normalise(p)}
    assert ours_md5 == theirs_md5


def test_stdeb_package_has_the_same_relations_and_scripts(deb: Deb, stdeb_deb: Deb, control_tmp: Path) -> None:
    assert stdeb_deb.field("Package") == "ecr-login"
    assert stdeb_deb.field("Version") == f"{VERSION}-1" == DEB_VERSION
    assert stdeb_deb.field("Architecture") == "all"
    for name in ("Depends", "Recommends", "Suggests"):
        split = lambda value: sorted(part.strip() for part in value.split(","))  # noqa: E731
        assert split(stdeb_deb.field(name)) == split(deb.field(name)), name
    for name in ("conffiles", "preinst", "postinst", "prerm", "postrm", "triggers"):
        assert _script(stdeb_deb, control_tmp, name) == _script(deb, control_tmp, name), name


# --- systemd ------------------------------------------------------------------------


def test_systemd_analyze_verify(deb: Deb, tmp_path: Path) -> None:
    """Verify the installed units, with /usr/bin/ecr-login and the man page from the package."""
    require_tool("systemd-analyze")
    require_tool("man")
    root = deb.extract(tmp_path / "root")
    # systemd's own units (sysinit.target, network-online.target, ...) from the host.
    for source in (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system")):
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, root / source.relative_to("/"), symlinks=True, dirs_exist_ok=True)
    env = {**os.environ, "MANPATH": str(root / "usr/share/man")}  # for Documentation=man:ecr-login(8)
    units = ["ecr-login.service", "ecr-login.timer", "ecr-login@jenkins.service", "ecr-login@jenkins.timer"]
    done = run(["systemd-analyze", "verify", f"--root={root}", *units], env=env, check=False)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stdout + done.stderr


def _exposure(unit_file: Path) -> float:
    require_tool("systemd-analyze")
    done = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit_file)], check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


@pytest.mark.parametrize("unit", ["ecr-login.service", "ecr-login@.service"])
def test_security_exposure(unit: str) -> None:
    exposure = _exposure(SYSTEMD_DIR / unit)
    assert exposure <= MAX_EXPOSURE, f"{unit}: exposure {exposure} > {MAX_EXPOSURE}"


# A setting that loosens the sandbox must sit under a comment saying why.
_LOOSE = [
    (r"RestrictAddressFamilies=.*AF_INET", "the network"),
    (r"RestrictAddressFamilies=.*AF_UNIX", "local sockets"),
    (r"ReadWritePaths=", "a writable path"),
    (r"ProtectSystem=(?!strict)", "a writable OS tree"),
    (r"ProtectHome=(?!yes)", "visible homes"),
    (r"PrivateNetwork=no|IPAddressAllow=", "the network"),
]


@pytest.mark.parametrize("unit", ["ecr-login.service", "ecr-login@.service"])
def test_every_relaxation_is_commented(unit: str) -> None:
    lines = (SYSTEMD_DIR / unit).read_text().splitlines()
    for index, line in enumerate(lines):
        for pattern, what in _LOOSE:
            if re.match(pattern, line):
                comment = []
                for previous in reversed(lines[:index]):
                    if previous.startswith("#"):
                        comment.append(previous)
                    elif comment or not previous.strip():
                        break
                assert any("RELAXED" in c for c in comment), f"{unit}: '{line}' ({what}) has no RELAXED comment"
    text = "\n".join(lines)
    for setting in ("NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "PrivateTmp=yes", "SystemCallFilter=@system-service"):
        assert setting in text + "\n", f"{unit}: {setting.strip()} missing"


def _unit_settings(unit_file: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit_file.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_service_settings() -> None:
    service = _unit_settings(SYSTEMD_DIR / "ecr-login.service")
    assert service["Type"] == ["oneshot"]
    assert service["User"] == ["ecr-login"]
    assert service["ExecStart"] == ["/usr/bin/ecr-login login"]
    # One line, so the RPM build can sed the path to /etc/sysconfig/ecr-login.
    assert service["EnvironmentFile"] == ["-/etc/default/ecr-login"]
    assert service["StateDirectory"] == ["ecr-login"]
    assert service["Wants"] == ["network-online.target"]
    assert "network-online.target" in " ".join(service["After"])
    template = _unit_settings(SYSTEMD_DIR / "ecr-login@.service")
    assert template["User"] == ["%i"]
    assert template["ExecStart"] == ["/usr/bin/ecr-login login"]
    assert "StateDirectory" not in template  # the user's own XDG state, as when run by hand
    assert template["EnvironmentFile"] == ["-/etc/default/ecr-login@%i"]


def _seconds(timespan: str) -> float:
    done = run(["systemd-analyze", "timespan", timespan])
    match = re.search(r"μs: (\d+)", done.stdout)
    assert match, done.stdout
    return int(match.group(1)) / 1e6


@pytest.mark.parametrize("timer", ["ecr-login.timer", "ecr-login@.timer"])
def test_timer_schedule(timer: str) -> None:
    """Soon after boot; a failed refresh retried within 30 min; never within 1 h of expiry; catches up."""
    require_tool("systemd-analyze")
    settings = _unit_settings(SYSTEMD_DIR / timer)
    assert _seconds(settings["OnBootSec"][0]) <= 5 * 60
    # Persistent= only works with OnCalendar= (realtime): catch-up after downtime;
    # realtime timers also fire at resume for ticks missed during suspend.
    assert settings["Persistent"] == ["true"]
    (calendar,) = settings["OnCalendar"]
    done = run(["systemd-analyze", "calendar", "--iterations=6", calendar])
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", done.stdout)
    import datetime

    times = [datetime.datetime.fromisoformat(stamp) for stamp in stamps]
    period = max((b - a).total_seconds() for a, b in zip(times, times[1:]))
    delay = _seconds(settings["RandomizedDelaySec"][0])
    assert delay > 0, "a fleet needs a randomized delay"
    fixed = settings.get("FixedRandomDelay") == ["true"]
    accuracy = _seconds(settings.get("AccuracySec", ["1min"])[0])
    # Worst gap between two runs: the period, plus the random delay when it is
    # drawn anew for every elapse, plus the timer's accuracy.
    worst_gap = period + (0 if fixed else delay) + accuracy
    assert worst_gap <= 30 * 60, f"a failed refresh waits up to {worst_gap / 60:.0f} min"
    # Default refresh_margin 6 h: the first attempt comes before the margin is
    # passed by more than one gap, so a login is far from its last hour.
    from ecr_login_pkg.config import Settings

    margin = Settings(config_path=None, state_dir="", docker_config_file="").refresh_margin
    assert margin - worst_gap >= 3600


# --- man page and completion -------------------------------------------------------------


def _help_options() -> set[str]:
    options: set[str] = set()
    for command in ([], ["login"], ["status"], ["logout"], ["doctor"]):
        done = run([sys.executable, "-m", "ecr_login_pkg", *command, "--help"], cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        options |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", done.stdout.split("exit codes:")[0]))
    return options


def _rendered_man() -> str:
    require_tool("groff")
    # Wide lines, no hyphenation: every option and key stays one word.
    done = run(["groff", "-man", "-Tutf8", "-rLL=400n", "-rHY=0", "-ww", str(MAN_PAGE)],
               env={**os.environ, "LC_ALL": "C.UTF-8"})
    return re.sub(r".\x08", "", done.stdout).replace("\u2010", "-").replace("\u2212", "-")


def test_man_page_renders_without_warnings() -> None:
    require_tool("groff")
    done = run(["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN_PAGE)], env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert done.stderr == "", done.stderr
    require_tool("man")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MAN_KEEP_STDERR": "1"}
    done = run(["man", "--warnings", "-l", str(MAN_PAGE)], env=env)
    assert done.stderr == "", done.stderr
    assert "ECR-LOGIN(8)" in done.stdout


def test_man_page_documents_every_option() -> None:
    text = _rendered_man()
    options = _help_options()
    assert {"--config", "--store", "--force", "--json", "--dry-run", "-v", "-q"} <= options
    missing = sorted(option for option in options if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text))
    assert not missing, f"ecr-login(8) does not mention {missing}"
    for command in ("login", "status", "logout", "doctor"):
        assert re.search(rf"^ {{7}}{command}\b", text, re.M), f"no COMMANDS entry for {command}"


def test_man_page_documents_every_configuration_key() -> None:
    from ecr_login_pkg.config import DEFAULTS_KEYS, REGISTRY_KEYS, STORE_NAMES, TOKEN_SOURCES

    text = _rendered_man()
    missing = sorted(key for key in DEFAULTS_KEYS | REGISTRY_KEYS if not re.search(rf"\b{key}\b", text))
    assert not missing, f"ecr-login(8) does not mention the keys {missing}"
    for word in (*STORE_NAMES, *TOKEN_SOURCES, "[defaults]", "/etc/ecr-login/ecr-login.conf", "/etc/default/ecr-login"):
        assert word in text, word


def test_man_page_documents_every_exit_code() -> None:
    from ecr_login_pkg import errors

    text = _rendered_man()
    section = text[text.index("EXIT STATUS"):text.index("FILES")]
    codes = {value for name, value in vars(errors).items() if name.startswith(("EX_", "STATUS_")) and isinstance(value, int)}
    assert codes == {0, 64, 65, 75, 77, 78, 1, 2}
    for code in codes | {70}:  # 70: internal error (cli.EX_SOFTWARE)
        assert re.search(rf"^ {{7}}{code}\b|\b{code}\b", section, re.M), f"exit code {code} not documented"


def test_bash_completion_offers_every_option() -> None:
    require_tool("bash")
    text = COMPLETION.read_text()
    missing = sorted(option for option in _help_options() if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text))
    assert not missing, f"completion/ecr-login lacks {missing}"
    script = f"""
        source /usr/share/bash-completion/bash_completion 2>/dev/null || _init_completion() {{
            cur=${{COMP_WORDS[COMP_CWORD]}}; prev=${{COMP_WORDS[COMP_CWORD-1]}}; words=("${{COMP_WORDS[@]}}"); cword=$COMP_CWORD; }}
        source {COMPLETION}
        complete_for() {{
            COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()
            _ecr_login "$1" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"; echo "${{COMPREPLY[*]}}"; }}
        complete_for ecr-login ""
        complete_for ecr-login --store ""
        complete_for ecr-login status --j
        complete_for ecr-login -v login --dr
        complete_for ecr-login doctor --j
    """
    lines = run(["bash", "-c", script]).stdout.splitlines()
    assert lines == ["login status logout doctor", "docker file containers helm", "--json", "--dry-run", "--json"], lines


# --- piuparts ---------------------------------------------------------------------------


def _piuparts_base(mirror: str) -> Path:
    """A cached debootstrap (minbase + systemd) tarball for piuparts -b.

    systemd is preinstalled, as on any host that runs the timer: the package
    depends on systemd-sysusers, and a dependency on systemd pulled into
    piuparts' bare chroot leaves systemd's own files behind on purge.
    """
    require_tool("debootstrap")
    from guest import cache_dir

    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"1 bookworm {mirror} minbase+systemd".encode()).hexdigest()[:12]
    target = cache / f"piuparts-bookworm-systemd-{key}.tar.gz"
    with open(cache / ".piuparts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            work = cache / f".piuparts-build-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            try:
                run(["debootstrap", "--variant=minbase", "--include=systemd", "bookworm", str(work), mirror], timeout=900)
                run(["chroot", str(work), "apt-get", "clean"])
                partial = target.with_suffix(".partial")
                with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
                    tar.add(work, arcname=".")
                partial.rename(target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return target


def _bumped_build(snapshot: Path, workdir: Path) -> Deb:
    """The same tree with a newer changelog entry, as the next release would be."""
    tree = workdir / "bumped-src" / snapshot.name
    _copy_tree(snapshot, tree)
    changelog = tree / "debian" / "changelog"
    entry = (
        f"ecr-login ({DEB_VERSION}+piuparts1) unstable; urgency=medium\n\n"
        "  * Upgrade test build.\n\n"
        f" -- ecr-login developers <ecr-login@example.org>  {email.utils.formatdate()}\n\n"
    )
    changelog.write_text(entry + changelog.read_text())
    return _dpkg_buildpackage(tree, workdir, with_source=False)


@pytest.mark.slow
def test_piuparts_install_purge_and_upgrade(deb: Deb, snapshot: Path, tmp_path: Path) -> None:
    """install -> remove -> purge of the new build, and upgrade from the previous build."""
    _require_root("piuparts")
    require_tool("piuparts")
    require_tool("dpkg-scanpackages")
    from guest import host_mirror

    mirror = host_mirror("bookworm")
    base = _piuparts_base(mirror)
    new = _bumped_build(snapshot, tmp_path / "new")
    # The previous build, served as a trusted local repository inside the chroot,
    # so piuparts' upgrade test installs it with apt, then upgrades to the new one.
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(deb.path, repo)
    (repo / "Packages").write_text(run(["dpkg-scanpackages", "."], cwd=repo).stdout)
    scratch = Path("/var/tmp/ecr-login-piuparts")  # not under /tmp: other tests walk /tmp
    scratch.mkdir(exist_ok=True)
    done = run(
        ["piuparts", "-b", str(base), "-d", "bookworm", "-m", mirror, "--tmpdir", str(scratch),
         f"--bindmount={repo}", f"--extra-repo=deb [trusted=yes] file://{repo} ./", str(new.path)],
        timeout=1800, check=False,
    )
    log = done.stdout + done.stderr
    summary = "\n".join(line for line in log.splitlines() if re.search(r"(PASS|FAIL|ERROR):", line))
    assert done.returncode == 0, f"piuparts failed:\n{summary}\n...\n{log[-3000:]}"
    assert "PASS: Installation and purging test." in log
    assert "PASS: Installation, upgrade and purging tests." in log, "the upgrade from the previous build was not tested"
    assert f"Unpacking ecr-login ({DEB_VERSION}+piuparts1) over ({DEB_VERSION})" in log
