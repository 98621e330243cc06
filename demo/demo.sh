#!/bin/bash
# demo/demo.sh — what `make demo` runs: ecr-login on a real systemd, end to end.
#
#  1. builds the .deb (make deb) and a signed apt repository of it
#     (tools/make-repo.sh, what make repo runs; a throwaway key, all in the
#     temp folder);
#  2. starts, on this host's loopback, a stand-in ECR API (tests/standin_ecr.py,
#     through demo/standin.py, which keeps a count of the calls it answered)
#     and a docker-registry with htpasswd auth, both knowing one random
#     password (kept in a file, never on a command line), and pushes a tiny
#     image into the registry; and serves the apt repository over HTTP;
#  3. boots a pristine Debian 12 with systemd-nspawn (tests/guest.py; the
#     debootstrap tarball is built once, about 80 s, then cached in
#     /var/cache/ecr-login-tests) with the docker CLI in it (see below);
#  4. in the guest: the docker CLI (see below); /etc/default/ecr-login (stand-in
#     credentials, region, endpoint) first, then the repository's
#     ecr-login.sources and apt-get update && apt-get install ecr-login, by name;
#     - waits for a run ecr-login.timer's schedule starts (its first tick, 2 min
#       after boot) and shows `systemctl list-timers` with its LAST time and the
#       journal of that run (the package's start of the timer may have run the
#       service once already, at install: then this tick has nothing due);
#     - starts another run with nothing due: the stand-in's call count is the
#       same before and after;
#     - shows `ecr-login status` as the ecr-login user, the docker CLI reading
#       the login ecr-login stored (`docker manifest inspect`) and a pull with
#       skopeo.
#
# The docker CLI in the guest: Debian 12 ships it only in docker.io, together
# with the daemon (and containerd, runc). When this host has a statically
# linked docker CLI (docker's own static build, as on the test machines), it is
# bound read-only into the guest at /usr/local/bin/docker: no daemon, nothing
# downloaded. Otherwise docker.io is installed in the guest with its daemons
# masked (the demo needs the client only: login and manifest, no containers).
# DEMO_DOCKER=host or DEMO_DOCKER=docker.io picks one.
#
# The stand-in answers with proxyEndpoint = the local registry, so the
# zero-config default registry ("your own account's registry") is the local
# one. Everything is removed on exit (guest, servers, temp files); the cached
# tarball stays (README: "Clean up").
#
# Needs root, systemd-container, debootstrap, docker-registry, apache2-utils,
# skopeo, zstd and the Debian build tools (.ci/setup.sh installs them).
# Environment: PYTHON (default python3; make demo passes the project's .venv),
# KEEP_GUEST=1 keeps the guest running until Enter is pressed, to look around
# (nsenter -t PID1 -a bash).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
PYTHON="${PYTHON:-python3}"
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
GUEST_DOCKER=/usr/local/bin/docker

bold() { if [[ -t 1 ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
note() { printf '   %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root: booting a systemd-nspawn guest needs it"
for tool in make systemd-nspawn debootstrap nsenter docker-registry htpasswd skopeo "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool is missing (run .ci/setup.sh, or apt-get install systemd-container debootstrap docker-registry apache2-utils skopeo zstd)"
done

# Where the guest's docker CLI comes from (see the header).
is_static_elf() {  # is_static_elf PATH: a 64-bit ELF without a program interpreter (runs in any root)
    "$PYTHON" - "$1" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read(1 << 16)
if data[:6] != b"\x7fELF\x02\x01":
    sys.exit(1)
phoff, phentsize, phnum = int.from_bytes(data[0x20:0x28], "little"), int.from_bytes(data[0x36:0x38], "little"), int.from_bytes(data[0x38:0x3A], "little")
for i in range(phnum):
    if int.from_bytes(data[phoff + i * phentsize:phoff + i * phentsize + 4], "little") == 3:  # PT_INTERP
        sys.exit(1)
EOF
}
host_docker="$(command -v docker || true)"
docker_from="${DEMO_DOCKER:-}"
if [[ -z $docker_from ]]; then
    if [[ -n $host_docker ]] && is_static_elf "$host_docker"; then docker_from=host; else docker_from=docker.io; fi
fi
case $docker_from in
    host) [[ -n $host_docker ]] && is_static_elf "$host_docker" || die "DEMO_DOCKER=host needs a statically linked docker CLI on PATH" ;;
    docker.io) ;;
    *) die "DEMO_DOCKER is host or docker.io, not $docker_from" ;;
esac

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
    umount -R "$work/dockerd/exec" 2>/dev/null || true   # dockerd's own mounts, if it ran
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
bold "1. Build the package and its signed apt repository: make deb, make repo"
make --no-print-directory deb >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; die "make deb failed (log above)"; }
version="$(dpkg-parsechangelog -S Version)"   # the Debian version: upstream-revision
deb="out/ecr-login_${version}_all.deb"
[[ -f $deb ]] || die "make deb did not produce $deb"
note "$(ls -l "$deb")"
repo_url="http://127.0.0.1:$(free_port)"
printf '\n$ tools/make-repo.sh --uri %s --out %s %s   (what make repo REPO_URI=%s runs)\n' \
    "$repo_url" "$work/repo" "$deb" "$repo_url"
