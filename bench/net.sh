#!/usr/bin/env bash
# bench/net.sh -- networking costs: berth vs docker vs podman.
#
#   A  start-to-exit of `run --rm IMG true` on each engine's default bridge, and with
#      --network none (hyperfine -N, medians).  The bridge's cost is the difference.
#   B  TCP throughput host -> container through a published port: iperf3 -c 127.0.0.1 and
#      -c <the bridge's own address> (the host's address in this namespace), berth (its
#      default: connections made on the host are translated at connect() by a cgroup BPF
#      program, so they skip NAT), berth with `daemon --local-ports nat` (nftables DNAT of
#      every packet; the same container, its daemon restarted with that flag between the
#      two kinds of rounds, which alternate) vs docker (its
#      default docker-proxy userland path) vs podman (netavark: iptables DNAT), plus the
#      direct veth path (iperf3 -c <container address>) as the reference the published path
#      is compared with.
#
# Everything runs inside a network namespace the script creates (it re-executes itself under
# `unshare -n`, loopback up), so the bridges, veths and nft/iptables rules all engines make
# stay there and nothing touches the host's network.  The image is a busybox-static rootfs
# with iperf3 (static-enough copy from the host, with its libraries) imported into each
# engine as `bbnet`.
#
# Podman (4.3, crun 1.8) on a hybrid-cgroup host: crun refuses a cgroup2 "unified" mount that
# lists controllers, so every podman command runs (nsenter) in one private mount namespace,
# made here and bound to $T/ns/mnt, in which /sys/fs/cgroup/unified is unmounted (the host
# keeps it; berth and docker run unchanged).  Podman's overlay mounts stay in that namespace;
# at exit its containers are removed, `podman system reset` runs there, the namespace is
# unbound, and anything still mounted under $T is unmounted before $T is removed.  podman
# gets a containers.conf whose default_ulimits are the current hard limits (podman 4.3 as
# root asks for 1048576, which cannot be set without CAP_SYS_RESOURCE).
#
# Usage: bash bench/net.sh   (as root; installs hyperfine iperf3 with apt-get if missing)
# Env:   BERTH=/path/to/berth (default: $CARGO_TARGET_DIR/release/berth, built if absent)
#        RUNS=30 WARMUP=3 ENGINES="berth docker podman" IPERF_SECONDS=5 IPERF_ROUNDS=3
#        SETTLE_WAIT=60 SETTLE_CPU=10: before each engine's throughput runs, wait (at most
#          SETTLE_WAIT s) until the CPUs are under SETTLE_CPU % busy (section A's teardown)
# Output: markdown on stdout, hyperfine JSON under bench/results/net-<stamp>/; paste the
#         table into bench/RESULTS.md ("## Network").  The machine is shared: figures are
#         noisy; compare rows of one run only.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RUNS="${RUNS:-30}"
SETTLE_WAIT="${SETTLE_WAIT:-60}"
SETTLE_CPU="${SETTLE_CPU:-10}"
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"   # cpu_busy, settle_cpu, podman_conf
WARMUP="${WARMUP:-3}"
ENGINES="${ENGINES:-berth docker podman}"
IPERF_SECONDS="${IPERF_SECONDS:-5}"
IPERF_ROUNDS="${IPERF_ROUNDS:-3}"

if [ -z "${BERTH_NET_BENCH_INNER:-}" ]; then
    for p in hyperfine iperf3; do
        command -v "$p" >/dev/null || apt-get install -y -q "$p" >/dev/null
    done
    if [ -z "${BERTH:-}" ]; then
        target="${CARGO_TARGET_DIR:-$REPO/target}"
        BERTH="$target/release/berth"
        [ -x "$BERTH" ] || (cd "$REPO" && cargo build --release -p berth)
    fi
    export BERTH BERTH_NET_BENCH_INNER=1
    exec unshare -n -- bash "$0" "$@"
fi

ip link set lo up
# the "host's own address" in this namespace, as a machine's LAN address would be (on lo:
# this kernel may lack the dummy driver)
HOST_ADDR=198.18.0.1
ip addr add "$HOST_ADDR/32" dev lo
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RES="$BENCH_DIR/results/net-$STAMP"
mkdir -p "$RES"
T="$(mktemp -d /tmp/berth-netbench.XXXXXX)"
PIDS=()
PODMAN_UP=""
PRUN=""
NSD=""
cleanup() {
    set +e
    if [ -n "$PODMAN_UP" ]; then
        podman rm -a -f -t 0 >/dev/null 2>&1
        podman system reset -f >/dev/null 2>&1
    fi
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -n "$NSD" ]; then umount "$NSD/mnt" 2>/dev/null; umount "$NSD" 2>/dev/null; fi
    # whatever an engine left mounted under $T would make rm fail (and stay behind)
    grep -o " $T/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$T"
    [ -n "$PRUN" ] && rm -rf "$PRUN"
}
trap cleanup EXIT

