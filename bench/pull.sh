#!/usr/bin/env bash
# bench/pull.sh -- cold / warm / shared-layer image pulls over loopback:
# berth vs `docker pull` vs `podman pull` vs `skopeo copy` to an OCI directory.
#
# What it does
#   1. Installs what is missing with apt-get (debootstrap docker-registry skopeo podman
#      docker.io hyperfine jq, plus curl psmisc iproute2 e2fsprogs).
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
#   4. For each state filesystem in $STATE_FS (see below): starts a berth daemon, a private
#      dockerd (own socket, data-root, exec-root; no bridge, no iptables) and uses podman
#      with a private --root, all keeping their state on that filesystem; then measures with
#      hyperfine, engines alternating (one hyperfine invocation per round, --runs 1 per
#      engine, order rotated every round, $WARMUP_ROUNDS discarded warm-up round):
#        cold    everything local removed in --prepare (+ sync), then pull `latest`
#        second  `latest` present, `second` and its own top layer removed, then pull `second`
#      and the warm pull (everything present): one hyperfine run, all engines side by side.
#   5. Checks that berth unpacked every layer exactly like tar does (VERIFY=1), writes raw
#      JSON to bench/results/ and replaces the "## Pull" section of bench/RESULTS.md.
#
# State filesystems (STATE_FS, default "host ext4"):
#   host   a directory under /var/tmp, i.e. the machine's own filesystem
#   ext4   a fresh ext4 with a journal (mkfs.ext4 defaults) on a loop device, image in /var/tmp
#   Why both: ext4 *without* a journal (as on some VMs) skips inodes freed in the last 60 s
#   (360 s while their inode-table block is dirty) when it allocates new ones, scanning them
#   one by one (fs/ext4/ialloc.c recently_deleted()).  A cold pull right after removing
#   the previous copy then spends most of its time in the kernel, by an amount that depends
#   on where the inodes landed.  The ext4 run shows the engines without that effect.
#
# Usage: bash bench/pull.sh        (as root)
# Env:   BERTH=/path/to/berth   use this binary (default: cargo build --release -p berth)
#        CACHE=/var/tmp/berth-bench-cache   generated layers / OCI layout (kept)
#        RUNS=5 (cold/second rounds, >= 5)  WARM_RUNS=20  WARMUP_ROUNDS=1
#        SETTLE_WAIT=15 SETTLE_CPU=10: every prepare (all engines alike) ends by waiting at
#          most SETTLE_WAIT s for the CPUs to be under SETTLE_CPU % busy over one second
#        STATE_FS="host ext4"   ENGINES="berth docker podman skopeo"   PORT (default: free)
#        MIRROR (default: the first Debian URI in apt's sources)   VERIFY=1   KEEP_TMP=1
#        DOCKER=docker CLI to use (default /usr/bin/docker from docker.io when present)
# Network: the Debian mirror (apt-get, debootstrap) and 127.0.0.1 only.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"   # podman_conf
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RES="$BENCH_DIR/results"
CACHE="${CACHE:-/var/tmp/berth-bench-cache}"
RUNS="${RUNS:-5}"
WARM_RUNS="${WARM_RUNS:-20}"
WARMUP_ROUNDS="${WARMUP_ROUNDS:-1}"
SETTLE_WAIT="${SETTLE_WAIT:-15}"
SETTLE_CPU="${SETTLE_CPU:-10}"
ENGINES="${ENGINES:-berth docker podman skopeo}"
STATE_FS="${STATE_FS:-host ext4}"
VERIFY="${VERIFY:-1}"
LAYOUT_VERSION="pull-v1"   # bump when the generated image changes

log() { echo "# $*" >&2; }
die() { echo "pull.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, dockerd, podman and mount need it)"
[ "$RUNS" -ge 5 ] || die "RUNS must be >= 5"
for m in $STATE_FS; do case "$m" in host|ext4) ;; *) die "STATE_FS: unknown '$m' (host, ext4)" ;; esac; done

