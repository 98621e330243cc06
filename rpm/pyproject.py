"""Stand-ins for the helper scripts of Fedora's pyproject-rpm-macros, for a build on Debian.

rpm/macros.python calls this for what Fedora's macros do with
pyproject_buildrequires.py, pyproject_save_files.py, pathfix.py and
pyproject_preprocess_record.py. Same inputs, same outputs, far fewer cases
(a pure-Python wheel, setuptools backend). check-import runs under the
target's interpreter (3.9 for RHEL 9), so this file keeps to Python 3.9.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath


def _requirement_to_rpm(requirement: str) -> str:
    """'setuptools >= 40.8' -> 'python3dist(setuptools) >= 40.8' (one clause only)."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(>=|==|<=|>|<)\s*([0-9][0-9A-Za-z.]*))?\s*", requirement)
    if not match:
        raise SystemExit(f"pyproject.py: cannot express the build requirement {requirement!r} in RPM terms")
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    if match.group(2):
        return f"python3dist({name}) {match.group(2)} {match.group(3)}"
    return f"python3dist({name})"


def buildrequires(args: argparse.Namespace) -> int:
    """Print the BuildRequires of pyproject.toml's [build-system] and of the backend's hook."""
    import tomllib  # the build tool's interpreter (Debian's 3.11), not the target's

    table = tomllib.loads(Path("pyproject.toml").read_text()).get("build-system")
    if not table:
        raise SystemExit("pyproject.py: pyproject.toml has no [build-system] table")
    requires = list(table.get("requires", []))
    # The backend's own additions (setuptools < 70 asks for wheel), asked of
    # the target's interpreter as Fedora's script does.
    hook = (
        "import importlib, json; backend = importlib.import_module({!r}); "
        "print(json.dumps(backend.get_requires_for_build_wheel({{}})))"
    ).format(table["build-backend"])
    done = subprocess.run([args.python, "-c", hook], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pyproject.py: get_requires_for_build_wheel failed:\n{done.stderr}")
    requires += json.loads(done.stdout.strip().splitlines()[-1])
    for requirement in dict.fromkeys(requires):
        print(_requirement_to_rpm(requirement))
    return 0


def shebang_fix(args: argparse.Namespace) -> int:
    """Rewrite a python shebang to the given interpreter line (pathfix.py -pni)."""
    for name in args.files:
        path = Path(name)
        data = path.read_bytes()
        first, newline, rest = data.partition(b"\n")
        if first.startswith(b"#!") and b"python" in first:
            path.write_bytes(b"#!" + args.interpreter.encode() + newline + rest)
            print(f"{name}: shebang set to {args.interpreter}")
    return 0


def _record_rows(buildroot: Path, sitelib: str) -> tuple[Path, list[str]]:
    records = sorted((buildroot / sitelib.lstrip("/")).glob("*.dist-info/RECORD"))
    if len(records) != 1:
        raise SystemExit(f"pyproject.py: expected one .dist-info/RECORD in {sitelib}, found {records}")
    with open(records[0], newline="") as handle:
        rows = [row[0] for row in csv.reader(handle) if row]
    return records[0], rows


def finish_install(args: argparse.Namespace) -> int:
    """Keep the RECORD's paths (absolute, as installed) for save-files; drop RECORD and direct_url.json."""
    buildroot = Path(args.buildroot)
    record, rows = _record_rows(buildroot, args.sitelib)
    site = PurePosixPath(args.sitelib)
    paths = []
    for row in rows:
        absolute = os.path.normpath(str(site / row))
        paths.append(absolute)
    dist_info = record.parent
    (dist_info / "INSTALLER").write_text("rpm\n")
    for name in ("RECORD", "direct_url.json", "REQUESTED"):
        (dist_info / name).unlink(missing_ok=True)
    installed = f"{args.sitelib}/{dist_info.name}"
    paths = [p for p in paths if not p.startswith(f"{installed}/") or (buildroot / p.lstrip("/")).exists()]
    paths.append(f"{installed}/INSTALLER")
    Path(args.record).write_text("\n".join(sorted(set(paths))) + "\n")
    return 0


def save_files(args: argparse.Namespace) -> int:
    """%{pyproject_files}: the chosen top-level modules file by file, %dir lines, the dist-info."""
    buildroot = Path(args.buildroot)
    site = args.sitelib
    paths = Path(args.record).read_text().split()
    dist_info = sorted({p[len(site) + 1:].split("/")[0] for p in paths if ".dist-info/" in p})
    if len(dist_info) != 1:
        raise SystemExit(f"pyproject.py: expected one .dist-info in the RECORD, found {dist_info}")
    tag = "cpython-" + args.python_version.replace(".", "")
    lines: list[str] = []
    matched: set[str] = set()
    directories: set[str] = set()
    for path in paths:
        relative = path[len(site) + 1:] if path.startswith(site + "/") else None
        if relative is None:
            continue  # scripts in %{_bindir} and the like: the spec lists them
        top = relative.split("/")[0]
        if top == dist_info[0]:
            continue
        top_name = top[:-3] if top.endswith(".py") else top
        globs = [g for g in args.globs if fnmatch.fnmatch(top_name, g)]
        if not globs:
            continue
        matched.update(globs)
        parent = PurePosixPath(path).parent
        while str(parent) != site:
            directories.add(str(parent))
            parent = parent.parent
        lines.append(path)
        if path.endswith(".py"):
            cache = PurePosixPath(path).parent / "__pycache__"
            directories.add(str(cache))
            stem = PurePosixPath(path).stem
            lines.append(f"{cache}/{stem}.{tag}{{,.opt-?}}.pyc")
    unmatched = [g for g in args.globs if g not in matched]
    if unmatched:
        raise SystemExit(f"pyproject.py: no top-level module matches {unmatched}")
    info = f"{site}/{dist_info[0]}"
    licenses = [p for p in paths if p.startswith(info + "/") and re.search(r"(LICEN[CS]E|COPYING|NOTICE)", p)]
    if args.license_required and not licenses:
        raise SystemExit(f"pyproject.py: -l given but {info} holds no license file")
    lines.append(f"%dir {info}")
    for path in paths:
        if path.startswith(info + "/"):
            lines.append(f"%license {path}" if path in licenses else path)
    lines += [f"%dir {d}" for d in sorted(directories)]
    missing = [p for p in paths if p.startswith(info + "/") and not (buildroot / p.lstrip("/")).exists()]
    if missing:
        raise SystemExit(f"pyproject.py: the RECORD lists files not in the buildroot: {missing}")
    Path(args.output).write_text("\n".join(sorted(set(lines))) + "\n")
    return 0


def check_import(args: argparse.Namespace) -> int:
    """Import every module the file list names (Fedora's %pyproject_check_import)."""
    prefix = args.sitelib.rstrip("/") + "/"
    modules = []
    for line in Path(args.files).read_text().splitlines():
        if line.startswith("%") or not line.endswith(".py") or not line.startswith(prefix):
            continue
        parts = line[len(prefix):-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name and not any(fnmatch.fnmatch(name, pattern) for pattern in args.exclude):
            modules.append(name)
    if not modules:
        raise SystemExit("pyproject.py: no module to import")
    for name in sorted(modules):
        print(f"Check import: {name}")
        module = importlib.import_module(name)
        where = os.path.realpath(module.__file__ or "")
        if not where.startswith(os.path.realpath(os.environ["PYTHONPATH"].split(":")[0])):
            raise SystemExit(f"pyproject.py: {name} was imported from {where}, not from the buildroot")
    print(f"Imported {len(modules)} modules with Python {sys.version.split()[0]}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("buildrequires")
    p.add_argument("--python", required=True)
    p.set_defaults(run=buildrequires)
    p = commands.add_parser("shebang-fix")
    p.add_argument("interpreter")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=shebang_fix)
    p = commands.add_parser("finish-install")
    for option in ("--buildroot", "--sitelib", "--record"):
        p.add_argument(option, required=True)
    p.set_defaults(run=finish_install)
    p = commands.add_parser("save-files")
    for option in ("--buildroot", "--sitelib", "--record", "--output", "--python-version"):
        p.add_argument(option, required=True)
    p.add_argument("--license-required", action="store_true")
    p.add_argument("globs", nargs="+")
    p.set_defaults(run=save_files)
    p = commands.add_parser("check-import")
    p.add_argument("--files", required=True)
    p.add_argument("--sitelib", required=True)
    p.add_argument("--exclude", action="append", default=[])
    p.set_defaults(run=check_import)
    args = parser.parse_args()
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
