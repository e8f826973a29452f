#!/usr/bin/env bash
# bench/pull.sh -- cold / warm / shared-layer image pulls over loopback:
# berth vs `docker pull` vs `podman pull` vs `skopeo copy` to an OCI directory.
#
# What it does
#   1. Installs what is missing with apt-get (debootstrap docker-registry skopeo podman
#      docker.io hyperfine jq, plus curl psmisc iproute2).
#   2. Builds (once, cached in $CACHE) an OCI image layout without docker:
#        layer 1  debootstrap --variant=minbase bookworm (apt lists/caches removed)
#        layer 2  20,000 small files of 1-4 KiB (base64 text) in 20 directories
#        layer 3  50 x 1 MiB random files
#        layer 4  a small top layer
#      tagged `latest`, and a second image `second` that shares layers 1-3 and has its own
#      top layer (and config).  Layers are gzip'd tars; config rootfs.diff_ids are the
#      sha256 of the uncompressed tars; manifests are OCI image manifests.
#   3. Starts Debian's docker-registry on 127.0.0.1:<free port> (storage in a temp dir)
#      and pushes both tags with skopeo.
#   4. Starts a berth daemon on a private --root, and dockerd (private data-root, no
#      bridge/iptables) if no docker daemon answers; podman uses a private --root too.
#   5. Measures with hyperfine, engines alternating (one hyperfine invocation per round,
#      --runs 1 per engine, order rotated every round, one discarded warm-up round):
#        cold    everything local removed in --prepare (+ sync), then pull `latest`
#        shared  `latest` present, `second` and its top layer removed, then pull `second`
#      and the warm pull (everything present) in one hyperfine run, all engines side by side.
#   6. Checks that berth unpacked every layer exactly like tar does (VERIFY=1), writes raw
#      JSON to bench/results/ and replaces the "## Pull" section of bench/RESULTS.md.
#
# Usage: bash bench/pull.sh        (as root)
# Env:   BERTH=/path/to/berth   use this binary (default: cargo build --release -p berth)
#        CACHE=/var/tmp/berth-bench-cache   generated layers / OCI layout (kept)
#        RUNS=5 (cold/shared rounds, >= 5)  WARM_RUNS=20  WARMUP_ROUNDS=1
#        ENGINES="berth docker podman skopeo"   PORT (default: a free port)
#        MIRROR (default: the first Debian URI in apt's sources)   VERIFY=1   KEEP_TMP=1
#        DOCKER=docker CLI to use (default /usr/bin/docker from docker.io when present)
# Network: the Debian mirror (apt-get, debootstrap) and 127.0.0.1 only.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RES="$BENCH_DIR/results"
CACHE="${CACHE:-/var/tmp/berth-bench-cache}"
RUNS="${RUNS:-5}"
WARM_RUNS="${WARM_RUNS:-20}"
WARMUP_ROUNDS="${WARMUP_ROUNDS:-1}"
ENGINES="${ENGINES:-berth docker podman skopeo}"
VERIFY="${VERIFY:-1}"
LAYOUT_VERSION="pull-v1"   # bump when the generated image changes

log() { echo "# $*" >&2; }
die() { echo "pull.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, dockerd and podman need it)"
[ "$RUNS" -ge 5 ] || die "RUNS must be >= 5"

# ------------------------------------------------------------------ cleanup
PIDS=()            # every long-running process this script started
CLEANUP=()         # extra cleanup commands, run in reverse order
T=""
cleanup() {
    local rc=$? i p
    set +e
    for ((i=${#CLEANUP[@]}-1; i>=0; i--)); do eval "${CLEANUP[$i]}"; done
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do
        p="${PIDS[$i]}"
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
            for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ -n "${KEEP_TMP:-}" ]; then
            log "kept $T"
        else
            # overlay mounts left by a daemon that died would make rm fail; unmount first
            grep -o " $T/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
            rm -rf "$T" 2>/dev/null || { chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"; }
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ packages
declare -A PKG=([debootstrap]=debootstrap [docker-registry]=docker-registry [skopeo]=skopeo
    [podman]=podman [dockerd]=docker.io [hyperfine]=hyperfine [jq]=jq [curl]=curl
    [fuser]=psmisc [ss]=iproute2 [gzip]=gzip)
missing=()
for c in "${!PKG[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${PKG[$c]}"); done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

# ------------------------------------------------------------------ berth binary
if [ -z "${BERTH:-}" ]; then
    log "building berth (cargo build --release -p berth)"
    (cd "$REPO" && cargo build --release -q -p berth)
    BERTH="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/berth"
fi
[ -x "$BERTH" ] || die "no berth binary at $BERTH"
BERTH="$(readlink -f "$BERTH")"

mkdir -p "$RES" "$CACHE"
T="$(mktemp -d /var/tmp/berth-bench-pull.XXXXXX)"
log "temp dir $T  date=$(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ image (cached)
MIRROR="${MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v -i security | grep -E '^[[:space:]]*(deb|URIs:)' | grep -o -E '(https?|file)://[^ ]+' | head -1 || true)}"
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
ARCH="$(dpkg --print-architecture)"   # Debian and OCI agree for amd64/arm64
case "$ARCH" in i386) OCI_ARCH=386 ;; armhf|armel) OCI_ARCH=arm ;; ppc64el) OCI_ARCH=ppc64le ;; *) OCI_ARCH="$ARCH" ;; esac

