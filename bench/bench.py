#!/usr/bin/env python3
"""ecr-login against the pipeline it replaces, on loopback: time and peak memory.

    make bench                      # or: python3 bench/bench.py [--delay-ms 30] [--runs 5]

Starts the stand-in ECR API (tests/standin_ecr.py, with an added delay per
GetAuthorizationToken call to mimic the round trip to AWS) and one real registry
(Debian's docker-registry, htpasswd user AWS) per registry address used, then
measures, interleaved round by round, medians of --runs runs of:

1. one registry: ``aws ecr get-login-password | docker login --password-stdin``
   vs ``ecr-login login --force`` with the docker store and with the file store;
2. N registries over 5 regions (accounts x regions): the pipeline in a shell loop,
   one per registry, vs one ``ecr-login login --force`` (file store, docker store);
3. a run with nothing due vs ``python3 -c pass`` on the same interpreter;
4. the peak RSS of each (/usr/bin/time's %M: the largest process of its tree);
5. botocore alone (imported as ecr-login imports it, one ECR client made, no call):
   the floor under a forced run's time and memory, which no change to ecr-login lowers.

ecr-login runs from a compiled copy of ecr_login_pkg/ through a launcher like the
Debian package's /usr/bin/ecr-login (debian/bin/ecr-login), once per interpreter
given (default: the real ``python3`` first on PATH, and /usr/bin/python3 when it
has botocore). Each row names its interpreter; each no-op is compared with
``python3 -c pass`` on the same one. Wall times suffer when other work shares the
CPUs; the CPU-time column much less. The AWS
CLI is the one on PATH (a pyenv shim is resolved to the script behind it).
Passwords live only in files and pipes. Every child has a timeout; the servers
stop on exit. Prints a table, writes bench/results.json and bench/chart.png.
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))

from local_registry import DOCKER_REGISTRY, LocalRegistry  # noqa: E402
from standin_ecr import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, StandinECR  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1")
CHILD_TIMEOUT = 600.0
TIME = "/usr/bin/time"  # Debian package `time`
GOALS = {
    "one_registry": 0.5,  # ecr-login / pipeline, one registry
    "many_registries": 0.05,  # ecr-login (file store) / shell loop, 50 registries over 5 regions
    "no_op": 2.0,  # no-op run / python3 -c pass, same interpreter
    "peak_rss": 0.6,  # ecr-login / the AWS CLI
}
LAUNCHER = '''#!{python}
# debian/bin/ecr-login (the package's /usr/bin/ecr-login), with the package from the benchmark's
# compiled copy, found after the standard library as an installed package is.
import sys
sys.path.append({site!r})
from ecr_login_pkg.cli import run

run()
'''
# What botocore itself costs, with none of ecr-login's work: imported as ecr-login imports it
# (botosetup: load_botocore, lean_loader), one ECR client made, no call, and left as ecr-login leaves. The floor
# under ecr-login --force.
BOTOCORE_ALONE = """
import sys
sys.path.append({site!r})
from ecr_login_pkg.botosetup import lean_loader, load_botocore
load_botocore()
import botocore.session
session = botocore.session.Session()
session.register_component("data_loader", lean_loader(session.get_config_variable("data_path")))
session.create_client("ecr", region_name="us-east-1", endpoint_url={url!r})
import os
os._exit(0)  # as ecr-login leaves (cli.run): no interpreter teardown
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
    repeat: int = 1  # runs per round (more for the millisecond-scale cases)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # user + system of the whole process tree
    rss_kb: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "key": self.key, "scenario": self.scenario, "tool": self.tool, "interpreter": self.interpreter,
            "registries": self.registries, "runs": len(self.seconds),
            "median_s": statistics.median(self.seconds), "min_s": min(self.seconds), "max_s": max(self.seconds),
            "median_cpu_s": statistics.median(self.cpu_seconds),
            "median_peak_rss_kb": int(statistics.median(self.rss_kb)), "seconds": self.seconds, "peak_rss_kb": self.rss_kb,
        }


