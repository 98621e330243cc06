#!/bin/bash
# rpm/build.sh — build the ecr-login RPM on Debian (what `make rpm` runs).
#
#   rpm/build.sh [--target fedora|el9] [--outdir DIR]
#                [--systemd-macros=systemctl|update-helper] [--no-lint]
#
# --target (default $RPM_TARGET, else fedora): the distribution the RPM is
# for, as its own build would make it: fedora = Fedora 42 (Python 3.13),
# el9 = RHEL 9 with EPEL 9 (Python 3.9). rpm/target-TARGET.macros.
#
# 1. Source tarball ecr-login-VERSION.tar.gz: `make dist`, the tree as it is
#    on disk (uncommitted edits included) without VCS data or build output;
#    no git needed (an unpacked release tarball builds too).
# 2. The build's interpreter of the target's Python version: a venv (cached
#    under /var/cache/ecr-login-tests or ~/.cache/ecr-login-tests) of
#    python3.X ($PYTHON3_X e.g. PYTHON3_13, else on PATH, else pyenv's) with
#    the target's versions of setuptools, wheel and pytest (pip, once).
#    A host without python3.X (a stock Debian 12: 3.11 only) builds with
#    the python3 of a Debian release that has it instead: trixie's 3.13,
#    bullseye's 3.9, debootstrapped once into tests/guest.py's tarball cache
#    (about 40 s and 60 MB each), unpacked per build into /var/tmp and
#    entered with chroot for every python step (needs root; about 5 s more
#    per build, 10 s more the first time, when pip fills the venv).
# 3. rpmbuild -ba --nodeps in DIR/rpm (default out/rpm), with the target's,
#    systemd, sysusers and python macros Debian lacks loaded from
#    rpm/target-*.macros and rpm/macros.* (rpm's own macro files load first;
#    macros.buildhost makes Debian's buildroot post-processing Fedora's).
#    --nodeps: Debian has no RPM database that could satisfy BuildRequires.
#    The Packager tag is set here, by the build, as build systems do
#    (Fedora's spec files must not set it).
# 4. The .noarch.rpm and .src.rpm are copied to DIR (default out/).
# 5. rpmlint on both (with rpm/ecr-login.rpmlintrc): any error fails the build.
# 6. The payload and scriptlets are printed and checked: python(abi) and
#    the sitelib of the target's Python, no macro left unexpanded, the user
#    created in %pre where the target needs it, the timer preset/disabled/
#    restarted.
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
target="${RPM_TARGET:-fedora}"

while (($#)); do
    case "$1" in
        --outdir) outdir="$2"; shift 2 ;;
        --outdir=*) outdir="${1#*=}"; shift ;;
        --systemd-macros=*) systemd_macros="${1#*=}"; shift ;;
        --no-lint) lint=0; shift ;;
        --target) target="$2"; shift 2 ;;
        --target=*) target="${1#*=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
done
# The build's tools of each target: the versions its distribution ships
# (Fedora 42: python3-setuptools 74.1.3, python3-wheel 0.45.1, python3-pytest
# 8.3.4; RHEL 9: 53.0.0, 0.36.2, 6.2.2).
case "$target" in
    fedora) dist=.fc42; python_version=3.13; host_pins=(setuptools==74.1.3 wheel==0.45.1 pytest==8.3.4) ;;
    el9) dist=.el9; python_version=3.9; host_pins=(setuptools==53.0.0 wheel==0.36.2 pytest==6.2.2) ;;
    *) echo "build.sh: --target must be fedora or el9 (RPM_TARGET)" >&2; exit 64 ;;
esac
case "$systemd_macros" in
    systemctl|update-helper) ;;
    *) echo "build.sh: --systemd-macros must be systemctl or update-helper" >&2; exit 64 ;;
esac

for tool in make tar rpmbuild rpm rpmlint /usr/bin/python3; do
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
# Reproducible (sorted names, root ownership, the time of the last packaging
# change): the Makefile's `dist`, into the rpmbuild tree.
cd "$root"
epoch="$(sed -n 's/^\* \([A-Z][a-z]\{2\} [A-Z][a-z]\{2\} [0-9]\{1,2\} [0-9]\{4\}\) .*/\1/p' "$spec" | head -1)"
epoch="$(date -u -d "$epoch" +%s)"
make --no-print-directory -s dist OUT="$topdir/dist" SOURCE_DATE_EPOCH="$epoch" >/dev/null
mv "$topdir/dist/$name-$version.tar.gz" "$topdir/SOURCES/"
rm -rf "$topdir/dist"
cp "$root/systemd/$name.sysusers" "$topdir/SOURCES/$name.sysusers"
cp "$spec" "$topdir/SPECS/$name.spec"

