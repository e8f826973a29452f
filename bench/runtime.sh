#!/usr/bin/env bash
# bench/runtime.sh -- the OCI runtimes alone: `berth runtime run` vs `crun run` vs `runc run`
# on the same bundle, in one hyperfine run, medians.
#
# What it does
#   1. Builds berth (cargo build --release -p berth) unless BERTH is given.
#   2. Makes one OCI bundle: a root file system with Debian's static busybox and its applet
#      links, and `runc spec`'s config.json with terminal=false and args ["true"].  All three
#      runtimes run this very bundle (read-only root, runc's default mounts, namespaces,
#      capabilities, masked paths and device rules; no cgroupsPath, so each uses its own
#      default cgroup /<id>).
#   3. Runs hyperfine -N (no shell) with the three commands side by side, each runtime with its
#      own --root state directory, in $ROUNDS rounds of $RUNS runs per command, the order of
#      the commands rotated every round (load bursts on a shared machine hit all alike); the
#      times of all rounds are pooled and their median, mean, sd, min and max reported.  Each run uses the container id of its runtime afresh:
#      hyperfine's --prepare force-deletes that id (`delete -f`) before every run (not timed),
#      so no run sees state left by another, and a failed run cannot poison the next.
#   4. Writes raw JSON to bench/results/runtime-<stamp>/ and replaces the "## Runtime" section
#      of bench/RESULTS.md.
#
# Host quirk: crun 1.8 refuses a hybrid cgroup host whose cgroup2 mount has controllers, so
# the whole measurement (all three runtimes alike) runs in a private mount namespace in which
# /sys/fs/cgroup/unified is unmounted (`unshare -m --propagation slave`); the host is not
# changed.
#
# Usage: bash bench/runtime.sh        (as root)
# Env:   BERTH=/path/to/berth (default: cargo build --release; target dir $CARGO_TARGET_DIR
#        or the workspace's)   ROUNDS=5   RUNS=40 (per round and command)   WARMUP=5
#        KEEP_TMP=1
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RUNS="${RUNS:-40}"
WARMUP="${WARMUP:-5}"
ROUNDS="${ROUNDS:-5}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RES="$BENCH_DIR/results/runtime-$STAMP"

log() { echo "# $*" >&2; }
need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || { echo "missing command: $c (apt-get install $c)" >&2; exit 2; }
    done
}
need hyperfine crun runc jq busybox unshare

if [ -z "${BERTH:-}" ]; then
    log "building berth (release)"
    (cd "$REPO" && cargo build --release -p berth >&2)
    BERTH="${CARGO_TARGET_DIR:-$REPO/target}/release/berth"
fi
[ -x "$BERTH" ] || { echo "no berth binary at $BERTH" >&2; exit 2; }

T="$(mktemp -d /tmp/bench-runtime.XXXXXX)"
cleanup() {
    set +e
    for rt in berth crun runc; do
        case $rt in
            berth) "$BERTH" runtime --root "$T/state/berth" delete -f bench-berth ;;
            crun) crun --root "$T/state/crun" delete -f bench-crun ;;
            runc) runc --root "$T/state/runc" delete -f bench-runc ;;
        esac
    done >/dev/null 2>&1
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$RES" "$T/state"/{berth,crun,runc}

# the bundle
B="$T/bundle"
mkdir -p "$B/rootfs"/{bin,usr,etc,proc,sys,dev,tmp,root}
bb="$(command -v busybox)"
if ldd "$bb" >/dev/null 2>&1; then
    echo "busybox at $bb is dynamically linked; install busybox-static" >&2
    exit 2
