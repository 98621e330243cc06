#!/usr/bin/python3
"""Turn sysusers.d(5) files into the shell text of an RPM %pre scriptlet.

Used by %sysusers_create_compat in rpm/macros.sysusers for a build on a
distribution without Fedora's systemd-rpm-macros (Debian). It writes the
same text as Fedora's /usr/lib/rpm/sysusers.generate-pre.sh (shipped by the
systemd package, source file sysusers.generate-pre.sh in Fedora's systemd
dist-git), so the %pre scriptlet is what a Fedora build of the spec contains:

    # Generated from NAME.sysusers
    getent group 'G' >/dev/null || groupadd -r 'G' || :
    getent passwd 'U' >/dev/null || \\
        useradd -r -g 'G' -d 'HOME' -s 'SHELL' -c 'GECOS' 'U' || :

Only getent, groupadd, useradd and usermod are called: the scriptlet works
on any system with the shadow tools, systemd running or not (a chroot or an
image build), and creates nothing that already exists.

Lines handled, as Fedora's generator does: "u NAME ID GECOS HOME SHELL"
(ID "-", a number, or "UID:GROUP"), "g NAME ID", "m USER GROUP". "u!" is
read as "u" (the account is created without a password either way). Other
line types (r) have no useradd equivalent and are skipped, as in Fedora.
A missing or "-" HOME becomes "/", SHELL becomes /usr/sbin/nologin.
"""

from __future__ import annotations

import os
import shlex
import sys


def q(value: str) -> str:
    """Quote like bash's ${value@Q} does for printable text: always '...'."""
    return "'" + value.replace("'", "'\\''") + "'"


def group(name: str, gid: str) -> list[str]:
    if gid in ("-", ""):
        return [f"getent group {q(name)} >/dev/null || groupadd -r {q(name)} || :"]
    return [f"getent group {q(name)} >/dev/null || groupadd -f -g {q(gid)} -r {q(name)} || :"]


def user(name: str, uid: str, gecos: str, group_name: str, home: str, shell: str) -> list[str]:
    gecos = "" if gecos == "-" else gecos
    home = "/" if home in ("-", "") else home
    shell = "/usr/sbin/nologin" if shell in ("-", "") else shell
    options = f"-g {q(group_name)} -d {q(home)} -s {q(shell)} -c {q(gecos)} {q(name)}"
    if uid in ("-", ""):
        return [
            f"getent passwd {q(name)} >/dev/null || \\",
            f"    useradd -r {options} || :",
        ]
    return [
        f"if ! getent passwd {q(name)} >/dev/null; then",
        f"    if ! getent passwd {q(uid)} >/dev/null; then",
        f"        useradd -r -u {q(uid)} {options} || :",
        "    else",
        f"        useradd -r {options} || :",
        "    fi",
        "fi",
        "",
    ]


def membership(user_name: str, group_name: str) -> list[str]:
    return [
        f"if getent group {q(group_name)} >/dev/null; then",
        f"    usermod -a -G {q(group_name)} '{user_name}' || :",
        "fi",
    ]


def parse(lines: list[str]) -> list[str]:
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        fields = shlex.split(line)
        fields += [""] * (6 - len(fields))
        kind, name, ident, gecos, home, shell = fields[:6]
        if kind in ("u", "u!"):
            if ":" in ident:
                uid, _, group_name = ident.partition(":")
                out += user(name, uid, gecos, group_name, home, shell)
            else:
                out += group(name, ident)
                out += user(name, ident, gecos, name, home, shell)
        elif kind == "g":
            out += group(name, ident)
        elif kind == "m":
            out += group(ident, "-")
            out += user(name, "-", "", name, "", "")
            out += membership(name, ident)
    return out


def main(argv: list[str]) -> int:
    for argument in argv:
        if os.path.exists(argument):
            print(f"# Generated from {os.path.basename(argument)}")
            with open(argument, encoding="utf-8") as handle:
                body = parse(handle.read().splitlines())
        else:
            print("# Generated from inline config")
            body = parse(argument.splitlines())
        for text in body:
            print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
