#!/bin/bash
# tools/make-repo.sh -- a signed apt repository of ecr-login, as static files.
#
#   tools/make-repo.sh --uri URI [--key KEY] [--out DIR] [--suite stable] PACKAGE.deb...
#   (make repo REPO_URI=URI [REPO_KEY=KEY] runs it on the freshly built .deb)
#
# Writes DIR (default out/repo), to serve as it is from any web server or
# bucket at URI:
#   pool/main/e/ecr-login/*.deb        the packages (earlier ones stay: a
#                                      rebuild adds the newer version, so
#                                      hosts upgrade from the same place)
#   dists/SUITE/{InRelease,Release,Release.gpg}, dists/SUITE/main/binary-*/Packages{,.gz}
#   ecr-login-archive-keyring.gpg      the public key (binary keyring, for
#                                      /usr/share/keyrings and Signed-By: PATH)
#   ecr-login-archive-keyring.asc      the same, armored
#   ecr-login.sources                  the deb822 entry for URI, the key inline
#                                      in Signed-By: -- copy it to
#                                      /etc/apt/sources.list.d/ and run
#                                      apt-get update && apt-get install ecr-login
#
# Signing: with --key (REPO_KEY=), that key of the caller's gpg keyring
# ($GNUPGHOME or ~/.gnupg; a fingerprint, key id or address); without, a
# throwaway ed25519 key made for the build in a private GNUPGHOME next to DIR
# (DIR-gnupg, mode 0700), reused by later builds into the same DIR so that
# hosts which trust it can upgrade. Never an unsigned or trusted=yes entry.
#
# Needs: apt-ftparchive (apt-utils), gpg, dpkg-deb. Exit codes: 0 ok,
# 64 usage, 66 a package file is missing, 78 the key cannot be used.
set -euo pipefail

usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 64; }
die() { echo "make-repo: $1" >&2; exit "${2:-78}"; }

uri="" key="" out="out/repo" suite="stable" component="main"
while (($#)); do
    case "$1" in
        --uri) uri=${2:-}; shift 2 ;;
        --key) key=${2:-}; shift 2 ;;
        --out) out=${2:-}; shift 2 ;;
        --suite) suite=${2:-}; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "make-repo: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
(($#)) || { echo "make-repo: no package given" >&2; usage; }
[ -n "$uri" ] || die "no repository URI: give --uri (make repo REPO_URI=https://apt.example.org/ecr-login)" 64
case "$uri" in http://*|https://*|file:/*|s3://*) ;; *) die "--uri $uri: not a URI apt can fetch (https://..., http://..., file:/...)" 64 ;; esac
[[ "$suite" =~ ^[A-Za-z0-9._-]+$ ]] || die "--suite $suite: letters, digits, . _ - only" 64
for deb in "$@"; do
    [ -f "$deb" ] || die "no such package file: $deb (build it with make deb)" 66
done
for tool in apt-ftparchive gpg dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install apt-utils gpg dpkg-dev)"
done

umask 022
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- the signing key -------------------------------------------------------
gpg_args=(--batch --no-tty --quiet)
sign_args=()
if [ -n "$key" ]; then
    gpg --list-secret-keys "$key" >/dev/null 2>&1 \
        || die "REPO_KEY=$key: no such secret key in ${GNUPGHOME:-~/.gnupg} (gpg --list-secret-keys)"
else
    export GNUPGHOME="$out-gnupg"
    # gpg starts an agent for this private home: stop it when done.
    trap 'gpgconf --kill gpg-agent 2>/dev/null || true' EXIT
    if [ ! -d "$GNUPGHOME" ]; then
        (umask 077 && mkdir -p "$GNUPGHOME")
        gpg "${gpg_args[@]}" --passphrase '' --quick-gen-key \
            "ecr-login repository (throwaway key of $(hostname) $(date -u +%F)) <ecr-login@localhost>" \
            ed25519 sign 2y
        echo "make-repo: made a throwaway signing key in $GNUPGHOME (give REPO_KEY= to sign with yours)" >&2
    fi
    key=$(gpg --batch --quiet --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" {print $10; exit}')
    sign_args=(--pinentry-mode loopback --passphrase '')  # made without one
fi
fingerprint=$(gpg --batch --quiet --with-colons --list-keys "$key" 2>/dev/null | awk -F: '$1 == "fpr" {print $10; exit}')
[ -n "$fingerprint" ] || die "REPO_KEY=$key: no public key found"

# --- the pool and the indexes ----------------------------------------------
for deb in "$@"; do
    name=$(dpkg-deb --field "$deb" Package)
    dir="$out/pool/$component/${name:0:1}/$name"
    mkdir -p "$dir"
    cp -f "$deb" "$dir/"
done

dist="$out/dists/$suite"
rm -rf "$dist"
architectures="all amd64 arm64"
cd "$out"
for arch in $architectures; do
    # An Architecture: all package belongs in every binary-ARCH index (as in Debian's own archive).
    mkdir -p "dists/$suite/$component/binary-$arch"
    apt-ftparchive --arch "$arch" packages "pool/$component" > "dists/$suite/$component/binary-$arch/Packages"
    gzip -9n --keep "dists/$suite/$component/binary-$arch/Packages"
done
apt-ftparchive \
    -o APT::FTPArchive::Release::Origin=ecr-login \
    -o APT::FTPArchive::Release::Label=ecr-login \
    -o APT::FTPArchive::Release::Suite="$suite" \
    -o APT::FTPArchive::Release::Codename="$suite" \
    -o APT::FTPArchive::Release::Architectures="$architectures" \
    -o APT::FTPArchive::Release::Components="$component" \
    -o APT::FTPArchive::Release::Description="ecr-login: keep Amazon ECR registry logins fresh" \
    release "dists/$suite" > "$out/.Release.new"
mv "$out/.Release.new" "$dist/Release"

# --- signatures --------------------------------------------------------------
sign=(gpg "${gpg_args[@]}" "${sign_args[@]}" --yes --digest-algo SHA512 --local-user "$fingerprint!")
"${sign[@]}" --clearsign --output "$dist/InRelease" "$dist/Release"
"${sign[@]}" --armor --detach-sign --output "$dist/Release.gpg" "$dist/Release"

# --- the key for hosts, and their sources entry ------------------------------
gpg --batch --yes --export --output "$out/ecr-login-archive-keyring.gpg" "$fingerprint"
gpg --batch --yes --export --armor --output "$out/ecr-login-archive-keyring.asc" "$fingerprint"
{
    echo "# ecr-login's signed apt repository (tools/make-repo.sh). Copy to"
    echo "# /etc/apt/sources.list.d/ecr-login.sources, then:"
    echo "#   apt-get update && apt-get install ecr-login"
    echo "# Signing key: $fingerprint"
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: $suite"
    echo "Components: $component"
    echo "Signed-By:"
    # deb822: a continuation line starts with a space, an empty line is " ."
    sed -e 's/^$/./' -e 's/^/ /' "$out/ecr-login-archive-keyring.asc"
} > "$out/ecr-login.sources"

echo "make-repo: $out signed by $fingerprint: $(cd "$out" && find pool -name '*.deb' | sort | tr '\n' ' ')"