# ------------------------------------------------------------------ cleanup
PIDS=()            # every long-running process this script started
CLEANUP=()         # extra cleanup commands, run in reverse order
T=""
cleanup() {
    local rc=$? i p
    set +e
    [ -n "${HF_PID:-}" ] && kill -TERM "$HF_PID" 2>/dev/null && wait "$HF_PID" 2>/dev/null
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
    [fuser]=psmisc [ss]=iproute2 [gzip]=gzip [mkfs.ext4]=e2fsprogs [losetup]=mount)
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
BERTH_BUILT=""
if [ -z "${BERTH:-}" ]; then
    BERTH_BUILT=1
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
cat >"$T/registry.yml" <<YML
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
YML
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
    [ "$got" = "$(basename "${pair#*:}")" ] \
        || log "warning: registry manifest for ${pair%%:*} differs from the layout's (skopeo rewrote it)"
done

# ------------------------------------------------------------------ engine set-up
BERTH_VERSION="$("$BERTH" --version | awk '{print $NF}')"
if [ -n "$BERTH_BUILT" ]; then
    BERTH_VERSION="$BERTH_VERSION (built from $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ' with uncommitted changes in crates/'))"
else
    BERTH_VERSION="$BERTH_VERSION (prebuilt $BERTH, $(date -u -r "$BERTH" '+%Y-%m-%d %H:%M UTC'))"
fi
SKOPEO_VERSION="$(skopeo --version | awk '{print $3}')"
DOCKER_VERSION="" PODMAN_VERSION=""
declare -A AVAIL REASON LABEL
LABEL[berth]="berth pull"
LABEL[docker]="docker pull"
LABEL[podman]="podman pull"
LABEL[skopeo]="skopeo copy to oci: (download only)"

# podman 4.x as root sets RLIMIT_NOFILE/NPROC=1048576 in every spec; without
# CAP_SYS_RESOURCE the runtime cannot raise them.  Not needed for pull; harmless, and
# podman is configured as in the other benchmarks.
podman_conf "$T/containers.conf"

q() { printf '%q ' "$@"; }
kill_wait() { # PID [seconds]
    local p="$1" n=$(( ${2:-20} * 10 ))
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 1 "$n"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "pid $p did not exit on SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
    wait "$p" 2>/dev/null || true
}

# state_setup MODE -> sets S (state dir), FS_DESC
state_setup() {
    case "$1" in
        host)
            S="$T/state-host"; mkdir -p "$S"
            local src fstype opts dev
            read -r src fstype opts < <(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$S")
            dev="$(basename "$src")"
            FS_DESC="Host filesystem: $fstype on $src ($opts)"
            if [ "$fstype" = ext4 ]; then
                if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then FS_DESC="$FS_DESC, with journal"
                else FS_DESC="$FS_DESC, **without journal**"; fi
            fi
            ;;
        ext4)
            S="$T/state-ext4"; mkdir -p "$S"
            truncate -s "${EXT4_SIZE:-16G}" "$T/state-ext4.img"
            mkfs.ext4 -q -F "$T/state-ext4.img"
            mount -o loop "$T/state-ext4.img" "$S"
            CLEANUP+=("mountpoint -q '$S' && umount '$S'")
            FS_DESC="Fresh ext4 with journal (mkfs.ext4 defaults) on $(findmnt -no SOURCE -T "$S"), image file on the host filesystem"
            ;;
    esac
}
state_teardown() {
    if [ "$1" = ext4 ]; then
        sync; umount "$S" || umount -l "$S"
        rm -f "$T/state-ext4.img"
    fi
}

# engines_start: berth daemon, dockerd, podman on $S; sets AVAIL_*, REASON_*
engines_start() {
    local e out
    for e in berth docker podman skopeo; do AVAIL[$e]=0; REASON[$e]="not selected (ENGINES)"; done
    for e in $ENGINES; do AVAIL[$e]=1; REASON[$e]=""; done

    BROOT="$S/berth"; mkdir -p "$BROOT"
    B=("$BERTH" --root "$BROOT" --no-autostart)
    "$BERTH" --root "$BROOT" daemon >"$T/berth-daemon-$MODE.log" 2>&1 &
    BERTH_DPID=$!; PIDS+=("$BERTH_DPID")
    for _ in $(seq 1 200); do "${B[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done
    "${B[@]}" version >/dev/null 2>&1 || { cat "$T/berth-daemon-$MODE.log" >&2; die "berth daemon did not start"; }
    log "berth $BERTH_VERSION: daemon pid $BERTH_DPID, root $BROOT"

    DOCKERD_PID=""
    if have docker; then
        DR="$S/docker"; mkdir -p "$DR"
        export DOCKER_HOST="unix://$DR/docker.sock"
        dockerd --data-root "$DR/data" --exec-root "$DR/exec" --pidfile "$DR/dockerd.pid" \
            -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
            >"$T/dockerd-$MODE.log" 2>&1 &
        DOCKERD_PID=$!; PIDS+=("$DOCKERD_PID")
        for _ in $(seq 1 600); do
            "$DOCKER" info >/dev/null 2>&1 && break
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.1
        done
        if "$DOCKER" info >/dev/null 2>&1; then
            DOCKER_VERSION="$("$DOCKER" version -f '{{.Server.Version}}') ($("$DOCKER" info -f '{{.Driver}}'))"
            log "dockerd $DOCKER_VERSION: pid $DOCKERD_PID, data-root $DR/data"
        else
            skip_engine docker "dockerd did not start: $(tail -1 "$T/dockerd-$MODE.log" | cut -c1-200)"
        fi
    fi

    # podman refuses a runroot path longer than 50 characters; it belongs on a tmpfs anyway
    PRUN="$(mktemp -d /run/berth-bench-podman.XXXXXX)"
    CLEANUP+=("rm -rf '$PRUN'")
    P=(podman --root "$S/podman/root" --runroot "$PRUN")
    if have podman; then
        if out="$("${P[@]}" info --format '{{.Version.Version}} ({{.Store.GraphDriverName}})' 2>&1)"; then
            PODMAN_VERSION="$out"; log "podman $PODMAN_VERSION: root $S/podman/root"
        else
            skip_engine podman "podman info failed: $(echo "$out" | tail -1 | cut -c1-200)"
        fi
    fi
    SK_OCI="$S/skopeo-oci"
}
engines_stop() {
    kill_wait "$BERTH_DPID" 20
    [ -n "$DOCKERD_PID" ] && kill_wait "$DOCKERD_PID" 30
    if have podman; then "${P[@]}" system reset -f >/dev/null 2>&1 || true; fi
    unset DOCKER_HOST
}
have() { [ "${AVAIL[$1]:-0}" = 1 ]; }
skip_engine() { AVAIL[$1]=0; REASON[$1]="$2"; log "$1 unavailable: $2"; }

# Prepare scripts clear the local state and check that it is really gone (a failing
# prepare aborts hyperfine, so a run can never silently measure a warm pull).
write_prepares() {
    PREP="$T/prep-$MODE"; mkdir -p "$PREP"
    cat >"$PREP/env.sh" <<ENV
set -eu
B="$(q "${B[@]}")"
DK="$(q "$DOCKER")"
P="$(q "${P[@]}")"
BSTORE=$(q "$BROOT/image")
IMG=$(q "$IMG"); IMG2=$(q "$IMG2"); SK_OCI=$(q "$SK_OCI")
export DOCKER_HOST=$(q "${DOCKER_HOST:-}"); [ -n "\$DOCKER_HOST" ] || unset DOCKER_HOST
export CONTAINERS_CONF=$(q "$CONTAINERS_CONF")
fail() { echo "prepare: \$*" >&2; exit 1; }
ENV
    # after the removal and its sync, wait for quiet CPUs (all engines alike): a removal's
    # background work (dockerd's, podman's, the kernel's writeback) must not land in the next
    # engine's pull; a prepare that never saw quiet CPUs is noted in unsettled.log
    prep() { { echo ". $(q "$PREP/env.sh")"; echo "$2"; echo "sync"
               echo ". $(q "$BENCH_DIR/lib.sh")"
               echo "busy=\$(settle_cpu $SETTLE_WAIT $SETTLE_CPU) || echo \"$1 (\$busy %)\" >>$(q "$T/unsettled-$MODE.log")"
             } >"$PREP/$1.sh"; }
    prep berth-cold '$B rmi -f "$IMG" "$IMG2" >/dev/null 2>&1 || true
$B image prune -a -f >/dev/null
[ -z "$($B images -q)" ] || fail "berth still lists images"
[ -d "$BSTORE/blobs/sha256" ] && [ -d "$BSTORE/snapshots" ] || fail "no berth store at $BSTORE"
[ -z "$(ls -A "$BSTORE/blobs/sha256")" ] || fail "berth blobs left after prune"
[ -z "$(ls -A "$BSTORE/snapshots")" ] || fail "berth snapshots left after prune"'
    prep berth-second '$B pull -q "$IMG" >/dev/null
$B rmi -f "$IMG2" >/dev/null 2>&1 || true
$B image prune -f >/dev/null
[ -z "$($B images -q "$IMG2")" ] || fail "berth still has the second image"
n=$(ls -A "$BSTORE/snapshots" | wc -l); [ "$n" = 4 ] || fail "expected the 4 snapshots of the first image, found $n"'
    prep docker-cold '$DK rmi -f "$IMG" "$IMG2" >/dev/null 2>&1 || true
$DK image prune -a -f >/dev/null
[ -z "$($DK images -q)" ] || fail "docker still lists images"'
    prep docker-second '$DK pull -q "$IMG" >/dev/null
$DK rmi -f "$IMG2" >/dev/null 2>&1 || true
! $DK image inspect "$IMG2" >/dev/null 2>&1 || fail "docker still has the second image"'
    prep podman-cold '$P rmi -a -f >/dev/null 2>&1 || true
[ -z "$($P images -q)" ] || fail "podman still lists images"'
    prep podman-second '$P pull -q --tls-verify=false "$IMG" >/dev/null
$P rmi -f "$IMG2" >/dev/null 2>&1 || true
! $P image exists "$IMG2" || fail "podman still has the second image"'
    prep skopeo-cold 'rm -rf "$SK_OCI"'
    prep skopeo-second 'rm -rf "$SK_OCI"
skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$SK_OCI:latest"'
}

cmd_for() { # ENGINE KIND(cold|second|warm)
    local ref="$IMG" tag=latest
    [ "$2" = second ] && { ref="$IMG2"; tag=second; }
    case "$1" in
        berth)  echo "$(q "${B[@]}")pull -q $ref" ;;
        docker) echo "$DOCKER pull -q $ref" ;;
        podman) echo "$(q "${P[@]}")pull -q --tls-verify=false $ref" ;;
        skopeo) echo "skopeo copy -q --src-tls-verify=false docker://$ref oci:$SK_OCI:$tag" ;;
    esac
}