tools/make-repo.sh --uri "$repo_url" --out "$work/repo" "$deb" 2>&1 | sed 's/^/   /' \
    || die "tools/make-repo.sh failed"
note "(a throwaway signing key made for this build; REPO_KEY= names your own)"

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
calls_file="$work/ecr-calls.json"
"$PYTHON" demo/standin.py --port "$ecr_port" --password-file "$work/password" \
    --proxy-endpoint "http://$registry" --calls-file "$calls_file" >"$work/standin.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ecr_port/" "${pids[-1]}" || { cat "$work/standin.log"; die "the stand-in ECR API did not start"; }
note "ECR API:   http://127.0.0.1:$ecr_port (stand-in; its default registry is the one above)"

"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$work/repo" "${repo_url##*:}" >"$work/repo.log" 2>&1 &
pids+=($!)
wait_http "$repo_url/dists/stable/InRelease" "${pids[-1]}" || { cat "$work/repo.log"; die "the apt repository server did not start"; }
note "apt repo:  $repo_url (the signed repository of step 1, static files over HTTP)"

ecr_calls() {  # ecr_calls: "N (GetAuthorizationToken: n, ...)", the calls the stand-in has answered
    sleep 0.3  # the count file follows the stand-in within 0.05 s
    "$PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
ops = ", ".join(f"{k}: {v}" for k, v in sorted(d["operations"].items()))
print(d["count"], f"({ops})" if ops else "")' "$calls_file"
}
note "calls the stand-in ECR API has answered so far: $(ecr_calls)"

# A tiny image to pull later, pushed with a login from an auth file, in docker's
# own manifest format (v2s2): the docker CLI 20.10 of Debian 12 does not read OCI manifests.
"$PYTHON" - "$work" "$registry" <<'EOF'
import sys
sys.path.insert(0, "tests")
from local_registry import basic_token, build_oci_layout, write_auth_file

work, registry = sys.argv[1], sys.argv[2]
password = open(f"{work}/password").read().strip()
build_oci_layout(f"{work}/image", "v1", content="Hello from an image pulled with the login ecr-login stored.\n")
write_auth_file(f"{work}/push-auth.json", registry, basic_token(password))
EOF
mkdir -m 700 "$work/skopeo-home"   # skopeo reads no login but the auth file given
HOME="$work/skopeo-home" DOCKER_CONFIG="$work/skopeo-home" XDG_RUNTIME_DIR="$work/skopeo-home" \
    skopeo --insecure-policy copy -q --format v2s2 --dest-tls-verify=false --dest-authfile "$work/push-auth.json" \
    "oci:$work/image:v1" "docker://$registry/demo/hello:v1"
note "pushed:    $registry/demo/hello:v1"

# --- 3. the guest ------------------------------------------------------------------
bold "3. Boot a pristine Debian 12 guest (systemd-nspawn --boot)"
note "(the first run debootstraps the pristine image, about 80 s, cached in /var/cache/ecr-login-tests; later runs reuse it)"
"$PYTHON" tests/guest.py tarball >/dev/null
binds=()   # no package file: the guest installs from the apt repository
# The socket of a real Docker daemon (Debian's dockerd, started on the host in step 9),
# through which builder's docker pull goes.
mkdir -m 0755 "$work/docker-sock"
binds+=(--bind "$work/docker-sock:/run/demo-docker")
if [[ $docker_from == host ]]; then
    binds+=(--bind-ro "$(readlink -f "$host_docker"):$GUEST_DOCKER")
fi
"$PYTHON" tests/guest.py serve "${binds[@]}" --ready-file "$work/guest.json" >"$work/guest.log" 2>&1 &
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
unit_property() {  # unit_property UNIT PROPERTY: its value in the guest
    guest systemctl show -p "$2" --value "$1"
}

prompt_host="$(guest hostname)"
prompt="root@$prompt_host"