def run_once(case: Case, ecr: StandinECR, *, timed: bool = True, rss: bool = True) -> None:
    """Run the case's command once; record its wall time and/or its peak RSS.

    The peak RSS comes from /usr/bin/time (%M: the largest process of the tree; a child
    forked from this big Python process would report this process's RSS instead). It adds
    a fork and an exec, so the millisecond cases are timed in runs of their own without it.
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
    if timed:
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


def install_copy(work: Path, pythons: list[str]) -> dict[str, Path]:
    """A compiled copy of ecr_login_pkg and one launcher per interpreter."""
    site = work / "site"
    shutil.copytree(REPO / "ecr_login_pkg", site / "ecr_login_pkg", ignore=shutil.ignore_patterns("__pycache__"))
    launchers = {}
    for index, python in enumerate(pythons):
        subprocess.run([python, "-m", "compileall", "-q", str(site)], check=True, timeout=120)
        launcher = work / f"ecr-login-{index}"
        launcher.write_text(LAUNCHER.format(python=python, site=str(site)))
        launcher.chmod(0o755)
        launchers[python] = launcher
    return launchers


def registry_hosts(count: int) -> list[tuple[str, str]]:
    """(ECR hostname, region) for ``count`` registries: accounts x the five regions."""
    hosts = []
    for index in range(count):
        account = f"{100000000001 + index // len(REGIONS):012d}"
        region = REGIONS[index % len(REGIONS)]
        hosts.append((f"{account}.dkr.ecr.{region}.amazonaws.com", region))
    return hosts


def isolated_env(base: dict[str, str], home: Path, ecr_url: str) -> dict[str, str]:
    """A fresh user: its own home, docker config and state; the stand-in's credentials."""
    home.mkdir(parents=True)
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("")
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
            cases.append(Case("pipeline_1", "1 registry", "aws | docker login (pipeline)", cli, 1, command, env, 1))
        else:
            command = ["bash", "-c", loop, "pipeline-loop", ecr_url, *specs]
            cases.append(Case(f"pipeline_{count}", f"{count} registries / {len(REGIONS)} regions",
                              "aws | docker login, shell loop", cli, count, command, env, count))
    for python, label in pythons.items():
        launcher = str(launchers[python])
        tag = "deb" if python.startswith("/usr/bin/") else "local"
        for count in args.sizes:
            hosts = registry_hosts(count)
            scenario = "1 registry" if count == 1 else f"{count} registries / {len(REGIONS)} regions"
            for store in ("docker", "file"):
                home = work / f"home-{tag}-{count}-{store}"
                env = isolated_env(base, home, ecr_url)
                config = write_config(work / f"ecr-login-{tag}-{count}-{store}.conf", ecr_url, store, hosts, addresses)
                regions = len({region for _host, region in hosts})
                cases.append(Case(f"ecr_login_{tag}_{count}_{store}", scenario, f"ecr-login login --force ({store} store)",
                                  label, count, [launcher, "login", "--force", "--config", str(config)], env, regions))
                if count in (1, max(args.sizes)):
                    cases.append(Case(f"noop_{tag}_{count}_{store}", f"no-op, {scenario}",
                                      f"ecr-login, nothing due ({store} store)", label, count,
                                      [launcher, "--config", str(config)], env, 0, repeat=args.noop_repeat))
        alone = BOTOCORE_ALONE.format(site=str(work / "site"), url=ecr_url)
        cases.append(Case(f"botocore_{tag}", "botocore alone (the floor)", "import botocore + one ECR client, no call",
                          label, 1, [python, "-c", alone], isolated_env(base, work / f"home-botocore-{tag}", ecr_url), 0))
        pass_env = {k: v for k, v in base.items() if not k.startswith("PYTHON")}
        cases.append(Case(f"pass_{tag}", "interpreter start", "python3 -c pass", label, 0, [python, "-c", "pass"],
                          pass_env, 0, repeat=args.noop_repeat))
    return cases