# hyperfine -N in the background, so that a TERM to this script stops it at once (cleanup kills it)
HF_PID=""
hf() {
    hyperfine -N "$@" &
    HF_PID=$!
    local rc=0; wait "$HF_PID" || rc=$?
    HF_PID=""
    return "$rc"
}

# rounds KIND: one hyperfine invocation per round, every engine once, order rotated
rounds() {
    local kind="$1" r i n=${#ACTIVE[@]} total=$((WARMUP_ROUNDS + RUNS)) args order e out
    for ((r=0; r<total; r++)); do
        args=(); order=()
        for ((i=0; i<n; i++)); do
            e="${ACTIVE[$(((i + r) % n))]}"
            args+=(--prepare "bash $PREP/$e-$kind.sh" -n "$e" "$(cmd_for "$e" "$kind")"); order+=("$e")
        done
        if [ "$r" -lt "$WARMUP_ROUNDS" ]; then out="$RAWM/$kind-warmup$r.json"; else out="$RAWM/$kind-r$(printf %02d "$r").json"; fi
        log "[$MODE] $kind round $((r+1))/$total$([ "$r" -lt "$WARMUP_ROUNDS" ] && echo ' (warm-up, discarded)'): ${order[*]}  load=$(cut -d' ' -f1-3 /proc/loadavg)"
        hf --style none --runs 1 --export-json "$out" "${args[@]}" >/dev/null
        jq -r '.results[] | "#     \(.command) \(.times[0]*1000|round) ms"' "$out" >&2
    done
    # merge the timed rounds into one hyperfine-shaped file with per-engine statistics
    jq -s '[.[].results[]] | group_by(.command) | map(
            (.[0].command) as $c | ([.[].times[]] | sort) as $t | ($t|length) as $n |
            ($t|add/$n) as $mean |
            {command: $c, times: $t, mean: $mean,
             median: (if $n%2==1 then $t[($n-1)/2] else ($t[$n/2-1]+$t[$n/2])/2 end),
             min: $t[0], max: $t[-1],
             stddev: (if $n>1 then ([$t[] | (.-$mean)*(.-$mean)] | add/($n-1) | sqrt) else null end)})
           | {results: .}' "$RAWM/$kind"-r*.json >"$RAWM/$kind.json"
}

