"""`make dist`'s release tarball builds every package with no git at all (#12.5).

The tarball is unpacked outside any repository and `make deb`, `make stdeb`
and `make rpm` (both targets) run there with git unusable (GIT_DIR points
nowhere, and git itself is hidden from PATH), as on a host that downloaded
the release.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool

pytestmark = pytest.mark.slow

_MATCH = re.search(r'__version__ = "([^"]+)"', (REPO_ROOT / "ecr_login_pkg" / "__init__.py").read_text())
assert _MATCH
VERSION = _MATCH.group(1)


def _make(cwd: Path, *args: str, env: dict[str, str]) -> None:
    done = subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_every_package_builds_from_the_unpacked_release_tarball(tmp_path: Path) -> None:
    for tool in ("make", "dpkg-buildpackage", "rpmbuild", "/usr/bin/python3"):
        require_tool(tool)
    dist = tmp_path / "dist"
    _make(REPO_ROOT, "dist", f"OUT={dist}", env=dict(os.environ))
    tarball = dist / f"ecr-login-{VERSION}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        junk = [n for n in names if "/.git/" in n or n.endswith("/.git") or "__pycache__" in n or "_cache" in n]
        assert not junk, f"VCS data or caches shipped: {junk[:5]}"
        assert f"ecr-login-{VERSION}/debian/rules" in names and f"ecr-login-{VERSION}/rpm/ecr-login.spec" in names
        tar.extractall(tmp_path / "unpacked")
    tree = tmp_path / "unpacked" / f"ecr-login-{VERSION}"
    # No git: a PATH without it (only Debian's directories and a bin with the
    # python3.X the RPM targets need, found as rpm/build.sh finds them).
    bindir = tmp_path / "bin"
    bindir.mkdir()
    from test_rpm import TARGETS, target_python

    for _, python in TARGETS.values():
        (bindir / f"python{python}").symlink_to(target_python(python))
    env = {**os.environ, "PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "GIT_DIR": str(tmp_path / "no-such-git-dir"),
           "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    if os.path.exists("/usr/bin/git"):
        # git is on Debian's PATH here: prove the builds do not call it.
        (bindir / "git").write_text("#!/bin/sh\necho 'git called by the build' >&2\nexit 97\n")
        (bindir / "git").chmod(0o755)
    out = tmp_path / "out"
    _make(tree, "deb", f"OUT={out}", env=env)
    _make(tree, "stdeb", f"OUT={out}", env=env)
    _make(tree, "rpm", f"OUT={out}", env=env)
    _make(tree, "rpm", "RPM_TARGET=el9", f"OUT={out}", env=env)
    built = sorted(p.name for p in [*out.glob("*"), *out.glob("stdeb/*")] if p.suffix in (".deb", ".rpm", ".dsc"))
    assert built == sorted([
        f"ecr-login-{VERSION}-1.el9.noarch.rpm", f"ecr-login-{VERSION}-1.el9.src.rpm",
        f"ecr-login-{VERSION}-1.fc42.noarch.rpm", f"ecr-login-{VERSION}-1.fc42.src.rpm",
        f"ecr-login_{VERSION}-1.dsc", f"ecr-login_{VERSION}-1_all.deb", f"ecr-login_{VERSION}-1_all.deb",
    ]), built
