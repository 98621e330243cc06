"""Boot a pristine Debian 12 with real systemd for package tests (systemd-nspawn).

Why: a unit file, a timer and a maintainer script are only proven when a
real systemd runs them. This module debootstraps Debian once into a cached
tarball, unpacks a fresh copy per guest, boots it with
``systemd-nspawn --boot`` and lets a test run commands in it, read its
journal and stop it. See ../shared/NOTES-real-systemd.md for the facts this
builds on (PID 1 of the host is not systemd, hence ``--register=no
--keep-unit``; ``machinectl`` does not work, hence ``nsenter``).

Shape:

- :func:`pristine_tarball` -- debootstrap ``--variant=minbase`` with
  :data:`INCLUDE` once; cached under :func:`cache_dir`, keyed by suite,
  mirror and package list, built under a lock (parallel runs wait).
- :class:`Guest` -- context manager: unpack, boot from a dedicated cgroup,
  wait for ``systemctl is-system-running``, then :meth:`Guest.run`,
  :meth:`Guest.write_file`, :meth:`Guest.copy_in`, :meth:`Guest.journal`,
  :meth:`Guest.stop`. Guests share the host network, so servers on the
  host's 127.0.0.1 are reachable from inside at 127.0.0.1.
- :func:`cleanup_leftovers` -- every guest records its processes and
  cgroups; a later run stops guests whose owner died (a killed pytest) by
  their recorded ids, never by name.

Standard library only; needs root, systemd-nspawn (systemd-container),
debootstrap, nsenter and zstd or gzip. Run ``python3 tests/guest.py`` to
build the tarball and boot a guest once (a smoke check).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "INCLUDE",
    "SUITE",
    "Guest",
    "GuestCommandError",
    "GuestError",
    "cache_dir",
    "cleanup_leftovers",
    "host_mirror",
    "missing_tools",
    "pristine_tarball",
    "unsupported_reasons",
]

SUITE = "bookworm"

#: Packages debootstrap adds to minbase. systemd + systemd-sysv + dbus boot;
#: python3-boto3 brings python3-botocore, ecr-login's dependency (kept as
#: boto3 so the cached tarballs stay valid), and adduser what a maintainer
#: script for a system user needs (so installing the .deb fetches little);
#: skopeo checks a stored login against the registry (it needs the virtual
#: container-network-stack, which debootstrap cannot resolve: netavark
#: provides it). Debian 12 has no docker CLI without the daemon (docker.io),
#: so guests use ecr-login's file store; a test that wants the docker store
#: can bind the host's CLI read-only.
INCLUDE: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "ca-certificates",
    "python3-boto3",
    "adduser",
    "skopeo",
    "netavark",
)

# Bump when the recipe below changes, so cached tarballs are rebuilt.
_RECIPE_VERSION = "1"

# Host apt settings copied into the tarball so apt in the guest reaches the
# same mirror with the same rules (a snapshot mirror needs Check-Valid-Until).
_APT_CONF_GLOBS = ("99artifact-registry", "99farm-no-dep11", "*proxy*")

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME_PREFIX = "ecrl-"
_CGROUP_PREFIX = "ecr-login-guest-"


def unpack_tarball(tarball: Path, root: Path) -> None:
    """Unpack a pristine tarball (:func:`pristine_tarball`) into ``root``, owners and attributes kept."""
    decompress = ["gzip", "-dc"] if str(tarball).endswith(".gz") else ["zstd", "-dc"]
    with open(tarball, "rb") as source:
        unpack = subprocess.Popen(decompress, stdin=source, stdout=subprocess.PIPE)
        assert unpack.stdout is not None
        tar = subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", "-"],
            stdin=unpack.stdout,
            check=False,
        )
        unpack.stdout.close()
        if unpack.wait() != 0 or tar.returncode != 0:
            raise GuestError(f"unpacking {tarball} failed")


class GuestError(RuntimeError):
    """The guest could not be built, booted or stopped."""


class GuestCommandError(subprocess.CalledProcessError):
    """A command in the guest failed; the message carries its output."""

    def __str__(self) -> str:
        text = super().__str__()
        for label, stream in (("stdout", self.stdout), ("stderr", self.stderr)):
            if stream:
                text += f"\n--- {label} ---\n{stream.rstrip()}"
        return text


# --- where things live -------------------------------------------------------


def cache_dir() -> Path:
    """Where pristine tarballs are kept.

    ``$ECR_LOGIN_TEST_CACHE``, else ``$XDG_CACHE_HOME/ecr-login-tests``, else
    ``/var/cache/ecr-login-tests`` (root) or ``~/.cache/ecr-login-tests``.
    """
    explicit = os.environ.get("ECR_LOGIN_TEST_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "ecr-login-tests"
    if os.geteuid() == 0:
        return Path("/var/cache/ecr-login-tests")
    return Path.home() / ".cache" / "ecr-login-tests"


def guests_dir() -> Path:
    """Where guest root trees and their records live while they run."""
    return Path(os.environ.get("ECR_LOGIN_GUEST_DIR", "/var/tmp/ecr-login-guests"))


def _make_workdir(workdir: Path) -> None:
    """Create a guest's directory (and :func:`guests_dir`, which the last guest to stop removes)."""
    for _ in range(5):
        try:
            workdir.mkdir(parents=True)
            return
        except FileNotFoundError:  # the parent was just removed by a guest that stopped: again
            continue
    workdir.mkdir(parents=True)


