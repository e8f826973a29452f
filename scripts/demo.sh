#!/usr/bin/env bash
# The berth demo, offline, as root on Debian 12: build berth, make a busybox image from
# Debian's static busybox, push it to Debian's docker-registry on loopback, pull it with berth,
# list and inspect it, run it as a container. (Pushing with berth's own push arrives later.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked -p berth -p berth-testkit
BERTH="$PWD/target/release/berth"
FIXTURE="$PWD/target/release/berth-fixture"

# The daemon the CLI starts gets no bridge: the demo leaves the host's network as it found
# it (the bridge would turn on ip_forward and add berth's nft table; the network e2e tests
# and bench/net.sh exercise it inside private network namespaces).
export BERTH_BRIDGE=none
WORK="$(mktemp -d /tmp/berth-demo.XXXXXX)"
ROOT="$WORK/root"
REG_PID=""
cleanup() {
    if [ -f "$ROOT/daemon.pid" ]; then kill "$(cat "$ROOT/daemon.pid")" 2>/dev/null || true; fi
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5077)
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== building a busybox image (OCI layout) and pushing it to 127.0.0.1:$PORT"
"$FIXTURE" oci-layout "$WORK/layout"
skopeo --insecure-policy copy -q --all --dest-tls-verify=false "oci:$WORK/layout:latest" "docker://127.0.0.1:$PORT/demo/busybox:latest"
skopeo --insecure-policy copy -q --all --dest-tls-verify=false "oci:$WORK/layout:multi" "docker://127.0.0.1:$PORT/demo/busybox:multi"

echo "== berth pull"
"$BERTH" --root "$ROOT" pull "127.0.0.1:$PORT/demo/busybox:latest"
echo "== berth pull --platform linux/arm64 (from a multi-platform index)"
"$BERTH" --root "$ROOT" pull --platform linux/arm64 "127.0.0.1:$PORT/demo/busybox:multi"
echo "== berth pull again (warm)"
time "$BERTH" --root "$ROOT" pull -q "127.0.0.1:$PORT/demo/busybox:latest"
echo "== berth images"
"$BERTH" --root "$ROOT" images
echo "== berth image inspect"
"$BERTH" --root "$ROOT" image inspect -f '{{.Id}} {{.Os}}/{{.Architecture}} layers={{json .RootFS.Layers}}' "127.0.0.1:$PORT/demo/busybox:latest"
echo "== berth run --rm (namespaces, overlay root, Docker's capabilities and seccomp profile)"
"$BERTH" --root "$ROOT" run --rm "127.0.0.1:$PORT/demo/busybox:latest" sh -c 'echo "hello from $(hostname), pid $$"; grep -E "^(CapEff|Seccomp):" /proc/self/status'
echo "== berth run -d, ps, logs, stop, rm"
"$BERTH" --root "$ROOT" run -d --name demo --memory 64m "127.0.0.1:$PORT/demo/busybox:latest" sh -c 'while true; do date; sleep 1; done' >/dev/null
sleep 1.2
"$BERTH" --root "$ROOT" ps
"$BERTH" --root "$ROOT" logs --tail 1 demo
"$BERTH" --root "$ROOT" stop -t 1 demo >/dev/null
"$BERTH" --root "$ROOT" rm demo >/dev/null
echo "== berth system df"
"$BERTH" --root "$ROOT" system df
echo "demo done"