echo "# net.sh  date=$(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"

# --- image: busybox-static + iperf3 with its libraries ---------------------------------
ROOT="$T/rootfs"
mkdir -p "$ROOT"/{bin,etc,tmp,proc,sys,dev}
cp /bin/busybox "$ROOT/bin/"
for a in sh true sleep cat; do ln -sf busybox "$ROOT/bin/$a"; done
IPERF="$(command -v iperf3)"
cp "$IPERF" "$ROOT/bin/iperf3"
for lib in $(ldd "$IPERF" | grep -o '/[^ ]*'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
tar -C "$ROOT" -cf "$T/rootfs.tar" .

# --- engines ---------------------------------------------------------------------------
berth() { "$BERTH" --root "$T/berth" "$@"; }
docker() { /usr/local/bin/docker -H "unix://$T/docker.sock" "$@"; }
NOHY=()
PODMAN_BIN="$(command -v podman || echo podman)"
podman() { "${NOHY[@]}" "$PODMAN_BIN" --root "$T/podman" --runroot "$PRUN" "$@"; }

has() { case " $ENGINES " in *" $1 "*) return 0 ;; esac; return 1; }

start_berthd() { # [DAEMON FLAGS...]
    # not through the berth() function: `&` would fork a subshell and $! would be its pid,
    # so the cleanup's kill would leave the daemon running
    "$BERTH" --root "$T/berth" daemon "$@" >>"$T/berth.log" 2>&1 &
    BERTHD=$!
    PIDS+=("$BERTHD")
    for _ in $(seq 100); do "$BERTH" --root "$T/berth" --no-autostart ps -q >/dev/null 2>&1 && break; sleep 0.1; done
}
if has berth; then
    start_berthd
    berth import "$T/rootfs.tar" bbnet >/dev/null 2>&1 ||
        { echo "# berth has no image import yet: berth rows use --rootfs" >&2; BERTH_ROOTFS=1; }
fi
if has docker; then
    dockerd --data-root "$T/docker" --exec-root "$T/docker-exec" -H "unix://$T/docker.sock" \
        --pidfile "$T/docker.pid" >"$T/dockerd.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
    docker import "$T/rootfs.tar" bbnet >/dev/null
fi
if has podman; then
    # crun 1.8 refuses a hybrid host whose cgroup2 mount lists controllers: hide that mount
    # in one private mount namespace that every podman command enters
    if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] &&
        [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
        [ -n "$(tr -d ' \n' </sys/fs/cgroup/unified/cgroup.controllers)" ]; then
        NSD="$T/ns"
        mkdir -p "$NSD"
        mount --bind "$NSD" "$NSD"
        mount --make-private "$NSD"
        touch "$NSD/mnt"
        unshare --mount="$NSD/mnt" --propagation slave true
        nsenter --mount="$NSD/mnt" umount /sys/fs/cgroup/unified
        NOHY=(nsenter --mount="$NSD/mnt")
    fi
    podman_conf "$T/containers.conf"
    PRUN="$(mktemp -d /run/berth-netbench-pm.XXXXXX)" # podman wants a short runroot
    PODMAN_UP=1
    podman import -q "$T/rootfs.tar" bbnet >/dev/null
fi

run_cmd() { # ENGINE NETWORK -> the command line hyperfine runs
    local e=$1 net=$2
    case $e in
    berth)
        if [ -n "${BERTH_ROOTFS:-}" ]; then
            echo "$BERTH --root $T/berth run --rm --network $net --rootfs $ROOT true"
        else
            echo "$BERTH --root $T/berth run --rm --network $net bbnet true"
        fi ;;
    docker) echo "/usr/local/bin/docker -H unix://$T/docker.sock run --rm --network $net bbnet true" ;;
    podman) echo "${NOHY[*]} $PODMAN_BIN --root $T/podman --runroot $PRUN run --rm --network $net bbnet true" ;;
    esac
}

echo
echo "## A. run --rm IMG true (median ms; hyperfine -N, $RUNS runs, $WARMUP warm-up)"
echo
echo "| engine | default bridge | --network none | bridge cost |"
echo "|---|---|---|---|"
for e in $ENGINES; do
    bridge_net=bridge
    [ "$e" = podman ] && bridge_net=podman
    hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$RES/start-$e.json" \
        -n bridge "$(run_cmd "$e" "$bridge_net")" -n none "$(run_cmd "$e" none)" \
        >/dev/null 2>>"$RES/hyperfine.log"
    read -r b n < <(jq -r '[.results[] | .median * 1000] | map(floor) | @tsv' "$RES/start-$e.json")
    echo "| $e | $b | $n | $((b - n)) |"
