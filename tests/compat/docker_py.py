"""docker-py (Debian's python3-docker) against a berth daemon: the image calls it makes."""
import os
import sys
import time

import docker

host = os.environ["DOCKER_HOST"]
reg = os.environ["REGISTRY"]
ref = f"{reg}/compat/bb"

c = docker.DockerClient(base_url=host, version="1.41")
assert c.ping() is True
v = c.version()
assert v["ApiVersion"] and v["Os"] == "linux", v

img = c.images.pull(ref, tag="latest")
assert f"{ref}:latest" in img.tags, img.tags
assert img.id.startswith("sha256:")
assert img.attrs["Config"]["Cmd"] == ["sh"], img.attrs["Config"]
assert any(f"{ref}:latest" in i.tags for i in c.images.list())
assert c.images.list(filters={"dangling": True}) == []

assert img.tag("compat/retagged", "v1") is True
assert "compat/retagged:v1" in c.images.get("compat/retagged:v1").tags
removed = c.api.remove_image("compat/retagged:v1")
assert removed == [{"Untagged": "compat/retagged:v1"}], removed

try:
    c.images.get("nosuchimage:latest")
    sys.exit("expected ImageNotFound")
except docker.errors.ImageNotFound:
    pass
try:
    c.images.pull(f"{reg}/compat/nosuch", tag="latest")
    sys.exit("expected a pull error")
except docker.errors.APIError:
    pass

out = c.containers.run(f"{ref}:latest", ["echo", "from docker-py"], remove=True)
assert out == b"from docker-py\n", out
# output that comes after the follow stream opened, read only after the removal (as run() does)
out = c.containers.run(f"{ref}:latest", ["sh", "-c", "sleep 0.3; echo late"], remove=True)
assert out == b"late\n", out
out = c.containers.run(f"{ref}:latest", ["cat", "/proc/1/comm"], init=True, remove=True)
assert out == b"docker-init\n", out
out = c.containers.run(f"{ref}:latest", ["echo", "runc"], runtime="runc", remove=True)
assert out == b"runc\n", out
ctr = c.containers.run(f"{ref}:latest", ["sh", "-c", "echo bg; exit 3"], detach=True)
assert ctr.wait()["StatusCode"] == 3
assert ctr.logs() == b"bg\n", ctr.logs()
ctr.reload()
assert ctr.status == "exited", ctr.status
ctr.remove()
ctr = c.containers.run(f"{ref}:latest", ["sleep", "60"], detach=True, hostname="pyexec")
res = ctr.exec_run(["hostname"])
assert res.exit_code == 0 and res.output == b"pyexec\n", res
res = ctr.exec_run(["sh", "-c", "echo $V; pwd; id -u; exit 4"], environment={"V": "x"}, workdir="/tmp", user="1000")
assert res.exit_code == 4 and res.output == b"x\n/tmp\n1000\n", res
res = ctr.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert res.output == (b"out\n", b"err\n"), res
res = ctr.exec_run(["nosuchcommand"])
assert res.exit_code == 127, res
ex = c.api.exec_create(ctr.id, ["sh", "-c", "sleep 0.2; exit 9"])
c.api.exec_start(ex["Id"], detach=True)
for _ in range(50):
    info = c.api.exec_inspect(ex["Id"])
    if not info["Running"] and info["ExitCode"] is not None:
        break
    time.sleep(0.1)
assert info["ExitCode"] == 9 and info["ContainerID"] == ctr.id and info["Pid"] > 0, info
ctr.remove(force=True)
assert c.containers.list(all=True) == []

since = int(time.time())
ctr = c.containers.run(f"{ref}:latest", ["sh", "-c", "while true; do :; done"], detach=True, mem_limit="64m")
s = ctr.stats(stream=False)
assert s["memory_stats"]["limit"] == 64 * 1024 * 1024, s["memory_stats"]
assert s["memory_stats"]["usage"] > 0, s["memory_stats"]
assert s["cpu_stats"]["cpu_usage"]["total_usage"] > s["precpu_stats"]["cpu_usage"]["total_usage"], s
assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"], s
assert s["cpu_stats"]["online_cpus"] >= 1 and s["pids_stats"]["current"] >= 1, s
assert s["name"] == "/" + ctr.name and s["id"] == ctr.id, s
assert "networks" not in s, s
ctr.remove(force=True)
events = list(c.events(decode=True, since=since, until=int(time.time()) + 1, filters={"container": ctr.id}))
assert [e["Action"] for e in events] == ["create", "start", "kill", "die", "destroy"], events
die = events[3]
assert die["Type"] == "container" and die["status"] == "die" and die["id"] == ctr.id, die
assert die["Actor"]["Attributes"]["exitCode"] == "137", die
assert die["Actor"]["Attributes"]["name"] == ctr.name and die["from"] == f"{ref}:latest", die

df = c.df()
assert df["LayersSize"] > 0 and len(df["Images"]) == 1, df
pruned = c.images.prune(filters={"dangling": False})
assert pruned["SpaceReclaimed"] > 0, pruned
assert c.images.list() == []
print("docker-py: ok")