# deterministic tar of the entries of DIR (no "./" prefix, like layers from docker build)
tar_dir() { # DIR OUT [tar options...]
    local dir="$1" out="$2"; shift 2
    (cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort \
        | tar --numeric-owner --sort=name "$@" -cf "$out.tmp" -T -)
    mv "$out.tmp" "$out"
}
GEN_OPTS=(--owner=0 --group=0 --mtime=2024-01-01T00:00:00Z)

L="$CACHE/layers"
mkdir -p "$L"
if [ ! -s "$L/base.tar" ]; then
    log "debootstrap --variant=minbase bookworm from $MIRROR (log: $CACHE/debootstrap.log)"
    rm -rf "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
    # like the official debian images: no apt lists or package caches in the base layer
    rm -rf "$CACHE/rootfs/var/cache/apt/archives/"*.deb "$CACHE/rootfs/var/cache/apt/"*.bin \
           "$CACHE/rootfs/var/lib/apt/lists/"*
    mkdir -p "$CACHE/rootfs/var/lib/apt/lists/partial"
    tar_dir "$CACHE/rootfs" "$L/base.tar" --xattrs
    rm -rf "$CACHE/rootfs"
fi
if [ ! -s "$L/small.tar" ]; then
    log "generating 20,000 small files"
    d="$T/gen-small"; mkdir -p "$d/opt/small"
    for i in $(seq -w 0 19); do mkdir -p "$d/opt/small/d$i"; done
    head -c 48M /dev/urandom | base64 -w 76 >"$T/pool"
    awk -v dir="$d/opt/small" -v n=20000 'BEGIN{srand(42); f=0; sz=0; tgt=1024+int(rand()*3072)}
        { if (f>=n) exit
          fn=sprintf("%s/d%02d/f%05d.txt", dir, int(f/1000), f)
          print $0 > fn; sz+=length($0)+1
          if (sz>=tgt) { close(fn); f++; sz=0; tgt=1024+int(rand()*3072) } }' "$T/pool"
    rm -f "$T/pool"
    [ "$(find "$d/opt/small" -type f | wc -l)" = 20000 ] || die "small-file generation went wrong"
    tar_dir "$d" "$L/small.tar" "${GEN_OPTS[@]}"
    rm -rf "$d"
fi
if [ ! -s "$L/random.tar" ]; then
    log "generating 50 x 1 MiB random files"
    d="$T/gen-rand"; mkdir -p "$d/opt/random"
    for i in $(seq -w 1 50); do head -c 1M /dev/urandom >"$d/opt/random/r$i.bin"; done
    tar_dir "$d" "$L/random.tar" "${GEN_OPTS[@]}"
    rm -rf "$d"
fi
for v in a b; do
    if [ ! -s "$L/top-$v.tar" ]; then
        d="$T/gen-top-$v"; mkdir -p "$d/etc" "$d/usr/local/bin"
        printf 'BENCH_IMAGE=%s\n' "$v" >"$d/etc/bench-image"
        printf '#!/bin/sh\necho "hello from bench image %s"\n' "$v" >"$d/usr/local/bin/hello"
        chmod 755 "$d/usr/local/bin/hello"
        head -c 64K /dev/urandom | base64 >"$d/etc/bench-$v.dat"
        tar_dir "$d" "$L/top-$v.tar" "${GEN_OPTS[@]}"
        rm -rf "$d"
    fi
done
for n in base small random top-a top-b; do
    if [ ! -s "$L/$n.tar.gz" ] || [ "$L/$n.tar" -nt "$L/$n.tar.gz" ]; then
        log "gzip $n.tar"
        gzip -n -6 -c "$L/$n.tar" >"$L/$n.tar.gz.tmp" && mv "$L/$n.tar.gz.tmp" "$L/$n.tar.gz"
    fi
done