done

echo
echo "## B. TCP throughput host -> container (Gbit/s; median of $IPERF_ROUNDS rounds of iperf3 ${IPERF_SECONDS}s, the three paths interleaved in each round)"
echo
echo "| engine | 127.0.0.1:published | $HOST_ADDR:published | direct to the container's address | 127.0.0.1 / direct | $HOST_ADDR / direct |"
echo "|---|---|---|---|---|---|"
gbits() { # a failed iperf3 run (docker-proxy now and then refuses a quick reconnect) is retried
    local out
    for _ in 1 2 3; do
        out=$(iperf3 -J -t "$IPERF_SECONDS" -c "$1" -p "$2" 2>/dev/null |
            jq -e '.end.sum_received.bits_per_second / 1e9 * 100 | floor / 100' 2>/dev/null) &&
            { echo "$out"; return 0; }
        sleep 1
    done
    echo "iperf3 to $1:$2 failed 3 times" >&2
    return 1
}
pct() { jq -n "$1 / $2 * 100 | floor"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
# throughput on 2 CPUs is CPU-bound: each engine's runs start on a quiet machine, so work
# left over (section A's ~60 containers per engine, whose network namespaces the kernel
# tears down after they exit; other people's jobs) does not bias whichever engine comes
# first (berth got 78 % through the host's address three times in a row at 21:54-22:03
# UTC, and 95-97 % in a fresh namespace by hand; the wait is written to iperf-rounds.txt)
settle() {
    local busy
    if busy=$(settle_cpu "$SETTLE_WAIT" "$SETTLE_CPU"); then
        echo "$1: settled ($busy % busy)" >>"$RES/iperf-rounds.txt"
    else
        echo "$1: still $busy % busy after $SETTLE_WAIT s" >>"$RES/iperf-rounds.txt"
    fi
}
# one engine's rounds: iperf3 through 127.0.0.1, the host's address and directly, interleaved;
# berth's rounds also interleave its two ways of carrying host-made connections (a daemon
# restart between them: the container and its published port stay)
berth_mode() { # bpf|nat: restart berth's daemon with that --local-ports unless it runs so
    [ "$1" = "${BERTH_MODE:-bpf}" ] && return 0
    kill "$BERTHD" && wait "$BERTHD" 2>/dev/null || true
    start_berthd --local-ports "$1"
    BERTH_MODE=$1
    sleep 1
}
row() { # LABEL -- prints the table row of arrays L H D
    echo "$1 127.0.0.1: ${L[*]}; $HOST_ADDR: ${H[*]}; direct: ${D[*]}" >>"$RES/iperf-rounds.txt"
    loopback=$(median "${L[@]}") host=$(median "${H[@]}") direct=$(median "${D[@]}")
    echo "| $1 | $loopback | $host | $direct | $(pct "$loopback" "$direct") % | $(pct "$host" "$direct") % |"
}
for e in berth docker podman; do
    has "$e" || continue
    settle "$e"
    case $e in
    berth)
        if [ -n "${BERTH_ROOTFS:-}" ]; then
            id=$(berth run -d -p 15201:5201 --rootfs "$ROOT" iperf3 -s)
        else
            id=$(berth run -d -p 15201:5201 bbnet iperf3 -s)
        fi
        ip=$(berth inspect -f '{{.NetworkSettings.IPAddress}}' "$id") ;;
    docker)
        id=$(docker run -d -p 15201:5201 bbnet iperf3 -s)
        ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$id") ;;
    podman)
        id=$(podman run -d -p 15201:5201 bbnet iperf3 -s)
        ip=$(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$id") ;;
    esac
    sleep 1
    modes=(default)
    [ "$e" = berth ] && modes=(bpf nat)
    declare -A ML=() MH=() MD=()
    for _ in $(seq "$IPERF_ROUNDS"); do
        for m in "${modes[@]}"; do
            [ "$e" = berth ] && berth_mode "$m"
            ML[$m]+=" $(gbits 127.0.0.1 15201)"
            MH[$m]+=" $(gbits "$HOST_ADDR" 15201)"
            MD[$m]+=" $(gbits "$ip" 5201)"
        done
    done
    for m in "${modes[@]}"; do
        read -ra L <<<"${ML[$m]}"; read -ra H <<<"${MH[$m]}"; read -ra D <<<"${MD[$m]}"
        case $m in default) row "$e" ;; bpf) row "berth" ;; nat) row "berth --local-ports nat" ;; esac
    done
    unset ML MH MD
    $e rm -f "$id" >/dev/null
done
echo
echo "raw: $RES"
