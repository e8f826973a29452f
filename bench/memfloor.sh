#!/usr/bin/env bash
# bench/memfloor.sh -- the kernel's and the workload's share of an idle container, with no
# engine at all: the floor under the "host memory per idle container" figure of bench/run.sh.
#
# N times (default 50): busybox `sleep 1000` (Debian's busybox-static) as the init of new pid,
# net, mount (with its own /proc), uts, ipc and cgroup namespaces, in a cgroup of its own in
# every mounted v1 hierarchy (or one v2 cgroup); the `unshare` parents are killed, so no
# supervisor process remains. Read like bench/run.sh reads the engines: MemAvailable with the
# free pages on the per-CPU lists added back (see run.sh), the raw MemAvailable, the sum of
# AnonPages + Slab + KernelStack + PageTables + Shmem + Percpu, and SUnreclaim, PageTables,
# KernelStack, after sync + drop_caches, before and with the N "containers", divided by N.
# Everything it made is removed at the end.
#
# Usage: bash bench/memfloor.sh   (as root)      Env: N=50 REPS=2
# Network: none (the namespaces have only their own loopback).
set -euo pipefail

N="${N:-50}"
REPS="${REPS:-2}"
BB=/bin/busybox
[ "$(id -u)" = 0 ] || { echo "memfloor.sh: run as root" >&2; exit 1; }
if ! [ -x "$BB" ] || ! file -L "$BB" 2>/dev/null | grep -q 'statically linked'; then
    apt-get install -y busybox-static file >/dev/null
fi

CG=/sys/fs/cgroup
if [ -f "$CG/cgroup.controllers" ]; then HIER=(""); else
    HIER=(); for h in cpu cpuacct cpuset blkio memory devices freezer pids; do
        [ -d "$CG/$h" ] && HIER+=("$h"); done
fi
TAG="berth-memfloor-$$"
KIDS=()
cleanup() {
    if [ ${#KIDS[@]} -gt 0 ]; then kill -9 "${KIDS[@]}" 2>/dev/null || true; fi
    sleep 0.5
    for h in "${HIER[@]}"; do for d in "$CG/$h"/"$TAG"-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done; done
    return 0
}
trap cleanup EXIT

mi() { awk -v k="$1:" '$1==k{print $2}' /proc/meminfo; }
PAGE_KB=$(( $(getconf PAGESIZE) / 1024 ))
pcp_kb() { awk -v p="$PAGE_KB" '$1=="count:"{s+=$2} END{print s*p}' /proc/zoneinfo; }
parts_kb() { awk '/^(AnonPages|Slab|KernelStack|PageTables|Shmem|Percpu):/{s+=$2} END{print s}' /proc/meminfo; }
settle() { sync; echo 3 >/proc/sys/vm/drop_caches; sleep 3; echo 3 >/proc/sys/vm/drop_caches; sleep 1; }

one() { # I: one "container"
    local i="$1" h d up c dirs=()
    for h in "${HIER[@]}"; do
        d="$CG/$h/$TAG-$i"; mkdir -p "$d"; dirs+=("$d")
        if [ "$h" = cpuset ]; then cat "$CG/cpuset/cpuset.cpus" >"$d/cpuset.cpus"; cat "$CG/cpuset/cpuset.mems" >"$d/cpuset.mems"; fi
    done
    # a shell moves itself into the cgroups, then becomes unshare, whose child is the init
    sh -c 'for d in "$@"; do echo $$ >"$d/cgroup.procs"; done; exec unshare -f -p -n -m -u -i -C --mount-proc '"$BB"' sleep 1000' \
        sh "${dirs[@]}" &
    up=$!
    c=""
    for _ in $(seq 200); do c="$(pgrep -P "$up" || true)"; [ -n "$c" ] && break; sleep 0.01; done
    [ -n "$c" ] || { echo "memfloor.sh: no container process under unshare $up" >&2; exit 1; }
    KIDS+=("$c")
    kill -9 "$up"; wait "$up" 2>/dev/null || true
}

echo "# memfloor.sh  date=$(date -u +%FT%TZ) kernel=$(uname -r) N=$N REPS=$REPS"
for r in $(seq "$REPS"); do
    settle
    a0=$(mi MemAvailable); q0=$(pcp_kb); c0=$(parts_kb); s0=$(mi SUnreclaim); t0=$(mi PageTables); k0=$(mi KernelStack)
    KIDS=()
    for i in $(seq "$N"); do one "$i"; done
    settle
    a1=$(mi MemAvailable); q1=$(pcp_kb); c1=$(parts_kb); s1=$(mi SUnreclaim); t1=$(mi PageTables); k1=$(mi KernelStack)
    awk -v n="$N" -v r="$r" -v a=$((a0 + q0 - a1 - q1)) -v raw=$((a0 - a1)) -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v t=$((t1 - t0)) -v k=$((k1 - k0)) 'BEGIN{
        printf "rep %d, per container: MemAvailable %.2f MB (raw %.2f MB)  parts %.2f MB  SUnreclaim %.2f MB  PageTables %.0f kB  KernelStack %.0f kB\n",
            r, a/n/1024, raw/n/1024, c/n/1024, s/n/1024, t/n, k/n }'
    cleanup
    KIDS=()
done