OCI="$CACHE/oci"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# put FILE into the layout; prints "sha256:HEX SIZE"
add_blob() {
    local h; h="$(sha "$1")"
    cp "$1" "$OCI/blobs/sha256/$h"
    echo "sha256:$h $(stat -c %s "$1")"
}
if [ "$(cat "$OCI/.done" 2>/dev/null)" != "$LAYOUT_VERSION" ] || [ "$L/top-b.tar.gz" -nt "$OCI/.done" ]; then
    log "writing OCI layout $OCI"
    rm -rf "$OCI"; mkdir -p "$OCI/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
    entries=()
    for v in a b; do
        layers=(base small random "top-$v")
        diffs=(); ldescs=()
        for n in "${layers[@]}"; do
            diffs+=("sha256:$(sha "$L/$n.tar")")
            read -r dg sz < <(add_blob "$L/$n.tar.gz")
            ldescs+=("$(jq -cn --arg d "$dg" --argjson s "$sz" \
                '{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$d,size:$s}')")
        done
        jq -cn --arg arch "$OCI_ARCH" --arg v "$v" \
            --argjson diffs "$(printf '%s\n' "${diffs[@]}" | jq -R . | jq -sc .)" '{
              created: "2024-01-01T00:00:00Z", architecture: $arch, os: "linux",
              config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       Cmd: ["/bin/bash"], Labels: {"org.berth.bench": ("pull-" + $v)}},
              rootfs: {type: "layers", diff_ids: $diffs},
              history: [{created: "2024-01-01T00:00:00Z", created_by: "debootstrap --variant=minbase bookworm"},
                        {created: "2024-01-01T00:00:00Z", created_by: "20,000 small files"},
                        {created: "2024-01-01T00:00:00Z", created_by: "50 x 1 MiB random"},
                        {created: "2024-01-01T00:00:00Z", created_by: ("top layer " + $v)}]}' >"$T/config-$v.json"
        read -r cdg csz < <(add_blob "$T/config-$v.json")
        jq -cn --arg cd "$cdg" --argjson cs "$csz" \
            --argjson layers "$(printf '%s\n' "${ldescs[@]}" | jq -sc .)" '{
              schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
              config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
              layers: $layers}' >"$T/manifest-$v.json"
        read -r mdg msz < <(add_blob "$T/manifest-$v.json")
        ref=latest; [ "$v" = b ] && ref=second
        entries+=("$(jq -cn --arg d "$mdg" --argjson s "$msz" --arg r "$ref" --arg arch "$OCI_ARCH" \
            '{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$d,size:$s,
              platform:{architecture:$arch,os:"linux"},
              annotations:{"org.opencontainers.image.ref.name":$r}}')")
    done
    jq -cn --argjson m "$(printf '%s\n' "${entries[@]}" | jq -sc .)" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:$m}' >"$OCI/index.json"
    echo "$LAYOUT_VERSION" >"$OCI/.done"
fi
manifest_of() { # REF -> path of the manifest blob in the layout
    local d; d="$(jq -r --arg r "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$r)|.digest' "$OCI/index.json")"
    echo "$OCI/blobs/sha256/${d#sha256:}"
}
MAN_A="$(manifest_of latest)"; MAN_B="$(manifest_of second)"
COMP=$(jq '[.layers[].size]|add' "$MAN_A")
UNCOMP=0; for n in base small random top-a; do UNCOMP=$((UNCOMP + $(stat -c %s "$L/$n.tar"))); done
TOPB=$(jq '.layers[3].size' "$MAN_B")
NSMALL=$(tar -tf "$L/small.tar" | grep -c -v '/$')
log "image: 4 layers, compressed $COMP B, uncompressed $UNCOMP B; second image's own top layer $TOPB B"
jq -r '.layers[] | "#   \(.digest[7:19])  \(.size) B"' "$MAN_A" >&2

# ------------------------------------------------------------------ registry
if [ -z "${PORT:-}" ]; then
    for p in $(shuf -i 20000-60999 -n 100); do
        if [ -z "$(ss -Htln "sport = :$p")" ]; then PORT=$p; break; fi
    done
fi
[ -n "${PORT:-}" ] || die "no free port found"
[ -z "$(ss -Htln "sport = :$PORT")" ] || die "port $PORT in use"
REG="127.0.0.1:$PORT"
IMG="$REG/bench/big:latest"
IMG2="$REG/bench/big:second"
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $T/registry
  delete:
    enabled: true
http:
  addr: $REG
