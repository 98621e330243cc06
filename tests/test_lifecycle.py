"""The packages' whole life on a real systemd: install, run, upgrade, remove, purge.

Each test boots a pristine Debian 12 (tests/guest.py: systemd-nspawn, a
fresh copy of a cached debootstrap) and drives it the way an administrator
would: apt installs the .deb built from this tree (the main lifecycle by
name from the signed apt repository ``make repo`` writes, served on
loopback: tests/apt_repo.py), systemd runs the units, journald keeps the log. The stand-in ECR API and the docker-registry run on
the host's loopback, which the guest shares; the stand-in names the local
registry as the account's default registry (its proxyEndpoint), so the
zero-config default login is one the registry really checks.

The guest installs without Recommends: the only docker CLI in Debian 12 comes
with the daemon (docker.io, some 80 packages). Without a docker CLI
ecr-login's default store is the file store, which writes the same
~/.docker/config.json; one test binds the host's static docker CLI into the
guest to run the docker store under the hardened unit.

Set ECR_LOGIN_DEB (and ECR_LOGIN_RPM) to test prebuilt packages instead of
building this tree.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from apt_repo import SignedRepository, signed_repo  # noqa: F401  (signed_repo is a fixture)
from conftest import require_tool
from guest import Guest, require_guest_support
from local_registry import DOCKER_REGISTRY, LocalRegistry, basic_token, build_oci_layout, skopeo_copy, write_auth_file
from standin_ecr import StandinECR

pytestmark = [pytest.mark.guest, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
IMAGE = "lifecycle/hello"
TAG = "v1"
SERVICE_HOME = "/var/lib/ecr-login"
SERVICE_AUTH = f"{SERVICE_HOME}/.docker/config.json"
APT = ["apt-get", "-q", "-y", "--no-install-recommends"]
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


# --- packages under test ------------------------------------------------------------


def _copy_tree(destination: Path) -> Path:
    """The working tree as git sees it (committed or not), without build output."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    destination.mkdir(parents=True)
    for name in filter(None, listing):
        source = REPO / os.fsdecode(name)
        if not source.exists():  # deleted but not yet committed
            continue
        target = destination / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return destination


