#!/usr/bin/env bash
# The docker CLI against a berth daemon (DOCKER_HOST) and a registry (REGISTRY).
set -euo pipefail
ref="$REGISTRY/compat/bb:latest"
fail() { echo "docker_cli.sh: $*" >&2; exit 1; }

docker version --format '{{.Server.APIVersion}}' | grep -q . || fail "no server API version"
docker pull -q "$ref" | grep -qx "$ref" || fail "pull -q prints the reference"
docker images --format '{{.Repository}}:{{.Tag}}' | grep -qx "$ref" || fail "images lists the pull"
[ "$(docker image inspect --format '{{.Os}}' "$ref")" = linux ] || fail "inspect"
docker tag "$ref" compat/cli:v1
docker images | grep -q '^compat/cli ' || fail "tag shows in images"
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
docker ps --format '{{.Names}}' | grep -qx compat-sleeper || fail "ps lists the running container"
[ "$(docker inspect -f '{{.State.Running}}' compat-sleeper)" = true ] || fail "inspect shows it running"
docker stop -t 0 compat-sleeper >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' compat-sleeper)" = 137 ] || fail "stop -t 0 kills (137)"
docker rm "$id" >/dev/null
[ -z "$(docker ps -aq)" ] || fail "rm left a container"
docker system df | grep -q '^Images' || fail "system df"
docker image prune -a -f | grep -q 'Total reclaimed space' || fail "prune"
[ -z "$(docker images -q)" ] || fail "prune -a left images"
echo "docker CLI $(docker version --format '{{.Client.Version}}'): ok"
