"""The signed apt repository (issue #10.3): install by name, signature checked, upgrade.

``make repo`` (tools/make-repo.sh) writes static files; here they are served
over HTTP on the host's loopback (the guest shares the host network) and a
pristine Debian guest uses them exactly as a fleet host would: it gets
``ecr-login.sources`` (deb822, the key inline in ``Signed-By:``) and runs
``apt-get update && apt-get install ecr-login`` by name. A tampered
``InRelease`` is refused. Then a newer build is added to the same repository
and ``apt-get upgrade`` installs it, keeping the administrator's edited
conffile.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from apt_repo import MAKE_REPO, make_repo, signed_repository
from conftest import require_tool
from guest import SUITE as GUEST_SUITE
from guest import Guest, pristine_tarball
from test_lifecycle import (  # noqa: F401  (debs is a fixture)
    APT,
    APT_ENV,
    Debs,
    Steps,
    _print_timing,
    apt_install,
    assert_timer_scheduled,
    debs,
    package_state,
)

CONF = "/etc/ecr-login/ecr-login.conf"


# --- the script on its own -------------------------------------------------------------


def test_make_repo_refuses_bad_input(tmp_path: Path) -> None:
    for argv, code, words in (
        ([], 64, "no package given"),
        (["x.deb"], 64, "no repository URI"),
        (["--uri", "apt.example.org", "x.deb"], 64, "not a URI"),
        (["--uri", "https://apt.example.org", str(tmp_path / "missing.deb")], 66, "no such package file"),
        (["--uri", "https://apt.example.org", "--key", "nobody@example.invalid", str(MAKE_REPO)], 78, "no such secret key"),
    ):
        env = {**os.environ, "GNUPGHOME": str(tmp_path / "empty-gnupg")}
        (tmp_path / "empty-gnupg").mkdir(mode=0o700, exist_ok=True)
        done = subprocess.run(
            ["bash", str(MAKE_REPO), "--out", str(tmp_path / "repo"), *argv], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == code and words in done.stderr, (argv, done)
    assert not (tmp_path / "repo" / "dists").exists(), "a refused run wrote a repository"


def test_make_repo_signs_with_the_named_key(debs: Debs, tmp_path: Path) -> None:  # noqa: F811  (the fixture imported above)
    """REPO_KEY= names a key of the caller's keyring: InRelease verifies against the exported keyring, only it."""
    require_tool("gpgv")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    generate = ["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", "Release Team <release@example.org>"]
    subprocess.run([*generate, "ed25519", "sign", "1d"], env=env, check=True, capture_output=True)
    try:
        listed = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True, capture_output=True, text=True
        )
        fingerprint = next(line.split(":")[9] for line in listed.stdout.splitlines() if line.startswith("fpr:"))
        out = tmp_path / "repo"
        make_repo(out, "https://apt.example.org/ecr-login", debs.current, key="release@example.org", env=env)
        keyring = out / "ecr-login-archive-keyring.gpg"
        verified = subprocess.run(
            ["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(out / "dists/stable/InRelease")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0 and f"VALIDSIG {fingerprint}" in verified.stdout, verified
        sources = (out / "ecr-login.sources").read_text()
        assert "URIs: https://apt.example.org/ecr-login" in sources and fingerprint in sources
        assert "trusted" not in sources.lower()
        assert not (tmp_path / "repo-gnupg").exists(), "a throwaway key was made although REPO_KEY was given"
        # A changed byte of the signed text fails the check.
        inrelease = (out / "dists/stable/InRelease").read_text()
        (out / "tampered").write_text(inrelease.replace("Suite: stable", "Suite: stabl3", 1))
        refused = subprocess.run(
            ["gpgv", "--keyring", str(keyring), str(out / "tampered")], capture_output=True, text=True, check=False
        )
        assert refused.returncode != 0 and "BAD signature" in refused.stderr, refused
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)


# --- a host installs and upgrades from it -------------------------------------------------


@pytest.mark.guest
@pytest.mark.slow
@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_install_and_upgrade_from_the_signed_repository(
    debs: Debs,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    suite: str,
) -> None:
    """On Debian 12 and 13 (apt 2.6 with gpgv, apt 3.0 with its own verifier), the .deb built here."""
    step = Steps()
    tarball = None
    if suite != GUEST_SUITE:
        with step(f"a pristine {suite} tree (debootstrapped once, then cached)"):
            tarball = pristine_tarball(suite=suite)
        # trixie's systemd no longer boots on this host's hybrid cgroup hierarchy: give it cgroup v2.
        monkeypatch.setenv("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
    with signed_repository(tmp_path / "repo") as repo:
        with step("make repo with this build"):
            repo.publish(debs.current)
            assert f"URIs: {repo.url}\n" in repo.sources, repo.sources
        with Guest(tarball=tarball) as guest:  # no bind: the package comes from the repository only
            with step("a tampered InRelease is refused"):
                repo.add_to(guest)
                inrelease = repo.directory / "dists/stable/InRelease"
                signed = inrelease.read_text()
                inrelease.write_text(signed.replace("Suite: stable", "Suite: stabl3", 1))
                try:
                    refused = guest.run(["apt-get", "-q", "update"], check=False, timeout=300)
                finally:
                    inrelease.write_text(signed)
                output = refused.stdout + refused.stderr
                assert refused.returncode != 0 and re.search(r"BADSIG|[Ss]ignature", output), output
                assert re.search(r"^E: The repository '\S+ stable InRelease' is not signed", output, re.M), output
                # Nothing from it is known: the package cannot be installed from a repository that fails the check.
                unknown = guest.run(["apt-cache", "policy", "ecr-login"], check=False).stdout
                assert "Candidate: (none)" in unknown or not unknown.strip(), unknown

            with step("apt-get update && apt-get install ecr-login, by name"):
                repo.update(guest)
                repo.assert_candidate(guest, debs.version)
                apt_install(guest, "ecr-login")
                assert package_state(guest, "${Status} ${Version}") == f"install ok installed {debs.version}"
                repo.assert_downloaded(debs.current)
                assert_timer_scheduled(guest, "ecr-login.timer")

            with step("the administrator edits a conffile"):
                edited = guest.read_file(CONF) + "\n# edited by the administrator (tests/test_repo.py)\n"
                guest.write_file(CONF, edited)

            with step("a newer build in the same repository: apt-get upgrade"):
                repo.publish(debs.upgrade)
                pool = sorted(p.name for p in (repo.directory / "pool").rglob("*.deb"))
                assert pool == sorted([debs.current.name, debs.upgrade.name]), pool
                repo.update(guest)
                repo.assert_candidate(guest, debs.upgrade_version)
                guest.run([*APT, "upgrade"], env=APT_ENV, timeout=600)
                assert package_state(guest, "${Version}") == debs.upgrade_version
                repo.assert_downloaded(debs.upgrade)
                assert guest.read_file(CONF) == edited
                assert not guest.run("ls /etc/ecr-login | grep -E 'dpkg-(new|old|dist)'", check=False).stdout
                assert_timer_scheduled(guest, "ecr-login.timer")
                assert guest.run(["ecr-login", "--version"]).stdout.strip().startswith("ecr-login ")
    _print_timing(capsys, step.report(f"signed apt repository ({suite})"))
    step.check_soft()
