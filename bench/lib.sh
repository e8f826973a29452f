# shellcheck shell=bash
# bench/lib.sh -- helpers the benchmark scripts share (sourced, not run).

# percent of CPU time not idle during the next second, all CPUs
cpu_busy() {
    local a b
    read -ra a </proc/stat; sleep 1; read -ra b </proc/stat
    awk -v t0="$(IFS=+; echo $(( ${a[*]:1} )))" -v t1="$(IFS=+; echo $(( ${b[*]:1} )))" \
        -v i0=$(( a[4] + a[5] )) -v i1=$(( b[4] + b[5] )) 'BEGIN{d=t1-t0; printf "%d", d ? 100*(d-(i1-i0))/d : 0}'
}

# settle_cpu SECONDS PCT: waits (at most SECONDS) until the CPUs are under PCT % busy over
# one second; prints the last reading; fails if they never were
settle_cpu() {
    local end=$((SECONDS + $1)) busy
    while :; do
        busy=$(cpu_busy)
        [ "$busy" -lt "$2" ] && { echo "$busy"; return 0; }
        [ "$SECONDS" -lt "$end" ] || { echo "$busy"; return 1; }
    done
}

# podman 4.x as root puts RLIMIT_NOFILE/NPROC=1048576 into every spec, and without
# CAP_SYS_RESOURCE the runtime cannot raise a limit above its hard limit: write a
# containers.conf at FILE whose default_ulimits are the current hard limits (nproc capped at
# pid_max) and point podman at it (CONTAINERS_CONF); the limits stay in $nofile and $nproc
# for the report
podman_conf() {
    local pidmax
    nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"; pidmax="$(cat /proc/sys/kernel/pid_max)"
    [ "$nofile" = unlimited ] && nofile=1048576
    [ "$nproc" = unlimited ] && nproc=$pidmax
    [ "$nproc" -gt "$pidmax" ] && nproc=$pidmax
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
        "$nofile" "$nofile" "$nproc" "$nproc" >"$1"
    export CONTAINERS_CONF="$1"
}
