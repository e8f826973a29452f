#!/usr/bin/env bash
# The docker CLI against a berth daemon (DOCKER_HOST) and a registry (REGISTRY).
set -euo pipefail
# grep reads all of its input (no -q): with pipefail, a writer cut off by an early exit
# (SIGPIPE) would fail the check
ref="$REGISTRY/compat/bb:latest"
fail() { echo "docker_cli.sh: $*" >&2; exit 1; }

docker version --format '{{.Server.APIVersion}}' | grep >/dev/null . || fail "no server API version"
docker pull -q "$ref" | grep -x >/dev/null "$ref" || fail "pull -q prints the reference"
docker images --format '{{.Repository}}:{{.Tag}}' | grep -x >/dev/null "$ref" || fail "images lists the pull"
[ "$(docker image inspect --format '{{.Os}}' "$ref")" = linux ] || fail "inspect"
docker tag "$ref" compat/cli:v1
docker images | grep >/dev/null '^compat/cli ' || fail "tag shows in images"
[ "$(docker rmi compat/cli:v1)" = "Untagged: compat/cli:v1" ] || fail "rmi of one tag untags only"
set +e
docker image inspect nosuchimage >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "inspect of a missing image exits 1 (got $rc)"
# containers
[ "$(docker run --rm "$ref" echo hello)" = hello ] || fail "run --rm prints the output"
set +e
docker run --rm "$ref" sh -c 'exit 5'; rc=$?
set -e
[ "$rc" = 5 ] || fail "run passes the exit code through (got $rc)"
[ "$(echo piped | docker run -i --rm "$ref" cat)" = piped ] || fail "run -i forwards stdin"
[ "$(docker run --rm --init "$ref" cat /proc/1/comm)" = docker-init ] || fail "run --init makes the init PID 1"
[ "$(docker run --rm --runtime runc "$ref" echo via-runc)" = via-runc ] || fail "run --runtime runc"
id=$(docker run -d --name compat-sleeper "$ref" sleep 30)
docker ps --format '{{.Names}}' | grep -x >/dev/null compat-sleeper || fail "ps lists the running container"
[ "$(docker inspect -f '{{.State.Running}}' compat-sleeper)" = true ] || fail "inspect shows it running"
docker stop -t 0 compat-sleeper >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' compat-sleeper)" = 137 ] || fail "stop -t 0 kills (137)"
docker rm "$id" >/dev/null
# exec
docker run -d --name compat-exec --hostname exechost "$ref" sleep 60 >/dev/null
[ "$(docker exec compat-exec hostname)" = exechost ] || fail "exec runs in the container's uts namespace"
[ "$(docker exec -e V=1 -w /tmp -u 1000 compat-exec sh -c 'echo $V $(pwd) $(id -u)')" = "1 /tmp 1000" ] || fail "exec -e -w -u"
[ "$(echo viaexec | docker exec -i compat-exec cat)" = viaexec ] || fail "exec -i forwards stdin"
set +e
docker exec compat-exec sh -c 'exit 6'; rc=$?
docker exec compat-exec nosuchcommand >/dev/null 2>&1; rc127=$?
set -e
[ "$rc" = 6 ] || fail "exec passes the exit code through (got $rc)"
[ "$rc127" = 127 ] || fail "exec of a missing command exits 127 (got $rc127)"
docker exec -d compat-exec sh -c 'echo bg > /tmp/bg'
for _ in $(seq 50); do [ "$(docker exec compat-exec cat /tmp/bg 2>/dev/null)" = bg ] && break; sleep 0.1; done
[ "$(docker exec compat-exec cat /tmp/bg)" = bg ] || fail "exec -d runs in the background"
docker stop -t 0 compat-exec >/dev/null
set +e
docker exec compat-exec true 2>/dev/null; rc=$?
set -e
[ "$rc" = 1 ] || fail "exec into a stopped container exits 1 (got $rc)"
docker rm compat-exec >/dev/null
[ -z "$(docker ps -aq)" ] || fail "rm left a container"
# stats, attach and events
since=$(date +%s.%N)
docker run -d --name compat-stats -m 64m "$ref" sleep 30 >/dev/null
docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' compat-stats | grep >/dev/null '^compat-stats .* / 64MiB$' \
  || fail "stats --no-stream shows the -m limit"
docker stats --no-stream | grep >/dev/null '^CONTAINER ID *NAME *CPU % *MEM USAGE / LIMIT *MEM % *NET I/O *BLOCK I/O *PIDS$' \
  || fail "stats --no-stream prints docker's columns"
docker rm -f compat-stats >/dev/null
docker run -d --name compat-attach "$ref" sh -c 'sleep 2; echo attached; exit 6' >/dev/null
set +e
out=$(docker attach compat-attach); rc=$?
set -e
if [ "$out" != attached ] || [ "$rc" != 6 ]; then
  fail "attach shows the output and exits with the container's code (got $rc: $out)"
fi
docker rm compat-attach >/dev/null
actions=$(docker events --since "$since" --until "$(date +%s.%N)" --filter container=compat-stats --format '{{.Action}}' | tr '\n' ' ')
[ "$actions" = "create start kill die destroy " ] || fail "events --since/--until replays a lifecycle (got: $actions)"
line=$(docker events --since "$since" --until "$(date +%s.%N)" --filter event=die --filter container=compat-attach)
echo "$line" | grep >/dev/null '^20[0-9-]*T[0-9:.]*[+Z].* container die [0-9a-f]\{64\} (.*exitCode=6, .*name=compat-attach)$' \
  || fail "events prints docker's line with the exit code (got: $line)"
docker system df | grep >/dev/null '^Images' || fail "system df"
docker image prune -a -f | grep >/dev/null 'Total reclaimed space' || fail "prune"
[ -z "$(docker images -q)" ] || fail "prune -a left images"
echo "docker CLI $(docker version --format '{{.Client.Version}}'): ok"
