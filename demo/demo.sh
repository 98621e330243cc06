#!/bin/bash
# demo/demo.sh — what `make demo` runs: ecr-login on a real systemd, end to end.
#
#  1. builds the .deb (make deb);
#  2. starts, on this host's loopback, a stand-in ECR API (tests/standin_ecr.py)
#     and a docker-registry with htpasswd auth, both knowing one random
#     password (kept in a file, never on a command line), and pushes a tiny
#     image into the registry;
#  3. boots a pristine Debian 12 with systemd-nspawn (tests/guest.py; the
#     debootstrap tarball is built once, about 80 s, then cached);
#  4. in the guest: apt-get install ./ecr-login_*.deb, write
#     /etc/default/ecr-login (stand-in credentials, region, endpoint), start
#     ecr-login.service, and show `systemctl list-timers`, `journalctl -u
#     ecr-login`, `ecr-login status` as the ecr-login user, and a `skopeo copy`
#     (a pull) as the ecr-login user with the login the service stored.
#
# The stand-in answers with proxyEndpoint = the local registry, so the
# zero-config default registry ("your own account's registry") is the local
# one. Everything is removed on exit (guest, servers, temp files).
#
# Needs root, systemd-container, debootstrap, docker-registry, apache2-utils,
# skopeo, zstd and the Debian build tools (.ci/setup.sh installs them).
# Environment: PYTHON (default python3), KEEP_GUEST=1 keeps the guest running
# until Enter is pressed, to look around (nsenter -t PID1 -a bash).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
PYTHON="${PYTHON:-python3}"
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