def ratio(cases: dict[str, Case], numerator: str, denominator: str, *, rss: bool = False, cpu: bool = False) -> float | None:
    if numerator not in cases or denominator not in cases:
        return None

    def pick(case: Case) -> float:
        return statistics.median(case.rss_kb if rss else case.cpu_seconds if cpu else case.seconds)

    return pick(cases[numerator]) / pick(cases[denominator])


def goal_rows(cases: dict[str, Case], pythons: dict[str, str], sizes: list[int]) -> list[dict[str, object]]:
    rows = []
    biggest = max(sizes)
    for python, label in pythons.items():
        tag = "deb" if python.startswith("/usr/bin/") else "local"
        checks = [
            ("one_registry", "1 registry: ecr-login --force (docker store) / pipeline",
             ratio(cases, f"ecr_login_{tag}_1_docker", "pipeline_1")),
            ("one_registry", "1 registry: ecr-login --force (file store) / pipeline",
             ratio(cases, f"ecr_login_{tag}_1_file", "pipeline_1")),
            ("many_registries", f"{biggest} registries / {len(REGIONS)} regions: ecr-login --force (file) / shell loop",
             ratio(cases, f"ecr_login_{tag}_{biggest}_file", f"pipeline_{biggest}")),
            ("no_op", "no-op, 1 registry (docker store) / python3 -c pass",
             ratio(cases, f"noop_{tag}_1_docker", f"pass_{tag}")),
            ("no_op", f"no-op, {biggest} registries (file store) / python3 -c pass",
             ratio(cases, f"noop_{tag}_{biggest}_file", f"pass_{tag}")),
            ("no_op", "no-op, 1 registry (docker store) / python3 -c pass, in CPU time (less sensitive to load)",
             ratio(cases, f"noop_{tag}_1_docker", f"pass_{tag}", cpu=True)),
            ("no_op", f"no-op, {biggest} registries (file store) / python3 -c pass, in CPU time",
             ratio(cases, f"noop_{tag}_{biggest}_file", f"pass_{tag}", cpu=True)),
            ("peak_rss", "peak RSS: ecr-login --force, 1 registry (file store) / aws get-login-password",
             ratio(cases, f"ecr_login_{tag}_1_file", "aws_alone", rss=True)),
            ("peak_rss", f"peak RSS: ecr-login --force, {biggest} registries (file store) / aws get-login-password",
             ratio(cases, f"ecr_login_{tag}_{biggest}_file", "aws_alone", rss=True)),
            ("peak_rss", "peak RSS of botocore alone (import + one ECR client, no ecr-login code) / aws get-login-password",
             ratio(cases, f"botocore_{tag}", "aws_alone", rss=True)),
            ("one_registry", "time of botocore alone (import + one ECR client, no call) / pipeline",
             ratio(cases, f"botocore_{tag}", "pipeline_1")),
        ]
        for goal, what, value in checks:
            if value is not None:
                rows.append({"interpreter": label, "goal": goal, "what": what, "ratio": value,
                             "target": GOALS[goal], "met": value <= GOALS[goal]})
    return rows


def table(cases: list[Case], goals: list[dict[str, object]]) -> str:
    lines = ["| scenario | tool | interpreter | median s | min-max s | CPU s | peak RSS MB |",
             "|---|---|---|---:|---:|---:|---:|"]
    for case in cases:
        lines.append(
            f"| {case.scenario} | {case.tool} | {case.interpreter} | {statistics.median(case.seconds):.3f} | "
            f"{min(case.seconds):.3f}-{max(case.seconds):.3f} | {statistics.median(case.cpu_seconds):.3f} | "
            f"{statistics.median(case.rss_kb) / 1024:.1f} |"
        )
    lines += ["", "| goal | interpreter | ratio | target | met |", "|---|---|---:|---:|---|"]
    for row in goals:
        lines.append(f"| {row['what']} | {row['interpreter']} | {row['ratio']:.3f}x | <= {row['target']}x | "
                     f"{'yes' if row['met'] else 'NO'} |")
    return "\n".join(lines)


