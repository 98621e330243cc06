#!/usr/bin/env python3
"""ecr-login against the pipeline it replaces, on loopback: the goals of issue #12.

    make bench                      # or: python3 bench/bench.py [--delay-ms 30] [--runs 5]

Starts the stand-in ECR API (tests/standin_ecr.py, with an added delay per
GetAuthorizationToken call to mimic the round trip to AWS) and one real registry
(Debian's docker-registry, htpasswd user AWS) per registry address used, then
measures, interleaved round by round, medians of --runs rounds of:

1. one registry: ``aws ecr get-login-password | docker login --password-stdin``
   vs ``ecr-login login --force`` with the docker store and with the file store,
   alternating run by run (--noop-repeat per round) so that both see the same load
   (goal: at most 0.5x the pipeline);
2. N registries over 5 regions (accounts x regions): the pipeline in a shell loop,
   one per registry, vs one ``ecr-login login --force`` (goal at 50: at most 0.05x);
3. a run with nothing due vs that same 1-registry pipeline, alternating run by run
   in the same way (goal: at most 0.1x,
   what the cron line ecr-login replaces pays at every tick); ``python3 -c pass`` on
   the same interpreter is shown beside it for information;
4. botocore alone (plain ``botocore.session.Session().create_client("ecr", ...)``, no
   call, a normal exit): the floor under a forced run, which no change to ecr-login lowers.

Peak RSS (/usr/bin/time's %M, from each case's untimed warm-up run) is shown for
information; it has no goal since #12.

ecr-login runs as the package installs it and, for comparison, from this checkout:

- ``--deb DEB`` (``make bench`` builds the .deb from the working tree and passes it):
  ``dpkg -i`` into a stock Debian 12 tree (the tests' cached debootstrap: minbase and
  the package's dependencies, nothing this host added), each run entered with chroot
  (whose own exec is in the figures). This is what the goals are about: the package
  on the system it targets.
- a compiled copy of ecr_login_pkg/ through a launcher like the package's
  /usr/bin/ecr-login (debian/bin/ecr-login), once per interpreter given (default: the
  real ``python3`` first on PATH, and /usr/bin/python3 when it has botocore). On this
  kind of machine /usr/bin/python3 sees python3-openssl, which the machine image
  installs and ecr-login does not need: botocore's httpsession then imports pyOpenSSL
  and cryptography (about 35 ms of a forced run).

Each row names its interpreter. Wall times suffer when other work
shares the CPUs; the CPU-time column much less. The AWS CLI is the one on PATH (a
pyenv shim is resolved to the script behind it). With --before REV (default: the
last results before #12) the goals are also computed from REV's bench/results.json
and shown side by side. Passwords live only in files and pipes. Every child has a
timeout; the servers stop on exit. Prints the tables, writes bench/results.json and
bench/chart.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))

import guest  # noqa: E402
from local_registry import DOCKER_REGISTRY, LocalRegistry  # noqa: E402
from standin_ecr import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, StandinECR  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1")
CHILD_TIMEOUT = 600.0
TIME = "/usr/bin/time"  # Debian package `time`
GOALS = {  # issue #12
    "one_registry": 0.5,  # ecr-login --force / the pipeline, one registry
    "many_registries": 0.05,  # ecr-login --force (file store) / the shell loop, 50 registries over 5 regions
    "no_op": 0.1,  # a run with nothing due / the 1-registry pipeline, measured side by side
}
# The last committed results before #12 (standard parts): the "before" of README's table.
BEFORE = "44b9b11"
# The key, in the interpreters' table, of the .deb installed in a stock Debian 12 tree (chroot).
STOCK = "stock:"
CHROOT = "/usr/sbin/chroot"
LAUNCHER = '''#!{python}
# debian/bin/ecr-login (the package's /usr/bin/ecr-login), with the package from the benchmark's
# compiled copy, found after the standard library as an installed package is.
import sys
sys.path.append({site!r})
from ecr_login_pkg.cli import run

run()
'''
# What botocore itself costs, with none of ecr-login's work: botocore as anyone uses it (its
# public API), a client made with the settings ecr-login gives its own, no call, a normal exit.
# The floor under ecr-login --force.
BOTOCORE_ALONE = """
import botocore.session
from botocore.config import Config

