#!/usr/bin/env bash
# Debian's docker-compose (1.29, on docker-py) against a berth daemon whose networks it may
# make: a two-service project on its default network, services reaching each other by name.
# Run inside a network namespace of the test's own.
set -euo pipefail
ref="$REGISTRY/compat/bb:latest"
fail() { echo "compose.sh: $*" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/docker-compose.yml" <<YAML
version: "3.8"
services:
  web:
    image: $ref
    command: ["sh", "-c", "mkdir /www && echo compose-web > /www/index.html && exec httpd -f -p 80 -h /www"]
  client:
    image: $ref
    command: ["sleep", "300"]
    depends_on: [web]
    networks:
      default:
        aliases: [front]
YAML
cd "$dir"
docker pull -q "$ref" >/dev/null
docker-compose -p cmp up -d 2>&1 | tail -n 3
docker network ls --format '{{.Name}}' | grep -x >/dev/null cmp_default || fail "compose made its network"
got=""
for _ in $(seq 50); do
  got=$(docker-compose -p cmp exec -T client wget -q -O - http://web/ 2>/dev/null || true)
  [ "$got" = compose-web ] && break
  sleep 0.1
done
[ "$got" = compose-web ] || fail "client reaches web by its service name (got '$got')"
docker-compose -p cmp exec -T web nslookup front >/dev/null || fail "the alias of client resolves"
docker-compose -p cmp ps | grep >/dev/null 'cmp_web_1.*Up' || fail "compose ps shows web up"
docker-compose -p cmp down 2>&1 | tail -n 3
! docker network ls --format '{{.Name}}' | grep -x >/dev/null cmp_default || fail "compose down removed its network"
[ -z "$(docker ps -aq)" ] || fail "compose down removed its containers"
echo "docker-compose: ok"