verify_berth() { # compares berth's snapshots with `tar -x` of every layer
    local n diff_id chain="" chain_random="" snap ref bad=0 mt_bad=0
    "${B[@]}" pull -q "$IMG" >/dev/null
    "${B[@]}" pull -q "$IMG2" >/dev/null
    listing() { # one line per entry: path type mode uid gid size(files) link-target mtime
        (cd "$1" && find . -mindepth 1 -printf '%P\t%y\t%m\t%U\t%G\t%s\t%l\t%T@\n' | LC_ALL=C sort \
            | awk -F'\t' -v OFS='\t' '{ if ($2!="f") $6="-"; split($8,t,"."); $8=t[1]; print }')
    }
    mkdir -p "$T/verify"
    for n in base small random top-a top-b; do
        diff_id="sha256:$(sha "$L/$n.tar")"
        [ "$n" = top-b ] && chain="$chain_random"
        if [ -z "$chain" ]; then chain="$diff_id"
        else chain="sha256:$(printf '%s %s' "$chain" "$diff_id" | sha256sum | cut -d' ' -f1)"; fi
        [ "$n" = random ] && chain_random="$chain"
        snap="$BROOT/image/snapshots/${chain#sha256:}"
        if [ ! -d "$snap" ]; then log "verify: no snapshot for layer $n ($snap)"; bad=1; continue; fi
        ref="$T/verify/$n"; rm -rf "$ref"; mkdir -p "$ref"
        tar --numeric-owner --xattrs -xpf "$L/$n.tar" -C "$ref"
        listing "$ref" >"$T/verify/$n.want"; listing "$snap" >"$T/verify/$n.got"
        if ! diff -q <(cut -f1-7 "$T/verify/$n.want") <(cut -f1-7 "$T/verify/$n.got") >/dev/null; then
            log "verify: layer $n: metadata differs (want / got):"
            diff <(cut -f1-7 "$T/verify/$n.want") <(cut -f1-7 "$T/verify/$n.got") | head -10 >&2
            bad=1
        fi
        diff -q "$T/verify/$n.want" "$T/verify/$n.got" >/dev/null || mt_bad=$((mt_bad+1))
        if ! diff -r --no-dereference -q "$ref" "$snap" >"$T/verify/$n.content" 2>&1; then
            # diff cannot compare device nodes; anything else is a content difference
            if grep -v -E 'special file|fifo' "$T/verify/$n.content" | grep -q .; then
                log "verify: layer $n: content differs:"; head -5 "$T/verify/$n.content" >&2; bad=1
            fi
        fi
        rm -rf "$ref"
    done
    if [ "$bad" = 0 ]; then
        VERIFY_NOTE="ok: the 5 layer snapshots of both images match \`tar -x\` of the layers (paths, types, modes, owners, sizes, link targets, contents"
        if [ "$mt_bad" = 0 ]; then VERIFY_NOTE="$VERIFY_NOTE, mtimes)"; else VERIFY_NOTE="$VERIFY_NOTE; mtimes differ in $mt_bad layer(s))"; fi
    else
        VERIFY_NOTE="**FAILED**: berth's unpacked layers differ from the tars (see the script's output)"
    fi
    log "[$MODE] verify: $VERIFY_NOTE"
}

