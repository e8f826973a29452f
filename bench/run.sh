#!/usr/bin/env bash
# bench/run.sh -- container start / stop / churn / idle-memory: berth vs docker vs podman,
# with runc and crun on a plain OCI bundle as the floor.
#
# What it does
#   1. Installs what is missing with apt-get (hyperfine runc crun docker.io podman skopeo
#      docker-registry jq curl iproute2 procps util-linux iptables).
#   2. Builds berth and berth-fixture (cargo build --release -p berth -p berth-testkit) unless
#      BERTH / FIXTURE are given, writes the busybox fixture OCI layout
#      (`berth-fixture oci-layout DIR`, ref `latest`, 3 small layers, Debian's busybox-static),
#      starts Debian's docker-registry on 127.0.0.1:<free port> and pushes it there with skopeo.
#   3. Starts a private berth daemon (--root in a temp dir), a private dockerd (own data-root,
#      exec-root and socket, on a private bridge rbbench0 that the script creates, no iptables,
#      no ip-forward changes) and uses podman with a private --root/--runroot and a generated
#      containers.conf.  All three pull the *same* image from the local registry.  The runc/crun
#      bundle gets the same image's flattened root filesystem (`docker export`), args ["true"].
#   4. Measures with hyperfine -N (no shell), medians:
#        A  `run --rm IMG true`, default network and --network none, for berth, docker and
#           podman; `runc run` and `crun run` on the bundle.
#        B  100 sequential `run --rm IMG true` (a `sh -c` loop, default network).
#        C  `run -d --name X IMG sleep 1000` (removed again in --prepare) and `stop -t 0` of a
#           freshly started container (started in --prepare).
#      Every case is run in $ROUNDS rounds, one hyperfine call per case and round, the order of
#      the cases rotated every round (so a burst of load on this shared 2-core VM hits all
#      engines alike); the times of all rounds are pooled and the median is taken.
#        D  $MEM_N idle `sleep 1000` containers per engine ($MEM_REPS repetitions): host memory
#           before / with them / after removing them (MemAvailable and free's "used", page
#           cache dropped before every reading, the free pages on the per-CPU lists counted
#           as free; raw MemAvailable beside it; the sum of the kernel's anon, slab, stack,
#           page-table, shmem and percpu counters), unreclaimable slab, PSS of the per-container
#           supervisor processes (berth shim, containerd-shim-runc-v2, conmon) and of the
#           container processes, their memory cgroups, and the daemons' RSS growth.
#        E  the start cases again with the kernel's favordynmods cgroup option on (berth's
#           `daemon --cgroup-favordynmods`; global, so every engine gets it; turned off again
#           afterwards if the host did not have it; FAVORDYNMODS=0 skips this section).
#   5. Writes raw JSON to bench/results/run-<stamp>/ and replaces the "## Run" section of
#      bench/RESULTS.md (other sections are kept).
#
# Host quirks handled (cgroup v1 hybrid VM without CAP_SYS_RESOURCE):
#   - podman 4.3 as root puts RLIMIT_NOFILE/NPROC=1048576 into every spec; without
#     CAP_SYS_RESOURCE the runtime cannot raise them.  The generated containers.conf sets
#     default_ulimits to the current hard limits (nproc capped at pid_max).
#   - crun 1.8 (podman's default runtime here) refuses a hybrid host whose cgroup2 mount has
#     controllers.  podman and crun therefore run in a private mount namespace in which
#     /sys/fs/cgroup/unified is unmounted (`unshare -m --propagation slave`); the host is not
#     changed.  berth, docker and runc run in the host's namespace.
#   - podman's default network (netavark) adds NETAVARK chains to iptables; if the host had
#     none before, they are removed again at the end.
#
# Usage: bash bench/run.sh        (as root)
# Env:   BERTH=/path/to/berth  FIXTURE=/path/to/berth-fixture   (default: cargo build; the
#          target dir is $CARGO_TARGET_DIR or the workspace's)
#        RUNS=30 (per start/stop case, >= 30)  WARMUP=3  ROUNDS=3
#        CHURN_N=100  CHURN_RUNS=5 (berth)  CHURN_RUNS_SLOW=3 (docker, podman)
#        MEM_N=50  MEM_REPS=2  DROP_CACHES=1  FAVORDYNMODS=1
#        QUIET_WAIT=60 / QUIET_WAIT_ROUND=30: (about) seconds to wait at most for other people's
#          compilers to finish and the CPUs to be < QUIET_CPU=25 % busy before a memory
#          reading / a round of timings
#        SETTLE_WAIT=15 SETTLE_CPU=10: before each hyperfine call (every case of every round,
#          all engines alike), wait at most SETTLE_WAIT s for the CPUs to be under SETTLE_CPU %
#          busy over one second (the case before may still be cleaning up in the background)
#        NICE=-10: nice value of the script and everything it starts (all engines alike)
#        ENGINES="berth docker podman runc crun"  DOCKER_BRIDGE=1 (0: dockerd --bridge=none)
#        SECTIONS="A B C D E" (the sections to run; e.g. SECTIONS=D measures only idle memory;
#          the report shows n/a for the others)
#        PORT (default: free)  KEEP_TMP=1  DOCKER (CLI, default /usr/bin/docker)
# Network: the Debian mirror (apt-get) and 127.0.0.1 only.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RES="$BENCH_DIR/results"
RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-3}"
ROUNDS="${ROUNDS:-3}"
CHURN_N="${CHURN_N:-100}"
CHURN_RUNS="${CHURN_RUNS:-5}"
CHURN_RUNS_SLOW="${CHURN_RUNS_SLOW:-3}"
MEM_N="${MEM_N:-50}"
MEM_REPS="${MEM_REPS:-2}"
DROP_CACHES="${DROP_CACHES:-1}"
QUIET_WAIT="${QUIET_WAIT:-60}"
QUIET_WAIT_ROUND="${QUIET_WAIT_ROUND:-30}"
QUIET_CPU="${QUIET_CPU:-25}"
SETTLE_WAIT="${SETTLE_WAIT:-15}"
SETTLE_CPU="${SETTLE_CPU:-10}"
UNSETTLED=()
NICE="${NICE:--10}"
ENGINES="${ENGINES:-berth docker podman runc crun}"
DOCKER_BRIDGE="${DOCKER_BRIDGE:-1}"
SECTIONS="${SECTIONS:-A B C D E}"
section() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
LBL="org.berth.bench"

log() { echo "# $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (dockerd, podman, runc and drop_caches need it)"
[ "$RUNS" -ge 30 ] || die "RUNS must be >= 30"
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be >= 1"
case " $ENGINES " in *" berth "*) ;; *) die "ENGINES must include berth" ;; esac

