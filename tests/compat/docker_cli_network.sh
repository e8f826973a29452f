#!/usr/bin/env bash
# The docker CLI's networking against a berth daemon (DOCKER_HOST) whose default bridge is
# up; run inside a network namespace of the test's own.
set -euo pipefail
ref="$REGISTRY/compat/bb:latest"
fail() { echo "docker_cli_network.sh: $*" >&2; exit 1; }

docker pull -q "$ref" >/dev/null
docker run -d --name compat-web -p 127.0.0.1:18080:80 -p 18443:443/tcp "$ref" \
  sh -c 'mkdir /www && echo compat-web > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
[ "$(docker port compat-web 80)" = "127.0.0.1:18080" ] || fail "port 80 (got $(docker port compat-web 80))"
docker port compat-web | grep -x >/dev/null '443/tcp -> 0.0.0.0:18443' || fail "port lists every mapping"
[ "$(docker inspect -f '{{(index (index .HostConfig.PortBindings "80/tcp") 0).HostPort}}' compat-web)" = 18080 ] \
  || fail "inspect shows HostConfig.PortBindings"
[ "$(docker inspect -f '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}' compat-web)" = 127.0.0.1 ] \
  || fail "inspect shows NetworkSettings.Ports"
ip=$(docker inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' compat-web)
case "$ip" in 10.213.*) ;; *) fail "an address on berth's bridge (got $ip)" ;; esac
for _ in $(seq 50); do
  [ "$(curl -s -m 2 http://127.0.0.1:18080/)" = compat-web ] && break
  sleep 0.1
done
[ "$(curl -s -m 2 http://127.0.0.1:18080/)" = compat-web ] || fail "the published port answers"
docker ps --format '{{.Ports}}' --filter name=compat-web | grep >/dev/null '127.0.0.1:18080->80/tcp' || fail "ps shows the ports"
set +e
err=$(docker run -d -p 18443:80 "$ref" true 2>&1); rc=$?
set -e
[ "$rc" = 125 ] || fail "a taken port exits 125 (got $rc)"
echo "$err" | grep >/dev/null 'port is already allocated' || fail "a taken port says so (got $err)"
docker rm -f compat-web >/dev/null

# user-defined networks: create, run on them, names resolve, isolation, connect, rm
docker network create --subnet 10.97.0.0/24 --label compat=1 compat-a >/dev/null
docker network create --internal compat-b >/dev/null
docker network ls --format '{{.Name}} {{.Driver}}' | grep -x >/dev/null 'compat-a bridge' || fail "network ls shows compat-a"
[ "$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}} {{index .Labels "compat"}}' compat-a)" = "10.97.0.0/24 1" ] \
  || fail "network inspect shows subnet and label"
docker run -d --name compat-srv --network compat-a --network-alias srv "$ref" \
  sh -c 'mkdir /www && echo compat-srv > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
got=$(docker run --rm --network compat-a "$ref" wget -q -O - http://srv/)
[ "$got" = compat-srv ] || fail "an alias resolves on its network (got $got)"
[ "$(docker inspect -f '{{(index .NetworkSettings.Networks "compat-a").IPAddress}}' compat-srv)" = 10.97.0.2 ] \
  || fail "inspect shows the address on compat-a"
if docker run --rm --network compat-b --dns-search . "$ref" nslookup compat-srv >/dev/null 2>&1; then
  fail "a name resolved across networks"
fi
docker network connect compat-b compat-srv
docker exec compat-srv ip -4 -o addr show eth1 | grep >/dev/null ' 10.214.' || fail "network connect adds eth1"
[ "$(docker network inspect -f '{{len .Containers}}' compat-b)" = 1 ] || fail "network inspect lists the container"
set +e
err=$(docker network rm compat-a 2>&1); rc=$?
set -e
[ "$rc" = 1 ] || fail "removing a network in use fails (got $rc)"
echo "$err" | grep >/dev/null 'has active endpoints' || fail "removing a network in use says why (got $err)"
docker network disconnect compat-b compat-srv
docker rm -f compat-srv >/dev/null
docker network rm compat-a compat-b >/dev/null
! docker network ls -q --filter name=compat- | grep >/dev/null . || fail "networks removed"
echo "docker CLI network: ok"