# ------------------------------------------------------------------ report helpers
med() { jq -r --arg c "$2" '.results[] | select(.command==$c) | .median' "$1" 2>/dev/null; }
fmt() { # seconds -> "1.234 s" or "12.3 ms"
    [ -n "$1" ] || { echo "n/a"; return; }
    awk -v s="$1" 'BEGIN{ if (s>=1) printf "%.2f s", s; else if (s>=0.1) printf "%.0f ms", s*1000; else printf "%.1f ms", s*1000 }'
}
cell() { # FILE ENGINE -> "median (min–max)"
    local m lo hi
    m="$(med "$1" "$2")"; [ -n "$m" ] || { echo "n/a"; return; }
    lo="$(jq -r --arg c "$2" '.results[]|select(.command==$c)|.min' "$1")"
    hi="$(jq -r --arg c "$2" '.results[]|select(.command==$c)|.max' "$1")"
    echo "**$(fmt "$m")** ($(fmt "$lo")–$(fmt "$hi"))"
}
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; else echo "n/a"; fi; }
mb() { awk -v b="$1" 'BEGIN{printf "%.1f MB", b/1e6}'; }
cgroup_mode() {
    case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
        cgroup2fs) echo "v2 (unified)" ;;
        tmpfs) if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo "v1 (hybrid)"; else echo "v1 (legacy)"; fi ;;
        *) echo unknown ;;
    esac
}