# --- 2. the build's interpreter of the target's version ---------------------
if [[ $(id -u) == 0 ]]; then cache="${ECR_LOGIN_TEST_CACHE:-/var/cache/ecr-login-tests}"
else cache="${ECR_LOGIN_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-login-tests}"; fi
# The host's python3.X when it has one (fast path): $PYTHON3_X, else
# python3.X on PATH (not a pyenv shim), else pyenv's newest 3.X.*.
# tests/test_rpm.py (target_python) looks the same way.
base_var="PYTHON${python_version/./_}"
base="${!base_var:-}"
if [[ -z $base ]]; then
    base="$(command -v "python$python_version" 2>/dev/null || true)"
    if [[ -z $base || $base == */shims/* ]]; then
        base="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$python_version".*/bin/python"$python_version" 2>/dev/null | sort -V | tail -1 || true)"
    fi
fi
mkdir -p "$cache"
if [[ -n $base ]]; then
    if [[ ! -x $base ]]; then
        echo "build.sh: \$$base_var=$base is not an executable python$python_version" >&2
        exit 69
    fi
    venv="$cache/rpm-build-python-$target-$(printf '%s\n' "$base" "${host_pins[@]}" | sha256sum | cut -c1-12)"
    (
        flock 9
        if [[ ! -e $venv/.complete ]]; then
            rm -rf "$venv"
            "$base" -m venv "$venv"
            "$venv/bin/python" -m pip install -q --disable-pip-version-check "${host_pins[@]}"
            touch "$venv/.complete"
        fi
    ) 9>"$cache/.rpm-build-python.lock"
    host_python="$venv/bin/python"
else
    # No python3.X on this host (a stock Debian 12 has only 3.11): the python
    # steps run in a Debian whose own python3 is 3.X (trixie: 3.13, bullseye:
    # 3.9), debootstrapped once by tests/guest.py into its tarball cache,
    # unpacked here into a temporary tree. The venv (same pins, from PyPI) is
    # made by that python3 once and cached next to the host venvs; each call
    # of %{python3} or %{__pytest} is a chroot in a private mount namespace
    # with the venv, the rpmbuild tree and rpm/ bound at their own paths.
    case "$python_version" in
        3.13) suite=trixie ;;
        3.9) suite=bullseye ;;
    esac
    for tool in chroot unshare mount debootstrap; do
        command -v "$tool" >/dev/null || { echo "build.sh: target $target needs python$python_version:" \
            "none on this host (\$$base_var, PATH, pyenv) and $tool for a Debian $suite chroot is missing" \
            "(apt-get install debootstrap, or install python$python_version)" >&2; exit 69; }
    done
    if [[ $(id -u) != 0 || ! -e $root/tests/guest.py ]]; then
        echo "build.sh: target $target needs python$python_version: none on this host (\$$base_var," \
             "PATH, pyenv); a Debian $suite chroot instead needs root and tests/guest.py" >&2
        exit 69
    fi
    chroot_packages=(python3 python3-venv ca-certificates)
    tarball="$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from guest import pristine_tarball
print(pristine_tarball(tuple(sys.argv[3:]), suite=sys.argv[2]))' "$root/tests" "$suite" "${chroot_packages[@]}")"
    chroot_dir="$(mktemp -d /var/tmp/ecr-login-rpm-python-XXXXXX)"
    trap 'rm -rf --one-file-system "$chroot_dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    echo "== python$python_version: none on this host; using Debian $suite's in a chroot of $chroot_dir"
    chroot_root="$chroot_dir/root"
    mkdir "$chroot_root"
    case "$tarball" in
        *.zst) zstd -dc "$tarball" ;;
        *) gzip -dc "$tarball" ;;
    esac | tar -C "$chroot_root" --numeric-owner -xf -
    # pip in the chroot reaches PyPI as the host does: its resolver and its
    # trust store (a TLS-inspecting proxy's CA included).
    cp -L /etc/resolv.conf "$chroot_root/etc/resolv.conf" 2>/dev/null || true
    cp -L /etc/ssl/certs/ca-certificates.crt "$chroot_root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
    mkdir -p "$chroot_root/opt/rpm-build-venv"
    venv="$cache/rpm-build-python-$target-$suite-$(printf '%s\n' "$(basename "$tarball")" "${host_pins[@]}" | sha256sum | cut -c1-12)"
    mkdir -p "$venv"
    # bin/python and bin/pytest: what %{python3} and %{__pytest} run. Binds
    # are made in a mount namespace of the call's own, so none outlives it.
    mkdir "$chroot_dir/bin"
    for script in python pytest; do
        cat >"$chroot_dir/bin/$script" <<WRAPPER
#!/bin/bash
# $script of Debian $suite's python$python_version (rpm/build.sh: no python$python_version on this host).
exec unshare --mount --propagation private /bin/bash -euc '
root=\$1 venv=\$2 cwd=\$3; shift 3
mount --bind /dev "\$root/dev"
mount -t proc proc "\$root/proc"
mount --bind "\$venv" "\$root/opt/rpm-build-venv"
for dir in $(printf '%q ' "$topdir" "$here") \${TMPDIR:+"\$TMPDIR"}; do
    mkdir -p "\$root\$dir"
    mount --bind "\$dir" "\$root\$dir"
