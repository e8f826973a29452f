#!/usr/bin/env bash
# Installs what building and testing berth needs on Debian 12, as root: a Rust toolchain
# (Debian's cargo-web/rustc-web when no cargo >= 1.88 is present), a C compiler for the bundled
# SQLite and zstd, and the real components the tests drive: Debian's docker-registry, skopeo,
# static busybox (fixture images), htpasswd (apache2-utils), nft (nftables), and the clients
# the compatibility tests run unchanged (docker CLI, docker-py, docker-compose).
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need_pkgs+=(build-essential)
# libc.a: berth-init is linked statically (crt-static)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
have pkg-config || need_pkgs+=(pkg-config)
have docker-registry || need_pkgs+=(docker-registry)
have skopeo || need_pkgs+=(skopeo)
have htpasswd || need_pkgs+=(apache2-utils)
have file || need_pkgs+=(file)
have jq || need_pkgs+=(jq)
have nft || need_pkgs+=(nftables)   # berth's NAT and published ports
have iperf3 || need_pkgs+=(iperf3)  # bench/net.sh
have curl || need_pkgs+=(curl)
# berth-net's privileged tests use nsenter (util-linux)
have nsenter || need_pkgs+=(util-linux)
/usr/bin/python3 -c "import docker" 2>/dev/null || need_pkgs+=(python3-docker)
have docker-compose || need_pkgs+=(docker-compose)   # compose 1.29 (on docker-py), compat test
# the docker CLI, for the real-client tests (Debian ships it in docker.io; its daemon is not started)
have docker || need_pkgs+=(docker.io)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)

cargo_ok() {
    have cargo || return 1
    local v
    v=$(cargo --version | awk '{print $2}')
    [ "$(printf '%s\n1.88.0\n' "$v" | sort -V | head -1)" = 1.88.0 ]
}
cargo_ok || need_pkgs+=(cargo-web rustc-web)

if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need_pkgs[*]}; run as root so they can be installed" >&2
        exit 1
    fi
    echo "# installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
cargo_ok || { echo "cargo >= 1.88 is required (Debian 12: apt-get install cargo-web rustc-web)" >&2; exit 1; }
