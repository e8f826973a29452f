//! Networking end to end: each test runs its daemon, registry and clients inside a network
//! namespace of its own (`in_fresh_netns`), so the bridge, veths and nft rules berth makes
//! never touch the host's network.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use berth_testkit::priv_test;

use crate::support::{eventually, in_fresh_netns, links, no_links_left, Berth};

fn curl(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "2", url])
        .output()
        .expect("curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The two ends of a TCP connection made to `addr` (as `getsockname` and `getpeername`
/// answer): a connection berth translated at connect() starts from the bridge's address and
/// still names `addr` as its peer; one nft DNATs starts from 127.0.0.1.
fn ends(addr: &str) -> Result<(String, String), String> {
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let local = c.local_addr().map_err(|e| e.to_string())?.ip().to_string();
    Ok((local, c.peer_addr().map_err(|e| e.to_string())?.to_string()))
}

/// Host-side veths berth made (`vb…`).
fn veths() -> Vec<String> {
    links("vb")
}

/// Waits until no host-side veth is left: the veth of an exited container goes with its
/// network namespace, and berth deletes it in the background (not on the exit's path).
fn no_veths_left() {
    no_links_left("vb");
}

/// Published ports in berth's nft table.
fn nft_elements() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("elements"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A container serving its name over HTTP on port 80.
fn serve_identity(b: &Berth, img: &str, name: &str, publish: &str) -> String {
    let script =
        format!("mkdir /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www");
    b.ok(&[
        "run", "-d", "--name", name, "-p", publish, img, "sh", "-c", &script,
    ])
    .trim()
    .to_string()
}

priv_test! {
    fn twenty_containers_publish_port_80_each_answering_with_its_identity() {
        in_fresh_netns(|| {
            let f = fixture_in_netns();
            let b = &f.b;
            for i in 0..20 {
                serve_identity(b, &f.img, &format!("web{i}"), &format!("{}:80", 18000 + i));
            }
            for i in 0..20 {
                let port = 18000 + i;
                eventually(&format!("port {port}"), || match curl(&format!("http://127.0.0.1:{port}/")) {
                    Ok(body) if body == format!("web{i}") => Ok(()),
                    Ok(body) => Err(format!("answered {body:?}")),
                    Err(e) => Err(e),
                });
            }
            // connections made here skip NAT: translated at connect() (cgroup BPF), with the
            // peer still the published address
            eventually("connect-time translation", || match ends("127.0.0.1:18003") {
                Ok((local, peer)) if local == "10.213.0.1" && peer == "127.0.0.1:18003" => Ok(()),
                other => Err(format!("{other:?}")),
            });
            eventually("translation for the host's own addresses", || match ends("10.213.0.1:18004") {
                Ok((local, peer)) if local == "10.213.0.1" && peer == "10.213.0.1:18004" => Ok(()),
                other => Err(format!("{other:?}")),
            });
            // berth port and docker's inspect shape
            assert_eq!(b.ok(&["port", "web3"]).trim(), "80/tcp -> 0.0.0.0:18003");
            assert_eq!(b.ok(&["port", "web3", "80"]).trim(), "0.0.0.0:18003");
            let ip = b.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "web3"]);
            assert!(ip.trim().starts_with("10.213."), "{ip}");
            // from the host's bridge address and from another container
            let gateway = "10.213.0.1";
            assert_eq!(curl(&format!("http://{gateway}:18005/")).expect("via gateway"), "web5");
            let from_peer = b.ok(&["run", "--rm", &f.img, "wget", "-q", "-O", "-", &format!("http://{gateway}:18007/")]);
            assert_eq!(from_peer.trim(), "web7");
            // hairpin: a container reaches its own published port
            let own = b.ok(&["exec", "web9", "wget", "-q", "-O", "-", &format!("http://{gateway}:18009/")]);
            assert_eq!(own.trim(), "web9");
            // the same host port twice: Docker's error, exit 125, nothing left behind
            let before: HashSet<String> = veths().into_iter().collect();
            let (code, err) = b.fails(&["run", "-d", "--name", "dup", "-p", "18001:80", &f.img, "sleep", "60"]);
            assert_eq!(code, 125, "{err}");
            assert!(err.contains("Bind for 0.0.0.0:18001 failed: port is already allocated"), "{err}");
            // (a veth of an exited container may still be going, in the background)
            let new: Vec<String> = veths().into_iter().filter(|v| !before.contains(v)).collect();
            assert!(new.is_empty(), "a veth was left by the failed start: {new:?}");
            let (code, err) = b.fails(&["run", "--rm", "-p", "70000:80", &f.img, "true"]);
            assert_eq!(code, 125);
            assert!(err.contains("invalid published port"), "{err}");
            // container: mode shares the stack: localhost:80 is web0's httpd
            let shared = b.ok(&["run", "--rm", "--network", "container:web0", &f.img, "wget", "-q", "-O", "-", "http://127.0.0.1/"]);
            assert_eq!(shared.trim(), "web0");
            // removal leaves no veth, no nft element, no address
            for i in 0..20 {
                b.ok(&["rm", "-f", &format!("web{i}")]);
            }
            no_veths_left();
            assert_eq!(nft_elements(), "");
            // and no connect-time translation is left: the port is refused at once (a stale
            // one would send the connect to a gone container's address and hang there)
            let gone: std::net::SocketAddr = "127.0.0.1:18003".parse().expect("addr");
            match std::net::TcpStream::connect_timeout(&gone, Duration::from_secs(2)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                other => panic!("127.0.0.1:18003 after rm: {other:?}"),
            }
            let first = b.ok(&["run", "--rm", &f.img, "sh", "-c", "ip -4 -o addr show eth0"]);
            assert!(first.contains("10.213.0.2/16"), "addresses were not freed: {first}");
        });
    }
}

