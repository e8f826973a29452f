//! Privileged tests: real bridges, veths, addresses, routes and nftables rules. Each test runs
//! on its own thread that enters a fresh network namespace (held by an `unshare -n` child) and
//! plays the host there; "containers" are more `unshare -n` children. Nothing touches the
//! machine's own network and every packet stays inside these namespaces.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::link::{host_interface_name, in_namespace};
use berth_net::nft::NftNetwork;
use berth_net::ports::SocketPortChecker;
use berth_net::{ContainerAttachment, Ipam, Ipv4Subnet, MemoryIpamStore, Netlink, Nft, PortSpec};
use berth_testkit::priv_test;

mod common;
use common::{as_host, Netns};

/// A child process killed when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn subnet() -> Ipv4Subnet {
    "10.213.0.0/16".parse().expect("subnet")
}

fn attachment(id: &str, netns: &Path, address: Ipv4Addr) -> ContainerAttachment {
    ContainerAttachment {
        bridge: "berth0".into(),
        host_interface: host_interface_name(id),
        netns: netns.to_path_buf(),
        interface: "eth0".into(),
        address,
        prefix_len: 16,
        gateway: subnet().first_host(),
        mac: None,
        mtu: None,
        default_route: true,
        ipv6: None,
    }
}

fn retry_until(what: &str, mut attempt: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match attempt() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn ping(from: &Netns, to: Ipv4Addr) {
    retry_until(&format!("ping {to}"), || {
        let out = from.busybox(&["ping", "-c1", "-W1", &to.to_string()]);
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
}

fn ipam() -> Ipam {
    Ipam::new(
        Arc::new(MemoryIpamStore::default()),
        "bridge",
        subnet(),
        subnet().first_host(),
    )
    .expect("ipam")
}

priv_test! {
    fn bridge_and_veths_connect_two_containers() {
        as_host(|_host| async {
            let nl = Netlink::connect().expect("netlink");
            let gateway = subnet().first_host();
            let index = nl.ensure_bridge("berth0", gateway, 16).await.expect("bridge");
            assert_eq!(nl.ensure_bridge("berth0", gateway, 16).await.expect("again"), index);
            assert_eq!(nl.addresses("berth0").await.expect("addresses"), [(gateway, 16)]);

            let ipam = ipam();
            let (a, b) = (Netns::new(), Netns::new());
            let ip_a = ipam.allocate("aaaa", None).expect("ip a");
            let ip_b = ipam.allocate("bbbb", None).expect("ip b");
            nl.attach(&attachment("aaaa", &a.path(), ip_a)).await.expect("attach a");
            nl.attach(&attachment("bbbb", &b.path(), ip_b)).await.expect("attach b");
            assert!(nl.hairpin(&host_interface_name("aaaa")).await.expect("hairpin"));

            // inside: eth0 carries the address
            let inside = in_namespace(&a.path(), |nl| async move { nl.addresses("eth0").await })
                .await
                .expect("inside a");
            assert_eq!(inside, [(ip_a, 16)]);
            // IPv6 is off on eth0 (no link-local address), lo is up
            let v6 = a.busybox(&["cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]);
            assert_eq!(String::from_utf8_lossy(&v6.stdout).trim(), "1");
            let v6 = a.busybox(&["ip", "-6", "addr", "show", "dev", "eth0"]);
            assert_eq!(String::from_utf8_lossy(&v6.stdout).trim(), "", "eth0 has IPv6 addresses");
            let lo = a.busybox(&["ip", "-o", "link", "show", "lo"]);
            assert!(String::from_utf8_lossy(&lo.stdout).contains(",UP"), "lo is down");

            ping(&a, ip_b);
            ping(&b, ip_a);
            ping(&a, gateway);

            // a second attach under the same host name fails, naming it, and leaves a alone
            let err = nl
                .attach(&attachment("aaaa", &b.path(), "10.213.0.9".parse().expect("ip")))
                .await
                .expect_err("duplicate");
            assert!(err.to_string().contains("vbaaaa"), "{err}");
            ping(&a, ip_b);

            // removal: no veth on either side
            assert!(nl.delete(&host_interface_name("aaaa")).await.expect("delete"));
            assert!(!nl.exists(&host_interface_name("aaaa")).await.expect("exists"));
            let left = in_namespace(&a.path(), |nl| async move { nl.exists("eth0").await })
                .await
                .expect("inside a");
            assert!(!left, "eth0 left inside the container");
            assert!(!nl.delete(&host_interface_name("aaaa")).await.expect("delete twice"));
            assert!(!a.busybox(&["ping", "-c1", "-W1", &ip_b.to_string()]).status.success());

            // a missing bridge is named
            let err = nl
                .attach(&ContainerAttachment { bridge: "nobridge".into(), ..attachment("cccc", &a.path(), ip_a) })
                .await
                .expect_err("no bridge");
            assert_eq!(err.to_string(), "interface nobridge not found");
            assert!(!nl.exists(&host_interface_name("cccc")).await.expect("exists"));

            assert!(nl.delete("berth0").await.expect("delete bridge"));
        });
    }
}

/// Fetches `url` with curl (busybox-static's wget crashes in getaddrinfo outside a container),
/// from the host or from inside `from`.
fn wget(from: Option<&Netns>, url: &str) -> Result<String, String> {
    let args = ["-sS", "-m", "2", url];
    let out = match from {
        Some(ns) => Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg("curl")
            .args(args)
            .output()
            .expect("nsenter curl"),
        None => Command::new("curl").args(args).output().expect("curl"),
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{url}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn expect_answer(from: Option<&Netns>, url: &str, answer: &str) {
    retry_until(url, || match wget(from, url) {
        Ok(body) if body == answer => Ok(()),
        Ok(body) => Err(format!("answered {body:?}")),
        Err(e) => Err(e),
    });
}

priv_test! {
    fn published_ports_reach_the_container_and_are_removed_exactly() {
        as_host(|_host| async {
            let nl = Netlink::connect().expect("netlink");
            let gateway = subnet().first_host();
            nl.ensure_bridge("berth0", gateway, 16).await.expect("bridge");
            berth_net::sysctl::enable_ip_forward(Path::new("/proc/sys")).expect("forward");
            berth_net::sysctl::enable_route_localnet(Path::new("/proc/sys"), "berth0")
                .expect("route_localnet");
            let nft = Nft::default();
            let network = NftNetwork { bridge: "berth0".into(), subnet: subnet(), masquerade: true, internal: false, subnet6: None };
            nft.setup(std::slice::from_ref(&network)).expect("nft setup");

            let ipam = ipam();
            let (a, b) = (Netns::new(), Netns::new());
            let ip_a = ipam.allocate("aaaa", None).expect("ip a");
            let ip_b = ipam.allocate("bbbb", None).expect("ip b");
            nl.attach(&attachment("aaaa", &a.path(), ip_a)).await.expect("attach a");
            nl.attach(&attachment("bbbb", &b.path(), ip_b)).await.expect("attach b");

            // each container serves its own identity on port 80
            let mut servers = Vec::new();
            let docs = tempfile::tempdir().expect("tempdir");
            for (name, ns) in [("a", &a), ("b", &b)] {
                let dir = docs.path().join(name);
                std::fs::create_dir(&dir).expect("mkdir");
                std::fs::write(dir.join("index.html"), format!("container-{name}\n")).expect("write");
                servers.push(KillOnDrop(ns.spawn_busybox(&["httpd", "-f", "-p", "80", "-h", dir.to_str().expect("utf-8")])));
            }

            let checker = SocketPortChecker { published: |_, _| false };
            let mut mappings = "8080:80".parse::<PortSpec>().expect("spec").resolve(&checker).expect("resolve");
            let random = "127.0.0.1::80".parse::<PortSpec>().expect("spec").resolve(&checker).expect("resolve");
            mappings.extend(random.iter().copied());
            nft.publish(ip_b, &mappings).expect("publish b");
            nft.publish(ip_a, &"8081:80".parse::<PortSpec>().expect("spec").resolve(&checker).expect("resolve"))
                .expect("publish a");
            // setup again (a daemon restart) keeps the published ports
            nft.setup(std::slice::from_ref(&network)).expect("nft setup again");

            // the same host port twice is refused, whole, and the first stays
            let err = nft.publish(ip_a, &mappings[..1]).expect_err("duplicate");
            assert!(err.to_string().contains("publish ports of"), "{err}");

            // from the host: 127.0.0.1 (output chain, route_localnet) and its bridge address
            expect_answer(None, "http://127.0.0.1:8080/", "container-b");
            expect_answer(None, &format!("http://127.0.0.1:{}/", random[0].host_port), "container-b");
            expect_answer(None, &format!("http://{gateway}:8080/"), "container-b");
            expect_answer(None, "http://127.0.0.1:8081/", "container-a");
            // from another container, and from the container itself (hairpin)
            expect_answer(Some(&a), &format!("http://{gateway}:8080/"), "container-b");
            expect_answer(Some(&b), &format!("http://{gateway}:8080/"), "container-b");
            // outbound: the container reaches the host side directly too
            expect_answer(Some(&a), &format!("http://{ip_b}/"), "container-b");

            let listed: HashSet<_> = nft.published().expect("list").into_iter().map(|p| (p.container_ip, p.mapping)).collect();
            assert_eq!(listed.len(), 3, "{listed:?}");

            // removing b's ports removes exactly those
            let removed = nft.unpublish(ip_b).expect("unpublish b");
            assert_eq!(removed.len(), 2);
            assert!(wget(None, "http://127.0.0.1:8080/").is_err(), "8080 still answers");
            expect_answer(None, "http://127.0.0.1:8081/", "container-a");
            assert!(nft.unpublish(ip_b).expect("unpublish twice").is_empty());

            // reconcile drops the ports of containers that are gone
            nft.publish(ip_b, &mappings[..1]).expect("publish b again");
            let stale = nft.reconcile(&[ip_a].into()).expect("reconcile");
            assert_eq!(stale.len(), 1);
            assert_eq!(stale[0].container_ip, ip_b);
            let left: Vec<_> = nft.published().expect("list").into_iter().map(|p| p.container_ip).collect();
            assert_eq!(left, [ip_a]);

            drop(servers);
            nl.delete(&host_interface_name("aaaa")).await.expect("delete a");
            nl.delete(&host_interface_name("bbbb")).await.expect("delete b");
            nft.delete_table().expect("delete table");
            assert!(!nft.table_exists().expect("exists"));
            let ruleset = Command::new("nft").args(["list", "ruleset"]).output().expect("nft");
            assert_eq!(String::from_utf8_lossy(&ruleset.stdout).trim(), "", "rules left");
            nft.delete_table().expect("delete absent table");
            assert!(nl.delete("berth0").await.expect("delete bridge"));
        });
    }
}
