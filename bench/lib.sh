# shellcheck shell=bash
# bench/lib.sh -- helpers the benchmark scripts share (sourced, not run).

# percent of CPU time not idle during the next second, all CPUs
cpu_busy() {
    local a b
    read -ra a </proc/stat; sleep 1; read -ra b </proc/stat
    awk -v t0="$(IFS=+; echo $(( ${a[*]:1} )))" -v t1="$(IFS=+; echo $(( ${b[*]:1} )))" \
        -v i0=$(( a[4] + a[5] )) -v i1=$(( b[4] + b[5] )) 'BEGIN{d=t1-t0; printf "%d", d ? 100*(d-(i1-i0))/d : 0}'
}
