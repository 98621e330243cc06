#!/usr/bin/env python3
"""Side experiment of #12: does interpreter teardown still matter, now that ecr-login ends with sys.exit?

    python3 bench/exits.py [--runs 30] [--before 44b9b11]

On the same loopback set-up as bench/bench.py (the stand-in ECR, +30 ms per token
call, one real docker-registry), it runs, interleaved run by run so that every
variant sees the same load, on each interpreter:

- ``ecr-login login --force`` for one registry (docker store), and a run with
  nothing due, launched four ways:
  * ``sys.exit``: the shipped launcher (cli.run: ``sys.exit(main())``);
  * ``gc.freeze``: ``main()``, then ``gc.freeze()``, then ``sys.exit``;
  * ``os._exit``: ``main()``, flush stdout/stderr, ``os._exit``: no teardown at all,
    the upper bound of what any change to the exit can save;
  * the code at --before (the last bench results before #12), as it shipped then
    (its own cli.run left through os._exit), to compare before and after on the same
    machine at the same time, not across days;
- the 1-registry ``aws ecr get-login-password | docker login`` pipeline, the yardstick.

Reports medians of wall and CPU time, and each variant's median difference from
``sys.exit`` in the same round (paired: the load of the moment cancels out); then
where a no-op run's time goes (``-X importtime``, the largest imports). Writes
bench/exits.json. Takes about two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import (
    BEFORE,
    BENCH_DIR,
    BOTOCORE_ALONE,
    Case,
    LocalRegistry,
    StandinECR,
    code_description,
    copy_package,
    describe_python,
    isolated_env,
    real_aws,
    real_python,
    registry_hosts,
    run_once,
    write_config,
)

SHIPPED = "from ecr_login_pkg.cli import run\n\nrun()\n"
EXITS = {
    "sys.exit": SHIPPED,
    "gc.freeze": "import gc\nfrom ecr_login_pkg.cli import main\n\ncode = main()\ngc.freeze()\nsys.exit(code)\n",
    "os._exit": ("import os\nfrom ecr_login_pkg.cli import main\n\ncode = main()\nsys.stdout.flush()\n"
                 "sys.stderr.flush()\nos._exit(code)\n"),
}
HEAD = "#!{python}\nimport sys\nsys.path.append({site!r})\n"
# Here only, to measure what a host without python3-openssl (Debian: only Suggested by urllib3
# and requests) pays: botocore then falls back to the standard ssl module, as it does by itself
# when pyOpenSSL is not installed. Never in ecr-login.
NO_PYOPENSSL = "sys.modules['urllib3.contrib.pyopenssl'] = None  # not installed, as far as imports see\n"


def has_pyopenssl(python: str) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('OpenSSL') is None)"
    return subprocess.run([python, "-c", probe], timeout=60).returncode == 0


def launcher(path: Path, python: str, site: Path, body: str) -> str:
    path.write_text(HEAD.format(python=python, site=str(site)) + body)
    path.chmod(0o755)
    return str(path)


def import_times(runs: dict[str, tuple[str, list[str], dict[str, str]]], rounds: int = 7) -> dict[str, dict[str, Any]]:
    """Each run's imports under -X importtime, the runs taken in turn ``rounds`` times (so a burst
    of load hits them all alike): medians in ms of the total and of each module (self, cumulative)."""
    seen: dict[str, dict[str, list[tuple[float, float]]]] = {key: {} for key in runs}
    totals: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, (python, command, env) in runs.items():
            done = subprocess.run([python, "-X", "importtime", *command], env=env, capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
            total = 0.0
            for line in done.stderr.splitlines():
                if not line.startswith("import time:") or "self [us]" in line:
                    continue
                self_us, cumulative_us, name = line.split("|", 2)
                self_ms, cumulative_ms = int(self_us.split(":")[1]) / 1000, int(cumulative_us) / 1000
                total += self_ms
                seen[key].setdefault(name.strip(), []).append((self_ms, cumulative_ms))
            totals[key].append(total)
    found = {}
    for key, modules in seen.items():
        medians = {name: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
                   for name, values in modules.items()}
        found[key] = {"modules": len(medians), "total_self_ms": statistics.median(totals[key]),
                      "largest_cumulative_ms": sorted(((name, m[1]) for name, m in medians.items()),
                                                      key=lambda item: item[1], reverse=True)[:12],
                      "self_ms": {name: m[0] for name, m in medians.items()}}
    return found


def new_imports(now: dict[str, Any], before: dict[str, Any]) -> tuple[list[str], float]:
    """The modules a run imports now and did not before (ecr-login's own aside), and their self time."""
    names = [name for name in now["self_ms"] if name not in before["self_ms"] and not name.startswith("ecr_login_pkg")]
    return sorted(names, key=lambda name: name.lstrip()), sum(now["self_ms"][name] for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="rounds; every case runs once per round (default 30)")
    parser.add_argument("--delay-ms", type=float, default=30.0, help="added to every token call (default 30)")
    parser.add_argument("--before", default=BEFORE, metavar="REV", help=f"the code to compare with (default {BEFORE})")
    parser.add_argument("--code", metavar="REV", help="ecr_login_pkg as committed at REV (default: the working tree)")
    parser.add_argument("--python", action="append", help="interpreter(s) (default: python3 on PATH, /usr/bin/python3)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "exits.json")
    args = parser.parse_args(argv)
    pythons = {}
    for candidate in dict.fromkeys(args.python or [real_python("python3"), "/usr/bin/python3"]):
        try:
            pythons[candidate] = describe_python(candidate)[0]
        except (ValueError, OSError) as exc:
            print(f"exits: skipping {candidate}: {exc}", file=sys.stderr)
    aws = real_aws("aws")
    load_before = os.getloadavg()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecr-login-exits-")))
        password = "exits-" + os.urandom(12).hex()
        ecr = stack.enter_context(StandinECR(password=password, default_delay=args.delay_ms / 1000.0))
        address = stack.enter_context(LocalRegistry(password, workdir=work / "registry")).address
        hosts = registry_hosts(1)
        now_site = copy_package(work / "now", args.code, list(pythons))
        before_site = copy_package(work / "before", args.before, list(pythons))
        base = dict(os.environ)
        cases: list[Case] = []
        pipe_env = isolated_env(base, work / "home-pipeline", ecr.url)
        pipe_env["PATH"] = f"{Path(aws).parent}{os.pathsep}{pipe_env.get('PATH', os.defpath)}"
        one = ('set -o pipefail; aws ecr get-login-password --region "$2" --endpoint-url "$1" '
               '| docker login --username AWS --password-stdin "$3" >/dev/null')
        interpreter_of: dict[str, str] = {}
        cases.append(Case("pipeline_1", "1 registry", "aws | docker login (pipeline)", "aws", 1,
                          ["bash", "-c", one, "pipeline", ecr.url, hosts[0][1], address], pipe_env, 1))
        variants = [(name, now_site, body) for name, body in EXITS.items()] + [(args.before, before_site, SHIPPED)]
        for index, python in enumerate(pythons):
            tag = "deb" if python.startswith("/usr/bin/") else "local"
            without = has_pyopenssl(python)  # then also as on a host without it
            extra = [("no pyOpenSSL, sys.exit", now_site, NO_PYOPENSSL + EXITS["sys.exit"]),
                     ("no pyOpenSSL, gc.freeze", now_site, NO_PYOPENSSL + EXITS["gc.freeze"])] if without else []
            for name, site, body in variants + extra:
                slug = name.replace(".", "_").replace(", ", "_").replace(" ", "_")
                path = launcher(work / f"ecr-login-{index}-{slug}", python, site, body)
                config = write_config(work / f"{tag}-{slug}.conf", ecr.url, "docker", hosts, [address])
                env = isolated_env(base, work / f"home-{tag}-{slug}", ecr.url)
                cases.append(Case(f"force_{tag}_{slug}", "1 registry, --force", name, pythons[python], 1,
                                  [path, "login", "--force", "--config", str(config)], env, 1))
                if not name.startswith("no pyOpenSSL"):  # a no-op run imports no botocore
                    cases.append(Case(f"noop_{tag}_{slug}", "nothing due", name, pythons[python], 1,
                                      [path, "--config", str(config)], env, 0))
                    interpreter_of[f"noop_{tag}_{slug}"] = python
            # the floor: botocore alone (bench.py's), left by a normal exit, and with gc.freeze() first
            home = isolated_env(base, work / f"home-{tag}-floor", ecr.url)
            floors = [("sys.exit", ""), ("gc.freeze", "import gc\ngc.freeze()\n")]
            if without:
                floors += [("no pyOpenSSL, sys.exit", ""), ("no pyOpenSSL, gc.freeze", "import gc\ngc.freeze()\n")]
            for name, tail in floors:
                head = "import sys\n" + NO_PYOPENSSL if name.startswith("no pyOpenSSL") else ""
                slug = name.replace(".", "_").replace(", ", "_").replace(" ", "_")
                cases.append(Case(f"floor_{tag}_{slug}", "botocore alone", name, pythons[python], 0,
                                  [python, "-c", head + BOTOCORE_ALONE.format(url=ecr.url) + tail], home, 0))
        for case in cases:  # warm-up, and the first login of each no-op's home
            run_once(case, ecr, timed=False)
        started = time.time()
        for round_number in range(args.runs):
            shift = round_number % len(cases)
            for case in cases[shift:] + cases[:shift]:
                run_once(case, ecr)
            if (round_number + 1) % 10 == 0:
                print(f"exits: round {round_number + 1}/{args.runs} ({time.time() - started:.0f} s)", file=sys.stderr)
        imports = import_times({case.key: (interpreter_of[case.key], case.command, case.env) for case in cases
                                if case.key.startswith("noop_") and not case.key.endswith(("gc_freeze", "os__exit"))})
    load_after = os.getloadavg()

    by_key = {case.key: case for case in cases}
    pipeline = statistics.median(by_key["pipeline_1"].seconds)
    lines = [f"exits: {code_description(args.code)}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};",
             f"{args.runs} rounds, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after; "
             f"pipeline median {pipeline:.3f} s", "",
             "| run | interpreter | launched as | median wall | median CPU | vs sys.exit, same round (median) | "
             "/ pipeline |", "|---|---|---|---:|---:|---:|---:|"]
    rows = []
    for case in cases[1:]:
        kind, tag = case.key.split("_")[:2]
        base_case = by_key[f"{kind}_{tag}_sys_exit"]
        differences = [a - b for a, b in zip(case.seconds, base_case.seconds)]
        cpu_differences = [a - b for a, b in zip(case.cpu_seconds, base_case.cpu_seconds)]
        row: dict[str, Any] = {"key": case.key, "run": case.scenario, "interpreter": case.interpreter, "variant": case.tool,
               "median_s": statistics.median(case.seconds), "median_cpu_s": statistics.median(case.cpu_seconds),
               "paired_difference_s": statistics.median(differences),
               "paired_cpu_difference_s": statistics.median(cpu_differences),
               "ratio_to_pipeline": statistics.median(case.seconds) / pipeline,
               "seconds": case.seconds, "cpu_seconds": case.cpu_seconds}
        rows.append(row)
        lines.append(f"| {row['run']} | {row['interpreter']} | {row['variant']} | {row['median_s'] * 1000:.0f} ms | "
                     f"{row['median_cpu_s'] * 1000:.0f} ms | {row['paired_difference_s'] * 1000:+.1f} ms "
                     f"(CPU {row['paired_cpu_difference_s'] * 1000:+.1f} ms) | {row['ratio_to_pipeline']:.3f}x |")
    lines += ["", "no-op imports (-X importtime, medians of 7 runs): modules, total ms, largest cumulative"]
    for key, found in imports.items():
        largest = ", ".join(f"{name} {ms:.1f}" for name, ms in found["largest_cumulative_ms"][:8])
        lines.append(f"- {key}: {found['modules']} modules, {found['total_self_ms']:.1f} ms: {largest}")
    slug = args.before.replace(".", "_")
    for tag in ("local", "deb"):
        if f"noop_{tag}_sys_exit" in imports and f"noop_{tag}_{slug}" in imports:
            names, self_ms = new_imports(imports[f"noop_{tag}_sys_exit"], imports[f"noop_{tag}_{slug}"])
            lines.append(f"- {tag}: imported now and not at {args.before} ({len(names)}, {self_ms:.1f} ms of their own): "
                         + ", ".join(name.strip() for name in names))
    text = "\n".join(lines)
    print(text)
    args.out.write_text(json.dumps({
        "meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": code_description(args.code),
                 "runs": args.runs,
                 "delay_ms_per_token_call": args.delay_ms, "before": args.before, "interpreters": pythons,
                 "load_average_before": load_before, "load_average_after": load_after, "cpus": os.cpu_count()},
        "pipeline_1": {"median_s": pipeline, "seconds": by_key["pipeline_1"].seconds},
        "rows": rows, "imports": imports, "table_markdown": text,
    }, indent=1) + "\n")
    print(f"\nresults: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
