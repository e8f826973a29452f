"""docker-py (Debian's python3-docker) against a berth daemon: the image calls it makes."""
import os
import sys

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
assert c.containers.list(all=True) == []

df = c.df()
assert df["LayersSize"] > 0 and len(df["Images"]) == 1, df
pruned = c.images.prune(filters={"dangling": False})
assert pruned["SpaceReclaimed"] > 0, pruned
assert c.images.list() == []
print("docker-py: ok")