bold() { if [[ -t 1 ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
note() { printf '   %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: booting a systemd-nspawn guest needs it"
for tool in make systemd-nspawn debootstrap nsenter docker-registry htpasswd skopeo "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool is missing (run .ci/setup.sh, or apt-get install systemd-container debootstrap docker-registry apache2-utils skopeo zstd)"
done

work="$(mktemp -d /var/tmp/ecr-login-demo.XXXXXX)"
pids=()        # host processes this script started
keeper=""      # the process holding the guest (tests/guest.py serve)

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [[ -n $keeper ]] && kill -0 "$keeper" 2>/dev/null; then
        kill -TERM "$keeper" 2>/dev/null || true   # powers the guest off and tidies its cgroups
        wait "$keeper" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    if ((status == 0)); then echo; echo "demo: done; guest, servers and temporary files removed."; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() {  # wait_http URL PID: until the server answers (any HTTP status)
    local url=$1 pid=$2 i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if "$PYTHON" - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
EOF
        sleep 0.1
    done
    return 1
}

# --- 1. the package -------------------------------------------------------------
bold "1. Build the package: make deb"
make --no-print-directory deb >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; die "make deb failed (log above)"; }
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' ecr_login_pkg/__init__.py)"
deb="out/ecr-login_${version}_all.deb"
[[ -f $deb ]] || die "make deb did not produce $deb"
mkdir "$work/srv"
cp "$deb" "$work/srv/"
note "$(ls -l "$deb")"

# --- 2. stand-in ECR API and registry on loopback --------------------------------
bold "2. Stand-in ECR API and docker-registry on 127.0.0.1"
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '=+/\n' >"$work/password")
mkdir -m 700 "$work/registry"
htpasswd -i -B -c "$work/registry/htpasswd" AWS <"$work/password" 2>/dev/null
reg_port="$(free_port)"
registry="127.0.0.1:$reg_port"
cat >"$work/registry/config.yml" <<EOF
{"version": "0.1",
 "log": {"level": "warn", "formatter": "text"},
 "storage": {"filesystem": {"rootdirectory": "$work/registry/data"}},
 "http": {"addr": "$registry", "secret": "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"},
 "auth": {"htpasswd": {"realm": "ecr-login-demo", "path": "$work/registry/htpasswd"}}}
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
wait_http "http://$registry/v2/" "${pids[-1]}" || { cat "$work/registry/log"; die "docker-registry did not start"; }
note "registry:  http://$registry (htpasswd user AWS, password in $work/password)"

ecr_port="$(free_port)"
"$PYTHON" tests/standin_ecr.py --port "$ecr_port" --password-file "$work/password" \
    --proxy-endpoint "http://$registry" >"$work/standin.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ecr_port/" "${pids[-1]}" || { cat "$work/standin.log"; die "the stand-in ECR API did not start"; }
note "ECR API:   http://127.0.0.1:$ecr_port (stand-in; its default registry is the one above)"

# A tiny image to pull later, pushed with a login from an auth file.
"$PYTHON" - "$work" "$registry" <<'EOF'
import sys
sys.path.insert(0, "tests")
from local_registry import basic_token, build_oci_layout, skopeo_copy, write_auth_file

work, registry = sys.argv[1], sys.argv[2]
password = open(f"{work}/password").read().strip()
build_oci_layout(f"{work}/image", "v1", content="Hello from an image pulled with the login ecr-login stored.\n")
auth = write_auth_file(f"{work}/push-auth.json", registry, basic_token(password))
skopeo_copy(f"oci:{work}/image:v1", f"docker://{registry}/demo/hello:v1", auth)
EOF
note "pushed:    $registry/demo/hello:v1"

# --- 3. the guest ------------------------------------------------------------------
bold "3. Boot a pristine Debian 12 guest (systemd-nspawn --boot)"
note "(the first run debootstraps the pristine image, about 80 s; later runs reuse it)"
"$PYTHON" tests/guest.py tarball >/dev/null
"$PYTHON" tests/guest.py serve --bind-ro "$work/srv:/srv" --ready-file "$work/guest.json" >"$work/guest.log" 2>&1 &
keeper=$!
for ((i = 0; i < 600; i++)); do
    [[ -s $work/guest.json ]] && break
    kill -0 "$keeper" 2>/dev/null || { cat "$work/guest.log"; die "the guest did not boot"; }
    sleep 0.1
done
[[ -s $work/guest.json ]] || die "the guest did not boot within 60 s"
read -r guest_name pid1 guest_state < <("$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["name"], d["pid1"], d["state"])' "$work/guest.json")
note "guest $guest_name is $guest_state (its PID 1 is host pid $pid1)"

guest() {  # run a command in the guest as root, with a clean environment
    nsenter -t "$pid1" -a /usr/bin/env -i PATH="$GUEST_PATH" LANG=C.UTF-8 HOME=/root TERM=dumb "$@"
}
as_user() {  # as_user USER COMMAND...: run in the guest as USER (like sudo -u USER -H)
    local user=$1 home
    shift
    home="$(guest getent passwd "$user" | cut -d: -f6)"
    guest setpriv --reuid="$user" --regid="$user" --init-groups \
        /usr/bin/env -i PATH="$GUEST_PATH" LANG=C.UTF-8 HOME="$home" USER="$user" LOGNAME="$user" "$@"
}
show() {  # show COMMAND...: print it as typed in the guest, then run it there
    printf '\n%s# %s\n' "$prompt" "$*"
    guest "$@"
}
show_as() {  # show_as USER COMMAND...
    local user=$1
    shift
    printf '\n%s@%s$ %s\n' "$user" "$prompt_host" "$*"
    as_user "$user" "$@"
}

prompt_host="$(guest hostname)"
prompt="root@$prompt_host"

# --- 4. install, configure, run ------------------------------------------------------
bold "4. Install the package with apt"
show apt-get -q update >/dev/null
printf '\n%s# apt-get install -y --no-install-recommends /srv/%s\n' "$prompt" "$(basename "$deb")"
guest env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/srv/$(basename "$deb")" \
    2>&1 | grep -E '^(Setting up|Created symlink|Unpacking) ' || true
show getent passwd ecr-login
show systemctl is-enabled ecr-login.timer

bold "5. Configure: only /etc/default/ecr-login"
printf '\n%s# cat > /etc/default/ecr-login   (mode 0600)\n' "$prompt"
guest sh -c 'umask 077 && cat > /etc/default/ecr-login' <<EOF
# The stand-in ECR API on the host's loopback (the guest shares the network).
# AKIDSTANDIN/standin-secret are the stand-in's fixed test credentials.
AWS_ACCESS_KEY_ID=AKIDSTANDIN
AWS_SECRET_ACCESS_KEY=standin-secret
AWS_REGION=us-east-1
AWS_ENDPOINT_URL_ECR=http://127.0.0.1:$ecr_port
EOF
guest sed -e 's/^\(AWS_SECRET_ACCESS_KEY=\).*/\1********/' /etc/default/ecr-login | sed 's/^/   /'

bold "6. Run the service"
show systemctl start ecr-login.service
show systemctl show -p Result -p ExecMainStatus ecr-login.service
show systemctl list-timers --no-pager ecr-login.timer
show journalctl --no-pager -b -u ecr-login
if guest journalctl -b -o export | grep -qF -f "$work/password"; then
    die "the registry password appears in the guest's journal"
fi
note "(the registry password does not appear anywhere in the guest's journal)"

bold "7. The stored login, as the ecr-login user"
show ls -l /var/lib/ecr-login/.docker/config.json
rc=0
show_as ecr-login ecr-login status || rc=$?
note "(exit status $rc)"
guest install -d -o ecr-login -g ecr-login -m 0700 /tmp/pull
show_as ecr-login skopeo copy --src-tls-verify=false --authfile /var/lib/ecr-login/.docker/config.json \
    "docker://$registry/demo/hello:v1" oci:/tmp/pull/hello:v1
layer="$(guest python3 -c '
import json
index = json.load(open("/tmp/pull/hello/index.json"))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(f"/tmp/pull/hello/blobs/sha256/{digest}"))
print(manifest["layers"][0]["digest"].split(":")[1])')"
show tar -xzOf "/tmp/pull/hello/blobs/sha256/$layer" hello.txt

if [[ ${KEEP_GUEST:-0} == 1 ]]; then
    bold "The guest stays up until you press Enter"
    note "enter it with: nsenter -t $pid1 -a bash"
    read -r _
fi
