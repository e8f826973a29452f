"""docker-py (Debian's python3-docker) against a berth daemon whose networks it may make:
the network calls. Run inside a network namespace of the test's own."""
import os

import docker
from docker.types import IPAMConfig, IPAMPool

host = os.environ["DOCKER_HOST"]
ref = f"{os.environ['REGISTRY']}/compat/bb:latest"

c = docker.DockerClient(base_url=host, version="1.41")
c.images.pull(ref)

net = c.networks.create(
    "py-net",
    driver="bridge",
    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.96.0.0/24", gateway="10.96.0.1")]),
    labels={"made-by": "docker-py"},
)
assert net.name == "py-net" and len(net.id) == 64, net.attrs
assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.96.0.0/24", net.attrs
assert [n.name for n in c.networks.list(names=["py-net"])] == ["py-net"]
assert {"bridge", "host", "none"} <= {n.name for n in c.networks.list()}
internal = c.networks.create("py-internal", internal=True)

srv = c.containers.run(ref, ["sleep", "300"], detach=True, name="py-srv", network="py-net")
srv.reload()
assert srv.attrs["NetworkSettings"]["Networks"]["py-net"]["IPAddress"] == "10.96.0.2", srv.attrs["NetworkSettings"]
out = c.containers.run(ref, ["nslookup", "py-srv"], network="py-net", dns_search=["."], remove=True)
assert b"10.96.0.2" in out, out

internal.connect(srv, aliases=["backend"])
internal.reload()
assert [x.name for x in internal.containers] == ["py-srv"], internal.attrs
out = c.containers.run(ref, ["nslookup", "backend"], network="py-internal", dns_search=["."], remove=True)
assert b"Address:" in out, out
internal.disconnect(srv)
try:
    net.remove()
    raise SystemExit("removing a network in use must fail")
except docker.errors.APIError as e:
    assert e.status_code == 403 and "active endpoints" in str(e), e
try:
    c.networks.get("no-such-net")
    raise SystemExit("expected NotFound")
except docker.errors.NotFound:
    pass
srv.remove(force=True)
pruned = c.networks.prune(filters={"label": "made-by=docker-py"})
assert pruned["NetworksDeleted"] == ["py-net"], pruned
internal.remove()
assert c.networks.list(names=["py-net", "py-internal"]) == []
print("docker-py network: ok")
