#!/bin/bash
# Install everything the build, the demo and the tests need on a fresh Debian 12 machine.
# Idempotent: a second run only checks (about a second). Lists live beside this script so
# each area (tests, packaging, guest, bench) adds its own needs in one place.
#
#  1. Debian packages from apt-packages.txt (apt-get; python3-venv among them).
#  2. The project's virtual environment, $VENV (default .venv/ in the checkout), made by
#     the python3 first on PATH, with requirements-test.txt pip-installed into it. The
#     system interpreter is never touched, so this works where pip refuses to install
#     (Debian 12's /usr/bin/python3: "externally-managed-environment").
#
# Why an isolated venv (no --system-site-packages): the tests get the same pip versions
# whichever python3 made it. With Debian's site-packages visible, pip would count
# python3-boto3 1.26 as installed and then put awscli's newer botocore beside it, a mix
# no one ships; with pyenv's, results would depend on what that interpreter happens to
# hold. Debian's own python3 + python3-boto3 (what the package runs on) is tested by
# calling /usr/bin/python3 explicitly (tests/test_debian_python.py and others).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="${VENV:-$repo/.venv}"
requirements="$here/requirements-test.txt"

# --- 1. Debian packages -----------------------------------------------------------
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^\s*$/d' "$here/apt-packages.txt" | sort -u)
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. the project's virtual environment ------------------------------------------
base="$(command -v python3)" || { echo "setup: no python3 on PATH" >&2; exit 1; }
# The interpreter itself (a pyenv shim is a script): what a venv made by it points to.
base_prefix="$(python3 -c 'import sys; print(sys.base_prefix)')"
made_from=""
if [[ -x $venv/bin/python ]]; then
    made_from="$("$venv/bin/python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null || true)"
fi
if [[ $made_from != "$base_prefix" ]]; then
    if [[ -e $venv ]]; then
        echo "setup: $venv was made by ${made_from:-a python3 that no longer runs}, not by $base ($base_prefix): making it anew"
        rm -rf "$venv"
    fi
    echo "setup: creating the virtual environment $venv with $base ($(python3 -V 2>&1))"
    python3 -m venv "$venv" || { rm -rf "$venv"; echo "setup: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi

# pip runs only when the requirements changed since the last successful install.
stamp="$venv/.requirements-test.sha256"
wanted_sum="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted_sum" ]]; then
    echo "setup: pip install -r ${requirements#"$repo"/} into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$wanted_sum" >"$stamp"
fi