EOF
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$REG/v2/" >/dev/null || { cat "$T/registry.log" >&2; die "registry did not start"; }
log "registry on $REG (pid ${PIDS[-1]}); pushing"
for r in latest second; do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$OCI:$r" "docker://$REG/bench/big:$r"
done
for pair in "latest:$MAN_A" "second:$MAN_B"; do
    got="$(skopeo inspect --raw --tls-verify=false "docker://$REG/bench/big:${pair%%:*}" | sha256sum | cut -d' ' -f1)"
    [ "sha256:$got" = "sha256:$(basename "${pair#*:}")" ] \
        || log "warning: registry manifest for ${pair%%:*} differs from the layout's (skopeo rewrote it)"
done

# ------------------------------------------------------------------ engines
declare -A AVAIL REASON
for e in $ENGINES; do AVAIL[$e]=1; done
have() { [ "${AVAIL[$1]:-0}" = 1 ]; }
skip_engine() { AVAIL[$1]=0; REASON[$1]="$2"; log "$1 unavailable: $2"; }

# berth: our own daemon on a private root, all clients with --no-autostart
BROOT="$T/berth"
B=("$BERTH" --root "$BROOT" --no-autostart)
mkdir -p "$BROOT"
"$BERTH" --root "$BROOT" daemon >"$T/berth-daemon.log" 2>&1 &
BERTH_DPID=$!
PIDS+=("$BERTH_DPID")
for _ in $(seq 1 200); do "${B[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done
"${B[@]}" version >/dev/null 2>&1 || { cat "$T/berth-daemon.log" >&2; die "berth daemon did not start"; }
BERTH_VERSION="$("$BERTH" --version | awk '{print $NF}') ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))"
log "berth $BERTH_VERSION daemon pid $BERTH_DPID, root $BROOT"

DOCKER_VERSION="" PODMAN_VERSION=""
if have docker; then
    if "$DOCKER" info >/dev/null 2>&1; then
        log "using the docker daemon that already answers"
    else
        DR="$T/docker"; mkdir -p "$DR"
        export DOCKER_HOST="unix://$DR/docker.sock"
        start_dockerd() {
            dockerd --data-root "$DR/data" --exec-root "$DR/exec" --pidfile "$DR/dockerd.pid" \
                -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false "$@" \
                >"$DR/dockerd.log" 2>&1 &
            DOCKERD_PID=$!
            PIDS+=("$DOCKERD_PID")
            for _ in $(seq 1 600); do
                "$DOCKER" info >/dev/null 2>&1 && return 0
                kill -0 "$DOCKERD_PID" 2>/dev/null || return 1
                sleep 0.1
            done
            return 1
        }
        log "no docker daemon answers; starting dockerd (log $DR/dockerd.log)"
        if ! start_dockerd; then
            kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null || true
            log "dockerd failed ($(tail -1 "$DR/dockerd.log")); retrying with --storage-driver=overlay2"
            start_dockerd --storage-driver=overlay2 \
                || skip_engine docker "dockerd did not start: $(tail -1 "$DR/dockerd.log" | cut -c1-200)"
        fi
    fi
fi
if have docker; then
    DOCKER_VERSION="$("$DOCKER" version -f '{{.Server.Version}}') ($("$DOCKER" info -f '{{.Driver}}'))"
    log "docker $DOCKER_VERSION"
fi

if have podman; then
    # podman 4.x as root sets RLIMIT_NOFILE/NPROC=1048576 in every spec; without
    # CAP_SYS_RESOURCE the runtime cannot raise them. Not needed for pull, harmless, and
    # keeps this podman configured like the one in the other benchmarks.
    nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"; pidmax="$(cat /proc/sys/kernel/pid_max)"
    [ "$nofile" = unlimited ] && nofile=1048576
    [ "$nproc" = unlimited ] && nproc=$pidmax
    [ "$nproc" -gt "$pidmax" ] && nproc=$pidmax
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
        "$nofile" "$nofile" "$nproc" "$nproc" >"$T/containers.conf"
    export CONTAINERS_CONF="$T/containers.conf"
    P=(podman --root "$T/podman/root" --runroot "$T/podman/run")
    CLEANUP+=("podman --root '$T/podman/root' --runroot '$T/podman/run' system reset -f >/dev/null 2>&1")
    if out="$("${P[@]}" info --format '{{.Version.Version}} ({{.Store.GraphDriverName}})' 2>&1)"; then
        PODMAN_VERSION="$out"; log "podman $PODMAN_VERSION"
    else
        skip_engine podman "podman info failed: $(echo "$out" | tail -1 | cut -c1-200)"
    fi
fi
SKOPEO_VERSION="$(skopeo --version | awk '{print $3}')"
SK_OCI="$T/skopeo-oci"

# ------------------------------------------------------------------ commands
# Prepare scripts clear the local state and check that it is really gone (a failing
# prepare aborts hyperfine, so a run can never silently measure a warm pull).
mkdir -p "$T/prep"
q() { printf '%q ' "$@"; }
cat >"$T/prep/env.sh" <<EOF
set -eu
B="$(q "${B[@]}")"
DK="$(q "$DOCKER")"
P="$(q "${P[@]:-podman}")"
BSTORE=$(q "$BROOT/image")
IMG=$(q "$IMG"); IMG2=$(q "$IMG2"); SK_OCI=$(q "$SK_OCI")
export DOCKER_HOST=$(q "${DOCKER_HOST:-}"); [ -n "\$DOCKER_HOST" ] || unset DOCKER_HOST
export CONTAINERS_CONF=$(q "${CONTAINERS_CONF:-}")
berth_empty() {
  [ -z "\$(\$B images -q)" ] || { echo "berth still lists images" >&2; exit 1; }
  [ -d "\$BSTORE/blobs/sha256" ] && [ -d "\$BSTORE/snapshots" ] || { echo "no berth store at \$BSTORE" >&2; exit 1; }
  [ -z "\$(ls -A "\$BSTORE/blobs/sha256")" ] || { echo "berth blobs left after prune" >&2; ls -l "\$BSTORE/blobs/sha256" >&2; exit 1; }
  [ -z "\$(ls "\$BSTORE/snapshots")" ] || { echo "berth snapshots left after prune" >&2; ls -la "\$BSTORE/snapshots" >&2; exit 1; }
}
EOF
prep() { # NAME BODY
    { echo ". $(q "$T/prep/env.sh")"; echo "$2"; echo "sync"; } >"$T/prep/$1.sh"
}
prep berth-cold   '$B rmi -f "$IMG" "$IMG2" >/dev/null 2>&1 || true
$B image prune -a -f >/dev/null
berth_empty'
prep berth-shared '$B pull -q "$IMG" >/dev/null
$B rmi -f "$IMG2" >/dev/null 2>&1 || true
$B image prune -a -f >/dev/null
$B pull -q "$IMG" >/dev/null
! $B images --format "{{.Repository}}:{{.Tag}}" | grep -q ":second$" || { echo "second still present" >&2; exit 1; }
n=$(ls "$BSTORE/snapshots" | wc -l); [ "$n" = 4 ] || { echo "expected 4 snapshots, found $n" >&2; exit 1; }'
prep docker-cold   '$DK rmi -f "$IMG" "$IMG2" >/dev/null 2>&1 || true
$DK image prune -a -f >/dev/null
! $DK image inspect "$IMG" >/dev/null 2>&1 || { echo "docker image still present" >&2; exit 1; }'
prep docker-shared '$DK pull -q "$IMG" >/dev/null
$DK rmi -f "$IMG2" >/dev/null 2>&1 || true
! $DK image inspect "$IMG2" >/dev/null 2>&1 || { echo "docker image still present" >&2; exit 1; }'
prep podman-cold   '$P rmi -a -f >/dev/null 2>&1 || true
[ -z "$($P images -q)" ] || { echo "podman images still present" >&2; exit 1; }'
prep podman-shared '$P pull -q --tls-verify=false "$IMG" >/dev/null
$P rmi -f "$IMG2" >/dev/null 2>&1 || true
! $P image exists "$IMG2" || { echo "podman image still present" >&2; exit 1; }'
prep skopeo-cold   'rm -rf "$SK_OCI"'
prep skopeo-shared 'rm -rf "$SK_OCI"
skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$SK_OCI:latest"'
prep none ':'

declare -A CMD_COLD CMD_SHARED CMD_WARM LABEL
LABEL[berth]="berth pull"
LABEL[docker]="docker pull"
LABEL[podman]="podman pull"
LABEL[skopeo]="skopeo copy to oci: (download only)"
bq="$(q "${B[@]}")"
CMD_COLD[berth]="$bq pull -q $IMG";          CMD_SHARED[berth]="$bq pull -q $IMG2"
CMD_COLD[docker]="$DOCKER pull -q $IMG";     CMD_SHARED[docker]="$DOCKER pull -q $IMG2"
if have podman; then pq="$(q "${P[@]}")"; else pq=podman; fi
CMD_COLD[podman]="$pq pull -q --tls-verify=false $IMG"; CMD_SHARED[podman]="$pq pull -q --tls-verify=false $IMG2"
CMD_COLD[skopeo]="skopeo copy -q --src-tls-verify=false docker://$IMG oci:$SK_OCI:latest"
CMD_SHARED[skopeo]="skopeo copy -q --src-tls-verify=false docker://$IMG2 oci:$SK_OCI:second"
for e in berth docker podman skopeo; do CMD_WARM[$e]="${CMD_COLD[$e]}"; done

ACTIVE=(); for e in berth docker podman skopeo; do have "$e" && ACTIVE+=("$e"); done
log "engines: ${ACTIVE[*]}"

# one smoke pull per engine first, so that a broken engine is reported, not fatal
for e in "${ACTIVE[@]}"; do
    bash "$T/prep/$e-cold.sh" >/dev/null 2>"$T/smoke-$e.err" && ${CMD_COLD[$e]} >/dev/null 2>>"$T/smoke-$e.err" \
        || { [ "$e" = berth ] && { cat "$T/smoke-$e.err" >&2; die "berth pull failed"; }
             skip_engine "$e" "pull failed: $(tail -1 "$T/smoke-$e.err" | cut -c1-200)"; }
done
ACTIVE=(); for e in berth docker podman skopeo; do have "$e" && ACTIVE+=("$e"); done

# rounds: one hyperfine invocation per round, every engine once, order rotated
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$RES/pull-$STAMP"
mkdir -p "$RAW"
rounds() { # KIND (cold|shared)
    local kind="$1" r i n=${#ACTIVE[@]} total=$((WARMUP_ROUNDS + RUNS)) args order e cmd out
    for ((r=0; r<total; r++)); do
        args=(); order=()
        for ((i=0; i<n; i++)); do
            e="${ACTIVE[$(((i + r) % n))]}"
            if [ "$kind" = cold ]; then cmd="${CMD_COLD[$e]}"; else cmd="${CMD_SHARED[$e]}"; fi
            args+=(--prepare "bash $T/prep/$e-$kind.sh" -n "$e" "$cmd"); order+=("$e")
        done
        out="$RAW/$kind-r$(printf %02d "$r").json"
        [ "$r" -lt "$WARMUP_ROUNDS" ] && out="$RAW/$kind-warmup$(printf %02d "$r").json"
        log "$kind round $((r+1))/$total ($( [ "$r" -lt "$WARMUP_ROUNDS" ] && echo 'warm-up, discarded' || echo timed)): order ${order[*]} load=$(cut -d' ' -f1-3 /proc/loadavg)"
        hyperfine -N --style none --runs 1 --export-json "$out" "${args[@]}" >/dev/null
        jq -r '.results[] | "#   \(.command): \(.times[0]*1000|round) ms"' "$out" >&2
    done
    # merge the timed rounds into one hyperfine-shaped file with per-engine statistics
    jq -s '[.[].results[]] | group_by(.command) | map(
            (.[0].command) as $c | ([.[].times[]] | sort) as $t | ($t|length) as $n |
            ($t|add/$n) as $mean |
            {command: $c, times: $t, mean: $mean,
             median: (if $n%2==1 then $t[($n-1)/2] else ($t[$n/2-1]+$t[$n/2])/2 end),
             min: $t[0], max: $t[-1],
             stddev: (if $n>1 then ([$t[] | (.-$mean)*(.-$mean)] | add/($n-1) | sqrt) else null end)})
           | {results: .}' "$RAW/$kind"-r*.json >"$RAW/$kind.json"
}

log "== cold pulls"
rounds cold
log "== pull of the second image (3 of 4 layers present)"
rounds shared

log "== warm pulls (everything present)"
for e in "${ACTIVE[@]}"; do ${CMD_COLD[$e]} >/dev/null; done   # make sure all is present
wargs=()
for e in "${ACTIVE[@]}"; do wargs+=(-n "$e" "${CMD_WARM[$e]}"); done
hyperfine -N --style basic --warmup 3 --runs "$WARM_RUNS" --export-json "$RAW/warm.json" "${wargs[@]}" >&2

# ------------------------------------------------------------------ verify berth's unpack
VERIFY_NOTE="not run (VERIFY=0)"
if [ "$VERIFY" = 1 ]; then
    log "== verifying berth's snapshots against the layer tars"
    "${B[@]}" pull -q "$IMG2" >/dev/null
    listing() { # DIR: one line per entry: path type mode uid gid size(files) link target, mtime
        (cd "$1" && find . -mindepth 1 -printf '%P\t%y\t%m\t%U\t%G\t%s\t%l\t%T@\n' | LC_ALL=C sort \
            | awk -F'\t' -v OFS='\t' '{ if ($2!="f") $6="-"; split($8,t,"."); $8=t[1]; print }')
    }
    chain=""; bad=0; mt_bad=0; i=0
    for n in base small random top-a top-b; do
        diff_id="sha256:$(sha "$L/$n.tar")"
        if [ "$n" = top-b ]; then chain="$chain_random"; fi
        if [ -z "$chain" ]; then chain="$diff_id"; else chain="sha256:$(printf '%s %s' "$chain" "$diff_id" | sha256sum | cut -d' ' -f1)"; fi
        [ "$n" = random ] && chain_random="$chain"
        snap="$BROOT/image/snapshots/${chain#sha256:}"
        if [ ! -d "$snap" ]; then log "verify: no snapshot for layer $n ($snap)"; bad=1; continue; fi
        ref="$T/verify/$n"; mkdir -p "$ref"
        tar --numeric-owner --xattrs -xpf "$L/$n.tar" -C "$ref"
        listing "$ref" >"$T/verify/$n.want"; listing "$snap" >"$T/verify/$n.got"
        if ! cut -f1-7 "$T/verify/$n.want" | diff -q - <(cut -f1-7 "$T/verify/$n.got") >/dev/null; then
            log "verify: layer $n: metadata differs (first lines of the diff):"
            diff <(cut -f1-7 "$T/verify/$n.want") <(cut -f1-7 "$T/verify/$n.got") | head -10 >&2
            bad=1
        fi
        if ! diff -q "$T/verify/$n.want" "$T/verify/$n.got" >/dev/null; then mt_bad=$((mt_bad+1)); fi
        if ! diff -r --no-dereference -q "$ref" "$snap" >"$T/verify/$n.content" 2>&1; then
            # diff cannot compare device nodes; anything else is a content difference
            if grep -v -E 'special file|fifo' "$T/verify/$n.content" | grep -q .; then
                log "verify: layer $n: content differs:"; head -5 "$T/verify/$n.content" >&2; bad=1
            fi
        fi
        rm -rf "$ref"; i=$((i+1))
    done
    if [ "$bad" = 0 ]; then
        VERIFY_NOTE="ok: all 5 layer snapshots (both images) match \`tar -x\` of the layer: paths, types, modes, owners, sizes, link targets, contents"
        [ "$mt_bad" = 0 ] && VERIFY_NOTE="$VERIFY_NOTE, mtimes" || VERIFY_NOTE="$VERIFY_NOTE; mtimes differ in $mt_bad layer(s)"
    else
        VERIFY_NOTE="**FAILED**: berth's unpacked layers differ from the tars (see the script's output)"
    fi
    log "verify: $VERIFY_NOTE"
fi
DF="$("${B[@]}" system df 2>&1 | sed 's/^/    /')"

# ------------------------------------------------------------------ report
med() { # FILE ENGINE -> median seconds or empty
    jq -r --arg c "$2" '.results[] | select(.command==$c) | .median' "$1" 2>/dev/null
}
fmt() { # seconds -> "1.234 s" or "12.3 ms"
    [ -n "$1" ] || { echo "n/a"; return; }
    awk -v s="$1" 'BEGIN{ if (s>=1) printf "%.3f s", s; else printf "%.1f ms", s*1000 }'
}
cell() { # FILE ENGINE -> "median (min–max)"
    local m; m="$(med "$1" "$2")"
    [ -n "$m" ] || { echo "n/a"; return; }
    echo "$(fmt "$m") ($(fmt "$(jq -r --arg c "$2" '.results[]|select(.command==$c)|.min' "$1")")–$(fmt "$(jq -r --arg c "$2" '.results[]|select(.command==$c)|.max' "$1")"))"
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}' || echo "n/a"; }

cgroup_mode() {
    case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
        cgroup2fs) echo "v2 (unified)" ;;
        tmpfs) if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo "v1 (hybrid)"; else echo "v1 (legacy)"; fi ;;
        *) echo unknown ;;
    esac
}
mb() { awk -v b="$1" 'BEGIN{printf "%.1f MB", b/1e6}'; }