config = Config(retries={{"total_max_attempts": 1, "mode": "standard"}})
botocore.session.Session().create_client("ecr", region_name="us-east-1", endpoint_url={url!r}, config=config)
"""


@dataclass
class Case:
    """One command measured every round."""

    key: str
    scenario: str
    tool: str
    interpreter: str
    registries: int
    command: list[str]
    env: dict[str, str]
    token_calls: int  # GetAuthorizationToken calls one run must make (checked on every run)
    repeat: int = 1  # runs per round (more for the cases compared run by run: no-ops and their yardsticks)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # user + system of the whole process tree
    rss_kb: list[int] = field(default_factory=list)
    root: Path | None = None  # the tree the command runs in (chroot); None: this host's

    def host_path(self, seen: str) -> Path:
        """A path as the command sees it, as this process finds it (the inverse of ``seen_from``)."""
        return Path(seen) if self.root is None else self.root / seen.lstrip("/")

    def summary(self) -> dict[str, object]:
        return {
            "key": self.key, "scenario": self.scenario, "tool": self.tool, "interpreter": self.interpreter,
            "registries": self.registries, "runs": len(self.seconds),
            "median_s": statistics.median(self.seconds), "min_s": min(self.seconds), "max_s": max(self.seconds),
            "median_cpu_s": statistics.median(self.cpu_seconds),
            "median_peak_rss_kb": int(statistics.median(self.rss_kb)) if self.rss_kb else 0,
            "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "peak_rss_kb": self.rss_kb,
        }


def seen_from(root: Path | None, path: Path) -> Path:
    """A path of this host as a command chrooted into ``root`` sees it (None: not chrooted)."""
    return path if root is None else Path("/", path.relative_to(root))


def run_once(case: Case, ecr: StandinECR, *, timed: bool = True, rss: bool = False) -> None:
    """Run the case's command once; record its wall and CPU time, or (untimed) its peak RSS.

    The peak RSS comes from /usr/bin/time (%M: the largest process of the tree; a child
    forked from this big Python process would report this process's RSS instead). It adds
    a fork and an exec, so it is taken in untimed runs only.
    """
    calls_before = ecr.call_count
    cpu_before = children_cpu()
    with tempfile.NamedTemporaryFile(prefix="rss-") as rss_file, tempfile.TemporaryFile() as errors:
        command = [TIME, "-f", "%M", "-o", rss_file.name, *case.command] if rss else case.command
        started = time.perf_counter()
        process = subprocess.Popen(command, env=case.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=errors)
        # A blocking wait returns when the child exits; wait(timeout=...) would poll in steps of up
        # to 50 ms and add them to the time. A timer kills a child that hangs.
        killer = threading.Timer(CHILD_TIMEOUT, process.kill)
        killer.start()
        try:
            process.wait()
        finally:
            killer.cancel()
        elapsed = time.perf_counter() - started
        cpu = children_cpu() - cpu_before
        errors.seek(0)
        message = errors.read()[-4000:].decode(errors="replace")
        peak_kb = int(Path(rss_file.name).read_text().split()[-1]) if rss and process.returncode == 0 else 0
    if process.returncode != 0:
        raise SystemExit(f"bench: {case.key} failed (exit {process.returncode}):\n{message}")
    calls = ecr.call_count - calls_before
    if calls != case.token_calls:
        raise SystemExit(f"bench: {case.key} made {calls} token call(s), expected {case.token_calls}:\n{message}")
    if timed and not rss:
        case.seconds.append(elapsed)
        case.cpu_seconds.append(cpu)
    if rss:
        case.rss_kb.append(peak_kb)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def real_python(python: str) -> str:
    """The interpreter itself, not a shim in front of it (a pyenv shim is a bash script: slow)."""
    done = subprocess.run([python, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.strip()


def real_aws(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: the AWS CLI '{name}' is not on PATH (pip install awscli)")
    with open(found, "rb") as handle:
        head = handle.read(4096)
    if b"pyenv" in head and shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "which", Path(found).name], capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return found


def describe_python(python: str) -> tuple[str, str]:
    """('3.11.7 /path/python3', botocore version) — or raise when it lacks botocore."""
    probe = "import sys, botocore; print(sys.version.split()[0], botocore.__version__)"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ValueError(f"{python} cannot import botocore")
    version, botocore_version = done.stdout.split()
    return f"python {version} ({python})", botocore_version


def copy_package(site: Path, revision: str | None, pythons: list[str]) -> Path:
    """ecr_login_pkg into ``site``, as in the working tree (None) or at a commit, compiled for each interpreter."""
    site.mkdir(parents=True)
    if revision is None:
        shutil.copytree(REPO / "ecr_login_pkg", site / "ecr_login_pkg", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "ecr_login_pkg"], check=True,
                                 capture_output=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(site)], input=archive, check=True, timeout=60)
    for python in pythons:
        subprocess.run([python, "-m", "compileall", "-q", str(site)], check=True, timeout=120)
    return site


def code_description(revision: str | None) -> str:
    """Which code was measured: a commit, or the working tree (saying whether it differs from HEAD)."""
    def git(*words: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *words], capture_output=True, text=True, timeout=60)
        return done.stdout.strip() if done.returncode == 0 else "?"

    if revision is not None:
        return f"ecr_login_pkg at {git('rev-parse', '--short', revision)} ({revision})"
    changed = git("status", "--porcelain", "--", "ecr_login_pkg")
    return f"ecr_login_pkg of the working tree at {git('rev-parse', '--short', 'HEAD')}" + (
        ", with uncommitted changes" if changed else "")


def install_copy(work: Path, pythons: list[str], revision: str | None = None) -> dict[str, Path]:
    """A compiled copy of ecr_login_pkg and one launcher per interpreter."""
    site = copy_package(work / "site", revision, pythons)
    launchers = {}
    for index, python in enumerate(pythons):
        launcher = work / f"ecr-login-{index}"
        launcher.write_text(LAUNCHER.format(python=python, site=str(site)))
        launcher.chmod(0o755)
        launchers[python] = launcher
    return launchers


def stock_root(work: Path) -> Path:
    return work / "stock"


def install_stock(work: Path, deb: Path) -> tuple[str, str]:
    """The .deb installed by dpkg in a stock Debian 12 tree, as a host that installs it has it:
    the tests' pristine debootstrap (minbase and the package's dependencies, nothing this
    host added, such as python3-openssl or a site-packages .pth), entered with chroot.

    Returns (label, botocore version). The docker CLI of this host is copied in (Debian 12
    has none without the daemon). Raises RuntimeError when this host cannot make the tree.
    """
    if os.geteuid() != 0:
        raise RuntimeError("chroot and dpkg need root")
    missing = guest.missing_tools()
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)} (apt-get install systemd-container debootstrap zstd)")
    root = stock_root(work)
    root.mkdir()
    guest.unpack_tarball(guest.pristine_tarball(), root)
    shutil.copy2(deb, root / "tmp" / deb.name)
    docker = shutil.which("docker")
    if docker:
        shutil.copy2(docker, root / "usr" / "local" / "bin" / "docker")
    env = {"PATH": guest.GUEST_PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([CHROOT, str(root), "dpkg", "-i", f"/tmp/{deb.name}"], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"dpkg -i {deb.name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    # pyOpenSSL would be imported by botocore's httpsession (through urllib3.contrib.pyopenssl):
    # say so in the label, as a host that installed it pays for it
    probe = subprocess.run(
        [CHROOT, str(root), "/usr/bin/python3", "-c", "import importlib.util, sys, botocore; "
         "print(sys.version.split()[0], botocore.__version__, importlib.util.find_spec('OpenSSL') is not None)"],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    version, botocore_version, openssl = probe.stdout.split()
    return (f"{deb.name} on stock Debian 12, python {version}"
            f"{', with pyOpenSSL' if openssl == 'True' else ''} (chroot)"), botocore_version


def registry_hosts(count: int) -> list[tuple[str, str]]:
    """(ECR hostname, region) for ``count`` registries: accounts x the five regions."""
    hosts = []
    for index in range(count):
        account = f"{100000000001 + index // len(REGIONS):012d}"
        region = REGIONS[index % len(REGIONS)]
        hosts.append((f"{account}.dkr.ecr.{region}.amazonaws.com", region))
    return hosts


def isolated_env(base: dict[str, str], host_home: Path, ecr_url: str, root: Path | None = None) -> dict[str, str]:
    """A fresh user: its own home, docker config and state; the stand-in's credentials.
    With ``root``, the home is made in that tree and the paths are as seen from inside it."""
    host_home.mkdir(parents=True)
    (host_home / ".aws").mkdir()
    (host_home / ".aws" / "config").write_text("")
    home = seen_from(root, host_home)
    env = {k: v for k, v in base.items()
           if not k.startswith(("AWS_", "DOCKER_", "XDG_", "PYTHON", "REGISTRY_AUTH", "ECR_LOGIN", "STATE_DIRECTORY"))}
    env.update({
        "HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"),
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local" / "state"),
        "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"), "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    })
    if root is not None:  # the tree's own PATH: nothing of this host's (pyenv, ~/.local) is in there
        env["PATH"] = guest.GUEST_PATH
    return env


def write_config(path: Path, ecr_url: str, store: str, hosts: list[tuple[str, str]], addresses: list[str]) -> Path:
    sections = "".join(f"\n[{host}]\nstore_as = {address}\n" for (host, _region), address in zip(hosts, addresses))
    path.write_text(f"[defaults]\nendpoint_url = {ecr_url}\nstores = {store}\n{sections}")
    return path


def build_cases(args: argparse.Namespace, work: Path, ecr_url: str, addresses: list[str],
                pythons: dict[str, str], launchers: dict[str, Path], aws: str) -> list[Case]:
    base = dict(os.environ)
    cases: list[Case] = []
    # As people write it, with `aws` the CLI found above; pipefail so that a failed
    # get-login-password fails the run instead of passing for a login.
    one = 'set -o pipefail; aws ecr get-login-password --region "$2" --endpoint-url "$1" ' \
          '| docker login --username AWS --password-stdin "$3" >/dev/null'
    loop = 'set -o pipefail; url=$1; shift; while [ $# -gt 0 ]; do ' \
           'aws ecr get-login-password --region "$1" --endpoint-url "$url" ' \
           '| docker login --username AWS --password-stdin "$2" >/dev/null || exit 1; shift 2; done'
    aws_path = {"PATH": f"{Path(aws).parent}{os.pathsep}{base.get('PATH', os.defpath)}"}
    aws_env = isolated_env(base, work / "home-aws", ecr_url) | aws_path
    cli = f"{aws_version(aws).split()[0]} on {aws_python(aws)}"
    cases.append(Case("aws_alone", "AWS CLI alone (get-login-password)", "aws ecr get-login-password", cli, 1,
                      [aws, "ecr", "get-login-password", "--region", "us-east-1", "--endpoint-url", ecr_url], aws_env, 1))
    for count in args.sizes:
        hosts = registry_hosts(count)
        env = isolated_env(base, work / f"home-pipeline-{count}", ecr_url) | aws_path
        specs = [word for (_host, region), address in zip(hosts, addresses) for word in (region, address)]
        if count == 1:
            command = ["bash", "-c", one, "pipeline", ecr_url, *specs]
            # the yardstick of the no-op goal too: it alternates with the no-op runs, run by run
            cases.append(Case("pipeline_1", "1 registry", "aws | docker login (pipeline)", cli, 1, command, env, 1,
                              repeat=args.noop_repeat))
        else:
            command = ["bash", "-c", loop, "pipeline-loop", ecr_url, *specs]
            cases.append(Case(f"pipeline_{count}", f"{count} registries / {len(REGIONS)} regions",
                              "aws | docker login, shell loop", cli, count, command, env, count))
    for python, label in pythons.items():
        tag = tag_of(python)
        root = stock_root(work) if tag == "stock" else None
        place = work if root is None else root / "bench"  # where homes and configuration files go
        inside = [] if root is None else [CHROOT, str(root)]  # how a command enters the tree

        launcher = [*inside, "/usr/bin/ecr-login"] if root else [str(launchers[python])]
        interpreter = [*inside, "/usr/bin/python3"] if root else [python]
        for count in args.sizes:
            hosts = registry_hosts(count)
            scenario = "1 registry" if count == 1 else f"{count} registries / {len(REGIONS)} regions"
            for store in ("docker", "file"):
                env = isolated_env(base, place / f"home-{tag}-{count}-{store}", ecr_url, root)
                config = str(seen_from(root, write_config(place / f"ecr-login-{tag}-{count}-{store}.conf", ecr_url,
                                                          store, hosts, addresses)))
                regions = len({region for _host, region in hosts})
                # one registry: compared with the 1-registry pipeline run by run, as the no-op is
                cases.append(Case(f"ecr_login_{tag}_{count}_{store}", scenario, f"ecr-login login --force ({store} store)",
                                  label, count, [*launcher, "login", "--force", "--config", config], env, regions,
                                  repeat=args.noop_repeat if count == 1 else 1, root=root))
                if count in (1, max(args.sizes)):
                    cases.append(Case(f"noop_{tag}_{count}_{store}", f"no-op, {scenario}",
                                      f"ecr-login, nothing due ({store} store)", label, count,
                                      [*launcher, "--config", config], env, 0, repeat=args.noop_repeat, root=root))
        alone = BOTOCORE_ALONE.format(url=ecr_url)
        cases.append(Case(f"botocore_{tag}", "botocore alone (the floor)", "import botocore + one ECR client, no call",
                          label, 1, [*interpreter, "-c", alone],
                          isolated_env(base, place / f"home-botocore-{tag}", ecr_url, root), 0, root=root))
        pass_env = {k: v for k, v in base.items() if not k.startswith("PYTHON")}
        if root is not None:
            pass_env["PATH"] = guest.GUEST_PATH
        cases.append(Case(f"pass_{tag}", "interpreter start", "python3 -c pass", label, 0, [*interpreter, "-c", "pass"],
                          pass_env, 0, repeat=args.noop_repeat, root=root))
    return cases


Summaries = Mapping[str, Mapping[str, Any]]  # case key -> Case.summary() (this run's, or a committed results.json's)
MEASURES = {"s": "median_s", "cpu": "median_cpu_s", "rss": "median_peak_rss_kb"}


def tag_of(python: str) -> str:
    """The short name of an interpreter in case keys: the .deb in a stock Debian 12 tree, this
    host's Debian python, or the local one."""
    if python.startswith(STOCK):
        return "stock"
    return "deb" if python.startswith("/usr/bin/") else "local"