# mode_section: the markdown for one state filesystem
mode_section() {
    local c="$RAWM/cold.json" s="$RAWM/second.json" w="$RAWM/warm.json" e
    local BC DC PC SC BS DS PS SS BW tc tw
    BC="$(med "$c" berth)"; DC="$(med "$c" docker)"; PC="$(med "$c" podman)"; SC="$(med "$c" skopeo)"
    BS="$(med "$s" berth)"; DS="$(med "$s" docker)"; PS="$(med "$s" podman)"; SS="$(med "$s" skopeo)"
    BW="$(med "$w" berth)"
    if [ -n "$DC" ] && [ -n "$BC" ]; then
        if awk -v d="$DC" -v b="$BC" 'BEGIN{exit !(d/b >= 3.5)}'; then tc="met"; else tc="**not met**"; fi
        tc="$tc (docker/berth $(ratio "$DC" "$BC"); 3.5x would need berth <= $(fmt "$(awk -v d="$DC" 'BEGIN{print d/3.5}')"))"
    else tc="n/a (no docker figure)"; fi
    if [ -n "$BW" ] && awk -v w="$BW" 'BEGIN{exit !(w < 0.050)}'; then tw="met"; else tw="**not met**"; fi
    tw="$tw ($(fmt "$BW"))"
    if [ "$MODE" = host ]; then echo "### State on the host filesystem"; else echo "### State on a fresh journaled ext4 (loop device)"; fi
    echo
    local unsettled="the CPUs were quiet before every pull"
    [ -s "$T/unsettled-$MODE.log" ] && unsettled="the CPUs were still busy after the wait before: $(paste -sd, "$T/unsettled-$MODE.log" | sed 's/,/, /g')"
    echo "$FS_DESC. Load average before / after: $LOAD_BEFORE / $LOAD_AFTER; $unsettled."
    echo
    echo "| engine | cold pull | second image (3 of 4 layers present) | warm pull (all present) |"
    echo "|---|---|---|---|"
    for e in berth docker podman skopeo; do
        if have "$e"; then
            echo "| ${LABEL[$e]} | $(cell "$c" "$e") | $(cell "$s" "$e") | $(cell "$w" "$e") |"
        else
            echo "| ${LABEL[$e]} | unavailable: ${REASON[$e]} | | |"
        fi
    done
    echo
    echo "Ratios of medians, cold: docker/berth **$(ratio "$DC" "$BC")**, podman/berth $(ratio "$PC" "$BC"), berth/skopeo $(ratio "$BC" "$SC");"
    echo "second image: docker/berth $(ratio "$DS" "$BS"), podman/berth $(ratio "$PS" "$BS"), berth/skopeo $(ratio "$BS" "$SS")."
    echo "Targets: cold pull >= 3.5x faster than docker pull: $tc; warm pull < 50 ms: $tw."
    echo "Unpack check: $VERIFY_NOTE."
    echo
}

# ------------------------------------------------------------------ measure, per state fs
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$RES/pull-$STAMP"
mkdir -p "$RAW"
SECTIONS=()
for MODE in $STATE_FS; do
    log "======== state on the $MODE filesystem"
    state_setup "$MODE"
    engines_start
    write_prepares
    RAWM="$RAW/$MODE"; mkdir -p "$RAWM"
    # one pull per engine first, so that a broken engine is reported, not fatal
    for e in berth docker podman skopeo; do
        have "$e" || continue
        if ! { bash "$PREP/$e-cold.sh" && eval "$(cmd_for "$e" cold)"; } >/dev/null 2>"$T/smoke-$e.err"; then
            [ "$e" = berth ] && { cat "$T/smoke-$e.err" >&2; die "berth pull failed"; }
            skip_engine "$e" "pull failed: $(grep -v '^$' "$T/smoke-$e.err" | tail -1 | cut -c1-200)"
        fi
    done
    ACTIVE=(); for e in berth docker podman skopeo; do have "$e" && ACTIVE+=("$e"); done
    log "[$MODE] engines: ${ACTIVE[*]}"
    LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

    rounds cold
    rounds second

    log "[$MODE] warm pulls (everything present)"
    wargs=()
    for e in "${ACTIVE[@]}"; do eval "$(cmd_for "$e" cold)" >/dev/null; wargs+=(-n "$e" "$(cmd_for "$e" warm)"); done
    hf --style basic --warmup 3 --runs "$WARM_RUNS" --export-json "$RAWM/warm.json" "${wargs[@]}" >&2
    LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

    VERIFY_NOTE="not run (VERIFY=0)"
    [ "$VERIFY" = 1 ] && verify_berth
    "${B[@]}" system df >"$RAWM/berth-system-df.txt" 2>&1 || true
    SECTIONS+=("$(mode_section)")
    engines_stop
    state_teardown "$MODE"