priv_test! {
    fn etc_files_dns_flags_and_modes() {
        in_fresh_netns(|| {
            // (this daemon DNATs host-made connections too: checked at the end)
            let f = crate::containers::fixture_with(Berth::with_bridge(), &["--local-ports", "nat"]);
            let b = &f.b;
            let out = b.ok(&["run", "--rm", "--hostname", "box", "--dns", "10.9.9.9", "--dns-search", "corp.example",
                "--add-host", "db:10.1.2.3", "--ip", "10.213.7.7", "--mac-address", "02:42:0a:d5:07:07",
                &f.img, "sh", "-c", "cat /etc/hosts /etc/resolv.conf /etc/hostname; ip -o link show eth0; ip -4 -o addr show eth0"]);
            for want in ["10.213.7.7\tbox", "10.1.2.3\tdb", "nameserver 10.9.9.9", "search corp.example", "box", "02:42:0a:d5:07:07", "10.213.7.7/16"] {
                assert!(out.contains(want), "missing {want:?} in\n{out}");
            }
            let (code, err) = b.fails(&["run", "--rm", "--ip", "192.168.9.9", &f.img, "true"]);
            assert_eq!(code, 125);
            assert!(err.contains("not in the bridge network's subnet"), "{err}");
            let none = b.ok(&["run", "--rm", "--network", "none", &f.img, "sh", "-c", "ls /sys/class/net"]);
            assert_eq!(none.split_whitespace().collect::<Vec<_>>(), ["lo"]);
            // every container gets a network namespace of its own (the zygote's spare goes to
            // one container only), and none is the host's
            let ns = |name: &str| {
                b.ok(&["run", "-d", "--name", name, "--network", "none", &f.img, "sleep", "60"]);
                b.ok(&["exec", name, "readlink", "/proc/self/ns/net"]).trim().to_string()
            };
            let (n1, n2) = (ns("ns1"), ns("ns2"));
            let host_ns = std::fs::read_link("/proc/self/ns/net").expect("own netns");
            assert!(n1.starts_with("net:[") && n1 != n2, "{n1} {n2}");
            assert_ne!(std::path::Path::new(&n1), host_ns);
            b.ok(&["rm", "-f", "ns1", "ns2"]);
            let host = b.ok(&["run", "--rm", "--network", "host", &f.img, "sh", "-c", "ls /sys/class/net"]);
            assert!(host.contains("berth0"), "{host}");
            // restarts right after each exit: the veth of the exit (same name) is deleted in
            // the background, and the next start waits for it instead of failing on the name
            b.ok(&["run", "-d", "--name", "again", &f.img, "sleep", "60"]);
            for _ in 0..5 {
                b.ok(&["restart", "-t", "0", "again"]);
            }
            let addr = b.ok(&["exec", "again", "sh", "-c", "ip -4 -o addr show eth0"]);
            assert!(addr.contains("10.213."), "{addr}");
            b.ok(&["stop", "-t", "0", "again"]);
            b.ok(&["start", "again"]);
            let addr = b.ok(&["exec", "again", "sh", "-c", "ip -4 -o addr show eth0"]);
            assert!(addr.contains("10.213."), "{addr}");
            b.ok(&["rm", "-f", "again"]);
            // --local-ports nat: a connection made here is DNATed (it keeps 127.0.0.1)
            serve_identity(b, &f.img, "natted", "18200:80");
            eventually("natted answers", || match curl("http://127.0.0.1:18200/") {
                Ok(body) if body == "natted" => Ok(()),
                other => Err(format!("{other:?}")),
            });
            assert_eq!(ends("127.0.0.1:18200").expect("connect"), ("127.0.0.1".to_string(), "127.0.0.1:18200".to_string()));
            b.ok(&["rm", "-f", "natted"]);
            no_veths_left();
        });
    }
}