def goal_rows(summaries: Summaries, interpreters: Mapping[str, str], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """The ratios of #12's goals (goal set) and the informational ones beside them (goal None).

    Pure: works as well on a committed results.json's cases, which is how the table
    shows the before and after of a change side by side.
    """
    biggest = max(sizes)
    rows = []
    for python, label in interpreters.items():
        tag = tag_of(python)
        checks: list[tuple[str | None, str, str, str, str]] = [
            ("one_registry", "1 registry: ecr-login --force (docker store) / pipeline", f"ecr_login_{tag}_1_docker",
             "pipeline_1", "s"),
            ("one_registry", "1 registry: ecr-login --force (file store) / pipeline", f"ecr_login_{tag}_1_file",
             "pipeline_1", "s"),
            (None, "1 registry: ecr-login --force (docker store) / pipeline, in CPU time (less sensitive to load)",
             f"ecr_login_{tag}_1_docker", "pipeline_1", "cpu"),
            ("many_registries", f"{biggest} registries / {len(REGIONS)} regions: ecr-login --force (file store) / shell loop",
             f"ecr_login_{tag}_{biggest}_file", f"pipeline_{biggest}", "s"),
            ("many_registries", f"{biggest} registries / {len(REGIONS)} regions: ecr-login --force (docker store) / shell loop",
             f"ecr_login_{tag}_{biggest}_docker", f"pipeline_{biggest}", "s"),
            ("no_op", "no-op, 1 registry (docker store) / 1-registry pipeline", f"noop_{tag}_1_docker", "pipeline_1", "s"),
            ("no_op", f"no-op, {biggest} registries (file store) / 1-registry pipeline", f"noop_{tag}_{biggest}_file",
             "pipeline_1", "s"),
            (None, "no-op, 1 registry (docker store) / 1-registry pipeline, in CPU time (less sensitive to load)",
             f"noop_{tag}_1_docker", "pipeline_1", "cpu"),
            (None, "no-op, 1 registry (docker store) / python3 -c pass on the same python (the old yardstick)",
             f"noop_{tag}_1_docker", f"pass_{tag}", "s"),
            (None, f"no-op, {biggest} registries (file store) / python3 -c pass on the same python",
             f"noop_{tag}_{biggest}_file", f"pass_{tag}", "s"),
            (None, "botocore alone (import + one ECR client, no call) / 1-registry pipeline: the floor of a forced run",
             f"botocore_{tag}", "pipeline_1", "s"),
            (None, "peak RSS: ecr-login --force, 1 registry (file store) / aws ecr get-login-password",
             f"ecr_login_{tag}_1_file", "aws_alone", "rss"),
            (None, "peak RSS: botocore alone / aws ecr get-login-password", f"botocore_{tag}", "aws_alone", "rss"),
        ]
        for goal, what, numerator, denominator, measure in checks:
            if numerator not in summaries or denominator not in summaries:
                continue
            top = float(summaries[numerator][MEASURES[measure]])
            bottom = float(summaries[denominator][MEASURES[measure]])
            if not bottom:
                continue
            value = top / bottom
            rows.append({
                "id": f"{tag}:{measure}:{what}", "interpreter": label, "tag": tag, "goal": goal,
                "what": what, "numerator": numerator, "denominator": denominator, "measure": measure,
                "numerator_value": top, "denominator_value": bottom, "ratio": value,
                "target": GOALS[goal] if goal else None, "met": value <= GOALS[goal] if goal else None,
            })
    return rows


def amount(value: float, measure: str) -> str:
    """A median as people read it: 0.225 s, 43 ms, 42.1 MB."""
    if measure == "rss":
        return f"{value / 1024:.1f} MB"
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def verdict(row: Mapping[str, Any]) -> str:
    if row["goal"] is None:
        return "no goal"
    return f"<= {row['target']}x: {'met' if row['met'] else 'MISSED'}"


def cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    text = (f"{amount(row['numerator_value'], row['measure'])} / {amount(row['denominator_value'], row['measure'])}"
            f" = {row['ratio']:.3f}x")
    return text if row["goal"] is None else f"{text}, {'met' if row['met'] else 'MISSED'}"


def table(cases: list[Case], goals: list[dict[str, Any]]) -> str:
    lines = ["| scenario | tool | interpreter | runs | median s | min-max s | CPU s | peak RSS MB (1 run, no goal) |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for case in cases:
        rss = f"{case.rss_kb[0] / 1024:.1f}" if case.rss_kb else "-"
        lines.append(
            f"| {case.scenario} | {case.tool} | {case.interpreter} | {len(case.seconds)} | "
            f"{statistics.median(case.seconds):.3f} | {min(case.seconds):.3f}-{max(case.seconds):.3f} | "
            f"{statistics.median(case.cpu_seconds):.3f} | {rss} |"
        )
    lines += ["", "| ratio | interpreter | medians | goal |", "|---|---|---:|---|"]
    for row in goals:
        lines.append(f"| {row['what']} | {row['interpreter']} | {cell(row)} | {verdict(row)} |")
    return "\n".join(lines)


def comparison(before: list[dict[str, Any]], after: list[dict[str, Any]], before_name: str) -> str:
    """The same ratios before and after, side by side, one column pair per interpreter."""
    tags = list(dict.fromkeys(row["tag"] for row in after))
    labels = {row["tag"]: row["interpreter"] for row in after}
    old = {row["id"]: row for row in before}
    header = "| ratio | goal | " + " | ".join(f"{labels[t]}: before ({before_name}) | after" for t in tags) + " |"
    lines = [header, "|---|---|" + "---:|---:|" * len(tags)]
    order = list(dict.fromkeys(row["id"].split(":", 1)[1] for row in after))
    by_id = {row["id"]: row for row in after}
    for rest in order:
        first = next(by_id[f"{t}:{rest}"] for t in tags if f"{t}:{rest}" in by_id)
        goal = "no goal" if first["goal"] is None else f"<= {first['target']}x"
        cells = []
        for t in tags:
            cells += [cell(old.get(f"{t}:{rest}")), cell(by_id.get(f"{t}:{rest}"))]
        lines.append(f"| {first['what']} | {goal} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def committed_results(revision: str) -> dict[str, Any] | None:
    """bench/results.json as committed at ``revision`` (None, with a note, when git cannot say)."""
    try:
        done = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:bench/results.json"],
                              capture_output=True, text=True, timeout=60)
    except OSError as exc:
        print(f"bench: no before/after table: {exc}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"bench: no before/after table: git show {revision}: {done.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def goal_rows_of(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    summaries = {case["key"]: case for case in results["cases"]}
    return goal_rows(summaries, results["meta"]["interpreters"], results["meta"]["sizes"])


def short_label(python: str, label: str) -> str:
    """An interpreter as a chart's legend names it."""
    tag = tag_of(python)
    if tag == "stock":
        return "the .deb, stock Debian 12"
    return label.split(" (")[0] + (" Debian" if tag == "deb" else "")


def draw_chart(path: Path, cases: dict[str, Case], pythons: dict[str, str], sizes: list[int], delay_ms: float) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is missing (pip install -r .ci/requirements-bench.txt): no chart drawn"
    figure, axes = plt.subplots(figsize=(8, 6.5), dpi=110)
    series: list[tuple[str, str, str | None, str, str]] = [
        ("aws | docker login (loop)", "pipeline_{n}", "pipeline_1", "black", "o")]
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:olive", "tab:cyan"] * 2)
    for python, label in pythons.items():
        tag = tag_of(python)
        short = short_label(python, label)
        series.append((f"ecr-login --force, docker store, {short}", f"ecr_login_{tag}_{{n}}_docker", None,
                       next(colours), "s"))
        series.append((f"ecr-login --force, file store, {short}", f"ecr_login_{tag}_{{n}}_file", None, next(colours), "^"))
    no_ops = [(f"ecr-login, nothing due (file store), {short_label(python, label)}",
               f"noop_{tag_of(python)}_{{n}}_file", None, colour, "v") for (python, label), colour
              in zip(pythons.items(), ("tab:purple", "tab:brown", "tab:pink", "tab:grey"))]
    for name, pattern, first, colour, marker in series + no_ops:
        points = [(n, statistics.median(cases[key].seconds)) for n in sizes
                  if (key := (first if n == 1 and first else pattern.format(n=n))) in cases]
        style = ":" if pattern.startswith("noop_") else "-"
        axes.plot([p[0] for p in points], [p[1] for p in points], style, marker=marker, color=colour, label=name)
    # the goals of #12, as points: where each run must be at or below
    goals = [(1, GOALS["one_registry"] * statistics.median(cases["pipeline_1"].seconds), "goal: forced run"),
             (1, GOALS["no_op"] * statistics.median(cases["pipeline_1"].seconds), "goal: nothing due")]
    if f"pipeline_{max(sizes)}" in cases and max(sizes) > 1:
        goals.append((max(sizes), GOALS["many_registries"] * statistics.median(cases[f"pipeline_{max(sizes)}"].seconds),
                      "goal: forced run"))
    for index, (n, seconds, name) in enumerate(goals):
        axes.plot([n], [seconds], "_", markersize=22, markeredgewidth=2.5, color="dimgrey" if "forced" in name else "black",
                  label=name if name not in [g[2] for g in goals[:index]] else None)
    from matplotlib.ticker import FuncFormatter

    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.yaxis,):
        axis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda value, _position: f"{value:g}" if f"{value:.0e}"[0] in "235" else ""))
    axes.set_xticks(sizes, [str(n) for n in sizes])
    axes.set_xlabel(f"registries (over {len(REGIONS)} regions from 10 on)")
    axes.set_ylabel("seconds (median, log scale)")
    axes.set_title(f"Keeping N ECR logins fresh: one run, loopback, +{delay_ms:g} ms per token call")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return f"chart: {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=30.0, help="added to every token call (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="rounds; each case runs once per round (default 5, at least 5)")
    parser.add_argument("--noop-repeat", type=int, default=10,
                        help="runs per round of the cases compared with the 1-registry pipeline run by run "
                             "(it, the 1-registry and no-op runs, python3 -c pass), alternating (default 10)")
    parser.add_argument("--sizes", default="1,10,50", help="numbers of registries (default 1,10,50)")
    parser.add_argument("--python", action="append", help="interpreter(s) for ecr-login (repeatable)")
    parser.add_argument("--aws", default="aws", help="the AWS CLI (default: aws on PATH)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where results.json and chart.png go")
    parser.add_argument("--before", default=BEFORE, metavar="REV",
                        help=f"also compute the goals from REV's bench/results.json, side by side (default {BEFORE}, "
                             "the last results before #12; 'none' for no comparison)")
    parser.add_argument("--code", metavar="REV", help="measure ecr_login_pkg as committed at REV (default: the working tree)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, sizes 1,10 (not for results)")
    parser.add_argument("--deb", type=Path, metavar="DEB",
                        help="also measure this .deb installed in a stock Debian 12 tree (make bench builds it "
                             "from the working tree; needs root and debootstrap)")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(n) for n in ("1,10" if args.quick else args.sizes).split(",")})
    if args.quick:
        args.runs = 2
    elif args.runs < 5:
        parser.error("--runs must be at least 5 (use --quick for a smoke test)")
    if 1 not in args.sizes:
        parser.error("--sizes must include 1")
    for tool in ("docker", "bash", DOCKER_REGISTRY, "htpasswd", TIME):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is needed (see README: set-up)")
    aws = real_aws(args.aws)
    candidates = args.python or [real_python("python3"), "/usr/bin/python3"]
    pythons: dict[str, str] = {}
    botocore_versions = {}
    for candidate in dict.fromkeys(candidates):
        try:
            label, botocore_version = describe_python(candidate)
        except (ValueError, OSError) as exc:
            print(f"bench: skipping {candidate}: {exc}", file=sys.stderr)
            continue
        pythons[candidate] = label
        botocore_versions[label] = botocore_version
    if not pythons:
        raise SystemExit("bench: no interpreter with botocore to run ecr-login")

    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1) / 2:
        print(f"bench: warning: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs: other work competes for the "
              "CPUs and the wall times will show it (the CPU-time column less so)", file=sys.stderr)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecr-login-bench-")))
        password = secrets.token_urlsafe(24)
        ecr = stack.enter_context(StandinECR(password=password, default_delay=args.delay_ms / 1000.0))
        print(f"bench: stand-in ECR at {ecr.url} (+{args.delay_ms:g} ms per call); "
              f"starting {max(args.sizes)} registries ...", file=sys.stderr)
        addresses = []
        for index in range(max(args.sizes)):
            registry = stack.enter_context(LocalRegistry(password, workdir=work / f"registry-{index}"))
            addresses.append(registry.address)
        launchers = install_copy(work, list(pythons), args.code)
        if args.deb is not None:
            if args.code:
                print(f"bench: the stock Debian 12 rows measure {args.deb.name}, not --code {args.code}", file=sys.stderr)
            try:
                label, botocore_version = install_stock(work, args.deb.resolve())
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"bench: no stock Debian 12 rows: {exc}", file=sys.stderr)
            else:
                pythons[STOCK + args.deb.name] = label
                botocore_versions[label] = botocore_version
        cases = build_cases(args, work, ecr.url, addresses, pythons, launchers, aws)
        by_key = {case.key: case for case in cases}
        # Warm-up, untimed: page cache, pyc files, a first login for the no-op runs; and each
        # case's peak RSS (for information: no goal since #12).
        for case in cases:
            run_once(case, ecr, rss=True)
        slow = [case for case in cases if case.repeat == 1]
        fast = [case for case in cases if case.repeat > 1]  # the 1-registry pipeline and what is compared with it
        started = time.time()
        for round_number in range(1, args.runs + 1):
            shift = round_number % len(slow)
            for case in slow[shift:] + slow[:shift]:  # rotated: no case always follows the same one
                run_once(case, ecr)
            # The 1-registry pipeline and the runs compared with it (1-registry and no-op runs,
            # `python3 -c pass`) alternate run by run, so that they see the same load on the machine.
            for _ in range(args.noop_repeat):
                for case in fast:
                    run_once(case, ecr)
            print(f"bench: round {round_number}/{args.runs} done ({time.time() - started:.0f} s)", file=sys.stderr)
        check_logins(by_key, addresses, args.sizes)
        calls = ecr.call_count

    load_after = os.getloadavg()
    summaries = {case.key: case.summary() for case in cases}
    goals = goal_rows(summaries, pythons, args.sizes)
    text = table(cases, goals)
    print(f"ecr-login bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {code_description(args.code)}: "
          f"{os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.1f} before and {load_after[0]:.1f} after; +{args.delay_ms:g} ms per token call; "
          f"medians of {args.runs} rounds ({args.runs * args.noop_repeat} runs, alternating, for the 1-registry "
          "pipeline and the 1-registry and no-op runs)\n")
    print(text)
    before = None if args.before == "none" else committed_results(args.before)
    side_by_side = None
    if before is not None:
        side_by_side = comparison(goal_rows_of(before), goals, args.before)
        print(f"\nbefore ({args.before}, {before['meta']['date']}) and after (this run):\n")
        print(side_by_side)
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": code_description(args.code),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "load_average_before": load_before, "load_average_after": load_after,
            "delay_ms_per_token_call": args.delay_ms, "rounds": args.runs, "noop_repeat": args.noop_repeat,
            "sizes": args.sizes, "regions": list(REGIONS), "aws_cli": aws, "aws_cli_version": aws_version(aws),
            "docker": shutil.which("docker"), "interpreters": pythons, "botocore": botocore_versions,
            "token_calls_served": calls, "quick": args.quick, "goals": GOALS,
            "before": {"revision": args.before, "date": before["meta"]["date"]} if before else None,
        },
        "cases": [case.summary() for case in cases],
        "goals": goals,
        "table_markdown": text,
        "before_after_markdown": side_by_side,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nresults: {args.out / 'results.json'}", file=sys.stderr)
    print(draw_chart(args.out / "chart.png", by_key, pythons, args.sizes, args.delay_ms), file=sys.stderr)
    return 0


def aws_python(aws: str) -> str:
    """The interpreter named on the AWS CLI script's #! line."""
    with open(aws, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip()
    return first[2:].strip() if first.startswith("#!") else "?"


def aws_version(aws: str) -> str:
    done = subprocess.run([aws, "--version"], capture_output=True, text=True, timeout=60)
    return (done.stdout or done.stderr).strip()


def check_logins(cases: dict[str, Case], addresses: list[str], sizes: list[int]) -> None:
    """Every run really logged in: each home's docker config holds an entry for each address it used."""
    for case in cases.values():
        if case.key.startswith(("pipeline_", "ecr_login_")):
            config = case.host_path(case.env["DOCKER_CONFIG"]) / "config.json"
            auths = json.loads(config.read_text()).get("auths", {})
            missing = [address for address in addresses[:case.registries] if address not in auths]
            if missing:
                raise SystemExit(f"bench: {case.key} left no login for {missing[:3]} in {config}")


if __name__ == "__main__":
    sys.exit(main())