BC="$(med "$RAW/cold.json" berth)"; DC="$(med "$RAW/cold.json" docker)"
PC="$(med "$RAW/cold.json" podman)"; SC="$(med "$RAW/cold.json" skopeo)"
BW="$(med "$RAW/warm.json" berth)"
BS="$(med "$RAW/shared.json" berth)"; DS="$(med "$RAW/shared.json" docker)"
PS="$(med "$RAW/shared.json" podman)"; SS="$(med "$RAW/shared.json" skopeo)"

target_cold="n/a (docker unavailable)"
if [ -n "$DC" ]; then
    if awk -v d="$DC" -v b="$BC" 'BEGIN{exit !(d/b >= 3.5)}'; then target_cold="**met**"; else target_cold="**not met**"; fi
    target_cold="$target_cold: docker/berth = $(ratio "$DC" "$BC") (target >= 3.5x, i.e. berth <= $(fmt "$(awk -v d="$DC" 'BEGIN{print d/3.5}')"))"
fi
if awk -v w="$BW" 'BEGIN{exit !(w < 0.050)}'; then target_warm="**met**"; else target_warm="**not met**"; fi
target_warm="$target_warm: $(fmt "$BW") (target < 50 ms)"

SECTION="$T/section.md"
{
    echo "## Pull (bench/pull.sh)"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`bash bench/pull.sh\`; raw hyperfine JSON in \`bench/results/$(basename "$RAW")/\` (not committed)."
    echo
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), cgroup $(cgroup_mode), state on $(stat -f -c %T "$T") ($(. /etc/os-release; echo "$PRETTY_NAME"))."
    echo "- Versions: berth $BERTH_VERSION; docker ${DOCKER_VERSION:-n/a}; podman ${PODMAN_VERSION:-n/a}; skopeo $SKOPEO_VERSION; docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null)."
    echo "- Image: 4 layers, $(mb "$COMP") compressed, $(mb "$UNCOMP") uncompressed (gzip -6 OCI layers, built by the script without docker):"
    echo "  debootstrap minbase bookworm ($(mb "$(jq '.layers[0].size' "$MAN_A")")), $NSMALL files of 1-4 KiB ($(mb "$(jq '.layers[1].size' "$MAN_A")")),"
    echo "  50 x 1 MiB random ($(mb "$(jq '.layers[2].size' "$MAN_A")")), top layer ($(jq '.layers[3].size' "$MAN_A") B). The second image shares the first 3 layers and has its own top layer ($TOPB B) and config."
    echo "- Registry: Debian's docker-registry on $REG (plain HTTP, filesystem storage)."
    echo "- Method: hyperfine -N. Cold and second-image pulls alternate between engines: one hyperfine call per round, one run per engine, order rotated each round, $WARMUP_ROUNDS warm-up round(s) discarded, $RUNS timed rounds; \`--prepare\` removes the local state and checks it is gone, then \`sync\`"
    echo "  (berth: \`rmi -f\` + \`image prune -a -f\`, its own daemon on a private --root; docker: \`rmi -f\` + \`image prune -a -f\`; podman: \`rmi -a -f\`; skopeo: \`rm -rf\` of the OCI dir)."
    echo "  Second image: the first image is present, the second one and its top layer are not. Warm: everything present, one hyperfine run with all engines, 3 warm-ups, $WARM_RUNS runs."
    echo "  Times are end to end from the CLI (daemons already running): download, verify, unpack (berth, docker, podman), ready to run; skopeo only downloads."
    echo
    echo "| engine | cold pull, median (min–max) | second image, 3/4 layers present | warm pull (all present) |"
    echo "|---|---|---|---|"
    for e in berth docker podman skopeo; do
        if have "$e"; then
            echo "| ${LABEL[$e]} | $(cell "$RAW/cold.json" "$e") | $(cell "$RAW/shared.json" "$e") | $(cell "$RAW/warm.json" "$e") |"
        else
            echo "| ${LABEL[$e]} | unavailable: ${REASON[$e]:-not selected} | | |"
        fi
    done
    echo
    echo "Ratios of medians: cold docker/berth $(ratio "$DC" "$BC"), podman/berth $(ratio "$PC" "$BC"), berth/skopeo $(ratio "$BC" "$SC");"
    echo "second image docker/berth $(ratio "$DS" "$BS"), podman/berth $(ratio "$PS" "$BS"), berth/skopeo $(ratio "$BS" "$SS")."
    echo
    echo "Targets (issue): cold pull at least 3.5x faster than \`docker pull\`: $target_cold. Warm pull under 50 ms: $target_warm."
    echo "For reference, the issue measured on this machine: docker 4.6 s, podman 14.3 s, skopeo 0.53 s (cold)."
    echo
    echo "Unpack check: $VERIFY_NOTE."
    echo
    echo "berth system df after the run:"
    echo
    echo "$DF"
    echo
} >"$SECTION"

OUTMD="$BENCH_DIR/RESULTS.md"
[ -f "$OUTMD" ] || printf '# berth benchmark results\n\n' >"$OUTMD"
awk -v secfile="$SECTION" '
    BEGIN { while ((getline l < secfile) > 0) sec = sec l "\n" }
    /^## / { if (skip) skip = 0
             if ($0 ~ /^## Pull( |$)/) { skip = 1; if (!done) printf "%s", sec; done = 1; next } }
    !skip { print }
    END { if (!done) printf "%s%s", (NR ? "\n" : ""), sec }' "$OUTMD" >"$OUTMD.tmp"
# no double blank line where the new section was appended
cat -s "$OUTMD.tmp" >"$OUTMD"; rm -f "$OUTMD.tmp"
cp "$SECTION" "$RAW/section.md"
cat "$SECTION"
log "wrote $OUTMD"