priv_test! {
    fn remote_host_behind_nat_and_cleanup_after_a_daemon_crash() {
        in_fresh_netns(|| {
            let f = fixture_in_netns();
            let b = &f.b;
            // a "remote host": another namespace reached over a veth, serving HTTP
            let remote = Command::new("unshare")
                .args(["-n", "sleep", "300"])
                .spawn()
                .expect("unshare");
            let remote = KillOnDrop(remote);
            std::thread::sleep(Duration::from_millis(200));
            let netns = format!("/proc/{}/ns/net", remote.0.id());
            let sh = |cmd: &str| {
                let s = Command::new("sh").args(["-c", cmd]).status().expect("sh");
                assert!(s.success(), "{cmd}");
            };
            sh(&format!("ip link add uplink type veth peer name eth0 netns {netns}"));
            sh("ip addr add 192.0.2.1/24 dev uplink && ip link set uplink up");
            sh(&format!("nsenter --net={netns} sh -c 'ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip link set lo up'"));
            let docs = tempfile::tempdir().expect("tempdir");
            std::fs::write(docs.path().join("index.html"), "remote\n").expect("write");
            let server = Command::new("nsenter")
                .arg(format!("--net={netns}"))
                .args(["/bin/busybox", "httpd", "-f", "-p", "80", "-h"])
                .arg(docs.path())
                .spawn()
                .expect("httpd");
            let _server = KillOnDrop(server);
            // the remote host has no route back to 10.213/16: only NAT makes this work
            let got = b.ok(&["run", "--rm", &f.img, "wget", "-q", "-O", "-", "http://192.0.2.2/"]);
            assert_eq!(got.trim(), "remote");

            // a daemon crash with a running container: its state survives; once the
            // container is gone while the daemon is down, the next start cleans up
            serve_identity(b, &f.img, "survivor", "18100:80");
            let doomed = b.ok(&["run", "-d", "-p", "18101:80", &f.img, "sleep", "300"]).trim().to_string();
            let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", &doomed]).trim().to_string();
            let daemon = b.daemon_pid().expect("daemon pid");
            Command::new("kill").args(["-9", &daemon.to_string()]).status().expect("kill");
            Command::new("kill").args(["-9", &pid]).status().expect("kill");
            std::thread::sleep(Duration::from_millis(500));
            // with the daemon gone, so are its BPF programs: nft carries the connection
            eventually("survivor answers", || match curl("http://127.0.0.1:18100/") {
                Ok(b) if b == "survivor" => Ok(()),
                other => Err(format!("{other:?}")),
            });
            assert_eq!(ends("127.0.0.1:18100").expect("via nft").0, "127.0.0.1");
            // the next command autostarts a daemon, which reconciles and translates again
            b.ok(&["ps", "-a"]);
            eventually("translation after the restart", || match ends("127.0.0.1:18100") {
                Ok((local, _)) if local == "10.213.0.1" => Ok(()),
                other => Err(format!("{other:?}")),
            });
            eventually("the crashed container's network is gone", || {
                let left = nft_elements();
                if left.contains("18101") || veths().len() != 1 {
                    return Err(format!("{left} {:?}", veths()));
                }
                Ok(())
            });
            assert!(nft_elements().contains("18100"), "{}", nft_elements());

            // 200 run --rm cycles (address, veth, random published port each) leak nothing
            for _ in 0..200 {
                b.ok(&["run", "--rm", "-p", "80", &f.img, "true"]);
            }
            b.ok(&["rm", "-f", "survivor", &doomed]);
            no_veths_left();
            assert_eq!(nft_elements(), "");
            let first = b.ok(&["run", "--rm", &f.img, "sh", "-c", "ip -4 -o addr show eth0"]);
            assert!(first.contains("10.213.0.2/16"), "addresses leaked: {first}");
        });
    }
}

/// A process this test started, killed and reaped when the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The busybox fixture on a berth whose daemon makes the default bridge.
fn fixture_in_netns() -> crate::containers::Fixture {
    crate::containers::fixture_with(Berth::with_bridge(), &[])
}