# --- 4. the docker CLI ------------------------------------------------------------------
bold "4. The docker CLI in the guest"
printf '\n%s# apt-get -q update\n' "$prompt"
guest apt-get -q update >/dev/null
if [[ $docker_from == host ]]; then
    note "Debian 12 has the docker CLI only in docker.io, which brings the daemon, containerd and runc too."
    note "This host's docker CLI is a static binary: it is bound read-only into the guest at $GUEST_DOCKER"
    note "(no daemon; ecr-login's docker store needs the client only)."
else
    note "Debian 12 has the docker CLI only in docker.io, which brings the daemon, containerd and runc too"
    note "(and this host has no static docker CLI to lend the guest): docker.io is installed with its"
    note "daemons kept stopped and masked; ecr-login's docker store needs the client only."
    printf '\n%s# apt-get install -y --no-install-recommends docker.io   (daemons masked)\n' "$prompt"
    # No service starts inside dpkg (policy-rc.d, as in image builds), then masked for good.
    guest sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    guest env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io \
        >"$work/docker-io.log" 2>&1 || { tail -30 "$work/docker-io.log"; die "installing docker.io in the guest failed"; }
    guest rm -f /usr/sbin/policy-rc.d
    show systemctl mask --now docker.service docker.socket containerd.service
fi
show docker --version
printf '\n%s# systemctl is-active docker.service containerd.service\n' "$prompt"
guest systemctl is-active docker.service containerd.service || true

# --- 5. configuration first ------------------------------------------------------------------
bold "5. Configure first: only /etc/default/ecr-login"
note "(on a host that is not on EC2 the credentials come first: installing the package starts the"
note " timer, and the timer its service)"
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
note "The builds run as builder (in the docker group), who already has a login of its own elsewhere:"
show groupadd --force docker
show useradd --create-home --groups docker builder
as_user builder sh -c 'umask 077 && mkdir -p ~/.docker && printf "%s\n" "{\"auths\": {\"ghcr.io\": {\"auth\": \"Z2hjcjp0b2tlbg==\"}}}" > ~/.docker/config.json'
show cat /home/builder/.docker/config.json
note "The one line in ecr-login.conf: name the build user; the registry is the caller's own default one"
note "(the package's file names none), in the docker store, the default since the docker CLI is installed."
guest mkdir -p /etc/ecr-login
guest sh -c 'printf "[defaults]\nusers = builder\n" > /etc/ecr-login/ecr-login.conf'
show cat /etc/ecr-login/ecr-login.conf
note "The timer's per-host random offset (RandomizedDelaySec=5min, spreading a fleet's calls) would add"
note "up to 5 min of waiting for its tick here: a drop-in sets it to 0 (README: change it with a drop-in)."
guest mkdir -p /etc/systemd/system/ecr-login.timer.d
guest sh -c 'cat > /etc/systemd/system/ecr-login.timer.d/demo.conf' <<'EOF'
[Timer]
RandomizedDelaySec=0
AccuracySec=1s
EOF
show cat /etc/systemd/system/ecr-login.timer.d/demo.conf

# --- 6. the package ----------------------------------------------------------------------------
bold "6. Install the package by name from the signed apt repository"
note "calls the stand-in ECR API has answered so far: $(ecr_calls)"
printf '\n%s# cp ecr-login.sources /etc/apt/sources.list.d/   (from make repo; the key is inline in Signed-By:)\n' "$prompt"
guest sh -c 'cat > /etc/apt/sources.list.d/ecr-login.sources' <"$work/repo/ecr-login.sources"
printf '\n%s# grep -v "^ " /etc/apt/sources.list.d/ecr-login.sources   (all but the key block)\n' "$prompt"
guest grep -v '^ ' /etc/apt/sources.list.d/ecr-login.sources | sed 's/^/   /'
printf '\n%s# apt-get update\n' "$prompt"
guest apt-get -q update 2>&1 | grep -F "$repo_url" | sed 's/^/   /' || die "apt-get update in the guest failed"
show apt-cache policy ecr-login
printf '\n%s# apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold ecr-login\n' "$prompt"
guest env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ecr-login \
    2>&1 | grep -E '^(Setting up|Created symlink|Unpacking) ' || true
[[ $(guest dpkg-query -W -f='${Status}' ecr-login 2>/dev/null) == "install ok installed" ]] \
    || die "apt-get install ecr-login from the repository failed"
note "(ecr-login by name from $repo_url: apt checked InRelease's signature against the key in Signed-By:)"
note "(--force-confold: keep the /etc/default/ecr-login written above, not the package's commented one)"
for ((i = 0; i < 240; i++)); do   # a run the install started: let it finish before reading its journal
    [[ $(unit_property ecr-login.service ActiveState) == activating ]] || break
    sleep 0.5
