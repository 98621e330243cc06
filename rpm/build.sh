#!/bin/bash
# rpm/build.sh — build the ecr-login RPM on Debian (what `make rpm` runs).
#
#   rpm/build.sh [--outdir DIR] [--systemd-macros=systemctl|update-helper] [--no-lint]
#
# 1. Source tarball ecr-login-VERSION.tar.gz from the git work tree: every
#    file git knows about or would add (`git ls-files --cached --others
#    --exclude-standard`), as it is on disk, so uncommitted edits are built.
# 2. rpmbuild -ba --nodeps in DIR/rpm (default out/rpm), with the systemd,
#    sysusers and python macros Debian lacks loaded from rpm/macros.* (rpm's
#    own macro files load first; macros.buildhost makes Debian's buildroot
#    post-processing Fedora's). --nodeps: Debian has no RPM database that could satisfy
#    BuildRequires. The Packager tag is set here, by the build, as build
#    systems do (Fedora's spec files must not set it).
# 3. The .noarch.rpm and .src.rpm are copied to DIR (default out/).
# 4. rpmlint on both (with rpm/ecr-login.rpmlintrc): any error fails the build.
# 5. The scriptlets are printed (rpm -qp --scripts) and checked: no macro left
#    unexpanded, the user created in %pre, the timer preset/disabled/restarted.
#
# --systemd-macros=update-helper builds with the scriptlets of a current
# Fedora instead (see rpm/macros.systemd-update-helper); they do nothing on a
# Debian system, so use it only to compare.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
outdir="$root/out"
systemd_macros=systemctl
lint=1

while (($#)); do
    case "$1" in
        --outdir) outdir="$2"; shift 2 ;;
        --outdir=*) outdir="${1#*=}"; shift ;;
        --systemd-macros=*) systemd_macros="${1#*=}"; shift ;;
        --no-lint) lint=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
done
case "$systemd_macros" in
    systemctl|update-helper) ;;
    *) echo "build.sh: --systemd-macros must be systemctl or update-helper" >&2; exit 64 ;;
esac

for tool in git rpmbuild rpm rpmlint /usr/bin/python3; do
    if [[ $tool == rpmlint && $lint == 0 ]]; then continue; fi
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (apt-get install rpm rpmlint python3-setuptools)" >&2; exit 69; }
done

name=ecr-login
spec="$here/$name.spec"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/ecr_login_pkg/__init__.py")"
spec_version="$(sed -n 's/^Version:[[:space:]]*//p' "$spec")"
if [[ -z $version || $version != "$spec_version" ]]; then
    echo "build.sh: ecr_login_pkg/__init__.py has version '$version' but $name.spec has '$spec_version'" >&2
    exit 65
fi

mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
topdir="$outdir/rpm"
rm -rf "$topdir"
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}

# --- 1. source tarball ------------------------------------------------------
# Reproducible: sorted names, the last commit's time, root ownership.
cd "$root"
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
tarball="$topdir/SOURCES/$name-$version.tar.gz"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' path; do
          # Tracked but deleted in the work tree: not part of this build.
          [[ -e $path || -L $path ]] && printf '%s\0' "$path"
      done \
    | grep -zv '^out/' \
    | tar --create --null --files-from=- --sort=name --mtime="@$epoch" \
          --owner=0 --group=0 --numeric-owner --transform="s,^,$name-$version/," \
    | gzip -n -9 >"$tarball"
cp "$root/systemd/$name.sysusers" "$topdir/SOURCES/$name.sysusers"
cp "$spec" "$topdir/SPECS/$name.spec"

# --- 2. rpmbuild ------------------------------------------------------------
macros=(--load "$here/macros.buildhost" --load "$here/macros.python"
        --load "$here/macros.systemd" --load "$here/macros.sysusers")
if [[ $systemd_macros == update-helper ]]; then
    macros+=(--load "$here/macros.systemd-update-helper")
fi
# Same package whatever the caller's environment: setuptools byte-compiles the
# modules (.pyc and .opt-1.pyc, as Fedora's brp-python-bytecompile does) only
# when PYTHONDONTWRITEBYTECODE is unset; a fixed hash seed and
# SOURCE_DATE_EPOCH make the result reproducible.
unset PYTHONDONTWRITEBYTECODE
export PYTHONHASHSEED=0
export SOURCE_DATE_EPOCH="$epoch"
rpmbuild -ba --nodeps \
    "${macros[@]}" \
    --define "_topdir $topdir" \
    --define "_ecr_rpm_auxdir $here" \
    --define "packager ecr-login developers <ecr-login@example.org>" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    "$topdir/SPECS/$name.spec"

# --- 3. results to DIR ------------------------------------------------------
shopt -s nullglob
rpms=("$topdir"/RPMS/noarch/"$name-$version"-*.noarch.rpm)
srpms=("$topdir"/SRPMS/"$name-$version"-*.src.rpm)
if ((${#rpms[@]} != 1 || ${#srpms[@]} != 1)); then
    echo "build.sh: expected one .noarch.rpm and one .src.rpm in $topdir" >&2
    exit 70
fi
rm -f "$outdir/$name"-*.noarch.rpm "$outdir/$name"-*.src.rpm
cp "${rpms[0]}" "${srpms[0]}" "$outdir/"
rpm_file="$outdir/$(basename "${rpms[0]}")"
srpm_file="$outdir/$(basename "${srpms[0]}")"

# --- 4. rpmlint -------------------------------------------------------------
if ((lint)); then
    echo "== rpmlint"
    # rpmlint exits non-zero on any error (BadnessThreshold -1).
    rpmlint --rpmlintrc "$here/$name.rpmlintrc" "$rpm_file" "$srpm_file"
fi

# --- 5. scriptlets ----------------------------------------------------------
scripts="$(rpm -qp --scripts "$rpm_file")"
echo "== scriptlets of $(basename "$rpm_file")"
printf '%s\n' "$scripts"
fail=0
if grep -nE '%[{(!?]|%[A-Za-z_]' <<<"$scripts"; then
    echo "build.sh: unexpanded RPM macro in the scriptlets (above)" >&2
    fail=1
fi
need=("useradd -r -g 'ecr-login' -d '/var/lib/ecr-login'")
if [[ $systemd_macros == systemctl ]]; then
    need+=("systemctl --no-reload preset $name.timer"
           "systemctl --no-reload disable --now $name.timer"
           "systemctl try-restart $name.timer")
else
    need+=("systemd-update-helper install-system-units $name.timer"
           "systemd-update-helper remove-system-units $name.timer"
           "systemd-update-helper mark-restart-system-units $name.timer")
fi
for text in "${need[@]}"; do
    grep -qF -- "$text" <<<"$scripts" || { echo "build.sh: scriptlets lack: $text" >&2; fail=1; }
done
((fail == 0)) || exit 1
echo "== built: $rpm_file $srpm_file"