fi
cp "$bb" "$B/rootfs/bin/busybox"
for a in $("$B/rootfs/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$B/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$B/rootfs/etc/passwd"
echo 'root:x:0:' >"$B/rootfs/etc/group"
(cd "$B" && runc spec)
jq '.process.terminal=false | .process.args=["true"]' "$B/config.json" >"$B/config.json.new"
mv "$B/config.json.new" "$B/config.json"

BERTH_CMD="$BERTH runtime --root $T/state/berth run --bundle $B bench-berth"
CRUN_CMD="crun --root $T/state/crun run --bundle $B bench-crun"
RUNC_CMD="runc --root $T/state/runc run --bundle $B bench-runc"

cat >"$T/inner.sh" <<INNER
set -euo pipefail
# crun 1.8 and a hybrid host: hide the cgroup2 mount in this private namespace
if [ "\$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && [ "\$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    umount /sys/fs/cgroup/unified
fi
# each works once, exit status 0
$BERTH_CMD
$CRUN_CMD
$RUNC_CMD
# rounds, the order of the runtimes rotated each round, so a burst of load on this shared
# machine hits all of them alike; the times of all rounds are pooled afterwards
names=("berth runtime run" "crun run" "runc run")
cmds=("$BERTH_CMD" "$CRUN_CMD" "$RUNC_CMD")
preps=("$BERTH runtime --root $T/state/berth delete -f bench-berth" "crun --root $T/state/crun delete -f bench-crun" "runc --root $T/state/runc delete -f bench-runc")
for round in \$(seq 1 $ROUNDS); do
    args=()
    for k in 0 1 2; do
        i=\$(( (k + round) % 3 ))
        args+=(--prepare "\${preps[\$i]}" -n "\${names[\$i]}" "\${cmds[\$i]}")
    done
    hyperfine -N --style basic --warmup $WARMUP --runs $RUNS --export-json "$RES/round-\$round.json" "\${args[@]}"
done
INNER

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "hyperfine: $ROUNDS rounds of $RUNS runs each, $WARMUP warm-ups, load $LOAD_BEFORE"
unshare -m --propagation slave bash "$T/inner.sh" >&2
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# pooled times of every round, per command
jq -s '[.[].results[]] | group_by(.command) | map({command: .[0].command, times: (map(.times) | add)})
       | map(. + {n: (.times | length), sorted: (.times | sort)})
       | map(. + {median: (if .n % 2 == 1 then .sorted[(.n - 1) / 2] else (.sorted[.n / 2 - 1] + .sorted[.n / 2]) / 2 end),
                  mean: ((.times | add) / .n), min: .sorted[0], max: .sorted[-1]})
       | map(. as $r | . + {stddev: (if .n > 1 then (($r.times | map((. - $r.mean) * (. - $r.mean)) | add) / (.n - 1) | sqrt) else 0 end)})
       | {results: map(del(.sorted))}' "$RES"/round-*.json >"$RES/runtime.json"
ms() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command==$n) | .[$f]*1000*100 | round/100' "$RES/runtime.json"; }
row() {
    local n="$1"
    local med mean sd min max
    med="$(ms "$n" median)"; mean="$(ms "$n" mean)"; sd="$(ms "$n" stddev)"
    min="$(ms "$n" min)"; max="$(ms "$n" max)"
    local runs
    runs="$(jq -r --arg n "$n" '.results[] | select(.command==$n) | .n' "$RES/runtime.json")"
    echo "| \`$n\` | **$med ms** | $mean ± $sd ms | $min ms | $max ms | $runs |"
}
B_MED="$(ms "berth runtime run" median)"
C_MED="$(ms "crun run" median)"
R_MED="$(ms "runc run" median)"
VERDICT="$(awk -v b="$B_MED" -v c="$C_MED" 'BEGIN { if (b <= c) print "met"; else print "not met" }')"

SECTION="$T/section.md"
{
    echo "## Runtime (bench/runtime.sh)"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M') UTC with \`bash bench/runtime.sh\`; raw hyperfine JSON in \`bench/results/runtime-$STAMP/\` (not committed)."
    echo
    echo "- Machine: $(nproc) CPUs, kernel $(uname -r), cgroup v1 (hybrid; the cgroup2 mount hidden in the benchmark's private mount namespace for crun 1.8). Shared and noisy: other work runs beside it; load average before / after: $LOAD_BEFORE / $LOAD_AFTER."
    echo "- Versions: berth $("$BERTH" runtime --version | head -1 | awk '{print $3}') ($BERTH); $(crun --version | head -1); $(runc --version | head -1)."
    echo "- Method: hyperfine -N, the three commands side by side in $ROUNDS rounds (order rotated every round; $WARMUP warm-ups and $RUNS runs per command and round; all rounds pooled), on one bundle (busybox-static root, \`runc spec\` with terminal=false and args [\"true\"]); every run is a foreground \`run\` (create, start, wait for exit, delete); \`--prepare\` force-deletes the id first (not timed)."
    echo
    echo "| command | median | mean ± sd | min | max | runs |"
    echo "|---|---|---|---|---|---|"
    row "berth runtime run"
    row "crun run"
    row "runc run"
    echo
    echo "Target: at least as fast as crun (median): **$VERDICT** (berth $B_MED ms, crun $C_MED ms, runc $R_MED ms)."
    echo
} >"$SECTION"
cat "$SECTION"

# replace the "## Runtime" section of RESULTS.md (other sections kept)
OUT="$BENCH_DIR/RESULTS.md"
[ -f "$OUT" ] || echo "# berth benchmark results" >"$OUT"
awk -v sec="$SECTION" '
    BEGIN { while ((getline l < sec) > 0) s = s l "\n" }
    /^## / { if (skip) skip = 0; if ($0 ~ /^## Runtime /) { skip = 1; printf "%s", s; done = 1; next } }
    !skip { print }
    END { if (!done) { print ""; printf "%s", s } }
' "$OUT" >"$OUT.new"
mv "$OUT.new" "$OUT"
log "wrote $OUT"