done
show getent passwd ecr-login
show systemctl is-enabled ecr-login.timer
show journalctl --no-pager -b -u ecr-login
note "calls the stand-in ECR API has answered so far: $(ecr_calls)"

# --- 7. the run the timer starts -----------------------------------------------------------------
bold "7. A run started by ecr-login.timer's schedule"
note "Its first tick is 2 min after boot (OnBootSec=2min); nothing here runs systemctl start."
show systemctl list-timers --no-pager ecr-login.timer
triggered_before="$(unit_property ecr-login.timer LastTriggerUSec)"
before="$(ecr_calls)"
note "calls before the tick: $before"
printf '\n   waiting for the tick '
for ((i = 0; i < 600; i++)); do   # at most 5 min: the tick is due about 2 min after boot
    if [[ $(unit_property ecr-login.timer LastTriggerUSec) != "$triggered_before" ]] \
        && [[ $(unit_property ecr-login.service ActiveState) != activating ]]; then
        break
    fi
    ((i % 20)) || printf '.'
    sleep 0.5
done
echo
[[ $(unit_property ecr-login.timer LastTriggerUSec) != "$triggered_before" ]] || die "ecr-login.timer did not fire within 5 minutes"
show systemctl list-timers --no-pager ecr-login.timer
show systemctl show -p LastTriggerUSec ecr-login.timer
show systemctl show -p ExecMainStartTimestamp -p Result -p ExecMainStatus ecr-login.service
show journalctl --no-pager -b -u ecr-login
after="$(ecr_calls)"
note "calls after the tick:  $after"
if [[ $before == "$after" ]]; then
    note "(unchanged: the login made at install was still fresh, so the timer's run had nothing due)"
fi

# --- 8. a run with nothing due ------------------------------------------------------------------
bold "8. Another run, with nothing due: no AWS call"
before="$(ecr_calls)"
note "calls before: $before"
show systemctl start ecr-login.service
show systemctl show -p Result -p ExecMainStatus ecr-login.service
show journalctl --no-pager -b -u ecr-login -n 3
after="$(ecr_calls)"
note "calls after:  $after"
[[ $before == "$after" ]] || die "the run with nothing due called the stand-in ECR API"
note "(unchanged: the run read two small files and exited, no boto3 import, no connection)"
if guest journalctl -b -o export | grep -qF -f "$work/password"; then
    die "the registry password appears in the guest's journal"
fi
note "(the registry password does not appear anywhere in the guest's journal)"

# --- 9. the stored login, used -------------------------------------------------------------
bold "9. builder's login: its own file, status, a docker pull through a real daemon, skopeo"
show ls -l /home/builder/.docker/config.json
show cat /home/builder/.docker/config.json | sed -e 's/"auth": "[^"]*"/"auth": "********"/g'
note "(builder's own file, builder's 0600: the ghcr.io login kept, the ECR one added; no AWS key in it)"
rc=0
show_as builder ecr-login status || rc=$?
note "(exit status $rc)"
rc=0
show ecr-login status --all || rc=$?
note "(exit status $rc: every user's logins, each read as that user)"
dockerd_bin="$(command -v dockerd || true)"
if [[ -n $dockerd_bin ]]; then
    note "A real Docker daemon (Debian's dockerd, run on the host in a temporary directory; its socket is"
    note "bound into the guest at /run/demo-docker/docker.sock):"
    "$dockerd_bin" --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" \
        -H "unix://$work/docker-sock/docker.sock" --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 &
    pids+=($!)
    for ((i = 0; i < 300; i++)); do [[ -S $work/docker-sock/docker.sock ]] && break; sleep 0.2; done
    [[ -S $work/docker-sock/docker.sock ]] || { tail -20 "$work/dockerd.log"; die "dockerd did not start"; }
    chmod 0666 "$work/docker-sock/docker.sock"   # builder's uid in the guest is no user of the host
    printf '\n%s@%s$ DOCKER_HOST=unix:///run/demo-docker/docker.sock docker pull %s\n' builder "$prompt_host" "$registry/demo/hello:v1"
    as_user builder env DOCKER_HOST=unix:///run/demo-docker/docker.sock docker pull "$registry/demo/hello:v1" \
        || die "builder's docker pull failed"
    as_user builder env DOCKER_HOST=unix:///run/demo-docker/docker.sock docker image rm "$registry/demo/hello:v1" >/dev/null || true
else
    note "(no dockerd on this host: run .ci/setup.sh, which installs docker.io, for builder's pull through a daemon)"
fi
guest install -d -o builder -g builder -m 0700 /tmp/pull
show_as builder skopeo copy --src-tls-verify=false --authfile /home/builder/.docker/config.json \
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