done
exec chroot "\$root" /bin/sh -c "cd \"\\\$0\" && exec \"\\\$@\"" "\$cwd" "\$@"
' chroot-$script $(printf '%q' "$chroot_root") $(printf '%q' "$venv") "\$PWD" /opt/rpm-build-venv/bin/$script "\$@"
WRAPPER
        chmod +x "$chroot_dir/bin/$script"
    done
    (
        flock 9
        if [[ ! -e $venv/.complete ]]; then
            find "$venv" -mindepth 1 -delete
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
                ${http_proxy:+http_proxy=$http_proxy} \
                ${https_proxy:+https_proxy=$https_proxy} ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} \
                unshare --mount --propagation private /bin/bash -euc '
                    root=$1 venv=$2; shift 2
                    mount --bind "$venv" "$root/opt/rpm-build-venv"
                    mount --bind /dev "$root/dev"
                    mount -t proc proc "$root/proc"
                    exec chroot "$root" /bin/sh -euc "python3 -m venv /opt/rpm-build-venv
                        exec /opt/rpm-build-venv/bin/python -m pip install -q --disable-pip-version-check \"\$@\"" sh "$@"
                ' venv-setup "$chroot_root" "$venv" "${host_pins[@]}"
            touch "$venv/.complete"
        fi
    ) 9>"$cache/.rpm-build-python.lock"
    host_python="$chroot_dir/bin/python"
fi

# --- 3. rpmbuild ------------------------------------------------------------
macros=(--load "$here/target-$target.macros" --load "$here/macros.buildhost"
        --load "$here/macros.python" --load "$here/macros.systemd" --load "$here/macros.sysusers")
if [[ $systemd_macros == update-helper ]]; then
    macros+=(--load "$here/macros.systemd-update-helper")
fi
# Same package whatever the caller's environment: a fixed hash seed and
# SOURCE_DATE_EPOCH make the result reproducible; the caller's python
# settings do not leak into the build.
unset PYTHONDONTWRITEBYTECODE PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE VIRTUAL_ENV
export PYTHONHASHSEED=0
export SOURCE_DATE_EPOCH="$epoch"
export PIP_NO_INDEX=1
rpmbuild -ba --nodeps \
    "${macros[@]}" \
    --define "_topdir $topdir" \
    --define "_ecr_rpm_auxdir $here" \
    --define "_ecr_host_python3 $host_python" \
    --define "packager ecr-login developers <ecr-login@example.org>" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    "$topdir/SPECS/$name.spec"

# --- 4. results to DIR ------------------------------------------------------
shopt -s nullglob
rpms=("$topdir"/RPMS/noarch/"$name-$version"-*.noarch.rpm)
srpms=("$topdir"/SRPMS/"$name-$version"-*.src.rpm)
if ((${#rpms[@]} != 1 || ${#srpms[@]} != 1)); then
    echo "build.sh: expected one .noarch.rpm and one .src.rpm in $topdir" >&2
    exit 70
fi
# Earlier builds for this target only: the other target's RPMs stay.
rm -f "$outdir/$name"-*"$dist".noarch.rpm "$outdir/$name"-*"$dist".src.rpm
cp "${rpms[0]}" "${srpms[0]}" "$outdir/"
rpm_file="$outdir/$(basename "${rpms[0]}")"
srpm_file="$outdir/$(basename "${srpms[0]}")"

# --- 5. rpmlint -------------------------------------------------------------
if ((lint)); then
    echo "== rpmlint"
    # rpmlint exits non-zero on any error (BadnessThreshold -1).
    rpmlint --rpmlintrc "$here/$name.rpmlintrc" "$rpm_file" "$srpm_file"
fi

# --- 6. payload and scriptlets ----------------------------------------------
sitelib="/usr/lib/python$python_version/site-packages"
fail=0
# (Whole outputs first: grep -q on a pipe would stop rpm with SIGPIPE.)
requires="$(rpm -qp --requires "$rpm_file")"
listing="$(rpm -qp --list "$rpm_file")"
grep -qx "python(abi) = $python_version" <<<"$requires" \
    || { echo "build.sh: no 'Requires: python(abi) = $python_version'" >&2; fail=1; }
grep -qx "$sitelib/ecr_login_pkg/cli.py" <<<"$listing" \
    || { echo "build.sh: the modules are not in $sitelib" >&2; fail=1; }
scripts="$(rpm -qp --scripts "$rpm_file")"
echo "== scriptlets of $(basename "$rpm_file")"
printf '%s\n' "$scripts"
if grep -nE '%[{(!?]|%[A-Za-z_]' <<<"$scripts"; then
    echo "build.sh: unexpanded RPM macro in the scriptlets (above)" >&2
    fail=1
fi
need=()
# %pre creates the user where the target's rpm cannot (RHEL 9), or where this
# rpm cannot add the user()/group() provides rpm >= 4.19 builds carry.
if [[ $target == el9 || $(rpm --eval '%{undefined add_sysuser}') == 1 ]]; then
    need+=("useradd -r -g 'ecr-login' -d '/var/lib/ecr-login'")
fi
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
