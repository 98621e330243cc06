"""The packages built on this Debian 12 host, checked with Debian 13 (trixie).

A trixie tree with lintian and python3 (3.13) is debootstrapped once and
cached as a tarball beside the guest tests' ones (tests/guest.py:
pristine_tarball, under /var/cache/ecr-login-tests); each test unpacks a
fresh copy and works in it with chroot:

- the source and binary packages of ``make deb`` go through trixie's lintian
  ``--pedantic --display-info``: no tag beyond the one the Debian 12 lintian
  override leaves unused there;
- the Fedora RPM's payload (``make rpm``: /usr/lib/python3.13/site-packages,
  ``#!/usr/bin/python3 -sP``) is unpacked into the tree and run with
  trixie's real python3.13, with nothing from Debian's paths on sys.path
  (``-S``: no site module, no dist-packages; the payload's site-packages is
  all that is added, as Fedora's site module would add it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool

pytestmark = pytest.mark.slow

SUITE = "trixie"
#: lintian and its TLS stack (debootstrap cannot resolve the virtual
#: perl-openssl-abi-3 by itself: perl-openssl-defaults provides it), python3.
INCLUDE = ("lintian", "perl-openssl-defaults", "python3", "ca-certificates")
_VERSION_MATCH = re.search(r'__version__ = "([^"]+)"', (REPO_ROOT / "ecr_login_pkg" / "__init__.py").read_text())
assert _VERSION_MATCH
VERSION = _VERSION_MATCH.group(1)
SITELIB = "/usr/lib/python3.13/site-packages"
#: The only lintian tag trixie may show: debian/source/lintian-overrides
#: silences Debian 12's newer-standards-version for 4.7.2, which trixie's
#: lintian knows, so there the override is unused (an info tag).
ALLOWED_TAGS = {"I: ecr-login source: unused-override newer-standards-version 4.7.2 (current is 4.6.2)"}


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def _need_root_and_tools() -> None:
    reasons = []
    if os.geteuid() != 0:
        reasons.append("chroot into a trixie tree needs root")
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            reasons.append(f"required tool not available: {tool}")
    if reasons:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("; ".join(reasons))
        pytest.skip("; ".join(reasons))


@pytest.fixture(scope="module")
def trixie_tarball() -> Path:
    _need_root_and_tools()
    from guest import pristine_tarball

    return pristine_tarball(INCLUDE, suite=SUITE)


@pytest.fixture
def trixie(trixie_tarball: Path) -> Iterator[Path]:
    """A fresh copy of the cached trixie tree (not under /tmp: other tests walk /tmp)."""
    with tempfile.TemporaryDirectory(prefix="ecr-login-trixie-", dir="/var/tmp") as directory:
        from guest import unpack_tarball

        root = Path(directory)
        unpack_tarball(trixie_tarball, root)
        yield root


def in_tree(root: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    return _run(["chroot", str(root), "env", "-i", *(f"{k}={v}" for k, v in {**base, **(env or {})}.items()), *argv])


@pytest.fixture(scope="module")
def debian_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make deb` into a temporary OUT: .dsc, .debian.tar.xz, .orig.tar.gz, .deb, .changes."""
    require_tool("dpkg-buildpackage")
    out = tmp_path_factory.mktemp("deb-out")
    done = _run(["make", "--no-print-directory", "deb", f"OUT={out}"], cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fedora_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make rpm` (RPM_TARGET=fedora, the default)."""
    require_tool("rpmbuild")
    out = tmp_path_factory.mktemp("rpm-out")
    done = _run([str(REPO_ROOT / "rpm" / "build.sh"), "--target", "fedora", "--outdir", str(out), "--no-lint"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = sorted(out.glob(f"ecr-login-{VERSION}-1.fc42.noarch.rpm"))
    assert len(found) == 1, sorted(p.name for p in out.iterdir())
    return found[0]


def test_debian13_lintian_is_clean_on_the_packages_built_on_debian12(trixie: Path, debian_build: Path) -> None:
    assert in_tree(trixie, "lintian", "--version").stdout.startswith("Lintian v2.12"), "not trixie's lintian"
    srv = trixie / "srv"
    for path in debian_build.glob("ecr-login_*"):
        if path.is_file():
            shutil.copy(path, srv / path.name)
    (changes,) = [p.name for p in srv.glob("ecr-login_*_*.changes")]
    done = in_tree(trixie, "lintian", "--pedantic", "--display-info", f"/srv/{changes}")
    tags = {line.split(" [")[0] for line in done.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)}
    assert tags <= ALLOWED_TAGS, "trixie's lintian:\n" + done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    # Both packages were checked: the source (.dsc) and the binary (.deb).
    assert ".dsc" in (srv / changes).read_text() and "_all.deb" in (srv / changes).read_text()


_SHOW_PATHS = "import sys, ecr_login_pkg; print(sys.version_info[:2]); print(ecr_login_pkg.__file__); print(*sys.path, sep='\\n')"


def test_fedora_rpm_runs_with_debian13_python313_and_nothing_from_debian_paths(trixie: Path, fedora_rpm: Path) -> None:
    require_tool("rpm2cpio")
    require_tool("cpio")
    rpm2cpio = subprocess.Popen(["rpm2cpio", str(fedora_rpm)], stdout=subprocess.PIPE)
    cpio = subprocess.run(["cpio", "-idm", "--quiet"], stdin=rpm2cpio.stdout, cwd=trixie, capture_output=True, check=False)
    assert rpm2cpio.stdout is not None
    rpm2cpio.stdout.close()
    assert rpm2cpio.wait() == 0 and cpio.returncode == 0, cpio.stderr
    launcher = (trixie / "usr/bin/ecr-login").read_text().splitlines()
    assert launcher[0] == "#!/usr/bin/python3 -sP"
    # Fedora's python3 puts its site-packages on sys.path by itself; Debian's
    # does not (dist-packages instead). -S drops Debian's site module and its
    # paths; PYTHONPATH adds the payload's site-packages, as Fedora's site would.
    env = {"PYTHONPATH": SITELIB, "AWS_EC2_METADATA_DISABLED": "true"}
    shown = in_tree(trixie, "/usr/bin/python3.13", "-S", "-sP", "-c", _SHOW_PATHS, env=env)
    assert shown.returncode == 0, shown.stderr
    version, module, *path = shown.stdout.splitlines()
    assert version == "(3, 13)"
    assert module == f"{SITELIB}/ecr_login_pkg/__init__.py"
    assert not [entry for entry in path if "dist-packages" in entry or entry.startswith("/usr/local")], path
    # The byte-code the RPM ships is the one this interpreter uses.
    cached = in_tree(trixie, "/usr/bin/python3.13", "-S", "-sP", "-c",
                     "import ecr_login_pkg.cli as m; print(m.__cached__)", env=env)
    assert cached.stdout.strip() == f"{SITELIB}/ecr_login_pkg/__pycache__/cli.cpython-313.pyc", cached.stderr
    command = ["/usr/bin/python3.13", "-S", "-sP", "/usr/bin/ecr-login"]
    assert in_tree(trixie, *command, "--version", env=env).stdout.strip() == f"ecr-login {VERSION}"
    assert in_tree(trixie, *command, "--help", env=env).returncode == 0
    assert in_tree(trixie, *command, "--no-such-option", env=env).returncode == 64
    # A configuration error is found and reported without botocore (not installed here).
    broken = in_tree(trixie, *command, "--config", "/nonexistent/ecr-login.conf", "--dry-run", env=env)
    assert broken.returncode == 78, broken.stdout + broken.stderr
    assert "Traceback" not in broken.stderr