# ------------------------------------------------------------------ cleanup
PIDS=()            # every long-running process this script started
CLEANUP=()         # extra cleanup commands, run in reverse order
T=""
HF_PID=""
cleanup() {
    local rc=$? i p
    set +e
    [ -n "$HF_PID" ] && kill -TERM "$HF_PID" 2>/dev/null && wait "$HF_PID" 2>/dev/null
    for ((i=${#CLEANUP[@]}-1; i>=0; i--)); do eval "${CLEANUP[$i]}"; done
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do
        p="${PIDS[$i]}"
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
            for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ -n "${KEEP_TMP:-}" ]; then
            log "kept $T"
        else
            # overlay / bind mounts left behind by an engine would make rm fail; unmount first
            grep -o " $T/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
            rm -rf "$T" 2>/dev/null || { chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"; }
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ packages
declare -A PKG=([hyperfine]=hyperfine [runc]=runc [crun]=crun [dockerd]=docker.io [podman]=podman
    [skopeo]=skopeo [docker-registry]=docker-registry [jq]=jq [curl]=curl [ss]=iproute2
    [pgrep]=procps [unshare]=util-linux [iptables-save]=iptables)
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

# ------------------------------------------------------------------ berth binaries
BERTH_BUILT=""
if [ -z "${BERTH:-}" ] || { [ -z "${FIXTURE:-}" ] && [ ! -x "$(dirname "${BERTH:-/nonexistent}")/berth-fixture" ]; }; then
    log "building berth and berth-fixture (cargo build --release -p berth -p berth-testkit)"
    (cd "$REPO" && cargo build --release -q -p berth -p berth-testkit)
    TD="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
    if [ -z "${BERTH:-}" ]; then BERTH="$TD/release/berth"; BERTH_BUILT=1; fi
    FIXTURE="${FIXTURE:-$TD/release/berth-fixture}"
fi
FIXTURE="${FIXTURE:-$(dirname "$BERTH")/berth-fixture}"
[ -x "$BERTH" ] || die "no berth binary at $BERTH"
[ -x "$FIXTURE" ] || die "no berth-fixture binary at $FIXTURE"
BERTH="$(readlink -f "$BERTH")"

mkdir -p "$RES"
# Short on purpose: berth's shim binds DIR/containers/<64-hex id>/shim.sock, which must fit in
# sun_path (107 bytes) -- i.e. a --root of at most 21 characters.  Builds before 1694462 failed
# with a longer root; newer ones move the socket to /run/berth/shim then, which the short root
# avoids too, so that every berth is measured on its usual path.
T="$(mktemp -d /var/tmp/rb.XXXXXX)"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RAW="$RES/run-$STAMP"
mkdir -p "$RAW"
log "temp dir $T  raw $RAW  date=$(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"

# This VM is shared with other people's builds.  The script and everything it starts (daemons,
# hyperfine, the engines) run at nice $NICE, the same for all engines, so that a build in the
# background disturbs the timings less; and a sampler records when other compilers ran.
renice -n "$NICE" -p $$ >/dev/null
busy_count() { pgrep -c -x 'rustc|clippy-driver|rustdoc|cc1|cc1plus|ld|ld.lld' 2>/dev/null || true; }
QUIET_NOTE=()
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"   # cpu_busy, settle_cpu, podman_conf
wait_quiet() { # LABEL SECONDS: wait (bounded) until no compiler runs and the CPUs are mostly idle
    local end=$((SECONDS + $2))   # (this script's own processes are idle whenever it is called)
    while :; do
        if [ "$(busy_count)" = 0 ]; then [ "$(cpu_busy)" -lt "$QUIET_CPU" ] && return 0; else sleep 1; fi
        [ "$SECONDS" -lt "$end" ] || break
    done
    QUIET_NOTE+=("$1"); log "not quiet at '$1' after $2 s (other compilers running or CPUs >= $QUIET_CPU % busy)"
}
( while :; do echo "$(date +%s) $(busy_count) $(cut -d' ' -f1 /proc/loadavg)"; sleep 1; done ) >"$RAW/busy.log" 2>/dev/null &
PIDS+=($!)

# ------------------------------------------------------------------ helpers
q() { printf '%q ' "$@"; }
kill_wait() { # PID [seconds]
    local p="$1" n=$(( ${2:-20} * 10 ))
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 1 "$n"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "pid $p did not exit on SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
    wait "$p" 2>/dev/null || true
}
declare -A AVAIL REASON
for e in berth docker podman runc crun; do AVAIL[$e]=0; REASON[$e]="not selected (ENGINES)"; done
for e in $ENGINES; do AVAIL[$e]=1; REASON[$e]=""; done
have() { [ "${AVAIL[$1]:-0}" = 1 ]; }
skip_engine() { AVAIL[$1]=0; REASON[$1]="$2"; log "$1 unavailable: $2"; }

# crun 1.8 refuses a hybrid host whose cgroup2 mount lists controllers: hide that mount in a
# private mount namespace (the host keeps it).  NOHY is a command prefix, empty where not needed.
bad_hybrid() {
    [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || return 1
    [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] || return 1
    [ -n "$(tr -d ' \n' </sys/fs/cgroup/unified/cgroup.controllers)" ]
}
# One persistent namespace (bound to $T/ns/mnt) for all podman and crun commands, so that what
# podman mounts there (overlays, /run/netns entries) is seen by its later commands.
NOHY=()
if bad_hybrid; then
    NSD="$T/ns"; mkdir -p "$NSD"
    mount --bind "$NSD" "$NSD"; mount --make-private "$NSD"
    CLEANUP+=("umount '$NSD/mnt' 2>/dev/null; umount '$NSD' 2>/dev/null")
    touch "$NSD/mnt"
    unshare --mount="$NSD/mnt" --propagation slave true
    nsenter --mount="$NSD/mnt" umount /sys/fs/cgroup/unified
    NOHY=(nsenter --mount="$NSD/mnt")
fi
cgroup_mode() {
    case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
        cgroup2fs) echo "v2 (unified)" ;;
        tmpfs) if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo "v1 (hybrid)"; else echo "v1 (legacy)"; fi ;;
        *) echo unknown ;;
    esac
}

# ------------------------------------------------------------------ image + registry
OCI="$T/oci"
"$FIXTURE" oci-layout "$OCI" >/dev/null
if [ -z "${PORT:-}" ]; then
    for p in $(shuf -i 20000-60999 -n 100); do
        if [ -z "$(ss -Htln "sport = :$p")" ]; then PORT=$p; break; fi
    done
fi
[ -n "${PORT:-}" ] || die "no free port found"
[ -z "$(ss -Htln "sport = :$PORT")" ] || die "port $PORT in use"
REG="127.0.0.1:$PORT"
IMG="$REG/bench/bb:latest"
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: $REG
YML
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$REG/v2/" >/dev/null || { cat "$T/registry.log" >&2; die "registry did not start"; }
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$OCI:latest" "docker://$IMG"
MAN="$(skopeo inspect --raw --tls-verify=false "docker://$IMG")"
IMG_LAYERS="$(echo "$MAN" | jq '.layers|length')"
IMG_SIZE="$(echo "$MAN" | jq '[.layers[].size]|add')"
log "registry on $REG (pid ${PIDS[-1]}); image $IMG: $IMG_LAYERS layers, $IMG_SIZE B compressed"

# ------------------------------------------------------------------ engines
BERTH_VERSION="$("$BERTH" --version | awk '{print $NF}')"
if [ -n "$BERTH_BUILT" ]; then
    BERTH_VERSION="$BERTH_VERSION (built from $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ' with uncommitted changes in crates/'))"
else
    BERTH_VERSION="$BERTH_VERSION (prebuilt $BERTH, $(date -u -r "$BERTH" '+%Y-%m-%d %H:%M UTC'))"
fi

# berth: private daemon, state in $T/berth
BROOT="$T/b"; mkdir -p "$BROOT"
[ $(( ${#BROOT} + 86 )) -le 107 ] || die "berth root $BROOT too long for the shim's socket path"
B=("$BERTH" --root "$BROOT" --no-autostart)
# --bridge none: berth's bridge would turn on ip_forward and add its nft table in the host's
# namespace (docker here runs with --iptables=false --ip-forward=false); bench/net.sh measures
# the bridge inside a private network namespace
"$BERTH" --root "$BROOT" daemon --bridge none >"$T/berth-daemon.log" 2>&1 &
BERTH_DPID=$!; PIDS+=("$BERTH_DPID")
for _ in $(seq 1 200); do "${B[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done
"${B[@]}" version >/dev/null 2>&1 || { cat "$T/berth-daemon.log" >&2; die "berth daemon did not start"; }
# anything the script leaves running in berth is removed before the daemon stops
CLEANUP+=("$(q "${B[@]}") ps -aq | xargs -r $(q "${B[@]}") rm -f >/dev/null 2>&1")
"${B[@]}" pull -q "$IMG" >/dev/null || die "berth pull failed"
log "berth $BERTH_VERSION: daemon pid $BERTH_DPID, root $BROOT"

# docker: private dockerd on a private bridge (no iptables, ip_forward untouched)
DOCKER_VERSION="" DOCKER_NET=""
if have docker; then
    DR="$T/docker"; DX="$(mktemp -d /run/berth-bench-dk.XXXXXX)"
    CLEANUP+=("rm -rf '$DX'")
    netopt=(--bridge=none)
    DOCKER_NET="no bridge (dockerd --bridge=none): the default network has only loopback"
    if [ "$DOCKER_BRIDGE" = 1 ]; then
        BR_IF=rbbench0
        if ip link show "$BR_IF" >/dev/null 2>&1; then die "interface $BR_IF exists already (left by an earlier run?)"; fi
        for n in $(seq 200 254); do
            if [ -z "$(ip -4 route show to match "172.31.$n.1" | grep -v '^default')" ]; then
                BR_NET="172.31.$n"; break
            fi
        done
        [ -n "${BR_NET:-}" ] || die "no free 172.31.x.0/24 for the docker bridge"
        ip link add "$BR_IF" type bridge
        CLEANUP+=("ip link del '$BR_IF' 2>/dev/null")
        ip addr add "$BR_NET.1/24" dev "$BR_IF"
        ip link set "$BR_IF" up
        netopt=(--bridge="$BR_IF")
        DOCKER_NET="private bridge $BR_IF ($BR_NET.0/24, created by the script), --iptables=false --ip-forward=false --ip-masq=false"
    fi
    export DOCKER_HOST="unix://$DX/docker.sock"
    dockerd --data-root "$DR/data" --exec-root "$DX/exec" --pidfile "$DX/dockerd.pid" \
        -H "$DOCKER_HOST" "${netopt[@]}" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        >"$T/dockerd.log" 2>&1 &
    DOCKERD_PID=$!; PIDS+=("$DOCKERD_PID")
    for _ in $(seq 1 600); do
        "$DOCKER" info >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if "$DOCKER" info >/dev/null 2>&1; then
        DOCKER_VERSION="$("$DOCKER" version -f '{{.Server.Version}}') ($("$DOCKER" info -f '{{.Driver}}'), runtime $("$DOCKER" info -f '{{.DefaultRuntime}}'))"
        CLEANUP+=("$(q "$DOCKER") ps -aq | xargs -r $(q "$DOCKER") rm -f >/dev/null 2>&1")
        log "dockerd $DOCKER_VERSION: pid $DOCKERD_PID, data-root $DR/data, exec-root $DX/exec"
        "$DOCKER" pull -q "$IMG" >/dev/null || skip_engine docker "docker pull failed"
    else
        skip_engine docker "dockerd did not start: $(tail -1 "$T/dockerd.log" | cut -c1-200)"
    fi
fi

# podman: private root/runroot, containers.conf with ulimits it can actually set
PODMAN_VERSION="" PODMAN_RT=""
podman_conf "$T/containers.conf"
PROOT="$T/podman"
PRUN="$(mktemp -d /run/berth-bench-pm.XXXXXX)"   # podman wants a short runroot; tmpfs as usual
P=(podman --root "$PROOT" --runroot "$PRUN")
PN=("${NOHY[@]}" "${P[@]}")
had_netavark=0
for t in filter nat; do iptables-save -t "$t" 2>/dev/null | grep -q NETAVARK && had_netavark=1; done
had_podman0=0; ip link show podman0 >/dev/null 2>&1 && had_podman0=1
netavark_cleanup() { # remove podman0 and the NETAVARK chains podman's network left, if the host had none
    local t r c
    [ "$had_podman0" = 0 ] && ip link del podman0 2>/dev/null
    [ "$had_netavark" = 0 ] || return 0
    for t in filter nat; do
        iptables-save -t "$t" 2>/dev/null | grep -E '^-A [A-Z_]+ .*-j NETAVARK' | sed 's/^-A /-D /' \
            | while read -r r; do eval "iptables -t $t $r" 2>/dev/null; done
        for c in $(iptables-save -t "$t" 2>/dev/null | grep -oE '^:NETAVARK[^ ]*' | tr -d :); do iptables -t "$t" -F "$c" 2>/dev/null; done
        for c in $(iptables-save -t "$t" 2>/dev/null | grep -oE '^:NETAVARK[^ ]*' | tr -d :); do iptables -t "$t" -X "$c" 2>/dev/null; done
    done
}
if have podman; then
    CLEANUP+=("rm -rf '$PRUN'" "netavark_cleanup" "$(q "${PN[@]}") system reset -f >/dev/null 2>&1")
    if out="$("${P[@]}" info --format '{{.Version.Version}} ({{.Store.GraphDriverName}}, runtime {{.Host.OCIRuntime.Name}}, network {{.Host.NetworkBackend}})' 2>&1)"; then
        PODMAN_VERSION="$out"
        PODMAN_RT="$("${P[@]}" info --format '{{.Host.OCIRuntime.Name}}')"
        log "podman $PODMAN_VERSION: root $PROOT, runroot $PRUN"
        "${P[@]}" pull -q --tls-verify=false "$IMG" >/dev/null || skip_engine podman "podman pull failed"
    else
        skip_engine podman "podman info failed: $(echo "$out" | tail -1 | cut -c1-200)"
    fi
fi

# runc / crun: OCI bundle with the same image's flattened rootfs
BUNDLE="$T/bundle"
if have runc || have crun; then
    mkdir -p "$BUNDLE/rootfs"
    if have docker; then
        cid="$("$DOCKER" create "$IMG" true)"
        "$DOCKER" export "$cid" | tar -x -C "$BUNDLE/rootfs"
        "$DOCKER" rm "$cid" >/dev/null
    elif have podman; then
        cid="$("${P[@]}" create "$IMG" true)"
        "${P[@]}" export "$cid" | tar -x -C "$BUNDLE/rootfs"
        "${P[@]}" rm "$cid" >/dev/null
    else
        skip_engine runc "needs docker or podman to export the rootfs"; skip_engine crun "needs docker or podman to export the rootfs"
    fi
    if [ -x "$BUNDLE/rootfs/bin/busybox" ]; then
        (cd "$BUNDLE" && runc spec)
        jq '.process.terminal=false | .process.args=["true"]' "$BUNDLE/config.json" >"$BUNDLE/config.json.new"
        mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
    fi
fi
RUNC_VERSION="$(runc --version 2>/dev/null | head -1 | awk '{print $3}')"
CRUN_VERSION="$(crun --version 2>/dev/null | head -1 | awk '{print $3}')"
mkdir -p "$T/runc-state" "$T/crun-state"
RUNC=(runc --root "$T/runc-state")
CRUN=(crun --root "$T/crun-state")

# smoke test: one run per engine, so that a broken engine is reported, not fatal
smoke() { # ENGINE -> runs `true` once
    case "$1" in
        berth)  "${B[@]}" run --rm "$IMG" true ;;
        docker) "$DOCKER" run --rm "$IMG" true ;;
        podman) "${PN[@]}" run --rm "$IMG" true ;;
        runc)   "${RUNC[@]}" run -b "$BUNDLE" rb-smoke ;;
        crun)   "${NOHY[@]}" "${CRUN[@]}" run -b "$BUNDLE" rb-smoke ;;
    esac
}
for e in berth docker podman runc crun; do
    have "$e" || continue
    if ! smoke "$e" >/dev/null 2>"$T/smoke-$e.err"; then
        [ "$e" = berth ] && { cat "$T/smoke-$e.err" >&2; die "berth run failed"; }
        skip_engine "$e" "run failed: $(grep -v '^$' "$T/smoke-$e.err" | tail -1 | cut -c1-200)"
    fi
done
log "engines: $(for e in berth docker podman runc crun; do have "$e" && printf '%s ' "$e"; done)"

# ------------------------------------------------------------------ measuring machinery
# hyperfine -N in the background, so that a TERM to this script stops it at once
hf() {
    "$@" &
    HF_PID=$!
    local rc=0; wait "$HF_PID" || rc=$?
    HF_PID=""
    return "$rc"
}

# A case: id, command line (hyperfine -N syntax), namespace (host | nohy), prepare command
# (or ""), runs in total, warm-up runs per round.
C_ID=() C_CMD=() C_NS=() C_PREP=() C_RUNS=() C_WARM=()
add_case() { C_ID+=("$1"); C_CMD+=("$2"); C_NS+=("$3"); C_PREP+=("$4"); C_RUNS+=("$5"); C_WARM+=("$6"); }
clear_cases() { C_ID=() C_CMD=() C_NS=() C_PREP=() C_RUNS=() C_WARM=(); }

# run_cases GROUP: ROUNDS rounds, every case once per round (ceil(runs/ROUNDS) runs), order
# rotated each round; then pools the runs per case into $RAW/GROUP.json (hyperfine-shaped).
run_cases() {
    local g="$1" n=${#C_ID[@]} r i k per args pre
    mkdir -p "$RAW/$g"
    local sec
    case "$g" in start) sec=A ;; churn) sec=B ;; detached) sec=C ;; *) sec=E ;; esac
    section "$sec" || { echo '{"results":[]}' >"$RAW/$g.json"; return 0; }
    for ((r=0; r<ROUNDS; r++)); do
        wait_quiet "$g round $((r+1))" "$QUIET_WAIT_ROUND"
        log "[$g] round $((r+1))/$ROUNDS  load=$(cut -d' ' -f1-3 /proc/loadavg)"
        for ((i=0; i<n; i++)); do
            k=$(((i + r) % n))
            per=$(( (C_RUNS[k] + ROUNDS - 1) / ROUNDS ))
            args=(hyperfine -N --style none --warmup "${C_WARM[$k]}" --runs "$per"
                  --export-json "$RAW/$g/${C_ID[$k]}-r$r.json" -n "${C_ID[$k]}")
            [ -n "${C_PREP[$k]}" ] && args+=(--prepare "${C_PREP[$k]}")
            args+=("${C_CMD[$k]}")
            pre=(); [ "${C_NS[$k]}" = nohy ] && pre=("${NOHY[@]}")
            # the engine before may still be cleaning up (docker's and podman's removals
            # finish in the background): every case starts on quiet CPUs
            if ! busy=$(settle_cpu "$SETTLE_WAIT" "$SETTLE_CPU"); then
                UNSETTLED+=("${C_ID[$k]} round $((r+1)) ($busy %)")
            fi
            if ! hf "${pre[@]}" "${args[@]}" >/dev/null 2>"$RAW/$g/${C_ID[$k]}-r$r.err"; then
                log "[$g] ${C_ID[$k]} failed: $(tail -3 "$RAW/$g/${C_ID[$k]}-r$r.err" | tr '\n' ' ' | cut -c1-300)"
                rm -f "$RAW/$g/${C_ID[$k]}-r$r.json"
                continue
            fi
            jq -r '.results[] | "#     \(.command): median \(.median*1000*10|round/10) ms (\(.times|length) runs)"' \
                "$RAW/$g/${C_ID[$k]}-r$r.json" >&2
        done
    done
    local files=("$RAW/$g"/*-r*.json)
    [ -e "${files[0]}" ] || { echo '{"results":[]}' >"$RAW/$g.json"; return 0; }
    jq -s '[.[].results[]] | group_by(.command) | map(
            (.[0].command) as $c | ([.[].times[]] | sort) as $t | ($t|length) as $n |
            ($t|add/$n) as $mean |
            {command: $c, times: $t, mean: $mean,
             median: (if $n%2==1 then $t[($n-1)/2] else ($t[$n/2-1]+$t[$n/2])/2 end),
             min: $t[0], max: $t[-1],
             stddev: (if $n>1 then ([$t[] | (.-$mean)*(.-$mean)] | add/($n-1) | sqrt) else null end)})
           | {results: .}' "${files[@]}" >"$RAW/$g.json"
}

QB="$(q "${B[@]}")"; QD="$(q "$DOCKER")"; QP="$(q "${P[@]}")"

# ------------------------------------------------------------------ A. run --rm true
LOAD_A="$(cut -d' ' -f1-3 /proc/loadavg)"
clear_cases
add_case berth       "$QB run --rm $IMG true"                         host "" "$RUNS" "$WARMUP"
add_case berth-none  "$QB run --rm --network none $IMG true"          host "" "$RUNS" "$WARMUP"
if have docker; then
    add_case docker      "$QD run --rm $IMG true"                     host "" "$RUNS" "$WARMUP"
    add_case docker-none "$QD run --rm --network none $IMG true"      host "" "$RUNS" "$WARMUP"
fi
if have podman; then
    add_case podman      "$QP run --rm $IMG true"                     nohy "" "$RUNS" "$WARMUP"
    add_case podman-none "$QP run --rm --network none $IMG true"      nohy "" "$RUNS" "$WARMUP"
fi
have runc && add_case runc "$(q "${RUNC[@]}")run -b $BUNDLE rb-runc" host "" "$RUNS" "$WARMUP"
have crun && add_case crun "$(q "${CRUN[@]}")run -b $BUNDLE rb-crun" nohy "" "$RUNS" "$WARMUP"
add_case baseline "sh -c true" host "" "$RUNS" "$WARMUP"
run_cases start

# ------------------------------------------------------------------ B. 100 x run --rm true
loop() { echo "sh -c 'i=0; while [ \$i -lt $CHURN_N ]; do $1 >/dev/null || exit 1; i=\$((i+1)); done'"; }
clear_cases
add_case berth  "$(loop "$QB run --rm $IMG true")" host "" "$CHURN_RUNS" 0
have docker && add_case docker "$(loop "$QD run --rm $IMG true")" host "" "$CHURN_RUNS_SLOW" 0
have podman && add_case podman "$(loop "$QP run --rm $IMG true")" nohy "" "$CHURN_RUNS_SLOW" 0
run_cases churn

# ------------------------------------------------------------------ C. run -d / stop -t 0
clear_cases
add_case berth-run-d  "$QB run -d --name rb-det $IMG sleep 1000" host \
    "sh -c '$QB rm -f rb-det >/dev/null 2>&1; true'" "$RUNS" "$WARMUP"
add_case berth-stop   "$QB stop -t 0 rb-stop" host \
    "sh -c '$QB rm -f rb-stop >/dev/null 2>&1; $QB run -d --name rb-stop $IMG sleep 1000 >/dev/null'" "$RUNS" "$WARMUP"
if have docker; then
    add_case docker-run-d "$QD run -d --name rb-det $IMG sleep 1000" host \
        "sh -c '$QD rm -f rb-det >/dev/null 2>&1; true'" "$RUNS" "$WARMUP"
    add_case docker-stop  "$QD stop -t 0 rb-stop" host \
        "sh -c '$QD rm -f rb-stop >/dev/null 2>&1; $QD run -d --name rb-stop $IMG sleep 1000 >/dev/null'" "$RUNS" "$WARMUP"
fi
if have podman; then
    add_case podman-run-d "$QP run -d --name rb-det $IMG sleep 1000" nohy \
        "sh -c '$QP rm -f -t 0 rb-det >/dev/null 2>&1; true'" "$RUNS" "$WARMUP"
    add_case podman-stop  "$QP stop -t 0 rb-stop" nohy \
        "sh -c '$QP rm -f -t 0 rb-stop >/dev/null 2>&1; $QP run -d --name rb-stop $IMG sleep 1000 >/dev/null'" "$RUNS" "$WARMUP"
fi
run_cases detached
"${B[@]}" rm -f rb-det rb-stop >/dev/null 2>&1 || true
have docker && { "$DOCKER" rm -f rb-det rb-stop >/dev/null 2>&1 || true; }
have podman && { "${PN[@]}" rm -f -t 0 rb-det rb-stop >/dev/null 2>&1 || true; }

# ------------------------------------------------------------------ D. idle memory
mi() { awk -v k="$1:" '$1==k{print $2}' /proc/meminfo; }          # kB
used_kb() { awk '/^MemTotal:/{t=$2} /^MemFree:/{f=$2} /^Buffers:/{b=$2} /^Cached:/{c=$2} /^SReclaimable:/{s=$2}
                 END{print t-f-b-c-s}' /proc/meminfo; }             # free(1)'s "used"
# Free pages parked on the per-CPU lists (pcp) count neither in MemFree nor in MemAvailable,
# and those lists swing by tens of MB here (up to ~40 MB per CPU on this VM's 24 GiB zone):
# per container that is +-0.3 MB of noise in a 50-container reading. Every reading adds them
# back (/proc/zoneinfo's per-CPU "count", in pages).
PAGE_KB=$(( $(getconf PAGESIZE) / 1024 ))
pcp_kb() { awk -v p="$PAGE_KB" '$1=="count:"{s+=$2} END{print s*p}' /proc/zoneinfo; }
# what the kernel counts as taken by processes and itself: anon + slab + kernel stacks + page
# tables + shmem + percpu
parts_kb() { awk '/^(AnonPages|Slab|KernelStack|PageTables|Shmem|Percpu):/{s+=$2} END{print s}' /proc/meminfo; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum_pss() { local s=0 p; for p in "$@"; do s=$((s + $(pss_kb "$p"))); done; echo "$s"; }
sum_rss() { local s=0 p; for p in "$@"; do s=$((s + $(rss_kb "$p"))); done; echo "$s"; }
cg_kb() { # memory cgroup (v1 or v2) usage of the cgroup of PID, kB
    local p="$1" path f
    path="$(awk -F: '$2=="memory"{print $3}' "/proc/$p/cgroup" 2>/dev/null)"
    if [ -n "$path" ]; then f="/sys/fs/cgroup/memory$path/memory.usage_in_bytes"
    else path="$(awk -F: '$1=="0"{print $3}' "/proc/$p/cgroup" 2>/dev/null)"; f="/sys/fs/cgroup$path/memory.current"; fi
    if [ -r "$f" ]; then echo $(( $(cat "$f") / 1024 )); else echo 0; fi
}
sum_cg() { local s=0 p; for p in "$@"; do s=$((s + $(cg_kb "$p"))); done; echo "$s"; }
settle() { # LABEL
    sync
    [ "$DROP_CACHES" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
    sleep 2
    wait_quiet "$1" "$QUIET_WAIT"
    [ "$DROP_CACHES" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
    sleep 1
}
supervisors() { # ENGINE -> pids of the per-container supervisor processes of this script's engines
    case "$1" in
        berth)  # shims are named berth-shim (executed, or forked by the daemon's zygote) and
                # work in their container's state directory
                for p in $(pgrep -x berth-shim); do
                    case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$BROOT"/containers/*) echo "$p" ;; esac
                done ;;
        docker) pgrep -f "containerd-shim-runc-v2 .*-address $DX/exec/" || true ;;
        podman) pgrep -f "conmon .*-b $PROOT/overlay-containers/" || true ;;
    esac
}
daemon_pids() {
    case "$1" in
        berth)  echo "$BERTH_DPID" ;;
        docker) echo "$DOCKERD_PID"; pgrep -P "$DOCKERD_PID" -x containerd || true ;;
        podman) ;;
    esac
}
start_n() { # ENGINE N
    local c
    case "$1" in
        berth)  c="$QB run -d --label $LBL=mem $IMG sleep 1000" ;;
        docker) c="$QD run -d --label $LBL=mem $IMG sleep 1000" ;;
        podman) c="$QP run -d --label $LBL=mem $IMG sleep 1000" ;;
    esac
    local pre=(); [ "$1" = podman ] && pre=("${NOHY[@]}")
    "${pre[@]}" sh -c "i=0; while [ \$i -lt $2 ]; do $c >/dev/null || exit 1; i=\$((i+1)); done"
}
rm_all() { # ENGINE
    case "$1" in
        berth)  "${B[@]}" ps -aq --filter "label=$LBL=mem" | xargs -r "${B[@]}" rm -f >/dev/null ;;
        docker) "$DOCKER" ps -aq --filter "label=$LBL=mem" | xargs -r "$DOCKER" rm -f >/dev/null ;;
        podman) "${PN[@]}" ps -aq --filter "label=$LBL=mem" | xargs -r "${PN[@]}" rm -f -t 0 >/dev/null ;;
    esac
}
count_running() {
    case "$1" in
        berth)  "${B[@]}" ps -q --filter "label=$LBL=mem" | wc -l ;;
        docker) "$DOCKER" ps -q --filter "label=$LBL=mem" | wc -l ;;
        podman) "${PN[@]}" ps -q --filter "label=$LBL=mem" | wc -l ;;
    esac
}
now() { date +%s.%N; }
MEMJ="$RAW/memory.jsonl"; : >"$MEMJ"
mem_run() { # ENGINE REP
    local e="$1" a0 a1 a2 u0 u1 u2 k0 k1 d0 d1 t0 t1 t2 t3 n sup=() ctr=() p q0 q1 q2 c0 c1
    mapfile -t dp < <(daemon_pids "$e")
    settle "$e before"
    a0=$(mi MemAvailable); q0=$(pcp_kb); u0=$(used_kb); k0=$(mi SUnreclaim); c0=$(parts_kb); d0=$(sum_rss "${dp[@]}")
    t0=$(now); start_n "$e" "$MEM_N"; t1=$(now)
    n=$(count_running "$e")
    mapfile -t sup < <(supervisors "$e")
    for p in "${sup[@]}"; do while read -r c; do ctr+=("$c"); done < <(pgrep -P "$p"); done
    settle "$e with $MEM_N"
    a1=$(mi MemAvailable); q1=$(pcp_kb); u1=$(used_kb); k1=$(mi SUnreclaim); c1=$(parts_kb); d1=$(sum_rss "${dp[@]}")
    local sp sr cp cg
    sp=$(sum_pss "${sup[@]}"); sr=$(sum_rss "${sup[@]}"); cp=$(sum_pss "${ctr[@]}"); cg=$(sum_cg "${ctr[@]}")
    t2=$(now); rm_all "$e"; t3=$(now)
    settle "$e after rm"
    a2=$(mi MemAvailable); q2=$(pcp_kb); u2=$(used_kb)
    jq -cn --arg e "$e" --argjson rep "$2" --argjson n "$n" --argjson nsup "${#sup[@]}" --argjson nctr "${#ctr[@]}" \
        --argjson a0 "$a0" --argjson a1 "$a1" --argjson a2 "$a2" --argjson u0 "$u0" --argjson u1 "$u1" --argjson u2 "$u2" \
        --argjson k0 "$k0" --argjson k1 "$k1" --argjson d0 "${d0:-0}" --argjson d1 "${d1:-0}" \
        --argjson q0 "$q0" --argjson q1 "$q1" --argjson q2 "$q2" --argjson c0 "$c0" --argjson c1 "$c1" \
        --argjson sp "$sp" --argjson sr "$sr" --argjson cp "$cp" --argjson cg "$cg" \
        --argjson ts "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" --argjson tr "$(awk -v a="$t2" -v b="$t3" 'BEGIN{print b-a}')" \
        '{engine:$e, rep:$rep, running:$n, supervisors:$nsup, ctr_procs:$nctr,
          avail_kb:[$a0,$a1,$a2], pcp_kb:[$q0,$q1,$q2], used_kb:[$u0,$u1,$u2], sunreclaim_kb:[$k0,$k1],
          parts_kb:[$c0,$c1], daemon_rss_kb:[$d0,$d1],
          sup_pss_kb:$sp, sup_rss_kb:$sr, ctr_pss_kb:$cp, ctr_cgroup_kb:$cg, start_s:$ts, rm_s:$tr}' | tee -a "$MEMJ" >&2
    [ "$n" = "$MEM_N" ] || log "$e: only $n of $MEM_N containers running"
}
section D || MEM_REPS=0
for r in $(seq 1 "$MEM_REPS"); do
    for e in berth docker podman; do
        have "$e" || continue
        log "[memory] rep $r/$MEM_REPS: $e, $MEM_N x sleep 1000  load=$(cut -d' ' -f1-3 /proc/loadavg)"
        mem_run "$e" "$r"
    done
done

# ------------------------------------------------------------------ E. with favordynmods
# The same start cases with the kernel's favordynmods cgroup option on (berth's daemon turns it
# on with --cgroup-favordynmods). The option is global, so every engine in this section gets it;
# if the host did not have it, it is turned off again afterwards (and on any exit).
fdm_on() { awk '{for(i=1;i<=NF;i++) if($i=="-"){ if(($(i+1)=="cgroup"||$(i+1)=="cgroup2") && $(i+3) ~ /(^|,)favordynmods(,|$)/) f=1 }} END{exit !f}' /proc/self/mountinfo; }
fdm_off() { # remount the hierarchy that has favordynmods with its other options unchanged
    python3 - <<'PY'
import ctypes, os
FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024,
         "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
libc = ctypes.CDLL(None, use_errno=True)
for line in open("/proc/self/mountinfo"):
    left, right = line.rstrip("\n").split(" - ", 1)
    l, r = left.split(" "), right.split(" ")
    if r[0] not in ("cgroup", "cgroup2") or "favordynmods" not in r[2].split(","):
        continue
    flags = 32 | sum(FLAGS.get(o, 0) for o in l[5].split(","))  # MS_REMOUNT
    data = ",".join(o for o in r[2].split(",") if o not in ("rw", "ro", "favordynmods"))
    if libc.mount(None, l[4].encode(), None, flags, data.encode()) != 0:
        raise SystemExit("remounting %s: %s" % (l[4], os.strerror(ctypes.get_errno())))
PY
}
FDM="${FAVORDYNMODS:-1}"; section E || FDM=0
FDM_RAN=0; FDM_NOTE=""
if [ "$FDM" = 1 ] && have berth; then
    if fdm_on; then
        FDM_NOTE="the host had favordynmods on before the script (so the sections above ran with it too)"
    else
        kill_wait "$BERTH_DPID" 10
        "$BERTH" --root "$BROOT" daemon --bridge none --cgroup-favordynmods >"$T/berth-daemon-fdm.log" 2>&1 &
        BERTH_DPID=$!; PIDS+=("$BERTH_DPID")
        for _ in $(seq 1 200); do "${B[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done
        "${B[@]}" version >/dev/null 2>&1 || { cat "$T/berth-daemon-fdm.log" >&2; die "berth daemon --cgroup-favordynmods did not start"; }
        CLEANUP+=("fdm_on && fdm_off")
        FDM_NOTE="turned on by \`berth daemon --cgroup-favordynmods\` for this section only and off again after it"
    fi
    if fdm_on; then
        FDM_RAN=1
        clear_cases
        add_case berth       "$QB run --rm $IMG true"                     host "" "$RUNS" "$WARMUP"
        add_case berth-none  "$QB run --rm --network none $IMG true"      host "" "$RUNS" "$WARMUP"
        add_case berth-run-d "$QB run -d --name rb-det $IMG sleep 1000" host \
            "sh -c '$QB rm -f rb-det >/dev/null 2>&1; true'" "$RUNS" "$WARMUP"
        add_case berth-stop  "$QB stop -t 0 rb-stop" host \
            "sh -c '$QB rm -f rb-stop >/dev/null 2>&1; $QB run -d --name rb-stop $IMG sleep 1000 >/dev/null'" "$RUNS" "$WARMUP"
        add_case berth-churn "$(loop "$QB run --rm $IMG true")" host "" "$CHURN_RUNS" 0
        have docker && add_case docker-none "$QD run --rm --network none $IMG true" host "" "$RUNS" "$WARMUP"
        have podman && add_case podman-none "$QP run --rm --network none $IMG true" nohy "" "$RUNS" "$WARMUP"
        have runc && add_case runc "$(q "${RUNC[@]}")run -b $BUNDLE rb-runc" host "" "$RUNS" "$WARMUP"
        have crun && add_case crun "$(q "${CRUN[@]}")run -b $BUNDLE rb-crun" nohy "" "$RUNS" "$WARMUP"
        run_cases fdm
        "${B[@]}" rm -f rb-det rb-stop >/dev/null 2>&1 || true
        case "$FDM_NOTE" in turned*) fdm_off || log "could not turn favordynmods off again" ;; esac
    else
        FDM_NOTE="berth's daemon did not turn it on (see berth-daemon-fdm.log)"
    fi
fi

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ report
# (empty when the group did not run: SECTIONS, FAVORDYNMODS=0)
med() { jq -r --arg c "$2" '.results[] | select(.command==$c) | .median' "$RAW/$1.json" 2>/dev/null || true; }
st()  { jq -r --arg c "$2" --arg k "$3" '.results[] | select(.command==$c) | .[$k]' "$RAW/$1.json" 2>/dev/null || true; }
nr()  { jq -r --arg c "$2" '.results[] | select(.command==$c) | .times|length' "$RAW/$1.json" 2>/dev/null || true; }
fmt() { # seconds -> "1.23 s" / "123 ms" / "12.3 ms"
    [ -n "$1" ] || { echo "n/a"; return; }
    awk -v s="$1" 'BEGIN{ if (s>=1) printf "%.2f s", s; else if (s>=0.1) printf "%.0f ms", s*1000; else printf "%.1f ms", s*1000 }'
}
cell() { # GROUP ID -> "**median** (min–max, n)"
    local m; m="$(med "$1" "$2")"; [ -n "$m" ] || { echo "n/a"; return; }
    echo "**$(fmt "$m")** ($(fmt "$(st "$1" "$2" min)")–$(fmt "$(st "$1" "$2" max)"), n=$(nr "$1" "$2"))"
}
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1fx", a/b}'; else echo "n/a"; fi; }
verdict() { # VALUE LIMIT -> met / not met
    [ -n "$1" ] || { echo "n/a"; return; }
    if awk -v v="$1" -v l="$2" 'BEGIN{exit !(v <= l)}'; then echo "met"; else echo "**not met**"; fi
}
unavail() { echo "unavailable: ${REASON[$1]}"; }
# memory: median over reps of a jq expression (per container, MB) for ENGINE
memv() { jq -s --arg e "$1" "[.[] | select(.engine==\$e) | ($2)] | sort | if length==0 then empty else (if length%2==1 then .[(length-1)/2] else (.[length/2-1]+.[length/2])/2 end) end" "$MEMJ"; }
mbf() { case "$1" in ""|null) echo "n/a" ;; *) awk -v v="$1" 'BEGIN{printf "%.2f MB", v}' ;; esac; }

NQ_ROUNDS=() NQ_MEM=()
for x in "${QUIET_NOTE[@]}"; do case "$x" in *" round "*) NQ_ROUNDS+=("$x") ;; *) NQ_MEM+=("$x") ;; esac; done
list() { local IFS=,; echo "$*" | sed 's/,/, /g'; }
BUSY_TOTAL=$(wc -l <"$RAW/busy.log"); BUSY_ON=$(awk '$2>0' "$RAW/busy.log" | wc -l)
BUSY_PCT=$(awk -v a="$BUSY_ON" -v b="$BUSY_TOTAL" 'BEGIN{printf "%.0f", b ? 100*a/b : 0}')

BT=$(med start berth); BN=$(med start berth-none); DT=$(med start docker); DN=$(med start docker-none)
PT=$(med start podman); PNn=$(med start podman-none); RT=$(med start runc); CT=$(med start crun); SH=$(med start baseline)
BC=$(med churn berth); DC=$(med churn docker); PC=$(med churn podman)
BD=$(med detached berth-run-d); BS=$(med detached berth-stop)
DD=$(med detached docker-run-d); DS=$(med detached docker-stop); PD=$(med detached podman-run-d); PS=$(med detached podman-stop)
# (older readings have no pcp_kb: counted as 0)
MEM_AV='((.avail_kb[0]+(.pcp_kb[0]//0))-(.avail_kb[1]+(.pcp_kb[1]//0)))/1024/.running'
MEM_AV_RAW='(.avail_kb[0]-.avail_kb[1])/1024/.running'
MEM_USED='((.used_kb[1]-(.pcp_kb[1]//0))-(.used_kb[0]-(.pcp_kb[0]//0)))/1024/.running'
MEM_RM='((.avail_kb[2]+(.pcp_kb[2]//0))-(.avail_kb[1]+(.pcp_kb[1]//0)))/1024/.running'
MEM_PARTS='if .parts_kb then (.parts_kb[1]-.parts_kb[0])/1024/.running else null end'
MEM_SLAB='(.sunreclaim_kb[1]-.sunreclaim_kb[0])/1024/.running'
MEM_SUP='if .supervisors>0 then .sup_pss_kb/1024/.supervisors else null end'
MEM_CTR='if .ctr_procs>0 then .ctr_pss_kb/1024/.ctr_procs else null end'
MEM_CG='if .ctr_procs>0 then .ctr_cgroup_kb/1024/.ctr_procs else null end'
MEM_DMN='(.daemon_rss_kb[1]-.daemon_rss_kb[0])/1024/.running'
BMEM="$(memv berth "$MEM_AV")"

SECTION="$T/section.md"
{
    echo "## Run (bench/run.sh)"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') with \`bash bench/run.sh\`; raw hyperfine JSON and memory readings in \`bench/results/$(basename "$RAW")/\` (not committed)."
    echo
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), cgroup $(cgroup_mode), $(. /etc/os-release; echo "$PRETTY_NAME"). State of berth, dockerd and podman in a temp dir on $(findmnt -no FSTYPE -T "$T") ($(findmnt -no SOURCE -T "$T")); dockerd's exec-root and podman's runroot on /run (tmpfs)."
    echo "- Versions: berth $BERTH_VERSION; docker ${DOCKER_VERSION:-n/a} with CLI $("$DOCKER" --version 2>/dev/null | awk '{print $3}' | tr -d ,); podman ${PODMAN_VERSION:-n/a}; runc $RUNC_VERSION; crun $CRUN_VERSION; hyperfine $(hyperfine --version | awk '{print $2}')."
    echo "- Image: berth's busybox fixture (\`berth-fixture oci-layout\`, Debian's busybox-static, $IMG_LAYERS layers, $IMG_SIZE B compressed), pushed to Debian's docker-registry on $REG; berth, docker and podman all pulled this same image. runc/crun: an OCI bundle from \`runc spec\` (terminal off, args [\"true\"]) with the image's flattened rootfs (\`docker export\`)."
    echo "- Networks: berth's daemon runs with \`--bridge none\` here (its bridge would turn on ip_forward and add its nft table in the host's namespace; \`bench/net.sh\` measures it inside a private network namespace), so its default network *is* \`none\` (a private netns with loopback only) and berth's two \`run --rm\` rows measure the same thing. docker: $DOCKER_NET. podman: its default network (netavark bridge podman0, 10.88.0.0/16). The runc/crun bundle gets a new netns (loopback down)."
    echo "- Namespaces: crun 1.8 refuses this hybrid cgroup host, so podman (runtime ${PODMAN_RT:-crun}) and \`crun run\` run inside one private mount namespace in which /sys/fs/cgroup/unified is unmounted (\`unshare -m --propagation slave\`, kept open and entered with \`nsenter\`); hyperfine itself runs in it, so nothing of this is timed. podman uses a generated containers.conf with default_ulimits = the current hard limits (nofile $nofile, nproc $nproc), as this VM lacks CAP_SYS_RESOURCE."
    echo "- Method: hyperfine -N (no shell) with the daemons already running; every case in $ROUNDS rounds (one hyperfine call per case and round, $WARMUP warm-ups each, order of the cases rotated every round), all runs of a case pooled; **medians** with min–max and number of runs. \`run -d\`: the container of the previous run is removed in \`--prepare\`; \`stop -t 0\`: a fresh \`sleep 1000\` container is started in \`--prepare\` (neither is timed). \`sh -c true\` (fork+exec floor of hyperfine): $(fmt "$SH")."
    echo "- Load: this VM is shared with other people's builds. Load average $LOAD_A at the start, $LOAD_END at the end; other compilers (rustc, cc, ld) ran during ${BUSY_PCT}% of the script's seconds (\`busy.log\`). To limit that: everything the script starts runs at nice $NICE (all engines alike), and each round first waits up to ${QUIET_WAIT_ROUND} s for those compilers to finish and the CPUs to be under ${QUIET_CPU} % busy$([ ${#NQ_ROUNDS[@]} = 0 ] && echo ' (they always did)' || echo " (they had not at: $(list "${NQ_ROUNDS[@]}"); those rounds ran anyway)"), and each hyperfine call (every case, every engine) waits up to ${SETTLE_WAIT} s for the CPUs to be under ${SETTLE_CPU} % busy over one second, so no case inherits the background cleanup of the one before$([ ${#UNSETTLED[@]} = 0 ] && echo ' (they always were)' || echo " (they were not before: $(list "${UNSETTLED[@]}"))"). Rounds with rotation spread the remaining noise over all engines."
    echo
    echo "### Start to exit: \`run --rm IMG true\`"
    echo
    echo "| engine | default network | \`--network none\` | vs berth (default / none) |"
    echo "|---|---|---|---|"
    echo "| berth | $(cell start berth) | $(cell start berth-none) | 1.0x / 1.0x |"
    if have docker; then echo "| docker | $(cell start docker) | $(cell start docker-none) | $(ratio "$DT" "$BT") / $(ratio "$DN" "$BN") |"; else echo "| docker | $(unavail docker) | | |"; fi
    if have podman; then echo "| podman (${PODMAN_RT:-crun}) | $(cell start podman) | $(cell start podman-none) | $(ratio "$PT" "$BT") / $(ratio "$PNn" "$BN") |"; else echo "| podman | $(unavail podman) | | |"; fi
    if have runc; then echo "| \`runc run\` (bundle) | $(cell start runc) | | – / $(ratio "$RT" "$BN") |"; else echo "| runc | $(unavail runc) | | |"; fi
    if have crun; then echo "| \`crun run\` (bundle) | $(cell start crun) | | – / $(ratio "$CT" "$BN") |"; else echo "| crun | $(unavail crun) | | |"; fi
    echo
    echo "Peer anchors measured on this VM earlier (\`/work/shared/peers\`): docker 353 ms (260 ms with --network none), podman 404 ms (148 ms), crun alone 8.5 ms."
    echo
    echo "### $CHURN_N sequential \`run --rm IMG true\` (default network)"
    echo
    echo "| engine | total | per container | vs berth |"
    echo "|---|---|---|---|"
    echo "| berth | $(cell churn berth) | $(fmt "$(awk -v t="$BC" -v n="$CHURN_N" 'BEGIN{if (t!="") print t/n}')") | 1.0x |"
    if have docker; then echo "| docker | $(cell churn docker) | $(fmt "$(awk -v t="$DC" -v n="$CHURN_N" 'BEGIN{if (t!="") print t/n}')") | $(ratio "$DC" "$BC") |"; fi
    if have podman; then echo "| podman (${PODMAN_RT:-crun}) | $(cell churn podman) | $(fmt "$(awk -v t="$PC" -v n="$CHURN_N" 'BEGIN{if (t!="") print t/n}')") | $(ratio "$PC" "$BC") |"; fi
    echo
    echo "A \`sh -c\` loop timed as a whole, no warm-up, in $ROUNDS rounds like the rest (n = runs in total; docker and podman get fewer because each of their runs takes half a minute or more). Peer anchor: 100 docker runs 40 s."
    echo
    echo "### Detached start and stop"
    echo
    echo "| engine | \`run -d --name X IMG sleep 1000\` | \`stop -t 0 X\` (running \`sleep 1000\`) |"
    echo "|---|---|---|"
    echo "| berth | $(cell detached berth-run-d) | $(cell detached berth-stop) |"
    if have docker; then echo "| docker | $(cell detached docker-run-d) | $(cell detached docker-stop) |"; fi
    if have podman; then echo "| podman (${PODMAN_RT:-crun}) | $(cell detached podman-run-d) | $(cell detached podman-stop) |"; fi
    echo
    echo "Ratios of medians: run -d docker/berth $(ratio "$DD" "$BD"), podman/berth $(ratio "$PD" "$BD"); stop docker/berth $(ratio "$DS" "$BS"), podman/berth $(ratio "$PS" "$BS"). Default network for all (docker: bridge, podman: netavark bridge, berth: none)."
    echo
    echo "### Memory of $MEM_N idle \`sleep 1000\` containers"
    echo
    echo "Per container, median of $MEM_REPS repetitions. Page cache dropped (\`sync; echo 3 > drop_caches\`) before every reading$([ "$DROP_CACHES" = 1 ] || echo ' (**not** this time: DROP_CACHES=0)'), and each reading waited (up to about ${QUIET_WAIT} s) for other compilers on the VM to finish and the CPUs to be under ${QUIET_CPU} % busy$([ ${#NQ_MEM[@]} = 0 ] && echo ' (they did every time)' || echo "; they were still running at: $(list "${NQ_MEM[@]}") -- host-wide figures (ΔMemAvailable, Δused) there are noisy; the PSS and cgroup columns are not affected")."
    echo "Supervisor: berth's per-container shim, containerd-shim-runc-v2 (docker), conmon (podman)."
    echo
    echo "ΔMemAvailable, Δused and \"freed\" count the free pages on the kernel's per-CPU lists as free (/proc/zoneinfo \"count\"; MemFree leaves them out, and they swing by tens of MB here); \"raw\" is ΔMemAvailable as /proc/meminfo gives it. Δparts: the change of AnonPages + Slab + KernelStack + PageTables + Shmem + Percpu."
    echo
    echo "| engine | ΔMemAvailable | raw | Δused (free) | Δparts | freed by rm -f | ΔSUnreclaim | supervisor PSS | container process PSS | container memory cgroup | daemon RSS growth | start $MEM_N / rm -f $MEM_N |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for e in berth docker podman; do
        have "$e" || continue
        echo "| $e | **$(mbf "$(memv "$e" "$MEM_AV")")** | $(mbf "$(memv "$e" "$MEM_AV_RAW")") | $(mbf "$(memv "$e" "$MEM_USED")") | $(mbf "$(memv "$e" "$MEM_PARTS")") | $(mbf "$(memv "$e" "$MEM_RM")") | $(mbf "$(memv "$e" "$MEM_SLAB")") | $(mbf "$(memv "$e" "$MEM_SUP")") | $(mbf "$(memv "$e" "$MEM_CTR")") | $(mbf "$(memv "$e" "$MEM_CG")") | $([ "$e" = podman ] && echo "n/a (no daemon)" || mbf "$(memv "$e" "$MEM_DMN")") | $(fmt "$(memv "$e" .start_s)") / $(fmt "$(memv "$e" .rm_s)") |"
    done
    echo
    echo "Peer anchors (the issue's, raw ΔMemAvailable): docker 3.0 MB, podman 0.30 MB per idle container."
    echo
    if [ "$FDM_RAN" = 1 ]; then
        echo "### With the kernel's favordynmods cgroup option"
        echo
        echo "Option $FDM_NOTE. It is host-wide, so the peers below ran with it as well; without it, moving a process into a cgroup after a quiet spell waits for an RCU grace period."
        echo
        echo "| case | median |"
        echo "|---|---|"
        echo "| berth \`run --rm IMG true\` | $(cell fdm berth) |"
        echo "| berth \`run --rm --network none IMG true\` | $(cell fdm berth-none) |"
        echo "| berth $CHURN_N sequential \`run --rm\` | $(cell fdm berth-churn) |"
        echo "| berth \`run -d\` | $(cell fdm berth-run-d) |"
        echo "| berth \`stop -t 0\` | $(cell fdm berth-stop) |"
        have docker && echo "| docker \`run --rm --network none\` | $(cell fdm docker-none) |"
        have podman && echo "| podman \`run --rm --network none\` | $(cell fdm podman-none) |"
        have runc && echo "| \`runc run\` (bundle) | $(cell fdm runc) |"
        have crun && echo "| \`crun run\` (bundle) | $(cell fdm crun) |"
        echo
    elif [ -n "$FDM_NOTE" ]; then
        echo "favordynmods section: not run: $FDM_NOTE."
        echo
    fi
    FBN=$(med fdm berth-none); FBC=$(med fdm berth-churn); FBD=$(med fdm berth-run-d); FBS=$(med fdm berth-stop)
    fdm_cell() { [ "$FDM_RAN" = 1 ] && echo "$(fmt "$1") ($(verdict "$1" "$2"))" || echo "n/a"; }
    echo "### Targets"
    echo
    echo "| target | berth | | with favordynmods |"
    echo "|---|---|---|---|"
    echo "| \`run --rm --network none\` ≤ 10 ms (median) | $(fmt "$BN") | $(verdict "$BN" 0.010) | $(fdm_cell "$FBN" 0.010) |"
    echo "| $CHURN_N sequential \`run --rm\` ≤ 2 s | $(fmt "$BC") | $( [ "$CHURN_N" = 100 ] && verdict "$BC" 2 || echo "n/a (CHURN_N=$CHURN_N)") | $(fdm_cell "$FBC" 2) |"
    echo "| \`run -d\` ≤ 15 ms | $(fmt "$BD") | $(verdict "$BD" 0.015) | $(fdm_cell "$FBD" 0.015) |"
    echo "| \`stop -t 0\` ≤ 10 ms | $(fmt "$BS") | $(verdict "$BS" 0.010) | $(fdm_cell "$FBS" 0.010) |"
    echo "| ≤ 0.25 MB host memory per idle container (ΔMemAvailable) | $(mbf "$BMEM") | $(verdict "$BMEM" 0.25) | |"
    echo
} >"$SECTION"

OUTMD="$BENCH_DIR/RESULTS.md"
[ -f "$OUTMD" ] || printf '# berth benchmark results\n\n' >"$OUTMD"
awk -v secfile="$SECTION" '
    BEGIN { while ((getline l < secfile) > 0) sec = sec l "\n" }
    /^## / { if (skip) skip = 0
             if ($0 ~ /^## Run( |$)/) { skip = 1; if (!done) printf "%s", sec; done = 1; next } }
    !skip { print }
    END { if (!done) printf "%s%s", (NR ? "\n" : ""), sec }' "$OUTMD" >"$OUTMD.tmp"
cat -s "$OUTMD.tmp" >"$OUTMD"; rm -f "$OUTMD.tmp"
cp "$SECTION" "$RAW/section.md"
cat "$SECTION"
log "wrote $OUTMD"