done

# ------------------------------------------------------------------ RESULTS.md
SECTION="$T/section.md"
{
    echo "## Pull (bench/pull.sh)"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') with \`bash bench/pull.sh\`; raw hyperfine JSON in \`bench/results/$(basename "$RAW")/\` (not committed)."
    echo
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), cgroup $(cgroup_mode), $(. /etc/os-release; echo "$PRETTY_NAME")."
    echo "- Versions: berth $BERTH_VERSION; docker ${DOCKER_VERSION:-n/a} with CLI $("$DOCKER" --version | awk '{print $3}' | tr -d ,); podman ${PODMAN_VERSION:-n/a}; skopeo $SKOPEO_VERSION; docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null)."
    echo "- Image (built by the script, no docker): 4 gzip layers, $(mb "$COMP") compressed, $(mb "$UNCOMP") uncompressed:"
    echo "  debootstrap minbase bookworm ($(mb "$(jq '.layers[0].size' "$MAN_A")")), $NSMALL files of 1-4 KiB ($(mb "$(jq '.layers[1].size' "$MAN_A")")), 50 x 1 MiB random ($(mb "$(jq '.layers[2].size' "$MAN_A")")), top layer ($(jq '.layers[3].size' "$MAN_A") B)."
    echo "  The second image shares the first 3 layers and has its own top layer ($TOPB B) and config. Registry: Debian's docker-registry on $REG (plain HTTP)."
    echo "- Method: hyperfine -N, times end to end from the CLI with the daemons already running. Cold and second-image pulls alternate between engines: one hyperfine call per round, one run per engine, order rotated each round, $WARMUP_ROUNDS warm-up round(s) discarded, **median of $RUNS rounds** (min–max in brackets)."
    echo "  \`--prepare\` removes the local state, checks it is gone, runs \`sync\`, then waits up to $SETTLE_WAIT s for the CPUs to be under $SETTLE_CPU % busy over one second (all engines alike): berth \`rmi -f\` + \`image prune -a -f\`; docker \`rmi -f\` + \`image prune -a -f\`; podman \`rmi -a -f\`; skopeo \`rm -rf\` of the OCI dir."
    echo "  Second image: the first image is present, the second one and its own top layer are not. Warm: everything present; one hyperfine run with all engines, 3 warm-ups, $WARM_RUNS runs."
    echo "  berth, docker and podman download, verify and unpack (ready to run); skopeo only downloads. Each engine keeps its state (berth --root, dockerd --data-root, podman --root, skopeo's OCI dir) on the filesystem named in the heading; berth and dockerd are private instances started by the script."
    echo "- Why two filesystems: ext4 without a journal skips inodes freed in the last 60 s (360 s while their inode-table block is dirty) when it allocates new ones, one lookup each (fs/ext4/ialloc.c recently_deleted()), so a pull right after removing the previous copy can spend most of its time in the kernel, by an amount that depends on where the inodes land. The journaled ext4 shows the engines without that effect."
    echo "- Issue's reference figures on this machine (cold, host filesystem): docker 4.6 s, podman 14.3 s, skopeo 0.53 s. Targets: berth cold >= 3.5x faster than docker pull; warm pull < 50 ms."
    echo
    for s in "${SECTIONS[@]}"; do echo "$s"; echo; done
} >"$SECTION"

OUTMD="$BENCH_DIR/RESULTS.md"
[ -f "$OUTMD" ] || printf '# berth benchmark results\n\n' >"$OUTMD"
awk -v secfile="$SECTION" '
    BEGIN { while ((getline l < secfile) > 0) sec = sec l "\n" }
    /^## / { if (skip) skip = 0
             if ($0 ~ /^## Pull( |$)/) { skip = 1; if (!done) printf "%s", sec; done = 1; next } }
    !skip { print }
    END { if (!done) printf "%s%s", (NR ? "\n" : ""), sec }' "$OUTMD" >"$OUTMD.tmp"
cat -s "$OUTMD.tmp" >"$OUTMD"; rm -f "$OUTMD.tmp"
cp "$SECTION" "$RAW/section.md"
cat "$SECTION"
log "wrote $OUTMD"