def _remove_guests_dir_if_empty() -> None:
    """Leave no empty folder under /var/tmp once the last guest is gone (only an empty one is removed)."""
    with contextlib.suppress(OSError):
        guests_dir().rmdir()


def missing_tools() -> list[str]:
    """What this module needs and the host lacks (empty when all is there)."""
    needed = ["systemd-nspawn", "debootstrap", "nsenter", "tar"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if shutil.which("zstd") is None and shutil.which("gzip") is None:
        missing.append("zstd")
    return missing


def unsupported_reasons() -> list[str]:
    """Why guests cannot be booted on this host (empty when they can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("booting a systemd-nspawn guest needs root")
    missing = missing_tools()
    if missing:
        reasons.append(f"required tools not available: {', '.join(missing)} (apt-get install systemd-container debootstrap zstd)")
    return reasons


def require_guest_support() -> None:
    """For tests: skip (outside CI) or fail (in CI) when guests cannot be booted here."""
    import pytest

    reasons = unsupported_reasons()
    if reasons:
        reason = "; ".join(reasons)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def host_mirror(suite: str = SUITE) -> str:
    """The Debian mirror the host's apt uses for ``suite`` (deb822 or one-line)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
                return fields["uris"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            # deb [options] URI SUITE COMPONENTS...
            words = [w for w in words if not w.startswith("[") and not w.endswith("]")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return "http://deb.debian.org/debian"


# --- the pristine tarball -----------------------------------------------------


def _compressor() -> tuple[str, list[str], list[str]]:
    """(suffix, compress argv, decompress argv): zstd when present, else gzip."""
    if shutil.which("zstd"):
        return "tar.zst", ["zstd", "-T0", "-3", "-q"], ["zstd", "-dc"]
    return "tar.gz", ["gzip", "-1"], ["gzip", "-dc"]


def _tarball_key(suite: str, mirror: str, include: Sequence[str]) -> str:
    material = json.dumps([_RECIPE_VERSION, suite, mirror, sorted(set(include))])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pristine_tarball(
    include: Sequence[str] = INCLUDE,
    *,
    suite: str = SUITE,
    mirror: str | None = None,
    log: bool = True,
) -> Path:
    """Return the cached pristine tarball, debootstrapping it on first use.

    Keyed by suite, mirror and package list: a different ``include`` gets
    its own tarball. Building takes about 80 s and 450 MB of disk, the
    tarball is about 160 MB.
    """
    mirror = mirror or host_mirror(suite)
    suffix, compress, _ = _compressor()
    cache = cache_dir()
    target = cache / f"debian-{suite}-minbase-{_tarball_key(suite, mirror, include)}.{suffix}"
    if target.exists():
        return target
    with _locked(cache / ".lock"):
        if target.exists():  # another run built it while we waited
            return target
        for stale in cache.glob("build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        build = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
        try:
            root = build / "root"
            started = time.monotonic()
            if log:
                print(f"guest: debootstrap {suite} from {mirror} into {root} (once; cached as {target})", file=sys.stderr)
            result = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(include)}",
                    suite,
                    str(root),
                    mirror,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                detail = result.stdout[-4000:]
                log_file = root / "debootstrap" / "debootstrap.log"
                if log_file.exists():
                    detail += "\n--- debootstrap.log (end) ---\n" + log_file.read_text(errors="replace")[-4000:]
                raise GuestError(f"debootstrap failed with exit {result.returncode}:\n{detail}")
            _prepare_tree(root, suite, mirror)
            partial = build / f"pristine.{suffix}"
            with open(partial, "wb") as out:
                tar = subprocess.Popen(
                    ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", "-", "."],
                    stdout=subprocess.PIPE,
                )
                assert tar.stdout is not None
                comp = subprocess.run(compress, stdin=tar.stdout, stdout=out, check=False)
                tar.stdout.close()
                if tar.wait() != 0 or comp.returncode != 0:
                    raise GuestError("packing the pristine tree failed")
            os.replace(partial, target)
            if log:
                print(f"guest: pristine tarball ready in {time.monotonic() - started:.0f} s: {target}", file=sys.stderr)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return target


def _prepare_tree(root: Path, suite: str, mirror: str) -> None:
    """Make the debootstrapped tree a clean image every guest starts from."""
    # apt: the host's sources (all suites: updates and security too) and the
    # host settings a snapshot mirror needs; nothing downloaded is kept.
    etc_apt = root / "etc" / "apt"
    host_sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    if suite != SUITE:  # another release (trixie): the host's sources name bookworm
        host_sources = []
    if host_sources:
        (etc_apt / "sources.list").unlink(missing_ok=True)
        for path in host_sources:
            shutil.copy2(path, etc_apt / "sources.list.d" / path.name)
    else:
        (etc_apt / "sources.list").write_text(f"deb {mirror} {suite} main\n")
    for pattern in _APT_CONF_GLOBS:
        for path in Path("/etc/apt/apt.conf.d").glob(pattern):
            shutil.copy2(path, etc_apt / "apt.conf.d" / path.name)
    for lists in (root / "var/lib/apt/lists").glob("*"):
        if lists.is_file() and lists.name != "lock":
            lists.unlink()
    for archive in (root / "var/cache/apt/archives").glob("*.deb"):
        archive.unlink()
    # Each boot gets its own machine id (systemd writes one when the file is
    # empty and the root is writable; nspawn passes a random one).
    (root / "etc" / "machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    (root / "etc" / "hostname").write_text("ecr-login-guest\n")
    # No getty on the pipe console; nothing else to wait for at boot.
    with contextlib.suppress(FileNotFoundError):
        (root / "etc/systemd/system/getty.target.wants/getty@tty1.service").unlink()


# --- cgroups --------------------------------------------------------------------


def _cgroup_mounts() -> dict[str, Path]:
    """Mount points of the hierarchies systemd tracks: '' (cgroup2) and 'name=systemd'."""
    mounts: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3:
                continue
            mount_point = Path(left.split()[4].replace("\\040", " "))
            if fields[0] == "cgroup2":
                mounts.setdefault("", mount_point)
            elif fields[0] == "cgroup" and "name=systemd" in fields[2].split(","):
                mounts.setdefault("name=systemd", mount_point)
    return mounts


def _own_cgroups() -> dict[str, str]:
    """This process's path in each hierarchy of :func:`_cgroup_mounts`."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers in ("", "name=systemd"):
                paths[controllers] = path
    return paths


def _make_cgroups(name: str) -> list[Path]:
    """One fresh cgroup per tracked hierarchy, next to where this process sits.

    nspawn creates the guest's cgroups (``payload``, ``supervisor``) below
    the cgroup it starts in, so starting it in a dedicated one keeps the
    host tidy: removing that one directory tree removes everything.
    """
    made: list[Path] = []
    own = _own_cgroups()
    for hierarchy, mount in _cgroup_mounts().items():
        if hierarchy not in own:
            continue
        path = mount / own[hierarchy].lstrip("/") / f"{_CGROUP_PREFIX}{name}"
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            print(f"guest: cannot create cgroup {path} ({exc}); nspawn starts in the current one", file=sys.stderr)
            continue
        made.append(path)
    return made


def _cgroup_pids(path: Path) -> set[int]:
    pids: set[int] = set()
    for procs in path.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in procs.read_text().split())
    return pids


def _remove_cgroup(path: Path, timeout: float = 10.0) -> None:
    """Kill what is left in a guest cgroup tree (by its pids) and rmdir it bottom-up."""
    if not path.exists():
        return
    deadline = time.monotonic() + timeout
    while True:
        pids = _cgroup_pids(path)
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for directory in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


# --- process bookkeeping ------------------------------------------------------------


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: with the pid, identifies one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int | None, start_time: str | None) -> bool:
    return bool(pid) and start_time is not None and _start_time(pid) == start_time  # type: ignore[arg-type]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _wait_gone(pid: int, start_time: str | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, start_time):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _propagate_dir(name: str) -> Path:
    return Path("/run/systemd/nspawn/propagate") / name


def cleanup_leftovers(verbose: bool = True) -> list[str]:
    """Stop and remove guests whose owning process is gone (a killed run).

    Works only from the records :class:`Guest` writes: the nspawn pid (with
    its start time, so a reused pid is never signalled), the cgroups it was
    started in and the root tree. Guests of live owners are left alone.
    Returns the names cleaned.
    """
    base = guests_dir()
    cleaned: list[str] = []
    if not base.is_dir():
        return cleaned
    boot = _boot_id()
    for workdir in sorted(base.glob(f"{_NAME_PREFIX}*")):
        record_file = workdir / "record.json"
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            record = {}
        same_boot = record.get("boot_id") == boot
        if same_boot and _alive(record.get("owner_pid"), record.get("owner_start")):
            continue
        if not record and time.time() - workdir.stat().st_mtime < 600:
            continue  # being set up right now by another run
        if same_boot and _alive(record.get("nspawn_pid"), record.get("nspawn_start")):
            os.kill(record["nspawn_pid"], signal.SIGTERM)
            if not _wait_gone(record["nspawn_pid"], record.get("nspawn_start"), 15):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record["nspawn_pid"], signal.SIGKILL)
        for cgroup in record.get("cgroups", []):
            _remove_cgroup(Path(cgroup))
        shutil.rmtree(_propagate_dir(workdir.name), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
        cleaned.append(workdir.name)
    _remove_guests_dir_if_empty()
    if cleaned and verbose:
        print(f"guest: removed leftovers of killed runs: {', '.join(cleaned)}", file=sys.stderr)
    return cleaned


# --- the guest --------------------------------------------------------------------


@dataclass
class Result:
    """What :meth:`Guest.run` returns (like CompletedProcess, text only)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


class Guest:
    """A booted pristine Debian guest; use as a context manager.

    ``bind_ro`` maps host paths to guest paths mounted read-only (e.g. the
    built packages at ``/srv``), ``bind`` the same read-write. ``keep``
    leaves the stopped root tree on disk for a post-mortem (its path is
    printed). ``extra_args`` go to systemd-nspawn as they are.
    """

    def __init__(
        self,
        *,
        bind_ro: Mapping[str, str] | Mapping[Path, str] | None = None,
        bind: Mapping[str, str] | Mapping[Path, str] | None = None,
        tarball: str | os.PathLike[str] | None = None,
        name: str | None = None,
        boot_timeout: float = 90.0,
        keep: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.name = name or f"{_NAME_PREFIX}{secrets.token_hex(4)}"
        if not self.name.startswith(_NAME_PREFIX):
            raise ValueError(f"guest names start with {_NAME_PREFIX!r}")
        self.bind_ro = {os.fspath(k): v for k, v in (bind_ro or {}).items()}
        self.bind = {os.fspath(k): v for k, v in (bind or {}).items()}
        self._tarball = Path(tarball) if tarball else None
        self.boot_timeout = boot_timeout
        self.keep = keep
        self.extra_args = list(extra_args)
        self.workdir = guests_dir() / self.name
        self.root = self.workdir / "root"
        self.console_path = self.workdir / "console.log"
        self.pid1: int | None = None
        self.state: str | None = None
        self.failed_units: list[str] = []
        self.timings: dict[str, float] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._cgroups: list[Path] = []

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Guest:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Guest:
        """Unpack a fresh root, boot it, wait until systemd has finished booting."""
        if self._process is not None:
            raise GuestError("guest already started")
        cleanup_leftovers()
        tarball = self._tarball or pristine_tarball()
        _make_workdir(self.workdir)
        self._write_record()
        started = time.monotonic()
        self.root.mkdir()
        unpack_tarball(tarball, self.root)
        self.timings["unpack"] = time.monotonic() - started
        self._boot()
        return self

    def _nspawn_command(self) -> list[str]:
        command = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--boot",
            "--register=no",  # no host systemd/D-Bus to register with
            "--keep-unit",
            "--console=pipe",
            "--setenv=SYSTEMD_LOG_COLOR=0",
        ]
        for host, guest in self.bind_ro.items():
            command.append(f"--bind-ro={host}:{guest}")
        for host, guest in self.bind.items():
            command.append(f"--bind={host}:{guest}")
        return command + self.extra_args

    def _boot(self) -> None:
        started = time.monotonic()
        self._cgroups = _make_cgroups(self.name)
        cgroup_procs = [str(path / "cgroup.procs") for path in self._cgroups]

        def enter_cgroups() -> None:  # runs in the child between fork and exec
            for procs in cgroup_procs:
                with open(procs, "w") as handle:
                    handle.write("0")

        env = dict(os.environ)
        env["SYSTEMD_LOG_COLOR"] = "0"
        with open(self.console_path, "wb") as console:
            self._process = subprocess.Popen(
                self._nspawn_command(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=enter_cgroups,  # no threads run in this process around the fork
                env=env,
            )
        self._write_record()
        deadline = started + self.boot_timeout
        self.pid1 = self._find_pid1(deadline)
        self._write_record()
        self._wait_booted(deadline)
        self.timings["boot"] = time.monotonic() - started

    def _find_pid1(self, deadline: float) -> int:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise GuestError(f"systemd-nspawn exited with {self._process.returncode} while booting:\n{self.console_text()}")
            for child in _children(self._process.pid):
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return child
            time.sleep(0.05)
        raise GuestError(f"guest PID 1 did not appear within {self.boot_timeout:.0f} s:\n{self.console_text()}")

    def _wait_booted(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise GuestError(f"the guest stopped while booting:\n{self.console_text()}")
            result = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
            last = result.stdout.strip() or result.stderr.strip()
            if last in ("running", "degraded"):
                self.state = last
                if last == "degraded":
                    failed = self.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend"], check=False)
                    self.failed_units = [line.split()[0] for line in failed.stdout.splitlines() if line.strip()]
                    print(f"guest {self.name}: booted degraded; failed units: {', '.join(self.failed_units)}", file=sys.stderr)
                return
            if last in ("maintenance", "stopping"):
                break
            time.sleep(0.1)
        raise GuestError(f"guest did not finish booting (is-system-running: {last!r}):\n{self.console_text()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Power off with SIGTERM (a clean shutdown), escalate after ``timeout``, tidy up."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)  # nspawn: a second SIGTERM terminates at once
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._release_host_side()
        if self.workdir.exists():
            if self.keep:
                (self.workdir / "record.json").unlink(missing_ok=True)
                self.workdir.rename(self.workdir.with_name("kept-" + self.name))
                print(f"guest {self.name}: root kept at {self.workdir.with_name('kept-' + self.name)}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        _remove_guests_dir_if_empty()

    def _release_host_side(self) -> None:
        """What a stopped guest leaves on the host: its cgroups and nspawn's propagate folder."""
        self.pid1 = None
        for cgroup in self._cgroups:
            _remove_cgroup(cgroup)
        self._cgroups = []
        shutil.rmtree(_propagate_dir(self.name), ignore_errors=True)

    def _write_record(self) -> None:
        owner = os.getpid()
        process = self._process
        record = {
            "boot_id": _boot_id(),
            "owner_pid": owner,
            "owner_start": _start_time(owner),
            "nspawn_pid": process.pid if process else None,
            "nspawn_start": _start_time(process.pid) if process else None,
            "cgroups": [str(path) for path in self._cgroups],
            "pid1": self.pid1,
        }
        partial = self.workdir / "record.json.new"
        partial.write_text(json.dumps(record, indent=1))
        os.replace(partial, self.workdir / "record.json")

    # -- reboots and image builds --------------------------------------------

    def power_off(self, timeout: float = 30.0) -> None:
        """Shut the guest down cleanly (SIGTERM: poweroff) and keep its root tree.

        For a reboot (:meth:`boot`) or for work on the tree with no systemd
        running (:meth:`run_unbooted`).
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process = process
                raise GuestError(f"the guest did not power off within {timeout:.0f} s:\n{self.console_text()}") from None
        self._release_host_side()
        self._write_record()

    def boot(self) -> None:
        """Boot the powered-off root tree again (a reboot: same disk, fresh /run)."""
        if self.running:
            raise GuestError("guest is running: power_off() first")
        self.state = None
        self.failed_units = []
        self._boot()

    def run_unbooted(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> Result:
        """Run a command in the powered-off root tree with no systemd running.

        As an image build or a chroot does (``systemd-nspawn`` without
        ``--boot``): maintainer scripts see no ``/run/systemd/system``. The
        binds of the guest apply; the host network is shared.
        """
        if self.running:
            raise GuestError("guest is running: power_off() first")
        cgroups = _make_cgroups(self.name)
        cgroup_procs = [str(path / "cgroup.procs") for path in cgroups]

        def enter_cgroups() -> None:  # runs in the child between fork and exec
            for procs in cgroup_procs:
                with open(procs, "w") as handle:
                    handle.write("0")

        command = [arg for arg in self._nspawn_command() if arg not in ("--boot", "--console=pipe")]
        command += ["--as-pid2", "--console=pipe"]
        variables = {"PATH": GUEST_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        command += [f"--setenv={key}={value}" for key, value in variables.items()]
        try:
            completed = subprocess.run(
                [*command, *argv],
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                preexec_fn=enter_cgroups,  # no threads run in this process around the fork
                check=False,
            )
        finally:
            for cgroup in cgroups:
                _remove_cgroup(cgroup)
        if completed.returncode != 0:
            raise GuestCommandError(completed.returncode, list(argv), completed.stdout, completed.stderr)
        return Result(list(argv), completed.returncode, completed.stdout, completed.stderr)

    # -- using it ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def console_text(self) -> str:
        """What the guest printed on its console (boot and shutdown messages)."""
        try:
            return self.console_path.read_text(errors="replace")
        except OSError:
            return ""

    def command(self, argv: Sequence[str], *, user: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
        """The host argv that runs ``argv`` in the guest (for Popen-style use).

        A clean environment: PATH, LANG, HOME (and USER/LOGNAME for
        ``user``) plus ``env``; nothing leaks in from the host. ``user`` runs
        the command as that guest user with its groups (setpriv, no PAM).
        """
        if self.pid1 is None:
            raise GuestError("guest is not running")
        variables = {"PATH": GUEST_PATH, "LANG": "C.UTF-8", "TERM": "dumb", "HOME": "/root"}
        prefix: list[str] = []
        if user is not None and user != "root":
            home = f"$(getent passwd {shlex.quote(user)} | cut -d: -f6)"
            variables.update({"USER": user, "LOGNAME": user})
            variables.pop("HOME")
            inner = " ".join(shlex.quote(part) for part in argv)
            assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**variables, **(env or {})}.items())
            script = (
                f"home={home} && [ -n \"$home\" ] || {{ echo 'no such guest user: {user}' >&2; exit 125; }}; "
                f'exec setpriv --reuid={shlex.quote(user)} --regid="$(id -g {shlex.quote(user)})" --init-groups '
                f'/usr/bin/env -i HOME="$home" {assignments} {inner}'
            )
            prefix = ["/bin/sh", "-c", script]
            return ["nsenter", "-t", str(self.pid1), "-a", "/usr/bin/env", "-i", f"PATH={GUEST_PATH}", *prefix]
        variables.update(env or {})
        return [
            "nsenter",
            "-t",
            str(self.pid1),
            "-a",
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in variables.items()),
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        user: str | None = None,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> Result:
        """Run a command in the guest; a string runs through ``sh -c``.

        Raises :class:`GuestCommandError` (with stdout/stderr) when ``check``
        and the exit status is not 0.
        """
        args = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
        completed = subprocess.run(
            self.command(args, user=user, env=env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
        if check and completed.returncode != 0:
            raise GuestCommandError(completed.returncode, args, completed.stdout, completed.stderr)
        return Result(args, completed.returncode, completed.stdout, completed.stderr)

    def write_file(self, path: str, content: str | bytes, *, mode: int = 0o644, owner: str = "root:root") -> None:
        """Create or replace a file in the guest (through the guest, not the host path).

        Never through ``self.root``: a symlink in the guest tree would
        resolve on the host.
        """
        data = content.decode() if isinstance(content, bytes) else content
        script = 'umask 077 && cat > "$1.tmp" && chown "$2" "$1.tmp" && chmod "$3" "$1.tmp" && mv -f "$1.tmp" "$1"'
        self.run(["/bin/sh", "-c", script, "sh", path, owner, f"{mode:o}"], input=data)

    def read_file(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    def copy_in(self, source: str | os.PathLike[str], destination: str) -> None:
        """Copy a host file or directory into the guest directory ``destination``."""
        source = Path(source)
        self.run(["mkdir", "-p", destination])
        tar = subprocess.Popen(["tar", "-C", str(source.parent), "-cf", "-", source.name], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        untar = subprocess.run(
            self.command(["tar", "-C", destination, "--no-same-owner", "-xf", "-"]),
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        if tar.wait() != 0 or untar.returncode != 0:
            raise GuestError(f"copying {source} into the guest failed: {untar.stderr}")

    def journal(self, unit: str | None = None, *, args: Sequence[str] = ()) -> str:
        """This boot's journal (of one unit when given), flushed first."""
        self.run(["journalctl", "--sync"], check=False)
        command = ["journalctl", "-b", "--no-pager", "-o", "short-precise", *args]
        if unit:
            command += ["-u", unit]
        return self.run(command, check=False).stdout

    def systemctl_show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        argv = ["systemctl", "show", unit]
        for prop in properties:
            argv += ["-p", prop]
        values: dict[str, str] = {}
        for line in self.run(argv).stdout.splitlines():
            key, _, value = line.partition("=")
            values[key] = value
        return values


def _smoke() -> int:
    """Build (or reuse) the tarball, boot, show state, stop."""
    started = time.monotonic()
    tarball = pristine_tarball()
    print(f"tarball: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    with Guest() as guest:
        print(f"guest {guest.name}: {guest.state} (unpack {guest.timings['unpack']:.1f} s, boot {guest.timings['boot']:.1f} s)")
        print(guest.run(["systemctl", "--no-pager", "list-timers"]).stdout)
    print(f"total {time.monotonic() - started:.1f} s")
    return 0


def _serve(bind_ro: Sequence[str], ready_file: str) -> int:
    """Boot a guest, describe it in ``ready_file``, keep it until told to stop.

    For shell scripts (demo/demo.sh): they reach the guest with
    ``nsenter -t PID1 -a``. Stops cleanly on SIGTERM, SIGINT or SIGHUP, when
    the guest powers off, and when the parent process goes away (so a
    killed script does not leave a guest behind).
    """
    binds: dict[str, str] = {}
    for spec in bind_ro:
        host, sep, inside = spec.partition(":")
        if not sep or not host or not inside.startswith("/"):
            print(f"--bind-ro wants HOST:GUEST_PATH, not {spec!r}", file=sys.stderr)
            return 64
        binds[str(Path(host).resolve())] = inside
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    parent = os.getppid()
    with Guest(bind_ro=binds) as guest:
        description = {
            "name": guest.name,
            "pid1": guest.pid1,
            "root": str(guest.root),
            "state": guest.state,
            "failed_units": guest.failed_units,
            "timings": guest.timings,
        }
        partial = f"{ready_file}.tmp"
        with open(partial, "w") as handle:
            json.dump(description, handle)
        os.replace(partial, ready_file)
        while not stop and guest.running and os.getppid() == parent:
            time.sleep(0.2)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Pristine Debian guests with real systemd (systemd-nspawn).")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("smoke", help="build or reuse the tarball, boot a guest once, stop it (default)")
    commands.add_parser("tarball", help="build or reuse the pristine tarball; print its path")
    commands.add_parser("cleanup", help="remove guests left behind by killed runs")
    commands.add_parser("cache-dir", help="print where the pristine tarballs are cached (make distclean removes it)")
    serve = commands.add_parser("serve", help="boot a guest and keep it until SIGTERM/SIGINT")
    serve.add_argument("--bind-ro", action="append", default=[], metavar="HOST:GUEST", help="bind a host path read-only")
    serve.add_argument("--ready-file", required=True, help="JSON with name, pid1, state is written here once booted")
    args = parser.parse_args(argv)
    if args.command == "cache-dir":
        print(cache_dir())
        return 0
    reasons = unsupported_reasons()
    if reasons:
        print("; ".join(reasons), file=sys.stderr)
        return 69
    if args.command == "serve":
        return _serve(args.bind_ro, args.ready_file)
    if args.command == "tarball":
        print(pristine_tarball())
        return 0
    if args.command == "cleanup":
        cleanup_leftovers()
        return 0
    return _smoke()


if __name__ == "__main__":
    sys.exit(main())