def draw_chart(path: Path, cases: dict[str, Case], pythons: dict[str, str], sizes: list[int], delay_ms: float) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is missing (pip install -r .ci/requirements-bench.txt): no chart drawn"
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    series: list[tuple[str, str, str | None, str, str]] = [
        ("aws | docker login (loop)", "pipeline_{n}", "pipeline_1", "black", "o")]
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red"])
    for python, label in pythons.items():
        tag = "deb" if python.startswith("/usr/bin/") else "local"
        short = label.split(" (")[0] + (" Debian" if tag == "deb" else "")
        series.append((f"ecr-login, docker store, {short}", f"ecr_login_{tag}_{{n}}_docker", None, next(colours), "s"))
        series.append((f"ecr-login, file store, {short}", f"ecr_login_{tag}_{{n}}_file", None, next(colours), "^"))
    for name, pattern, first, colour, marker in series:
        points = [(n, statistics.median(cases[key].seconds)) for n in sizes
                  if (key := (first if n == 1 and first else pattern.format(n=n))) in cases]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour, label=name)
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
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return f"chart: {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=30.0, help="added to every token call (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="rounds; each case runs once per round (default 5, at least 5)")
    parser.add_argument("--noop-repeat", type=int, default=10, help="runs per round of the millisecond cases (default 10)")
    parser.add_argument("--sizes", default="1,10,50", help="numbers of registries (default 1,10,50)")
    parser.add_argument("--python", action="append", help="interpreter(s) for ecr-login (repeatable)")
    parser.add_argument("--aws", default="aws", help="the AWS CLI (default: aws on PATH)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where results.json and chart.png go")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, sizes 1,10 (not for results)")
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
        launchers = install_copy(work, list(pythons))
        cases = build_cases(args, work, ecr.url, addresses, pythons, launchers, aws)
        by_key = {case.key: case for case in cases}
        for case in cases:  # warm-up, not recorded: page cache, pyc files, and a first login for the no-op runs
            run_once(case, ecr, timed=False, rss=False)
        slow = [case for case in cases if case.repeat == 1]
        fast = [case for case in cases if case.repeat > 1]  # no-op runs and `python3 -c pass`: milliseconds
        started = time.time()
        for round_number in range(1, args.runs + 1):
            shift = round_number % len(slow)
            for case in slow[shift:] + slow[:shift]:  # rotated: no case always follows the same one
                run_once(case, ecr)
            # The millisecond cases alternate run by run, so that each no-op and the `python3 -c pass`
            # it is compared with see the same load on the machine.
            for _ in range(args.noop_repeat):
                for case in fast:
                    run_once(case, ecr, rss=False)
            for case in fast:
                run_once(case, ecr, timed=False)
            print(f"bench: round {round_number}/{args.runs} done ({time.time() - started:.0f} s)", file=sys.stderr)
        check_logins(by_key, addresses, args.sizes)
        calls = ecr.call_count

    goals = goal_rows(by_key, pythons, args.sizes)
    text = table(cases, goals)
    load_after = os.getloadavg()
    print(f"ecr-login bench, {time.strftime('%Y-%m-%d', time.gmtime())}: {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.1f} before and {load_after[0]:.1f} after; +{args.delay_ms:g} ms per token call; "
          f"medians of {args.runs} rounds ({args.runs * args.noop_repeat} runs for the millisecond cases)\n")
    print(text)
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "delay_ms_per_token_call": args.delay_ms, "rounds": args.runs, "noop_repeat": args.noop_repeat,
            "sizes": args.sizes, "regions": list(REGIONS), "aws_cli": aws, "aws_cli_version": aws_version(aws),
            "docker": shutil.which("docker"), "interpreters": pythons, "botocore": botocore_versions,
            "token_calls_served": calls, "quick": args.quick,
        },
        "cases": [case.summary() for case in cases],
        "goals": goals,
        "table_markdown": text,
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
            config = Path(case.env["DOCKER_CONFIG"], "config.json")
            auths = json.loads(config.read_text()).get("auths", {})
            missing = [address for address in addresses[:case.registries] if address not in auths]
            if missing:
                raise SystemExit(f"bench: {case.key} left no login for {missing[:3]} in {config}")


if __name__ == "__main__":
    sys.exit(main())