def _changelog_version(tree: Path) -> str:
    return subprocess.run(
        ["dpkg-parsechangelog", "-S", "Version"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.strip()


def _build(command: list[str], cwd: Path, what: str) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        pytest.fail(
            f"{what}: {' '.join(command)} failed with exit {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


@dataclass
class Debs:
    current: Path
    upgrade: Path
    version: str
    upgrade_version: str
    build_seconds: float


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    """This tree's .deb (``make deb``) and a newer build of it for the upgrade.

    The newer build is the same tree with one more debian/changelog entry,
    built with the canonical ``dpkg-buildpackage -us -uc -b``: an upgrade
    whose conffiles are unchanged, so dpkg must keep the admin's edits
    without asking.
    """
    require_guest_support()
    for tool in ("make", "dpkg-buildpackage", "dpkg-parsechangelog", "git"):
        require_tool(tool)
    started = time.monotonic()
    base = tmp_path_factory.mktemp("debs")
    version = _changelog_version(REPO)
    prebuilt = os.environ.get("ECR_LOGIN_DEB")
    if prebuilt:
        current = Path(prebuilt).resolve()
    else:
        _build(["make", "deb", f"OUT={base / 'current'}"], REPO, "building the .deb")
        current = base / "current" / f"ecr-login_{version}_all.deb"
    assert current.is_file(), f"no package at {current}"

    upgrade_version = f"{version}+lifecycle1"
    tree = _copy_tree(base / "next" / f"ecr-login-{upgrade_version}")
    changelog = tree / "debian" / "changelog"
    stamp = subprocess.run(["date", "-R"], capture_output=True, text=True, check=True).stdout.strip()
    entry = (
        f"ecr-login ({upgrade_version}) unstable; urgency=medium\n\n"
        "  * Rebuild for the upgrade step of tests/test_lifecycle.py.\n\n"
        f" -- ecr-login developers <ecr-login@example.org>  {stamp}\n\n"
    )
    changelog.write_text(entry + changelog.read_text())
    # Debian's interpreters, as `make deb` (DEB_PATH): pybuild runs python3.X by name.
    _build(["env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "dpkg-buildpackage", "-us", "-uc", "-b"], tree,
           "building the upgrade .deb")
    upgrade = tree.parent / f"ecr-login_{upgrade_version}_all.deb"
    assert upgrade.is_file()
    return Debs(current, upgrade, version, upgrade_version, time.monotonic() - started)


@pytest.fixture(scope="session")
def rpm_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree's noarch RPM (rpm/build.sh, what ``make rpm`` runs)."""
    require_guest_support()
    prebuilt = os.environ.get("ECR_LOGIN_RPM")
    if prebuilt:
        return Path(prebuilt).resolve()
    for tool in ("rpmbuild", "rpm", "make"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("rpm")
    # The RHEL 9 target: Debian's rpm 4.18, like RHEL 9's, does not create
    # sysusers.d users itself, so this build's %pre does (Fedora 42's has none).
    _build(["bash", "rpm/build.sh", "--target", "el9", "--outdir", str(out), "--no-lint"], REPO, "building the RPM")
    found = sorted(out.glob("ecr-login-*.noarch.rpm"))
    assert len(found) == 1, f"expected one noarch RPM in {out}: {found}"
    return found[0]


# --- the stand-in AWS and the registry --------------------------------------------------


@dataclass
class Backends:
    """Stand-in ECR API + registry on the host's loopback, sharing one password."""

    ecr: StandinECR
    registry: LocalRegistry
    password: str
    access_key: str
    secret_key: str
    image_digest: str

    @property
    def image(self) -> str:
        return f"{self.registry.address}/{IMAGE}:{TAG}"

    @property
    def secrets(self) -> dict[str, str]:
        """Strings that must never show in a journal or on a command line."""
        return {
            "registry password": self.password,
            "AWS secret key": self.secret_key,
            "token (base64 AWS:password)": basic_token(self.password),
        }

    def environment_file(self) -> str:
        return (
            "# written by tests/test_lifecycle.py\n"
            f"AWS_ACCESS_KEY_ID={self.access_key}\n"
            f"AWS_SECRET_ACCESS_KEY={self.secret_key}\n"
            f"AWS_REGION={REGION}\n"
            f"AWS_ENDPOINT_URL_ECR={self.ecr.url}\n"
        )


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Backends]:
    """A registry holding one tiny image, and a stand-in whose default registry is it."""
    require_tool(DOCKER_REGISTRY)
    require_tool("htpasswd")
    require_tool("skopeo")
    password = secrets.token_urlsafe(24)
    access_key = "AKIDLIFECYCLE" + secrets.token_hex(4).upper()
    secret_key = secrets.token_urlsafe(30)
    with LocalRegistry(password, workdir=tmp_path / "registry") as registry:
        layout = tmp_path / "image"
        digest = build_oci_layout(layout, TAG, content="pulled through the login ecr-login stored\n")
        auth = write_auth_file(tmp_path / "push-auth.json", registry.address, basic_token(password))
        skopeo_copy(f"oci:{layout}:{TAG}", f"docker://{registry.address}/{IMAGE}:{TAG}", auth)
        with StandinECR(
            password,
            proxy_endpoint_template=registry.url,
            credentials={access_key: secret_key},
        ) as ecr:
            yield Backends(ecr, registry, password, access_key, secret_key, digest)


# --- helpers on the guest ------------------------------------------------------------


@dataclass
class Steps:
    """Named, timed steps: a failure says which step, the summary says how long."""

    started: float = field(default_factory=time.monotonic)
    durations: list[tuple[str, float]] = field(default_factory=list)
    soft_failures: list[str] = field(default_factory=list)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        except BaseException as exc:
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note(f"(in lifecycle step: {name})")
            raise
        finally:
            self.durations.append((name, time.monotonic() - began))

    @contextmanager
    def soft(self, name: str) -> Iterator[None]:
        """A check later steps do not depend on: a failure is recorded, the test goes on."""
        with self(name):
            try:
                yield
            except AssertionError as exc:
                self.soft_failures.append(f"{name}: {exc}")

    def check_soft(self) -> None:
        if self.soft_failures:
            pytest.fail("checks failed along the way:\n\n" + "\n\n".join(self.soft_failures))

    def report(self, title: str) -> str:
        total = time.monotonic() - self.started
        lines = [f"{title}: {total:.1f} s"]
        lines += [f"  {seconds:6.1f} s  {name}" for name, seconds in self.durations]
        return "\n".join(lines)


def _print_timing(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


def package_state(guest: Guest, field: str = "${Status}") -> str:
    return guest.run(["dpkg-query", "-W", f"-f={field}", "ecr-login"], check=False).stdout


def apt_install(guest: Guest, *packages: str) -> str:
    return guest.run([*APT, "install", *packages], env=APT_ENV, timeout=600).stdout


def assert_timer_scheduled(guest: Guest, timer: str) -> None:
    assert guest.run(["systemctl", "is-enabled", timer], check=False).stdout.strip() == "enabled"
    assert guest.run(["systemctl", "is-active", timer], check=False).stdout.strip() == "active"
    listed = guest.run(["systemctl", "list-timers", "--all", "--no-pager", "--no-legend"]).stdout
    assert re.search(rf"\s{re.escape(timer)}\s", listed + " "), f"{timer} not in list-timers:\n{listed}"


def assert_no_secret(text: str, backends: Backends, where: str) -> None:
    for label, value in backends.secrets.items():
        assert value not in text, f"the {label} appears in {where}"


def wait_out_timer_tick(guest: Guest, timer: str = "ecr-login.timer", margin: float = 45.0) -> None:
    """If ``timer`` fires within ``margin`` seconds, wait until that run is over.

    The package starts the timer at install (first tick 2 min after boot,
    then a quarter-hourly one with a per-host offset). A tick that lands
    while a test is configuring the service would run half-configured and
    race the test's own ``systemctl start``; waiting it out keeps the test
    deterministic without changing the package's schedule. The same for the
    run the timer starts whenever it starts (its Wants=: at boot, and at
    install), which may still be going: a ``systemctl start`` would join it.
    """
    service = timer.replace(".timer", ".service")
    deadline = time.monotonic() + 150
    while guest.run(["systemctl", "is-active", service], check=False).stdout.strip() == "activating":
        if time.monotonic() > deadline:
            raise AssertionError(f"{service} still running after 150 s")
        time.sleep(0.5)
    line = guest.run(["systemctl", "list-timers", "--all", "--no-legend", "--no-pager", timer]).stdout.strip()
    fields = line.split()
    if len(fields) < 4 or fields[0] in ("-", "n/a"):
        return
    left = int(guest.run(["date", "-d", " ".join(fields[:4]), "+%s"]).stdout) - int(guest.run(["date", "+%s"]).stdout)
    if left > margin:
        return
    deadline = time.monotonic() + max(left, 0) + 120
    while time.monotonic() < deadline:
        fired = guest.systemctl_show(timer, "LastTriggerUSec")["LastTriggerUSec"] not in ("", "n/a", "0")
        if fired and guest.run(["systemctl", "is-active", service], check=False).stdout.strip() != "activating":
            return
        time.sleep(1)
    raise AssertionError(f"{timer} was due in {left} s but its run did not finish")


def start_service(guest: Guest, unit: str) -> dict[str, str]:
    """systemctl start a oneshot; return Result/ExecMainStatus (no exception on failure)."""
    guest.run(["systemctl", "start", unit], check=False, timeout=180)
    return guest.systemctl_show(unit, "Result", "ExecMainStatus", "ActiveState", "InvocationID")


def assert_login_works(guest: Guest, backends: Backends, user: str, authfile: str) -> None:
    """skopeo as ``user``, credentials only from ``authfile``, pulls the image."""
    empty_home = f"/tmp/skopeo-home-{user}"
    guest.run(["install", "-d", "-o", user, "-m", "0700", empty_home])
    env = {"HOME": empty_home, "XDG_RUNTIME_DIR": empty_home, "XDG_CONFIG_HOME": f"{empty_home}/.config"}
    ref = f"docker://{backends.image}"
    # The registry really checks: with no login the same pull is refused.
    guest.write_file(f"{empty_home}/none.json", '{"auths": {}}\n', owner=f"{user}:{user}", mode=0o600)
    refused = guest.run(
        ["skopeo", "inspect", "--tls-verify=false", "--authfile", f"{empty_home}/none.json", ref], user=user, env=env, check=False
    )
    assert refused.returncode != 0 and re.search(r"unauthorized|authentication required", refused.stderr, re.I), refused
    inspected = guest.run(["skopeo", "inspect", "--tls-verify=false", "--authfile", authfile, ref], user=user, env=env)
    assert json.loads(inspected.stdout)["Digest"] == backends.image_digest
    target = f"{empty_home}/pulled"
    guest.run(
        ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--authfile", authfile, ref, f"oci:{target}:{TAG}"],
        user=user,
        env=env,
    )
    index = json.loads(guest.read_file(f"{target}/index.json"))
    assert index["manifests"][0]["digest"] == backends.image_digest


def stored_auth(guest: Guest, path: str, registry_address: str) -> str:
    data = json.loads(guest.read_file(path))
    entry = data.get("auths", {}).get(registry_address)
    assert entry and entry.get("auth"), f"no login for {registry_address} in {path}: keys {list(data.get('auths', {}))}"
    return str(entry["auth"])


# --- the tests ------------------------------------------------------------------------


def test_deb_lifecycle(
    debs: Debs,
    backends: Backends,
    signed_repo: SignedRepository,  # noqa: F811  (the fixture imported above)
    capsys: pytest.CaptureFixture[str],
) -> None:
    """apt-get install by name → timer → configure → run → apt-get upgrade → remove → purge → reinstall.

    The packages come from the signed apt repository ``make repo`` writes
    (served on loopback), as a fleet host gets them (#10.3): never a .deb file.
    """
    step = Steps()
    guest = Guest()  # no bind: the package comes from the repository only
    try:
        with step("make repo with this build"):
            signed_repo.publish(debs.current)
        with step("boot pristine guest"):
            guest.start()

        with step("apt-get update && apt-get install ecr-login, by name from the signed repository"):
            signed_repo.add_to(guest)
            signed_repo.update(guest)
            signed_repo.assert_candidate(guest, debs.version)
            apt_install(guest, "ecr-login")
            assert package_state(guest, "${Status} ${Version}") == f"install ok installed {debs.version}"
            signed_repo.assert_downloaded(debs.current)

        with step("service user"):
            _, _, uid, gid, _, home, shell = guest.run(["getent", "passwd", "ecr-login"]).stdout.strip().split(":")
            sys_uid_max = int(guest.run("awk '$1 == \"SYS_UID_MAX\" {print $2}' /etc/login.defs").stdout.strip() or 999)
            assert 0 < int(uid) <= sys_uid_max, f"ecr-login has uid {uid}: not a system user"
            assert home == SERVICE_HOME
            assert shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
            assert guest.run(["getent", "group", gid]).stdout.split(":")[0] == "ecr-login"
            assert guest.run(["stat", "-c", "%U %a", SERVICE_HOME]).stdout.split() == ["ecr-login", "700"]

        with step("timer enabled, active, listed"):
            assert_timer_scheduled(guest, "ecr-login.timer")
            assert guest.run(["stat", "-c", "%a %U", "/etc/default/ecr-login"]).stdout.split() == ["600", "root"]

        with step("nothing set up yet: a run ends with one notice, not a failed unit (#13.3)"):
            wait_out_timer_tick(guest)
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert "not set up on this host" in journal and "ecr-login doctor" in journal, journal
            assert guest.run(["systemctl", "is-failed", "ecr-login.service"], check=False).stdout.strip() != "failed"

        with step("configure /etc/default/ecr-login and start the service"):
            wait_out_timer_tick(guest)
            guest.write_file("/etc/default/ecr-login", backends.environment_file(), mode=0o600)
            calls_before = backends.ecr.call_count
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert backends.ecr.call_count == calls_before + 1, "the service did not ask the stand-in for a token"
            assert "refreshed" in journal and "ecr-login[" in journal, journal

        with step("no secret in the journal"):
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")

        with step("the stored login is accepted by the registry"):
            assert stored_auth(guest, SERVICE_AUTH, backends.registry.address) == basic_token(backends.password)
            assert guest.run(["stat", "-c", "%a %U", SERVICE_AUTH]).stdout.split() == ["600", "ecr-login"]
            assert_login_works(guest, backends, "ecr-login", SERVICE_AUTH)

        with step.soft("ecr-login status as the service user"):
            status = guest.run(["ecr-login", "status"], user="ecr-login", check=False)
            if status.returncode != 0:  # say whether the service's settings are what it lacks
                settings = {"AWS_REGION": REGION, "AWS_ENDPOINT_URL_ECR": backends.ecr.url}
                again = guest.run(["ecr-login", "status"], user="ecr-login", check=False, env=settings)
                assert status.returncode == 0, f"{status}\n(the same with {settings} in its environment: {again})"
            assert backends.registry.address in status.stdout, status.stdout
            assert_no_secret(status.stdout + status.stderr, backends, "ecr-login status")

        with step.soft("ecr-login doctor: the timer is enabled and scheduled (#9.6)"):
            done = guest.run(["ecr-login", "doctor", "--json"], check=False, env={"AWS_EC2_METADATA_DISABLED": "true"})
            timer = {check["check"]: check for check in json.loads(done.stdout)["checks"]}["timer"]
            assert timer["status"] == "ok", done
            assert timer["detail"].startswith("ecr-login.timer enabled; next run "), timer
            assert_no_secret(done.stdout + done.stderr, backends, "ecr-login doctor")

        with step("a second run is a no-op"):
            calls_before = backends.ecr.call_count
            assert start_service(guest, "ecr-login.service")["Result"] == "success"
            assert backends.ecr.call_count == calls_before, "a run with a fresh login called AWS"

        with step("edited conffiles survive apt-get upgrade to a newer build in the same repository"):
            conf = "/etc/ecr-login/ecr-login.conf"
            edited = guest.read_file(conf) + "\n# edited by the administrator (lifecycle test)\n"
            guest.write_file(conf, edited)
            signed_repo.publish(debs.upgrade)
            signed_repo.update(guest)
            signed_repo.assert_candidate(guest, debs.upgrade_version)
            guest.run([*APT, "upgrade"], env=APT_ENV, timeout=600)
            assert package_state(guest, "${Version}") == debs.upgrade_version
            signed_repo.assert_downloaded(debs.upgrade)
            assert guest.read_file(conf) == edited
            assert guest.read_file("/etc/default/ecr-login") == backends.environment_file()
            assert guest.run(["stat", "-c", "%a", "/etc/default/ecr-login"]).stdout.strip() == "600"
            assert not guest.run("ls /etc/ecr-login /etc/default | grep -E 'dpkg-(new|old|dist)'", check=False).stdout
            assert_timer_scheduled(guest, "ecr-login.timer")
            assert start_service(guest, "ecr-login.service")["Result"] == "success"

        with step("apt-get remove keeps configuration and state"):
            guest.run([*APT, "remove", "ecr-login"], env=APT_ENV)
            assert package_state(guest) == "deinstall ok config-files"
            assert guest.read_file(conf) == edited
            assert guest.read_file("/etc/default/ecr-login") == backends.environment_file()
            assert stored_auth(guest, SERVICE_AUTH, backends.registry.address)
            # The unit files are gone and nothing is scheduled. (The enablement
            # symlink stays until purge, as dh_installsystemd does, so
            # `list-timers --all` still names the not-found unit.)
            shown = guest.systemctl_show("ecr-login.timer", "LoadState", "ActiveState")
            assert shown == {"LoadState": "not-found", "ActiveState": "inactive"}, shown
            assert "ecr-login.timer" not in guest.run(["systemctl", "list-timers", "--no-pager"]).stdout
            assert guest.run(["test", "-e", "/usr/bin/ecr-login"], check=False).returncode != 0

        with step("apt-get purge removes configuration and credentials"):
            guest.run([*APT, "purge", "ecr-login"], env=APT_ENV)
            assert package_state(guest) in (
                "",
                "unknown ok not-installed",
            )
            for path in ("/etc/ecr-login", "/etc/default/ecr-login", SERVICE_HOME):
                assert guest.run(["test", "-e", path], check=False).returncode != 0, f"{path} survived purge"
            left = guest.run("grep -rl ecr-login /etc/systemd/system /var/lib/systemd/timers 2>/dev/null; true").stdout
            assert not left.strip(), f"purge left unit state behind:\n{left}"
            # The system user stays (Debian's advice: a UID is never reused).
            assert guest.run(["getent", "passwd", "ecr-login"], check=False).returncode == 0

        with step("reinstall by name works (the repository's newest build)"):
            apt_install(guest, "ecr-login")
            assert package_state(guest, "${Status} ${Version}") == f"install ok installed {debs.upgrade_version}"
            assert_timer_scheduled(guest, "ecr-login.timer")
            assert guest.run(["stat", "-c", "%U %a", SERVICE_HOME]).stdout.split() == ["ecr-login", "700"]
            assert backends.access_key not in guest.read_file("/etc/default/ecr-login"), "purged settings came back"
            wait_out_timer_tick(guest)
            guest.write_file("/etc/default/ecr-login", backends.environment_file(), mode=0o600)
            shown = start_service(guest, "ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{guest.journal('ecr-login.service')}"
            assert_login_works(guest, backends, "ecr-login", SERVICE_AUTH)

        with step("no secret in the journal, whole boot"):
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
        with step("stop the guest"):
            guest.stop()
    finally:
        guest.stop()
    _print_timing(
        capsys,
        step.report("lifecycle test (deb)")
        + f"\n  (guest: unpack {guest.timings.get('unpack', 0):.1f} s, boot {guest.timings.get('boot', 0):.1f} s,"
        f" degraded: {guest.failed_units or 'no'}; package builds before the test: {debs.build_seconds:.1f} s)",
    )
    step.check_soft()


def test_template_unit_for_a_build_user(debs: Debs, backends: Backends, capsys: pytest.CaptureFixture[str]) -> None:
    """ecr-login@builder keeps builder's own ~/.docker/config.json fresh."""
    step = Steps()
    with Guest(bind_ro={debs.current.parent: "/srv/current"}) as guest:
        with step("install"):
            guest.run(["apt-get", "-q", "update"], timeout=300)
            apt_install(guest, f"/srv/current/{debs.current.name}")
        with step("enable ecr-login@builder.timer"):
            guest.run(["useradd", "--create-home", "--shell", "/bin/bash", "builder"])
            # Per-user AWS settings; /etc/default/ecr-login is for the system service only.
            guest.write_file("/etc/default/ecr-login@builder", backends.environment_file(), mode=0o600)
            guest.run(["systemctl", "enable", "--now", "ecr-login@builder.timer"])
            assert_timer_scheduled(guest, "ecr-login@builder.timer")
        with step("run ecr-login@builder.service"):
            shown = start_service(guest, "ecr-login@builder.service")
            journal = guest.journal("ecr-login@builder.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            auth = "/home/builder/.docker/config.json"
            assert stored_auth(guest, auth, backends.registry.address) == basic_token(backends.password)
            assert guest.run(["stat", "-c", "%a %U %G", auth]).stdout.split() == ["600", "builder", "builder"]
            assert guest.run(["test", "-e", SERVICE_AUTH], check=False).returncode != 0, "the system service's login was written"
            assert_login_works(guest, backends, "builder", auth)
        with step.soft("ecr-login status as builder"):
            status = guest.run(["ecr-login", "status"], user="builder", check=False)
            assert status.returncode == 0, status
        with step("no secret in the journal"):
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
        with step("remove stops the instance"):
            guest.run([*APT, "remove", "ecr-login"], env=APT_ENV)
            assert guest.run(["systemctl", "is-active", "ecr-login@builder.timer"], check=False).stdout.strip() != "active"
            # builder's own login is builder's file: remove and purge leave it.
            guest.run([*APT, "purge", "ecr-login"], env=APT_ENV)
            assert stored_auth(guest, auth, backends.registry.address)
    _print_timing(capsys, step.report("template unit test"))
    step.check_soft()


def test_rpm_scriptlets_on_systemd(rpm_package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rpm -i creates the user and enables the timer; rpm -e removes the timer."""
    step = Steps()
    with Guest(bind_ro={rpm_package.parent: "/srv/rpm"}) as guest:
        with step("install rpm"):
            guest.run(["apt-get", "-q", "update"], timeout=300)
            apt_install(guest, "rpm")
        with step("rpm -i"):
            installed = guest.run(["rpm", "-i", "--nodeps", f"/srv/rpm/{rpm_package.name}"], check=False)
            assert installed.returncode == 0, installed
            _, _, uid, _, _, home, _ = guest.run(["getent", "passwd", "ecr-login"]).stdout.strip().split(":")
            assert int(uid) < 1000 and home == SERVICE_HOME
            # %systemd_post presets and does not start: Debian's preset policy
            # enables the timer (on Fedora/RHEL, with no preset shipped, the
            # administrator enables it); it runs from the next boot on.
            assert guest.run(["systemctl", "is-enabled", "ecr-login.timer"], check=False).stdout.strip() == "enabled"
            wants = "/etc/systemd/system/timers.target.wants/ecr-login.timer"
            assert guest.run(["test", "-L", wants], check=False).returncode == 0
        with step("rpm -e"):
            guest.run(["systemctl", "start", "ecr-login.timer"])  # as after a reboot
            # An instance of the template, as an administrator starts one for a CI user.
            guest.run(["systemctl", "start", "ecr-login@root.timer"])
            erased = guest.run(["rpm", "-e", "--nodeps", "ecr-login"], check=False)
            assert erased.returncode == 0, erased
            # %preun stopped the instance too, as the Debian prerm does.
            instance = guest.run(["systemctl", "is-active", "ecr-login@root.timer"], check=False).stdout.strip()
            assert instance != "active", "rpm -e left ecr-login@root.timer running"
            shown = guest.systemctl_show("ecr-login.timer", "LoadState", "ActiveState")
            assert shown == {"LoadState": "not-found", "ActiveState": "inactive"}, shown
            assert guest.run(["test", "-e", wants], check=False).returncode != 0, "rpm -e left the timer enabled"
            assert "ecr-login.timer" not in guest.run(["systemctl", "list-timers", "--all", "--no-pager"]).stdout
    _print_timing(capsys, step.report("rpm scriptlet test"))
    step.check_soft()


HOST_DOCKER = "/usr/local/bin/docker"


def _is_static_elf(path: str) -> bool:
    """A 64-bit little-endian ELF without a program interpreter (runs in any root)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if header[:6] != b"\x7fELF\x02\x01":
                return False
            phoff = int.from_bytes(header[0x20:0x28], "little")
            phentsize = int.from_bytes(header[0x36:0x38], "little")
            phnum = int.from_bytes(header[0x38:0x3A], "little")
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except OSError:
        return False
    pt_interp = 3
    return all(int.from_bytes(table[i : i + 4], "little") != pt_interp for i in range(0, len(table), phentsize))


def test_docker_store_under_the_hardened_service(debs: Debs, backends: Backends, capsys: pytest.CaptureFixture[str]) -> None:
    """With a docker CLI present the service logs in through `docker login`, sandbox and all.

    Debian 12 ships no docker CLI without the daemon, so the host's CLI (a
    static binary) is bound read-only into the guest, where it is found on
    the service's PATH and becomes the default store.
    """
    docker = shutil.which("docker") or HOST_DOCKER
    if not _is_static_elf(docker):
        require_tool("a statically linked docker CLI (bound into the guest)")
    step = Steps()
    binds = {debs.current.parent: "/srv/current", Path(docker).resolve(): HOST_DOCKER}
    with Guest(bind_ro=binds) as guest:
        with step("install"):
            guest.run(["apt-get", "-q", "update"], timeout=300)
            apt_install(guest, f"/srv/current/{debs.current.name}")
        with step("run the service with the docker store"):
            wait_out_timer_tick(guest)
            guest.write_file("/etc/default/ecr-login", backends.environment_file(), mode=0o600)
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert re.search(r"\(docker\b", journal), f"the docker store was not used:\n{journal}"
            assert stored_auth(guest, SERVICE_AUTH, backends.registry.address) == basic_token(backends.password)
            assert guest.run(["stat", "-c", "%a %U", SERVICE_AUTH]).stdout.split() == ["600", "ecr-login"]
            assert_login_works(guest, backends, "ecr-login", SERVICE_AUTH)
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
    _print_timing(capsys, step.report("docker store test"))
    step.check_soft()


# --- the zero-config default under its real ECR name, over TLS ------------------------------

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)


def _make_ca_and_cert(directory: Path, host: str) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``host`` signed by it."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ecr-login tests CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(ca_key), "-out", str(ca_crt),
    )  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
    extensions = directory / "server.ext"
    extensions.write_text(f"subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(extensions), "-out", str(crt),
    )  # fmt: skip
    return ca_crt, crt, key


@contextmanager
def _tls_registry_on_443(workdir: Path, password: str, ca: Path, cert: Path, key: Path) -> Iterator[str]:
    """docker-registry with htpasswd auth and TLS on 127.0.0.1:443; yields its address."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 443))
        except OSError as exc:
            pytest.skip(f"127.0.0.1:443 is not free here ({exc})")
    htpasswd = workdir / "htpasswd"
    subprocess.run(
        ["htpasswd", "-i", "-B", "-c", str(htpasswd), "AWS"], input=password + "\n", text=True, check=True, capture_output=True
    )
    config = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}},
        "http": {
            "addr": "127.0.0.1:443",
            "secret": secrets.token_hex(16),
            "tls": {"certificate": str(cert), "key": str(key)},
        },
        "auth": {"htpasswd": {"realm": "ecr-login-tests", "path": str(htpasswd)}},
    }
    (workdir / "config.yml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with open(workdir / "registry.log", "wb") as log:
        process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(workdir / "config.yml")], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    try:
        import ssl
        import urllib.error
        import urllib.request

        context = ssl.create_default_context(cafile=str(ca))
        context.check_hostname = False
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (workdir / "registry.log").read_text()
            try:
                urllib.request.urlopen("https://127.0.0.1:443/v2/", context=context, timeout=2)
            except urllib.error.HTTPError as err:
                assert err.code == 401, f"/v2/ answered {err.code}"
                break
            except OSError:
                assert time.monotonic() < deadline, (workdir / "registry.log").read_text()
                time.sleep(0.1)
        yield "127.0.0.1:443"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_zero_config_default_registry_by_its_ecr_name(debs: Debs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The stand-in answers with ECR's own proxyEndpoint; the guest resolves that name to loopback.

    The login ecr-login stores is for https://123456789012.dkr.ecr.us-east-1.amazonaws.com,
    exactly as against AWS, and skopeo (TLS verified against a test CA the
    guest trusts) pulls through it: the zero-config default end to end.
    """
    for tool in (DOCKER_REGISTRY, "htpasswd", "skopeo", "openssl"):
        require_tool(tool)
    step = Steps()
    password = secrets.token_urlsafe(24)
    access_key = "AKIDLIFECYCLE" + secrets.token_hex(4).upper()
    secret_key = secrets.token_urlsafe(30)
    pki = tmp_path / "pki"
    pki.mkdir()
    ca, cert, key = _make_ca_and_cert(pki, ECR_HOST)
    (tmp_path / "registry").mkdir()
    with _tls_registry_on_443(tmp_path / "registry", password, ca, cert, key) as address:
        layout = tmp_path / "image"
        digest = build_oci_layout(layout, TAG, content="pulled from the default registry by its ECR name\n")
        push_auth = write_auth_file(tmp_path / "push-auth.json", address, basic_token(password))
        skopeo_copy(f"oci:{layout}:{TAG}", f"docker://{address}/{IMAGE}:{TAG}", push_auth)
        with (
            StandinECR(password, credentials={access_key: secret_key}) as ecr,
            Guest(bind_ro={debs.current.parent: "/srv/current", pki: "/srv/pki"}) as guest,
        ):
            with step("trust the test CA, point the ECR name at loopback"):
                guest.run(["cp", "/srv/pki/ca.crt", "/usr/local/share/ca-certificates/ecr-login-tests.crt"])
                guest.run(["update-ca-certificates"])
                guest.run(["sh", "-c", f"echo '127.0.0.1 {ECR_HOST}' >> /etc/hosts"])
            with step("install and run"):
                guest.run(["apt-get", "-q", "update"], timeout=300)
                apt_install(guest, f"/srv/current/{debs.current.name}")
                wait_out_timer_tick(guest)
                environment = (
                    f"AWS_ACCESS_KEY_ID={access_key}\nAWS_SECRET_ACCESS_KEY={secret_key}\n"
                    f"AWS_REGION={REGION}\nAWS_ENDPOINT_URL_ECR={ecr.url}\n"
                )
                guest.write_file("/etc/default/ecr-login", environment, mode=0o600)
                shown = start_service(guest, "ecr-login.service")
                assert shown["Result"] == "success", f"{shown}\n{guest.journal('ecr-login.service')}"
            with step("pull by the ECR name with the stored login, TLS verified"):
                assert stored_auth(guest, SERVICE_AUTH, ECR_HOST) == basic_token(password)
                home = "/tmp/skopeo-home"
                guest.run(["install", "-d", "-o", "ecr-login", "-m", "0700", home])
                env = {"HOME": home, "XDG_RUNTIME_DIR": home, "XDG_CONFIG_HOME": f"{home}/.config"}
                inspected = guest.run(
                    ["skopeo", "inspect", "--authfile", SERVICE_AUTH, f"docker://{ECR_HOST}/{IMAGE}:{TAG}"],
                    user="ecr-login",
                    env=env,
                )
                assert json.loads(inspected.stdout)["Digest"] == digest
                journal = guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout
                for value in (password, secret_key, basic_token(password)):
                    assert value not in journal
    _print_timing(capsys, step.report("zero-config default by ECR name (TLS)"))
    step.check_soft()
